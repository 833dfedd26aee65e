"""URL helpers for the reader: unwrapping archive-replay (Wayback) URLs to the page's own URL."""

from __future__ import annotations

import re

# `http(s)://web.archive.org/web/<timestamp><modifier>/<original>`: the timestamp is 1-14
# digits (14 is a full capture time, shorter ones are prefixes Wayback accepts), the
# modifier is like `id_`, `im_`, `js_`. Every quantifier is bounded or applies to a
# single character class once, so matching is linear in the URL length.
_WAYBACK = re.compile(
    r"^https?://(?:www\.)?web\.archive\.org(?::\d{1,5})?/web/\d{1,14}[a-z_]{0,8}/(?P<orig>.+)$",
    re.IGNORECASE | re.DOTALL,
)
# Replay URLs often collapse `http://` into `http:/`; restore the second slash.
_SCHEME_SLASHES = re.compile(r"^(?P<scheme>https?):/+", re.IGNORECASE)
_HAS_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]{0,15}:", re.IGNORECASE)

# Wayback URLs are sometimes wrapped more than once (a capture of a replay page).
_MAX_UNWRAP = 4


def unwrap_wayback_url(url: str) -> str:
    """Return the original URL inside a Wayback Machine replay URL, or ``url`` unchanged.

    ``https://web.archive.org/web/20240101123456id_/http://example.com/a`` becomes
    ``http://example.com/a``. A collapsed scheme (``http:/example.com``) is repaired and a
    missing one defaults to ``http://``. Nested replay URLs are unwrapped (up to 4 levels).
    """
    out = url.strip()
    for _ in range(_MAX_UNWRAP):
        m = _WAYBACK.match(out)
        if m is None:
            break
        orig = m.group("orig")
        fixed = _SCHEME_SLASHES.sub(lambda s: s.group("scheme").lower() + "://", orig, count=1)
        if not _HAS_SCHEME.match(fixed):
            fixed = "http://" + fixed.lstrip("/")
        out = fixed
    return out if out != url.strip() else url
