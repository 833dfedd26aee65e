"""Every regex-driven rule runs in time linear in the document's length, on adversarial input.

For each detector we build long strings designed to make a backtracking regex engine blow up
(long runs that almost match, separators repeated without end, nested-looking groups), time
the rule on 100 KB and on 400 KB, and require the 4x longer input to cost at most ~10x (linear
is 4x, quadratic 16x; the slack absorbs timer noise on a busy CI machine).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from dataproc.document import Document
from dataproc.readers.charset import decode_html_detailed, meta_charset
from dataproc.readers.http import dechunk, looks_like_html, parse_http_status
from dataproc.readers.urls import unwrap_wayback_url
from dataproc.stages.pii import find_cards, find_emails, find_ibans, find_ips, find_phones, scrub
from dataproc.stages.quality import QualityConfig, quality_stages
from dataproc.stages.url_filter import UrlFilter, UrlFilterConfig

SMALL = 100_000
LARGE = 400_000
MAX_RATIO = 10.0
# Below this, timings are noise: compare against a floor instead of a ratio.
FLOOR_SECONDS = 0.05


def _fit(unit: str, n: int) -> str:
    return (unit * (n // len(unit) + 1))[:n]


def _best_time(fn: Callable[[str], object], text: str, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - t0)
    return best


def assert_linear(
    fn: Callable[[str], object], unit: str, small_chars: int = SMALL, max_seconds: float = 10.0
) -> None:
    """``fn`` on ``unit`` repeated to 4x ``small_chars`` costs at most ~10x the small run."""
    small = _best_time(fn, _fit(unit, small_chars))
    large = _best_time(fn, _fit(unit, 4 * small_chars))
    assert large <= MAX_RATIO * max(small, FLOOR_SECONDS), (
        f"{fn.__name__} on {unit!r}*: {small:.4f}s for {small_chars} chars, "
        f"{large:.4f}s for {4 * small_chars}"
    )
    assert large < max_seconds, f"{fn.__name__} on {unit!r}*: {large:.2f}s for {4 * small_chars}"


PII_CASES: dict[str, list[str]] = {
    "email": ["a", "a@", "a.", "a@b.", "-a@b.c-", ".@", "a@b" + "-" * 60 + ".", "x%+'-"],
    "ip": ["1.", "1.1.1.1.", "255.255.255.", ":", "a:", "1:", "::1:", "ffff:", "v1.2.3.4 "],
    "card": ["1 ", "1-", "4", "4111 1111 ", "4111-1111-1111-", "1 1-1 ", "9 "],
    "iban": ["DE89 ", "DE89", "DE89 AAAA ", "A", "AB12 3456 7890 ", "de00", "ES91 2100 ", "ES9 "],
    "phone": [
        "1 ", "1-", "1.", "+1 ", "(1) ", "(0) ", "00", "1 ext ", "0", "1-1.", "12345678 ",
        "tel 1 ", "(12345)", "+1(0)", "(+90) ", "电话1", "手机+8", "Tel: 0", "CA 12345-", "Jul 1 ",
        "(1935) ", "ISSN 1", "1:00 ", "a+1 ",
    ],
}  # fmt: skip
FINDERS = {
    "email": find_emails,
    "ip": find_ips,
    "card": find_cards,
    "iban": find_ibans,
    "phone": find_phones,
}


@pytest.mark.parametrize(
    ("kind", "unit"), [(k, u) for k, units in PII_CASES.items() for u in units]
)
def test_pii_detectors_are_linear(kind: str, unit: str) -> None:
    assert_linear(FINDERS[kind], unit)


@pytest.mark.parametrize("unit", ["1 ", "a@b.co ", "8.8.8.8 ", "4111 1111 1111 1111 ", "+1 "])
def test_pii_scrub_all_passes_are_linear(unit: str) -> None:
    def scrub_all(text: str) -> object:
        return scrub(text)

    # scrub re-runs every detector up to 16 times (a replacement can expose a new match),
    # so it is linear with a large constant: 25 KB vs 100 KB keeps the test quick.
    assert_linear(scrub_all, unit, small_chars=25_000)


def _url_filter() -> UrlFilter:
    f = UrlFilter(UrlFilterConfig(extra_banned_subwords=["aaaab", "abababx"]))
    f.setup()
    return f


URL_FILTER = _url_filter()


@pytest.mark.parametrize(
    "template",
    [
        "http://x.com/{}",
        "http://{}.com/",
        "http://x.com/?q={}",
        "{}",
    ],
)
@pytest.mark.parametrize("unit", ["a", "a.", "a-", "ab", "%2", "/", "@", "aaaa"])
def test_url_filter_is_linear(template: str, unit: str) -> None:
    def check(text: str) -> object:
        return URL_FILTER.check(template.format(text))

    assert_linear(check, unit)


QUALITY = quality_stages(QualityConfig())


@pytest.mark.parametrize(
    "unit",
    [
        "word ", "\n", "a\n", "\n\n", ". ", "!? ", "[", "[1]", "[edit] ", "a.b", "…\n",
        "lorem ipsum\n", "x" * 50 + "\n", "{ ", "# ", "- item\n", "javascript ", "\t ",
    ],
)  # fmt: skip
def test_quality_rules_are_linear(unit: str) -> None:
    def all_rules(text: str) -> object:
        for stage in QUALITY:
            stage.process(Document(id="x", url="http://x/", source="s", text=text))
        return None

    assert_linear(all_rules, unit)


@pytest.mark.parametrize("unit", ["<meta ", "<meta charset", "<meta charset=", "<?xml ", "\xff"])
def test_charset_scans_are_linear(unit: str) -> None:
    def detect(text: str) -> object:
        raw = text.encode("latin-1")
        meta_charset(raw)
        return decode_html_detailed(raw, None)

    assert_linear(detect, unit)


@pytest.mark.parametrize("unit", ["1\r\n", "f;" + "x" * 100, " ", "0" * 17, "1\r\na\r\n"])
def test_dechunk_is_linear(unit: str) -> None:
    def run(text: str) -> object:
        return dechunk(text.encode())

    assert_linear(run, unit)


@pytest.mark.parametrize("unit", ["<", " ", "<!--", "http/1.1 ", "web.archive.org/web/"])
def test_reader_helpers_are_linear(unit: str) -> None:
    def run(text: str) -> object:
        looks_like_html(text.encode())
        parse_http_status(text)
        return unwrap_wayback_url("http://web.archive.org/web/2020/" + text)

    assert_linear(run, unit)
