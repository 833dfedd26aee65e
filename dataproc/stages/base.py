"""The stage contract: a small class with a typed config and one method.

A stage knows nothing of Ray. It is built from its config, loads heavy resources lazily in
``setup()`` (called once per worker process), and turns documents into documents or
``Reject``s. ``run_stage`` drives it over a stream, counting everything in a ``StageStats``
and handing every drop to a reject sink, so that nothing leaves without a trace. What else a
stage wants reported (PII replaced, lines removed, child restarts) it counts itself with
``self.count(key, n)``: ``run_stage`` binds that to the stage's ``counters`` in ``stats.json``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import ClassVar

from dataproc.document import Document, Reject, RejectSink
from dataproc.stats import StageStats


class Stage:
    """Base class for document stages.

    Subclasses set ``name`` and ``REASONS`` (the fixed set of drop reasons), and implement
    ``process`` (one document) or, when batching pays off, ``process_batch``.
    A stage may mutate the document it is given (text, language, metadata) and return it.
    """

    name: ClassVar[str] = "stage"
    REASONS: ClassVar[tuple[str, ...]] = ()
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
    batch_size: int = 1,
    max_batch_chars: int | None = None,
) -> Iterator[Document]:
    """Run ``stage`` over ``docs``, counting in ``stats`` and sending drops to ``reject``.

    With ``batch_size > 1`` documents go to ``process_batch`` in batches that end at
    ``batch_size`` documents or, if given, once they hold ``max_batch_chars`` characters of
    text (bounds memory by bytes, not by a count of documents of any length). The stage's
    ``count()`` adds to ``stats.counters`` while this runs."""
    # Bound when the stream starts (a generator runs nothing before the first document): a
    # stage reused for the next file counts into that file's stats from then on.
    stage.bind_counters(stats.counters)
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
        raise ValueError(
            f"stage {stage.name!r} dropped a document for {result.reason!r}, "
            f"which is not one of its REASONS {stage.REASONS}"
        )
