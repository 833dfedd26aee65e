"""`dataproc eval` on small generated labelled data (never the shared corpus)."""

from __future__ import annotations

import gzip
import json
import random
import tarfile
import time
from pathlib import Path

import pytest
from warc_builder import WarcBuilder

from dataproc.errors import InputError
from dataproc.eval import dedup as dedup_eval
from dataproc.eval import extraction, langid, pii
from dataproc.eval.report import dedup_tables, extraction_tables, pii_tables, table

WORDS = [
    "river",
    "mountain",
    "garden",
    "window",
    "bread",
    "coffee",
    "letter",
    "market",
    "village",
    "winter",
    "summer",
    "station",
    "teacher",
    "engine",
    "harbour",
    "forest",
    "candle",
    "mirror",
    "ladder",
    "basket",
    "pocket",
    "button",
    "thunder",
    "island",
    "orchard",
    "meadow",
    "lantern",
    "compass",
    "blanket",
    "kettle",
    "saddle",
    "anchor",
    "violin",
    "pebble",
    "feather",
    "clock",
]


def prose(seed: int, n_words: int = 180) -> str:
    """Deterministic filler text of ``n_words`` words in sentences."""
    rng = random.Random(seed)
    words = [rng.choice(WORDS) for _ in range(n_words)]
    sentences = [" ".join(words[i : i + 12]).capitalize() + "." for i in range(0, n_words, 12)]
    return " ".join(sentences)


def page(body_text: str, title: str = "A story") -> str:
    paragraphs = "".join(f"<p>{s}.</p>" for s in body_text.split(". ") if s)
    nav = "".join(f'<li><a href="/{w}">{w}</a></li>' for w in WORDS[:12])
    return (
        f"<html><head><title>{title}</title></head><body><nav><ul>{nav}</ul></nav>"
        f"<article><h1>{title}</h1>{paragraphs}</article>"
        "<footer>Copyright Example Corp. All rights reserved. Privacy. Terms.</footer>"
        "</body></html>"
    )


# ---------------------------------------------------------------------------------------
# extraction
# ---------------------------------------------------------------------------------------


def test_page_scores_bag_of_words() -> None:
    s = extraction.page_scores("The cat the dog", "the cat sat")
    # overlap: the x1 (min(2,1)), cat x1 -> 2; |pred| = 4, |gold| = 3
    assert s["precision"] == pytest.approx(2 / 4)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert extraction.page_scores("", "gold words") == {"precision": 0, "recall": 0, "f1": 0}


def test_score_pages_counts_empty_and_skips_empty_gold() -> None:
    pages = [
        extraction.GoldPage("a", "", "alpha beta"),
        extraction.GoldPage("b", "", "gamma"),
        extraction.GoldPage("c", "", "  "),
    ]
    result = extraction.score_pages(pages, ["alpha beta", "", "anything"])
    assert result["pages"] == 2 and result["skipped_empty_gold"] == 1
    assert result["empty"] == 1 and result["f1"] == pytest.approx(0.5)


def test_cleaneval_gold_markers_removed() -> None:
    gold = "URL: http://x\n<h>Title here\n<p>First &amp; second\n<l>item"
    assert extraction.clean_cleaneval_gold(gold) == "Title here\n First & second\n item"


def _scrapinghub(tmp_path: Path, n: int = 3) -> Path:
    root = tmp_path / "aeb"
    (root / "html").mkdir(parents=True)
    truth = {}
    for i in range(n):
        text = prose(i)
        (root / "html" / f"p{i}.html.gz").write_bytes(gzip.compress(page(text).encode()))
        truth[f"p{i}"] = {"articleBody": text, "url": f"http://example.com/{i}"}
    (root / "ground-truth.json").write_text(json.dumps(truth))
    return root


def _cleaneval_tar(tmp_path: Path, n: int = 2) -> Path:
    src = tmp_path / "ce"
    (src / "input").mkdir(parents=True)
    (src / "GoldStandard").mkdir()
    for i in range(n):
        text = prose(100 + i)
        (src / "input" / f"site_{i}.html").write_text(page(text))
        gold = f"URL: http://site/{i}\n<h>A story\n" + "\n".join(
            f"<p>{s}." for s in text.split(". ")
        )
        (src / "GoldStandard" / f"site_{i}.txt").write_text(gold)
    tar_path = tmp_path / "ce.tar.xz"
    with tarfile.open(tar_path, "w:xz") as tar:
        tar.add(src / "input", arcname="input")
        tar.add(src / "GoldStandard", arcname="GoldStandard")
    return tar_path


def test_evaluate_extraction_on_generated_gold(tmp_path: Path) -> None:
    result = extraction.evaluate_extraction(
        str(_scrapinghub(tmp_path)), str(_cleaneval_tar(tmp_path)), workers=1
    )
    for name, n in (("scrapinghub", 3), ("cleaneval", 2)):
        ours = result["datasets"][name]["dataproc"]
        assert ours["pages"] == n
        # The article is the whole gold: the nav/footer boilerplate must not come along.
        assert ours["precision"] > 0.9 and ours["recall"] > 0.9
        assert "trafilatura_default" in result["datasets"][name]
    assert "| scrapinghub | dataproc" in extraction_tables(result)


def test_extraction_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"ground-truth\.json"):
        extraction.load_scrapinghub(str(tmp_path))
    with pytest.raises(InputError, match="no such file"):
        extraction.load_cleaneval(str(tmp_path / "missing.tar.xz"))
    with pytest.raises(InputError, match="give --scrapinghub"):
        extraction.evaluate_extraction()


# ---------------------------------------------------------------------------------------
# langid
# ---------------------------------------------------------------------------------------

SENTENCES = {
    "en": [
        "The weather was lovely this morning, so we walked along the river to the market.",
        "She has been working at the library for more than ten years now.",
        "Please remember to bring your passport and a copy of the booking confirmation.",
    ],
    "de": [
        "Gestern Abend haben wir im Garten gegrillt und bis spät in die Nacht geredet.",
        "Der Zug nach München hat heute leider wieder eine halbe Stunde Verspätung.",
    ],
    "nb": [
        "Jeg har bodd i Bergen i mange år, og jeg liker fortsatt regnet der.",
        "Regjeringen la fram et nytt forslag om skatt på boliger i går.",
    ],
    "xh": ["Molo, unjani namhlanje? Ndiyabulela kakhulu ngoncedo lwakho."],
}


def test_evaluate_langid_maps_codes_and_sweeps(tmp_path: Path) -> None:
    for iso, lines in SENTENCES.items():
        (tmp_path / f"{iso}.txt").write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    result = langid.evaluate_langid(str(tmp_path), thresholds=(0.5, 0.99))
    assert result["languages"] == 4
    assert result["per_language"]["nb"]["label"] == "no"  # ISO nb -> lid.176 "no"
    assert result["per_language"]["en"]["accuracy"] == 1.0
    assert result["per_language"]["de"]["accuracy"] == 1.0
    assert result["unsupported"] == ["xh"]  # lid.176 has no Xhosa label
    assert result["macro_accuracy"] < result["macro_accuracy_supported"]
    assert all(w["language"] != "xh" for w in result["weakest"])
    low, high = result["threshold_sweep"]
    assert low["macro_coverage"] >= high["macro_coverage"]


def test_langid_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a folder"):
        langid.evaluate_langid(str(tmp_path / "nope"))


# ---------------------------------------------------------------------------------------
# pii
# ---------------------------------------------------------------------------------------


def _record(parts: list[tuple[str, str | None]]) -> dict[str, object]:
    text, spans = "", []
    for chunk, entity in parts:
        if entity:
            spans.append(
                {
                    "entity_type": entity,
                    "entity_value": chunk,
                    "start_position": len(text),
                    "end_position": len(text) + len(chunk),
                }
            )
        text += chunk
    return {"full_text": text, "spans": spans}


PRESIDIO = [
    _record([("Write to ", None), ("jane.doe@example.org", "EMAIL_ADDRESS"), (" today.", None)]),
    _record([("Card ", None), ("4111 1111 1111 1111", "CREDIT_CARD"), (" expires soon", None)]),
    _record([("Server at ", None), ("81.2.69.142", "IP_ADDRESS"), (" is down", None)]),
    _record([("Call me on ", None), ("(425) 882-9090", "PHONE_NUMBER"), (" please", None)]),
    _record([("Pay to ", None), ("DE89 3704 0044 0532 0130 00", "IBAN_CODE"), (".", None)]),
    # An entity we do not scrub (a name), and a card number the stage cannot know (12 digits).
    _record(
        [
            ("Ask ", None),
            ("John Smith", "PERSON"),
            (" or use ", None),
            ("630427373398", "CREDIT_CARD"),
        ]
    ),
    # Unlabelled phone-shaped number: a detection here is a false positive.
    _record([("Reach the desk at 212-555-0147 anytime.", None)]),
]


def test_score_spans_precision_recall() -> None:
    result = pii.score_spans(PRESIDIO)["per_kind"]
    assert result["email"]["recall"] == 1.0 and result["email"]["precision"] == 1.0
    assert result["iban"]["recall"] == 1.0 and result["ip"]["recall"] == 1.0
    assert result["card"]["gold"] == 2 and result["card"]["recall"] == 0.5
    assert result["card"]["recall_luhn_valid"] == 1.0  # the 12-digit one is outside 13-19
    assert result["phone"]["recall"] == 1.0
    assert result["phone"]["precision"] == 0.5  # the unlabelled number counts against it
    assert result["phone"]["false_positive_examples"] == ["212-555-0147"]


def test_coverage_rule() -> None:
    assert pii._coverage((0, 10), [(0, 5)]) == 0.5
    assert pii._coverage((0, 10), [(8, 20)]) == 0.2
    assert pii._coverage((3, 3), [(0, 10)]) == 0.0


def test_negatives_protected_shapes_untouched(tmp_path: Path) -> None:
    clean = tmp_path / "clean.txt"
    clean.write_text("Release v1.4.2.7 on 2024-03-01 costs $49.99; ISBN 978-0-596-52068-7.")
    result = pii.evaluate_pii(negatives=[str(clean)])
    neg = result["negatives"]
    assert neg["texts"] == 1 + len(pii.ADVERSARIAL)
    for shape in ("version", "date", "price", "isbn"):
        assert neg["protected"][shape]["found"] >= 2, shape
        assert neg["protected"][shape]["scrubbed"] == 0, neg["protected_scrubbed_examples"]
    assert sum(neg["detections"].values()) == 0
    assert "protected shape" in pii_tables(result)


def test_protected_patterns_linear_on_adversarial_input() -> None:
    start = time.perf_counter()
    for text in ("1." * 50_000, "$1,1" * 30_000, "9-" * 50_000, "v" + "1." * 50_000 + "x"):
        for what in pii.PROTECTED_PATTERNS:
            pii._protected_matches(what, text)
    assert time.perf_counter() - start < 5


def test_context_sentences_parsing(tmp_path: Path) -> None:
    path = tmp_path / "ctx.txt"
    path.write_text(
        "# comment\n#\nPHONE_NUMBER\nmy phone number is (425) 882-9090\n\n"
        "US_SSN\nmy ssn is 078-05-1121\n"
    )
    ctx = pii.score_context_sentences(pii.load_context_sentences(str(path)))
    assert ctx["our_kinds"] == 1 and ctx["our_kinds_detected"] == 1
    assert ctx["other_entities"] == 1


def test_presidio_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    with pytest.raises(InputError, match="full_text"):
        pii.load_presidio(str(bad))


# ---------------------------------------------------------------------------------------
# dedup
# ---------------------------------------------------------------------------------------


def _edit(text: str, n_words: int, seed: int) -> str:
    words = text.split(" ")
    rng = random.Random(seed)
    for i in rng.sample(range(len(words)), n_words):
        words[i] = "zebra"
    return " ".join(words)


def _bench(tmp_path: Path) -> tuple[Path, Path]:
    """A WARC with one cluster of copies (exact, light edit), a heavy rewrite and distinct pages."""
    base = prose(1, 400)
    pages = [
        ("a", base, 1, "original", None),
        ("b", base, 1, "exact", "a"),
        ("c", _edit(base, 2, 7), 1, "near", "a"),
        ("d", prose(2, 400), 2, "original", None),
        ("e", prose(3, 400), 3, "original", None),
        # Half the text rewritten: Jaccard far below 0.5, a different page for dedup.
        ("f", base[: len(base) // 2] + " " + prose(4, 200), 4, "original", None),
    ]
    builder = WarcBuilder()
    records, duplicates = [], []
    for n, (name, text, cluster, kind, dup_of) in enumerate(pages, start=1):
        rid = f"<urn:uuid:00000000-0000-0000-0000-{n:012d}>"
        builder.response(f"http://{name}.example.com/", page(text), record_id=rid)
        records.append({"id": rid, "cluster": cluster, "kind": kind})
        if dup_of:
            src = next(
                r["id"] for r in records if r["id"].endswith(f"{'abcdef'.index(dup_of) + 1:012d}>")
            )
            duplicates.append({"id": rid, "dup_of": src, "kind": kind})
    warc = builder.write(tmp_path / "bench.warc.gz")
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"records": records, "duplicates": duplicates}))
    return Path(warc), truth


def _near_dup_corpus(tmp_path: Path) -> Path:
    root = tmp_path / "nd"
    root.mkdir()
    src = prose(50, 300)
    (root / "orig_taska.txt").write_text(src)
    rows = ["File,Task,Category", "orig_taska.txt,a,orig"]
    variants = {
        "cut": src,
        "light": _edit(src, 3, 1),
        "heavy": _edit(src, 90, 2),
        "non": prose(51, 300),
    }
    for cat, text in variants.items():
        (root / f"x_{cat}.txt").write_text(text)
        rows.append(f"x_{cat}.txt,a,{cat}")
    (root / "file_information.csv").write_text("\n".join(rows) + "\n")
    return root


def test_evaluate_dedup_on_generated_warc(tmp_path: Path) -> None:
    warc, truth = _bench(tmp_path)
    result = dedup_eval.evaluate_dedup(
        str(warc), str(truth), str(_near_dup_corpus(tmp_path)), workers=1
    )
    w = result["warc"]
    assert w["docs_read"] == 6
    assert w["should_remove"] == 2 and w["removed"] == 2
    assert w["removal_precision"] == 1.0 and w["removal_recall"] == 1.0
    assert w["pair_precision"] == 1.0 and w["pair_recall"] == 1.0
    assert w["recall_by_kind"]["exact"]["recall"] == 1.0
    assert w["recall_by_kind"]["near"]["recall"] == 1.0
    brute = w["brute_force"]
    assert brute["pairs"] == 15  # all pairs of 6 documents
    assert brute["bins"]["J = 1.0"]["pairs"] == 1 and brute["recall_j_ge_0_8"] == 1.0
    assert brute["caught_j_lt_0_5"] == 0
    cats = result["near_dup_corpus"]["categories"]
    assert cats["cut"]["caught"] == 1 and cats["light"]["caught"] == 1
    assert cats["heavy"]["caught"] == 0 and cats["non"]["caught"] == 0
    assert (
        cats["cut"]["mean_jaccard"] > cats["light"]["mean_jaccard"] > cats["heavy"]["mean_jaccard"]
    )
    assert "graded near-duplicate corpus" in dedup_tables(result)


def test_jaccard() -> None:
    assert dedup_eval.jaccard({b"a", b"b"}, {b"b", b"c"}) == pytest.approx(1 / 3)
    assert dedup_eval.jaccard(set(), set()) == 1.0


def test_dedup_needs_truth_with_warc(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="together"):
        dedup_eval.evaluate_dedup(warc=str(tmp_path / "x.warc.gz"))
    bad = tmp_path / "truth.json"
    bad.write_text("[]")
    with pytest.raises(InputError, match="records"):
        dedup_eval.load_truth(str(bad))


# ---------------------------------------------------------------------------------------
# CLI and report
# ---------------------------------------------------------------------------------------


def test_cli_eval_pii_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataproc.cli import main

    data = tmp_path / "presidio.json"
    data.write_text(json.dumps(PRESIDIO))
    out = tmp_path / "out" / "pii.json"
    assert main(["eval", "pii", "--presidio", str(data), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| email" in printed and "recall" in printed
    saved = json.loads(out.read_text())
    assert saved["labelled"]["per_kind"]["iban"]["recall"] == 1.0


def test_cli_eval_missing_data_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataproc.cli import main

    assert main(["eval", "langid", "--sentences", str(tmp_path / "none")]) == 1
    assert "not a folder" in capsys.readouterr().err
    assert main(["eval", "all", "--shared-corpus", str(tmp_path)]) == 1
    assert "--shared-corpus" in capsys.readouterr().err


def test_table_formatting() -> None:
    text = table(["a", "b"], [[0.12345, None], ["x", 3]], "T")
    assert "### T" in text and "| 0.123 | -" in text and "| x     | 3" in text
