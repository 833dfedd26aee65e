"""Quality rule stages: each rule drops crafted text with its exact reason; good text passes."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataproc.document import Document, Reject
from dataproc.stages.quality import (
    C4Config,
    C4Filter,
    FineWebQualityConfig,
    FineWebQualityFilter,
    GopherQualityConfig,
    GopherQualityFilter,
    GopherRepetitionConfig,
    GopherRepetitionFilter,
    QualityConfig,
    _duplicates,
    _lines,
    _paragraphs,
    _RepeatedNgrams,
    count_sentences,
    ngram_denominator,
    quality_stages,
)
from dataproc.stages.text_utils import _WORD_TOKEN_RE, doc_words, split_words

_VOCAB = [
    "river",
    "mountain",
    "garden",
    "window",
    "letter",
    "market",
    "station",
    "village",
    "teacher",
    "morning",
    "evening",
    "history",
    "science",
    "music",
    "weather",
    "kitchen",
    "bridge",
    "forest",
    "harbor",
    "library",
    "painting",
    "journey",
    "question",
    "answer",
    "problem",
    "method",
    "result",
    "system",
    "people",
    "family",
    "country",
    "region",
    "council",
    "quickly",
    "slowly",
    "carefully",
    "often",
    "rarely",
    "always",
    "never",
    "before",
    "after",
    "during",
    "between",
    "around",
    "build",
    "carry",
    "follow",
    "gather",
    "measure",
    "notice",
    "observe",
    "prepare",
    "remember",
    "travel",
    "wonder",
    "explain",
    "bright",
    "quiet",
    "ancient",
    "modern",
    "gentle",
    "sudden",
    "narrow",
    "distant",
    "careful",
    "simple",
    "useful",
    "honest",
]
_STOPS = ["the", "of", "and", "to", "with", "that"]


def good_text(n_lines: int = 12, seed: int = 0) -> str:
    """Plausible prose: distinct lines of 10-16 words, stop words, terminal punctuation."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        words = []
        for j in range(rng.randint(10, 16)):
            words.append(rng.choice(_STOPS) if j % 3 == 1 else rng.choice(_VOCAB))
        lines.append(" ".join(words).capitalize() + ".")
    return "\n".join(lines)


def _doc(text: str, language: str | None = "en") -> Document:
    return Document(id="d", url="https://example.com/", source="s", text=text, language=language)


def _reason(stage: object, text: str, language: str | None = "en") -> str | None:
    out = stage.process(_doc(text, language))  # type: ignore[attr-defined]
    return out.reason if isinstance(out, Reject) else None


ALL_STAGES = [GopherRepetitionFilter(), GopherQualityFilter(), C4Filter(), FineWebQualityFilter()]


@pytest.mark.parametrize("seed", range(5))
def test_good_text_passes_every_stage(seed: int) -> None:
    text = good_text(seed=seed)
    for stage in ALL_STAGES:
        assert _reason(stage, text) is None, stage.name


def test_fineweb_defaults() -> None:
    c = QualityConfig()
    r = c.gopher_repetition
    assert (
        r.max_dup_line_frac,
        r.max_dup_para_frac,
        r.max_dup_line_char_frac,
        r.max_dup_para_char_frac,
    ) == (
        0.3,
        0.3,
        0.2,
        0.2,
    )
    assert r.max_top_ngram_char_frac == {2: 0.2, 3: 0.18, 4: 0.16}
    assert r.max_dup_ngram_char_frac == {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
    g = c.gopher_quality
    assert (g.min_words, g.max_words, g.min_mean_word_length, g.max_mean_word_length) == (
        50,
        100_000,
        3,
        10,
    )
    assert (g.max_symbol_word_ratio, g.max_bullet_lines_ratio, g.max_ellipsis_lines_ratio) == (
        0.1,
        0.9,
        0.3,
    )
    assert (g.min_alpha_words_ratio, g.min_stop_words) == (0.8, 2)
    assert c.c4.filter_no_terminal_punct is False
    assert (c.c4.min_sentences, c.c4.min_words_per_line, c.c4.max_word_length) == (5, 3, 1000)
    f = c.fineweb
    assert (f.min_line_punct_ratio, f.max_short_line_ratio, f.max_short_line_chars) == (
        0.12,
        0.67,
        30,
    )
    assert (f.max_char_dup_ratio, f.max_newline_word_ratio) == (0.01, 0.3)


def test_quality_stages_order_and_switches() -> None:
    names = [s.name for s in quality_stages(QualityConfig())]
    assert names == ["gopher_repetition", "gopher_quality", "c4", "fineweb"]
    cfg = QualityConfig(c4=C4Config(enabled=False))
    assert [s.name for s in quality_stages(cfg)] == [
        "gopher_repetition",
        "gopher_quality",
        "fineweb",
    ]
    assert quality_stages(QualityConfig(enabled=False)) == []


# --- Gopher repetition ------------------------------------------------------------------------


def test_dup_paragraphs() -> None:
    paras = [good_text(2, seed=i) for i in range(3)]
    text = "\n\n".join([*paras, paras[0], paras[1]])
    assert _reason(GopherRepetitionFilter(), text) == "dup_para_frac"


def test_dup_para_chars() -> None:
    long_para = good_text(6, seed=1)
    text = "\n\n".join([long_para, *(good_text(1, seed=10 + i) for i in range(6)), long_para])
    assert _reason(GopherRepetitionFilter(), text) == "dup_para_char_frac"


def test_dup_lines() -> None:
    lines = good_text(6, seed=2).split("\n")
    text = "\n".join(lines + lines[:4])
    assert _reason(GopherRepetitionFilter(), text) == "dup_line_frac"


def test_dup_line_chars() -> None:
    lines = good_text(12, seed=3).split("\n")
    long_line = " ".join(lines[:4])
    text = "\n".join([long_line, *lines[4:], long_line])
    assert _reason(GopherRepetitionFilter(), text) == "dup_line_char_frac"


def test_top_2_gram() -> None:
    text = good_text(3, seed=4) + " " + " ".join(["hello world"] * 30) + " " + good_text(3, seed=5)
    assert _reason(GopherRepetitionFilter(), text.replace("\n", " ")) == "top_2_gram"


def test_duplicated_5_grams() -> None:
    base = split_words(good_text(4, seed=6))
    # six distinct 5-grams each said three times: no single n-gram dominates
    chunks = [" ".join(base[i * 5 : i * 5 + 5]) for i in range(6)]
    text = " ".join(base[30:]) + " " + " ".join(chunks * 3)
    cfg = GopherRepetitionConfig(max_top_ngram_char_frac={})
    assert _reason(GopherRepetitionFilter(cfg), text) == "duplicated_5_n_grams"


# --- Gopher repetition: fast n-gram counts against the plain-Python reference ----------------
# The filter counts n-grams with integer ids and numpy; these are the straightforward versions
# it replaced (tuples in a Counter / a set), kept to check the decisions stay byte-identical.


def _ref_ngrams(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(words[i:] for i in range(n)), strict=False))


def _ref_top_ngram_chars(words: Sequence[str], n: int) -> int:
    counts: Counter[tuple[str, ...]] = Counter(_ref_ngrams(words, n))
    if not counts:
        return 0
    gram, count = counts.most_common(1)[0]
    return (sum(map(len, gram)) + n - 1) * count


def _ref_dup_ngram_chars(words: Sequence[str], n: int) -> int:
    grams = _ref_ngrams(words, n)
    seen: set[tuple[str, ...]] = set()
    chars = i = 0
    while i < len(grams):
        if grams[i] in seen:
            chars += sum(map(len, grams[i])) + n - 1
            i += n
        else:
            seen.add(grams[i])
            i += 1
    return chars


def _ref_duplicates(items: Sequence[str]) -> tuple[int, int]:
    seen: set[str] = set()
    n = chars = 0
    for x in items:
        if x in seen:
            n, chars = n + 1, chars + len(x)
        else:
            seen.add(x)
    return n, chars


def _ref_repetition(text: str, cfg: GopherRepetitionConfig) -> str | None:
    """The filter's decision computed the slow way (regex splits, tuple n-grams)."""
    n_chars = len(text)
    if n_chars == 0:
        return None
    paragraphs = re.split(r"\n{2,}", text.strip())
    n_dup, dup_chars = _ref_duplicates(paragraphs)
    if n_dup / len(paragraphs) > cfg.max_dup_para_frac:
        return "dup_para_frac"
    if dup_chars / n_chars > cfg.max_dup_para_char_frac:
        return "dup_para_char_frac"
    lines = re.split(r"\n+", text.strip())
    n_dup, dup_chars = _ref_duplicates(lines)
    if n_dup / len(lines) > cfg.max_dup_line_frac:
        return "dup_line_frac"
    if dup_chars / n_chars > cfg.max_dup_line_char_frac:
        return "dup_line_char_frac"
    words = _WORD_TOKEN_RE.findall(text)
    for n, limit in cfg.max_top_ngram_char_frac.items():
        if _ref_top_ngram_chars(words, n) / n_chars > limit:
            return f"top_{n}_gram"
    for n, limit in cfg.max_dup_ngram_char_frac.items():
        if _ref_dup_ngram_chars(words, n) / n_chars > limit:
            return f"duplicated_{n}_n_grams"
    return None


# Words of different lengths, so tied n-grams differ in characters (tie-breaking matters).
_TINY_VOCAB = ["a", "bb", "ccc", "dddd", "e"]


def _assert_ngrams_match(words: list[str]) -> None:
    grams = _RepeatedNgrams(words)
    for n in range(1, 13):
        assert grams.top_chars(n) == _ref_top_ngram_chars(words, n), ("top", n)
        assert grams.dup_chars(n) == _ref_dup_ngram_chars(words, n), ("dup", n)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_TINY_VOCAB[:3]), max_size=120))
def test_ngram_counts_match_reference_tiny_vocab(words: list[str]) -> None:
    _assert_ngrams_match(words)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_TINY_VOCAB), max_size=120), st.integers(1, 5))
def test_ngram_counts_match_reference_vocab_sizes(words: list[str], vocab: int) -> None:
    # Fold the words onto the first ``vocab`` words: from 1 word (one long repeat) to 5.
    _assert_ngrams_match([_TINY_VOCAB[_TINY_VOCAB.index(w) % vocab] for w in words])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(_TINY_VOCAB), min_size=1, max_size=15), st.integers(1, 6)
        ),
        min_size=1,
        max_size=60,
    )
)
def test_ngram_counts_match_reference_long_docs(blocks: list[tuple[list[str], int]]) -> None:
    # Long documents made of repeated blocks: long repeated n-grams, overlapping skips.
    words = [w for block, times in blocks for _ in range(times) for w in block]
    _assert_ngrams_match(words)


@pytest.mark.parametrize("seed", range(3))
def test_ngram_counts_match_reference_real_words(seed: int) -> None:
    # Prose-like text with repeated sentences: thousands of words, the numpy-sized levels.
    rng = random.Random(seed)
    sentences = [split_words(good_text(1, seed=seed * 100 + i)) for i in range(40)]
    words = [w for _ in range(300) for w in rng.choice(sentences)[: rng.randint(3, 16)]]
    _assert_ngrams_match(words)


def test_ngram_ties_go_to_the_first_ngram() -> None:
    # "ccc ccc" and "a a" both occur twice; the one seen first decides the length.
    assert _RepeatedNgrams(["ccc", "ccc", "x", "a", "a"] * 2).top_chars(2) == 2 * 7
    assert _RepeatedNgrams(["a", "a", "x", "ccc", "ccc"] * 2).top_chars(2) == 2 * 3


def test_ngram_counts_short_docs() -> None:
    for words in ([], ["a"], ["a", "a"], ["a", "b", "a", "b"]):
        _assert_ngrams_match(words)


_LINES_ALPHABET = st.sampled_from(["a", "bb", " ", "\n", "\n", "\n\n", "\t"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINES_ALPHABET, max_size=40).map("".join))
def test_paragraph_and_line_split_match_regex(text: str) -> None:
    stripped = text.strip()
    assert _paragraphs(stripped) == re.split(r"\n{2,}", stripped)
    assert _lines(stripped) == re.split(r"\n+", stripped)
    assert _duplicates(_lines(stripped)) == _ref_duplicates(re.split(r"\n+", stripped))


_RULES_OFF = {
    "max_dup_line_frac": 1,
    "max_dup_para_frac": 1,
    "max_dup_line_char_frac": 1,
    "max_dup_para_char_frac": 1,
}
_DECISION_CONFIGS = [
    GopherRepetitionConfig(),  # FineWeb's: mostly line/paragraph and top-n-gram decisions
    GopherRepetitionConfig(  # top n-gram rules only, n = 1 included
        **_RULES_OFF,
        max_top_ngram_char_frac={1: 0.5, 2: 0.4, 3: 0.3},
        max_dup_ngram_char_frac={},
    ),
    GopherRepetitionConfig(  # duplicated n-gram rules only, up to n = 12
        **_RULES_OFF,
        max_top_ngram_char_frac={},
        max_dup_ngram_char_frac={4: 0.5, 5: 0.4, 7: 0.3, 12: 0.2},
    ),
]
_PIECES = st.sampled_from(["a ", "bb ", "ccc ", "dddd ", "a\n", "\n\n", ". "])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(_PIECES, min_size=1, max_size=12).map("".join), st.integers(1, 4)),
        max_size=8,
    )
)
def test_repetition_decisions_match_reference(blocks: list[tuple[str, int]]) -> None:
    # Blocks said 1-4 times: repeated lines, paragraphs and n-grams of every length.
    text = "".join(block * times for block, times in blocks)
    for cfg in _DECISION_CONFIGS:
        assert _reason(GopherRepetitionFilter(cfg), text) == _ref_repetition(text, cfg)


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(max_codepoint=127)))
def test_split_words_ascii_fast_path(text: str) -> None:
    assert split_words(text) == _WORD_TOKEN_RE.findall(text)


# --- Gopher quality ---------------------------------------------------------------------------


def test_short_and_long_docs() -> None:
    assert _reason(GopherQualityFilter(), "Only a few words with the end.") == "gopher_short_doc"
    assert _reason(GopherQualityFilter(), "") == "gopher_short_doc"
    g = GopherQualityFilter(GopherQualityConfig(max_words=60))
    assert _reason(g, good_text(12)) == "gopher_long_doc"


def test_word_length_bounds() -> None:
    short = " ".join(["a of to"] * 40) + " the and."
    assert _reason(GopherQualityFilter(), short) == "gopher_below_avg_word_length"
    long = " ".join(["extraordinarily incomprehensibilities"] * 40) + " the and with."
    assert _reason(GopherQualityFilter(), long) == "gopher_above_avg_word_length"


def test_hashes_and_ellipsis() -> None:
    assert _reason(GopherQualityFilter(), good_text() + " #tag" * 30) == "gopher_too_many_hashes"
    assert (
        _reason(GopherQualityFilter(), good_text() + " and so on..." * 30)
        == "gopher_too_many_ellipsis"
    )


def test_bullets_and_end_ellipsis() -> None:
    lines = good_text(12).split("\n")
    bullets = "\n".join("• " + s for s in lines)
    assert _reason(GopherQualityFilter(), bullets) == "gopher_too_many_bullets"
    cfg = GopherQualityConfig(max_symbol_word_ratio=1.0)
    ell = "\n".join(s[:-1] + "…" if i % 2 else s for i, s in enumerate(lines))
    assert _reason(GopherQualityFilter(cfg), ell) == "gopher_too_many_end_ellipsis"


def test_alpha_ratio() -> None:
    text = good_text(6) + " " + " ".join(str(1000 + i) for i in range(80))
    assert _reason(GopherQualityFilter(), text) == "gopher_below_alpha_threshold"


def test_stop_words_english_only_by_default() -> None:
    text = " ".join(random.Random(1).choice(_VOCAB) for _ in range(120)) + "."
    assert _reason(GopherQualityFilter(), text, "en") == "gopher_too_few_stop_words"
    assert _reason(GopherQualityFilter(), text, "de") is None
    # unknown language falls back to the stage's language
    assert _reason(GopherQualityFilter(), text, None) == "gopher_too_few_stop_words"
    assert _reason(GopherQualityFilter(language="fr"), text, None) is None
    every = GopherQualityFilter(GopherQualityConfig(stop_words_languages=None))
    assert _reason(every, text, "de") == "gopher_too_few_stop_words"


def test_chinese_and_japanese_do_not_crash_and_can_pass() -> None:
    zh = "".join("我们今天在城市的图书馆里读了很多有意思的书。" for _ in range(3)) + "\n"
    zh += "这是一个关于历史和科学的长篇文章，内容丰富。天气很好，我们去了公园散步。"
    words = split_words(zh)
    assert "我" in words and all(len(w) == 1 for w in words if not w.isascii())
    assert _reason(GopherQualityFilter(), zh, "zh") is None
    ja = "今日はとても良い天気ですね。私は図書館で本を読みました。" * 5
    for stage in ALL_STAGES:
        stage.process(_doc(ja, "ja"))


# --- C4 ---------------------------------------------------------------------------------------


def test_c4_removes_lines_and_returns_changed_doc() -> None:
    text = good_text(8)
    noisy = (
        "Menu\n"
        + text
        + "\nPlease enable JavaScript to view the comments.\n"
        + "This site uses cookies to improve your experience.\nRead our privacy policy here now.\n"
        + "Citation here[12] and more words.[citation needed]\n"
    )
    stage = C4Filter()
    out = stage.process(_doc(noisy))
    assert isinstance(out, Document)
    assert out.text == text + "\nCitation here and more words."
    assert stage.counters == {
        "lines_removed:few_words": 1,
        "lines_removed:javascript": 1,
        "lines_removed:policy": 2,
    }
    assert out.metadata == {}


def test_c4_document_rules() -> None:
    assert _reason(C4Filter(), good_text() + "\nLorem ipsum dolor sit amet.") == "c4_lorem_ipsum"
    assert _reason(C4Filter(), good_text() + "\nfunction f() { return 1; }") == "c4_curly_bracket"
    assert _reason(C4Filter(), good_text(4)) == "c4_too_few_sentences"
    # a curly bracket in a line removed for other reasons does not drop the page
    assert _reason(C4Filter(), good_text() + "\n{x}") is None


def test_c4_terminal_punct_switch() -> None:
    text = good_text(8) + "\nA line without an end mark"
    assert C4Filter().process(_doc(text)).text.endswith("an end mark")  # FineWeb: off
    on = C4Filter(C4Config(filter_no_terminal_punct=True)).process(_doc(text))
    assert on.text == good_text(8)


def test_count_sentences() -> None:
    assert count_sentences("One. Two! Three? four") == 4
    assert count_sentences("no punctuation at all") == 1
    assert count_sentences("...") == 0
    assert count_sentences("我们去了。然后回家了。") == 2


# --- FineWeb ----------------------------------------------------------------------------------


def test_fineweb_line_punct_ratio() -> None:
    text = "\n".join(s.rstrip(".") for s in good_text(12).split("\n"))
    assert _reason(FineWebQualityFilter(), text) == "fineweb_line_punct_ratio"
    keep_zero = FineWebQualityFilter(FineWebQualityConfig(line_punct_exclude_zero=True))
    assert _reason(keep_zero, text) is None


def test_fineweb_short_lines() -> None:
    text = good_text(4) + "\n" + "\n".join(f"Item {i} is here." for i in range(10))
    assert _reason(FineWebQualityFilter(), text) == "fineweb_short_line_ratio"


def test_fineweb_char_dup_ratio() -> None:
    lines = good_text(30).split("\n")
    text = "\n".join([*lines, lines[3]])
    assert _reason(FineWebQualityFilter(), text) == "fineweb_char_dup_ratio"


def test_fineweb_list_ratio() -> None:
    cfg = FineWebQualityConfig(max_short_line_chars=0)
    text = "\n".join(f"Entry {chr(65 + i % 26)}{i}." for i in range(40))
    assert _reason(FineWebQualityFilter(cfg), text) == "fineweb_list_ratio"


# --- robustness -------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400), st.sampled_from(["en", "zh", "de", None]))
def test_stages_never_raise(text: str, language: str | None) -> None:
    for stage in ALL_STAGES:
        out = stage.process(_doc(text, language))
        assert isinstance(out, Document | Reject)
        if isinstance(out, Reject):
            assert out.reason in stage.REASONS


def test_stages_are_linear_enough_on_large_docs() -> None:
    import time

    text = good_text(3000, seed=9)  # ~250 KB
    start = time.perf_counter()
    for stage in ALL_STAGES:
        stage.process(_doc(text))
    assert time.perf_counter() - start < 5.0


def test_blank_lines_between_paragraphs_are_not_duplicates() -> None:
    paras = "\n\n".join(good_text(2, seed=20 + i) for i in range(6))
    assert _reason(GopherRepetitionFilter(), paras) is None
    assert _reason(FineWebQualityFilter(), paras) is None
    assert _reason(FineWebQualityFilter(), "\n \n") == "fineweb_empty"


def test_has_alpha_is_any_isalpha_for_every_character() -> None:
    """The regex shortcut of the alpha-words rule agrees with str.isalpha on all of Unicode."""
    from dataproc.stages.quality import _has_alpha

    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        assert _has_alpha(c) == c.isalpha(), hex(cp)
    # A numeric that is not a letter first, a letter later: still found.
    assert _has_alpha("²a") and _has_alpha("½ⅻb") and not _has_alpha("²½_9")


def test_doc_words_is_split_words_cached_per_document() -> None:
    a = Document(id="a", url="http://a/", source="s", text="Hello, wörld: 3 words")
    b = Document(id="b", url="http://b/", source="s", text="".join(["other ", "text"]))
    assert doc_words(a) == tuple(split_words(a.text))
    assert doc_words(b) == ("other", "text")
    assert doc_words(a) is doc_words(a)  # another document's split does not evict it
    assert doc_words(b) is doc_words(b)
    a.text = "a new text"  # a stage rewrote it (C4): split again
    assert doc_words(a) == ("a", "new", "text")
    assert a == Document(id="a", url="http://a/", source="s", text="a new text")  # not a value


# -- n-gram fractions stay within [0, 1] (issue 13, item 12) -----------------------------------

# CJK, kana, Thai (no spaces between words), Latin words, spaces, newlines and punctuation.
_MIXED_PIECES = st.sampled_from(
    ["哈", "你好", "。", "の", "ですね", "สวัสดี", "ครับ", "a", "bb ", "ccc ", " ", "\n", ", ", "好 "]
)


def _fractions(text: str) -> list[float]:
    grams = _RepeatedNgrams(split_words(text))
    whole = ngram_denominator(len(text), grams)
    out = []
    for n in range(1, 13):
        out.append(grams.dup_chars(n) / whole)
        out.append(min(1.0, grams.top_chars(n) / whole))
    return out


def test_duplicated_ngram_fraction_on_repetitive_cjk_is_at_most_one() -> None:
    text = "哈" * 2000  # before: duplicated 5-gram fraction 1.8 (5 chars + 4 "spaces" per 5)
    grams = _RepeatedNgrams(split_words(text))
    frac = grams.dup_chars(5) / ngram_denominator(len(text), grams)
    # 9 of every 10 joined characters (the space between two n-grams is in neither), the
    # same as for "a a a a ..." in English.
    assert 0.85 < frac <= 1.0
    # Only the duplicated-n-gram rule, as in the issue: its reported fraction is <= 1.
    cfg = GopherRepetitionConfig(**_RULES_OFF, max_top_ngram_char_frac={})
    reject = GopherRepetitionFilter(cfg).process(Document(id="x", url="u", source="s", text=text))
    assert isinstance(reject, Reject) and reject.reason == "duplicated_5_n_grams"
    assert 0.85 < float(reject.detail.split()[0]) <= 1.0


def test_english_fractions_are_unchanged_by_the_bound() -> None:
    # Space-separated text: the denominator is the document's length, as in Gopher/datatrove.
    text = "the cat sat on the mat. " * 30
    grams = _RepeatedNgrams(split_words(text))
    assert ngram_denominator(len(text), grams) == len(text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(_MIXED_PIECES, min_size=1, max_size=12).map("".join), st.integers(1, 6)),
        max_size=10,
    )
)
def test_ngram_fractions_stay_within_zero_and_one(blocks: list[tuple[str, int]]) -> None:
    text = "".join(block * times for block, times in blocks)
    for frac in _fractions(text):
        assert 0.0 <= frac <= 1.0, (frac, text)
