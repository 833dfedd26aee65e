"""Phase 1 of one file on several workers: one task per byte range, then one merge.

A range task (``run_range``) reads the members of its range (``readers/spans.py``) through
the same stages as a whole file and writes its survivors, rejects and band keys under
``_work/ranges/<input>-<range>/`` with a done-marker, numbering its records from 0. The merge
(``merge_ranges``) then writes exactly the files a whole-file task writes — doc indices shifted
by the records of the ranges before, row groups cut at the same places, band keys sorted
together, stats added — and the input's phase-1 marker, so nothing after phase 1 can tell that
the file was split, and the output is byte-identical for any number of ranges.

Each range starts in the reader state read from the file's head. The merge checks that range
``k`` started where range ``k-1`` stopped and in the state it ended in; where not (a boundary
after damage, a second warcinfo naming another crawl, a boundary candidate that was inside a
member) it reads that range again itself from the right place and state. So correctness never
rests on the boundaries; they only decide how much runs in parallel.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from typing import Any

from dataproc.config import PipelineConfig
from dataproc.document import Document, Reject
from dataproc.io import fs
from dataproc.io.layout import OutputLayout, band_file
from dataproc.io.markers import (
    FilterMarker,
    MarkerError,
    RangeMarker,
    parse_marker,
    range_unit,
    read_marker,
    write_marker,
)
from dataproc.readers.spans import ReaderState, ReadSpan
from dataproc.runner.phase1 import Phase1Files, run_phase1
from dataproc.stats import StageStats, StatsSet

log = logging.getLogger("dataproc")

Span = tuple[int, int | None]
"""A range ``[start, end)`` of an input file in bytes; ``end`` None: to the end of the file."""


def part_files(layout: OutputLayout, input_index: int, k: int) -> Phase1Files:
    """Where range ``k`` writes (the whole file's names, in its part folder)."""
    return Phase1Files(
        layout.range_docs(input_index, k),
        layout.range_rejects(input_index, k),
        layout.range_dir(input_index, k),
    )


def part_marker(layout: OutputLayout, input_index: int, k: int) -> str:
    return layout.range_marker(input_index, k)


def head_state(
    input_path: str, input_index: int, config: PipelineConfig, end: int | None
) -> ReaderState:
    """The reader state after the first records of the file (read no further than ``end``):
    what every range but the first starts in."""
    from dataproc.readers.warc import read_warc

    span = ReadSpan(0, end, settle=True)
    with fs.open_input(input_path) as stream:
        for _ in read_warc(
            stream,  # type: ignore[arg-type]  # fsspec files are binary streams
            source=input_path,
            input_index=input_index,
            config=config.reader,
            stats=StageStats("read"),
            reject=lambda doc, stage, reject: None,
            span=span,
        ):
            pass
    assert span.end_state is not None
    return dataclasses.replace(span.end_state, resyncing=False)


def run_range(
    input_path: str,
    input_index: int,
    k: int,
    span: Span,
    state: ReaderState,
    config: PipelineConfig,
    out_dir: str,
    on_record: Any = None,
) -> RangeMarker:
    """Phase 1 of one range into its part folder; writes and returns its done-marker."""
    from dataproc.runner.resume import describe_outputs

    layout = OutputLayout(out_dir)
    files = part_files(layout, input_index, k)
    read = ReadSpan(span[0], span[1], state)
    result = run_phase1(
        input_path, input_index, config, out_dir, on_record=on_record, span=read, files=files
    )
    assert read.end_state is not None and read.stop is not None
    paths = [files.docs, files.rejects]
    if config.dedup.enabled:
        paths.append(band_file(files.work, input_index))
    marker = RangeMarker(
        **{
            **dict(result),
            "outputs": describe_outputs(out_dir, paths),
            "range": k,
            "start": span[0],
            "end": span[1],
            "state": state.to_dict(),
            "stop": read.stop,
            "end_state": read.end_state.to_dict(),
            "ordinals": read.ordinals,
            "first_ok": bool(read.first_ok),
        }
    )
    write_marker(part_marker(layout, input_index, k), marker)
    return marker


def _started_right(m: RangeMarker, pos: int, state: ReaderState) -> bool:
    """Whether a range's result is what reading on from ``pos`` in ``state`` would give."""
    if m.start != pos:
        return False
    if m.state == state.to_dict():
        return True
    # A first member read cleanly leaves no trace of the start state's resyncing flag.
    return (
        m.first_ok
        and m.state == dataclasses.replace(state, resyncing=not state.resyncing).to_dict()
    )


def _file_kind(state: ReaderState) -> str:
    """What the whole file was (the reader's ``kind()``), from the state it ended in."""
    if state.wat:
        return "wat"
    if state.records_ok == 0:
        return "no_records"
    return "wet" if state.wet else "warc"


def merge_ranges(
    input_path: str,
    input_index: int,
    spans: list[Span],
    config: PipelineConfig,
    out_dir: str,
) -> FilterMarker:
    """Join the finished ranges of one input into its phase-1 files; return the marker a
    whole-file task would have written (the caller adds ``outputs`` and writes it)."""
    from dataproc.readers.source import check_input_kind

    started = time.time()
    layout = OutputLayout(out_dir)
    used: list[tuple[int, RangeMarker]] = []
    pos, state = 0, ReaderState()
    for k, span in enumerate(spans):
        end = span[1]
        if state.wat or (end is not None and pos >= end):
            continue  # the reader stopped, or the previous range read past this one
        path = part_marker(layout, input_index, k)
        m = parse_marker(RangeMarker, fs.read_json(path), path)
        if not _started_right(m, pos, state):
            log.warning(
                "%s: range %d started at %d in %s, the one before stopped at %d in %s; "
                "reading it again from there",
                input_path,
                k,
                m.start,
                m.state,
                pos,
                state.to_dict(),
            )
            m = run_range(input_path, input_index, k, (pos, end), state, config, out_dir)
        used.append((k, m))
        pos, state = m.stop, ReaderState.from_dict(m.end_state)

    stats = StatsSet()
    languages: Counter[str] = Counter()
    for _, m in used:
        stats = stats + m.stats_set()
        languages.update(m.languages)
    stats.get("read").counters[f"input_{_file_kind(state)}"] += 1
    check_input_kind(input_path, stats.get("read"))
    kept = _merge_docs(layout, input_index, used)
    _merge_rejects(layout, input_index, used)
    if config.dedup.enabled:
        _merge_bands(layout, input_index, used, config)
    return FilterMarker(
        input_index=input_index,
        input=input_path,
        fingerprint=config.fingerprint(),
        input_bytes=used[-1][1].input_bytes if used else None,
        docs_kept=kept,
        languages=dict(sorted(languages.items())),
        stats=stats.to_list(),
        seconds=round(time.time() - started + sum(m.seconds for _, m in used), 3),
    )


def _bases(used: list[tuple[int, RangeMarker]]) -> list[int]:
    """Doc-index offset of each used range: the record ordinals of the ranges before it."""
    out, base = [], 0
    for _, m in used:
        out.append(base)
        base += m.ordinals
    return out


def _merge_docs(layout: OutputLayout, input_index: int, used: list[tuple[int, RangeMarker]]) -> int:
    from dataproc.io.documents import DocsSink, DocsSource

    sink = DocsSink(layout.docs(input_index))
    try:
        for (k, _), base in zip(used, _bases(used), strict=True):
            part = DocsSource(part_files(layout, input_index, k).docs)
            for doc in part.read(StageStats("merge"), _no_reject):
                doc.doc_index += base
                sink.write(doc)
    except BaseException:
        sink.abort()
        raise
    return sink.close()


def _no_reject(doc: Document, stage: str, reject: Reject) -> None:
    raise AssertionError("reading a survivors file drops nothing")


def _merge_rejects(
    layout: OutputLayout, input_index: int, used: list[tuple[int, RangeMarker]]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataproc.io.rejects import REJECT_SCHEMA

    tables = []
    for k, _ in used:
        with fs.open_input(part_files(layout, input_index, k).rejects) as f:
            tables.append(pq.read_table(f, schema=REJECT_SCHEMA))
    table = pa.concat_tables(tables) if tables else REJECT_SCHEMA.empty_table()
    with fs.atomic_write(layout.rejects(input_index, "filter")) as f:
        pq.write_table(table.combine_chunks(), f, compression="zstd")  # as RejectWriter does


def _merge_bands(
    layout: OutputLayout,
    input_index: int,
    used: list[tuple[int, RangeMarker]],
    config: PipelineConfig,
) -> None:
    import numpy as np
    import pyarrow.parquet as pq

    from dataproc.dedup.buckets import BAND_ROW_GROUP, band_table, write_parquet_atomic

    width = config.dedup.num_perm
    bands, keys, docs, sketches = [], [], [], []
    for (k, _), base in zip(used, _bases(used), strict=True):
        with fs.open_input(band_file(part_files(layout, input_index, k).work, input_index)) as f:
            t = pq.read_table(f)
        bands.append(np.asarray(t.column("band").to_numpy(), dtype=np.uint8))
        keys.append(np.asarray(t.column("key").to_numpy(), dtype=np.uint64))
        docs.append(np.asarray(t.column("doc").to_numpy(), dtype=np.uint64) + np.uint64(base))
        sk = t.column("sketch").combine_chunks()
        sketches.append(
            np.frombuffer(
                sk.buffers()[1], dtype=np.uint8, count=len(sk) * width, offset=sk.offset * width
            ).reshape(len(sk), width)
        )
    band = np.concatenate(bands) if bands else np.empty(0, np.uint8)
    key = np.concatenate(keys) if keys else np.empty(0, np.uint64)
    doc = np.concatenate(docs) if docs else np.empty(0, np.uint64)
    sketch = np.concatenate(sketches) if sketches else np.empty((0, width), np.uint8)
    order = np.lexsort((doc, band, key))  # the order BandKeyWriter.close writes
    table = band_table(band[order], key[order], doc[order], sketch[order], config.dedup.bands)
    write_parquet_atomic(table, layout.bands(input_index), row_group_size=BAND_ROW_GROUP)


def remove_parts(layout: OutputLayout, input_index: int) -> None:
    """Delete the part folders of an input once its phase-1 marker is written (also those an
    earlier run with other boundaries left)."""
    prefix = f"{input_index:06d}-"
    for path in fs.listdir(layout.ranges_dir):
        if path.rstrip("/").rsplit("/", 1)[-1].startswith(prefix):
            fs.remove(path, recursive=True)


def reusable_ranges(
    layout: OutputLayout, input_index: int, spans: list[Span], fingerprint: str
) -> set[int]:
    """Ranges whose done-marker is this run's (config, boundaries) and whose files are intact
    (resume trusts files: sizes from one listing per part folder)."""
    from dataproc.runner.resume import _Sizes, damaged_files

    sizes = _Sizes(layout.out)
    ok = set()
    for k, span in enumerate(spans):
        try:
            m = read_marker(part_marker(layout, input_index, k), RangeMarker, fingerprint)
        except MarkerError:
            continue  # not one this dataproc wrote: the range is read again
        if (
            m is not None
            and [m.start, m.end] == list(span)
            and not damaged_files(layout.out, m, sizes, verify=False)
        ):
            ok.add(k)
    return ok


def live_unit(input_index: int, k: int) -> int:
    """The live-progress unit of range ``k`` (apart from the whole-file unit numbers)."""
    return range_unit(input_index, k)
