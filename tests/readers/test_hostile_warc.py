"""Hostile and broken WARC input: the reader never raises, keeps every good page, counts and
reports every loss, and its memory stays bounded whatever a record claims or inflates to.

Each case states exactly what the pipeline does: documents kept, drops by reason (``stats``)
and the rows written to ``rejects/`` (web-page records only; requests/metadata are counted).
"""

from __future__ import annotations

import gzip
import io
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import brotli
import pytest
from warc_builder import WarcBuilder, chunked

from dataproc.document import Document, Reject
from dataproc.readers.config import ReaderConfig
from dataproc.readers.records import REASONS
from dataproc.readers.warc import read_warc
from dataproc.stats import StageStats

HTML = (
    "<html><head><title>Hello</title></head><body><p>"
    + "Some ordinary text of a page. " * 8
    + "</p></body></html>"
)
MIB = 1024 * 1024


@dataclass
class Outcome:
    """What one read of a file produced."""

    urls: list[str]
    dropped: Counter[str]
    counters: Counter[str]
    rejects: list[tuple[str, str]] = field(default_factory=list)  # (url, reason)
    docs: list[Document] = field(default_factory=list)


def read(stream: io.RawIOBase | io.BytesIO | bytes, config: ReaderConfig | None = None) -> Outcome:
    """Read a whole file; check the accounting invariant every case must keep."""
    if isinstance(stream, bytes):
        stream = io.BytesIO(stream)
    stats = StageStats("read")
    rejects: list[tuple[str, str]] = []

    def sink(doc: Document, stage: str, rej: Reject) -> None:
        rejects.append((doc.url, rej.reason))

    docs = list(
        read_warc(
            stream,  # type: ignore[arg-type]
            source="hostile.warc.gz",
            input_index=3,
            config=config or ReaderConfig(),
            stats=stats,
            reject=sink,
        )
    )
    assert stats.docs_in == stats.docs_out + stats.docs_dropped
    assert stats.docs_out == len(docs)
    assert set(stats.dropped) <= set(REASONS)
    for d in docs:
        assert "\x00" not in d.html
        d.html.encode("utf-8")  # no lone surrogates
    counters = Counter({k: v for k, v in stats.counters.items() if not k.startswith("charset_")})
    return Outcome([d.url for d in docs], stats.dropped, counters, rejects, docs)


def pages(n: int, version: str = "WARC/1.0") -> WarcBuilder:
    """warcinfo + ``n`` request/response/metadata triples, as Common Crawl writes them."""
    b = WarcBuilder(version).warcinfo(is_part_of="CC-MAIN-2024-22")
    for i in range(n):
        url = f"http://p{i}.example/"
        b.request(url).response(url, HTML).metadata(url)
    return b


URLS3 = [f"http://p{i}.example/" for i in range(3)]
CC_SKIPS = {"warcinfo": 1, "request": 3, "metadata": 3}


# -- truncation and corruption ----------------------------------------------------------------


def test_truncated_gzip_member_at_the_end() -> None:
    data = pages(3).build(gzip=True)
    out = read(data[:-40])  # inside the last member (the last metadata record)
    assert out.urls == URLS3
    assert out.dropped == Counter({**CC_SKIPS, "metadata": 2, "truncated_file": 1})
    assert out.counters["truncated_member"] == 1


def test_truncated_inside_a_response_drops_that_page_with_a_reject() -> None:
    b = WarcBuilder().response("http://a.example/", HTML).response("http://b.example/", HTML)
    for gz in (True, False):
        data = b.build(gzip=gz)
        # Cut inside b's HTML (compressed bytes are denser: a shorter cut reaches it).
        out = read(data[: len(data) - (30 if gz else 120)])
        assert out.urls == ["http://a.example/"], gz
        assert out.dropped == Counter({"truncated_file": 1}), gz
        assert out.rejects == [("http://b.example/", "truncated_file")], gz


def test_corrupt_member_in_the_middle_resyncs_and_counts_the_loss() -> None:
    units = pages(3).build_units(gzip=True)
    bad = bytearray(units[5])  # the response of page 1 (warcinfo, then 3 units per page)
    for i in range(len(bad) // 2, len(bad) // 2 + 4):
        bad[i] ^= 0xFF
    units[5] = bytes(bad)
    out = read(b"".join(units))
    assert out.urls == [URLS3[0], URLS3[2]]
    assert out.dropped == Counter({**CC_SKIPS, "corrupt_record": 1})
    assert out.counters["corrupt_member"] == 1 and out.counters["resync_scans"] >= 1


def test_garbage_between_members_is_one_counted_loss() -> None:
    units = pages(2).build_units(gzip=True)
    units.insert(4, b"\x00garbage" * 1000)
    out = read(b"".join(units))
    assert out.urls == URLS3[:2]
    assert out.dropped["corrupt_record"] == 1 and out.counters["bytes_skipped"] == 8000


# -- wrong Content-Length ---------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_content_length_too_short(gz: bool) -> None:
    b = (
        WarcBuilder()
        .response("http://a.example/", HTML, content_length=10)
        .response("http://b.example/", HTML)
    )
    out = read(b.build(gzip=gz))
    # Ten bytes hold "HTTP/1.1 2": no status. The rest of the block is junk: one loss, resync.
    assert out.urls == ["http://b.example/"]
    assert out.dropped == Counter({"http_status": 1, "corrupt_record": 1})
    assert out.rejects == [("http://a.example/", "http_status")]
    assert out.counters["content_length_mismatch"] == 1


def test_content_length_too_long_in_gzip_ends_at_the_member() -> None:
    b = (
        WarcBuilder()
        .response("http://a.example/", HTML, content_length=len(HTML) + 500)
        .response("http://b.example/", HTML)
    )
    out = read(b.build(gzip=True))
    assert out.urls == ["http://a.example/", "http://b.example/"]
    assert out.docs[0].html.strip() == HTML  # the member's record separator is all it gains


def test_content_length_too_long_in_plain_warc_never_leaks_the_next_record() -> None:
    b = WarcBuilder().response("http://a.example/", HTML, content_length=len(HTML) + 200)
    for u in ("b", "c", "d"):
        b.response(f"http://{u}.example/", HTML)
    out = read(b.build(gzip=False))
    # a's block ran into b: a keeps only its own bytes, b is lost and counted once.
    assert out.urls == ["http://a.example/", "http://c.example/", "http://d.example/"]
    assert out.docs[0].html == HTML
    assert "WARC/1.0" not in out.docs[0].html
    assert out.dropped == Counter({"corrupt_record": 1})
    assert out.counters["content_length_overrun"] == 1


# -- missing or garbled WARC headers ------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_missing_content_length_is_damage_not_a_swallowed_file(gz: bool) -> None:
    no_length = b"WARC/1.0\r\nWARC-Type: response\r\n\r\n" + HTML.encode() + b"\r\n\r\n"
    b = WarcBuilder().raw(no_length).response("http://b.example/", HTML)
    out = read(b.build(gzip=gz))
    assert out.urls == ["http://b.example/"]
    assert out.dropped == Counter({"corrupt_record": 1})


@pytest.mark.parametrize("gz", [True, False])
def test_garbled_header_lines(gz: bool) -> None:
    garbled = b"WARC/1.0\r\nthis is not a header\r\n\xff\xfe: \x00\r\n\r\n"
    b = WarcBuilder().raw(garbled).response("http://b.example/", HTML)
    out = read(b.build(gzip=gz))
    assert out.urls == ["http://b.example/"]
    assert out.dropped.total() == 1
    assert set(out.dropped) <= {"corrupt_record", "other_record_type"}


def test_missing_record_id_date_and_target_uri() -> None:
    b = (
        WarcBuilder()
        .response("http://a.example/", HTML, record_id="", date=None)
        .record("response", WarcBuilder.http_block("HTTP/1.1 200 OK", [], HTML.encode()))
        .response("http://c.example/", HTML)
    )
    out = read(b.build(gzip=True))
    assert out.urls == ["http://a.example/", "http://c.example/"]
    # Ids come from our own naming when the record has none: file name and offset.
    assert out.docs[0].id == "hostile.warc.gz@0" and out.docs[0].warc_date is None
    # warcio cannot parse a response without WARC-Target-URI: one counted loss, no URL to report.
    assert out.dropped == Counter({"corrupt_record": 1})


# -- whole-file cases ---------------------------------------------------------------------------


def test_empty_file() -> None:
    out = read(b"")
    assert out.urls == [] and out.dropped.total() == 0


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64,
        b"just some text\n" * 1000,
        gzip.compress(b"a gzipped log file\n" * 1000),
        b"\x00" * 100_000,
    ],
    ids=["png", "text", "gzipped-text", "zeros"],
)
def test_non_warc_file_is_one_counted_loss(data: bytes) -> None:
    out = read(data)
    assert out.urls == []
    assert out.dropped == Counter({"corrupt_record": 1})
    assert out.counters["not_a_warc"] == 1


@pytest.mark.parametrize("really_gzip", [True, False])
def test_extension_lies_are_ignored(really_gzip: bool) -> None:
    # The reader goes by magic bytes, never by the name (source says .warc.gz either way).
    out = read(pages(3).build(gzip=really_gzip))
    assert out.urls == URLS3


@pytest.mark.parametrize("version", ["WARC/0.18", "WARC/1.0", "WARC/1.1"])
@pytest.mark.parametrize("gz", [True, False])
def test_warc_versions(version: str, gz: bool) -> None:
    out = read(pages(3, version).build(gzip=gz))
    assert out.urls == URLS3
    assert out.dropped == Counter(CC_SKIPS)


# -- encodings in the stored HTTP payload -------------------------------------------------------


def test_chunked_gzip_deflate_and_brotli_payloads() -> None:
    raw = HTML.encode()
    b = (
        WarcBuilder()
        .response("http://c.example/", chunked(raw), headers=[("Transfer-Encoding", "chunked")])
        .response("http://g.example/", gzip.compress(raw), headers=[("Content-Encoding", "gzip")])
        .response(
            "http://d.example/", zlib.compress(raw), headers=[("Content-Encoding", "deflate")]
        )
        .response("http://b.example/", brotli.compress(raw), headers=[("Content-Encoding", "br")])
        .response(
            "http://cg.example/",
            chunked(gzip.compress(raw)),
            headers=[("Transfer-Encoding", "chunked"), ("Content-Encoding", "gzip")],
        )
        .response("http://lie.example/", "\x1f\x8b" + HTML, headers=[("Content-Encoding", "br")])
    )
    out = read(b.build(gzip=True))
    assert len(out.docs) == 6
    assert all(d.html == HTML for d in out.docs[:5])
    assert out.counters["content_encoding_invalid"] == 1  # kept as stored


# -- memory: records bigger than memory should hold, decompression bombs -------------------------


class _LazyStream(io.RawIOBase):
    """A file produced on demand from a chunk iterator (never held in memory at once)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        want = 1 << 20 if n is None or n < 0 else n
        while len(self._buf) < want:
            nxt = next(self._chunks, None)
            if nxt is None:
                break
            self._buf += nxt
        out, self._buf = self._buf[:want], self._buf[want:]
        return out


def _huge_record(block_bytes: int) -> Iterator[bytes]:
    """One response record whose HTML block is ``block_bytes`` long, then a normal record."""
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
    head = (
        b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://huge.example/\r\n"
        b"Content-Type: application/http; msgtype=response\r\n"
        + f"Content-Length: {len(http) + block_bytes}\r\n\r\n".encode()
    )
    yield head + http + b"<html><body><p>"
    piece = b"All work and no play makes Jack a dull boy. " * 1489  # ~64 KiB
    left = block_bytes - len(b"<html><body><p>")
    while left > 0:
        chunk = piece[:left]
        left -= len(chunk)
        yield chunk
    yield b"\r\n\r\n" + WarcBuilder().response("http://after.example/", HTML).build(gzip=False)


def _gzipped(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Every chunk into one gzip member, compressed as it is produced."""
    comp = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for c in chunks:
        out = comp.compress(c)
        if out:
            yield out
    yield comp.flush()


def _peak_bytes(fn: Callable[[], Outcome]) -> tuple[Outcome, int]:
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("gz", [False, True])
def test_record_bigger_than_memory_is_streamed_and_capped(gz: bool) -> None:
    size = 300 * MIB
    cfg = ReaderConfig(max_payload_bytes=MIB)
    chunks = _huge_record(size)
    stream = _LazyStream(_gzipped(chunks) if gz else chunks)
    out, peak = _peak_bytes(lambda: read(stream, cfg))
    assert out.urls == ["http://huge.example/", "http://after.example/"]
    assert len(out.docs[0].html) == MIB
    assert out.counters["payload_truncated"] == 1
    # The cap plus bounded buffers: a few MiB, never the 300 MiB the record claims. A plain
    # record also keeps up to max_resync_history_bytes of itself, in case its Content-Length
    # runs past the end of the file and the records it swallowed must be found again.
    assert peak < 16 * MIB + cfg.max_resync_history_bytes, peak


_BOMBS: dict[str, bytes] = {}


def _bomb(kind: str) -> bytes:
    """A payload that inflates to 1 GiB (built once, in chunks: the test never holds 1 GiB)."""
    if kind not in _BOMBS:
        zeros = b"\0" * MIB
        if kind == "gzip":
            comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            parts = [comp.compress(b"<html><body>")]
            parts += [comp.compress(zeros) for _ in range(1024)]
            _BOMBS[kind] = b"".join(parts) + comp.flush()
        else:
            comp_br = brotli.Compressor(quality=1)
            parts = [comp_br.process(b"<html><body>")]
            parts += [comp_br.process(zeros) for _ in range(1024)]
            _BOMBS[kind] = b"".join(parts) + comp_br.finish()
    return _BOMBS[kind]


@pytest.mark.parametrize("kind", ["gzip", "br"])
def test_decompression_bomb_is_cut_at_the_cap_without_allocating_it(kind: str) -> None:
    bomb = _bomb(kind)
    assert len(bomb) < 4 * MIB  # 1 GiB of output from a few MiB of input
    cfg = ReaderConfig(max_payload_bytes=2 * MIB)
    data = (
        WarcBuilder()
        .response("http://bomb.example/", bomb, headers=[("Content-Encoding", kind)])
        .response("http://after.example/", HTML)
        .build(gzip=True)
    )
    out, peak = _peak_bytes(lambda: read(data, cfg))
    assert out.urls == ["http://bomb.example/", "http://after.example/"]
    # Cut at the cap; the NULs are stripped, leaving the markup (extraction finds no text).
    assert out.docs[0].html == "<html><body>"
    assert out.counters["payload_truncated"] == 1
    assert peak < len(data) * 3 + 12 * cfg.max_payload_bytes, peak


def test_html_bomb_is_kept_truncated_at_the_cap() -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [comp.compress(b"<html><body><p>")]
    parts += [comp.compress(b"<b>x</b>" * (MIB // 8)) for _ in range(512)]
    bomb = b"".join(parts) + comp.flush()
    cfg = ReaderConfig(max_payload_bytes=MIB)
    data = (
        WarcBuilder()
        .response("http://bomb.example/", bomb, headers=[("Content-Encoding", "gzip")])
        .build()
    )
    out, peak = _peak_bytes(lambda: read(data, cfg))
    assert out.urls == ["http://bomb.example/"]
    assert len(out.docs[0].html) == MIB
    assert out.counters["payload_truncated"] == 1
    assert peak < len(data) * 3 + 12 * MIB, peak


def test_header_line_bomb_is_bounded() -> None:
    junk = b"WARC/1.0\r\nX-Long: " + b"a" * (20 * MIB) + b"\r\n\r\n"
    data = junk + WarcBuilder().response("http://after.example/", HTML).build(gzip=False)
    out, peak = _peak_bytes(lambda: read(data))
    assert out.urls == ["http://after.example/"]
    assert out.dropped == Counter({"corrupt_record": 1})
    assert peak < len(data) + 8 * MIB


def test_target_uris_with_spaces_do_not_flood_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    b = WarcBuilder()
    for i in range(200):
        b.response(f"http://spaces.example/a b c {i}", HTML)
    with caplog.at_level("WARNING"):
        out = read(b.build(gzip=True))
    assert len(out.urls) == 200
    assert out.urls[0] == "http://spaces.example/a%20b%20c%200"  # still read, percent-encoded
    assert [r for r in caplog.records if r.name.startswith("warcio")] == []


def test_member_cut_short_in_the_middle_of_a_file_loses_only_itself() -> None:
    # zlib reads the members after a cut one as its own data until the end of the file; the
    # reader must still find them (found by the Hypothesis property in test_properties.py).
    b = WarcBuilder()
    for i, body in enumerate(["0", "0", "0 0 0 0 0 0 0 0 01 0 3 · 00 0 00 ", "0 0 0 0 0 0 0"]):
        b.response(f"http://h{i}.example/", f"<html><body><p>{body}</p></body></html>")
    units = b.build_units(gzip=True)
    units[2] = units[2][:105]
    out = read(b"".join(units))
    assert out.urls == ["http://h0.example/", "http://h1.example/", "http://h3.example/"]
    assert out.dropped == Counter({"truncated_file": 1})
    assert out.counters["truncated_member"] == 1 and out.counters["resync_scans"] == 1
