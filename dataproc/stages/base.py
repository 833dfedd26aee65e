"""The stage contract: a small class with a typed config and one method.

A stage knows nothing of Ray. It is built from its config, loads heavy resources lazily in
``setup()`` (called once per worker process), and turns documents into documents or
``Reject``s. ``run_stage`` drives it over a stream, counting everything in a ``StageStats``
and handing every drop to a reject sink, so that nothing leaves without a trace. What else a
stage wants reported (PII replaced, lines removed, child restarts) it counts itself with
``self.count(key, n)``: ``run_stage`` binds that to the stage's ``counters`` in ``stats.json``.

Every phase is ``source → stages → sinks`` for one input (``run_flow``): a ``Source`` reads
documents (a WARC file, phase 1's survivors), ``Stage``s keep, change or drop them, ``Sink``s
write them (survivors, band keys, token shards); all count in the same ``stats.json``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Literal, Protocol

from dataproc.document import Document, Reject, RejectSink
from dataproc.errors import StageError
from dataproc.stats import StageStats, StatsSet


class Stage:
    """Base class for document stages.

    Subclasses set ``name`` and ``REASONS`` (the fixed set of drop reasons; none: the stage
    never drops), and implement ``process`` (one document) or, when batching pays off,
    ``process_batch``. A stage may mutate the document it is given (text, language, metadata)
    and return it.

    A user's own step (``module:Class`` in a pipeline's ``steps``, docs/stages.md) may also
    have a nested pydantic ``Config`` class: its settings are validated with it and the stage
    is built as ``Class(config)`` (``Class()`` without one). ``WORKS_ON`` places it around
    ``extract``; built-in steps declare theirs in ``dataproc/steps/builtin.py``.
    """

    name: ClassVar[str] = "stage"
    REASONS: ClassVar[tuple[str, ...]] = ()
    # "text" steps read doc.text and run after extract; "html" steps read the page (URL,
    # HTML, doc.metadata["http_headers"]) and run before it; "extract" turns HTML into text.
    WORKS_ON: ClassVar[Literal["html", "extract", "text"]] = "text"
    # How run_stage feeds process_batch: up to batch_size documents, ending early once they
    # hold max_batch_chars characters (1: one document at a time through process).
    batch_size: int = 1
    max_batch_chars: int | None = None
    # Where count() adds: the StageStats.counters run_stage bound, else the stage's own.
    _counters: Counter[str] | None = None

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to this stage's counter ``key`` (``stats.json`` ``counters``, the report).

        Inside ``run_stage`` it counts into the stats of the file being processed; a stage
        called directly (tests, notebooks) counts into its own ``counters``. Zeros are not
        recorded, so a counter shows up only once something happened."""
        if n:
            self.counters[key] += n

    @property
    def counters(self) -> Counter[str]:
        """The counters ``count()`` adds to (see there)."""
        if self._counters is None:
            self._counters = Counter()
        return self._counters

    def bind_counters(self, counters: Counter[str]) -> None:
        """Make ``count()`` add to ``counters`` (``run_stage`` binds its ``StageStats``)."""
        self._counters = counters

    def setup(self) -> None:
        """Load models or other heavy resources. Called once before the first document."""

    def close(self) -> None:
        """Release resources (child processes, files). Safe to call twice."""

    def cpu_elsewhere(self) -> float:
        """CPU seconds other processes have spent on this stage's work so far (e.g. an
        extraction child); ``run_stage`` adds what accrues while it runs to the stage's
        ``cpu_seconds``. A running total over the stage's life, 0 for in-process stages."""
        return 0.0

    def process(self, doc: Document) -> Document | Reject:
        raise NotImplementedError

    def process_batch(self, docs: Sequence[Document]) -> list[Document | Reject]:
        return [self.process(d) for d in docs]

    # Stages that change the text report bytes in/out on the text; others leave it as is.
    def text_bytes(self, doc: Document) -> int:
        return len(doc.text.encode("utf-8", "surrogatepass"))


def run_stage(
    stage: Stage,
    docs: Iterable[Document],
    stats: StageStats,
    reject: RejectSink,
    batch_size: int | None = None,
    max_batch_chars: int | None = None,
) -> Iterator[Document]:
    """Run ``stage`` over ``docs``, counting in ``stats`` and sending drops to ``reject``.

    ``batch_size`` and ``max_batch_chars`` default to the stage's own. With ``batch_size > 1``
    documents go to ``process_batch`` in batches that end at ``batch_size`` documents or, if given, once they hold ``max_batch_chars`` characters of
    text (bounds memory by bytes, not by a count of documents of any length). The stage's
    ``count()`` adds to ``stats.counters`` while this runs."""
    # Bound when the stream starts (a generator runs nothing before the first document): a
    # stage reused for the next file counts into that file's stats from then on.
    stage.bind_counters(stats.counters)
    if batch_size is None:
        batch_size, max_batch_chars = stage.batch_size, stage.max_batch_chars
    elsewhere = stage.cpu_elsewhere()
    try:
        yield from _run_docs(stage, docs, stats, reject, batch_size, max_batch_chars)
    finally:
        stats.cpu_seconds += stage.cpu_elsewhere() - elsewhere


def _run_docs(
    stage: Stage,
    docs: Iterable[Document],
    stats: StageStats,
    reject: RejectSink,
    batch_size: int,
    max_batch_chars: int | None,
) -> Iterator[Document]:
    if batch_size <= 1:
        for doc in docs:
            stats.docs_in += 1
            stats.bytes_in += stage.text_bytes(doc)
            with stats.timed():
                result = stage.process(doc)
            if isinstance(result, Reject):
                _check_reason(stage, result)
                stats.drop(result.reason)
                reject(doc, stage.name, result)
            else:
                stats.docs_out += 1
                stats.bytes_out += stage.text_bytes(result)
                yield result
        return

    batch: list[Document] = []
    chars = 0
    for doc in docs:
        batch.append(doc)
        chars += len(doc.text)
        if len(batch) >= batch_size or (max_batch_chars is not None and chars >= max_batch_chars):
            yield from _run_batch(stage, batch, stats, reject)
            batch = []
            chars = 0
    if batch:
        yield from _run_batch(stage, batch, stats, reject)


def _run_batch(
    stage: Stage, batch: list[Document], stats: StageStats, reject: RejectSink
) -> Iterator[Document]:
    stats.docs_in += len(batch)
    stats.bytes_in += sum(stage.text_bytes(d) for d in batch)
    with stats.timed():
        results = stage.process_batch(batch)
    for doc, result in zip(batch, results, strict=True):
        if isinstance(result, Reject):
            _check_reason(stage, result)
            stats.drop(result.reason)
            reject(doc, stage.name, result)
        else:
            stats.docs_out += 1
            stats.bytes_out += stage.text_bytes(result)
            yield result


def _check_reason(stage: Stage, result: Reject) -> None:
    # Also for a stage that declares none: it has promised never to drop.
    if result.reason not in stage.REASONS:
        raise StageError(
            f"stage {stage.name!r} dropped a document for {result.reason!r}, "
            f"which is not one of its REASONS {stage.REASONS}"
        )


class Source(Protocol):
    """Where a phase's documents come from (a WARC file; phase 1's survivors in phase 3).

    ``read`` yields them in order, counting into ``stats`` (its ``name``'s entry in
    ``stats.json``; a source named None is not listed) and sending what it drops to ``reject``.
    """

    name: ClassVar[str | None]

    def read(self, stats: StageStats, reject: RejectSink) -> Iterator[Document]: ...


class Sink(Protocol):
    """Where a phase's documents go: a file of survivors, band keys, token shards.

    ``write`` takes one document; ``close`` finishes (publishes) and returns what the phase
    records; ``abort`` discards after a failure anywhere in the phase. A named sink is listed in
    ``stats.json`` like a stage that never drops (``minhash``); an unnamed one is not.
    """

    name: ClassVar[str | None]

    def write(self, doc: Document) -> None: ...

    def close(self) -> Any: ...

    def abort(self) -> None: ...


def run_flow(
    source: Source,
    stages: Sequence[Stage],
    sinks: Sequence[Sink],
    stats: StatsSet,
    reject: RejectSink,
    on_record: Callable[[Document, StatsSet], None] | None = None,
) -> list[Any]:
    """One input through a phase: ``source → stages → sinks``; the sinks' ``close()`` results.

    Every stage counts in ``stats`` under its name (so does the source, and each named sink),
    in this order. ``on_record(doc, stats)`` sees each document the source yields, before the
    stages (live progress, the record offset for error lines). On any failure every sink is
    aborted, so nothing half-written is published."""
    try:
        source_stats = stats.get(source.name) if source.name else StageStats("source")
        docs = source.read(source_stats, reject)
        if on_record is not None:
            docs = _observed(docs, stats, on_record)
        for stage in stages:
            docs = run_stage(stage, docs, stats.get(stage.name), reject)
        counted = [(sink, stats.get(sink.name) if sink.name else None) for sink in sinks]
        for doc in docs:
            for sink, sink_stats in counted:
                if sink_stats is None:
                    sink.write(doc)
                    continue
                sink_stats.docs_in += 1
                with sink_stats.timed():
                    sink.write(doc)
                sink_stats.docs_out += 1
        return [sink.close() for sink in sinks]
    except BaseException:
        for sink in reversed(sinks):
            sink.abort()
        raise


def _observed(
    docs: Iterator[Document], stats: StatsSet, on_record: Callable[[Document, StatsSet], None]
) -> Iterator[Document]:
    for d in docs:
        on_record(d, stats)
        yield d
