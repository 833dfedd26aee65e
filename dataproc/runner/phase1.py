"""Phase 1, one input file: WARC source → the pipeline's steps → survivors and band keys.

A plain function over one file: no Ray here. Survivors go to ``_work/docs``, their LSH band keys
to ``_work/bands``, every drop to ``rejects/``; the completion marker is written last, so a file
counts as done only once everything it produced is in place.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from dataproc.config import PipelineConfig
from dataproc.document import Document
from dataproc.io.documents import DocsSink
from dataproc.io.layout import OutputLayout
from dataproc.io.markers import FilterMarker
from dataproc.io.rejects import RejectWriter
from dataproc.stages.base import Sink, Stage, run_flow
from dataproc.stats import StatsSet

if TYPE_CHECKING:
    from dataproc.readers.spans import ReadSpan

# Stages are expensive to build (fastText model, extraction child process): one set per worker
# process and config, reused across the files that process handles.
_STAGE_CACHE: dict[str, list[Stage]] = {}


def build_filter_stages(config: PipelineConfig) -> list[Stage]:
    """The document stages of phase 1 in the order of ``config.steps``, built and set up."""
    from dataproc.steps.build import build_stages

    return build_stages(config)


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


class LanguageTally:
    """Counts the surviving documents of each language (the marker's ``languages``)."""

    name: ClassVar[str | None] = None

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def write(self, doc: Document) -> None:
        self.counts[doc.language or "unknown"] += 1

    def close(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))

    def abort(self) -> None:
        """Nothing to discard."""


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
) -> FilterMarker:
    """Process one input file through phase 1 and return its marker (with stats; the task
    adds the files it wrote).

    ``on_record(doc, stats)`` (optional) is called for every record read, before the stages
    see it, with the shard's stats so far (live progress, the offset for error logs).
    ``span``/``files``: read only one byte range into other files (``runner/ranges.py``).
    """
    from dataproc.dedup.writer import DedupWriter
    from dataproc.readers.source import WarcSource

    started = time.time()
    layout = OutputLayout(out_dir)
    files = files or Phase1Files.of(layout, input_index)
    stats = StatsSet()
    rejects = RejectWriter(files.rejects, config.write.rejects_text)
    stages = cached_filter_stages(config)
    source = WarcSource(input_path, input_index, config.reader, span)
    sinks: list[Sink] = []
    if config.dedup.enabled:
        sinks.append(DedupWriter(files.work, input_index, config.dedup))
    sinks += [LanguageTally(), DocsSink(files.docs)]  # the survivors file is published last
    *_, languages, kept = run_flow(source, stages, sinks, stats, rejects, on_record)
    rejects.close()
    return FilterMarker(
        input_index=input_index,
        input=input_path,
        fingerprint=config.fingerprint(),
        input_bytes=source.bytes_read,
        docs_kept=kept,
        languages=languages,
        stats=stats.to_list(),
        seconds=round(time.time() - started, 3),
    )
