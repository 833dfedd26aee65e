"""Charset decoding of HTML payloads (dataproc.readers.charset) and Wayback URL unwrapping."""

from __future__ import annotations

import time

import pytest

from dataproc.readers.charset import (
    charset_from_content_type,
    decode_html,
    decode_html_detailed,
    meta_charset,
    normalize_charset,
)
from dataproc.readers.urls import unwrap_wayback_url

FRENCH = "Le cœur a ses raisons que la raison ne connaît point. Déjà vu, naïve café résumé. "
RUSSIAN = "Съешь же ещё этих мягких французских булок, да выпей чаю. Широкая электрификация. "
JAPANESE = (
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗い所で泣いていた。"
)


def page(body: str, head: str = "") -> str:
    return f"<html><head>{head}<title>t</title></head><body><p>{body}</p></body></html>"


def test_http_charset_wins() -> None:
    text, codec = decode_html(page(RUSSIAN * 5).encode("koi8-r"), "KOI8-R")
    assert codec == "koi8-r"
    assert RUSSIAN in text


def test_meta_charset_used_without_http() -> None:
    html = page(FRENCH * 3, '<meta charset="windows-1252">').encode("cp1252")
    d = decode_html_detailed(html, None)
    assert (d.charset, d.source) == ("cp1252", "meta")
    assert FRENCH in d.text


def test_meta_http_equiv_and_xml_declaration() -> None:
    equiv = b'<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">'
    assert meta_charset(equiv) == "Shift_JIS"
    assert meta_charset(b'<?xml version="1.0" encoding="ISO-8859-2"?><html>') == "ISO-8859-2"
    html = page(JAPANESE * 3).replace("<head>", "<head>" + equiv.decode()).encode("shift_jis")
    d = decode_html_detailed(html, None)
    assert d.source == "meta" and JAPANESE in d.text


@pytest.mark.parametrize(
    ("text", "codec"),
    [(FRENCH * 4, "cp1252"), (RUSSIAN * 4, "koi8-r"), (JAPANESE * 4, "shift_jis")],
)
def test_detection_without_any_declaration(text: str, codec: str) -> None:
    d = decode_html_detailed(page(text).encode(codec), None)
    assert d.source == "detected"
    assert text in d.text


def test_lying_meta_falls_through_to_detection() -> None:
    html = page(FRENCH * 4, '<meta charset="utf-8">').encode("cp1252")
    d = decode_html_detailed(html, None)
    assert d.source == "detected"
    assert d.charset == "cp1252"
    assert FRENCH in d.text


def test_lying_http_header_falls_through() -> None:
    html = page(RUSSIAN * 4).encode("koi8-r")
    d = decode_html_detailed(html, "utf-8")
    assert RUSSIAN in d.text


@pytest.mark.parametrize(
    "label", ["bogus-charset", "base64", "rot13", "utf-7", "", "x" * 100, "unicode_escape"]
)
def test_bogus_or_dangerous_labels_are_ignored(label: str) -> None:
    assert normalize_charset(label) is None
    text, codec = decode_html(page("plain ascii").encode(), label)
    assert "plain ascii" in text and codec == "utf-8"


def test_label_normalisation_uses_browser_supersets() -> None:
    assert normalize_charset("ISO-8859-1") == "cp1252"
    assert normalize_charset(" 'latin1' ") == "cp1252"
    assert normalize_charset("Shift_JIS") == "cp932"
    assert normalize_charset("x-sjis") == "cp932"
    assert normalize_charset("gb2312") == "gb18030"
    assert normalize_charset("UTF8") == "utf-8"


def test_content_type_parameter() -> None:
    assert charset_from_content_type('text/html; charset="UTF-8"') == "UTF-8"
    assert charset_from_content_type("text/html;charset=iso-8859-1;foo=bar") == "iso-8859-1"
    assert charset_from_content_type("text/html") is None
    assert charset_from_content_type(None) is None


def test_bom_overrides_declarations() -> None:
    html = page(RUSSIAN).encode("utf-16")  # with BOM
    d = decode_html_detailed(html, "iso-8859-1")
    assert d.source == "bom" and RUSSIAN in d.text
    d8 = decode_html_detailed(b"\xef\xbb\xbf" + page(FRENCH).encode(), "koi8-r")
    assert d8.source == "bom" and d8.text.startswith("<html>")


def test_nul_bytes_and_surrogates_removed() -> None:
    text, _ = decode_html(b"<p>a\x00b\x00\x00c</p>", None)
    assert text == "<p>abc</p>"
    # latin-1 bytes that would be invalid utf-8 never produce lone surrogates
    text, _ = decode_html(b"<p>\xed\xa0\x80 x</p>", "utf-8")
    assert all(not 0xD800 <= ord(c) <= 0xDFFF for c in text)
    text.encode("utf-8")


def test_truncated_multibyte_tail_keeps_declared_utf8() -> None:
    html = page("日本語" * 50).encode("utf-8")
    cut = html[: html.index("日本語".encode()) + 4]  # cut inside a 3-byte character
    d = decode_html_detailed(cut, "utf-8")
    assert d.source == "http" and d.text.endswith("日")


def test_invalid_everything_falls_back_without_raising() -> None:
    blob = bytes(range(256)) * 20
    text, codec = decode_html(blob, "utf-8")
    assert isinstance(text, str) and codec
    assert "\x00" not in text


def test_meta_regex_is_linear_on_adversarial_input() -> None:
    evil = b"<meta " + b"charset " * 20000 + b"<meta" * 20000 + b"=" * 20000
    start = time.perf_counter()
    meta_charset(evil)
    decode_html(evil, None)
    assert time.perf_counter() - start < 2.0


def test_detection_is_bounded_on_large_payloads() -> None:
    big = page(FRENCH * 40000).encode("cp1252")  # ~3.5 MB
    start = time.perf_counter()
    d = decode_html_detailed(big, None)
    assert time.perf_counter() - start < 3.0
    assert d.charset == "cp1252" and FRENCH in d.text


# -- Wayback URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://web.archive.org/web/20240101123456/http://example.com/a?b=1",
            "http://example.com/a?b=1",
        ),
        (
            "http://web.archive.org/web/20240101123456id_/https://example.com/",
            "https://example.com/",
        ),
        (
            "https://web.archive.org/web/20240101123456im_/http:/example.com/x.html",
            "http://example.com/x.html",
        ),
        ("https://web.archive.org/web/2024/example.com/page", "http://example.com/page"),
        (
            "https://web.archive.org/web/20240101123456/https://web.archive.org/web/20200101000000/http://a.org/",
            "http://a.org/",
        ),
        (
            "https://example.com/web/20240101123456/http://x.org/",
            "https://example.com/web/20240101123456/http://x.org/",
        ),
        ("http://example.com/", "http://example.com/"),
        ("https://web.archive.org/about/", "https://web.archive.org/about/"),
    ],
)
def test_unwrap_wayback_url(url: str, expected: str) -> None:
    assert unwrap_wayback_url(url) == expected


def test_unwrap_wayback_is_linear() -> None:
    evil = "https://web.archive.org/web/" + "1" * 100000 + "a" * 100000
    start = time.perf_counter()
    assert unwrap_wayback_url(evil) == evil
    assert time.perf_counter() - start < 1.0
