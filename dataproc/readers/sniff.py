"""What an input file is, from its first bytes: WARC, WET, WAT, ARC, HTML or something else.

``run --dry-run`` prints it for every local input, and a run checks it before Ray starts, so a
wrong file (a WAT, a bzip2 archive, a saved web page) is refused with one line instead of
becoming "0 documents, exit 0". The reader itself never trusts names either: it recognises
gzip and zstd by their magic bytes, and says which kind of file it read in its counters.

Compression: gzip (per record or whole file) and zstd (``.warc.zst``, with or without the
dictionary frame of the IIPC warc-zstd spec, via the ``zstandard`` package) are read;
bzip2 and xz are recognised only to be refused with a clear message.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

from dataproc.errors import InputError

GZIP_MAGIC = b"\x1f\x8b\x08"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# A zstd skippable frame with this magic holds the dictionary of a .warc.zst (warc-zstd spec).
ZSTD_DICT_MAGIC = b"\x5d\x2a\x4d\x18"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"

SNIFF_RAW_BYTES = 256 * 1024
"""Compressed bytes read from the start of a file to tell what it is."""
_SNIFF_TEXT_BYTES = 256 * 1024  # decompressed bytes looked at
_MAX_DICT_BYTES = 16 * 1024 * 1024

KINDS: tuple[str, ...] = ("WARC", "WET", "WAT", "ARC", "HTML", "empty", "other")
"""What ``sniff`` can say a file is. WARC and WET are read; everything else is refused."""
READABLE_KINDS = frozenset({"WARC", "WET"})
READABLE_COMPRESSIONS = frozenset({"none", "gzip", "zstd"})

# Names a folder input lists (and then checks): anything that looks like web-archive data,
# so that a .warc.bz2 or .warc.wat.gz next to the .warc.gz files is refused, not skipped.
ARCHIVE_NAME = re.compile(
    r"\.(?:warc|arc|wet|wat)(?:\.(?:wet|wat))?(?:\.(?:gz|zst|zstd|bz2|xz))?$", re.IGNORECASE
)

_WARC_LINE = re.compile(rb"(?m)^WARC/\d{1,2}\.\d{1,2}\r?$")
_WARC_TYPE = re.compile(rb"(?im)^WARC-Type:[ \t]*([a-z]{1,32})")
_JSON_CONTENT = re.compile(rb"(?im)^Content-Type:[ \t]*application/json")
_FILENAME = re.compile(rb"(?im)^WARC-Filename:[ \t]*\S*\.(wet|wat)(?:\.gz|\.zst)?[ \t]*\r?$")
_HTML_START = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s{0,512}(?:<!--.{0,512}?-->\s{0,64})?<(?:!doctype\s{1,8}html|html|head)\b",
    re.IGNORECASE | re.DOTALL,
)


class ZstdUnavailable(Exception):
    """The ``zstandard`` package is not installed (it is a dataproc dependency)."""


@dataclass(frozen=True)
class Sniffed:
    """What the first bytes of a file look like."""

    kind: str  # one of KINDS
    compression: str  # none, gzip, zstd, bzip2, xz
    detail: str = ""
    # The compressed stream is damaged where we looked: the reader may still find records
    # after it (it resyncs), so this alone is no reason to refuse the file.
    damaged: bool = False

    @property
    def readable(self) -> bool:
        """Whether dataproc reads this kind of file (damage inside is the reader's business)."""
        return self.kind in READABLE_KINDS and self.compression in READABLE_COMPRESSIONS

    def describe(self) -> str:
        """Short human form, e.g. ``WET (gzip)`` or ``other (bzip2: not supported)``."""
        extra = f"; {self.detail}" if self.detail else ""
        return f"{self.kind} ({self.compression}{extra})"

    def problem(self) -> str | None:
        """Why dataproc cannot read this file, as one sentence (None if it can)."""
        if self.damaged:
            return None
        if self.compression in ("bzip2", "xz"):
            return (
                f"is {self.compression}-compressed, which dataproc does not read; "
                "recompress it as .warc.gz (gzip per record) or .warc.zst"
            )
        if self.kind == "WAT":
            return (
                "is a WAT file (Common Crawl's JSON metadata records): it holds no page text; "
                "give the matching WARC (or WET) file instead"
            )
        if self.kind == "ARC":
            return "is an ARC file (the pre-WARC format), which dataproc does not read; convert it to WARC"
        if self.kind == "HTML":
            return "is an HTML page, not a web archive; dataproc reads WARC and WET files"
        if self.kind == "empty":
            return "is empty"
        if self.kind == "other":
            what = f" ({self.detail})" if self.detail else ""
            return f"is not a WARC or WET file{what}"
        return None


def _gunzip_head(data: bytes, limit: int) -> tuple[bytes, str]:
    """Decompress the gzip members at the start of ``data`` (up to ``limit`` bytes out)."""
    out = bytearray()
    while data and len(out) < limit:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += d.decompress(data, limit - len(out))
        except zlib.error as e:
            return bytes(out), f"damaged gzip data ({e})"
        if not d.eof:
            break
        data = d.unused_data
        if data and not data.startswith(GZIP_MAGIC):
            break
    return bytes(out), ""


def _zstandard() -> Any:
    try:
        import zstandard
    except ImportError:
        raise ZstdUnavailable(
            "reading .warc.zst needs the zstandard package: pip install zstandard"
        ) from None
    return zstandard


def split_zstd_dictionary(head: bytes) -> tuple[bytes | None, int]:
    """``(dictionary, bytes it occupies)`` of a warc-zstd dictionary frame at the start of
    ``head`` (``(None, 0)`` if the file has none). The dictionary may itself be compressed."""
    if not head.startswith(ZSTD_DICT_MAGIC) or len(head) < 8:
        return None, 0
    size = int.from_bytes(head[4:8], "little")
    if size > _MAX_DICT_BYTES:
        raise InputError(f"zstd dictionary frame of {size} bytes is implausibly large")
    data = head[8 : 8 + size]
    if len(data) < size:
        raise InputError("file ends inside its zstd dictionary frame")
    if data.startswith(ZSTD_MAGIC):
        data = _zstandard().ZstdDecompressor().decompress(data, max_output_size=_MAX_DICT_BYTES)
    return data, 8 + size


def zstd_decompressor(dictionary: bytes | None) -> Any:
    """A ``zstandard.ZstdDecompressor`` (with the file's dictionary, if any)."""
    zstandard = _zstandard()
    if dictionary is None:
        return zstandard.ZstdDecompressor()
    return zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(dictionary))


def _unzstd_head(data: bytes, limit: int) -> tuple[bytes, str]:
    try:
        dictionary, skip = split_zstd_dictionary(data)
        reader = zstd_decompressor(dictionary).stream_reader(data[skip:], read_across_frames=True)
        return _read_up_to(reader, limit), ""
    except ZstdUnavailable as e:
        return b"", str(e)
    except Exception as e:  # zstandard.ZstdError, a bad dictionary frame: damage, not a kind
        return b"", f"damaged zstd data ({type(e).__name__}: {e})"[:200]


def _classify_text(text: bytes, compression: str, note: str) -> Sniffed:
    stripped = text.lstrip()
    if not stripped:
        if note:
            return Sniffed("other", compression, note, damaged=note.startswith("damaged"))
        return Sniffed("empty", compression)
    if _WARC_LINE.search(text) is not None:
        types = {t.lower() for t in _WARC_TYPE.findall(text)}
        name = _FILENAME.search(text)
        named = name.group(1).lower().decode() if name else ""
        if b"response" not in types:
            if named == "wat" or (b"metadata" in types and _JSON_CONTENT.search(text)):
                return Sniffed("WAT", compression)
            if named == "wet" or b"conversion" in types:
                return Sniffed("WET", compression)
        return Sniffed("WARC", compression, note)
    if stripped.startswith(b"filedesc://"):
        return Sniffed("ARC", compression)
    if _HTML_START.match(text):
        return Sniffed("HTML", compression)
    return Sniffed("other", compression, note)


def sniff_bytes(head: bytes) -> Sniffed:
    """What a file starting with ``head`` is (read ``SNIFF_RAW_BYTES`` for a good answer)."""
    if not head:
        return Sniffed("empty", "none")
    if head.startswith(BZIP2_MAGIC) and head[3:4].isdigit():
        return Sniffed("other", "bzip2")
    if head.startswith(XZ_MAGIC):
        return Sniffed("other", "xz")
    if head.startswith(GZIP_MAGIC):
        text, note = _gunzip_head(head, _SNIFF_TEXT_BYTES)
        return _classify_text(text, "gzip", note)
    if head.startswith((ZSTD_MAGIC, ZSTD_DICT_MAGIC)):
        text, note = _unzstd_head(head, _SNIFF_TEXT_BYTES)
        return _classify_text(text, "zstd", note)
    return _classify_text(head[:_SNIFF_TEXT_BYTES], "none", "")


def sniff_stream(stream: BinaryIO) -> Sniffed:
    """Read the first bytes of an open binary stream and sniff them."""
    return sniff_bytes(_read_up_to(stream, SNIFF_RAW_BYTES))


def _read_up_to(stream: Any, limit: int) -> bytes:
    """Read until ``limit`` bytes or the end of ``stream`` (reads may return less)."""
    out = bytearray()
    while len(out) < limit:
        chunk = stream.read(limit - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)
