"""The bundled sample shard: small Common Crawl-style WARC files generated from our own prose.

``dataproc run --sample`` runs the whole pipeline on these files, and the integration tests use
them as a fixture, so every page comes with its exact expected fate (:class:`SampleTruth`).
The page texts and the page list live in ``dataproc/data/sample_pages/`` (``pages.yaml`` plus
``text/<slug>.txt``); everything else (HTML around the text, HTTP headers, WARC records) is
built here. Output is a pure function of ``(num_files, seed)``: record ids come from a seeded
random generator, dates from a fixed crawl start, and per-record gzip has no timestamps, so the
same arguments give byte-identical files.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import random
import re
import struct
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path
from typing import Any

from dataproc.errors import ConfigError, DataprocError, OutputError

SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "sample_pages"
"""Where the page list (``pages.yaml``) and page texts (``text/*.txt``) are bundled."""

PII_KINDS: tuple[str, ...] = ("email", "ip", "phone", "card", "iban")
"""Kinds of PII planted in sample texts (the keys of :attr:`SamplePage.pii`)."""

# The crawl's fixed clock: every WARC-Date is an offset from this instant (never wall time).
_CRAWL_START = datetime(2024, 2, 20, 10, 0, 0, tzinfo=timezone.utc)

# Planted PII is written [[kind:value]] in the texts; values never contain "]" or newlines.
_PII_MARK = re.compile(r"\[\[(email|ip|phone|card|iban):([^\]\n]{1,80})\]\]")

# Which stage drops each non-article kind is given in pages.yaml; these kinds are English prose.
_ENGLISH_KINDS = frozenset(
    {
        "article",
        "charset_header",
        "charset_meta",
        "charset_lying_meta",
        "wayback",
        "exact_duplicate",
        "near_duplicate",
        "banned_url",
        "repetitive",
        "short",
        "list",
        "lorem_ipsum",
        "boilerplate_only",
    }
)
_DUPLICATE_KINDS = frozenset({"exact_duplicate", "near_duplicate"})
_RECORD_TYPES = frozenset({"revisit", "not_found", "png", "pdf", "redirect"})


@dataclass(frozen=True)
class SamplePage:
    """One page (or non-page record) of the sample shard and what must happen to it.

    ``expected`` is ``"kept"`` or the name of the first stage of the default English pipeline
    that drops it. ``record_id`` is the WARC-Record-ID (bare uuid) of the response or revisit
    record, i.e. the pipeline's ``Document.id``. ``file_index`` / ``ordinal`` locate that record
    (``ordinal`` counts all records of the file from 0, the warcinfo record included), so
    ``doc_index = (file_index << 32) | ordinal``. ``language`` is ``""`` and ``pii`` empty for
    non-page records (``kind == "record"``); ``text`` is the article text as written (paragraphs
    joined by blank lines, PII unwrapped), which trafilatura returns after the page title.
    """

    url: str
    record_id: str
    kind: str
    language: str
    expected: str
    duplicate_of: str | None
    pii: dict[str, int]
    slug: str = ""
    title: str = ""
    text: str = ""
    file_index: int = 0
    ordinal: int = 0

    @property
    def doc_index(self) -> int:
        """The run-wide document index the pipeline gives this record."""
        return (self.file_index << 32) | self.ordinal


@dataclass(frozen=True)
class SampleTruth:
    """Ground truth for a generated sample: the crawl name and every page in file order."""

    crawl: str
    pages: list[SamplePage]

    def kept(self) -> list[SamplePage]:
        """Pages the default English pipeline must keep, in file order."""
        return [p for p in self.pages if p.expected == "kept"]

    def by_expected(self) -> dict[str, list[SamplePage]]:
        """Pages grouped by ``expected`` (stage name or ``"kept"``)."""
        out: dict[str, list[SamplePage]] = {}
        for p in self.pages:
            out.setdefault(p.expected, []).append(p)
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``{"crawl": ..., "pages": [...]}``)."""
        return {"crawl": self.crawl, "pages": [asdict(p) for p in self.pages]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SampleTruth:
        """Rebuild a truth from :meth:`to_json` output."""
        return cls(crawl=data["crawl"], pages=[SamplePage(**p) for p in data["pages"]])


# ----------------------------------------------------------------------------------------------
# Page specs (pages.yaml + text files)
# ----------------------------------------------------------------------------------------------


@dataclass
class _Spec:
    """One entry of pages.yaml with its text loaded and PII unwrapped."""

    slug: str
    kind: str
    url: str
    language: str
    expected: str
    title: str = ""
    template: str = "blog"
    capture_url: str | None = None
    charset: str = "utf-8"
    charset_declared: str = "both"
    copy_of: str | None = None
    record: str | None = None
    layout: str = "paragraphs"
    paragraphs: list[str] = field(default_factory=list)
    pii: dict[str, int] = field(default_factory=dict)


def unwrap_pii(text: str) -> tuple[str, dict[str, int]]:
    """Replace ``[[kind:value]]`` markers with their values; count them by kind."""
    counts: dict[str, int] = {}

    def _sub(m: re.Match[str]) -> str:
        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
        return m.group(2)

    return _PII_MARK.sub(_sub, text), dict(sorted(counts.items()))


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def _replace_once(paragraphs: list[str], old: str, new: str, slug: str) -> list[str]:
    """Near-duplicates change whole words that occur exactly once in the source."""
    word = re.compile(rf"\b{re.escape(old)}\b")
    hits = sum(len(word.findall(p)) for p in paragraphs)
    if hits != 1:
        raise DataprocError(
            f"sample page {slug!r}: replacement word {old!r} occurs {hits} times in the source "
            "text; pick a word that occurs exactly once"
        )
    return [word.sub(new, p) for p in paragraphs]


def load_specs(sample_dir: Path = SAMPLE_DIR) -> tuple[str, list[_Spec]]:
    """Read ``pages.yaml`` and the page texts; return the crawl name and the specs in order."""
    import yaml  # only needed when a sample is generated

    manifest = sample_dir / "pages.yaml"
    if not manifest.is_file():
        raise DataprocError(
            f"sample page list {str(manifest)!r} is missing; reinstall dataproc (package data "
            "dataproc/data/sample_pages/ was not installed)"
        )
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    specs: list[_Spec] = []
    by_slug: dict[str, _Spec] = {}
    for entry in data["pages"]:
        entry = dict(entry)
        slug = entry.pop("slug")
        kind = entry.pop("kind")
        replace = entry.pop("replace", [])
        language = entry.pop("language", "en" if kind in _ENGLISH_KINDS else "")
        expected = entry.pop("expected", "read" if kind == "record" else "kept")
        spec = _Spec(slug=slug, kind=kind, language=language, expected=expected, **entry)
        if kind == "record":
            if spec.record not in _RECORD_TYPES:
                raise DataprocError(f"sample page {slug!r}: unknown record type {spec.record!r}")
        elif kind in _DUPLICATE_KINDS:
            source = by_slug.get(spec.copy_of or "")
            if source is None:
                raise DataprocError(
                    f"sample page {slug!r} copies {spec.copy_of!r}, which is not listed before it"
                )
            spec.title = spec.title or source.title
            spec.pii = dict(source.pii)
            spec.paragraphs = list(source.paragraphs)
            for old, new in replace:
                spec.paragraphs = _replace_once(spec.paragraphs, old, new, slug)
        elif spec.layout != "gallery":
            raw = (sample_dir / "text" / f"{slug}.txt").read_text(encoding="utf-8")
            text, spec.pii = unwrap_pii(raw)
            if spec.layout == "lines":
                spec.paragraphs = [" ".join(x.split()) for x in text.splitlines() if x.strip()]
            else:
                spec.paragraphs = _paragraphs(text)
        specs.append(spec)
        by_slug[slug] = spec
    return str(data["crawl"]), specs


# ----------------------------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------------------------

_NAV = {
    "blog": ["Home", "Recipes", "Archive", "About me", "Contact"],
    "magazine": ["News", "Features", "Reviews", "Events", "Shop", "Subscribe"],
    "news": ["Front page", "Local", "Community", "Opinion", "Weather"],
    "docs": ["Guides", "Tutorials", "Reference", "Forum", "Downloads"],
}
_SIDEBAR = {
    "blog": ["Ten things I learned this year", "My favourite tools", "A quiet week", "Reader mail"],
    "magazine": ["Editor's picks", "Most read this week", "Spring issue out now", "Letters"],
    "news": ["Council approves new cycle lanes", "School fete raises record sum", "Road closures"],
    "docs": ["Getting started", "Frequently asked questions", "Release notes", "Glossary"],
}
_ANALYTICS = (
    "<script>window.dataLayer = window.dataLayer || []; function track(){ dataLayer.push(arguments); }"
    " track('page');</script>"
)


def _site_name(url: str) -> str:
    host = url.split("://", 1)[-1].split("/", 1)[0]
    label = host.removeprefix("www.").split(".")[0]
    return " ".join(w.capitalize() for w in label.split("-"))


def _head(spec: _Spec, title: str) -> str:
    charset = {
        "both": '<meta charset="utf-8">',
        "header": "",
        "meta": f'<meta charset="{spec.charset}">',
        # Says Latin-1 while the bytes are UTF-8: readers must not trust it blindly.
        "lying_meta": '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">',
    }[spec.charset_declared]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n'
        f"{charset}\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        f'<meta name="description" content="{html.escape(title)}">\n'
        '<link rel="stylesheet" href="/static/site.css">\n'
        "<style>body { font-family: Georgia, serif; } .sidebar { float: right; }</style>\n"
        f"{_ANALYTICS}\n</head>\n"
    )


def _nav(template: str, site: str) -> str:
    links = "\n".join(
        f'<li><a href="/{name.lower().replace(" ", "-")}/">{html.escape(name)}</a></li>'
        for name in _NAV[template]
    )
    return (
        f'<header class="site-header">\n<a class="logo" href="/">{html.escape(site)}</a>\n'
        f'<nav class="main-nav"><ul>\n{links}\n</ul></nav>\n'
        '<form class="search" action="/search"><input type="text" name="q" placeholder="Search">'
        "<button>Go</button></form>\n</header>\n"
    )


def _sidebar(template: str) -> str:
    items = "\n".join(
        f'<li><a href="/posts/{i}">{html.escape(t)}</a></li>'
        for i, t in enumerate(_SIDEBAR[template], 1)
    )
    return (
        '<aside class="sidebar">\n<h3>Recent posts</h3>\n<ul>\n'
        f"{items}\n</ul>\n<h3>Newsletter</h3>\n"
        '<form action="/subscribe"><input type="email" name="email" placeholder="Your email">'
        "<button>Sign up</button></form>\n</aside>\n"
    )


def _footer(site: str) -> str:
    return (
        '<footer class="site-footer">\n'
        f"<p>&copy; 2024 {html.escape(site)}. All rights reserved.</p>\n"
        '<ul class="footer-links"><li><a href="/privacy">Privacy policy</a></li>'
        '<li><a href="/terms">Terms of use</a></li><li><a href="/contact">Contact us</a></li>'
        '<li><a href="/sitemap.xml">Sitemap</a></li></ul>\n'
        '<p>Follow us: <a href="/rss">RSS</a> | <a href="/social">Social</a></p>\n'
        "</footer>\n"
    )


def _article(spec: _Spec) -> str:
    if spec.layout == "gallery":
        captions = ["Harbour at dawn", "Cliff path", "Old lighthouse", "Beach huts", "Dunes"]
        figures = "\n".join(
            f'<figure><img src="/photos/{i:03d}.jpg" alt="photo {i}" width="320" height="240">'
            f"<figcaption>{c}</figcaption></figure>"
            for i, c in enumerate(captions, 1)
        )
        return f'<main class="gallery">\n<h1>{html.escape(spec.title)}</h1>\n{figures}\n</main>\n'
    body = "\n".join(f"<p>{html.escape(p, quote=False)}</p>" for p in spec.paragraphs)
    return (
        '<main>\n<article class="post">\n'
        f'<h1 class="entry-title">{html.escape(spec.title)}</h1>\n'
        '<div class="byline">Posted in <a href="/category/notes">Notes</a></div>\n'
        f'<div class="entry-content">\n{body}\n</div>\n'
        '<div class="share">Share: <a href="/share/mail">Mail</a> '
        '<a href="/share/print">Print</a></div>\n'
        "</article>\n</main>\n"
    )


def render_html(spec: _Spec) -> str:
    """The full HTML document for a page spec (boilerplate around the article text)."""
    site = _site_name(spec.url)
    template = spec.template if spec.template in _NAV else "blog"
    return (
        _head(spec, f"{spec.title} | {site}")
        + "<body>\n"
        + _nav(template, site)
        + '<div class="container">\n'
        + _article(spec)
        + _sidebar(template)
        + "</div>\n"
        + _footer(site)
        + "</body>\n</html>\n"
    )


# ----------------------------------------------------------------------------------------------
# Non-HTML payloads
# ----------------------------------------------------------------------------------------------


def _png_bytes() -> bytes:
    """A valid 16x16 greyscale PNG (a gradient), built without any imaging library."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = b"".join(b"\x00" + bytes((x * 16 + y) % 256 for x in range(16)) for y in range(16))
    ihdr = struct.pack(">IIBBBBB", 16, 16, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def _pdf_bytes() -> bytes:
    """A small one-page PDF with a correct cross-reference table."""
    stream = b"BT /F1 18 Tf 72 720 Td (Town Library Annual Report 2023) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, obj)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


# ----------------------------------------------------------------------------------------------
# WARC writing
# ----------------------------------------------------------------------------------------------


def _warc_date(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _http_date(t: datetime) -> str:
    return t.strftime("%a, %d %b %Y %H:%M:%S GMT")


def _path_of(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[-1]
    host, _, path = rest.partition("/")
    return host, "/" + path


@dataclass
class _Response:
    """What the server sent for one page: status line, headers and body bytes."""

    status: str
    content_type: str
    body: bytes
    extra_headers: list[tuple[str, str]] = field(default_factory=list)


def _response_for(spec: _Spec) -> _Response:
    if spec.kind != "record":
        html_text = render_html(spec)
        try:
            body = html_text.encode(spec.charset)
        except UnicodeEncodeError as e:
            raise DataprocError(
                f"sample page {spec.slug!r} holds {html_text[e.start : e.end]!r}, which "
                f"{spec.charset} cannot encode; change the text or the page's charset"
            ) from e
        declared = spec.charset_declared in ("both", "header")
        ctype = f"text/html; charset={spec.charset}" if declared else "text/html"
        return _Response("200 OK", ctype, body)
    if spec.record == "not_found":
        body = (
            b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>\n"
            b"<h1>Not Found</h1>\n<p>The requested URL was not found on this server.</p>\n"
            b"</body></html>\n"
        )
        return _Response("404 Not Found", "text/html; charset=utf-8", body)
    if spec.record == "png":
        return _Response("200 OK", "image/png", _png_bytes())
    if spec.record == "pdf":
        return _Response("200 OK", "application/pdf", _pdf_bytes())
    if spec.record == "redirect":
        host, path = _path_of(spec.url)
        target = f"https://www.{host}{path.rstrip('/')}/"
        body = (
            b"<html><head><title>301 Moved Permanently</title></head><body>\n"
            b'<h1>Moved Permanently</h1>\n<p>The document has moved <a href="'
            + target.encode()
            + b'">here</a>.</p>\n</body></html>\n'
        )
        return _Response(
            "301 Moved Permanently", "text/html; charset=iso-8859-1", body, [("Location", target)]
        )
    raise DataprocError(f"sample page {spec.slug!r}: no response for record {spec.record!r}")


class _Ids:
    """Seeded WARC-Record-IDs (uuid4 layout) and IP addresses: no global randomness."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def seconds(self, low: int, high: int) -> int:
        return self._rng.randint(low, high)

    def ip(self) -> str:
        # Server addresses in the 198.18.0.0/15 benchmarking range: never real hosts.
        return f"198.{self._rng.randint(18, 19)}.{self._rng.randint(0, 255)}.{self._rng.randint(1, 254)}"


def _warcinfo(builder: Any, filename: str, crawl: str, record_id: str, when: datetime) -> Any:
    from warcio.statusandheaders import StatusAndHeaders

    fields = [
        ("isPartOf", crawl),
        ("publisher", "dataproc sample shard (synthetic; text written for the project)"),
        ("description", "Small Common Crawl-style sample generated by dataproc.sample"),
        ("operator", "dataproc"),
        ("software", "dataproc.sample (warcio)"),
        ("format", "WARC File Format 1.0"),
        ("conformsTo", "http://bibnum.bnf.fr/WARC/WARC_ISO_28500_version1_latestdraft.pdf"),
    ]
    payload = "".join(f"{k}: {v}\r\n" for k, v in fields).encode("utf-8")
    headers = StatusAndHeaders(
        "",
        [
            ("WARC-Type", "warcinfo"),
            ("WARC-Date", _warc_date(when)),
            ("WARC-Record-ID", f"<urn:uuid:{record_id}>"),
            ("WARC-Filename", filename),
        ],
        protocol="WARC/1.0",
    )
    return builder.create_warc_record(
        "",
        "warcinfo",
        payload=BytesIO(payload),
        length=len(payload),
        warc_content_type="application/warc-fields",
        warc_headers=headers,
    )


def _page_records(
    builder: Any, spec: _Spec, ids: _Ids, when: datetime, warcinfo_id: str
) -> tuple[list[Any], str]:
    """request, response (or revisit) and metadata records for one page; returns the main id."""
    from warcio.statusandheaders import StatusAndHeaders

    target = spec.capture_url or spec.url
    host, path = _path_of(target)
    req_id, main_id, meta_id = ids.uuid(), ids.uuid(), ids.uuid()
    ip = ids.ip()
    date = _warc_date(when)
    common = [("WARC-Date", date), ("WARC-Warcinfo-ID", f"<urn:uuid:{warcinfo_id}>")]

    request = builder.create_warc_record(
        target,
        "request",
        http_headers=StatusAndHeaders(
            f"GET {path} HTTP/1.1",
            [
                ("User-Agent", "dataproc-sample/1.0 (synthetic crawl)"),
                ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                ("Accept-Language", "en-US,en;q=0.5"),
                ("Accept-Encoding", "br,gzip"),
                ("Host", host),
                ("Connection", "Keep-Alive"),
            ],
            is_http_request=True,
        ),
        warc_headers_dict=dict(
            [
                ("WARC-Type", "request"),
                ("WARC-Record-ID", f"<urn:uuid:{req_id}>"),
                *common,
                ("WARC-IP-Address", ip),
            ]
        ),
    )

    server = [("Date", _http_date(when - timedelta(seconds=3))), ("Server", "nginx")]
    if spec.record == "revisit":
        # An identical-payload revisit of an earlier capture: HTTP headers only, no body.
        earlier = when - timedelta(days=31)
        digest = "sha1:" + base64.b32encode(hashlib.sha1(spec.url.encode()).digest()).decode()
        main = builder.create_revisit_record(
            target,
            digest,
            target,
            _warc_date(earlier),
            http_headers=StatusAndHeaders(
                "200 OK",
                [*server, ("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "0")],
                protocol="HTTP/1.1",
            ),
            warc_headers_dict=dict(
                [
                    ("WARC-Type", "revisit"),
                    ("WARC-Record-ID", f"<urn:uuid:{main_id}>"),
                    *common,
                    ("WARC-Concurrent-To", f"<urn:uuid:{req_id}>"),
                    ("WARC-IP-Address", ip),
                ]
            ),
        )
        fetch_ms = ids.seconds(20, 400)
        meta_fields = f"fetchTimeMs: {fetch_ms}\r\n"
    else:
        resp = _response_for(spec)
        http_headers = StatusAndHeaders(
            resp.status,
            [
                *server,
                ("Content-Type", resp.content_type),
                *resp.extra_headers,
                ("Content-Length", str(len(resp.body))),
                ("Connection", "close"),
            ],
            protocol="HTTP/1.1",
        )
        identified = resp.content_type.split(";")[0]
        main = builder.create_warc_record(
            target,
            "response",
            payload=BytesIO(resp.body),
            length=len(resp.body),
            http_headers=http_headers,
            warc_headers_dict=dict(
                [
                    ("WARC-Type", "response"),
                    ("WARC-Record-ID", f"<urn:uuid:{main_id}>"),
                    *common,
                    ("WARC-Concurrent-To", f"<urn:uuid:{req_id}>"),
                    ("WARC-IP-Address", ip),
                    ("WARC-Identified-Payload-Type", identified),
                ]
            ),
        )
        fetch_ms = ids.seconds(20, 900)
        meta_fields = f"fetchTimeMs: {fetch_ms}\r\n"
        if identified == "text/html":
            meta_fields += f"charset-detected: {spec.charset.upper()}\r\n"

    meta_payload = meta_fields.encode("utf-8")
    metadata = builder.create_warc_record(
        target,
        "metadata",
        payload=BytesIO(meta_payload),
        length=len(meta_payload),
        warc_content_type="application/warc-fields",
        warc_headers_dict=dict(
            [
                ("WARC-Type", "metadata"),
                ("WARC-Record-ID", f"<urn:uuid:{meta_id}>"),
                *common,
                ("WARC-Concurrent-To", f"<urn:uuid:{main_id}>"),
            ]
        ),
    )
    return [request, main, metadata], main_id


def _split(n: int, parts: int) -> list[range]:
    """``n`` items in ``parts`` contiguous chunks, the first ``n % parts`` one item longer."""
    base, extra = divmod(n, parts)
    out, start = [], 0
    for i in range(parts):
        size = base + (1 if i < extra else 0)
        out.append(range(start, start + size))
        start += size
    return out


def sample_input_dir(output: str) -> str:
    """A private folder for ``dataproc run --sample``'s input, one per user and output folder.

    It is the same on every rerun into the same output (so the run resumes), different for
    another user or output (so runs never collide), and created ``0700`` under the system
    temporary folder; a folder of that name owned by someone else is refused.
    """
    import tempfile

    uid = os.getuid() if hasattr(os, "getuid") else 0
    key = hashlib.sha256(os.path.abspath(output).encode()).hexdigest()[:12]
    base = os.path.join(tempfile.gettempdir(), f"dataproc-{uid}")
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
        st = os.stat(base)
    except OSError as e:
        raise OutputError(f"cannot create the sample input folder {base}: {e}") from e
    if hasattr(os, "getuid") and (st.st_uid != uid or st.st_mode & 0o077):
        raise OutputError(
            f"{base} is not a private folder of this user; remove it or set TMPDIR elsewhere"
        )
    return os.path.join(base, f"sample-input-{key}")


def write_sample_warcs(
    out_dir: str, *, num_files: int = 2, seed: int = 0
) -> tuple[list[str], SampleTruth]:
    """Write ``num_files`` CC-style ``.warc.gz`` files into ``out_dir``; return paths and truth.

    Each file holds a ``warcinfo`` record (``isPartOf`` = the crawl) and then a
    request/response/metadata triple per page (request/revisit/metadata for revisits), every
    record gzipped on its own as Common Crawl does. Pages are split into contiguous chunks in
    the order of ``pages.yaml``. The same ``(num_files, seed)`` gives byte-identical files;
    ``seed`` changes record ids, server addresses and timing, never which pages exist.
    """
    from warcio.warcwriter import WARCWriter

    crawl, specs = load_specs()
    if not 1 <= num_files <= len(specs):
        raise ConfigError(
            f"num_files={num_files} is out of range: the sample has {len(specs)} pages, so use "
            f"between 1 and {len(specs)} files"
        )
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(
            f"cannot create sample directory {out_dir!r}: {e}; pick a writable path"
        ) from e

    ids = _Ids(seed)
    clock = _CRAWL_START
    paths: list[str] = []
    placed: list[tuple[_Spec, str, int, int]] = []  # spec, main record id, file index, ordinal
    for file_index, chunk in enumerate(_split(len(specs), num_files)):
        start = _CRAWL_START + timedelta(hours=3 * file_index)
        stamp = start.strftime("%Y%m%d%H%M%S")
        end = (start + timedelta(hours=3)).strftime("%Y%m%d%H%M%S")
        filename = f"CC-MAIN-{stamp}-{end}-{file_index:05d}.warc.gz"
        path = out / filename
        clock = max(clock, start)
        # Written beside and renamed: a run reading these files never sees a half-written one.
        tmp = out / f".{filename}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                writer = WARCWriter(f, gzip=True, warc_version="1.0")
                warcinfo_id = ids.uuid()
                writer.write_record(_warcinfo(writer, filename, crawl, warcinfo_id, clock))
                ordinal = 1
                for i in chunk:
                    clock += timedelta(seconds=ids.seconds(1, 45))
                    records, main_id = _page_records(writer, specs[i], ids, clock, warcinfo_id)
                    for record in records:
                        writer.write_record(record)
                    placed.append((specs[i], main_id, file_index, ordinal + 1))
                    ordinal += len(records)
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise OutputError(f"cannot write sample file {str(path)!r}: {e}") from e
        paths.append(str(path))
    return paths, _truth(crawl, placed)


def _truth(crawl: str, placed: list[tuple[_Spec, str, int, int]]) -> SampleTruth:
    """Resolve duplicates: the copy with the smallest (file index, ordinal) survives."""
    first_of: dict[str, tuple[int, int, str]] = {}  # cluster root slug -> position and id
    for spec, main_id, file_index, ordinal in placed:
        if spec.expected != "kept":
            continue
        root = (spec.copy_of if spec.kind in _DUPLICATE_KINDS else None) or spec.slug
        pos = (file_index, ordinal, main_id)
        if root not in first_of or pos < first_of[root]:
            first_of[root] = pos
    pages = []
    for spec, main_id, file_index, ordinal in placed:
        expected, duplicate_of = spec.expected, None
        if expected == "kept":
            root = (spec.copy_of if spec.kind in _DUPLICATE_KINDS else None) or spec.slug
            survivor = first_of[root][2]
            if survivor != main_id:
                expected, duplicate_of = "dedup", survivor
        pages.append(
            SamplePage(
                url=spec.url,
                record_id=main_id,
                kind=spec.kind,
                language=spec.language,
                expected=expected,
                duplicate_of=duplicate_of,
                pii=dict(spec.pii) if spec.kind != "record" else {},
                slug=spec.slug,
                title=spec.title,
                text="\n\n".join(spec.paragraphs),
                file_index=file_index,
                ordinal=ordinal,
            )
        )
    return SampleTruth(crawl=crawl, pages=pages)
