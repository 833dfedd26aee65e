"""Benchmark: dedup phase 2 (bucket edges + clusters) on synthetic band keys, 1 M → 10 M docs.

No text is involved: band keys are generated as NumPy arrays with a known duplicate structure
and written with the real ``BandKeyWriter`` (the phase-1 file format), then the real
``find_bucket_edges`` (one fresh process per bucket, ``--workers`` at a time) and
``build_clusters`` (one fresh process) run on them. Each phase reports wall time, peak RSS
of its worst process, and bytes on disk.

Duplicate structure: a fraction ``--dup-fraction`` of the documents belong to duplicate
families (mean size ``--family-size``, spread over all input files). Half of a family's
members are exact copies (all bands + exact key); the others share a random subset of the
bands that always includes the family's anchor band, so every family is one cluster and the
expected number of removed documents is known exactly: sum(family size - 1).

Verification (``--min-similarity``, default 0.7 like ``dedup.min_similarity``; 0 = off, no
signatures written): each file also gets MinHash signatures (``bands x 8`` values, written
with the real ``SignatureWriter``) consistent with the band keys. Unique documents get random
32-bit values; a family has a base signature that exact copies keep; a near member replaces
``max(10% of the values, one per unshared band)`` values, all in bands it does not share
(at least one in each). With 14 bands that is at most 12 of 112 values, so any two members
agree on >= 88/112 (0.79): the family's smallest member matches every other one at 0.7 and
the expected removed count is unchanged. (Sharing ~half the bands at ~90% agreement is
also what real MinHash does: 0.9**8 ~ 0.43.)

    /work/venv/bin/python bench/dedup_scaling.py --docs 1000000 10000000 --buckets 16 \\
        --workdir /tmp/dedup-bench
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

MIX1 = np.uint64(0x9E3779B97F4A7C15)
MIX2 = np.uint64(0xBF58476D1CE4E5B9)
MIX3 = np.uint64(0x94D049BB133111EB)
EXACT_COL = 15  # key namespace slot for exact keys (bands <= 14 in this bench)
ROWS = 8  # MinHash values per band: num_perm = bands * ROWS (112 with 14 bands)
NEAR_REPLACE = 0.1  # share of signature values a near member replaces
SIG_SALT = np.uint64(0x5151_0000_A5A5_0001)  # signature values
PICK_SALT = np.uint64(0x5151_0000_A5A5_0002)  # which values near members replace
SIG_CHUNK = 1 << 14  # docs per signature batch (bounds the generator's temporaries)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorized SplitMix64 finalizer: a fast, well-mixed, deterministic uint64 → uint64."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + MIX1
        z = (z ^ (z >> np.uint64(30))) * MIX2
        z = (z ^ (z >> np.uint64(27))) * MIX3
        return z ^ (z >> np.uint64(31))


@dataclass
class Plan:
    docs: int
    docs_per_file: int
    bands: int
    dup_fraction: float
    family_size: float
    seed: int

    @property
    def files(self) -> int:
        return -(-self.docs // self.docs_per_file)

    @property
    def families(self) -> int:
        return max(1, round(self.docs * self.dup_fraction / self.family_size))


def _family_of(plan: Plan, g: np.ndarray) -> np.ndarray:
    """Family id of each global doc number, or -1 for a unique document."""
    salt = np.uint64(plan.seed * 1_000_003)
    r = splitmix64(g ^ salt)
    in_family = (r >> np.uint64(11)).astype(np.float64) / float(1 << 53) < plan.dup_fraction
    fam = (splitmix64(r) % np.uint64(plan.families)).astype(np.int64)
    return np.where(in_family, fam, -1)


def _file_docs(plan: Plan, file_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global doc numbers of a file, their family (-1: unique) and which bands they share.

    ``share`` is ``(n, bands + 1)``: column ``j < bands`` says whether the document's band j
    equals its family's; the last column marks exact copies (which share everything).
    """
    start = file_index * plan.docs_per_file
    stop = min(plan.docs, start + plan.docs_per_file)
    g = np.arange(start, stop, dtype=np.uint64)
    fam = _family_of(plan, g)
    cols = np.arange(plan.bands + 1, dtype=np.uint64)
    member = fam >= 0
    r = splitmix64(g ^ np.uint64(0xABCDEF))
    exact_member = member & ((r & np.uint64(1)) == 1)
    # Near members share each band with probability 1/2, plus the family's anchor band.
    bits = (r[:, None] >> (cols[None, :] + np.uint64(1))) & np.uint64(1)
    share = exact_member[:, None] | (member[:, None] & (bits == 1))
    share[:, -1] = exact_member
    anchor = (fam.clip(0) % plan.bands).astype(np.int64)
    share[np.flatnonzero(member), anchor[member]] = True
    return g, fam, share


def _family_ident(plan: Plan, fam: np.ndarray) -> np.ndarray:
    """Identity a family's shared content is keyed by: above every doc number."""
    return np.uint64(plan.docs) + fam.clip(0).astype(np.uint64)


def _keys_for_file(
    plan: Plan, file_index: int, g: np.ndarray, fam: np.ndarray, share: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cols = np.arange(plan.bands + 1, dtype=np.uint64)
    cols[-1] = EXACT_COL
    # Unique content: keyed by the doc itself; family content: keyed by the family.
    own = splitmix64((g[:, None] << np.uint64(4)) | cols[None, :])
    fam_id = _family_ident(plan, fam)[:, None]
    shared = splitmix64((fam_id << np.uint64(4)) | cols[None, :])
    keys = np.where(share, shared, own)
    start = np.uint64(file_index * plan.docs_per_file)
    docs = (np.uint64(file_index) << np.uint64(32)) | (g - start)
    return docs, keys[:, :-1], keys[:, -1].copy()


def _sig_values(ident: np.ndarray, num_perm: int, salt: np.uint64 = SIG_SALT) -> np.ndarray:
    """``(len(ident), num_perm)`` random 32-bit values (as uint64) keyed by doc or family."""
    perms = np.arange(num_perm, dtype=np.uint64)
    mixed = splitmix64(((ident[:, None] << np.uint64(8)) | perms[None, :]) ^ salt)
    return mixed & np.uint64(0xFFFFFFFF)


def _near_replaced(g: np.ndarray, shared_bands: np.ndarray) -> np.ndarray:
    """Which signature values near members replace: ``(n, bands * ROWS)`` bool.

    Only values of bands the member does not share (so shared bands keep the family's rows),
    at least one per unshared band (so each unshared band really differs), in all
    ``max(round(NEAR_REPLACE * num_perm), unshared bands)`` of them when there are enough.
    """
    n, bands = shared_bands.shape
    num_perm = bands * ROWS
    score = _sig_values(g, num_perm, PICK_SALT)  # random order of each member's positions
    band_of = np.arange(num_perm) // ROWS
    unshared = ~shared_bands[:, band_of]
    s3 = score.reshape(n, bands, ROWS)
    first = (s3 == s3.min(axis=2, keepdims=True)).reshape(n, num_perm)
    prio = np.where(unshared, np.where(first, 0, 1), 2).astype(np.uint64)
    rank = np.argsort(np.argsort((prio << np.uint64(32)) | score, axis=1), axis=1)
    n_unshared = (~shared_bands).sum(axis=1)
    k = np.minimum(np.maximum(round(NEAR_REPLACE * num_perm), n_unshared), ROWS * n_unshared)
    return rank < k[:, None]


def _signatures(plan: Plan, g: np.ndarray, fam: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Synthetic MinHash signatures ``(n, bands * ROWS)`` consistent with the families.

    Unique docs: own random values. Family members start from the family's base signature;
    exact copies keep it, near members replace the values of ``_near_replaced`` with their own.
    """
    num_perm = plan.bands * ROWS
    sigs = _sig_values(g, num_perm)
    m = np.flatnonzero(fam >= 0)
    base = _sig_values(_family_ident(plan, fam[m]), num_perm)
    own_values = np.zeros(base.shape, dtype=bool)
    near = ~share[m, -1]
    own_values[near] = _near_replaced(g[m][near], share[m][near, :-1])
    sigs[m] = np.where(own_values, sigs[m], base)
    return sigs


def _expected_removed(plan: Plan) -> int:
    sizes = np.zeros(plan.families, dtype=np.int64)
    for lo in range(0, plan.docs, 5_000_000):
        g = np.arange(lo, min(plan.docs, lo + 5_000_000), dtype=np.uint64)
        fam = _family_of(plan, g)
        sizes += np.bincount(fam[fam >= 0], minlength=plan.families)
    return int((sizes[sizes >= 2] - 1).sum())


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _current_rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _rows(files: list[str]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def _write_file_task(args: tuple[Plan, int, str, int, bool]) -> dict[str, Any]:
    from dataproc.dedup.buckets import BandKeyWriter
    from dataproc.dedup.config import DedupConfig
    from dataproc.dedup.signatures import SignatureWriter

    plan, file_index, work, buckets, with_sigs = args
    start = time.perf_counter()
    g, fam, share = _file_docs(plan, file_index)
    docs, keys, exact = _keys_for_file(plan, file_index, g, fam, share)
    num_perm = plan.bands * ROWS
    cfg = DedupConfig(num_perm=num_perm, bands=plan.bands, rows=ROWS, num_buckets=buckets)
    w = BandKeyWriter(work, file_index, cfg)
    w.add_batch(docs, keys, exact)
    rows = w.close()
    if with_sigs:
        sw = SignatureWriter(work, file_index, num_perm)
        for lo in range(0, len(g), SIG_CHUNK):
            hi = lo + SIG_CHUNK
            sw.add_batch(docs[lo:hi], _signatures(plan, g[lo:hi], fam[lo:hi], share[lo:hi]))
        sw.close()
    return {"rows": rows, "seconds": time.perf_counter() - start, "maxrss": _maxrss_bytes()}


def _edges_task(args: tuple[list[str], str]) -> dict[str, Any]:
    from dataproc.dedup.clusters import find_bucket_edges

    files, out = args
    base = _current_rss_bytes()
    start = time.perf_counter()
    edges = find_bucket_edges(files, out)
    return {
        "edges": edges,
        "rows": _rows(files),
        "seconds": time.perf_counter() - start,
        "maxrss": _maxrss_bytes(),
        "baseline": base,
    }


def _clusters_task(args: tuple[list[str], str, str, int, float]) -> dict[str, Any]:
    from dataproc.dedup.clusters import build_clusters

    files, out, sig_dir, num_perm, min_similarity = args
    base = _current_rss_bytes()
    start = time.perf_counter()
    summary = build_clusters(
        files, out, signatures_dir=sig_dir, num_perm=num_perm, min_similarity=min_similarity
    )
    return {
        "summary": summary.to_dict(),
        "seconds": time.perf_counter() - start,
        "maxrss": _maxrss_bytes(),
        "baseline": base,
    }


def _du(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


@dataclass
class Result:
    docs: int
    buckets: int
    min_similarity: float
    files: int
    write_seconds: float
    edges_seconds: float
    edges_task_seconds: float
    max_bucket_rows: int
    clusters_seconds: float
    phase2_seconds: float
    edges_peak_rss_mb: float
    edges_rss_over_baseline_mb: float
    index_bytes_per_doc: float
    clusters_peak_rss_mb: float
    clusters_rss_over_baseline_mb: float
    band_bytes_on_disk: int
    sig_bytes_on_disk: int
    sig_bytes_per_doc: float
    edge_bytes_on_disk: int
    removed_bytes_on_disk: int
    disk_bytes_per_doc: float
    edges: int
    removed: int
    expected_removed: int
    summary: dict[str, Any]


def run_one(
    docs: int, buckets: int, workdir: str, workers: int, args: argparse.Namespace
) -> Result:
    plan = Plan(
        docs=docs,
        docs_per_file=args.docs_per_file,
        bands=args.bands,
        dup_fraction=args.dup_fraction,
        family_size=args.family_size,
        seed=args.seed,
    )
    work = os.path.join(workdir, f"docs-{docs}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    # forkserver with the heavy modules preloaded: fresh processes per task (so each one's
    # ru_maxrss is its own peak) without paying interpreter start-up and imports each time.
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(
        [
            "numpy",
            "pyarrow",
            "pyarrow.parquet",
            "dataproc.dedup.clusters",
            "dataproc.dedup.buckets",
            "dataproc.dedup.signatures",
            "dataproc.io.fs",
        ]
    )

    # Signatures only when they are checked (min_similarity 0: the old, unverified path).
    with_sigs = args.min_similarity > 0
    t0 = time.perf_counter()
    with ctx.Pool(workers, maxtasksperchild=8) as pool:
        pool.map(_write_file_task, [(plan, i, work, buckets, with_sigs) for i in range(plan.files)])
    write_seconds = time.perf_counter() - t0

    tasks = []
    edge_files = []
    for b in range(buckets):
        d = os.path.join(work, "bands", f"bucket={b:04d}")
        files = sorted(os.path.join(d, f) for f in os.listdir(d)) if os.path.isdir(d) else []
        out = os.path.join(work, "edges", f"bucket={b:04d}.parquet")
        tasks.append((files, out))
        edge_files.append(out)
    t1 = time.perf_counter()
    # A fresh process per bucket: each one's ru_maxrss is that bucket's peak alone.
    with ctx.Pool(workers, maxtasksperchild=1) as pool:
        edge_results = pool.map(_edges_task, tasks, chunksize=1)
    edges_seconds = time.perf_counter() - t1
    edges_task_seconds = sum(r["seconds"] for r in edge_results)

    t2 = time.perf_counter()
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        cl_args = (
            edge_files,
            os.path.join(work, "dedup"),
            work,
            plan.bands * ROWS,
            args.min_similarity,
        )
        cl = pool.apply(_clusters_task, (cl_args,))
    clusters_seconds = time.perf_counter() - t2

    worst = max(edge_results, key=lambda r: r["maxrss"] - r["baseline"])
    over = worst["maxrss"] - worst["baseline"]
    band_bytes = _du(os.path.join(work, "bands"))
    edge_bytes = _du(os.path.join(work, "edges"))
    removed_bytes = _du(os.path.join(work, "dedup"))
    sig_bytes = _du(os.path.join(work, "sigs"))
    summary = cl["summary"]
    result = Result(
        docs=docs,
        buckets=buckets,
        min_similarity=args.min_similarity,
        files=plan.files,
        write_seconds=round(write_seconds, 2),
        edges_seconds=round(edges_seconds, 2),
        edges_task_seconds=round(edges_task_seconds, 2),
        max_bucket_rows=max(r["rows"] for r in edge_results),
        clusters_seconds=round(clusters_seconds, 2),
        phase2_seconds=round(edges_seconds + clusters_seconds, 2),
        edges_peak_rss_mb=round(worst["maxrss"] / 2**20, 1),
        edges_rss_over_baseline_mb=round(over / 2**20, 1),
        # Band-index memory of the worst process, per document of the whole run.
        index_bytes_per_doc=round(over / docs, 1),
        clusters_peak_rss_mb=round(cl["maxrss"] / 2**20, 1),
        clusters_rss_over_baseline_mb=round((cl["maxrss"] - cl["baseline"]) / 2**20, 1),
        band_bytes_on_disk=band_bytes,
        sig_bytes_on_disk=sig_bytes,
        sig_bytes_per_doc=round(sig_bytes / docs, 1),
        edge_bytes_on_disk=edge_bytes,
        removed_bytes_on_disk=removed_bytes,
        # Without signatures, so that it compares with earlier runs (see sig_bytes_per_doc).
        disk_bytes_per_doc=round((band_bytes + edge_bytes + removed_bytes) / docs, 1),
        edges=int(sum(r["edges"] for r in edge_results)),
        removed=int(summary["docs_removed"]),
        expected_removed=_expected_removed(plan),
        summary=summary,
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--docs", type=int, nargs="+", default=[1_000_000], help="run sizes")
    p.add_argument("--buckets", type=int, default=16, help="dedup.num_buckets")
    p.add_argument(
        "--workdir", required=True, help="scratch folder (deleted per run unless --keep)"
    )
    p.add_argument("--workers", type=int, default=2, help="processes for files and buckets")
    p.add_argument("--docs-per-file", type=int, default=100_000)
    p.add_argument("--bands", type=int, default=14)
    p.add_argument("--dup-fraction", type=float, default=0.1)
    p.add_argument("--family-size", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--min-similarity",
        type=float,
        default=0.7,
        help="dedup.min_similarity for build_clusters (0: no verification, no signatures)",
    )
    p.add_argument("--keep", action="store_true", help="keep the work files")
    args = p.parse_args()

    results = []
    for n in args.docs:
        r = run_one(n, args.buckets, args.workdir, args.workers, args)
        results.append(r)
        print(json.dumps(asdict(r)), flush=True)
        if r.removed != r.expected_removed:
            print(f"WARNING: removed {r.removed} != expected {r.expected_removed}", flush=True)

    cols = [
        "docs", "buckets", "write_seconds", "edges_seconds", "edges_task_seconds", "clusters_seconds",
        "phase2_seconds", "edges_peak_rss_mb", "index_bytes_per_doc", "clusters_peak_rss_mb",
        "disk_bytes_per_doc", "sig_bytes_per_doc", "edges", "removed", "expected_removed",
    ]  # fmt: skip
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in results:
        print("| " + " | ".join(str(getattr(r, c)) for c in cols) + " |")
    if len(results) >= 2:
        a, b = results[0], results[-1]
        print(
            f"phase-2 time ratio {b.docs // a.docs}x docs: "
            f"{b.phase2_seconds / max(a.phase2_seconds, 1e-9):.2f}x"
        )
    os.makedirs(args.workdir, exist_ok=True)
    with open(os.path.join(args.workdir, "results.json"), "w") as f:
        json.dump([asdict(r) for r in results], f, indent=2)


if __name__ == "__main__":
    main()
