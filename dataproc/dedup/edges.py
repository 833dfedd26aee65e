"""Phase 2, step 1: one key range of every band file → *verified* duplicate edges.

A bucket task owns the band keys in ``[lo, hi)`` (``dataproc.dedup.buckets``). Rows with equal
(band, key) are LSH candidates. Each candidate group is resolved here, where it is found, so
only verified edges leave the task:

- exact-text groups (band id ``exact_band``): every member is linked to the group's smallest
  doc, and its ``exact_min`` (that smallest doc) is recorded for the removal reason;
- near-duplicate groups, in doc order: the first member is a *leader*; every other member
  whose sketch agrees with the leader's on at least ``need`` positions gets the edge
  (leader, member); the first member left over becomes the next leader, and so on for at most
  ``MAX_LEADERS`` leaders. Cost: O(group size x MAX_LEADERS x num_perm), never quadratic;
  members still unmatched after that get no edge from this group (they may still be linked
  through another band).

Verification uses the b-bit (b = 8) MinHash sketch stored with every band row: two documents
agree on a position with probability J + (1 - J) / 256 (J = Jaccard of their shingle sets),
i.e. the 8-bit estimate of J is the full signature's plus at most 0.0012 at J = 0.7. It costs
``num_perm`` bytes per band row on disk, and saves phase 2 the random reads of ``_work/sigs``:
reading signatures for the candidates of every bucket task would read (almost) every signature
file once per task — IO growing as tasks x corpus, i.e. quadratically.

Outputs (one of each per task, never one per input):
- edges file: columns ``x``, ``y`` (uint64), every undirected edge in both orientations,
  sorted by (x, y) — the input format of ``dataproc.dedup.components``;
- exact file: ``doc``, ``exact_min`` (uint64) sorted by doc, for members of exact groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dataproc.errors import DedupError

if TYPE_CHECKING:
    from numpy.typing import NDArray

MAX_LEADERS = 8
"""Leaders tried per near-duplicate candidate group (bounds the work per member)."""

EDGE_ROW_GROUP = 1 << 16
"""Rows per row group of edge files: the unit later steps read by ``x`` range."""

_CHUNK = 1 << 16


def need_for(min_similarity: float, num_perm: int) -> int:
    """Sketch positions that must agree for a pair to be verified (0: no verification)."""
    if min_similarity <= 0:
        return 0
    return max(1, math.ceil(min_similarity * num_perm - 1e-9))


def _load_sources(
    sources: list[tuple[str, int, str | None]], lo: int, hi: int, num_perm: int
) -> tuple[NDArray[np.uint8], NDArray[np.uint64], NDArray[np.uint64], NDArray[np.uint8], int]:
    from dataproc.dedup.buckets import read_key_range

    parts: list[tuple[Any, ...]] = []
    exact_band: int | None = None
    for path, offset, removed in sources:
        band, key, doc, sketch, eb = read_key_range(path, lo, hi, num_perm, offset << 32)
        if exact_band is not None and eb != exact_band:
            raise DedupError(
                f"{path}: exact-key band {eb} differs from {exact_band} in the other band "
                "files (mixed dedup.bands settings); delete _work/ and rerun"
            )
        exact_band = eb
        if removed is not None and len(doc):
            # An earlier output's documents take part only if that output kept them.
            gone = load_removed_docs(removed) + np.uint64(offset << 32)
            keep = ~np.isin(doc, gone)
            band, key, doc, sketch = band[keep], key[keep], doc[keep], sketch[keep]
        if len(doc):
            parts.append((band, key, doc, sketch))
    if not parts:
        e = np.empty(0, np.uint64)
        return np.empty(0, np.uint8), e, e, np.empty((0, num_perm), np.uint8), -1
    out = tuple(np.concatenate([p[i] for p in parts]) for i in range(4))
    return out[0], out[1], out[2], out[3], -1 if exact_band is None else exact_band


def compact_band_files(
    sources: list[tuple[str, int, str | None]],
    out_path: str,
    num_perm: int,
    exact_band: int,
    chunks: int,
) -> int:
    """Merge band files into one key-sorted band file (doc ids already in the id space).

    The merged file has the band-file layout, so bucket tasks read it like any input's: with
    many inputs, each bucket task then opens one file per batch instead of one per input.
    Done in ``chunks`` key ranges, one at a time, so memory is the batch's rows / ``chunks``.
    Returns the number of rows written.
    """
    import pyarrow.parquet as pq

    from dataproc.dedup.buckets import BAND_ROW_GROUP, KEY_SPACE, band_table
    from dataproc.io import fs

    rows = 0
    with fs.atomic_write(out_path) as f:
        writer = None
        for c in range(chunks):
            lo, hi = KEY_SPACE * c // chunks, KEY_SPACE * (c + 1) // chunks
            band, key, doc, sketch, eb = _load_sources(sources, lo, hi, num_perm)
            if eb not in (-1, exact_band):
                raise DedupError(
                    f"{out_path}: inputs hold exact keys in band {eb}, expected {exact_band} "
                    "(dedup.bands differs from the run that wrote them)"
                )
            order = np.lexsort((doc, band, key))
            table = band_table(band[order], key[order], doc[order], sketch[order], exact_band)
            del band, key, doc, sketch, order
            if writer is None:
                writer = pq.ParquetWriter(f, table.schema, compression="zstd", compression_level=1)
            if table.num_rows or c == chunks - 1:
                writer.write_table(table, row_group_size=BAND_ROW_GROUP)
            rows += table.num_rows
        if writer is not None:
            writer.close()
    _release_arrow_memory()
    return rows


def _release_arrow_memory() -> None:
    """Hand Arrow's cached buffers back to the OS, so the worker's next task starts small."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def load_removed_docs(path: str) -> NDArray[np.uint64]:
    """The ``doc`` column of a removal file (a missing file is an error)."""
    import pyarrow.parquet as pq

    from dataproc.io import fs

    if not fs.exists(path):
        raise DedupError(f"{path}: removal file is missing; that output's dedup did not finish")
    with fs.open_input(path) as f:
        t = pq.ParquetFile(f).read(columns=["doc"])
    return np.asarray(t.column("doc").to_numpy(), dtype=np.uint64)


def _candidates(key: NDArray[np.uint64]) -> NDArray[np.bool_]:
    """Rows whose key value occurs more than once (one sort of the key column only)."""
    sorted_keys = np.sort(key)
    repeated = np.unique(sorted_keys[1:][sorted_keys[1:] == sorted_keys[:-1]])
    del sorted_keys
    mask = np.zeros(len(key), dtype=bool)
    if len(repeated) == 0:
        return mask
    for lo in range(0, len(key), _CHUNK):
        chunk = key[lo : lo + _CHUNK]
        pos = np.minimum(np.searchsorted(repeated, chunk), len(repeated) - 1)
        mask[lo : lo + _CHUNK] = repeated[pos] == chunk
    return mask


def _agree(sketch: NDArray[np.uint8], rows: NDArray[np.int64], other: NDArray[np.int64]) -> Any:
    """Number of equal sketch positions of ``rows[i]`` and ``other[i]`` (chunked)."""
    out = np.empty(len(rows), dtype=np.int32)
    for lo in range(0, len(rows), _CHUNK):
        a = sketch[rows[lo : lo + _CHUNK]]
        b = sketch[other[lo : lo + _CHUNK]]
        out[lo : lo + _CHUNK] = (a == b).sum(axis=1)
    return out


def _leader_edges(
    group: NDArray[np.int64], doc: NDArray[np.uint64], sketch: NDArray[np.uint8], need: int
) -> tuple[NDArray[np.uint64], NDArray[np.uint64], dict[str, int]]:
    """Verified (leader, member) edges of near-duplicate groups (rows sorted by group, doc)."""
    n = len(group)
    pending = np.ones(n, dtype=bool)
    a_parts, b_parts = [], []
    checked = rejected = 0
    for _ in range(MAX_LEADERS):
        idx = np.flatnonzero(pending)
        if len(idx) == 0:
            break
        g = group[idx]
        first = np.concatenate(([True], g[1:] != g[:-1]))
        leader_pos = np.maximum.accumulate(np.where(first, np.arange(len(idx)), 0))
        leaders = idx[leader_pos]
        members = ~first
        if not members.any():
            break
        rows, lead = idx[members], leaders[members]
        ok = np.ones(len(rows), dtype=bool) if need == 0 else _agree(sketch, rows, lead) >= need
        checked += len(rows)
        rejected += int((~ok).sum())
        a_parts.append(doc[lead[ok]])
        b_parts.append(doc[rows[ok]])
        pending[idx[first]] = False  # leaders are done
        pending[rows[ok]] = False
        # A group with a single pending row left has nothing more to compare.
        idx = np.flatnonzero(pending)
        g = group[idx]
        alone = np.ones(len(idx), dtype=bool)
        if len(idx) > 1:
            same_prev = np.concatenate(([False], g[1:] == g[:-1]))
            same_next = np.concatenate((g[1:] == g[:-1], [False]))
            alone = ~(same_prev | same_next)
        pending[idx[alone]] = False
    unlinked = int(pending.sum())
    empty = np.empty(0, np.uint64)
    a = np.concatenate(a_parts) if a_parts else empty
    b = np.concatenate(b_parts) if b_parts else empty
    return a, b, {"pairs_checked": checked, "pairs_rejected": rejected, "unlinked": unlinked}


def find_bucket_edges(
    sources: list[tuple[str, int, str | None]],
    lo: int,
    hi: int,
    edges_path: str,
    exact_path: str,
    num_perm: int,
    min_similarity: float,
) -> dict[str, int]:
    """Verified edges of the keys in ``[lo, hi)`` of every band file; see the module doc.

    ``sources`` are ``(band file, input offset, removal file or None)``: the offset (in input
    units) is added to the input part of every doc id, and documents listed in the removal file
    are ignored (both for ``--dedup-against`` outputs). Returns counters for the summary.
    """
    band, key, doc, sketch, exact_band = _load_sources(sources, lo, hi, num_perm)
    result = edges_of_rows(band, key, doc, sketch, exact_band, need_for(min_similarity, num_perm))
    del band, key, doc, sketch
    result.stats["edges"] = write_edges(result.a, result.b, edges_path)
    write_exact(result.exact_doc, result.exact_min, exact_path)
    _release_arrow_memory()
    return result.stats


@dataclass
class RowEdges:
    """What one set of band rows yields: verified edges (a, b), exact-group members with their
    group's smallest doc, and counters."""

    a: NDArray[np.uint64]
    b: NDArray[np.uint64]
    exact_doc: NDArray[np.uint64]
    exact_min: NDArray[np.uint64]
    stats: dict[str, int]


def edges_of_rows(
    band: NDArray[np.uint8],
    key: NDArray[np.uint64],
    doc: NDArray[np.uint64],
    sketch: NDArray[np.uint8],
    exact_band: int,
    need: int,
) -> RowEdges:
    """Verified edges of band rows that hold *every* row of each of their (band, key) groups.

    The core of a bucket task, apart from its IO (also used by ``bench/dedup_shuffle.py`` on
    rows grouped by Ray Data's hash shuffle). ``need``: see ``need_for``.
    """
    stats = {"band_rows": len(doc), "candidate_rows": 0, "pairs_checked": 0}
    stats.update({"pairs_rejected": 0, "unlinked": 0, "edges": 0})
    cand = _candidates(key)
    band, key, doc, sketch = band[cand], key[cand], doc[cand], sketch[cand]
    del cand
    stats["candidate_rows"] = len(doc)
    empty = np.empty(0, np.uint64)
    if len(doc) == 0:
        return RowEdges(empty, empty, empty, empty, stats)
    order = np.lexsort((doc, key, band))
    band, key, doc = band[order], key[order], doc[order]
    start = np.concatenate(([True], (band[1:] != band[:-1]) | (key[1:] != key[:-1])))
    group = np.cumsum(start) - 1
    is_exact = band == exact_band

    # Exact groups: all members share the normalized text; link to the group's min.
    ex = np.flatnonzero(is_exact)
    ex_start = np.flatnonzero(start[ex])
    ex_min = doc[ex][np.repeat(ex_start, np.diff(np.append(ex_start, len(ex))))]
    ex_member = doc[ex] != ex_min
    ea, eb = ex_min[ex_member], doc[ex][ex_member]

    near = np.flatnonzero(~is_exact)
    near_sketch = sketch[order[near]]  # one gather: sketches are the largest column
    del sketch, band, key, order
    na, nb, counts = _leader_edges(group[near], doc[near], near_sketch, need)
    stats.update(counts)
    del near_sketch
    a = np.concatenate((ea, na))
    b = np.concatenate((eb, nb))
    keep = a != b
    stats["edges"] = int(keep.sum())
    return RowEdges(a[keep], b[keep], eb, ea, stats)


def write_edges(a: NDArray[np.uint64], b: NDArray[np.uint64], path: str) -> int:
    """Write undirected edges in both orientations, deduplicated, sorted by (x, y).

    Returns the number of distinct undirected edges.
    """
    import pyarrow as pa

    from dataproc.dedup.buckets import write_parquet_atomic

    x = np.concatenate((a, b))
    y = np.concatenate((b, a))
    order = np.lexsort((y, x))
    x, y = x[order], y[order]
    if len(x):
        first = np.concatenate(([True], (x[1:] != x[:-1]) | (y[1:] != y[:-1])))
        x, y = x[first], y[first]
    table = pa.table({"x": pa.array(x, type=pa.uint64()), "y": pa.array(y, type=pa.uint64())})
    write_parquet_atomic(table, path, row_group_size=EDGE_ROW_GROUP)
    return len(x) // 2


def write_exact(doc: NDArray[np.uint64], exact_min: NDArray[np.uint64], path: str) -> None:
    """Write (doc, exact_min) rows sorted by doc (a doc is in one exact group at most)."""
    import pyarrow as pa

    from dataproc.dedup.buckets import write_parquet_atomic

    order = np.argsort(doc, kind="stable")
    doc, exact_min = doc[order], exact_min[order]
    if len(doc):
        first = np.concatenate(([True], doc[1:] != doc[:-1]))
        doc, exact_min = doc[first], exact_min[first]
    table = pa.table(
        {"doc": pa.array(doc, type=pa.uint64()), "exact_min": pa.array(exact_min, pa.uint64())}
    )
    write_parquet_atomic(table, path, row_group_size=EDGE_ROW_GROUP)
