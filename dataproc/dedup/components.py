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

Memory per task: ~40 bytes x the edge rows of its node range. A component's centre collects
one row per member at the end, so one component of k documents needs ~40 k bytes in one task
(k = 25 M at 1 GiB): the budget bounds every task except the one holding a component larger
than that (see docs/cluster.md).

When all verified edges fit in one task's budget, ``local_components`` (one vectorized
union-find) is used instead: it yields exactly the same components.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dataproc.dedup.edges import write_edges
from dataproc.errors import DedupError
from dataproc.io.layout import DedupLayout

if TYPE_CHECKING:
    from numpy.typing import NDArray

REASON_EXACT = "exact_duplicate"
REASON_NEAR = "near_duplicate"
_NONE = np.uint64(np.iinfo(np.uint64).max)


def _read_range(
    paths: list[str], columns: tuple[str, str], lo: int, hi: int
) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """Rows of the files (sorted by ``columns[0]``) with ``lo <= columns[0] < hi``."""
    import pyarrow.parquet as pq

    from dataproc.dedup.buckets import select_row_groups
    from dataproc.io import fs

    first, second = [], []
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
                    first.append(a[sel])
                    second.append(b[sel])
        except (OSError, ValueError, KeyError) as e:
            raise DedupError(f"{path}: cannot read dedup work file: {e}") from None
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


def _node_runs(x: NDArray[np.uint64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Start of each node's run of rows, and each row's run number."""
    first = np.concatenate(([True], x[1:] != x[:-1]))
    return np.flatnonzero(first), np.cumsum(first) - 1


def star_round(kind: str, paths: list[str], lo: int, hi: int, out_path: str) -> dict[str, int]:
    """One large-star (``kind='large'``) or small-star task over the nodes ``[lo, hi)``.

    Writes the emitted edges to ``out_path``; returns ``{"unstable": nodes of the INPUT that
    are not yet leaves or centres of a min-star, "edges": edges written}``.
    """
    x, y = read_edges(paths, lo, hi)
    empty = np.empty(0, np.uint64)
    if len(x) == 0:
        return {"unstable": 0, "edges": write_edges(empty, empty, out_path)}
    start, run = _node_runs(x)
    u = x[start]
    degree = np.diff(np.append(start, len(x)))
    if kind == "large":
        min_nb = np.minimum.reduceat(y, start)
        unstable = int(((min_nb < u) & (degree > 1)).sum())
        m = np.minimum(u, min_nb)
        emit = y > x
        a, b = y[emit], m[run[emit]]
    elif kind == "small":
        unstable = 0
        smaller = np.where(y < x, y, _NONE)
        m = np.minimum(u, np.minimum.reduceat(smaller, start))
        emit = (y < x) & (y != m[run])
        own = m != u
        a = np.concatenate((y[emit], u[own]))
        b = np.concatenate((m[run[emit]], m[own]))
    else:
        raise DedupError(f"star_round: kind must be 'large' or 'small', got {kind!r}")
    return {"unstable": unstable, "edges": write_edges(a, b, out_path)}


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
) -> dict[str, Any]:
    """Write the removal files of this run's inputs in ``[input_lo, input_hi)`` (id space).

    ``converged``: the edge files are min-stars (the last star round's input); otherwise
    they are the bucket tasks' edges and one local union-find is run over them (then the
    range must be the whole id space). ``offsets``: the first id-space input of each
    ``--dedup-against`` output, then of this run (last). Returns partial summary counters.
    """
    lo, hi = input_lo << 32, input_hi << 32
    if converged:
        x, y = read_edges(edge_paths, lo, hi)
        is_leaf = y < x
        leaf, centre = x[is_leaf], y[is_leaf]
        cx = x[~is_leaf]
        centres, counts = np.unique(cx, return_counts=True)
    else:
        leaf, centre = local_components(edge_paths, lo, hi)
        centres, counts = np.unique(centre, return_counts=True)
        order = np.argsort(leaf, kind="stable")
        leaf, centre = leaf[order], centre[order]
    sizes = counts + 1
    summary: dict[str, Any] = {
        "clusters": len(centres),
        "docs_in_clusters": int(sizes.sum()),
        "max_cluster_size": int(sizes.max()) if len(sizes) else 0,
        "size_histogram": {},
        "removed": {REASON_EXACT: 0, REASON_NEAR: 0},
    }
    values, n = np.unique(sizes, return_counts=True)
    for s, c in zip(values.tolist(), n.tolist(), strict=True):
        key = size_range(s)
        summary["size_histogram"][key] = summary["size_histogram"].get(key, 0) + c

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
        summary["removed"][REASON_EXACT] += int(is_exact[sel].sum())
        summary["removed"][REASON_NEAR] += int((~is_exact[sel]).sum())
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
