"""Quality heuristics: Gopher repetition, Gopher quality, C4 and FineWeb rules.

Four stages, each switchable and tunable in its own sub-section of ``QualityConfig``. Defaults
are FineWeb's: the thresholds of datatrove's ``GopherRepetitionFilter``, ``GopherQualityFilter``,
``C4QualityFilter(filter_no_terminal_punct=False)`` and ``FineWebQualityFilter`` as used in
FineWeb's ``process_common_crawl_dump.py``; the Gopher numbers come from Rae et al. 2021,
"Scaling Language Models: Methods, Analysis & Insights from Training Gopher", Table A1 and
Appendix A.1.1 (https://arxiv.org/abs/2112.11446); the C4 rules from Raffel et al. 2020 §2.2
(https://jmlr.org/papers/v21/20-074.html). The code is ours.

Words come from ``text_utils.split_words`` (NLTK-like: punctuation is not a word; scripts
without spaces are split per character). Two language-aware choices, both documented in the
config: the stop-word rule only applies to documents whose language is in
``gopher_quality.stop_words_languages`` (default English only, because the stop-word list is
English), and the mean-word-length rule is skipped for languages written without spaces
(``text_utils.SPACELESS_LANGUAGES``), where a "word" is a character.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from itertools import accumulate
from typing import ClassVar

import numpy as np
from pydantic import Field, field_validator

from dataproc.configbase import StrictModel
from dataproc.document import Document, Reject
from dataproc.stages.base import Stage
from dataproc.stages.text_utils import SPACELESS_LANGUAGES, base_language, doc_words, split_words

# ----------------------------------------------------------------------------------------------
# Configs
# ----------------------------------------------------------------------------------------------


class GopherRepetitionConfig(StrictModel):
    """Gopher repetition rules (Rae et al. 2021, Table A1; datatrove GopherRepetitionFilter)."""

    enabled: bool = Field(True, description="Run the Gopher repetition filter.")
    max_dup_line_frac: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Max fraction of lines that repeat an earlier line (Gopher: 0.30).",
    )
    max_dup_para_frac: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Max fraction of paragraphs (split on blank lines) repeating an earlier one (Gopher: 0.30).",
    )
    max_dup_line_char_frac: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Max fraction of characters in repeated lines (Gopher: 0.20).",
    )
    max_dup_para_char_frac: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Max fraction of characters in repeated paragraphs (Gopher: 0.20).",
    )
    max_top_ngram_char_frac: dict[int, float] = Field(
        default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16},
        description="n → max fraction of characters covered by the most frequent word n-gram "
        "(Gopher: 2→0.20, 3→0.18, 4→0.16).",
    )
    max_dup_ngram_char_frac: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        description="n → max fraction of characters in word n-grams that occur more than once "
        "(Gopher: 5→0.15, 6→0.14, 7→0.13, 8→0.12, 9→0.11, 10→0.10).",
    )

    @field_validator("max_top_ngram_char_frac", "max_dup_ngram_char_frac")
    @classmethod
    def _check_ngrams(cls, v: dict[int, float]) -> dict[int, float]:
        for n, frac in v.items():
            if not 1 <= n <= 20:
                raise ValueError(f"n-gram size {n} must be between 1 and 20")
            if not 0 <= frac <= 1:
                raise ValueError(f"fraction {frac} for {n}-grams must be between 0 and 1")
        return dict(sorted(v.items()))


class GopherQualityConfig(StrictModel):
    """Gopher quality rules (Rae et al. 2021, A.1.1; datatrove GopherQualityFilter defaults)."""

    enabled: bool = Field(True, description="Run the Gopher quality filter.")
    min_words: int = Field(50, ge=0, description="Min words per document (Gopher: 50).")
    max_words: int = Field(100_000, ge=1, description="Max words per document (Gopher: 100,000).")
    min_mean_word_length: float = Field(
        3,
        ge=0,
        description="Min mean word length in characters (Gopher: 3). Skipped for spaceless scripts.",
    )
    max_mean_word_length: float = Field(
        10,
        ge=0,
        description="Max mean word length in characters (Gopher: 10). Skipped for spaceless scripts.",
    )
    max_symbol_word_ratio: float = Field(
        0.1,
        ge=0,
        description="Max ratio of `#` symbols, and separately of ellipses (`...`, `…`), to words (Gopher: 0.1).",
    )
    max_bullet_lines_ratio: float = Field(
        0.9,
        ge=0,
        le=1,
        description="Max fraction of lines starting with a bullet (`•`, `-`, `*`) (Gopher: 0.9).",
    )
    max_ellipsis_lines_ratio: float = Field(
        0.3, ge=0, le=1, description="Max fraction of lines ending with an ellipsis (Gopher: 0.3)."
    )
    min_alpha_words_ratio: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Min fraction of words containing an alphabetic character (Gopher: 80%).",
    )
    min_stop_words: int = Field(
        2,
        ge=0,
        description="Min occurrences of stop words (Gopher: 2 of the, be, to, of, and, that, have, with).",
    )
    stop_words: list[str] = Field(
        default_factory=lambda: ["the", "be", "to", "of", "and", "that", "have", "with"],
        description="Stop words counted (case-insensitive) by the min_stop_words rule (Gopher's list).",
    )
    stop_words_languages: list[str] | None = Field(
        default_factory=lambda: ["en"],
        description="Languages the stop-word rule applies to (the list is English); other "
        "documents skip it. None: apply to every document.",
    )


class C4Config(StrictModel):
    """C4 rules (Raffel et al. 2020 §2.2) with FineWeb's settings (no terminal-punct rule)."""

    enabled: bool = Field(
        True, description="Run the C4 filter (removes lines, may drop the document)."
    )
    filter_no_terminal_punct: bool = Field(
        False,
        description="Remove lines not ending in terminal punctuation (C4: on; FineWeb turns it off).",
    )
    min_words_per_line: int = Field(
        3, ge=0, description="Remove lines with fewer words than this (C4: 3)."
    )
    max_word_length: int = Field(
        1000,
        ge=1,
        description="Remove lines holding a word longer than this many characters (C4: 1000).",
    )
    remove_citations: bool = Field(
        True,
        description="Strip Wikipedia-style citation marks (`[1]`, `[edit]`, `[citation needed]`).",
    )
    filter_javascript: bool = Field(True, description="Remove lines mentioning `javascript` (C4).")
    filter_policy: bool = Field(
        True,
        description="Remove lines with cookie / terms-of-use / privacy-policy boilerplate phrases (C4).",
    )
    filter_lorem_ipsum: bool = Field(
        True, description="Drop documents containing `lorem ipsum` (C4)."
    )
    filter_curly_bracket: bool = Field(True, description="Drop documents containing `{` (C4).")
    min_sentences: int = Field(
        5,
        ge=0,
        description="Drop documents with fewer sentences than this after line removal (C4: 5).",
    )


class FineWebQualityConfig(StrictModel):
    """FineWeb's own rules (Penedo et al. 2024; datatrove FineWebQualityFilter defaults)."""

    enabled: bool = Field(True, description="Run the FineWeb quality filter.")
    min_line_punct_ratio: float = Field(
        0.12,
        ge=0,
        le=1,
        description="Drop if the fraction of lines ending in . ' \" ! ? is at or below this (FineWeb: 0.12).",
    )
    line_punct_exclude_zero: bool = Field(
        False, description="Keep documents where no line ends in punctuation (FineWeb: False)."
    )
    max_short_line_ratio: float = Field(
        0.67,
        ge=0,
        le=1,
        description="Drop if the fraction of short lines is at or above this (FineWeb: 0.67).",
    )
    max_short_line_chars: int = Field(
        30, ge=0, description="A line of at most this many characters is short (FineWeb: 30)."
    )
    max_char_dup_ratio: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Drop if the fraction of characters in repeated lines is at or above this (FineWeb: 0.01).",
    )
    max_newline_word_ratio: float = Field(
        0.3,
        ge=0,
        description="Drop list-like documents: newlines per word above this (FineWeb: 0.3).",
    )


class QualityConfig(StrictModel):
    """The quality rule stages, run in the order gopher_repetition, gopher_quality, c4, fineweb."""

    enabled: bool = Field(True, description="Run the quality filters (False turns all four off).")
    gopher_repetition: GopherRepetitionConfig = Field(default_factory=GopherRepetitionConfig)
    gopher_quality: GopherQualityConfig = Field(default_factory=GopherQualityConfig)
    c4: C4Config = Field(default_factory=C4Config)
    fineweb: FineWebQualityConfig = Field(default_factory=FineWebQualityConfig)


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def _duplicates(items: Sequence[str]) -> tuple[int, int]:
    """(number of items equal to an earlier one, their total characters)."""
    # Every item beyond the first copy of its value is a duplicate, so both numbers are
    # totals minus the distinct values' totals (C-level set and sum instead of a Python loop).
    distinct = set(items)
    return len(items) - len(distinct), sum(map(len, items)) - sum(map(len, distinct))


def _paragraphs(stripped: str) -> list[str]:
    """``re.split(r"\n{2,}", stripped)`` for stripped text, via the faster ``str.split``."""
    pieces = stripped.split("\n\n")
    if "\n\n\n" not in stripped:
        return pieces  # every separator is exactly "\n\n": the same split
    # In a run of k >= 3 newlines str.split leaves k//2 - 1 empty pieces and, for odd k, one
    # "\n" at the start of the next piece; a piece never ends with "\n" (it would have split).
    return [p.lstrip("\n") for p in pieces if p] or [""]


def _lines(stripped: str) -> list[str]:
    """``re.split(r"\n+", stripped)`` for stripped text, via the faster ``str.split``."""
    pieces = stripped.split("\n")
    if "\n\n" not in stripped:
        return pieces
    # Empty pieces are the gaps inside newline runs; stripped text has none at either end.
    return [p for p in pieces if p] or [""]


# A character that may be a letter: word characters minus decimal digits and "_". It also
# matches the few non-decimal numerics (superscripts, fractions, Roman numerals), which
# _has_alpha then checks with str.isalpha, so the result is exactly "any(c.isalpha())".
_MAYBE_ALPHA_RE = re.compile(r"[^\W\d_]")


def _has_alpha(word: str) -> bool:
    """``any(c.isalpha() for c in word)``, at regex speed for the common case."""
    m = _MAYBE_ALPHA_RE.search(word)
    if m is None:
        return False
    return m.group().isalpha() or any(c.isalpha() for c in word)


def _dense_ids(keys: np.ndarray) -> np.ndarray:
    """Ids 0..k-1 of the distinct values of ``keys``, in value order (``np.unique``'s inverse)."""
    # np.unique does the same sort plus bookkeeping not needed here, at a higher fixed cost
    # (most levels hold a few hundred n-grams, so per-call costs matter).
    order = keys.argsort()
    ordered = keys[order]
    starts = np.empty(len(keys), np.int64)
    starts[:1] = 0
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    ids = np.empty(len(keys), np.int64)
    ids[order] = starts.cumsum()
    return ids


class _RepeatedNgrams:
    """Word n-grams of one document, counted level by level with exact integer ids.

    Words get integer ids once; an n-gram's id is its (n-1)-gram prefix's id combined with its
    last word's id (``prefix * K + word``, exact since both are < K), made dense again by
    sorting. An n-gram can repeat only if the (n-1)-grams at its position and the next one
    both repeat, so each level only looks at those "candidate" positions, and once a level
    has no repeats no longer n-gram has any.
    """

    def __init__(self, words: Sequence[str]) -> None:
        self.words = words
        n_words = len(words)
        index = dict(zip(words, range(n_words), strict=False))  # word -> its last position
        self._word_ids = np.fromiter(map(index.__getitem__, words), np.int64, n_words)
        self._base = n_words + 1  # > every word id and every dense n-gram id
        # n -> (candidate positions in text order, their n-gram ids, occurrences per id).
        # Every occurrence of a repeated n-gram is a candidate, so its count is exact.
        self._levels: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._repeated: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # n -> (positions, ids)
        self._cum_len_list: list[int] | None = None

    def _level(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if n not in self._levels:
            if n == 1:
                positions = np.arange(len(self._word_ids))
                ids = self._word_ids  # last positions: not dense but < K, which is enough
            else:
                prev_pos, prev_ids = self.repeated(n - 1)
                pair = prev_pos[1:] == prev_pos[:-1] + 1
                positions = prev_pos[:-1][pair]
                last_word = self._word_ids[positions + (n - 1)]
                ids = _dense_ids(prev_ids[:-1][pair] * self._base + last_word)
            self._levels[n] = (positions, ids, np.bincount(ids))
        return self._levels[n]

    def repeated(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions, ids) of the n-grams occurring more than once, in text order."""
        if n not in self._repeated:
            if n > 1 and len(self.repeated(n - 1)[0]) < 2:
                empty = np.zeros(0, np.int64)
                self._repeated[n] = (empty, empty)  # no two repeats at n-1: no candidates
            else:
                positions, ids, counts = self._level(n)
                keep = counts[ids] > 1
                self._repeated[n] = (positions[keep], ids[keep])
        return self._repeated[n]

    def joined_chars(self) -> int:
        """Length of the words joined by single spaces: the text the n-gram counts measure."""
        return self._cum_len()[-1] + max(len(self.words) - 1, 0)

    def _cum_len(self) -> list[int]:
        """``cum_len[i]``: total length of the first ``i`` words (built on first use)."""
        if self._cum_len_list is None:
            self._cum_len_list = [0, *accumulate(map(len, self.words))]
        return self._cum_len_list

    def top_chars(self, n: int) -> int:
        """Characters covered by the most frequent n-gram: its length × its count (Gopher).

        Ties go to the n-gram that occurs first, as with ``Counter.most_common`` (tied
        n-grams can differ in length).
        """
        if len(self.words) < n:
            return 0
        pos, count = 0, 1  # if no n-gram repeats, the first one wins
        if len(self.repeated(n)[0]):
            positions, ids, counts = self._level(n)
            count = int(counts.max())
            # The earliest occurrence of any tied n-gram is the first occurrence of one of
            # them, and the earliest of their first occurrences.
            pos = int(positions[int((counts[ids] == count).argmax())])
        return (sum(map(len, self.words[pos : pos + n])) + n - 1) * count

    def dup_chars(self, n: int) -> int:
        """Characters in n-grams seen before, skipping ahead past each repeat (datatrove's count).

        The same greedy scan as datatrove's, over the repeated positions only: an n-gram that
        occurs once is never in ``seen``, so scanning it only moves the scan on by one.
        """
        positions, ids = self.repeated(n)
        seen: set[int] = set()
        hits: list[int] = []  # positions of the n-grams found in ``seen``
        resume = 0  # the scan's next position; repeated positions before it are skipped
        for pos, gram in zip(positions.tolist(), ids.tolist(), strict=True):
            if pos < resume:
                continue
            if gram in seen:
                hits.append(pos)
                resume = pos + n
            else:
                seen.add(gram)
                resume = pos + 1
        if not hits:
            return 0
        cum_len = self._cum_len()
        return sum(cum_len[p + n] - cum_len[p] for p in hits) + (n - 1) * len(hits)


def ngram_denominator(n_chars: int, ngrams: _RepeatedNgrams) -> int:
    """What n-gram character counts are divided by: the document's length (Gopher,
    datatrove), or the words-joined-by-spaces length when that is longer.

    N-gram characters are counted as their words joined by single spaces. In text with
    spaces or punctuation between words that joined text is never longer than the document,
    so this is the document's length, as in Gopher. In scripts written without spaces (each
    CJK or Thai character is a word) the joined text is ~2x the document, and dividing by the
    document's length gave fractions up to ~2 on repetitive text; dividing by the joined
    length keeps every fraction within [0, 1].
    """
    return max(n_chars, ngrams.joined_chars(), 1)


def _doc_language(doc: Document, default: str) -> str | None:
    return base_language(doc.language) or base_language(default)


# ----------------------------------------------------------------------------------------------
# Stages
# ----------------------------------------------------------------------------------------------


class GopherRepetitionFilter(Stage):
    """Drop documents with repeated lines, paragraphs or n-grams (Gopher, Table A1).

    Fractions are of the document's characters; n-grams are of words joined by single spaces.
    """

    name: ClassVar[str] = "gopher_repetition"
    # n-gram rules are named after their n; every n the config accepts (1..20) is listed.
    REASONS: ClassVar[tuple[str, ...]] = (
        "dup_para_frac",
        "dup_para_char_frac",
        "dup_line_frac",
        "dup_line_char_frac",
        *(f"top_{n}_gram" for n in range(1, 21)),
        *(f"duplicated_{n}_n_grams" for n in range(1, 21)),
    )

    def __init__(self, config: GopherRepetitionConfig | None = None) -> None:
        self.config = config or GopherRepetitionConfig()

    def process(self, doc: Document) -> Document | Reject:
        cfg = self.config
        text = doc.text
        n_chars = len(text)
        if n_chars == 0:
            return doc  # nothing to measure; the Gopher quality filter drops empty documents

        stripped = text.strip()
        paragraphs = _paragraphs(stripped)
        n_dup, dup_chars = _duplicates(paragraphs)
        if n_dup / len(paragraphs) > cfg.max_dup_para_frac:
            return Reject("dup_para_frac", f"{n_dup}/{len(paragraphs)} paragraphs repeated")
        if dup_chars / n_chars > cfg.max_dup_para_char_frac:
            return Reject("dup_para_char_frac", f"{dup_chars / n_chars:.3f} of chars")

        # Split on runs of newlines (as current datatrove does): blank lines are not "lines".
        lines = _lines(stripped)
        n_dup, dup_chars = _duplicates(lines)
        if n_dup / len(lines) > cfg.max_dup_line_frac:
            return Reject("dup_line_frac", f"{n_dup}/{len(lines)} lines repeated")
        if dup_chars / n_chars > cfg.max_dup_line_char_frac:
            return Reject("dup_line_char_frac", f"{dup_chars / n_chars:.3f} of chars")

        ngrams = _RepeatedNgrams(doc_words(doc))
        whole = ngram_denominator(n_chars, ngrams)
        for n, limit in cfg.max_top_ngram_char_frac.items():
            # Occurrences of the top n-gram may overlap ("ha ha ha"): a fraction caps at 1.
            frac = min(1.0, ngrams.top_chars(n) / whole)
            if frac > limit:
                return Reject(f"top_{n}_gram", f"{frac:.3f} > {limit}")
        for n, limit in cfg.max_dup_ngram_char_frac.items():
            frac = ngrams.dup_chars(n) / whole
            if frac > limit:
                return Reject(f"duplicated_{n}_n_grams", f"{frac:.3f} > {limit}")
        return doc


class GopherQualityFilter(Stage):
    """Drop documents failing Gopher's quality rules (Rae et al. 2021, A.1.1)."""

    name: ClassVar[str] = "gopher_quality"
    REASONS: ClassVar[tuple[str, ...]] = (
        "gopher_short_doc",
        "gopher_long_doc",
        "gopher_below_avg_word_length",
        "gopher_above_avg_word_length",
        "gopher_too_many_hashes",
        "gopher_too_many_ellipsis",
        "gopher_too_many_bullets",
        "gopher_too_many_end_ellipsis",
        "gopher_below_alpha_threshold",
        "gopher_too_few_stop_words",
    )

    _BULLETS = ("•", "-", "*", "●", "◦", "▪", "‣")

    def __init__(self, config: GopherQualityConfig | None = None, language: str = "en") -> None:
        self.config = config or GopherQualityConfig()
        self.language = language
        self._stop_words = frozenset(w.lower() for w in self.config.stop_words)
        langs = self.config.stop_words_languages
        self._stop_langs = None if langs is None else frozenset(base_language(x) for x in langs)

    def process(self, doc: Document) -> Document | Reject:
        cfg = self.config
        text = doc.text
        words = doc_words(doc)
        n_words = len(words)
        if n_words < cfg.min_words or n_words == 0:
            return Reject("gopher_short_doc", f"{n_words} words < {cfg.min_words}")
        if n_words > cfg.max_words:
            return Reject("gopher_long_doc", f"{n_words} words > {cfg.max_words}")

        lang = _doc_language(doc, self.language)
        if lang not in SPACELESS_LANGUAGES:
            mean_len = sum(map(len, words)) / n_words
            if mean_len < cfg.min_mean_word_length:
                return Reject("gopher_below_avg_word_length", f"{mean_len:.2f}")
            if mean_len > cfg.max_mean_word_length:
                return Reject("gopher_above_avg_word_length", f"{mean_len:.2f}")

        hashes = text.count("#") / n_words
        if hashes > cfg.max_symbol_word_ratio:
            return Reject("gopher_too_many_hashes", f"{hashes:.3f} per word")
        ellipses = (text.count("...") + text.count("…")) / n_words
        if ellipses > cfg.max_symbol_word_ratio:
            return Reject("gopher_too_many_ellipsis", f"{ellipses:.3f} per word")

        lines = text.splitlines() or [text]
        bullets = sum(1 for s in lines if s.lstrip().startswith(self._BULLETS)) / len(lines)
        if bullets > cfg.max_bullet_lines_ratio:
            return Reject("gopher_too_many_bullets", f"{bullets:.3f} of lines")
        end_ellipsis = sum(1 for s in lines if s.rstrip().endswith(("...", "…"))) / len(lines)
        if end_ellipsis > cfg.max_ellipsis_lines_ratio:
            return Reject("gopher_too_many_end_ellipsis", f"{end_ellipsis:.3f} of lines")

        alpha = sum(map(_has_alpha, words)) / n_words
        if alpha < cfg.min_alpha_words_ratio:
            return Reject("gopher_below_alpha_threshold", f"{alpha:.3f} of words")

        if cfg.min_stop_words and (self._stop_langs is None or lang in self._stop_langs):
            stops = 0
            for w in words:
                if w.lower() in self._stop_words:
                    stops += 1
                    if stops >= cfg.min_stop_words:
                        break
            if stops < cfg.min_stop_words:
                return Reject("gopher_too_few_stop_words", f"{stops} < {cfg.min_stop_words}")
        return doc


_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]", re.IGNORECASE)
_END_PUNCT = (".", "?", "!", '"', "'")
_POLICY = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
_POLICY_RE = re.compile("|".join(map(re.escape, _POLICY)))
# A sentence ends at . ! ? (also CJK 。！？) followed by whitespace or the end of the line.
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?。！？])\s+")
_WORD_CHAR = re.compile(r"\w")


def count_sentences(line: str) -> int:
    """Sentences in one line: pieces between terminal punctuation that hold a word character.

    A simple stand-in for NLTK's punkt (which C4 uses); abbreviations like "Dr." over-count.
    """
    n = 0
    for piece in _SENTENCE_SPLIT.split(line):
        # CJK text has no space after 。, so count those stops inside the piece too.
        if not _WORD_CHAR.search(piece):
            continue
        n += 1 if piece.isascii() else max(1, sum(piece.count(c) for c in "。！？"))
    return n


class C4Filter(Stage):
    """C4's line and document rules; removes lines, so it returns a changed document.

    Line rules: drop lines with a word over ``max_word_length`` chars, without terminal
    punctuation (off in FineWeb), with fewer than ``min_words_per_line`` words, mentioning
    "javascript", or with cookie/terms boilerplate. Document rules: "lorem ipsum" or "{" in a
    kept line, or fewer than ``min_sentences`` sentences left. Kept lines are stripped and
    joined with "\\n" (as in C4 and FineWeb). Removed lines are counted per rule
    (``lines_removed:<rule>``) in the documents it keeps.
    """

    name: ClassVar[str] = "c4"
    REASONS: ClassVar[tuple[str, ...]] = (
        "c4_lorem_ipsum",
        "c4_curly_bracket",
        "c4_too_few_sentences",
    )

    def __init__(self, config: C4Config | None = None) -> None:
        self.config = config or C4Config()

    def process(self, doc: Document) -> Document | Reject:
        cfg = self.config
        kept: list[str] = []
        sentences = 0
        removed: Counter[str] = Counter()
        for raw in doc.text.splitlines():
            line = raw.strip()
            if not line:
                continue
            if max(map(len, line.split()), default=0) > cfg.max_word_length:
                removed["long_word"] += 1
                continue
            n_words = len(split_words(line))  # before citations are cut, as C4 counts
            if cfg.remove_citations:
                line = _CITATION.sub("", line)
            if cfg.filter_no_terminal_punct and (
                not line.endswith(_END_PUNCT) or line.endswith("...")
            ):
                removed["no_terminal_punct"] += 1
                continue
            if n_words < cfg.min_words_per_line:
                removed["few_words"] += 1
                continue
            lower = line.lower()
            if cfg.filter_lorem_ipsum and "lorem ipsum" in lower:
                return Reject("c4_lorem_ipsum", line[:80])
            if cfg.filter_javascript and "javascript" in lower:
                removed["javascript"] += 1
                continue
            if cfg.filter_curly_bracket and "{" in line:
                return Reject("c4_curly_bracket", line[:80])
            if cfg.filter_policy and _POLICY_RE.search(lower):
                removed["policy"] += 1
                continue
            sentences += count_sentences(line)
            kept.append(line)
        if sentences < cfg.min_sentences:
            return Reject("c4_too_few_sentences", f"{sentences} < {cfg.min_sentences}")
        doc.text = "\n".join(kept).strip()
        for rule, n in removed.items():
            self.count(f"lines_removed:{rule}", n)
        return doc


class FineWebQualityFilter(Stage):
    """FineWeb's rules on line punctuation, short lines, duplicated lines and list-likeness."""

    name: ClassVar[str] = "fineweb"
    REASONS: ClassVar[tuple[str, ...]] = (
        "fineweb_line_punct_ratio",
        "fineweb_short_line_ratio",
        "fineweb_char_dup_ratio",
        "fineweb_list_ratio",
        "fineweb_empty",
    )
    _STOP_CHARS = (".", "'", '"', "!", "?", "。", "！", "？")

    def __init__(self, config: FineWebQualityConfig | None = None) -> None:
        self.config = config or FineWebQualityConfig()

    def process(self, doc: Document) -> Document | Reject:
        cfg = self.config
        text = doc.text
        # Blank lines are ignored (as in current datatrove), so the rules see the same lines
        # whether or not the C4 stage (which drops them) ran first.
        lines = [s for s in text.split("\n") if s.strip()]
        n_lines = len(lines)
        if n_lines == 0:
            return Reject("fineweb_empty", "no non-blank lines")
        ratio = sum(1 for s in lines if s.endswith(self._STOP_CHARS)) / n_lines
        if ratio <= cfg.min_line_punct_ratio and not (ratio == 0 and cfg.line_punct_exclude_zero):
            return Reject("fineweb_line_punct_ratio", f"{ratio:.3f}")
        ratio = sum(1 for s in lines if len(s) <= cfg.max_short_line_chars) / n_lines
        if ratio >= cfg.max_short_line_ratio:
            return Reject("fineweb_short_line_ratio", f"{ratio:.3f}")
        body_chars = len(text) - text.count("\n")
        if body_chars:
            ratio = _duplicates(lines)[1] / body_chars
            if ratio >= cfg.max_char_dup_ratio:
                return Reject("fineweb_char_dup_ratio", f"{ratio:.3f}")
        n_words = len(doc_words(doc))
        ratio = text.count("\n") / max(n_words, 1)
        if ratio > cfg.max_newline_word_ratio:
            return Reject("fineweb_list_ratio", f"{ratio:.3f}")
        return doc


QUALITY_STAGES = ("gopher_repetition", "gopher_quality", "c4", "fineweb")
"""The parts of the ``quality`` step, in the order it runs them."""


def quality_stage(name: str, config: QualityConfig) -> Stage | None:
    """The quality stage ``name`` with its settings; None when ``config`` switches it off."""
    if not config.enabled:
        return None
    if name == "gopher_repetition":
        rep = config.gopher_repetition
        return GopherRepetitionFilter(rep) if rep.enabled else None
    if name == "gopher_quality":
        gq = config.gopher_quality
        return GopherQualityFilter(gq) if gq.enabled else None
    if name == "c4":
        return C4Filter(config.c4) if config.c4.enabled else None
    if name == "fineweb":
        return FineWebQualityFilter(config.fineweb) if config.fineweb.enabled else None
    raise ValueError(f"no quality stage {name!r}; the quality stages are {QUALITY_STAGES}")


def quality_stages(config: QualityConfig) -> list[Stage]:
    """The enabled quality stages in the order of ``QUALITY_STAGES``."""
    return [s for name in QUALITY_STAGES if (s := quality_stage(name, config)) is not None]
