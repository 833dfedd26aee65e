"""Record -> document policy: which WARC records become Documents, and why the others are
dropped.

Every record counts once in ``docs_in`` and is either a document (``docs_out``) or a drop
with one of ``REASONS``; dropped web-page records also go to the reject sink. The walk over
the file (gzip members, resync after damage) is ``readers.warc``; this module sees one
parsed record at a time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from dataproc.document import Document, Reject, RejectSink
from dataproc.readers.charset import charset_from_content_type, decode_html_detailed
from dataproc.readers.config import ReaderConfig
from dataproc.readers.http import (
    HTTP_VERSION,
    consent_headers,
    dechunk,
    decode_content,
    looks_like_html,
    mime_type,
    parse_http_status,
)
from dataproc.readers.stream import RAW_CHUNK_BYTES
from dataproc.readers.urls import unwrap_wayback_url
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

# The start of the next record inside a block whose Content-Length was too long (plain WARC).
_PLAIN_OVERRUN = re.compile(rb"\r?\n\r?\nWARC/\d{1,2}\.\d{1,2}\r?\n")
_WARCINFO_MAX_BYTES = 64 * 1024


class BadRecord(Exception):
    """A WARC record that warcio parsed but that cannot be read safely."""


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


def _read_bounded(stream: Any, limit: int) -> bytes:
    """Read up to ``limit`` bytes (fewer at the end of the record)."""
    parts: list[bytes] = []
    got = 0
    while got < limit:
        b = stream.read(min(limit - got, RAW_CHUNK_BYTES))
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
# The policy: one parsed record -> a Document or a counted drop.
# --------------------------------------------------------------------------------------


class RecordPolicy:
    """Turns the parsed records of one file into Documents or counted drops.

    Holds what a file's earlier records decide for the later ones: the crawl name from
    ``warcinfo``, whether conversion records are the documents (a WET file) and whether the
    file is a WAT (``wat``: the reader stops). ``on_swallowed(n)`` is told when a record's
    too-long Content-Length swallowed ``n`` later records (the reader counts them as lost).
    """

    def __init__(
        self,
        source: str,
        input_index: int,
        config: ReaderConfig,
        stats: StageStats,
        reject: RejectSink,
        on_swallowed: Callable[[int], None],
    ) -> None:
        self.config = config
        self.stats = stats
        self.reject = reject
        self.source = source
        self.name = os.path.basename(source.rstrip("/")) or source
        self.input_index = input_index
        self.on_swallowed = on_swallowed
        self.crawl: str | None = None
        self.html_types = {t.strip().lower() for t in config.html_content_types}
        self.web_records = 0  # response and conversion records seen (WARC vs WET vs WAT)
        self.conversions = 0
        self.wet = False  # the first page record was a conversion: conversions are documents
        self.wat = False

    def drop_damaged(
        self,
        record: Any,
        it: Any,
        member_offset: int | None,
        ordinal: int,
        reason: str,
        e: Exception,
    ) -> None:
        """The record being read was damaged: drop it (docs_in already counted)."""
        self.stats.drop(reason)
        if record_type(record) in WEB_RECORD_TYPES:
            # Plain WARC: warcio's ``offset`` still points at the start of this record.
            offset = member_offset if member_offset is not None else int(getattr(it, "offset", 0))
            stub = self._stub(record, ordinal, offset, 0)
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
        if record_type(record) in WEB_RECORD_TYPES:
            stub = self._stub(record, ordinal, offset, inner)
            self.reject(stub, STAGE_NAME, Reject(reason, detail))

    def handle(
        self, record: Any, it: Any, ordinal: int, member_offset: int | None
    ) -> Document | None:
        """The Document for one parsed record, or None (the record is counted as a drop).
        Raises on damage (the reader ends the iterator and resyncs)."""
        if record.length is None and member_offset is None:
            # Without a Content-Length warcio would read the rest of a plain file as this
            # record's block; treat it as damage instead and resync at the next record.
            raise BadRecord("WARC record without a valid Content-Length")
        rec_type = record_type(record)
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
                and mime_type(record.rec_headers.get_header("Content-Type")) == "application/json"
            ):
                # A WAT file: JSON metadata about pages, no page text. Stop; phase 1 refuses
                # the file with one line (it is a wrong input, not damage to count).
                self.wat = True
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
        if http is None or not HTTP_VERSION.match(http.protocol or ""):
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
        mime = mime_type(content_type) or mime_type(
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
                self.on_swallowed(sum(1 for _ in _PLAIN_OVERRUN.finditer(raw, m.start())))
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
        kept = consent_headers(http)
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
        mime = mime_type(content_type)
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

        if member_offset is None and ran_past_eof(record):
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


def ran_past_eof(record: Any) -> bool:
    """True once a (consumed) record's block ended before its Content-Length."""
    return int(getattr(record.raw_stream, "limit", 0) or 0) > 0


def record_type(record: Any) -> str | None:
    """The record's WARC-Type, lower-cased (None if missing or blank)."""
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
