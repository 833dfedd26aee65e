"""Phase 1, one input file: read → url_filter → extract → langid → quality → pii → minhash.

A plain function over one file: no Ray here. Survivors go to ``_work/docs``, their LSH band keys
to ``_work/bands``, every drop to ``rejects/``; the completion marker is written last, so a file
counts as done only once everything it produced is in place.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from dataproc.config import PipelineConfig
from dataproc.document import Document
from dataproc.io import fs
from dataproc.io.layout import OutputLayout
from dataproc.io.rejects import RejectWriter
from dataproc.stages.base import Stage, run_stage
from dataproc.stats import StageStats, StatsSet

if TYPE_CHECKING:
    from dataproc.readers.spans import ReadSpan

DOCS_SCHEMA = pa.schema(
    [
        ("doc_index", pa.uint64()),
        ("id", pa.string()),
        ("url", pa.string()),
        ("warc_target_uri", pa.string()),
        ("source", pa.string()),
        ("offset", pa.int64()),
        ("crawl", pa.string()),
        ("warc_date", pa.timestamp("us", tz="UTC")),
        ("language", pa.string()),
        ("language_score", pa.float32()),
        ("text", pa.string()),
    ]
)

# Stages are expensive to build (fastText model, extraction child process): one set per worker
# process and config, reused across the files that process handles.
_STAGE_CACHE: dict[str, list[Stage]] = {}


def build_filter_stages(config: PipelineConfig) -> list[Stage]:
    """The document stages of phase 1 in order, built and set up."""
    from dataproc.stages.consent import ConsentFilter
    from dataproc.stages.decontaminate import Decontaminator
    from dataproc.stages.extract import Extractor
    from dataproc.stages.langid import LanguageId
    from dataproc.stages.pii import PiiScrubber
    from dataproc.stages.prefilter import Prefilter
    from dataproc.stages.quality import quality_stages
    from dataproc.stages.url_filter import UrlFilter

    stages: list[Stage] = []
    if config.url_filter.enabled:
        stages.append(UrlFilter(config.url_filter))
    if config.consent.enabled:
        stages.append(ConsentFilter(config.consent))
    if config.prefilter.enabled:
        gopher = config.quality.gopher_quality
        min_words = gopher.min_words if config.quality.enabled and gopher.enabled else 0
        stages.append(
            Prefilter(
                config.prefilter, config.langid.languages, min_words, config.langid.model_path
            )
        )
    stages.append(Extractor(config.extract))
    stages.append(LanguageId(config.langid))
    stages.extend(quality_stages(config.quality))
    if config.pii.enabled:
        stages.append(PiiScrubber(config.pii))
    if config.decontaminate.enabled and config.decontaminate.sets:
        stages.append(Decontaminator(config.decontaminate))
    for s in stages:
        s.setup()
    return stages


def cached_filter_stages(config: PipelineConfig) -> list[Stage]:
    key = config.fingerprint()
    if key not in _STAGE_CACHE:
        for stages in _STAGE_CACHE.values():
            for s in stages:
                s.close()
        _STAGE_CACHE.clear()
        _STAGE_CACHE[key] = build_filter_stages(config)
    return _STAGE_CACHE[key]


def close_cached_stages() -> None:
    for stages in _STAGE_CACHE.values():
        for s in stages:
            s.close()
    _STAGE_CACHE.clear()


# A row group of survivors is written once it holds this many documents or this many
# characters of text, whichever comes first: memory stays bounded by bytes, however long the
# documents of a file are (10,000 documents of 80k words would otherwise be ~5 GB).
DOCS_ROW_GROUP_ROWS = 2048
DOCS_ROW_GROUP_CHARS = 16 * 1024 * 1024


class _DocsWriter:
    """Writes the surviving documents of one input file as they come, row group by row group
    (bounded in rows and in text characters), into ``sink``."""

    def __init__(self, sink: Any) -> None:
        self._writer = pq.ParquetWriter(sink, DOCS_SCHEMA, compression="zstd")
        self.rows = 0
        self._reset()

    def _reset(self) -> None:
        self.cols: dict[str, list[Any]] = {n: [] for n in DOCS_SCHEMA.names}
        self._buffered = 0
        self._chars = 0

    def add(self, d: Document) -> None:
        c = self.cols
        c["doc_index"].append(d.doc_index)
        c["id"].append(d.id)
        c["url"].append(d.url)
        c["warc_target_uri"].append(d.warc_target_uri)
        c["source"].append(d.source)
        c["offset"].append(d.offset)
        c["crawl"].append(d.crawl)
        c["warc_date"].append(d.warc_date)
        c["language"].append(d.language)
        c["language_score"].append(d.language_score)
        c["text"].append(d.text)
        self._buffered += 1
        self._chars += len(d.text)
        if self._buffered >= DOCS_ROW_GROUP_ROWS or self._chars >= DOCS_ROW_GROUP_CHARS:
            self._flush()

    def _flush(self) -> None:
        if self._buffered:
            self._writer.write_table(pa.table(self.cols, schema=DOCS_SCHEMA))
            self.rows += self._buffered
            self._reset()

    def close(self) -> int:
        """Write what is buffered and the footer; return the number of documents written."""
        self._flush()
        self._writer.close()
        return self.rows

    def abort(self) -> None:
        """Stop writing after a failure (the file is discarded by its owner)."""
        # The sink may already be broken (disk full): there is nothing to save.
        with contextlib.suppress(Exception):
            self._writer.close()


def _check_input_kind(input_path: str, read_stats: StageStats) -> None:
    """Refuse a file the reader found to be no WARC/WET at all (no record, a WAT, bzip2):
    its task fails with one line naming the file, so the run cannot end 'complete' on it."""
    c = read_stats.counters
    if not (c.get("input_no_records") or c.get("input_wat")):
        return
    from dataproc.errors import InputError
    from dataproc.runner.plan import sniff_input

    try:
        problem = sniff_input(input_path).problem()
    except OSError:
        problem = None
    if c.get("input_wat"):
        problem = "is a WAT file (JSON metadata records, no page text); give its WARC or WET file"
    raise InputError(
        f"{input_path} {problem or 'yields no WARC record (damaged beyond repair or not a WARC)'}"
    )


def _observe(
    docs: Iterator[Document], stats: StatsSet, on_record: Callable[[Document, StatsSet], None]
) -> Iterator[Document]:
    for d in docs:
        on_record(d, stats)
        yield d


def _position(stream: object) -> int | None:
    """Bytes consumed from the input (the reader reads to the end): its size, without a HEAD."""
    try:
        return int(stream.tell())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class Phase1Files:
    """Where phase 1 writes: survivors, rejects, and the folder of ``bands/`` (band keys)."""

    docs: str
    rejects: str
    work: str

    @classmethod
    def of(cls, layout: OutputLayout, input_index: int) -> Phase1Files:
        """The files of a whole input (a range writes its own: ``runner/ranges.py``)."""
        return cls(layout.docs(input_index), layout.rejects(input_index, "filter"), layout.work)


def run_phase1(
    input_path: str,
    input_index: int,
    config: PipelineConfig,
    out_dir: str,
    on_record: Callable[[Document, StatsSet], None] | None = None,
    span: ReadSpan | None = None,
    files: Phase1Files | None = None,
) -> dict[str, Any]:
    """Process one input file through phase 1 and return its marker payload (with stats).

    ``on_record(doc, stats)`` (optional) is called for every record read, before the stages
    see it, with the shard's stats so far (live progress, the offset for error logs).
    ``span``/``files``: read only one byte range into other files (``runner/ranges.py``).
    """
    from dataproc.dedup.writer import DedupWriter
    from dataproc.readers.warc import read_warc

    started = time.time()
    layout = OutputLayout(out_dir)
    files = files or Phase1Files.of(layout, input_index)
    stats = StatsSet()
    rejects = RejectWriter(files.rejects, config.write.rejects_text)
    stages = cached_filter_stages(config)

    read_stats = stats.get("read")
    with (
        fs.open_input(input_path) as stream,
        fs.atomic_write(files.docs) as docs_file,
    ):
        if span is not None and span.start:
            stream.seek(span.start)
        docs: Iterator[Document] = read_warc(
            stream,  # type: ignore[arg-type]  # fsspec files are binary streams
            source=input_path,
            input_index=input_index,
            config=config.reader,
            stats=read_stats,
            reject=rejects,
            span=span,
        )
        if on_record is not None:
            docs = _observe(docs, stats, on_record)
        for stage in stages:
            docs = run_stage(stage, docs, stats.get(stage.name), rejects)

        writer = _DocsWriter(docs_file)
        languages: Counter[str] = Counter()
        try:
            if config.dedup.enabled:
                dedup = DedupWriter(files.work, input_index, config.dedup)
                sig_stats = stats.get("minhash")
                for d in docs:
                    sig_stats.docs_in += 1
                    with sig_stats.timed():
                        dedup.add(d.doc_index, d.text)
                    sig_stats.docs_out += 1
                    languages[d.language or "unknown"] += 1
                    writer.add(d)
                dedup.close()
            else:
                for d in docs:
                    languages[d.language or "unknown"] += 1
                    writer.add(d)
            input_bytes = _position(stream)
            if span is None:  # a range: the merge checks the whole file
                _check_input_kind(input_path, read_stats)  # before the survivors file is published
            kept = writer.close()
        except BaseException:
            writer.abort()  # the temporary file is then removed by atomic_write
            raise
    rejects.close()
    return {
        "input_index": input_index,
        "input": input_path,
        "fingerprint": config.fingerprint(),
        "input_bytes": input_bytes,
        "docs_kept": kept,
        "languages": dict(sorted(languages.items())),
        "stats": stats.to_list(),
        "seconds": round(time.time() - started, 3),
    }
