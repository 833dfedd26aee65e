"""Resolve ``--crawl CC-MAIN-2024-22 [--shards 0:1000]`` into the crawl's WARC file URLs.

Common Crawl publishes, for every crawl, ``crawl-data/<crawl>/warc.paths.gz``: one relative
path per WARC file (~90,000 of ~1 GB each). The listing is read with the same retrying reader
as the inputs, and each path is joined to a base location:

- ``https://data.commoncrawl.org`` (default; public HTTPS, works from anywhere), or
- ``s3://commoncrawl`` (same files; fastest from AWS ``us-east-1``, needs AWS credentials,
  e.g. an instance role).

The base is configurable (``--crawl-base-url`` or ``DATAPROC_CRAWL_BASE_URL``), so tests and
mirrors point it at their own server. ``--shards START:END`` selects listing lines
``START <= i < END`` (Python slice semantics on the listing's order), so a dump can be split
across several runs or clusters; each run's output numbers its inputs from 0.
"""

from __future__ import annotations

import gzip
import os
import re

from dataproc.errors import InputError
from dataproc.io import fs

DEFAULT_BASE_URL = "https://data.commoncrawl.org"
BASE_URL_ENV = "DATAPROC_CRAWL_BASE_URL"

# CC-MAIN-2024-22 (and the older CC-MAIN-2013-20 style ids are the same shape).
_CRAWL_ID = re.compile(r"CC-MAIN-[0-9]{4}-[0-9]{2}")
_SHARDS = re.compile(r"([0-9]*):([0-9]*)|([0-9]+)")


def parse_shards(spec: str | None) -> slice:
    """``"0:1000"`` -> ``slice(0, 1000)``; ``"5"`` -> ``slice(5, 6)``; ``":10"``, ``"90:"``."""
    if spec is None or spec.strip() == "":
        return slice(None)
    m = _SHARDS.fullmatch(spec.strip())
    if m is None:
        raise InputError(
            f"--shards {spec!r}: expected START:END (e.g. 0:1000, END exclusive) or one index"
        )
    if m.group(3) is not None:
        i = int(m.group(3))
        return slice(i, i + 1)
    start = int(m.group(1)) if m.group(1) else None
    end = int(m.group(2)) if m.group(2) else None
    if start is not None and end is not None and end <= start:
        raise InputError(f"--shards {spec!r}: END must be greater than START")
    return slice(start, end)


def base_url(explicit: str | None = None) -> str:
    """The base location of crawl data: the argument, ``DATAPROC_CRAWL_BASE_URL``, or HTTPS."""
    return (explicit or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def listing_url(crawl: str, base: str | None = None) -> str:
    """Where the ``warc.paths.gz`` listing of ``crawl`` lives."""
    if not _CRAWL_ID.fullmatch(crawl):
        raise InputError(
            f"--crawl {crawl!r}: expected a Common Crawl id like CC-MAIN-2024-22 "
            "(see https://commoncrawl.org/overview for the list)"
        )
    return f"{base_url(base)}/crawl-data/{crawl}/warc.paths.gz"


def parse_listing(data: bytes, source: str) -> list[str]:
    """Relative paths from a (gzipped or plain) ``warc.paths`` listing, blank lines skipped."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise InputError(
                f"{source}: corrupt gzip listing ({e}); rerun to fetch it again"
            ) from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{source}: listing is not UTF-8 text ({e})") from e
    paths = [line.strip() for line in text.splitlines() if line.strip()]
    for p in paths:
        if "://" in p or p.startswith("/") or ".." in p.split("/"):
            raise InputError(f"{source}: unexpected entry {p!r} (want paths relative to the base)")
    return paths


def resolve_crawl(crawl: str, shards: str | None = None, base: str | None = None) -> list[str]:
    """The input URLs of ``crawl`` (listing order), restricted to ``shards``.

    Reads ``<base>/crawl-data/<crawl>/warc.paths.gz`` with retries; raises ``InputError`` if
    it is missing or the selection is empty.
    """
    url = listing_url(crawl, base)
    sel = parse_shards(shards)
    try:
        data = fs.read_bytes(url)
    except InputError as e:
        raise InputError(f"--crawl {crawl}: cannot read its listing: {e}") from e
    except (OSError, ValueError) as e:
        raise InputError(f"--crawl {crawl}: cannot read its listing {url}: {e}") from e
    paths = parse_listing(data, url)
    chosen = paths[sel]
    if not chosen:
        raise InputError(
            f"--crawl {crawl} --shards {shards}: selects no file; the listing has "
            f"{len(paths)} entries (valid indices 0..{len(paths) - 1})"
        )
    root = base_url(base)
    return [f"{root}/{p}" for p in chosen]


_SEGMENT = re.compile(r"/segments/([^/]+)/")


def robots_for_inputs(crawl: str, inputs: list[str], base: str | None = None) -> list[str]:
    """The crawl's robots.txt WARC URLs for the segments of ``inputs`` (``robotstxt.paths.gz``).

    Common Crawl fetches robots.txt per segment, so a page's opt-outs "as of the crawl" are
    in the robots files of its own segment.
    """
    url = f"{base_url(base)}/crawl-data/{crawl}/robotstxt.paths.gz"
    try:
        data = fs.read_bytes(url)
    except (InputError, OSError, ValueError) as e:
        raise InputError(
            f"--crawl {crawl}: cannot read its robots.txt listing {url} ({e}); to run with "
            "page-level opt-outs only, --set consent.crawl_robots=false"
        ) from e
    segments = {m.group(1) for p in inputs if (m := _SEGMENT.search(p))}
    root = base_url(base)
    return [
        f"{root}/{p}"
        for p in parse_listing(data, url)
        if (m := _SEGMENT.search("/" + p)) and m.group(1) in segments
    ]


__all__ = [
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "base_url",
    "listing_url",
    "parse_listing",
    "parse_shards",
    "resolve_crawl",
    "robots_for_inputs",
]
