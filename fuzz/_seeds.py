"""Seed inputs for the fuzzers: small valid and lightly damaged WARCs and HTML pages.

Coverage-guided fuzzing finds deep paths much faster from well-formed seeds than from
nothing, so each harness writes these into its corpus directory when that is empty.
"""

from __future__ import annotations

import gzip
import sys
import zlib
from pathlib import Path

_TESTS = Path(__file__).resolve().parent.parent / "tests"


def warc_seeds() -> list[bytes]:
    """WARC files (plain and per-record gzip) covering every record type and encoding."""
    sys.path.insert(0, str(_TESTS))
    from warc_builder import WarcBuilder, chunked

    page = (
        "<html><head><title>t</title></head><body><p>" + "Hello world. " * 20 + "</p></body></html>"
    )
    b = (
        WarcBuilder()
        .warcinfo(is_part_of="CC-MAIN-2024-22")
        .request("http://example.com/")
        .response("http://example.com/", page)
        .response(
            "http://example.com/gz",
            gzip.compress(page.encode()),
            headers=[("Content-Encoding", "gzip")],
        )
        .response(
            "http://example.com/chunked",
            chunked(page.encode()),
            headers=[("Transfer-Encoding", "chunked")],
        )
        .response(
            "http://example.com/deflate",
            zlib.compress(page.encode()),
            headers=[("Content-Encoding", "deflate")],
        )
        .response("http://example.com/404", "nope", status_line="HTTP/1.1 404 Not Found")
        .revisit("http://example.com/", refers_to="<urn:uuid:1>")
        .metadata("http://example.com/")
        .resource("http://example.com/r", page)
    )
    seeds = [b.build(gzip=True), b.build(gzip=False)]
    seeds.append(WarcBuilder("WARC/0.18").response("http://a.example/", page).build(gzip=False))
    seeds.append(WarcBuilder("WARC/1.1").response("http://a.example/", page).build(gzip=True))
    return seeds


def html_seeds() -> list[bytes]:
    """HTML payloads with declared and undeclared charsets, nesting and odd bytes."""
    body = "<p>" + "Some ordinary text with a few words in it. " * 10 + "</p>"
    return [
        f"<html><head><meta charset='utf-8'></head><body><article>{body}</article></body></html>".encode(),
        f"<html><head><meta charset='iso-8859-1'></head><body>{body}é</body></html>".encode(
            "latin-1"
        ),
        ("<div>" * 200 + body + "</div>" * 200).encode(),
        b"\xef\xbb\xbf<html><body>" + body.encode() + b"</body></html>",
        b"<html><body><p>Mail me at a@example.com or +1 212 555 0100.</p></body></html>",
    ]


def write_seeds(corpus: Path, seeds: list[bytes]) -> None:
    """Write ``seeds`` into ``corpus`` if it holds no file yet."""
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    for i, data in enumerate(seeds):
        (corpus / f"seed-{i:02d}").write_bytes(data)
