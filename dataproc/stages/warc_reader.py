"""Read WARC files (plain or per-record gzip) into Documents: the ``read`` stage.

warcio's ``ArchiveIterator`` parses the records. Around it this module adds what a
production reader over millions of real files needs and warcio does not do:

* **Gzip members are decoded here, one ArchiveIterator per member.** warcio's own gzip
  reader swallows a zlib error in the middle of a file (it prints to stderr and then reads
  the rest of the file as empty), so a single flipped bit would silently lose everything
  after it. Decoding each member ourselves lets us notice the damage, count it, scan forward
  for the next gzip header (``1f 8b 08``) and go on. It also gives every record its exact
  member offset in the compressed file (what Common Crawl indexes point at).
* **Bounded memory.** Header lines are cut at ``max_header_line_bytes``; payloads are read up
  to ``max_payload_bytes``; Content-Encoding (gzip/deflate/br) and chunked transfer encoding
  are undone here with output limits, because warcio's decoders inflate a block at a time
  without a limit (a brotli bomb would expand without bound).
* **Every record is accounted for.** Each record counts once in ``docs_in`` and is either a
  document (``docs_out``) or a drop with one of ``REASONS``; damage that loses records is
  counted as one drop per failure.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
import zlib
from collections.abc import Generator, Iterator
from datetime import datetime, timezone
from typing import Any, BinaryIO

from pydantic import Field

from dataproc.configbase import StrictModel
from dataproc.document import Document, Reject
from dataproc.stages.base import RejectSink
from dataproc.stages.charset import charset_from_content_type, decode_html_detailed
from dataproc.stages.urls import unwrap_wayback_url
from dataproc.stages.warc_format import (
    BZIP2_MAGIC,
    GZIP_MAGIC,
    XZ_MAGIC,
    ZSTD_DICT_MAGIC,
    ZSTD_MAGIC,
    split_zstd_dictionary,
    zstd_decompressor,
)
from dataproc.stats import StageStats

STAGE_NAME = "read"

REASONS: tuple[str, ...] = (
    "warcinfo",
    "request",
    "metadata",
    "revisit",
    "resource",
    "conversion",
    "other_record_type",
    "no_http_headers",
    "http_status",
    "non_html",
    "empty_payload",
    "decode_error",
    "corrupt_record",
    "truncated_file",
)
"""Why the reader skips a record (``stats.dropped`` keys and ``Reject.reason`` values)."""

# Records that are (versions of) web pages: their drops go to the reject sink. Requests,
# metadata and warcinfo records are only counted (there are as many as pages, and they are
# never content).
WEB_RECORD_TYPES = frozenset({"response", "revisit", "resource", "conversion"})
_COUNTED_ONLY_TYPES = frozenset({"warcinfo", "request", "metadata"})
_OTHER_KNOWN_TYPES = frozenset({"continuation"})

# Where a resync in an uncompressed WARC may resume: a line that starts a record.
_PLAIN_RECORD_START = b"\nWARC/"
# The start of the next record inside a block whose Content-Length was too long (plain WARC).
_PLAIN_OVERRUN = re.compile(rb"\r?\n\r?\nWARC/\d{1,2}\.\d{1,2}\r?\n")
_RAW_CHUNK_BYTES = 64 * 1024
_WARCIO_BLOCK_BYTES = 16 * 1024
_WARCINFO_MAX_BYTES = 64 * 1024
_SNIFF_BYTES = 1024

# Outcomes of reading one ArchiveIterator to its end.
_OK = "ok"
_TRUNCATED = "truncated"  # the input ended inside a gzip member
_STOP = "stop"  # the file is not one we read (a WAT): stop, the caller refuses it
_BAD_GZIP = "bad_gzip"  # zlib refused the data: resync at the next member
_BAD_WARC = "bad_warc"  # the bytes decompress but are not valid WARC


class ReaderConfig(StrictModel):
    """Which WARC records become documents, and how payloads are bounded."""

    max_payload_bytes: int = Field(
        5 * 1024 * 1024, ge=1024, description="HTTP payloads are cut at this many bytes (counted)."
    )
    allowed_statuses: list[int] = Field(
        default_factory=lambda: [200], description="HTTP statuses kept."
    )
    html_content_types: list[str] = Field(
        default_factory=lambda: ["text/html", "application/xhtml+xml"],
        description="HTTP Content-Types treated as HTML.",
    )
    sniff_missing_content_type: bool = Field(
        True,
        description="When a response has no Content-Type at all, keep it if the payload starts "
        "like HTML (`<!doctype html`, `<html`, `<head`); counted as `content_type_sniffed`.",
    )
    max_header_line_bytes: int = Field(
        64 * 1024,
        ge=1024,
        description="WARC/HTTP header lines are cut at this many bytes (bounds memory on junk input).",
    )
    max_resync_history_bytes: int = Field(
        8 * 1024 * 1024,
        ge=_RAW_CHUNK_BYTES,
        description="Compressed bytes of the current gzip member kept so that, if the member "
        "turns out corrupt, the scan for the next member can start right after its header.",
    )


# --------------------------------------------------------------------------------------
# Low-level input: a forward-only byte source with bounded look-back, and gzip members.
# --------------------------------------------------------------------------------------


class _TruncatedInput(Exception):
    """The input ended inside a gzip member."""


class _CorruptGzip(Exception):
    """zlib rejected the bytes of a gzip member."""


class _BadRecord(Exception):
    """A WARC record that warcio parsed but that cannot be read safely."""


class _RawInput:
    """Reads the underlying stream in chunks; supports peek, a short unread and, while a
    mark is set, seeking back to (at most ``history_bytes`` before) the read position."""

    def __init__(self, stream: BinaryIO | _SafeZstdStream, history_bytes: int) -> None:
        self._stream = stream
        self._buf = bytearray()
        self._base = 0  # absolute offset of _buf[0]
        self.pos = 0  # absolute read position
        self._mark: int | None = None
        self._history = max(history_bytes, _RAW_CHUNK_BYTES)
        self._eof = False

    def _avail(self) -> int:
        return self._base + len(self._buf) - self.pos

    def _more(self) -> bool:
        if self._eof:
            return False
        data = self._stream.read(_RAW_CHUNK_BYTES)
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _compact(self) -> None:
        # Keep one chunk behind the read position (gzip's unused_data is pushed back) and,
        # while a member is being read, its bytes up to the history bound.
        keep = self.pos - _RAW_CHUNK_BYTES
        if self._mark is not None:
            keep = max(min(keep, self._mark), self.pos - self._history)
        drop = keep - self._base
        if drop >= _RAW_CHUNK_BYTES:
            del self._buf[:drop]
            self._base = keep

    def peek(self, n: int) -> bytes:
        while self._avail() < n and self._more():
            pass
        i = self.pos - self._base
        return bytes(self._buf[i : i + n])

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = _RAW_CHUNK_BYTES
        if self._avail() <= 0:
            self._more()
        i = self.pos - self._base
        with memoryview(self._buf) as view:
            data = bytes(view[i : i + n])  # one copy (slicing a bytearray copies twice)
        self.pos += len(data)
        self._compact()
        return data

    def tell(self) -> int:
        return self.pos

    def unread(self, n: int) -> None:
        self.pos = max(self.pos - n, self._base)

    def set_mark(self, at: int | None = None) -> None:
        """Keep the bytes from ``at`` (default: the read position) while reading on, up to
        the history bound; clamped to what is still buffered."""
        self._mark = self.pos if at is None else max(at, self._base)

    @property
    def oldest(self) -> int:
        """The offset of the oldest byte still buffered (a resync cannot start before it)."""
        return self._base

    def clear_mark(self) -> None:
        self._mark = None

    def find(self, pattern: bytes, start: int) -> int | None:
        """Move to the first ``pattern`` at or after ``start`` (clamped to what is still
        buffered); return its offset, or None (and move to the end) if there is none."""
        self._mark = None
        self.pos = max(start, self._base)
        while True:
            idx = self._buf.find(pattern, self.pos - self._base)
            if idx >= 0:
                self.pos = self._base + idx
                return self.pos
            # The pattern may straddle the end of the buffer: keep its possible start.
            self.pos = max(self.pos, self._base + len(self._buf) - (len(pattern) - 1))
            self._compact()
            if not self._more():
                self.pos = self._base + len(self._buf)
                return None


class _MemberStream:
    """The decompressed bytes of exactly one gzip member, read incrementally.

    Raises ``_CorruptGzip`` on bad data and ``_TruncatedInput`` if the input ends first;
    at the member's end, bytes read past it are handed back to the raw input.
    """

    def __init__(self, raw: _RawInput) -> None:
        self._raw = raw
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._tail = b""
        self._out = 0
        self.done = False
        self._flushed = False

    def tell(self) -> int:
        return self._out

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = _WARCIO_BLOCK_BYTES
        while not self.done:
            if self._tail:
                data = self._tail
            else:
                data = self._raw.read(_RAW_CHUNK_BYTES)
                if not data:
                    if not self._flushed:
                        self._flushed = True
                        rest = self._d.flush()
                        if rest:
                            self._out += len(rest)
                            return rest
                    raise _TruncatedInput("input ends inside a gzip member")
            try:
                out = self._d.decompress(data, n)
            except zlib.error as e:
                raise _CorruptGzip(str(e)) from None
            self._tail = self._d.unconsumed_tail
            if self._d.eof:
                self._raw.unread(len(self._d.unused_data))
                self._tail = b""
                self.done = True
            if out:
                self._out += len(out)
                return out
        return b""

    def drain(self) -> None:
        """Read (and discard) up to the end of the member."""
        while self.read(_RAW_CHUNK_BYTES):
            pass

    def close(self) -> None:
        """Nothing to release (the raw input belongs to the caller)."""


@functools.cache
def _quiet_iterator_class() -> type:
    from warcio.archiveiterator import WARCIterator

    # warcio logs a warning, with the URI, for every WARC-Target-URI holding spaces (it then
    # percent-encodes them): a hostile file of a million such records would flood the worker
    # and driver logs. The URI is still read (fixed); only the log line is silenced.
    logging.getLogger("warcio.recordloader").setLevel(logging.ERROR)

    class _QuietWARCIterator(WARCIterator):  # type: ignore[misc]
        """warcio writes a warning with the whole offending line to stderr when a record is
        not followed by a blank line (bad Content-Length); we count ``err_count`` instead."""

        INC_RECORD = ""

    return _QuietWARCIterator


def _capped_reader_class(max_line_bytes: int) -> type:
    from warcio.bufferedreaders import BufferedReader

    class _CappedLineReader(BufferedReader):  # type: ignore[misc]
        """warcio's buffered reader without decompression, with header lines cut at a bound
        (warcio's own readline() grows a line without limit)."""

        def readline(self, length: int | None = None) -> bytes:
            if length is None or length <= 0 or length > max_line_bytes:
                length = max_line_bytes
            return super().readline(length)

    return _CappedLineReader


# --------------------------------------------------------------------------------------
# Payload decoding: chunked transfer encoding and content encodings, all bounded.
# --------------------------------------------------------------------------------------

_CHUNK_SIZE_LINE = re.compile(
    rb"[ \t]{0,16}([0-9a-fA-F]{1,16})[ \t]{0,16}(?:;[^\r\n]{0,1024})?\r?\n"
)


def dechunk(data: bytes) -> tuple[bytes, bool]:
    """Undo HTTP chunked transfer encoding. Returns ``(body, ok)``; ``ok`` is False (and the
    input is returned as is) when ``data`` does not start like a chunked body. A body cut
    short (size cap, truncated record) keeps what it has. Output is never longer than input."""
    out = bytearray()
    pos = 0
    first = True
    while pos < len(data):
        m = _CHUNK_SIZE_LINE.match(data, pos)
        if m is None:
            if first:
                return data, False
            break
        first = False
        size = int(m.group(1), 16)
        if size == 0:
            break
        start = m.end()
        out += data[start : start + size]
        pos = start + size
        # CRLF after the chunk data
        if data.startswith(b"\r\n", pos):
            pos += 2
        elif data.startswith(b"\n", pos):
            pos += 1
    return bytes(out), True


def _inflate(data: bytes, wbits: int, limit: int) -> tuple[bytes, bool]:
    """zlib-decompress at most ``limit + 1`` bytes; ``ok`` is False if nothing decoded."""
    d = zlib.decompressobj(wbits)
    out = bytearray()
    for i in range(0, len(data), _RAW_CHUNK_BYTES):
        try:
            out += d.decompress(data[i : i + _RAW_CHUNK_BYTES], limit + 1 - len(out))
        except zlib.error:
            return bytes(out), bool(out)
        if len(out) > limit or d.eof:
            break
    return bytes(out), True


def _unbrotli(data: bytes, limit: int) -> tuple[bytes, bool]:
    """Brotli-decompress at most about ``limit + 1`` bytes (output buffer is capped)."""
    import brotli

    d = brotli.Decompressor()
    out = bytearray()
    try:
        out += d.process(data, output_buffer_limit=limit + 1)
        # Pending output is drained with empty input, still under the cap.
        while len(out) <= limit and not d.is_finished() and not d.can_accept_more_data():
            more = d.process(b"", output_buffer_limit=limit + 1 - len(out))
            if not more:
                break
            out += more
    except brotli.error:
        return bytes(out), bool(out)
    return bytes(out), True


def decode_content(body: bytes, content_encoding: str | None, limit: int, counters: Any) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate, br; several, comma-separated) with output
    capped at ``limit + 1`` bytes. Payloads that are not really encoded as declared (crawlers
    often store the decoded body but keep the header) are returned unchanged and counted."""
    if not content_encoding:
        return body
    encodings = [e.strip().lower() for e in content_encoding.split(",") if e.strip()]
    for enc in reversed(encodings):
        if enc in ("identity", "none"):
            continue
        if enc in ("gzip", "x-gzip"):
            out, ok = _inflate(body, 32 + zlib.MAX_WBITS, limit)  # gzip or zlib header
        elif enc == "deflate":
            out, ok = _inflate(body, zlib.MAX_WBITS, limit)
            if not ok:  # servers often send raw deflate without the zlib header
                out, ok = _inflate(body, -zlib.MAX_WBITS, limit)
        elif enc == "br":
            out, ok = _unbrotli(body, limit)
        else:
            counters["content_encoding_unsupported"] += 1
            return body
        if not ok:
            counters["content_encoding_invalid"] += 1
            return body
        counters[f"content_encoding_{enc.replace('x-', '')}"] += 1
        body = out
    return body


# --------------------------------------------------------------------------------------
# Record fields.
# --------------------------------------------------------------------------------------

_HTTP_VERSION = re.compile(r"^https?/\d{1,2}(?:\.\d{1,2})?$", re.IGNORECASE)
_STATUS_CODE = re.compile(r"^(\d{3})(?!\d)")


def parse_http_status(status_line: str) -> int | None:
    """The status code of an HTTP status line, tolerating real-world damage.

    Accepts ``HTTP/1.1 200 OK``, ``HTTP/1.1 HTTP/1.1 200 OK``, ``HTTP/1.0 200``,
    ``http/1.1 200 ok``, ``HTTP/2 200`` and a bare ``200 OK``. None if there is no code.
    """
    for token in status_line.split(None, 8):
        if _HTTP_VERSION.match(token):
            continue
        m = _STATUS_CODE.match(token)
        return int(m.group(1)) if m else None
    return None


def parse_warc_date(value: str | None) -> datetime | None:
    """WARC-Date (ISO 8601, or a 14-digit ARC timestamp) as an aware UTC datetime, or None."""
    if not value:
        return None
    v = value.strip()
    try:
        if len(v) == 14 and v.isdigit():
            dt = datetime.strptime(v, "%Y%m%d%H%M%S")
        else:
            if v.endswith(("Z", "z")):
                v = v[:-1] + "+00:00"
            dt = datetime.fromisoformat(v)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def record_id(value: str | None) -> str | None:
    """WARC-Record-ID without the ``<urn:uuid:`` / ``>`` wrapping (None if missing/empty)."""
    if not value:
        return None
    v = value.strip()
    if v.startswith("<") and v.endswith(">"):
        v = v[1:-1].strip()
    if v[:9].lower() == "urn:uuid:":
        v = v[9:]
    return v or None


def _mime(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


_HTML_START = re.compile(
    rb"^\s{0,512}(?:<!--[^>]{0,512}-->\s{0,64})?<(?:!doctype\s{1,8}html|html|head)\b", re.I
)


def looks_like_html(payload: bytes) -> bool:
    """True if the payload starts like an HTML document (after an optional BOM/whitespace)."""
    head = payload[:_SNIFF_BYTES]
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    return _HTML_START.match(head) is not None


def _read_bounded(stream: Any, limit: int) -> bytes:
    """Read up to ``limit`` bytes (fewer at the end of the record)."""
    parts: list[bytes] = []
    got = 0
    while got < limit:
        b = stream.read(min(limit - got, _RAW_CHUNK_BYTES))
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def parse_warc_fields(payload: bytes) -> dict[str, str]:
    """``key: value`` lines of an ``application/warc-fields`` block (keys lower-cased)."""
    fields: dict[str, str] = {}
    for line in payload.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


# --------------------------------------------------------------------------------------
# The reader.
# --------------------------------------------------------------------------------------


class _FileReader:
    """State for reading one file; see ``read_warc``."""

    def __init__(
        self,
        stream: BinaryIO,
        source: str,
        input_index: int,
        config: ReaderConfig,
        stats: StageStats,
        reject: RejectSink,
    ) -> None:
        self.config = config
        self.stats = stats
        self.reject = reject
        self.source = source
        self.name = os.path.basename(source.rstrip("/")) or source
        self.input_index = input_index
        self.raw = _RawInput(stream, config.max_resync_history_bytes)
        self.ordinal = 0
        self.crawl: str | None = None
        self.records_ok = 0  # records parsed without damage (to tell "not a WARC" apart)
        self.reader_cls = _capped_reader_class(config.max_header_line_bytes)
        self.html_types = {t.strip().lower() for t in config.html_content_types}
        self._started = 0.0
        self._outcome = _OK
        # A too-long Content-Length swallowed (and counted) the next record(s): see _response.
        self._swallowed = False
        # Plain WARC: a record's Content-Length ran past the end of the file; the records it
        # swallowed are found again by scanning from here (see _run_plain).
        self._resync_at: int | None = None
        self.web_records = 0  # response and conversion records seen (WARC vs WET vs WAT)
        self.conversions = 0
        self.wet = False  # the first page record was a conversion: conversions are documents
        self._wat = False

    # -- timing: the reader's own work, not the time the consumer spends between yields --
    def _resume(self) -> None:
        self._started = time.perf_counter()

    def _pause(self) -> None:
        self.stats.seconds += time.perf_counter() - self._started

    def run(self) -> Iterator[Document]:
        self._resume()
        head = self.raw.peek(len(XZ_MAGIC))
        if head.startswith(GZIP_MAGIC):
            body = self._run_gzip()
        elif head.startswith((ZSTD_MAGIC, ZSTD_DICT_MAGIC)):
            body = self._run_zstd()
        elif head.startswith(XZ_MAGIC) or (head.startswith(BZIP2_MAGIC) and head[3:4].isdigit()):
            # Recognised only to be refused clearly (the run fails naming the file).
            kind = "xz" if head.startswith(XZ_MAGIC) else "bzip2"
            self.stats.counters[f"unsupported_compression_{kind}"] += 1
            body = iter(())
        else:
            body = self._run_plain()
        for doc in body:
            self._pause()
            yield doc
            self._resume()
        self.stats.counters[f"input_{self.kind()}"] += 1
        self._pause()

    def kind(self) -> str:
        """What the file turned out to be: ``warc``, ``wet`` (conversion records only),
        ``wat`` (JSON metadata records; reading stopped) or ``no_records``."""
        if self._wat:
            return "wat"
        if self.records_ok == 0:
            return "no_records"
        if self.wet:
            return "wet"
        return "warc"

    # -- zstd: a .warc.zst is a plain WARC once decompressed ------------------------------
    def _run_zstd(self) -> Iterator[Document]:
        raw = self.raw
        try:
            head = raw.peek(8)
            dictionary = None
            if head.startswith(ZSTD_DICT_MAGIC):
                size = int.from_bytes(head[4:8], "little")
                dictionary, used = split_zstd_dictionary(raw.peek(8 + min(size, 1 << 25)))
                raw.read(used)
            decompressed = zstd_decompressor(dictionary).stream_reader(
                raw, read_size=_RAW_CHUNK_BYTES, read_across_frames=True
            )
        except Exception as e:  # no zstandard, or a damaged dictionary frame
            self.stats.counters["zstd_unreadable"] += 1
            self._lost("corrupt_record", f"{type(e).__name__}: {e}"[:300])
            return
        self.stats.counters["zstd"] += 1
        # Offsets of documents are then offsets in the decompressed WARC (docs/format.md).
        self.raw = _RawInput(
            _SafeZstdStream(decompressed, self.stats), self.config.max_resync_history_bytes
        )
        yield from self._run_plain()

    # -- plain (uncompressed) WARC --------------------------------------------------------
    def _run_plain(self) -> Iterator[Document]:
        raw = self.raw
        resyncing = False
        looks_like_warc = raw.peek(16).lstrip().startswith(b"WARC/")
        while True:
            # A leading blank line would make warcio read one header-less record to EOF.
            while raw.peek(1) in (b"\r", b"\n", b" ", b"\t"):
                raw.read(1)
            if not raw.peek(1):
                return
            start = raw.pos
            it = self._iterator(raw)
            outcome = yield from self._iterate(it, member_offset=None, quiet=resyncing)
            if outcome in (_OK, _STOP):
                return
            if self.records_ok == 0 and not resyncing and not looks_like_warc:
                self.stats.counters["not_a_warc"] += 1
                return  # not a WARC at all: don't scan the whole file for one
            if not resyncing:
                self.stats.counters["resyncs"] += 1
            resyncing = True
            if self._resync_at is not None:
                # A record ran past the end of the file: the records its Content-Length
                # swallowed start after its header. Its own bytes are accounted for by it;
                # any that fell out of the bounded history are counted as skipped.
                scan_from = self._resync_at
                self._resync_at = None
                if scan_from < raw.oldest:
                    self.stats.counters["bytes_skipped_past_eof"] += raw.oldest - scan_from
                found = raw.find(_PLAIN_RECORD_START, scan_from)
            else:
                # Resume after what warcio consumed (its read-ahead is still buffered here)
                # at the next line that starts a WARC record.
                consumed = (
                    raw.pos - int(it.reader.rem_length()) if it.reader is not None else raw.pos
                )
                scan_from = max(max(consumed, start + 1) - 1, raw.oldest)
                found = raw.find(_PLAIN_RECORD_START, scan_from)
                end = found if found is not None else raw.pos
                self.stats.counters["bytes_skipped"] += max(0, end - scan_from)
            if found is None:
                return
            raw.read(1)  # the newline before "WARC/"

    # -- gzip: one ArchiveIterator per member, resync on damage ----------------------------
    def _run_gzip(self) -> Iterator[Document]:
        raw = self.raw
        resyncing = False
        while True:
            head = raw.peek(len(GZIP_MAGIC))
            if not head:
                return
            if head != GZIP_MAGIC:
                start = raw.pos
                found = raw.find(GZIP_MAGIC, start)
                end = found if found is not None else raw.pos
                self.stats.counters["bytes_skipped"] += end - start
                if not resyncing:
                    # Junk between or after members: one lost unit of input.
                    self._lost(
                        "corrupt_record", f"{end - start} bytes that are not gzip at {start}"
                    )
                    self.stats.counters["corrupt_member"] += 1
                    resyncing = True
                if found is None:
                    return
                continue
            member_start = raw.pos
            raw.set_mark()
            member = _MemberStream(raw)
            it = self._iterator(member)
            outcome = yield from self._iterate(it, member_start, quiet=resyncing)
            if outcome == _STOP:
                return
            if outcome in (_OK, _BAD_WARC):
                try:
                    member.drain()
                except _TruncatedInput:
                    outcome = _TRUNCATED if outcome == _OK else outcome
                except _CorruptGzip:
                    outcome = _BAD_GZIP if outcome == _OK else outcome
                if outcome == _BAD_WARC and member.done:
                    # The gzip layer is fine: carry on with the next member.
                    if self.records_ok == 0 and self.ordinal <= 1:
                        self.stats.counters["not_a_warc"] += 1
                    raw.clear_mark()
                    resyncing = False
                    continue
            if outcome == _OK:
                raw.clear_mark()
                resyncing = False
                continue
            if not resyncing:
                kind = "truncated_member" if outcome == _TRUNCATED else "corrupt_member"
                self.stats.counters[kind] += 1
            # Corrupt gzip data, or the input ended inside a member: look for the next member
            # header after this one's start. (A member cut short in the middle of a file makes
            # zlib read the following members as its own data until the end of the input; they
            # are still there to be found.)
            resyncing = True
            before = raw.pos
            found = raw.find(GZIP_MAGIC, member_start + 1)
            self.stats.counters["resync_scans"] += 1
            if found is None:
                self.stats.counters["bytes_skipped"] += max(0, raw.pos - before)
                return

    # -- one ArchiveIterator ---------------------------------------------------------------
    def _iterator(self, stream: Any) -> Any:
        it = _quiet_iterator_class()(stream, block_size=_WARCIO_BLOCK_BYTES)
        # We decompress ourselves (see module docstring) and cap header lines.
        it.reader = self.reader_cls(it.fh, block_size=_WARCIO_BLOCK_BYTES)
        return it

    def _iterate(
        self, it: Any, member_offset: int | None, quiet: bool
    ) -> Generator[Document, None, str]:
        """Yield the documents of one iterator; return an outcome (``_OK`` or damage).

        ``quiet``: we are scanning for a member after damage; a candidate that fails before
        its first record is a false start, not another lost record.
        """
        try:
            yield from self._iterate_records(it, member_offset, quiet)
        finally:
            if it.err_count:
                self.stats.counters["content_length_mismatch"] += it.err_count
        return self._outcome

    def _iterate_records(
        self, it: Any, member_offset: int | None, quiet: bool
    ) -> Iterator[Document]:
        records = iter(it)
        parsed_here = 0
        self._outcome = _OK
        while True:
            current: list[Any] = []
            try:
                try:
                    record = next(records)
                except StopIteration:
                    self._outcome = _OK
                    return
                current.append(record)
                self._swallowed = False  # a record parsed: the swallowed region is behind us
                ordinal = self.ordinal
                self.ordinal += 1
                self.stats.docs_in += 1
                record_start = int(it.offset)
                if member_offset is None:
                    # Plain WARC: keep this record's bytes (up to the history bound) so a
                    # Content-Length that runs past the end of the file can be undone.
                    self.raw.set_mark(record_start)
                result = self._handle(record, it, ordinal, member_offset)
            except Exception as e:  # any failure inside warcio or zlib ends this iterator
                kind, reason = self._classify(e)
                if current:
                    self._drop_damaged(current[0], it, member_offset, reason, e)
                elif not (quiet and parsed_here == 0) and not self._swallowed:
                    self._lost(reason, f"{type(e).__name__}: {e}"[:300])
                self._swallowed = False
                self._outcome = kind
                return
            parsed_here += 1
            self.records_ok += 1
            if result is not None:
                yield result
            if self._wat:
                self._outcome = _STOP
                return
            if member_offset is None and _ran_past_eof(record):
                # The block claimed more bytes than the file has: it swallowed every later
                # record. The record itself is counted (truncated_file for a page); scan
                # its bytes again for the records it swallowed.
                self.stats.counters["content_length_past_eof"] += 1
                self._resync_at = record_start
                self._outcome = _BAD_WARC
                return

    @staticmethod
    def _classify(e: Exception) -> tuple[str, str]:
        if isinstance(e, _TruncatedInput):
            return _TRUNCATED, "truncated_file"
        if isinstance(e, _CorruptGzip):
            return _BAD_GZIP, "corrupt_record"
        return _BAD_WARC, "corrupt_record"

    def _lost(self, reason: str, detail: str) -> None:
        """A record (or unreadable stretch) that could not even be parsed: count only."""
        del detail  # nothing to attach it to; the counters carry the information
        # It most likely held a record: keep later ordinals (doc_index) where they would be.
        self.ordinal += 1
        self.stats.docs_in += 1
        self.stats.drop(reason)

    def _drop_damaged(
        self, record: Any, it: Any, member_offset: int | None, reason: str, e: Exception
    ) -> None:
        """The record being read was damaged: drop it (docs_in already counted)."""
        self.stats.drop(reason)
        rec_type = _rec_type(record)
        if rec_type in WEB_RECORD_TYPES:
            # Plain WARC: warcio's ``offset`` still points at the start of this record.
            offset = member_offset if member_offset is not None else int(getattr(it, "offset", 0))
            stub = self._stub(record, self.ordinal - 1, offset, 0)
            self.reject(stub, STAGE_NAME, Reject(reason, f"{type(e).__name__}: {e}"[:300]))

    # -- one record -----------------------------------------------------------------------
    def _offset(self, it: Any, member_offset: int | None) -> tuple[int, int]:
        """(file offset, offset inside the gzip member); consumes the rest of the record."""
        inner = int(it.get_record_offset())
        if member_offset is None:
            return inner, 0
        return member_offset, inner

    def _stub(self, record: Any, ordinal: int, offset: int, inner: int) -> Document:
        h = record.rec_headers
        rid = record_id(h.get_header("WARC-Record-ID"))
        if rid is None:
            rid = f"{self.name}@{offset}" if inner == 0 else f"{self.name}@{offset}+{inner}"
        url = h.get_header("WARC-Target-URI") or ""
        return Document(
            id=rid,
            url=unwrap_wayback_url(url) if url else "",
            warc_target_uri=url,
            source=self.source,
            offset=offset,
            doc_index=(self.input_index << 32) | ordinal,
            crawl=self.crawl,
            warc_date=parse_warc_date(h.get_header("WARC-Date")),
        )

    def _skip(
        self,
        reason: str,
        record: Any,
        it: Any,
        ordinal: int,
        member_offset: int | None,
        detail: str = "",
    ) -> None:
        offset, inner = self._offset(it, member_offset)
        self.stats.drop(reason)
        if _rec_type(record) in WEB_RECORD_TYPES:
            stub = self._stub(record, ordinal, offset, inner)
            self.reject(stub, STAGE_NAME, Reject(reason, detail))

    def _handle(
        self, record: Any, it: Any, ordinal: int, member_offset: int | None
    ) -> Document | None:
        if record.length is None and member_offset is None:
            # Without a Content-Length warcio would read the rest of a plain file as this
            # record's block; treat it as damage instead and resync at the next record.
            raise _BadRecord("WARC record without a valid Content-Length")
        rec_type = _rec_type(record)
        if rec_type == "warcinfo":
            info = _read_bounded(record.raw_stream, _WARCINFO_MAX_BYTES)
            part_of = parse_warc_fields(info).get("ispartof")
            if part_of:
                self.crawl = part_of
            self._skip("warcinfo", record, it, ordinal, member_offset)
            return None
        if rec_type in _COUNTED_ONLY_TYPES:
            if (
                rec_type == "metadata"
                and self.web_records == 0
                and _mime(record.rec_headers.get_header("Content-Type")) == "application/json"
            ):
                # A WAT file: JSON metadata about pages, no page text. Stop; phase 1 refuses
                # the file with one line (it is a wrong input, not damage to count).
                self._wat = True
            self._skip(rec_type, record, it, ordinal, member_offset)
            return None
        if rec_type in ("response", "conversion"):
            self.web_records += 1
        if rec_type == "conversion":
            self.conversions += 1
            # A WET file starts with conversion records: they are its documents. In a WARC
            # (its first page record a response) a conversion is a derivative: counted only.
            if self.conversions == 1 and self.web_records == 1:
                self.wet = True
            if self.wet:
                return self._conversion(record, it, ordinal, member_offset)
        if rec_type not in WEB_RECORD_TYPES:
            self._skip("other_record_type", record, it, ordinal, member_offset)
            # Only known names become counter keys (junk input must not grow the stats).
            known = rec_type if rec_type in _OTHER_KNOWN_TYPES else "unknown"
            self.stats.counters[f"record_type_{known}"] += 1
            return None
        if rec_type != "response":
            # A revisit's profile says why it has no payload (e.g. identical-payload-digest).
            detail = (
                (record.rec_headers.get_header("WARC-Profile") or "")
                if rec_type == "revisit"
                else ""
            )
            self._skip(rec_type, record, it, ordinal, member_offset, detail)
            return None
        return self._response(record, it, ordinal, member_offset)

    def _response(
        self, record: Any, it: Any, ordinal: int, member_offset: int | None
    ) -> Document | None:
        cfg = self.config
        http = record.http_headers
        if http is None or not _HTTP_VERSION.match(http.protocol or ""):
            self._skip(
                "no_http_headers",
                record,
                it,
                ordinal,
                member_offset,
                "payload has no HTTP status line",
            )
            return None
        status = parse_http_status(f"{http.protocol} {http.statusline}")
        if status is None or status not in cfg.allowed_statuses:
            line = f"{http.protocol} {http.statusline}"[:100]
            self._skip(
                "http_status", record, it, ordinal, member_offset, f"status {status} ({line})"
            )
            return None
        content_type = http.get_header("Content-Type")
        mime = _mime(content_type) or _mime(
            record.rec_headers.get_header("WARC-Identified-Payload-Type")
        )
        if mime is not None and mime not in self.html_types:
            self._skip("non_html", record, it, ordinal, member_offset, f"content-type {mime}")
            return None

        limit = cfg.max_payload_bytes
        raw = _read_bounded(record.raw_stream, limit + 1)
        self.stats.bytes_in += len(raw)
        errors_before = it.err_count
        offset, inner = self._offset(it, member_offset)  # reads the rest of the record
        # The block ended before its Content-Length: the file is cut inside this record.
        # (Plain only: in a gzip member a too-long Content-Length just ends at the member.)
        cut_short = member_offset is None and int(getattr(record.raw_stream, "limit", 0) or 0) > 0
        if member_offset is None and it.err_count > errors_before:
            # Plain WARC whose Content-Length is too long: the block ran into the next
            # record. Keep only this record's bytes (the next one is lost and counted when
            # the reader resyncs after it).
            m = _PLAIN_OVERRUN.search(raw)
            if m is not None:
                # Each record start swallowed is a lost record. The parse failure on the
                # rest of the last one is the same loss: don't count it twice.
                for _ in _PLAIN_OVERRUN.finditer(raw, m.start()):
                    self._lost("corrupt_record", "swallowed by a too-long Content-Length")
                self._swallowed = True
                raw = raw[: m.start()]
                self.stats.counters["content_length_overrun"] += 1
        truncated = len(raw) > limit
        body = raw[:limit]
        if "chunked" in (http.get_header("Transfer-Encoding") or "").lower():
            body, ok = dechunk(body)
            self.stats.counters["chunked" if ok else "chunked_invalid"] += 1
        body = decode_content(body, http.get_header("Content-Encoding"), limit, self.stats.counters)
        if len(body) > limit:
            truncated = True
            body = body[:limit]

        def drop(reason: str, detail: str) -> None:
            self.stats.drop(reason)
            self.reject(
                self._stub(record, ordinal, offset, inner), STAGE_NAME, Reject(reason, detail)
            )

        if cut_short:
            drop("truncated_file", f"input ends inside this record after {len(raw)} payload bytes")
            return None
        if mime is None:
            if not (cfg.sniff_missing_content_type and looks_like_html(body)):
                drop("non_html", "no content-type and the payload does not look like HTML")
                return None
            self.stats.counters["content_type_sniffed"] += 1
        if not body.strip():
            drop("empty_payload", f"{len(raw)} payload bytes")
            return None
        if truncated:
            self.stats.counters["payload_truncated"] += 1
        try:
            decoded = decode_html_detailed(body, charset_from_content_type(content_type))
        except Exception as e:  # decode_html is written not to raise; never lose the shard
            drop("decode_error", f"{type(e).__name__}: {e}"[:200])
            return None
        if _looks_binary(decoded.text):
            drop("decode_error", f"binary payload labelled {mime or 'nothing'} ({decoded.charset})")
            return None
        html = decoded.text
        if not html.strip():
            drop("empty_payload", "payload is only whitespace or NUL bytes")
            return None
        self.stats.counters[f"charset_{decoded.source}"] += 1
        doc = self._stub(record, ordinal, offset, inner)
        doc.html = html
        kept = _consent_headers(http)
        if kept:
            doc.metadata["http_headers"] = kept
        self.stats.docs_out += 1
        self.stats.bytes_out += len(html.encode("utf-8"))
        return doc

    def _conversion(
        self, record: Any, it: Any, ordinal: int, member_offset: int | None
    ) -> Document | None:
        """A conversion record (a WET file's extracted text): a document with ``text`` set
        and no HTML, so extraction passes it through."""
        content_type = record.rec_headers.get_header("Content-Type")
        mime = _mime(content_type)
        if mime not in (None, "text/plain"):
            self._skip("conversion", record, it, ordinal, member_offset, f"content-type {mime}")
            return None
        limit = self.config.max_payload_bytes
        raw = _read_bounded(record.raw_stream, limit + 1)
        self.stats.bytes_in += len(raw)
        offset, inner = self._offset(it, member_offset)  # reads the rest of the record

        def drop(reason: str, detail: str) -> None:
            self.stats.drop(reason)
            self.reject(
                self._stub(record, ordinal, offset, inner), STAGE_NAME, Reject(reason, detail)
            )

        if member_offset is None and _ran_past_eof(record):
            drop("truncated_file", f"input ends inside this record after {len(raw)} bytes")
            return None
        if len(raw) > limit:
            self.stats.counters["payload_truncated"] += 1
            raw = raw[:limit]
        # Common Crawl writes WET text as UTF-8; a declared charset wins, as for HTML.
        decoded = decode_html_detailed(raw, charset_from_content_type(content_type) or "utf-8")
        text = decoded.text.strip()
        if not text:
            drop("empty_payload", f"{len(raw)} payload bytes")
            return None
        if _looks_binary(text):
            drop("decode_error", f"binary conversion record ({decoded.charset})")
            return None
        self.stats.counters["conversion_text"] += 1
        doc = self._stub(record, ordinal, offset, inner)
        doc.text = text
        self.stats.docs_out += 1
        self.stats.bytes_out += len(text.encode("utf-8"))
        return doc


def _ran_past_eof(record: Any) -> bool:
    """True once a (consumed) record's block ended before its Content-Length."""
    return int(getattr(record.raw_stream, "limit", 0) or 0) > 0


class _SafeZstdStream:
    """A zstd stream reader whose damage ends the stream (counted) instead of raising: the
    plain reader then sees a cut-off record and counts it as ``truncated_file``."""

    def __init__(self, reader: Any, stats: StageStats) -> None:
        self._reader = reader
        self._stats = stats
        self._failed = False

    def read(self, n: int | None = -1) -> bytes:
        if self._failed:
            return b""
        try:
            return bytes(self._reader.read(n if n is not None and n > 0 else _RAW_CHUNK_BYTES))
        except Exception:  # zstandard.ZstdError: corrupt or truncated frame
            self._failed = True
            self._stats.counters["corrupt_zstd"] += 1
            return b""


def _consent_headers(http: Any) -> dict[str, str]:
    """The opt-out headers the consent filter reads (lower-case names; repeats joined)."""
    from dataproc.stages.consent import CONSENT_HEADERS

    kept: dict[str, str] = {}
    for name, value in http.headers:
        key = name.strip().lower()
        if key in CONSENT_HEADERS:
            kept[key] = f"{kept[key]}\n{value}" if key in kept else value
    return kept


def _rec_type(record: Any) -> str | None:
    t = record.rec_type
    return t.strip().lower() if isinstance(t, str) and t.strip() else None


# Control characters that never occur in text (tab, LF, FF, CR excluded) plus U+FFFD.
_BINARY_CHARS = re.compile("[\x00-\x08\x0b\x0e-\x1f\ufffd]")
_BINARY_SAMPLE_CHARS = 4096
_BINARY_MAX_FRACTION = 0.25


def _looks_binary(text: str) -> bool:
    """An image or PDF served as text/html decodes to mostly control/replacement chars."""
    sample = text[:_BINARY_SAMPLE_CHARS]
    if not sample:
        return False
    bad = len(_BINARY_CHARS.findall(sample))
    return bad > _BINARY_MAX_FRACTION * len(sample)


def read_warc(
    stream: BinaryIO,
    *,
    source: str,
    input_index: int,
    config: ReaderConfig,
    stats: StageStats,
    reject: RejectSink,
) -> Iterator[Document]:
    """Yield one Document per HTML web page in a WARC file (``.warc`` or ``.warc.gz``).

    ``stream`` is an open binary stream positioned at the start of the file (it is read
    forward once, in bounded chunks); gzip is recognised by its magic bytes, not the name.
    ``source`` is stored on each Document; ``input_index`` gives ``doc_index`` its high bits.
    Every record is counted in ``stats`` (``docs_in == docs_out + sum(dropped)``); dropped
    web-page records (response, revisit, resource, conversion) also go to ``reject``.
    Damaged input never raises: it is counted (``corrupt_record``/``truncated_file`` drops,
    ``corrupt_member``/``not_a_warc`` counters) and reading resumes where possible.
    """
    yield from _FileReader(stream, source, input_index, config, stats, reject).run()
