"""Decontamination: eval-set n-grams keep benchmark text out (verbatim, edited, absent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dataproc.decontam.index import DecontamIndex, build_index
from dataproc.decontam.ngrams import gram_hashes, normalized_words, word_hashes
from dataproc.document import Document, Reject
from dataproc.stages.decontaminate import DecontamConfig, Decontaminator, EvalSetConfig

PAGE = (
    "The mill town grew along the river in the eighteen forties, when the first looms "
    "arrived by canal boat from the coast and the workers built their terraced houses on "
    "the slope above the weir. By the turn of the century the population had tripled and "
    "the chapel, the school and the cooperative store stood where the orchards had been."
)
QUESTION = (
    "By the turn of the century the population had tripled and the chapel, the school "
    "and the cooperative store stood where the orchards had been."
)


def _words(text: str) -> list[str]:
    return text.split()


def _edit_every(text: str, k: int) -> str:
    w = _words(text)
    return " ".join("zzz" if i % k == k - 1 else x for i, x in enumerate(w))


def _write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


def _stage(tmp_path: Path, items: list[str], **kw: object) -> Decontaminator:
    evals = _write_jsonl(tmp_path / "eval.jsonl", [{"question": q} for q in items])
    cfg = DecontamConfig(
        sets=[EvalSetConfig(name="townqa", path=str(evals), field="question")],
        index=str(tmp_path / "idx"),
        **kw,  # type: ignore[arg-type]
    )
    build_index(cfg, str(tmp_path / "idx"))
    stage = Decontaminator(cfg)
    stage.setup()
    return stage


def _verdict(stage: Decontaminator, text: str) -> str:
    r = stage.process(Document(id="d", url="u", source="s", text=text))
    return r.reason if isinstance(r, Reject) else "kept"


def test_normalization_ignores_case_punctuation_and_width() -> None:
    a = normalized_words("The CHAPEL, the school; and ＴＨＥ store!")
    assert a == ["the", "chapel", "the", "school", "and", "the", "store"]
    h = gram_hashes(word_hashes(a), 3)
    assert h.size == 5 and len(set(h.tolist())) == 5
    # Different lengths of the same words never collide (length salt).
    assert gram_hashes(word_hashes(a[:3]), 3)[0] != gram_hashes(word_hashes([*a[:3], "x"]), 4)[0]


@pytest.mark.parametrize(
    ("page", "want"),
    [
        (PAGE, "contamination:townqa"),  # the item appears verbatim
        (PAGE.upper().replace(",", " ;"), "contamination:townqa"),  # case and punctuation
        (PAGE.replace("tripled", "doubled"), "contamination:townqa"),  # 13 untouched words remain
        (_edit_every(PAGE, 6), "kept"),  # every sixth word changed: no 13-gram survives
        ("A page about something else entirely, " * 20, "kept"),
    ],
)
def test_verbatim_edited_and_absent(tmp_path: Path, page: str, want: str) -> None:
    assert _verdict(_stage(tmp_path, [QUESTION]), page) == want


def test_short_items_match_whole(tmp_path: Path) -> None:
    stage = _stage(tmp_path, ["What did the workers build above the weir?", "Too short."])
    index = stage._index
    assert isinstance(index, DecontamIndex)
    assert index.meta["sets"][0]["items_too_short"] == 1
    assert _verdict(stage, "Quiz: what did the workers build above the weir? Houses.") != "kept"
    assert _verdict(stage, "Too short. " * 40) == "kept"


def test_cut_mode_removes_only_the_overlap(tmp_path: Path) -> None:
    stage = _stage(tmp_path, [QUESTION], mode="cut", min_chars_after_cut=20)
    d = Document(id="d", url="u", source="s", text=PAGE)
    r = stage.process(d)
    assert isinstance(r, Document)
    assert "orchards" not in r.text and "cooperative" not in r.text
    assert r.text.startswith("The mill town grew along the river")
    assert stage.counters == {"cut:townqa": 1}  # count() of a stage called directly


def test_missing_field_is_a_clear_error(tmp_path: Path) -> None:
    from dataproc.errors import InputError

    evals = _write_jsonl(tmp_path / "e.jsonl", [{"prompt": "x"}])
    cfg = DecontamConfig(sets=[EvalSetConfig(name="e", path=str(evals))])
    with pytest.raises(InputError, match="no field 'text'"):
        build_index(cfg, str(tmp_path / "idx"))


def test_first_set_owns_a_shared_ngram(tmp_path: Path) -> None:
    a = _write_jsonl(tmp_path / "a.jsonl", [{"text": QUESTION}])
    b = _write_jsonl(tmp_path / "b.jsonl", [{"text": QUESTION}])
    cfg = DecontamConfig(
        sets=[EvalSetConfig(name="a", path=str(a)), EvalSetConfig(name="b", path=str(b))]
    )
    meta = build_index(cfg, str(tmp_path / "idx"))
    idx = DecontamIndex(str(tmp_path / "idx"))
    assert meta["keys"] == idx.keys.size and set(np.unique(idx.sets).tolist()) == {0}


# -- the whole pipeline: certificate in the manifest, checked by verify ------------------


@pytest.mark.ray
def test_pipeline_certificate_and_verify(ray_cluster, tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    from _crawl_fixtures import _html, _page_texts
    from warc_builder import WarcBuilder

    from dataproc.config import build_config
    from dataproc.runner.driver import run_pipeline
    from dataproc.verify import verify_output

    texts = _page_texts()[:6]
    b = WarcBuilder().warcinfo(is_part_of="CC-MAIN-2024-22")
    for k, (stem, text) in enumerate(texts):
        b.response(f"https://site.example/{stem}-{k}", _html(stem, text))
    warc = b.write(tmp_path / "pages.warc.gz")
    # Item 0 quotes page 0 verbatim, item 1 is page 1 lightly edited, item 2 is unrelated.
    quote0 = " ".join(texts[0][1].split()[20:60])
    words1 = texts[1][1].split()[30:70]
    words1[5] = "CHANGED"
    items = [
        {"q": quote0},
        {"q": " ".join(words1)},
        {"q": "An unrelated benchmark question about prime numbers and their gaps"},
    ]
    evals = _write_jsonl(tmp_path / "evals.jsonl", items)
    out = tmp_path / "out"
    config = build_config(
        {
            "inputs": [str(warc)],
            "output": str(out),
            "decontaminate": {"sets": [{"name": "quiz", "path": str(evals), "field": "q"}]},
            "execution": {"progress": "none"},
        }
    )
    result = run_pipeline(config)
    assert result.ok, result.failures
    rej = pq.read_table(out / "rejects" / "000000-filter.parquet").to_pylist()
    removed = sorted(r["url"] for r in rej if r["stage"] == "decontaminate")
    stems = [f"https://site.example/{texts[k][0]}-{k}" for k in (0, 1)]
    assert removed == sorted(stems)
    manifest = json.loads((out / "manifest.json").read_text())
    cert = manifest["decontamination"]
    assert cert["ngram"] == 13 and cert["sets"][0]["documents_removed"] == 2
    assert cert["sets"][0]["items"] == 3 and cert["sets"][0]["sha256"]
    assert manifest["consent"]["robots"] is None  # no --robots: page signals only
    ok = verify_output(str(out))
    assert ok.ok, ok.problems
    assert any("quiz" in line for line in ok.checked["certificates"])
    # Tampering with the eval file breaks the certificate.
    evals.write_text(evals.read_text() + json.dumps({"q": "one more item"}) + "\n")
    bad = verify_output(str(out))
    assert not bad.ok and any("eval file changed" in p for p in bad.problems)


def test_fast_word_split_equals_the_span_split() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from dataproc.decontam.ngrams import words_with_spans

    @settings(max_examples=800, deadline=None, database=None)
    @given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
    def check(text: str) -> None:
        assert normalized_words(text) == words_with_spans(text)[0]

    check()
    assert (
        normalized_words("İstanbul ＴＨＥ Straße") == words_with_spans("İstanbul ＴＨＥ Straße")[0]
    )


def test_lookup_filter_never_hides_a_key(tmp_path: Path) -> None:
    stage = _stage(tmp_path, [QUESTION, PAGE])
    index = stage._index
    assert isinstance(index, DecontamIndex)
    got = index.lookup(index.keys.copy())
    assert (got >= 0).all()
    rng = np.random.default_rng(0)
    assert (
        index.lookup(rng.integers(0, 2**63, size=10000, dtype=np.int64).astype(np.uint64)) < 0
    ).all()
