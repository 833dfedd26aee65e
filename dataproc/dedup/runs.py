"""Pairs of uint64 written as one parquet file sorted by (first, second), distinct, in bounded
memory: rows are collected up to a limit, then sorted and spilled as a *run* file beside the
output; ``close()`` merges the runs (k-way, one row group per run in memory at a time).

Used for every phase-2 output that one task may produce more of than fits its budget: a
bucket task's edges and exact rows (a heavy band key yields one edge per member) and a star
task's edges (a hub's adjacency). With no spill the file is written exactly as before (one
sort of all rows), so small tasks' files are byte-identical to the in-memory path's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dataproc.errors import DedupError

if TYPE_CHECKING:
    from numpy.typing import NDArray

PAIR_ROW_BYTES = 48
"""Peak bytes per collected row while sorting it: two uint64, the sort order, the sorted copy."""

RUN_ROW_GROUP = 1 << 16
"""Rows per row group of a run file: the merge holds one per run."""


def sorted_distinct(a: NDArray[np.uint64], b: NDArray[np.uint64]) -> tuple[Any, Any]:
    """Rows (a, b) sorted by (a, b) with repeats dropped."""
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    if len(a):
        first = np.concatenate(([True], (a[1:] != a[:-1]) | (b[1:] != b[:-1])))
        a, b = a[first], b[first]
    return a, b


def _pair_table(columns: tuple[str, str], a: NDArray[np.uint64], b: NDArray[np.uint64]) -> Any:
    import pyarrow as pa

    return pa.table(
        {columns[0]: pa.array(a, type=pa.uint64()), columns[1]: pa.array(b, type=pa.uint64())}
    )


class SortedPairs:
    """Collects (a, b) rows; ``close()`` writes them to ``path`` sorted by (a, b), distinct.

    Memory: ``spill_rows`` x ``PAIR_ROW_BYTES`` while collecting, then one ``RUN_ROW_GROUP``
    per run (plus one output row group) while merging.
    """

    def __init__(
        self, path: str, columns: tuple[str, str], spill_rows: int, row_group: int
    ) -> None:
        self.path = path
        self.columns = columns
        self.spill_rows = max(1, spill_rows)
        self.row_group = row_group
        self._a: list[NDArray[np.uint64]] = []
        self._b: list[NDArray[np.uint64]] = []
        self._pending = 0
        self.runs: list[str] = []

    def add(self, a: NDArray[np.uint64], b: NDArray[np.uint64]) -> None:
        """Add rows; spills a sorted run when ``spill_rows`` rows are pending."""
        if len(a) == 0:
            return
        self._a.append(np.asarray(a, dtype=np.uint64))
        self._b.append(np.asarray(b, dtype=np.uint64))
        self._pending += len(a)
        if self._pending >= self.spill_rows:
            self._spill()

    def _take(self) -> tuple[Any, Any]:
        empty = np.empty(0, np.uint64)
        a = np.concatenate(self._a) if self._a else empty
        b = np.concatenate(self._b) if self._b else empty
        self._a, self._b, self._pending = [], [], 0
        return sorted_distinct(a, b)

    def _spill(self) -> None:
        from dataproc.dedup.buckets import write_parquet_atomic
        from dataproc.io.layout import sorted_run_file

        a, b = self._take()
        path = sorted_run_file(self.path, len(self.runs))
        write_parquet_atomic(_pair_table(self.columns, a, b), path, row_group_size=RUN_ROW_GROUP)
        self.runs.append(path)

    def close(self) -> int:
        """Write the file; returns its number of (distinct) rows. Run files are removed."""
        from dataproc.dedup.buckets import write_parquet_atomic
        from dataproc.io import fs

        if not self.runs:
            a, b = self._take()
            write_parquet_atomic(
                _pair_table(self.columns, a, b), self.path, row_group_size=self.row_group
            )
            return len(a)
        if self._pending:
            self._spill()
        try:
            return _merge_runs(self.runs, self.path, self.columns, self.row_group)
        finally:
            for run in self.runs:
                fs.remove(run)


class _Run:
    """One run file read a row group at a time."""

    def __init__(self, path: str, columns: tuple[str, str]) -> None:
        import pyarrow.parquet as pq

        from dataproc.io import fs

        self.columns = columns
        self._f = fs.open_input(path, block_size=1 << 20)  # one buffer per run: keep it small
        self._pf = pq.ParquetFile(self._f)
        self._next = 0
        self.a = np.empty(0, np.uint64)
        self.b = np.empty(0, np.uint64)
        self.refill()

    def refill(self) -> bool:
        """Load the next non-empty row group; False (and closed) when the run is exhausted."""
        while self._next < self._pf.num_row_groups:
            t = self._pf.read_row_group(self._next, columns=list(self.columns))
            self._next += 1
            if t.num_rows:
                self.a = np.asarray(t.column(self.columns[0]).to_numpy(), dtype=np.uint64)
                self.b = np.asarray(t.column(self.columns[1]).to_numpy(), dtype=np.uint64)
                return True
        self._f.close()
        self.a = self.b = np.empty(0, np.uint64)
        return False

    def cut(self, ba: np.uint64, bb: np.uint64) -> int:
        """Number of leading rows ≤ (ba, bb) in (a, b) order (the buffer is sorted)."""
        lo = int(np.searchsorted(self.a, ba, "left"))
        hi = int(np.searchsorted(self.a, ba, "right"))
        return lo + int(np.searchsorted(self.b[lo:hi], bb, "right"))


def _merge_runs(runs: list[str], path: str, columns: tuple[str, str], row_group: int) -> int:
    """K-way merge of sorted distinct run files into ``path`` (sorted, distinct)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataproc.io import fs

    schema = pa.schema([(columns[0], pa.uint64()), (columns[1], pa.uint64())])
    rows = 0
    last: tuple[int, int] | None = None
    out_a: list[NDArray[np.uint64]] = []
    out_b: list[NDArray[np.uint64]] = []
    held = 0
    try:
        active = [r for r in (_Run(p, columns) for p in runs) if len(r.a)]
    except (OSError, ValueError) as e:
        raise DedupError(f"{path}: cannot read a sorted run: {e}") from None
    with fs.atomic_write(path) as f:
        writer = pq.ParquetWriter(f, schema, compression="zstd", compression_level=1)
        while active:
            # Every row ≤ the smallest buffered last row is buffered now (runs are sorted):
            # those rows can be emitted in order.
            ends = [(int(r.a[-1]), int(r.b[-1])) for r in active]
            ba, bb = min(ends)
            parts_a, parts_b = [], []
            for r in active:
                k = r.cut(np.uint64(ba), np.uint64(bb))
                parts_a.append(r.a[:k])
                parts_b.append(r.b[:k])
                r.a, r.b = r.a[k:], r.b[k:]
            a, b = sorted_distinct(np.concatenate(parts_a), np.concatenate(parts_b))
            if last is not None and len(a) and (int(a[0]), int(b[0])) == last:
                a, b = a[1:], b[1:]
            if len(a):
                last = (int(a[-1]), int(b[-1]))
                out_a.append(a)
                out_b.append(b)
                held += len(a)
                rows += len(a)
            if held >= row_group:
                held = _write_full_groups(writer, columns, out_a, out_b, row_group)
            active = [r for r in active if len(r.a) or r.refill()]
        if out_a:
            a, b = np.concatenate(out_a), np.concatenate(out_b)
            writer.write_table(_pair_table(columns, a, b), row_group_size=row_group)
        writer.close()
    return rows


def _write_full_groups(
    writer: Any,
    columns: tuple[str, str],
    out_a: list[NDArray[np.uint64]],
    out_b: list[NDArray[np.uint64]],
    row_group: int,
) -> int:
    """Write the whole row groups held in ``out_a``/``out_b``; keep the rest; return its size."""
    a, b = np.concatenate(out_a), np.concatenate(out_b)
    whole = len(a) - len(a) % row_group
    writer.write_table(_pair_table(columns, a[:whole], b[:whole]), row_group_size=row_group)
    out_a[:] = [a[whole:]]
    out_b[:] = [b[whole:]]
    return len(a) - whole
