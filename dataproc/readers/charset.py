"""Turn an HTML payload's bytes into text, the way a browser would pick the encoding.

Order: byte-order mark, then the HTTP ``Content-Type`` charset, then ``<meta charset>`` /
``<meta http-equiv>`` / ``<?xml encoding>`` in the first 4 KB, then detection (valid UTF-8,
else charset-normalizer on a bounded sample), then UTF-8 with replacement characters.
A declared charset is only used if the bytes really decode with it: pages that lie
(``utf-8`` declared, cp1252 bytes) fall through to the next step instead of turning into
mojibake or raising. The result never contains NUL characters or lone surrogates.
"""

from __future__ import annotations

import codecs
import re
from typing import NamedTuple

META_SCAN_BYTES = 4096
"""How far into the payload ``<meta charset>`` is looked for (HTML spec: 1024; we allow more)."""

DETECT_SAMPLE_BYTES = 32 * 1024
"""At most this many bytes are given to charset-normalizer (detection is slow on big input)."""

# Sources, in the order they are tried; the reader counts them as `charset_<source>`.
SOURCES = ("bom", "http", "meta", "detected", "fallback")

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# What browsers really use for these labels (WHATWG Encoding Standard): decoding with the
# superset recovers characters that the strict ISO/legacy codec would reject.
_SUPERSETS = {
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
}
# Labels browsers know under names Python does not.
_ALIASES = {
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "x-euc-jp": "euc_jp",
    "x-gbk": "gb18030",
    "unicode-1-1-utf-8": "utf-8",
    "x-mac-roman": "mac_roman",
    "x-mac-cyrillic": "mac_cyrillic",
    "ks_c_5601-1987": "cp949",
    "x-cp1252": "cp1252",
}
# Text codecs that are not web encodings (or are attack vectors, like UTF-7): never used.
_REFUSED = frozenset(
    {
        "undefined",
        "idna",
        "punycode",
        "unicode_escape",
        "raw_unicode_escape",
        "utf_7",
        "mbcs",
        "oem",
    }
)

# Bounded quantifiers only: linear-time on any input (the scanned prefix is 4 KB anyway).
_META_CHARSET = re.compile(
    rb"<meta[^>]{0,1024}?charset\s{0,16}=\s{0,16}[\"']?\s{0,16}([a-z0-9_:.+-]{1,40})",
    re.IGNORECASE,
)
_XML_ENCODING = re.compile(
    rb"^\s{0,64}<\?xml[^>]{0,256}?encoding\s{0,16}=\s{0,16}[\"']([a-z0-9_:.+-]{1,40})",
    re.IGNORECASE,
)
_HEADER_CHARSET = re.compile(r"charset\s{0,16}=\s{0,16}[\"']?\s{0,16}([a-z0-9_:.+-]{1,40})", re.I)
# How much more "chaos" (charset-normalizer's mess score, 0..1) cp1252 may show and still win.
_CP1252_CHAOS_SLACK = 0.1
# ... and how much less language coherence (0..1).
_CP1252_COHERENCE_SLACK = 0.1
_SURROGATES = re.compile("[\ud800-\udfff]")


class Decoded(NamedTuple):
    """The decoded text, the Python codec that produced it and where that choice came from."""

    text: str
    charset: str
    source: str


def charset_from_content_type(content_type: str | None) -> str | None:
    """The ``charset=`` parameter of a Content-Type header value, if any (not validated)."""
    if not content_type:
        return None
    m = _HEADER_CHARSET.search(content_type)
    return m.group(1) if m else None


def normalize_charset(label: str | None) -> str | None:
    """Map a charset label to the Python codec a browser would use, or None if unusable.

    Unknown names, bytes-to-bytes codecs (``base64``) and non-web codecs (``utf-7``) give
    None so the caller falls through to the next way of finding the encoding.
    """
    if not label:
        return None
    name = label.strip().strip("\"'").strip().lower()
    if not name or len(name) > 40:
        return None
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name.replace("-", "_") in _REFUSED:
        return None
    return _SUPERSETS.get(info.name, info.name)


def meta_charset(payload: bytes) -> str | None:
    """The charset declared by ``<?xml encoding>`` or ``<meta>`` in the first 4 KB, if any."""
    head = payload[:META_SCAN_BYTES]
    m = _XML_ENCODING.search(head) or _META_CHARSET.search(head)
    return m.group(1).decode("ascii", "replace") if m else None


def _strict_decode(payload: bytes, codec: str) -> str | None:
    """Decode without errors, or None. A multi-byte sequence cut off at the very end (the
    payload may have been truncated at the size cap) is dropped rather than failing."""
    try:
        decoder = codecs.getincrementaldecoder(codec)("strict")
        return decoder.decode(payload, final=False)
    except (UnicodeDecodeError, LookupError, ValueError, TypeError):
        return None


def _detection_sample(payload: bytes) -> bytes:
    """A bounded slice likely to contain the non-ASCII bytes detection needs to see."""
    if len(payload) <= DETECT_SAMPLE_BYTES:
        return payload
    first = next((i for i, b in enumerate(payload[:DETECT_SAMPLE_BYTES]) if b >= 0x80), None)
    if first is not None:
        return payload[:DETECT_SAMPLE_BYTES]
    m = re.search(rb"[\x80-\xff]", payload)
    start = m.start() if m else 0
    start = max(0, start - 1024)
    return payload[start : start + DETECT_SAMPLE_BYTES]


def _detect(payload: bytes) -> str | None:
    """charset-normalizer's best guess for a bounded sample, as a usable codec name.

    Web prior: cp1252 is by far the most common legacy encoding, and charset-normalizer
    often ranks a sibling (cp1257, cp1250) first on short Western text whose few accented
    letters fit both. When cp1252 scores about as well, it wins.
    """
    from charset_normalizer import from_bytes

    sample = _detection_sample(payload)
    try:
        results = list(from_bytes(sample))
    except Exception:  # detection is best-effort; any failure means "don't know"
        return None
    if not results:
        return None
    best = results[0]
    if best.encoding != "cp1252":
        if "cp1252" in best.could_be_from_charset:
            return "cp1252"
        for match in results[1:]:
            if (
                match.encoding == "cp1252"
                and match.chaos <= best.chaos + _CP1252_CHAOS_SLACK
                and match.coherence >= best.coherence - _CP1252_COHERENCE_SLACK
            ):
                return "cp1252"
    return normalize_charset(best.encoding)


def clean_text(text: str) -> str:
    """Remove NUL characters and lone surrogates (they break Parquet, JSON and tokenizers)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():
        # Strict decoders never emit lone surrogates, but check cheaply (encode is C-fast)
        # rather than trust every codec; only then pay for the regex.
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = _SURROGATES.sub("", text)
    return text


def decode_html_detailed(payload: bytes, http_charset: str | None) -> Decoded:
    """Decode ``payload`` (see the module docstring for the order); never raises."""
    for bom, codec in _BOMS:
        if payload.startswith(bom):
            text = _strict_decode(payload, codec)
            if text is not None:
                return Decoded(clean_text(text), codec, "bom")
            break

    declared: list[tuple[str, str]] = []
    http_codec = normalize_charset(http_charset)
    if http_codec is not None:
        declared.append((http_codec, "http"))
    meta_codec = normalize_charset(meta_charset(payload))
    if meta_codec is not None:
        # A <meta> readable as ASCII cannot really be UTF-16: browsers read it as UTF-8.
        if meta_codec.startswith("utf-16") or meta_codec.startswith("utf-32"):
            meta_codec = "utf-8"
        declared.append((meta_codec, "meta"))

    tried: set[str] = set()
    for codec, source in declared:
        if codec in tried:
            continue
        tried.add(codec)
        text = _strict_decode(payload, codec)
        if text is not None:
            return Decoded(clean_text(text), codec, source)

    if "utf-8" not in tried:
        text = _strict_decode(payload, "utf-8")
        if text is not None:
            return Decoded(clean_text(text), "utf-8", "detected")

    detected = _detect(payload)
    if detected is not None:
        text = _strict_decode(payload, detected)
        if text is None:
            # The sample decoded but a later part did not: keep the guess, replace the rest.
            text = payload.decode(detected, errors="replace")
        return Decoded(clean_text(text), detected, "detected")

    codec = declared[0][0] if declared else "utf-8"
    return Decoded(clean_text(payload.decode(codec, errors="replace")), codec, "fallback")


def decode_html(payload: bytes, http_charset: str | None) -> tuple[str, str]:
    """Decode an HTML payload to text; returns ``(text, python_codec_used)``. Never raises.

    ``http_charset`` is the ``charset`` parameter of the HTTP Content-Type (or None).
    """
    decoded = decode_html_detailed(payload, http_charset)
    return decoded.text, decoded.charset
