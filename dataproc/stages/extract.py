"""Main-text extraction from HTML: trafilatura (FineWeb's settings) or resiliparse.

The stage runs the extractor in a sandbox child process (``dataproc.stages.sandbox``) so that
``timeout_seconds`` really stops a runaway page: the child is killed and replaced, and the page
is dropped as ``timeout``. ``extract_text`` is the same extraction, in-process, for evaluations.
"""

from __future__ import annotations

import functools
import re
from typing import ClassVar, Literal

from pydantic import Field

from dataproc.configbase import StrictModel
from dataproc.document import Document, Reject
from dataproc.errors import ExtractionError
from dataproc.stages.base import Stage
from dataproc.stages.sandbox import Sandbox, WorkFn

# Parsed by the child once at start-up so the first real page is not charged the imports.
_WARMUP_HTML = "<html><body><article><p>warm up</p></article></body></html>"


class ExtractConfig(StrictModel):
    """Main-text extraction from the HTML of each page."""

    extractor: Literal["trafilatura", "resiliparse"] = Field(
        "trafilatura",
        description="Extractor: `trafilatura` (FineWeb's choice) or `resiliparse` (DCLM's; "
        "faster, needs `pip install dataproc[resiliparse]`).",
    )
    timeout_seconds: float = Field(
        2.0,
        gt=0,
        description="Per-page extraction limit in CPU seconds of the extraction process (plus "
        "`timeout_seconds_per_mib` per MiB of HTML); a page over it is killed and dropped as "
        "`timeout`. CPU time, so an oversubscribed node does not drop more pages. Measured "
        "trafilatura p99 on Common Crawl-like pages: ~0.3 s.",
    )
    timeout_seconds_per_mib: float = Field(
        2.0,
        ge=0,
        description="Extra CPU seconds allowed per MiB of HTML: trafilatura's time grows about "
        "linearly with page size (a legitimate 1.2 MB page took ~1.5 s), so a flat limit would "
        "drop long real articles. 0 makes the limit flat.",
    )
    timeout_wall_multiplier: float = Field(
        4.0,
        ge=1,
        description="A page is also stopped when its extractor makes no progress (under 1% "
        "of a core) for this many times its limit in wall-clock seconds: a blocked child. "
        "Slow progress on a busy node is not stopped, so results don't depend on load.",
    )
    min_chars: int = Field(
        50, ge=0, description="Drop pages whose extracted text has fewer characters (`too_short`)."
    )
    favor_precision: bool = Field(
        True,
        description="trafilatura `favor_precision`: less text, less boilerplate "
        "(FineWeb via datatrove's Trafilatura(favour_precision=True)).",
    )
    fallback: Literal["always", "when_short"] = Field(
        "always",
        description="trafilatura's fallback comparison (readability, jusText): `always` (its "
        "default, FineWeb's) or `when_short`: only when trafilatura's own (fast) extraction "
        "gives fewer than `fallback_min_chars` characters. `when_short` saves ~22 % of phase-1 "
        "CPU and keeps gold-set F1 within 0.003, but changes ~9 % of the kept documents "
        "(docs/quality.md), so it is not the default.",
    )
    fallback_min_chars: int = Field(
        200,
        ge=0,
        description="With `fallback: when_short`: below this many characters the page is "
        "extracted again with the fallback comparison.",
    )
    include_comments: bool = Field(
        False,
        description="trafilatura `include_comments`: keep user comments "
        "(datatrove/FineWeb pass False).",
    )
    include_tables: bool = Field(
        True,
        description="trafilatura `include_tables`: keep table text "
        "(datatrove/FineWeb leave trafilatura's default, True).",
    )
    deduplicate: bool = Field(
        True,
        description="trafilatura `deduplicate`: drop text segments (>100 chars) repeated more "
        "than twice (datatrove/FineWeb pass True).",
    )
    dedup_scope: Literal["document", "worker"] = Field(
        "document",
        description="Memory of trafilatura's `deduplicate`: `document` (fresh per page, so the "
        "output does not depend on which worker saw which pages before; cross-page duplicates "
        "are removed by MinHash dedup) or `worker` (one cache per extraction process, exactly "
        "like FineWeb, but run-to-run nondeterministic).",
    )
    isolate: bool = Field(
        True,
        description="Run the extractor in a child process so `timeout_seconds` is enforced. "
        "False runs it in-process with NO time limit (debugging only).",
    )
    max_pages_per_child: int = Field(
        10_000, ge=1, description="Replace the extraction child after this many pages."
    )
    max_child_rss_bytes: int = Field(
        1 << 30,
        ge=64 << 20,
        description="Replace the extraction child when its resident memory exceeds this many "
        "bytes (returns memory kept by lxml/the allocator after huge pages).",
    )


def _trafilatura_extract(html: str, config: ExtractConfig) -> str:
    import trafilatura
    from trafilatura.deduplication import LRUCache
    from trafilatura.settings import LRU_SIZE

    dedup: bool | LRUCache = config.deduplicate
    if config.deduplicate and config.dedup_scope == "document":
        dedup = LRUCache(maxsize=LRU_SIZE)

    def run(fast: bool) -> str:
        cache: bool | LRUCache = dedup
        if isinstance(dedup, LRUCache):
            cache = LRUCache(maxsize=LRU_SIZE)  # a fresh memory for each pass over the page
        return (
            trafilatura.extract(
                html,
                favor_precision=config.favor_precision,
                include_comments=config.include_comments,
                include_tables=config.include_tables,
                deduplicate=cache,
                fast=fast,
            )
            or ""
        )

    if config.fallback == "when_short":
        # The fallback comparison costs ~40 % of an extraction and changes the result mostly
        # where trafilatura's own pass finds little: run it only there.
        text = run(fast=True)
        if len(text.strip()) < config.fallback_min_chars:
            text = run(fast=False)
    else:
        text = run(fast=False)
    return flatten_table_rows(text)


# trafilatura 2.x writes table rows Markdown-style (`| a | b |`, `|---|`, `\|` escapes). In
# plain training text that turns layout tables into pipe soup, and every such line "ends" in
# `|`, so real articles laid out in tables fail the line-punctuation rules. Cells are kept,
# joined by " | ", without the frame.
_TABLE_SEPARATOR_RE = re.compile(r"^\|(?:\s*:?-+:?\s*\|)+$")
_CELL_SPLIT_RE = re.compile(r"(?<!\\)\|")


def flatten_table_rows(text: str) -> str:
    """Turn Markdown-style table rows into plain lines of cells; other lines are unchanged."""
    if "|" not in text:
        return text
    out = []
    for line in text.split("\n"):
        row = line.strip()
        if len(row) >= 2 and row[0] == "|" and row[-1] == "|":
            if _TABLE_SEPARATOR_RE.match(row):
                continue
            cells = [c.strip().replace("\\|", "|") for c in _CELL_SPLIT_RE.split(row[1:-1])]
            line = " | ".join(c for c in cells if c)
            if not line:
                continue
        out.append(line)
    return "\n".join(out)


def _resiliparse_extract(html: str) -> str:
    try:
        from resiliparse.extract.html2text import extract_plain_text
    except ImportError:
        raise ExtractionError(
            "extract.extractor=resiliparse needs the resiliparse package: "
            "pip install dataproc[resiliparse] (or set extract.extractor=trafilatura)"
        ) from None
    # DCLM's settings: main content only, keep paragraph breaks (line-based filters need them).
    return extract_plain_text(html, main_content=True, preserve_formatting=True) or ""


def extract_text(html: str, config: ExtractConfig) -> str:
    """Extract the main text of one HTML page in-process (no time limit); "" when none."""
    if not html.strip():
        return ""
    if config.extractor == "resiliparse":
        text = _resiliparse_extract(html)
    else:
        text = _trafilatura_extract(html, config)
    return text.strip()


def check_extractor_available(config: ExtractConfig) -> None:
    """Raise ExtractionError now (not on the first page) if the chosen extractor is missing."""
    import importlib.util

    if config.extractor == "resiliparse" and importlib.util.find_spec("resiliparse") is None:
        raise ExtractionError(
            "extract.extractor=resiliparse needs the resiliparse package: "
            "pip install dataproc[resiliparse] (or set extract.extractor=trafilatura)"
        )


class Extractor(Stage):
    """Turn ``doc.html`` into ``doc.text`` (and free the HTML and the HTTP headers).

    Replacements of the extraction child are counted by cause (``child_restarts:timeout``,
    ``:crashed``, ``:max_calls``, ``:rss``) against the file whose page caused them.

    ``work_fn`` replaces the extraction function run in the child (tests use it to simulate
    pages that hang); it must be picklable. By default it is ``extract_text`` with ``config``.
    """

    name: ClassVar[str] = "extract"
    REASONS: ClassVar[tuple[str, ...]] = ("timeout", "extraction_error", "empty", "too_short")

    def __init__(self, config: ExtractConfig | None = None, work_fn: WorkFn | None = None) -> None:
        self.config = config or ExtractConfig()
        self._work_fn: WorkFn = work_fn or functools.partial(extract_text, config=self.config)
        self._sandbox: Sandbox | None = None
        self._restarts_counted: dict[str, int] = {}

    def setup(self) -> None:
        check_extractor_available(self.config)
        if self.config.isolate and self._sandbox is None:
            self._sandbox = Sandbox(
                self._work_fn,
                timeout_seconds=self.config.timeout_seconds,
                max_calls_per_child=self.config.max_pages_per_child,
                max_rss_bytes=self.config.max_child_rss_bytes,
                warmup=_WARMUP_HTML,
                wall_factor=self.config.timeout_wall_multiplier,
            )
            self._sandbox.start()

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()

    def cpu_elsewhere(self) -> float:
        """CPU seconds the extraction children spent on pages (``Stage.cpu_elsewhere``)."""
        return self._sandbox.call_cpu_seconds if self._sandbox is not None else 0.0

    @property
    def child_pid(self) -> int | None:
        """Pid of the running extraction child (None if none), for monitoring and tests."""
        return self._sandbox.pid if self._sandbox is not None else None

    @property
    def restarts(self) -> dict[str, int]:
        """How often the child was replaced, by cause (timeout, crashed, max_calls, rss)."""
        return dict(self._sandbox.restarts) if self._sandbox is not None else {}

    def _run(self, html: str) -> str | Reject:
        if not self.config.isolate:
            try:
                return self._work_fn(html)
            except ExtractionError:
                raise
            except Exception as e:
                return Reject("extraction_error", f"{type(e).__name__}: {e}"[:500])
        if self._sandbox is None:
            self.setup()
        sandbox = self._sandbox
        if sandbox is None:  # setup() always creates it when isolate is on
            raise ExtractionError("extraction sandbox was not created; call setup() first")
        html_mib = len(html) / (1 << 20)  # characters, not bytes: close enough, and free
        limit = self.config.timeout_seconds + self.config.timeout_seconds_per_mib * html_mib
        result = sandbox.call(html, timeout_seconds=limit)
        self._count_restarts(sandbox)
        if result.status == "ok":
            return result.value
        if result.status == "timeout":
            return Reject("timeout", result.value)
        return Reject("extraction_error", result.value)

    def _count_restarts(self, sandbox: Sandbox) -> None:
        # The sandbox counts for its lifetime (across files): count what is new since.
        for cause, total in sandbox.restarts.items():
            seen = self._restarts_counted.get(cause, 0)
            if total != seen:
                self.count(f"child_restarts:{cause}", total - seen)
                self._restarts_counted[cause] = total

    def process(self, doc: Document) -> Document | Reject:
        if not doc.html.strip():
            if not doc.text.strip():
                return Reject("empty", "no HTML")
            out: str | Reject = doc.text  # a WET conversion record: already extracted text
        else:
            out = self._run(doc.html)
        if isinstance(out, Reject):
            return out
        text = out.strip()
        if not text:
            return Reject("empty", "extractor found no main text")
        if len(text) < self.config.min_chars:
            return Reject("too_short", f"{len(text)} < {self.config.min_chars} chars")
        doc.text = text
        # The HTML is the biggest thing a document carries; the reader's HTTP headers (for
        # the consent step) are of no use to text steps either: drop both now.
        doc.html = ""
        doc.metadata.pop("http_headers", None)
        return doc

    def text_bytes(self, doc: Document) -> int:
        # In: the HTML the extractor reads; out: the text it produced (HTML is then cleared).
        if doc.html:
            return len(doc.html.encode("utf-8", "surrogatepass"))
        return len(doc.text.encode("utf-8", "surrogatepass"))
