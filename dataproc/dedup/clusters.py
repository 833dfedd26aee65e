"""Phase 2 of dedup: band-key buckets → duplicate edges → clusters → removed documents.

``find_bucket_edges`` runs once per bucket (memory ∝ that bucket), ``build_clusters`` once per
run over all edges (memory ∝ number of duplicate documents, not all documents). Both are
deterministic: the same inputs give byte-identical files in whatever order they are listed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dataproc.errors import DedupError

if TYPE_CHECKING:
    import pyarrow as pa
    from numpy.typing import NDArray

EXACT_BAND_METADATA_KEY = b"dataproc.exact_band"
"""Parquet schema metadata of band files: the band id that holds exact-text keys."""

_CHUNK_ROWS = 1 << 20

REASON_EXACT = "exact_duplicate"
REASON_NEAR = "near_duplicate"


@dataclass
class ClusterSummary:
    """What dedup found in the whole run (for the manifest and the report).

    ``docs_in_clusters`` counts every document that has at least one duplicate (kept ones
    included); ``clusters`` is the number of duplicate groups (= documents kept from them);
    ``split_by_verification`` counts documents that LSH linked to a group but that were kept
    because they are not similar enough to its kept document (``dedup.min_similarity``);
    ``removed`` counts removed documents by reason; ``size_histogram`` maps a cluster-size
    range (``"2"``, ``"3-4"``, ``"5-8"``, ...) to the number of clusters of that size.
    """

    docs_in_clusters: int = 0
    clusters: int = 0
    edges: int = 0
    split_by_verification: int = 0
    removed: dict[str, int] = field(default_factory=lambda: {REASON_EXACT: 0, REASON_NEAR: 0})
    size_histogram: dict[str, int] = field(default_factory=dict)
    max_cluster_size: int = 0

    @property
    def docs_removed(self) -> int:
        return sum(self.removed.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "docs_in_clusters": self.docs_in_clusters,
            "clusters": self.clusters,
            "edges": self.edges,
            "split_by_verification": self.split_by_verification,
            "docs_removed": self.docs_removed,
            "removed": dict(sorted(self.removed.items())),
            "size_histogram": dict(self.size_histogram),
            "max_cluster_size": self.max_cluster_size,
        }


def _read_table(path: str) -> pa.Table:
    import pyarrow.parquet as pq

    from dataproc.io import fs

    # ParquetFile.read, not pq.read_table: the latter imports pyarrow.dataset (~0.7 s per
    # fresh worker process) for features we do not use.
    with fs.open_input(path) as f:
        return pq.ParquetFile(f).read()


def _write_table(table: pa.Table, path: str) -> None:
    from dataproc.dedup.buckets import write_parquet_atomic

    write_parquet_atomic(table, path)


def _column(table: pa.Table, name: str, dtype: type[np.generic], path: str) -> NDArray[Any]:
    if name not in table.column_names:
        raise DedupError(
            f"{path}: column {name!r} is missing (has {table.column_names}); "
            "the dedup work files are from another version: delete _work/ and rerun"
        )
    return np.asarray(table.column(name).to_numpy(), dtype=dtype)


def _edge_table(a: NDArray[np.uint64], b: NDArray[np.uint64], exact: NDArray[np.bool_]) -> pa.Table:
    import pyarrow as pa

    return pa.table(
        {
            "a": pa.array(a, type=pa.uint64()),
            "b": pa.array(b, type=pa.uint64()),
            "exact": pa.array(exact, type=pa.bool_()),
        }
    )


def _load_bucket(
    bucket_files: list[str],
) -> tuple[NDArray[np.uint8], NDArray[np.uint64], NDArray[np.uint64], int | None]:
    """Concatenate a bucket's band files into preallocated arrays (no intermediate copies)."""
    import pyarrow as pa

    exact_band: int | None = None
    # Files are read one at a time into the preallocated output so that peak memory is the
    # bucket plus one file, not two copies of the bucket.
    sizes: list[int] = []
    import pyarrow.parquet as pq

    from dataproc.io import fs

    for path in bucket_files:
        with fs.open_input(path) as f:
            meta = pq.ParquetFile(f).metadata
            sizes.append(meta.num_rows)
            kv = meta.metadata or {}
        if EXACT_BAND_METADATA_KEY in kv:
            eb = int(kv[EXACT_BAND_METADATA_KEY])
            if exact_band is not None and eb != exact_band:
                raise DedupError(
                    f"{path}: exact-key band {eb} differs from {exact_band} in the other files "
                    "of this bucket (mixed dedup.bands settings); delete _work/ and rerun"
                )
            exact_band = eb
    total = sum(sizes)
    band = np.empty(total, dtype=np.uint8)
    key = np.empty(total, dtype=np.uint64)
    doc = np.empty(total, dtype=np.uint64)
    pos = 0
    for path, n in zip(bucket_files, sizes, strict=True):
        t = _read_table(path)
        if t.num_rows != n:
            raise DedupError(f"{path}: changed while being read; rerun dedup")
        _copy_column(t, "band", band, pos, path)
        _copy_column(t, "key", key, pos, path)
        _copy_column(t, "doc", doc, pos, path)
        pos += n
        del t
    # Arrow's allocator keeps freed read buffers for reuse; we read nothing else here.
    pa.default_memory_pool().release_unused()
    return band, key, doc, exact_band


def _copy_column(table: pa.Table, name: str, out: NDArray[Any], pos: int, path: str) -> None:
    """Copy a column chunk by chunk into ``out[pos:]``.

    Chunk-wise, because ``ChunkedArray.to_numpy`` first concatenates the chunks into a fresh
    array: a transient copy that glibc's malloc then often keeps as heap, raising RSS.
    """
    if name not in table.column_names:
        raise DedupError(
            f"{path}: column {name!r} is missing (has {table.column_names}); "
            "the dedup work files are from another version: delete _work/ and rerun"
        )
    for chunk in table.column(name).chunks:
        values = chunk.to_numpy(zero_copy_only=False)
        out[pos : pos + len(values)] = values
        pos += len(values)


def find_bucket_edges(bucket_files: list[str], out_path: str) -> int:
    """Turn one bucket's band keys into duplicate edges; write them to ``out_path``.

    Rows are sorted by (band, key, doc). Every run of two or more rows with equal
    (band, key) is a candidate group: it yields the edges ``(min doc of the run, other doc)``
    (a star, so a group of k documents costs k-1 edges, not k²). An edge is ``exact`` when
    it comes from the exact-text band. A pair found in several bands is written once, with
    ``exact`` true if any of its edges was exact. Output columns ``a`` < ``b`` (uint64) and
    ``exact`` (bool), sorted by (a, b). Returns the number of edges written.
    """
    band, key, doc, exact_band = _load_bucket(sorted(bucket_files))
    if len(doc) < 2:
        return _write_empty_edges(out_path)

    # Most keys are unique. Find the repeated key values with one sort of the key column
    # alone (8 bytes/row), then keep only the rows carrying them: the (band, key, doc) sort
    # below runs on duplicate candidates only, which is faster and keeps the peak at
    # ~35 bytes/row instead of ~50 for a full three-column lexsort. Keys are band-salted
    # hashes, so grouping by key first loses nothing; equal keys in different bands (a 2**-64
    # event) are still told apart by the lexsort.
    sorted_keys = np.sort(key)
    repeated = sorted_keys[1:][sorted_keys[1:] == sorted_keys[:-1]]
    del sorted_keys
    repeated = np.unique(repeated)
    if len(repeated) == 0:
        return _write_empty_edges(out_path)
    candidate = np.empty(len(key), dtype=bool)
    # In chunks: the int64 positions would otherwise cost 16 more bytes per row at the peak.
    for lo in range(0, len(key), _CHUNK_ROWS):
        chunk = key[lo : lo + _CHUNK_ROWS]
        pos = np.searchsorted(repeated, chunk)
        np.minimum(pos, len(repeated) - 1, out=pos)
        candidate[lo : lo + _CHUNK_ROWS] = repeated[pos] == chunk
    del repeated
    band, key, doc = band[candidate], key[candidate], doc[candidate]
    del candidate

    order = np.lexsort((doc, key, band))
    band, key, doc = band[order], key[order], doc[order]
    del order

    same = (band[1:] == band[:-1]) & (key[1:] == key[:-1])
    # Index of the first row of each row's run: max-accumulate over run-start positions.
    starts = np.where(same, 0, np.arange(1, len(doc), dtype=np.int64))
    starts = np.maximum.accumulate(np.concatenate(([0], starts)))
    members = np.flatnonzero(np.concatenate(([False], same)))
    a = doc[starts[members]]
    b = doc[members]
    if exact_band is None:
        exact = np.zeros(len(members), dtype=bool)
    else:
        exact = band[members] == exact_band
    keep = a != b  # a document listed twice under one key is not its own duplicate
    a, b, exact = a[keep], b[keep], exact[keep]

    a, b, exact = _dedupe_edges(a, b, exact)
    _write_table(_edge_table(a, b, exact), out_path)
    return len(a)


def _write_empty_edges(out_path: str) -> int:
    empty = np.empty(0, dtype=np.uint64)
    _write_table(_edge_table(empty, empty, np.empty(0, dtype=bool)), out_path)
    return 0


def _dedupe_edges(
    a: NDArray[np.uint64], b: NDArray[np.uint64], exact: NDArray[np.bool_]
) -> tuple[NDArray[np.uint64], NDArray[np.uint64], NDArray[np.bool_]]:
    """Sort edges by (a, b) and merge repeats (exact if any repeat is exact)."""
    if len(a) == 0:
        return a, b, exact
    order = np.lexsort((b, a))
    a, b, exact = a[order], b[order], exact[order]
    first = np.concatenate(([True], (a[1:] != a[:-1]) | (b[1:] != b[:-1])))
    starts = np.flatnonzero(first)
    exact = np.logical_or.reduceat(exact, starts)
    return a[starts], b[starts], exact


def _components(n: int, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    """Connected components of nodes ``0..n-1``: each node's label is its component's min node.

    Vectorized union-find: hook every edge's two roots to the smaller one (``minimum.at``),
    then compress paths by pointer jumping, until no edge joins two roots. Labels only ever
    decrease and a node's label is a node of its own component, so the final root of a
    component is its minimum. Rounds are O(log n) in practice.
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


def _size_range(size: int) -> str:
    """Power-of-two size ranges: 2, 3-4, 5-8, 9-16, ..."""
    if size <= 2:
        return str(size)
    hi = 1 << (size - 1).bit_length()
    return f"{hi // 2 + 1}-{hi}"


def _read_edges(
    edge_files: list[str],
) -> tuple[NDArray[np.uint64], NDArray[np.uint64], NDArray[np.bool_]]:
    from dataproc.io import fs

    parts_a: list[NDArray[np.uint64]] = []
    parts_b: list[NDArray[np.uint64]] = []
    parts_e: list[NDArray[np.bool_]] = []
    for path in sorted(edge_files):
        if not fs.exists(path):
            raise DedupError(
                f"{path}: edge file is missing; the bucket task that writes it did not finish "
                "(rerun the job to redo dedup)"
            )
        t = _read_table(path)
        parts_a.append(_column(t, "a", np.uint64, path))
        parts_b.append(_column(t, "b", np.uint64, path))
        parts_e.append(_column(t, "exact", np.bool_, path))
    if not parts_a:
        empty = np.empty(0, dtype=np.uint64)
        return empty, empty, np.empty(0, dtype=bool)
    return np.concatenate(parts_a), np.concatenate(parts_b), np.concatenate(parts_e)


def removed_path(out_dir: str, input_index: int) -> str:
    """Where the removed documents of input ``input_index`` are listed."""
    from dataproc.io import fs

    return fs.join(out_dir, "removed", f"{input_index:06d}.parquet")


def _assign_centers(
    comp: NDArray[np.int64], sigs: NDArray[np.uint32], need: int
) -> NDArray[np.int64]:
    """Each node's center: the first node of its component (in node order) it matches.

    A node *matches* a center when at least ``need`` of their MinHash values agree. Fast path:
    in most components every node matches the component's smallest node, which is then the
    center of all. The other components are split greedily in node order: a node joins the
    first center it matches, or becomes a new center. Centers only ever come before the nodes
    they take, so the smallest doc_index of each cluster is kept, and the result does not
    depend on the order edges were found in. First match, not best match: with best match a
    center created between two identical documents can pull the second one away.
    """
    n = len(comp)
    center = comp.copy()
    matches_root = np.empty(n, dtype=bool)
    for lo in range(0, n, 1 << 16):
        hi = min(lo + (1 << 16), n)
        agree = (sigs[lo:hi] == sigs[comp[lo:hi]]).sum(axis=1)
        matches_root[lo:hi] = agree >= need
    split = np.unique(comp[~matches_root])
    if len(split) == 0:
        return center
    members = np.flatnonzero(np.isin(comp, split))
    members = members[np.argsort(comp[members], kind="stable")]  # grouped, ascending inside
    groups = np.flatnonzero(
        np.concatenate(([True], comp[members][1:] != comp[members][:-1], [True]))
    )
    for lo, hi in zip(groups[:-1].tolist(), groups[1:].tolist(), strict=True):
        group = members[lo:hi]
        centers = np.empty(len(group), dtype=np.int64)
        center_sigs = np.empty((len(group), sigs.shape[1]), dtype=sigs.dtype)
        n_centers = 0
        for node in group.tolist():
            agree = (center_sigs[:n_centers] == sigs[node]).sum(axis=1)
            hit = np.flatnonzero(agree >= need)
            if len(hit):
                center[node] = centers[hit[0]]
            else:
                centers[n_centers] = node
                center_sigs[n_centers] = sigs[node]
                n_centers += 1
                center[node] = node
    return center


def build_clusters(
    edge_files: list[str],
    out_dir: str,
    *,
    signatures_dir: str | None = None,
    num_perm: int = 0,
    min_similarity: float = 0.0,
) -> ClusterSummary:
    """Cluster all duplicate edges; list every removed document per input file.

    Candidate clusters are the connected components of all edges. Without verification
    (``min_similarity`` 0) each keeps its smallest doc_index and removes the rest. With it,
    the signatures of every document with an edge are read from ``signatures_dir`` (see
    ``dataproc.dedup.signatures``) and each component is split into clusters around centers
    (``_assign_centers``): a document is removed only if its estimated Jaccard similarity with
    the document kept in its place is at least ``min_similarity``. That bounds every removal
    directly, instead of trusting chains of LSH candidates.

    Removed documents are written to ``{out_dir}/removed/{input_index:06d}.parquet``
    (``doc``, ``kept``, ``reason``; sorted by doc; ``input_index = doc >> 32``). Inputs
    without removed documents get no file.

    ``reason`` is ``exact_duplicate`` when the document is connected to its kept document by
    exact-text edges alone — i.e. its normalized text is identical to the kept one's (up to a
    64-bit hash collision) — and ``near_duplicate`` otherwise (its text differs from the kept
    document's, even if it is identical to some other removed document).
    """
    import pyarrow as pa

    a, b, exact = _read_edges(edge_files)
    a, b, exact = _dedupe_edges(a, b, exact)
    summary = ClusterSummary(edges=len(a))
    if len(a) == 0:
        return summary

    # Compact ids: position in the sorted list of documents that have a duplicate, so the
    # smallest compact id of a component is its smallest doc_index.
    nodes = np.unique(np.concatenate((a, b)))
    ia = np.searchsorted(nodes, a).astype(np.int64)
    ib = np.searchsorted(nodes, b).astype(np.int64)
    del a, b
    n = len(nodes)
    comp = _components(n, ia, ib)
    exact_comp = _components(n, ia[exact], ib[exact])
    del ia, ib, exact
    ids = np.arange(n, dtype=np.int64)
    n_components = int((comp == ids).sum())

    if min_similarity > 0:
        if signatures_dir is None or num_perm <= 0:
            raise DedupError("build_clusters: min_similarity needs signatures_dir and num_perm")
        from dataproc.dedup.signatures import load_signatures

        sigs = load_signatures(signatures_dir, nodes, num_perm)
        need = max(1, math.ceil(min_similarity * num_perm - 1e-9))
        center = _assign_centers(comp, sigs, need)
        del sigs
    else:
        center = comp

    is_root = center == ids
    sizes = np.bincount(center, minlength=n)[is_root]
    removed_ids = np.flatnonzero(~is_root)
    kept_ids = center[removed_ids]
    is_exact = exact_comp[removed_ids] == exact_comp[kept_ids]

    clustered = sizes >= 2
    summary.docs_in_clusters = int(sizes[clustered].sum())
    summary.clusters = int(clustered.sum())
    summary.split_by_verification = int(is_root.sum()) - n_components
    summary.removed = {REASON_EXACT: int(is_exact.sum()), REASON_NEAR: int((~is_exact).sum())}
    summary.max_cluster_size = int(sizes.max()) if clustered.any() else 0
    hist: dict[str, int] = {}
    size_values, size_counts = np.unique(sizes[clustered], return_counts=True)
    for s, c in zip(size_values.tolist(), size_counts.tolist(), strict=True):
        label = _size_range(s)
        hist[label] = hist.get(label, 0) + c
    summary.size_histogram = hist

    removed_docs = nodes[removed_ids]  # ascending, since nodes are sorted
    kept_docs = nodes[kept_ids]
    reasons = np.where(is_exact, REASON_EXACT, REASON_NEAR)
    inputs = removed_docs >> np.uint64(32)
    bounds = np.flatnonzero(np.concatenate(([True], inputs[1:] != inputs[:-1], [True])))
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        table = pa.table(
            {
                "doc": pa.array(removed_docs[lo:hi], type=pa.uint64()),
                "kept": pa.array(kept_docs[lo:hi], type=pa.uint64()),
                "reason": pa.array(reasons[lo:hi].tolist(), type=pa.string()),
            }
        )
        _write_table(table, removed_path(out_dir, int(inputs[lo])))
    return summary
