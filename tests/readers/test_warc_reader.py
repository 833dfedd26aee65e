"""The `read` stage: WARC bytes built in code -> Documents, counted drops and rejects."""

from __future__ import annotations

import gzip
import io
import re
import tracemalloc
import zlib
from datetime import datetime, timezone

import brotli
import pytest
from _reader_fixtures import read
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warc_builder import WarcBuilder, chunked, gzip_member

from dataproc.readers.config import ReaderConfig
from dataproc.readers.http import dechunk, parse_http_status
from dataproc.readers.records import parse_warc_date
from dataproc.readers.warc import read_warc
from dataproc.stats import StageStats

HTML = "<html><head><title>Hello</title></head><body><p>Some text here.</p></body></html>"


def cc_triple(b: WarcBuilder, url: str, body: str = HTML, **kw: object) -> WarcBuilder:
    return b.request(url).response(url, body, **kw).metadata(url)  # type: ignore[arg-type]


def test_common_crawl_style_gzip_per_record() -> None:
    b = WarcBuilder().warcinfo(is_part_of="CC-MAIN-2024-22")
    cc_triple(b, "http://a.example/")
    cc_triple(b, "http://b.example/")
    data = b.build(gzip=True)
    r = read(data, input_index=3)
    assert [d.url for d in r.docs] == ["http://a.example/", "http://b.example/"]
    assert r.stats.docs_in == 7
    assert r.stats.dropped == {"warcinfo": 1, "request": 2, "metadata": 2}
    assert r.rejects == []  # request/metadata/warcinfo are only counted
    offsets = b.offsets(gzip=True)
    d0, d1 = r.docs
    assert (d0.offset, d1.offset) == (offsets[2], offsets[5])
    assert d0.doc_index == (3 << 32) | 2 and d1.doc_index == (3 << 32) | 5
    assert d0.crawl == "CC-MAIN-2024-22"
    assert d0.source == "s3://b/x.warc.gz"
    assert d0.id == "00000000-0000-0000-0000-000000000003"
    assert d0.warc_date == datetime(2024, 5, 18, 12, 0, tzinfo=timezone.utc)
    assert d0.html == HTML
    assert r.stats.bytes_out == 2 * len(HTML.encode())
    assert r.stats.bytes_in >= 2 * len(HTML)
    assert r.stats.counters["charset_http"] == 2


def test_offsets_match_warcio_and_seek() -> None:
    from warcio.archiveiterator import ArchiveIterator

    b = WarcBuilder().warcinfo()
    for i in range(5):
        cc_triple(b, f"http://e.example/{i}", HTML * (i + 1))
    data = b.build(gzip=True)
    docs = read(data).docs
    for d in docs:  # an offset is where a reader can seek to get exactly that record
        rec = next(iter(ArchiveIterator(io.BytesIO(data[d.offset :]))))
        assert rec.rec_headers.get_header("WARC-Target-URI") == d.url


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("version", ["WARC/1.0", "WARC/1.1", "WARC/0.18"])
def test_plain_and_gzip_and_versions(gz: bool, version: str) -> None:
    b = WarcBuilder(version=version)
    cc_triple(b, "http://a.example/")
    cc_triple(b, "http://b.example/")
    r = read(b.build(gzip=gz))
    assert [d.url for d in r.docs] == ["http://a.example/", "http://b.example/"]
    assert [d.offset for d in r.docs] == [b.offsets(gz)[1], b.offsets(gz)[4]]
    assert r.docs[0].crawl is None  # no warcinfo


@pytest.mark.parametrize("gz", [False, True])
def test_swapped_extensions_are_detected_by_magic(gz: bool) -> None:
    b = WarcBuilder()
    cc_triple(b, "http://a.example/")
    name = "file.warc" if gz else "file.warc.gz"  # the name lies
    r = read(b.build(gzip=gz), source=name)
    assert len(r.docs) == 1 and r.docs[0].source == name


def test_single_gzip_member_holding_all_records() -> None:
    b = WarcBuilder().warcinfo(is_part_of="X")
    cc_triple(b, "http://a.example/")
    cc_triple(b, "http://b.example/")
    r = read(gzip.compress(b.build(gzip=False)))
    assert [d.url for d in r.docs] == ["http://a.example/", "http://b.example/"]
    assert r.docs[0].id != r.docs[1].id and r.docs[0].crawl == "X"


@pytest.mark.parametrize(
    "status_line",
    [
        "HTTP/1.1 HTTP/1.1 200 OK",
        "HTTP/1.0 200",
        "http/1.1 200 ok",
        "HTTP/2 200",
        "HTTP/1.1 200 Everything Fine",
    ],
)
def test_odd_status_lines_are_200(status_line: str) -> None:
    r = read(WarcBuilder().response("http://a.example/", HTML, status_line=status_line).build())
    assert len(r.docs) == 1


def test_parse_http_status() -> None:
    assert parse_http_status("HTTP/1.1 HTTP/1.1 200 OK") == 200
    assert parse_http_status("HTTP/1.1 404 Not Found") == 404
    assert parse_http_status("200 OK") == 200
    assert parse_http_status("HTTP/1.1") is None
    assert parse_http_status("HTTP/1.1 2000 x") is None
    assert parse_http_status("") is None


def test_non_200_non_html_revisit_resource_are_rejected_with_stubs() -> None:
    b = (
        WarcBuilder()
        .warcinfo(is_part_of="CC-MAIN-2024-22")
        .response("http://a.example/404", HTML, status_line="HTTP/1.1 404 Not Found")
        .response("http://a.example/moved", "", status_line="HTTP/1.1 301 Moved")
        .response("http://a.example/x.pdf", b"%PDF-1.4", content_type="application/pdf")
        .revisit("http://a.example/", refers_to="<urn:uuid:1>")
        .resource("http://a.example/r", HTML)
        .conversion("http://a.example/c", "text")
        .response("http://a.example/ok", HTML)
    )
    r = read(b.build(), input_index=1)
    assert [d.url for d in r.docs] == ["http://a.example/ok"]
    assert r.reject_reasons == [
        "http_status",
        "http_status",
        "non_html",
        "revisit",
        "resource",
        "conversion",
    ]
    assert r.stats.dropped["warcinfo"] == 1
    stub, rej = r.rejects[0]
    assert stub.url == "http://a.example/404" and stub.crawl == "CC-MAIN-2024-22"
    assert stub.doc_index == (1 << 32) | 1 and stub.offset == b.offsets()[1]
    assert "404" in rej.detail
    assert "application/pdf" in r.rejects[2][1].detail


def test_xhtml_and_content_type_parameters() -> None:
    b = WarcBuilder().response(
        "http://a.example/", HTML, content_type="Application/XHTML+XML ; charset=UTF-8"
    )
    assert len(read(b.build()).docs) == 1
    cfg = ReaderConfig(html_content_types=["text/plain"])
    assert read(b.build(), cfg).reject_reasons == ["non_html"]


def test_missing_content_type_is_sniffed() -> None:
    b = (
        WarcBuilder()
        .response(
            "http://a.example/h", "  <!DOCTYPE html><html><body>x</body></html>", content_type=None
        )
        .response("http://a.example/b", b"\x89PNG\r\n\x1a\n....", content_type=None)
    )
    r = read(b.build())
    assert [d.url for d in r.docs] == ["http://a.example/h"]
    assert r.reject_reasons == ["non_html"]
    assert r.stats.counters["content_type_sniffed"] == 1
    r2 = read(b.build(), ReaderConfig(sniff_missing_content_type=False))
    assert r2.docs == [] and r2.reject_reasons == ["non_html", "non_html"]


def test_no_http_headers_empty_payload_and_binary() -> None:
    b = (
        WarcBuilder()
        .response("http://a.example/raw", "", http_block=HTML.encode())
        .response("http://a.example/empty", "")
        .response("http://a.example/ws", " \r\n\t ")
        .response("http://a.example/bin", bytes(range(256)) * 8)
        .response("dns:a.example", "", http_block=b"20240518 a.example. 300 IN A 1.2.3.4\n")
    )
    r = read(b.build())
    assert r.docs == []
    assert r.reject_reasons == [
        "no_http_headers",
        "empty_payload",
        "empty_payload",
        "decode_error",
        "no_http_headers",
    ]


def test_charsets_from_header_meta_and_detection() -> None:
    ru = "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 5
    fr = "Le cœur a ses raisons que la raison ne connaît point. Déjà vu. " * 5
    ja = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。" * 5
    b = (
        WarcBuilder()
        .response(
            "http://h/",
            f"<html><body>{ru}</body></html>",
            content_type="text/html; charset=koi8-r",
            encoding="koi8-r",
        )
        .response(
            "http://m/",
            f'<html><head><meta charset="shift_jis"></head><body>{ja}</body></html>',
            content_type="text/html",
            encoding="shift_jis",
        )
        .response(
            "http://d/",
            f"<html><body>{fr}</body></html>",
            content_type="text/html",
            encoding="cp1252",
        )
        .response(
            "http://l/",
            f'<html><head><meta charset="utf-8"></head><body>{fr}</body></html>',
            content_type="text/html",
            encoding="cp1252",
        )
        .response(
            "http://bogus/",
            f"<html><body>{ru}</body></html>",
            content_type="text/html; charset=no-such-thing",
            encoding="utf-8",
        )
    )
    r = read(b.build())
    assert len(r.docs) == 5
    assert ru in r.docs[0].html and ja in r.docs[1].html and fr in r.docs[2].html
    assert fr in r.docs[3].html  # the <meta> lied; detection recovered cp1252
    assert ru in r.docs[4].html
    c = r.stats.counters
    assert (c["charset_http"], c["charset_meta"], c["charset_detected"]) == (1, 1, 3)


def test_nul_bytes_are_stripped() -> None:
    r = read(WarcBuilder().response("http://a/", b"<html><body>a\x00b</body></html>\x00").build())
    assert r.docs[0].html == "<html><body>ab</body></html>"


def test_payload_cap_truncates_and_keeps() -> None:
    big = "<html><body>" + "<p>word word word</p>" * 5000 + "</body></html>"  # ~105 KB
    cfg = ReaderConfig(max_payload_bytes=10_000)
    r = read(WarcBuilder().response("http://a/", big).response("http://b/", HTML).build(), cfg)
    assert [len(d.html) for d in r.docs] == [10_000, len(HTML)]
    assert r.stats.counters["payload_truncated"] == 1
    assert r.stats.bytes_in <= 10_001 + len(HTML)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate", "br", "gzip, br"])
def test_content_encoding_is_decoded(encoding: str) -> None:
    body = HTML.encode()
    if encoding == "gzip":
        enc, header = gzip.compress(body), "gzip"
    elif encoding == "deflate":
        enc, header = zlib.compress(body), "deflate"
    elif encoding == "raw-deflate":
        c = zlib.compressobj(wbits=-15)
        enc, header = c.compress(body) + c.flush(), "deflate"
    elif encoding == "br":
        enc, header = brotli.compress(body), "br"
    else:
        enc, header = brotli.compress(gzip.compress(body)), "gzip, br"
    r = read(
        WarcBuilder().response("http://a/", enc, headers=[("Content-Encoding", header)]).build()
    )
    assert r.docs[0].html == HTML


def test_content_encoding_header_on_decoded_payload() -> None:
    # Crawlers often store the decoded body and keep the header: use the body as is.
    r = read(
        WarcBuilder().response("http://a/", HTML, headers=[("Content-Encoding", "gzip")]).build()
    )
    assert r.docs[0].html == HTML
    assert r.stats.counters["content_encoding_invalid"] == 1


@pytest.mark.parametrize("kind", ["gzip", "br"])
def test_decompression_bomb_is_capped(kind: str) -> None:
    plain = b"<html><body>" + b"a" * (50 * 1024 * 1024)
    bomb = (
        gzip.compress(plain, compresslevel=9)
        if kind == "gzip"
        else brotli.compress(plain, quality=5)
    )
    assert len(bomb) < 200_000
    cfg = ReaderConfig(max_payload_bytes=64 * 1024)
    r = read(
        WarcBuilder().response("http://a/", bomb, headers=[("Content-Encoding", kind)]).build(), cfg
    )
    assert len(r.docs[0].html) == 64 * 1024
    assert r.stats.counters["payload_truncated"] == 1


def test_chunked_transfer_encoding() -> None:
    body = chunked(HTML.encode(), chunk_bytes=5)
    both = chunked(gzip.compress(HTML.encode()), chunk_bytes=11)
    b = (
        WarcBuilder()
        .response("http://a/", body, headers=[("Transfer-Encoding", "chunked")])
        .response(
            "http://b/",
            both,
            headers=[("Transfer-Encoding", "chunked"), ("Content-Encoding", "gzip")],
        )
        .response(
            "http://c/", HTML, headers=[("Transfer-Encoding", "chunked")]
        )  # already dechunked
    )
    r = read(b.build())
    assert [d.html for d in r.docs] == [HTML, HTML, HTML]


def test_dechunk_edge_cases() -> None:
    assert dechunk(b"5\r\nhello\r\n0\r\n\r\n") == (b"hello", True)
    assert dechunk(b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n") == (b"hello world", True)
    assert dechunk(b"a\r\nhel") == (b"hel", True)  # cut short
    assert dechunk(b"<html>") == (b"<html>", False)


def test_wayback_urls_are_unwrapped() -> None:
    url = "https://web.archive.org/web/20240101123456id_/http://example.com/page"
    r = read(
        WarcBuilder()
        .response(url, HTML)
        .response("http://web.archive.org/web/2024/x", "", status_line="HTTP/1.1 404")
        .build()
    )
    assert r.docs[0].url == "http://example.com/page"
    assert r.rejects[0][0].url == "http://x"


def test_missing_record_id_and_bad_date() -> None:
    b = (
        WarcBuilder()
        .response("http://a/", HTML, record_id="", date="yesterday")
        .response("http://b/", HTML, record_id="<urn:uuid:ABC>", date="2024-05-18T12:00:00.123456Z")
    )
    r = read(b.build(), source="/data/in/file-7.warc.gz")
    assert r.docs[0].id == f"file-7.warc.gz@{b.offsets()[0]}"
    assert r.docs[0].warc_date is None
    assert r.docs[1].id == "ABC"
    assert r.docs[1].warc_date == datetime(2024, 5, 18, 12, 0, 0, 123456, tzinfo=timezone.utc)


def test_parse_warc_date() -> None:
    assert parse_warc_date("20240518120000") == datetime(2024, 5, 18, 12, tzinfo=timezone.utc)
    assert parse_warc_date("2024-05-18T14:00:00+02:00") == datetime(
        2024, 5, 18, 12, tzinfo=timezone.utc
    )
    assert parse_warc_date("2024-05-18T12:00:00") == datetime(2024, 5, 18, 12, tzinfo=timezone.utc)
    assert parse_warc_date("garbage") is None and parse_warc_date(None) is None


def test_empty_file() -> None:
    r = read(b"")
    assert r.docs == [] and r.stats.docs_in == 0


@pytest.mark.parametrize(
    "data", [b"hello, this is not a WARC file\n" * 50, b"\x00" * 1000, b"PK\x03\x04" + bytes(500)]
)
def test_non_warc_file_is_counted_not_raised(data: bytes) -> None:
    r = read(data)
    assert r.docs == []
    assert r.stats.dropped == {"corrupt_record": 1}
    assert r.stats.counters["not_a_warc"] == 1


def test_gzipped_non_warc_is_counted() -> None:
    r = read(gzip.compress(b"just some text\n" * 100))
    assert r.docs == [] and r.stats.dropped["corrupt_record"] == 1
    assert r.stats.counters["not_a_warc"] == 1


def build_five() -> WarcBuilder:
    b = WarcBuilder().warcinfo(is_part_of="CC")
    for i in range(5):
        b.response(f"http://e.example/{i}", HTML.replace("Hello", f"Page {i} " + "x" * 3000))
    return b


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9])
def test_truncated_gzip_keeps_earlier_documents(cut: float) -> None:
    b = build_five()
    units = b.build_units(gzip=True)
    last = units[-1]
    data = b"".join(units[:-1]) + last[: int(len(last) * cut)]
    r = read(data)
    assert [d.url for d in r.docs] == [f"http://e.example/{i}" for i in range(4)]
    assert r.stats.dropped["truncated_file"] == 1
    assert r.stats.docs_in == 6


def test_truncated_plain_warc_keeps_earlier_documents() -> None:
    b = build_five()
    data = b.build(gzip=False)
    r = read(data[: len(data) - 2000])
    assert [d.url for d in r.docs][:4] == [f"http://e.example/{i}" for i in range(4)]
    assert len(r.docs) <= 5


@pytest.mark.parametrize("where", ["header", "middle", "end"])
def test_corrupt_member_in_the_middle_resyncs(where: str) -> None:
    b = build_five()
    units = b.build_units(gzip=True)
    bad = bytearray(units[2])  # the record of page 1
    pos = {"header": 12, "middle": len(bad) // 2, "end": len(bad) - 10}[where]
    for i in range(pos, min(pos + 8, len(bad))):
        bad[i] ^= 0x5A
    units[2] = bytes(bad)
    r = read(b"".join(units))
    urls = [d.url for d in r.docs]
    assert urls[0] == "http://e.example/0"
    assert urls[-3:] == [f"http://e.example/{i}" for i in (2, 3, 4)]
    assert "http://e.example/1" not in urls or where == "end"
    assert r.stats.counters["corrupt_member"] == (0 if "http://e.example/1" in urls else 1)
    assert r.docs[-1].doc_index == 5  # ordinals stay those of the file's records


def test_garbage_between_members_and_at_the_end() -> None:
    b = build_five()
    units = b.build_units(gzip=True)
    data = b"".join(units[:3]) + b"JUNK" * 1000 + b"".join(units[3:]) + b"trailing junk"
    r = read(data)
    assert [d.url for d in r.docs] == [f"http://e.example/{i}" for i in range(5)]
    assert r.stats.dropped["corrupt_record"] == 2
    assert r.stats.counters["bytes_skipped"] == 4000 + len(b"trailing junk")


def test_member_with_truncated_content_length_garbage() -> None:
    # A record whose Content-Length is wrong: the member still ends; the next one is read.
    b = build_five()
    units = b.build_units(gzip=False)
    units[2] = units[2].replace(b"Content-Length: ", b"Content-Length: 9", 1)
    data = b"".join(gzip_member(u) for u in units)
    r = read(data)
    urls = [d.url for d in r.docs]
    assert urls[0] == "http://e.example/0" and urls[-3:] == [
        f"http://e.example/{i}" for i in (2, 3, 4)
    ]


def test_huge_header_line_is_bounded() -> None:
    junk = b"WARC/1.0\r\nX-Long: " + b"a" * (3 * 1024 * 1024)
    tracemalloc.start()
    r = read(junk)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert r.docs == [] and r.stats.docs_in == 1
    assert peak < len(junk) + 2 * 1024 * 1024  # the input itself plus bounded buffers


def test_reader_reads_the_stream_incrementally() -> None:
    class Counting(io.BytesIO):
        max_read = 0

        def read(self, n: int | None = -1) -> bytes:
            assert n is not None and 0 < n <= 1 << 20, "reads must be bounded"
            out = super().read(n)
            Counting.max_read = max(Counting.max_read, len(out))
            return out

    b = build_five()
    stats = StageStats("read")
    docs = list(
        read_warc(
            Counting(b.build()),
            source="x",
            input_index=0,
            config=ReaderConfig(),
            stats=stats,
            reject=lambda *a: None,
        )
    )
    assert len(docs) == 5 and Counting.max_read <= 1 << 20


# -- properties: nothing ever raises, the invariant always holds --------------------------


def _valid_file(gz: bool) -> bytes:
    b = WarcBuilder().warcinfo(is_part_of="CC")
    cc_triple(b, "http://a.example/", headers=[("Transfer-Encoding", "chunked")])
    b.response(
        "http://b.example/", gzip.compress(HTML.encode()), headers=[("Content-Encoding", "gzip")]
    )
    b.revisit("http://a.example/")
    return b.build(gzip=gz)


VALID_GZ = _valid_file(True)
VALID_PLAIN = _valid_file(False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    read(data)
    read(b"\x1f\x8b\x08" + data)
    read(b"WARC/1.0\r\n" + data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gz=st.booleans(),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=6),
    cut=st.floats(0.05, 1.0),
    insert=st.binary(max_size=64),
)
def test_mangled_valid_files_never_raise(
    gz: bool, edits: list[tuple[float, int]], cut: float, insert: bytes
) -> None:
    data = bytearray(VALID_GZ if gz else VALID_PLAIN)
    for where, value in edits:
        data[int(where * len(data))] = value
    pos = int(cut * len(data))
    mangled = bytes(data[:pos]) + insert + bytes(data[pos:])
    read(mangled)
    read(mangled[:pos])


@pytest.mark.parametrize(
    "damage", ["short_length", "bad_version_line", "garbage_block", "first_record"]
)
def test_plain_warc_resyncs_at_the_next_record(damage: str) -> None:
    b = build_five()
    units = b.build_units(gzip=False)
    if damage == "short_length":
        units[2] = re.sub(rb"Content-Length: \d+", b"Content-Length: 100", units[2], count=1)
    elif damage == "bad_version_line":
        units[2] = b"XWARC/1.0" + units[2][len(b"WARC/1.0") :]
    elif damage == "garbage_block":
        units[2] = b"\x00garbage\r\n" * 500
    else:  # the first record (warcinfo) has no Content-Length
        units[0] = re.sub(rb"Content-Length: \d+\r\n", b"", units[0])
    r = read(b"".join(units))
    urls = [d.url for d in r.docs]
    assert urls[0] == "http://e.example/0"
    assert urls[-3:] == [f"http://e.example/{i}" for i in (2, 3, 4)]
    # A record cut short by a wrong Content-Length keeps what it has (a fragment here).
    if damage == "short_length":
        # warcio skips the rest of the line after the short record and finds the next one.
        assert r.stats.counters["content_length_mismatch"] == 1
    else:
        assert ("http://e.example/1" in urls) == (damage == "first_record")
        assert r.stats.counters["resyncs"] == 1
        assert r.stats.dropped["corrupt_record"] == 1
