"""Build WARC files in code, for tests (no fixtures on disk, no network).

Chain record methods, then ``build()``::

    data = (
        WarcBuilder()
        .warcinfo(is_part_of="CC-MAIN-2024-22")
        .request("http://example.com/")
        .response("http://example.com/", "<html><body>Hi</body></html>")
        .metadata("http://example.com/", {"fetchTimeMs": "12"})
        .build(gzip=True)          # one gzip member per record, as Common Crawl writes them
    )

Every record method takes ``record_id``/``date``/``warc_headers`` overrides; HTTP records
take a raw ``status_line`` and ``headers`` list so malformed captures can be written as-is.
``raw()`` appends arbitrary bytes (garbage, a hand-made record) as its own unit.
``build_units()`` returns each unit's bytes separately, so tests can corrupt one member.
"""

from __future__ import annotations

import gzip as _gzip
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

CRLF = b"\r\n"
DEFAULT_DATE = "2024-05-18T12:00:00Z"


def _b(data: bytes | str, encoding: str = "utf-8") -> bytes:
    return data if isinstance(data, bytes) else data.encode(encoding)


def gzip_member(data: bytes, mtime: int = 0) -> bytes:
    """``data`` as one complete gzip member (deterministic: fixed mtime)."""
    return _gzip.compress(data, mtime=mtime)


def chunked(body: bytes, chunk_bytes: int = 7) -> bytes:
    """``body`` in HTTP chunked transfer encoding (small chunks to exercise the decoder)."""
    out = bytearray()
    for i in range(0, len(body), chunk_bytes):
        piece = body[i : i + chunk_bytes]
        out += f"{len(piece):x}\r\n".encode() + piece + CRLF
    out += b"0\r\n\r\n"
    return bytes(out)


class WarcBuilder:
    """Accumulates WARC records (or raw byte units) and serialises them.

    ``version`` is the WARC version line (``WARC/1.0``, ``WARC/1.1``, ``WARC/0.18``).
    Record IDs are deterministic (``uuid.UUID(int=n)``) unless given.
    """

    def __init__(self, version: str = "WARC/1.0") -> None:
        self.version = version
        self.units: list[bytes] = []
        self._n = 0

    # -- generic ---------------------------------------------------------------------------
    def next_id(self) -> str:
        """A fresh deterministic ``<urn:uuid:...>`` record id."""
        self._n += 1
        return f"<urn:uuid:{uuid.UUID(int=self._n)}>"

    def record(
        self,
        warc_type: str,
        block: bytes | str,
        *,
        url: str | None = None,
        content_type: str | None = None,
        record_id: str | None = None,
        date: str | None = DEFAULT_DATE,
        warc_headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content_length: int | None = None,
    ) -> WarcBuilder:
        """Append any record: ``block`` is the full record body (after the WARC headers).

        ``record_id=""`` omits WARC-Record-ID; ``date=None`` omits WARC-Date;
        ``content_length`` overrides the (otherwise correct) Content-Length.
        """
        body = _b(block)
        headers: list[tuple[str, str]] = [("WARC-Type", warc_type)]
        rid = self.next_id() if record_id is None else record_id
        if rid:
            headers.append(("WARC-Record-ID", rid))
        if date is not None:
            headers.append(("WARC-Date", date))
        if url is not None:
            headers.append(("WARC-Target-URI", url))
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        if warc_headers:
            items = warc_headers.items() if isinstance(warc_headers, Mapping) else warc_headers
            headers.extend(items)
        length = len(body) if content_length is None else content_length
        headers.append(("Content-Length", str(length)))
        head = self.version.encode() + CRLF
        head += b"".join(f"{k}: {v}".encode() + CRLF for k, v in headers)
        self.units.append(head + CRLF + body + CRLF + CRLF)
        return self

    def raw(self, data: bytes) -> WarcBuilder:
        """Append raw bytes as one unit (gzipped on its own by ``build(gzip=True)``)."""
        self.units.append(data)
        return self

    # -- typed records ----------------------------------------------------------------------
    def warcinfo(
        self,
        is_part_of: str | None = None,
        fields: Mapping[str, str] | None = None,
        **kw: object,
    ) -> WarcBuilder:
        """A warcinfo record (``application/warc-fields``), with ``isPartOf`` if given."""
        items = dict(fields or {})
        if is_part_of is not None:
            items["isPartOf"] = is_part_of
        block = "".join(f"{k}: {v}\r\n" for k, v in items.items())
        return self.record("warcinfo", block, content_type="application/warc-fields", **kw)  # type: ignore[arg-type]

    @staticmethod
    def http_block(
        status_line: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
    ) -> bytes:
        """An HTTP message: status line, headers, blank line, body (all written verbatim)."""
        head = status_line.encode("latin-1") + CRLF
        head += b"".join(f"{k}: {v}".encode("latin-1") + CRLF for k, v in headers)
        return head + CRLF + body

    def response(
        self,
        url: str,
        body: bytes | str,
        *,
        status_line: str = "HTTP/1.1 200 OK",
        content_type: str | None = "text/html; charset=utf-8",
        headers: Iterable[tuple[str, str]] | None = None,
        encoding: str = "utf-8",
        http_block: bytes | None = None,
        **kw: object,
    ) -> WarcBuilder:
        """A response record. ``content_type`` becomes the HTTP Content-Type (None: omitted);
        ``headers`` are extra HTTP headers; a str ``body`` is encoded with ``encoding``;
        ``http_block`` replaces the whole HTTP message (e.g. no HTTP headers at all)."""
        hdrs: list[tuple[str, str]] = []
        if content_type is not None:
            hdrs.append(("Content-Type", content_type))
        hdrs.extend(headers or [])
        block = (
            http_block
            if http_block is not None
            else self.http_block(status_line, hdrs, _b(body, encoding))
        )
        return self.record(
            "response",
            block,
            url=url,
            content_type="application/http; msgtype=response",
            **kw,  # type: ignore[arg-type]
        )

    def request(self, url: str, *, method: str = "GET", **kw: object) -> WarcBuilder:
        """A request record (GET by default)."""
        host = url.split("/")[2] if "//" in url else url
        block = self.http_block(
            f"{method} / HTTP/1.1", [("Host", host), ("User-Agent", "test")], b""
        )
        return self.record(
            "request",
            block,
            url=url,
            content_type="application/http; msgtype=request",
            **kw,  # type: ignore[arg-type]
        )

    def revisit(
        self,
        url: str,
        *,
        refers_to: str | None = None,
        status_line: str = "HTTP/1.1 200 OK",
        headers: Iterable[tuple[str, str]] | None = None,
        **kw: object,
    ) -> WarcBuilder:
        """A revisit record (identical-payload-digest profile) with HTTP headers only."""
        extra = [
            ("WARC-Profile", "http://netpreserve.org/warc/1.0/revisit/identical-payload-digest"),
            ("WARC-Payload-Digest", "sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ]
        if refers_to:
            extra.append(("WARC-Refers-To", refers_to))
        kw["warc_headers"] = extra + list(kw.pop("warc_headers", None) or [])  # type: ignore[call-overload]
        block = self.http_block(status_line, list(headers or [("Content-Type", "text/html")]), b"")
        return self.record(
            "revisit",
            block,
            url=url,
            content_type="application/http; msgtype=response",
            **kw,  # type: ignore[arg-type]
        )

    def metadata(
        self, url: str, fields: Mapping[str, str] | None = None, **kw: object
    ) -> WarcBuilder:
        """A metadata record (``application/warc-fields``)."""
        block = "".join(f"{k}: {v}\r\n" for k, v in (fields or {"via": url}).items())
        return self.record("metadata", block, url=url, content_type="application/warc-fields", **kw)  # type: ignore[arg-type]

    def resource(
        self, url: str, body: bytes | str, *, content_type: str = "text/html", **kw: object
    ) -> WarcBuilder:
        """A resource record (payload stored without HTTP headers)."""
        return self.record("resource", body, url=url, content_type=content_type, **kw)  # type: ignore[arg-type]

    def conversion(
        self, url: str, body: bytes | str, *, content_type: str = "text/plain", **kw: object
    ) -> WarcBuilder:
        """A conversion record (e.g. extracted text)."""
        return self.record("conversion", body, url=url, content_type=content_type, **kw)  # type: ignore[arg-type]

    # -- output -----------------------------------------------------------------------------
    def build_units(self, gzip: bool = True) -> list[bytes]:
        """Each unit's bytes (a gzip member each when ``gzip``), in order."""
        return [gzip_member(u) if gzip else u for u in self.units]

    def offsets(self, gzip: bool = True) -> list[int]:
        """Byte offset of every unit in ``build(gzip)``."""
        out, pos = [], 0
        for u in self.build_units(gzip):
            out.append(pos)
            pos += len(u)
        return out

    def build(self, gzip: bool = True) -> bytes:
        """The whole file: per-record gzip members (Common Crawl style) or plain WARC."""
        return b"".join(self.build_units(gzip))

    def write(self, path: str | Path, gzip: bool | None = None) -> Path:
        """Write the file; ``gzip`` defaults to True when the name ends in ``.gz``."""
        p = Path(path)
        p.write_bytes(self.build(str(p).endswith(".gz") if gzip is None else gzip))
        return p
