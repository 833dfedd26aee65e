"""Property-based tests (Hypothesis) on the WARC reader, charset decoding and every text stage.

Properties, not examples: a well-formed WARC of any shape reads back exactly; damage to one
gzip member never costs a record outside it; decoding any bytes never raises and never yields
NUL or lone surrogates; each text stage accepts any string and answers with a Document or a
declared reason; PII scrubbing leaves nothing its detectors find.
"""

from __future__ import annotations

import io

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from warc_builder import WarcBuilder

from dataproc.document import Document, Reject
from dataproc.readers.charset import decode_html, decode_html_detailed, normalize_charset
from dataproc.readers.config import ReaderConfig
from dataproc.readers.records import REASONS
from dataproc.readers.warc import read_warc
from dataproc.stages.langid import LanguageId
from dataproc.stages.pii import find_pii, scrub
from dataproc.stages.quality import QualityConfig, quality_stages
from dataproc.stages.url_filter import UrlFilter
from dataproc.stats import StageStats

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def read_all(data: bytes, config: ReaderConfig | None = None) -> tuple[list[Document], StageStats]:
    stats = StageStats("read")
    docs = list(
        read_warc(
            io.BytesIO(data),
            source="p.warc.gz",
            input_index=1,
            config=config or ReaderConfig(),
            stats=stats,
            reject=lambda d, s, r: None,
        )
    )
    assert stats.docs_in == stats.docs_out + stats.docs_dropped
    assert set(stats.dropped) <= set(REASONS)
    return docs, stats


# -- the WARC reader ------------------------------------------------------------------------------

_words = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40
)
_page = st.builds(
    lambda words: "<html><body><p>" + " ".join(words) + "</p></body></html>",
    st.lists(_words, min_size=1, max_size=20),
)
_record = st.one_of(
    st.tuples(st.just("page"), _page),
    st.tuples(st.just("status"), st.sampled_from(["HTTP/1.1 404 Not Found", "HTTP/1.1 301 Moved"])),
    st.tuples(st.just("image"), st.binary(min_size=1, max_size=200)),
    st.tuples(st.just("request"), st.just("")),
    st.tuples(st.just("metadata"), st.just("")),
)


def _build(
    records: list[tuple[str, object]], version: str
) -> tuple[WarcBuilder, list[tuple[str, str]]]:
    b = WarcBuilder(version).warcinfo(is_part_of="CC-TEST")
    expected: list[tuple[str, str]] = []
    for i, (kind, value) in enumerate(records):
        url = f"http://host{i}.example/p"
        if kind == "page":
            b.response(url, value)  # type: ignore[arg-type]
            expected.append((url, value))  # type: ignore[arg-type]
        elif kind == "status":
            b.response(url, "<html>moved</html>", status_line=value)  # type: ignore[arg-type]
        elif kind == "image":
            b.response(url, value, content_type="image/png")  # type: ignore[arg-type]
        elif kind == "request":
            b.request(url)
        else:
            b.metadata(url)
    return b, expected


@SETTINGS
@given(
    st.lists(_record, max_size=12),
    st.booleans(),
    st.sampled_from(["WARC/1.0", "WARC/1.1", "WARC/0.18"]),
)
def test_well_formed_warc_reads_back_exactly(
    records: list[tuple[str, object]], gz: bool, version: str
) -> None:
    b, expected = _build(records, version)
    docs, stats = read_all(b.build(gzip=gz))
    assert [(d.url, d.html) for d in docs] == expected
    assert stats.docs_in == len(records) + 1
    # doc_index: input index in the high bits, the record ordinal in the low bits.
    assert all(d.doc_index >> 32 == 1 for d in docs)
    assert [d.doc_index for d in docs] == sorted(d.doc_index for d in docs)


@SETTINGS
@given(
    st.lists(_page, min_size=3, max_size=8),
    st.data(),
)
def test_damage_in_one_member_never_costs_a_record_outside_it(
    pages: list[str], data: st.DataObject
) -> None:
    b = WarcBuilder()
    for i, p in enumerate(pages):
        b.response(f"http://h{i}.example/", p)
    units = b.build_units(gzip=True)
    victim = data.draw(st.integers(0, len(units) - 1), label="victim")
    unit = bytearray(units[victim])
    how = data.draw(st.sampled_from(["flip", "cut", "zero"]), label="how")
    lo = data.draw(st.integers(10, len(unit) - 9), label="at")  # past the gzip header
    if how == "flip":
        unit[lo] ^= data.draw(st.integers(1, 255), label="mask")
    elif how == "cut":
        del unit[lo:]
    else:
        unit[lo : lo + 8] = b"\0" * 8
    units[victim] = bytes(unit)
    docs, _ = read_all(b"".join(units))
    got = {d.url: d.html for d in docs}
    for i, p in enumerate(pages):
        if i == victim:
            continue
        if how == "cut" and victim == len(units) - 1:
            pass  # nothing after the cut member anyway
        assert got.get(f"http://h{i}.example/") == p, (i, victim, how)


@SETTINGS
@given(st.binary(max_size=3000), st.integers(0, 2))
def test_arbitrary_prefix_and_junk_never_raise(junk: bytes, where: int) -> None:
    good = WarcBuilder().response("http://a.example/", "<html><p>ok</p></html>").build()
    data = [junk + good, good + junk, good[:40] + junk + good][where]
    read_all(data, ReaderConfig(max_payload_bytes=1024, max_header_line_bytes=1024))


# -- charset decoding -----------------------------------------------------------------------------

_CODECS = ["utf-8", "cp1252", "iso-8859-1", "shift_jis", "euc_jp", "gb18030", "koi8_r", "utf-16"]


@SETTINGS
@given(
    st.binary(max_size=4000),
    st.sampled_from([None, "utf-8", "latin-1", "utf-7", "x-bogus", "utf-16"]),
)
def test_decoding_any_bytes_never_raises_nor_yields_nul_or_surrogates(
    payload: bytes, label: str | None
) -> None:
    text, codec = decode_html(payload, label)
    assert "\x00" not in text
    text.encode("utf-8")  # no lone surrogates
    assert codec


@SETTINGS
@given(st.text(max_size=300), st.sampled_from(_CODECS))
def test_declared_charset_is_used_as_a_browser_would(text: str, codec: str) -> None:
    """Bytes in a declared charset decode with that charset, or with the superset browsers
    use for its label (WHATWG: iso-8859-1 is read as cp1252, shift_jis as cp932, ...)."""
    try:
        payload = text.encode(codec)
    except UnicodeEncodeError:
        assume(False)
        return
    browser_codec = normalize_charset(codec)
    assert browser_codec is not None
    try:
        expected = payload.decode(browser_codec)
    except UnicodeDecodeError:
        assume(False)  # bytes the superset leaves undefined (e.g. 0x81 in cp1252)
        return
    decoded = decode_html_detailed(payload, codec)
    clean = expected.replace("\x00", "")
    if codec == "utf-16":
        clean = clean.lstrip("\ufeff")
    assert decoded.text == clean
    if browser_codec == codec.replace("-", "_") or codec == "utf-8":
        assert decoded.text == text.replace("\x00", "").lstrip(
            "\ufeff" if codec == "utf-16" else ""
        )


# -- text stages ----------------------------------------------------------------------------------

_URL_FILTER = UrlFilter()
_QUALITY = quality_stages(QualityConfig())
_LANGID = LanguageId()

_any_text = st.text(max_size=2000)
_texty = st.lists(
    st.sampled_from(
        ["word", "the", "and", ".", "\n", "\n\n", "!", "lorem ipsum", "[1]", "{", "javascript",
         "a@b.com", "8.8.8.8", "4111 1111 1111 1111", "+1 212 555 0100", "•", "…", "#", " "]
    ),
    max_size=400,
).map(" ".join)  # fmt: skip


@SETTINGS
@given(st.text(max_size=500))
def test_url_filter_accepts_any_string(url: str) -> None:
    out = _URL_FILTER.process(Document(id="x", url=url, source="s"))
    assert isinstance(out, Document) or out.reason in UrlFilter.REASONS


@SETTINGS
@given(st.one_of(_any_text, _texty))
def test_quality_stages_accept_any_text_with_declared_reasons(text: str) -> None:
    for stage in _QUALITY:
        doc = Document(id="x", url="http://x/", source="s", text=text, language="en")
        out = stage.process(doc)
        assert isinstance(out, Document | Reject)
        if isinstance(out, Reject):
            assert out.reason in stage.REASONS, (stage.name, out.reason)
        # Deterministic: the same text gets the same verdict.
        again = stage.process(
            Document(id="x", url="http://x/", source="s", text=text, language="en")
        )
        assert type(again) is type(out) and getattr(again, "reason", None) == getattr(
            out, "reason", None
        )


@SETTINGS
@given(st.one_of(_any_text, _texty))
def test_langid_accepts_any_text(text: str) -> None:
    out = _LANGID.process(Document(id="x", url="http://x/", source="s", text=text))
    if isinstance(out, Reject):
        assert out.reason in LanguageId.REASONS
    else:
        assert out.language and 0.0 <= (out.language_score or 0.0) <= 1.0001


@SETTINGS
@given(st.one_of(_any_text, _texty))
def test_pii_scrub_leaves_nothing_to_find_and_is_idempotent(text: str) -> None:
    scrubbed, counts = scrub(text)
    assert find_pii(scrubbed) == []
    again, counts2 = scrub(scrubbed)
    assert again == scrubbed and sum(counts2.values()) == 0
    if sum(counts.values()) == 0:
        assert scrubbed == text
