"""The HTTP layer of a response record: status line, Content-Type, and the payload's
transfer and content encodings undone with bounded output.

warcio's decoders inflate a block at a time without a limit (a brotli bomb would expand
without bound), so chunked transfer encoding and ``Content-Encoding`` (gzip/deflate/br) are
undone here, each capped.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

from dataproc.readers.stream import RAW_CHUNK_BYTES

_SNIFF_BYTES = 1024

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
    for i in range(0, len(data), RAW_CHUNK_BYTES):
        try:
            out += d.decompress(data[i : i + RAW_CHUNK_BYTES], limit + 1 - len(out))
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
# Headers.
# --------------------------------------------------------------------------------------

HTTP_VERSION = re.compile(r"^https?/\d{1,2}(?:\.\d{1,2})?$", re.IGNORECASE)
_STATUS_CODE = re.compile(r"^(\d{3})(?!\d)")


def parse_http_status(status_line: str) -> int | None:
    """The status code of an HTTP status line, tolerating real-world damage.

    Accepts ``HTTP/1.1 200 OK``, ``HTTP/1.1 HTTP/1.1 200 OK``, ``HTTP/1.0 200``,
    ``http/1.1 200 ok``, ``HTTP/2 200`` and a bare ``200 OK``. None if there is no code.
    """
    for token in status_line.split(None, 8):
        if HTTP_VERSION.match(token):
            continue
        m = _STATUS_CODE.match(token)
        return int(m.group(1)) if m else None
    return None


def mime_type(content_type: str | None) -> str | None:
    """The lower-cased media type of a Content-Type value (parameters dropped), or None."""
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


# HTTP response headers the reader keeps for the consent filter (lower-case names).
CONSENT_HEADERS = ("x-robots-tag", "tdm-reservation", "tdm-policy")


def consent_headers(http: Any) -> dict[str, str]:
    """The opt-out headers the consent filter reads (lower-case names; repeats joined)."""
    kept: dict[str, str] = {}
    for name, value in http.headers:
        key = name.strip().lower()
        if key in CONSENT_HEADERS:
            kept[key] = f"{kept[key]}\n{value}" if key in kept else value
    return kept
