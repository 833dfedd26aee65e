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

Memory: a task whose range holds more rows than ``task_memory`` allows (one band key shared by
millions of documents: an empty template page) processes key sub-ranges one at a time and
streams each *heavy* key in doc order (``LeaderStream`` is the leader rule above, fed a block at
a time); its edges go through ``dataproc.dedup.runs.SortedPairs``. Same edges, same counters.

Outputs (one of each per task, never one per input):
- edges file: columns ``x``, ``y`` (uint64), every undirected edge in both orientations,
  sorted by (x, y) — the input format of ``dataproc.dedup.components``;
- exact file: ``doc``, ``exact_min`` (uint64) sorted by doc, for members of exact groups.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dataproc.dedup.results import BucketResult
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
    task_memory: int,
) -> int:
    """Merge band files into one key-sorted band file (doc ids already in the id space).

    The merged file has the band-file layout, so bucket tasks read it like any input's: with
    many inputs, each bucket task then opens one file per batch instead of one per input.
    Done in ``chunks`` key ranges, one at a time, so memory is the batch's rows / ``chunks``;
    a chunk over half the budget (one key shared by most of the batch's documents) is split
    like a bucket task's range, its heavy keys copied as streams in (band, doc) order.
    Returns the number of rows written.
    """
    import pyarrow.parquet as pq

    from dataproc.dedup.buckets import BAND_ROW_GROUP, KEY_SPACE
    from dataproc.io import fs

    rows = 0
    # Merging holds rows as read, concatenated, sorted and as an Arrow table: 2 x a bucket
    # task's bytes per row, hence half the budget in the bucket task's terms.
    half = task_memory // 2
    light = max(1, half // (4 * band_row_bytes(num_perm)))
    with fs.atomic_write(out_path) as f:
        writer = None
        for c in range(chunks):
            lo, hi = KEY_SPACE * c // chunks, KEY_SPACE * (c + 1) // chunks
            units, _ = _plan_units(sources, lo, hi, num_perm, light, half)
            for u, (klo, khi, heavy) in enumerate(units):
                last = c == chunks - 1 and u == len(units) - 1
                tables = (
                    _heavy_tables(sources, klo, num_perm, exact_band)
                    if heavy
                    else [_sorted_table(sources, klo, khi, num_perm, exact_band, out_path)]
                )
                for table in tables:
                    if writer is None:
                        writer = pq.ParquetWriter(
                            f, table.schema, compression="zstd", compression_level=1
                        )
                    if table.num_rows or last:
                        writer.write_table(table, row_group_size=BAND_ROW_GROUP)
                    rows += table.num_rows
        if writer is not None:
            writer.close()
    _release_arrow_memory()
    return rows


def _sorted_table(
    sources: list[tuple[str, int, str | None]],
    lo: int,
    hi: int,
    num_perm: int,
    exact_band: int,
    out_path: str,
) -> Any:
    """The rows of ``[lo, hi)`` of every source as one band table sorted by (key, band, doc)."""
    from dataproc.dedup.buckets import band_table

    band, key, doc, sketch, eb = _load_sources(sources, lo, hi, num_perm)
    if eb not in (-1, exact_band):
        raise DedupError(
            f"{out_path}: inputs hold exact keys in band {eb}, expected {exact_band} "
            "(dedup.bands differs from the run that wrote them)"
        )
    order = np.lexsort((doc, band, key))
    return band_table(band[order], key[order], doc[order], sketch[order], exact_band)


def _heavy_tables(
    sources: list[tuple[str, int, str | None]], key: int, num_perm: int, exact_band: int
) -> Iterator[Any]:
    """One key's rows of every source as band tables of ``STREAM_ROWS``, in (band, doc) order."""
    from dataproc.dedup.buckets import band_table

    bands, _ = _bands_of(sources, key, num_perm)
    for band in bands:
        for doc, sketch in _chunks(_key_rows(sources, key, band, num_perm)):
            n = len(doc)
            yield band_table(
                np.full(n, band, np.uint8), np.full(n, key, np.uint64), doc, sketch, exact_band
            )


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


def band_row_bytes(num_perm: int) -> int:
    """Peak bytes per band row in a bucket task: the rows as read (per row group, then
    concatenated), the candidate copy, the sort order and the near rows' sketches. Measured:
    ~390 B per row with 112 permutations at 10 M documents (docs/cluster.md)."""
    return 4 * (17 + num_perm) + 32


KEY_COUNT_BYTES = 48
"""Peak bytes per distinct key of a bucket task's key pass (key, count, their merge sort)."""


def find_bucket_edges(
    sources: list[tuple[str, int, str | None]],
    lo: int,
    hi: int,
    edges_path: str,
    exact_path: str,
    num_perm: int,
    min_similarity: float,
    task_memory: int,
) -> BucketResult:
    """Verified edges of the keys in ``[lo, hi)`` of every band file; see the module doc.

    ``sources`` are ``(band file, input offset, removal file or None)``: the offset (in input
    units) is added to the input part of every doc id, and documents listed in the removal file
    are ignored (both for ``--dedup-against`` outputs). Returns counters for the summary.

    Memory stays under ``task_memory`` whatever the group sizes: a first pass reads only the
    key column and counts rows per key; a range over the budget is then processed in key
    sub-ranges of < 3/4 of it, and a key with more rows than a quarter of it (a *heavy* key:
    a page copied millions of times) is streamed in doc order (``_stream_key``).
    Edges and exact rows are collected by ``SortedPairs`` (spilled and merged when large).
    The result does not depend on the split: every (band, key) group is resolved whole.
    """
    from dataproc.dedup.runs import PAIR_ROW_BYTES, SortedPairs

    need = need_for(min_similarity, num_perm)
    rows = max(1, task_memory // (4 * band_row_bytes(num_perm)))  # heavy: a key above this
    spill = max(1, task_memory // (8 * PAIR_ROW_BYTES))
    units, exact_band = _plan_units(sources, lo, hi, num_perm, rows, task_memory)
    edges = SortedPairs(edges_path, ("x", "y"), spill, EDGE_ROW_GROUP)
    exact = SortedPairs(exact_path, ("doc", "exact_min"), spill, EDGE_ROW_GROUP)
    stats = {"band_rows": 0, "candidate_rows": 0, "pairs_checked": 0}
    stats.update({"pairs_rejected": 0, "unlinked": 0})
    for klo, khi, heavy in units:
        if heavy:
            part = _stream_key(sources, klo, num_perm, exact_band, need, edges, exact)
        else:
            band, key, doc, sketch, eb = _load_sources(sources, klo, khi, num_perm)
            result = edges_of_rows(band, key, doc, sketch, eb, need)
            del band, key, doc, sketch
            edges.add(np.concatenate((result.a, result.b)), np.concatenate((result.b, result.a)))
            exact.add(result.exact_doc, result.exact_min)
            part = result.stats
            del result
        for k in stats:
            stats[k] += part[k]
    written = edges.close() // 2
    exact.close()
    _release_arrow_memory()
    return BucketResult(
        edges=written,
        pairs_checked=stats["pairs_checked"],
        pairs_rejected=stats["pairs_rejected"],
    )


def _plan_units(
    sources: list[tuple[str, int, str | None]],
    lo: int,
    hi: int,
    num_perm: int,
    rows: int,
    task_memory: int,
) -> tuple[list[tuple[int, int, bool]], int]:
    """Key sub-ranges ``(klo, khi, heavy)`` of ``[lo, hi)`` with < 3 x ``rows`` rows each,
    or a single heavy key (> ``rows`` rows) ``(k, k + 1, True)``; and the exact band id.

    Counts are taken before ``--dedup-against`` removals (an upper bound). When the whole
    range fits the budget (the case ``plan_buckets`` plans for), the one unit is ``[lo, hi)``
    itself: the in-memory path, unchanged.
    """
    from dataproc.dedup.buckets import read_key_counts

    keys: list[NDArray[np.uint64]] = []
    counts: list[NDArray[np.int64]] = []
    held = 0
    acc_k, acc_c = np.empty(0, np.uint64), np.empty(0, np.int64)
    exact_band: int | None = None
    for path, _offset, _removed in sources:
        k, c, eb = read_key_counts(path, lo, hi, num_perm)
        if exact_band is not None and eb != exact_band:
            raise DedupError(
                f"{path}: exact-key band {eb} differs from {exact_band} in the other band "
                "files (mixed dedup.bands settings); delete _work/ and rerun"
            )
        exact_band = eb
        keys.append(k)
        counts.append(c)
        held += len(k)
        if held * KEY_COUNT_BYTES >= task_memory // 8:
            acc_k, acc_c = _sum_by_key(
                np.concatenate([acc_k, *keys]), np.concatenate([acc_c, *counts])
            )
            keys, counts, held = [], [], 0
    uk, cnt = _sum_by_key(np.concatenate([acc_k, *keys]), np.concatenate([acc_c, *counts]))
    eb_out = -1 if exact_band is None else exact_band
    if int(cnt.sum()) * band_row_bytes(num_perm) <= task_memory * 5 // 4:
        # The planned case, read at once as before: ranges hold ≤ the budget on average, and
        # one a little above it (key-hash variance) still fits: ``band_row_bytes`` is ~40 %
        # above the measured bytes per row.
        return [(lo, hi, False)], eb_out
    heavy = cnt > rows
    # Light keys in consecutive chunks of < 2 x ``rows`` rows + one light key (< ``rows``):
    # ≤ 3/4 of the budget with the output collected beside them; each heavy key alone.
    light = np.where(heavy, 0, cnt)
    chunk = (np.cumsum(light) - light) // (2 * rows)
    cut = np.ones(len(uk), dtype=bool)
    cut[1:] = heavy[1:] | heavy[:-1] | (chunk[1:] != chunk[:-1])
    starts = np.flatnonzero(cut)
    ends = np.append(starts[1:], len(uk)) - 1
    units = [
        (int(uk[s]), int(uk[e]) + 1, bool(heavy[s]))
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
    ]
    return units, eb_out


def _sum_by_key(keys: NDArray[np.uint64], counts: NDArray[np.int64]) -> tuple[Any, Any]:
    """Distinct keys (sorted) with their summed counts."""
    if len(keys) == 0:
        return keys, counts
    order = np.argsort(keys, kind="stable")
    keys, counts = keys[order], counts[order]
    start = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    return keys[start], np.add.reduceat(counts, start)


STREAM_ROWS = 1 << 16
"""Rows of a heavy key processed at once (the unit of its streamed verification)."""


def _key_rows(
    sources: list[tuple[str, int, str | None]], key: int, band: int | None, num_perm: int
) -> Iterator[tuple[NDArray[np.uint8], NDArray[np.uint64], NDArray[np.uint8]]]:
    """Rows of one key (of one band, if given) of every source, in increasing doc order.

    Sources are in id-space order and cover disjoint, increasing doc ranges (one input each,
    or a compacted batch of consecutive inputs), and each file is sorted by (key, band, doc):
    reading them in order gives a (key, band) group in doc order. Checked as it is read.
    """
    from dataproc.dedup.buckets import iter_key_rows

    last = -1
    for path, offset, removed in sources:
        gone = None
        for b, doc, sketch in iter_key_rows(path, key, num_perm, offset << 32):
            if band is not None:
                sel = b == band
                b, doc, sketch = b[sel], doc[sel], sketch[sel]
            if removed is not None and len(doc):
                if gone is None:
                    gone = load_removed_docs(removed) + np.uint64(offset << 32)
                keep = ~np.isin(doc, gone)
                b, doc, sketch = b[keep], doc[keep], sketch[keep]
            if len(doc) == 0:
                continue
            if band is not None and (
                int(doc[0]) <= last or (np.diff(doc.astype(np.int64)) <= 0).any()
            ):
                raise DedupError(
                    f"{path}: band rows of key {key} are not in increasing doc order after "
                    "the previous band files (band files out of order or overlapping)"
                )
            last = int(doc[-1])
            yield b, doc, sketch


def _bands_of(
    sources: list[tuple[str, int, str | None]], key: int, num_perm: int
) -> tuple[list[int], int]:
    """The bands holding ``key`` (sorted) and its number of rows (after removals)."""
    bands: set[int] = set()
    total = 0
    for b, _doc, _sk in _key_rows(sources, key, None, num_perm):
        bands.update(np.unique(b).tolist())
        total += len(b)
    return sorted(bands), total


def _chunks(
    rows: Iterator[tuple[NDArray[np.uint8], NDArray[np.uint64], NDArray[np.uint8]]],
) -> Iterator[tuple[NDArray[np.uint64], NDArray[np.uint8]]]:
    """(doc, sketch) in blocks of about ``STREAM_ROWS`` rows."""
    docs: list[NDArray[np.uint64]] = []
    sketches: list[NDArray[np.uint8]] = []
    n = 0
    for _, doc, sketch in rows:
        docs.append(doc)
        sketches.append(sketch)
        n += len(doc)
        if n >= STREAM_ROWS:
            yield np.concatenate(docs), np.concatenate(sketches)
            docs, sketches, n = [], [], 0
    if docs:
        yield np.concatenate(docs), np.concatenate(sketches)


def _stream_key(
    sources: list[tuple[str, int, str | None]],
    key: int,
    num_perm: int,
    exact_band: int,
    need: int,
    edges: Any,
    exact: Any,
) -> dict[str, int]:
    """Resolve a heavy key's groups (one per band holding it) without holding them.

    Exact group: every member is linked to the group's first (= smallest) doc. Near group:
    ``LeaderStream``, equivalent to ``_leader_edges``. Same edges and counters as
    ``edges_of_rows`` on the key's rows.
    """
    bands, total = _bands_of(sources, key, num_perm)
    stats = {"band_rows": total, "candidate_rows": total if total > 1 else 0}
    stats.update({"pairs_checked": 0, "pairs_rejected": 0, "unlinked": 0})
    if total < 2:
        return stats
    for band in bands:
        blocks = _chunks(_key_rows(sources, key, band, num_perm))
        if band == exact_band:
            first: np.uint64 | None = None
            for doc, _sk in blocks:
                if first is None:
                    first = doc[0]
                member = doc[doc != first]
                low = np.full(len(member), first, dtype=np.uint64)
                edges.add(np.concatenate((low, member)), np.concatenate((member, low)))
                exact.add(member, low)
        else:
            stream = LeaderStream(need)
            for doc, sk in blocks:
                a, b = stream.feed(doc, sk)
                edges.add(np.concatenate((a, b)), np.concatenate((b, a)))
            for k, v in stream.counters().items():
                stats[k] += v
    return stats


class LeaderStream:
    """``_leader_edges`` for ONE near-duplicate group whose rows arrive in doc order, in blocks.

    A row is compared with the leaders so far, in order; the first it agrees with takes it.
    If none does and fewer than ``MAX_LEADERS`` leaders exist, it becomes the next leader;
    otherwise it stays unlinked. This is the round-based form's result: its round-r leader is
    the first row that disagreed with leaders 0..r-1, i.e. one that precedes every row compared
    with it. Counters match too (a group's single leftover row is not "unlinked" there: it is
    dropped as alone; see ``counters``). Memory: one block and ≤ MAX_LEADERS sketches.
    """

    def __init__(self, need: int) -> None:
        self.need = need
        self.leader_doc: list[np.uint64] = []
        self.leader_sketch: list[NDArray[np.uint8]] = []
        self.checked = 0
        self.rejected = 0
        self.leftover = 0

    def feed(self, doc: NDArray[np.uint64], sketch: NDArray[np.uint8]) -> tuple[Any, Any]:
        """Edges (leader, member) verified in this block (rows in increasing doc order)."""
        open_ = np.ones(len(doc), dtype=bool)
        start = [0] * len(self.leader_doc)  # first row each leader is compared with
        a_parts, b_parts = [], []
        j = 0
        while True:
            if j == len(self.leader_doc):
                rest = np.flatnonzero(open_)
                if len(rest) == 0 or len(self.leader_doc) >= MAX_LEADERS:
                    break
                p = int(rest[0])
                self.leader_doc.append(doc[p])
                self.leader_sketch.append(sketch[p].copy())
                start.append(p + 1)
                open_[p] = False
            rows = np.flatnonzero(open_[start[j] :]) + start[j]
            if len(rows):
                if self.need == 0:
                    ok = np.ones(len(rows), dtype=bool)
                else:
                    ok = (sketch[rows] == self.leader_sketch[j]).sum(axis=1) >= self.need
                self.checked += len(rows)
                self.rejected += int((~ok).sum())
                linked = rows[ok]
                a_parts.append(np.full(len(linked), self.leader_doc[j], dtype=np.uint64))
                b_parts.append(doc[linked])
                open_[linked] = False
            j += 1
        self.leftover += int(open_.sum())
        empty = np.empty(0, np.uint64)
        a = np.concatenate(a_parts) if a_parts else empty
        b = np.concatenate(b_parts) if b_parts else empty
        keep = a != b
        return a[keep], b[keep]

    def counters(self) -> dict[str, int]:
        """``pairs_checked``, ``pairs_rejected``, ``unlinked`` as ``_leader_edges`` counts them:
        a group's last row left alone is dropped there, not counted as unlinked."""
        unlinked = self.leftover if self.leftover > 1 else 0
        return {
            "pairs_checked": self.checked,
            "pairs_rejected": self.rejected,
            "unlinked": unlinked,
        }


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
    from dataproc.dedup.runs import SortedPairs

    out = SortedPairs(path, ("x", "y"), 2 * len(a) + 1, EDGE_ROW_GROUP)
    out.add(np.concatenate((a, b)), np.concatenate((b, a)))
    return out.close() // 2


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
