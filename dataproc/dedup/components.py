"""Phase 2, step 2: connected components of the verified edges, by many small tasks.

Algorithm: alternating *large-star* and *small-star* rounds (Kiveris et al., "Connected
Components in MapReduce and Beyond", SoCC 2014). Edges are stored in both orientations
``(x, y)`` sorted by x; a round's task owns a contiguous range of node ids (whole input
files, so that the last step can write each input's removal file alone) and reads, from every
file of the previous round, only the row groups whose x statistics overlap it. For each node
``u`` of its range, with neighbours Γ(u) and m = min(Γ(u) ∪ {u}):

- large-star emits {v, m} for every neighbour v > u;
- small-star emits {v, m'} for every v in N = {v ∈ Γ(u): v < u} ∪ {u}, m' = min N.

Both keep the components and only lower node labels; they converge to a forest of stars, each
centred on its component's smallest node. We stop when a large-star task finds its input
already in that form (every node that has a smaller neighbour has exactly one neighbour: then
each component is a star around its minimum). Rounds are O(log² n) in theory and about
log₂(diameter) in practice (a 100 k-node chain: see docs/cluster.md) — unlike min-label
propagation, which needs as many rounds as the diameter. A sharded union-find with merge
rounds was the other option; its merge tasks hold the union of their children's node sets,
which grows with the component, so it does not keep memory bounded.

Memory per task does not depend on degrees: a task first folds its range's rows, a row
group at a time, into per-node (smallest, largest neighbour) — all the star rules need —, then
streams the rows again and emits; its output is collected by ``dataproc.dedup.runs.SortedPairs``
(sorted runs spilled and merged when large). So a hub (a component's centre collects one row
per member) costs one node's state, and a task holds ~``NODE_BYTES`` per node of its range
(node ranges are planned from documents and edges) plus bounded batches.

When all verified edges fit in one task's budget, ``local_components`` (one vectorized
union-find) is used instead: it yields exactly the same components.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dataproc.dedup.results import RangeResult, StarResult
from dataproc.errors import DedupError
from dataproc.io.layout import DedupLayout

if TYPE_CHECKING:
    from numpy.typing import NDArray

REASON_EXACT = "exact_duplicate"
REASON_NEAR = "near_duplicate"
_NONE = np.uint64(np.iinfo(np.uint64).max)


def _iter_range(
    paths: list[str], columns: tuple[str, str], lo: int, hi: int
) -> Iterator[tuple[NDArray[np.uint64], NDArray[np.uint64]]]:
    """Rows of the files (sorted by ``columns[0]``) with ``lo <= columns[0] < hi``, a row
    group at a time."""
    import pyarrow.parquet as pq

    from dataproc.dedup.buckets import select_row_groups
    from dataproc.io import fs

    for path in sorted(paths):
        if not fs.exists(path):
            raise DedupError(
                f"{path}: dedup work file is missing; the task that writes it did not finish "
                "(rerun the job to redo dedup)"
            )
        try:
            with fs.open_input(path) as f:
                pf = pq.ParquetFile(f)
                for g in select_row_groups(pf, columns[0], lo, hi):
                    t = pf.read_row_group(g, columns=list(columns))
                    a = np.asarray(t.column(columns[0]).to_numpy(), dtype=np.uint64)
                    b = np.asarray(t.column(columns[1]).to_numpy(), dtype=np.uint64)
                    sel = (a >= np.uint64(lo)) & (a <= np.uint64(hi - 1))
                    if sel.any():
                        yield a[sel], b[sel]
        except (OSError, ValueError, KeyError) as e:
            raise DedupError(f"{path}: cannot read dedup work file: {e}") from None


def _read_range(
    paths: list[str], columns: tuple[str, str], lo: int, hi: int
) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """Rows of the files (sorted by ``columns[0]``) with ``lo <= columns[0] < hi``."""
    first, second = [], []
    for a, b in _iter_range(paths, columns, lo, hi):
        first.append(a)
        second.append(b)
    if not first:
        return np.empty(0, np.uint64), np.empty(0, np.uint64)
    return np.concatenate(first), np.concatenate(second)


_DEDUPE_EVERY = 1 << 22
"""Rows read before duplicates are merged away (a pair found in several bands or bucket
tasks is stored once per file: without merging, a hub's repeats would all be in memory)."""


def _distinct(x: NDArray[np.uint64], y: NDArray[np.uint64]) -> tuple[Any, Any]:
    order = np.lexsort((y, x))
    x, y = x[order], y[order]
    if len(x):
        first = np.concatenate(([True], (x[1:] != x[:-1]) | (y[1:] != y[:-1])))
        x, y = x[first], y[first]
    return x, y


def read_edges(paths: list[str], lo: int, hi: int) -> tuple[NDArray[np.uint64], NDArray[Any]]:
    """Distinct directed rows (x, y) with x in ``[lo, hi)``, sorted by (x, y).

    Files are read one at a time and repeats merged every ``_DEDUPE_EVERY`` rows, so memory is
    the distinct rows plus a bounded batch, not every repeat of every file at once.
    """
    acc_x, acc_y = np.empty(0, np.uint64), np.empty(0, np.uint64)
    xs: list[NDArray[np.uint64]] = []
    ys: list[NDArray[np.uint64]] = []
    pending = 0
    for path in sorted(paths):
        x, y = _read_range([path], ("x", "y"), lo, hi)
        xs.append(x)
        ys.append(y)
        pending += len(x)
        if pending >= _DEDUPE_EVERY:
            acc_x, acc_y = _distinct(np.concatenate([acc_x, *xs]), np.concatenate([acc_y, *ys]))
            xs, ys, pending = [], [], 0
    return _distinct(np.concatenate([acc_x, *xs]), np.concatenate([acc_y, *ys]))


NODE_BYTES = 96
"""Peak bytes per node of a star task's per-node state (node, min, max, count, merge sort)."""


@dataclass
class NodeStats:
    """Per node ``x`` of a range (sorted): smallest and largest neighbour, number of rows."""

    node: NDArray[np.uint64]
    low: NDArray[np.uint64]
    high: NDArray[np.uint64]
    rows: NDArray[np.int64]

    @staticmethod
    def fold(
        node: NDArray[np.uint64], low: NDArray[np.uint64], high: NDArray[np.uint64], rows: Any
    ) -> NodeStats:
        """One entry per distinct node: min of ``low``, max of ``high``, sum of ``rows``."""
        if len(node) == 0:
            return NodeStats(node, low, high, np.asarray(rows, dtype=np.int64))
        order = np.argsort(node, kind="stable")
        node, low, high, rows = node[order], low[order], high[order], rows[order]
        start = np.flatnonzero(np.concatenate(([True], node[1:] != node[:-1])))
        return NodeStats(
            node[start],
            np.minimum.reduceat(low, start),
            np.maximum.reduceat(high, start),
            np.add.reduceat(rows, start),
        )

    def merge(self, other: NodeStats) -> NodeStats:
        """The stats of both row sets."""
        return NodeStats.fold(
            np.concatenate((self.node, other.node)),
            np.concatenate((self.low, other.low)),
            np.concatenate((self.high, other.high)),
            np.concatenate((self.rows, other.rows)),
        )


def node_stats(
    paths: list[str], lo: int, hi: int, task_memory: int
) -> tuple[NodeStats, tuple[NDArray[np.uint64], NDArray[np.uint64]] | None]:
    """``NodeStats`` of the rows with x in ``[lo, hi)``, read a row group at a time and folded
    every ``task_memory / 4`` bytes of rows: memory grows with the range's nodes, not with
    their degree (a hub of 100 M documents costs one node). Also returns the rows themselves
    when they were never folded (they fit; a second pass need not read them again)."""
    batch_rows = max(1, task_memory // (4 * EDGE_ROW_BYTES))
    empty = np.empty(0, np.uint64)
    acc = NodeStats(empty, empty, empty, np.empty(0, np.int64))
    xs: list[NDArray[np.uint64]] = []
    ys: list[NDArray[np.uint64]] = []
    pending = 0
    folded = False
    for x, y in _iter_range(paths, ("x", "y"), lo, hi):
        xs.append(x)
        ys.append(y)
        pending += len(x)
        if pending >= batch_rows:
            x, y = np.concatenate(xs), np.concatenate(ys)
            acc = acc.merge(NodeStats.fold(x, y, y, np.ones(len(x), np.int64)))
            folded = True  # too many rows to keep: a second pass reads them again
            xs, ys, pending = [], [], 0
    x = np.concatenate(xs) if xs else empty
    y = np.concatenate(ys) if ys else empty
    acc = acc.merge(NodeStats.fold(x, y, y, np.ones(len(x), np.int64)))
    return acc, (None if folded else (x, y))


EDGE_ROW_BYTES = 64
"""Peak bytes per edge row a star task holds (two uint64 + sort order + outputs)."""


def star_round(
    kind: str, paths: list[str], lo: int, hi: int, out_path: str, task_memory: int
) -> StarResult:
    """One large-star (``kind='large'``) or small-star task over the nodes ``[lo, hi)``.

    Writes the emitted edges to ``out_path``; returns the edges written and the nodes of the
    INPUT that are not yet leaves or centres of a min-star (``unstable``).

    Two passes, neither holding a node's adjacency: the first folds each node's rows into
    (smallest, largest neighbour) — ``m = min(Γ(u) ∪ {u})`` and "degree > 1" (largest ≠
    smallest) are all the rules need —, the second streams the rows again and emits; the
    output is collected by ``SortedPairs`` (spilled and merged when large). Repeated rows give
    repeated outputs, which the output drops: the result is the distinct rows' result.
    """
    from dataproc.dedup.edges import EDGE_ROW_GROUP
    from dataproc.dedup.runs import PAIR_ROW_BYTES, SortedPairs

    if kind not in ("large", "small"):
        raise DedupError(f"star_round: kind must be 'large' or 'small', got {kind!r}")
    stats, held = node_stats(paths, lo, hi, task_memory)
    u, low = stats.node, stats.low
    m = np.minimum(u, low)
    out = SortedPairs(
        out_path, ("x", "y"), max(1, task_memory // (4 * PAIR_ROW_BYTES)), EDGE_ROW_GROUP
    )

    def emit(a: NDArray[np.uint64], b: NDArray[np.uint64]) -> None:
        out.add(np.concatenate((a, b)), np.concatenate((b, a)))

    blocks = [held] if held is not None else _iter_range(paths, ("x", "y"), lo, hi)
    for x, y in blocks:
        mx = m[np.searchsorted(u, x)]
        sel = y > x if kind == "large" else (y < x) & (y != mx)
        emit(y[sel], mx[sel])
    if kind == "large":
        unstable = int(((low < u) & (stats.high != low)).sum())
    else:
        unstable = 0
        own = m != u
        emit(u[own], m[own])
    return StarResult(unstable=unstable, edges=out.close() // 2)


def _components(n: int, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    """Connected components of nodes ``0..n-1``: each node's label is its component's min node.

    Vectorized union-find: hook every edge's two roots to the smaller one (``minimum.at``),
    then compress paths by pointer jumping, until no edge joins two roots. Labels only ever
    decrease and a node's label is a node of its own component, so the final root of a
    component is its minimum.
    """
    label = np.arange(n, dtype=np.int64)
    if len(a) == 0:
        return label
    while True:
        la = label[a]
        lb = label[b]
        m = np.minimum(la, lb)
        changed = la != lb
        if not changed.any():
            return label
        np.minimum.at(label, la[changed], m[changed])
        np.minimum.at(label, lb[changed], m[changed])
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped


def local_components(
    paths: list[str], lo: int, hi: int
) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """Min-star edges (leaf, centre) of all edges with x in ``[lo, hi)``, by one union-find."""
    x, y = read_edges(paths, lo, hi)
    nodes = np.unique(x)
    ia = np.searchsorted(nodes, x).astype(np.int64)
    ib = np.minimum(np.searchsorted(nodes, y), max(len(nodes) - 1, 0)).astype(np.int64)
    if not np.array_equal(nodes[ib], y):
        raise DedupError("local_components: an edge leaves the node range (corrupt edge files)")
    label = _components(len(nodes), ia, ib)
    leaf = np.flatnonzero(label != np.arange(len(nodes)))
    return nodes[leaf], nodes[label[leaf]]


def size_range(size: int) -> str:
    """Power-of-two size ranges: 2, 3-4, 5-8, 9-16, ..."""
    if size <= 2:
        return str(size)
    hi = 1 << (size - 1).bit_length()
    return f"{hi // 2 + 1}-{hi}"


def finish_range(
    edge_paths: list[str],
    exact_paths: list[str],
    input_lo: int,
    input_hi: int,
    offsets: list[int],
    run_inputs: list[int],
    removed_dir: str,
    converged: bool,
    task_memory: int,
) -> RangeResult:
    """Write the removal files of this run's inputs in ``[input_lo, input_hi)`` (id space).

    ``converged``: the edge files are min-stars (the last large-star round's output, where
    every edge is written once: ``star_components``); otherwise
    they are the bucket tasks' edges and one local union-find is run over them (then the
    range must be the whole id space). ``offsets``: the first id-space input of each
    ``--dedup-against`` output, then of this run (last). Returns partial summary counters.
    """
    lo, hi = input_lo << 32, input_hi << 32
    if converged:
        # Min-stars as the last large-star round writes them: each edge once, in one file.
        # A leaf's one row names its centre; a centre's rows count its leaves.
        stats, _ = node_stats(edge_paths, lo, hi, task_memory)
        is_leaf = stats.low < stats.node
        leaf, centre = stats.node[is_leaf], stats.low[is_leaf]
        centres, counts = stats.node[~is_leaf], stats.rows[~is_leaf]
    else:
        leaf, centre = local_components(edge_paths, lo, hi)
        centres, counts = np.unique(centre, return_counts=True)
        order = np.argsort(leaf, kind="stable")
        leaf, centre = leaf[order], centre[order]
    sizes = counts + 1
    summary = RangeResult(
        clusters=len(centres),
        docs_in_clusters=int(sizes.sum()),
        max_cluster_size=int(sizes.max()) if len(sizes) else 0,
        removed={REASON_EXACT: 0, REASON_NEAR: 0},
    )
    values, n = np.unique(sizes, return_counts=True)
    for s, c in zip(values.tolist(), n.tolist(), strict=True):
        key = size_range(s)
        summary.size_histogram[key] = summary.size_histogram.get(key, 0) + c

    ex_doc, ex_min = _read_range(exact_paths, ("doc", "exact_min"), lo, hi)
    order = np.argsort(ex_doc, kind="stable")
    ex_doc, ex_min = ex_doc[order], ex_min[order]
    exact_of = np.full(len(leaf), _NONE)
    if len(ex_doc):
        pos = np.minimum(np.searchsorted(ex_doc, leaf), len(ex_doc) - 1)
        hit = ex_doc[pos] == leaf
        exact_of[hit] = ex_min[pos[hit]]
    is_exact = exact_of == centre

    run_first = offsets[-1]
    first_input = max(input_lo, run_first)
    for index in run_inputs:
        gid = run_first + index
        if not first_input <= gid < input_hi:
            continue
        lo_d, hi_d = np.uint64(gid << 32), np.uint64(((gid + 1) << 32) - 1)
        sel = np.flatnonzero((leaf >= lo_d) & (leaf <= hi_d))
        summary.removed[REASON_EXACT] += int(is_exact[sel].sum())
        summary.removed[REASON_NEAR] += int((~is_exact[sel]).sum())
        _write_removed(
            leaf[sel] - np.uint64(run_first << 32),
            centre[sel],
            is_exact[sel],
            offsets,
            DedupLayout(removed_dir).removed(index),
        )
    return summary


def _write_removed(
    doc: NDArray[np.uint64],
    kept: NDArray[np.uint64],
    exact: NDArray[np.bool_],
    offsets: list[int],
    path: str,
) -> None:
    import pyarrow as pa

    from dataproc.dedup.buckets import write_parquet_atomic

    # Which output the kept document belongs to: -1 this run, k the k-th --dedup-against one.
    source = np.searchsorted(np.asarray(offsets, dtype=np.int64), kept >> np.uint64(32), "right")
    source = source.astype(np.int64) - 1
    kept_local = kept - (np.asarray(offsets, dtype=np.uint64)[source] << np.uint64(32))
    source[source == len(offsets) - 1] = -1
    table = pa.table(
        {
            "doc": pa.array(doc, type=pa.uint64()),
            "kept": pa.array(kept_local, type=pa.uint64()),
            "reason": pa.array(np.where(exact, REASON_EXACT, REASON_NEAR).tolist(), pa.string()),
            "kept_source": pa.array(source, type=pa.int32()),
        }
    )
    write_parquet_atomic(table, path)
