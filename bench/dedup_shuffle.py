"""Benchmark: group band rows by key with Ray Data's hash shuffle, or with our band files.

Issue 12 asks whether Ray Data's hash shuffle groups LSH band rows better than phase 2's own
layout (key-sorted band files per input, merged per 64 inputs, read by key range). Both
variants here run the *same* verification (``dataproc.dedup.edges.edges_of_rows``) on the same
synthetic band files (``bench/dedup_scaling.py``'s generator, the real on-disk format), on the
same local Ray cluster, and must produce the same set of verified edges:

- ``files``: phase 2's own steps, compaction (when there are more than
  ``dedup.compact_inputs`` inputs) then one bucket task per key range (``run_phase2``'s
  ``plan_buckets``);
- ``raydata``: ``ray.data.read_parquet`` of the band files, ``repartition(P, keys=["key"])``
  (a hash shuffle: all rows of a key land in one block) and ``map_batches(batch_size=None)``
  running ``edges_of_rows`` on each block.

Printed per variant: wall time, the peak summed RSS of this cluster's Ray worker processes and the peak
object-store use, both sampled every 0.2 s (Ray Data's shuffle tasks are not ours to
instrument), and the number of edges.

    python bench/dedup_shuffle.py --docs 1000000 --workdir /tmp/shuffle-bench --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dedup_scaling import Plan, write_file


class Sampler:
    """Samples the summed RSS of Ray worker processes and the object store's use."""

    def __init__(self, ray: Any) -> None:
        import psutil

        self._ray, self._psutil = ray, psutil
        self.peak_rss = 0
        self.peak_store = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._total_store = ray.cluster_resources().get("object_store_memory", 0)

    def _run(self) -> None:
        me = self._psutil.Process(os.getpid())
        while not self._stop.is_set():
            rss = 0
            # Only this driver's cluster (its raylet's workers), not other Ray jobs on the host.
            for p in me.children(recursive=True):
                try:
                    cmd = " ".join(p.cmdline())
                    if "ray::" in cmd or "default_worker.py" in cmd:
                        rss += p.memory_info().rss
                except self._psutil.Error:
                    continue
            self.peak_rss = max(self.peak_rss, rss)
            free = self._ray.available_resources().get("object_store_memory", self._total_store)
            self.peak_store = max(self.peak_store, int(self._total_store - free))
            self._stop.wait(0.2)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _edge_set(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Undirected edges as sorted unique (min, max) pairs packed in a structured array."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pairs = np.unique(np.stack([lo, hi], axis=1), axis=0)
    return pairs


def run_files(ray: Any, files: list[str], rows: list[int], work: str) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from dataproc.dedup.clusters import BandSource, _compact, plan_buckets
    from dataproc.dedup.config import DedupConfig
    from dataproc.dedup.edges import find_bucket_edges

    cfg = DedupConfig()
    sources = [BandSource(p, i, i, rows[i]) for i, p in enumerate(files)]
    out = os.path.join(work, "files")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    remote = ray.remote(num_cpus=1, memory=cfg.task_memory)(lambda fn, *a: fn(*a))

    def execute(step: str, calls: list[tuple[str, Any, tuple[Any, ...]]]) -> dict[str, Any]:
        refs = {unit: remote.remote(fn, *args) for unit, fn, args in calls}
        return {unit: ray.get(ref) for unit, ref in refs.items()}

    t0 = time.perf_counter()
    with Sampler(ray) as s:
        srcs = [(p, 0, None) for p in files]
        if len(files) > cfg.compact_inputs:
            srcs = _compact(sources, out, cfg, execute)
        buckets = plan_buckets(sum(rows), cfg)
        calls = [
            (
                str(t),
                find_bucket_edges,
                (
                    srcs,
                    lo,
                    hi,
                    os.path.join(out, f"e{t}.parquet"),
                    os.path.join(out, f"x{t}.parquet"),
                    cfg.num_perm,
                    cfg.min_similarity,
                    cfg.task_memory,
                ),
            )
            for t, (lo, hi) in enumerate(buckets)
        ]
        execute("buckets", calls)
    wall = time.perf_counter() - t0
    xs, ys = [], []
    for t in range(len(buckets)):
        e = pq.read_table(os.path.join(out, f"e{t}.parquet"))
        xs.append(e.column("x").to_numpy())
        ys.append(e.column("y").to_numpy())
    edges = _edge_set(np.concatenate(xs), np.concatenate(ys))
    return {
        "variant": "files",
        "wall_seconds": round(wall, 1),
        "tasks": len(buckets) + (len(srcs) if len(files) > cfg.compact_inputs else 0),
        "peak_worker_rss_bytes": s.peak_rss,
        "peak_object_store_bytes": s.peak_store,
        "edges": len(edges),
        "_edges": edges,
    }


def _verify_block(batch: Any) -> dict[str, np.ndarray]:
    """``map_batches`` function: one hash partition's rows → its verified edges."""
    import pyarrow as pa

    from dataproc.dedup.config import DedupConfig
    from dataproc.dedup.edges import edges_of_rows, need_for

    cfg = DedupConfig()
    n = batch.num_rows
    sk = batch.column("sketch").combine_chunks()
    if isinstance(sk, pa.ChunkedArray):
        sk = sk.chunk(0) if sk.num_chunks else pa.array([], type=pa.binary(cfg.num_perm))
    sketch = np.frombuffer(
        sk.buffers()[1], dtype=np.uint8, count=n * cfg.num_perm, offset=sk.offset * cfg.num_perm
    ).reshape(n, cfg.num_perm)
    result = edges_of_rows(
        np.asarray(batch.column("band").to_numpy(), dtype=np.uint8),
        np.asarray(batch.column("key").to_numpy(), dtype=np.uint64),
        np.asarray(batch.column("doc").to_numpy(), dtype=np.uint64),
        sketch,
        cfg.bands,
        need_for(cfg.min_similarity, cfg.num_perm),
    )
    return {"a": result.a, "b": result.b}


def run_raydata(ray: Any, files: list[str], total_rows: int, partitions: int) -> dict[str, Any]:
    import ray.data
    from ray.data.context import DataContext, ShuffleStrategy

    ctx = DataContext.get_current()
    ctx.shuffle_strategy = ShuffleStrategy.HASH_SHUFFLE
    ctx.enable_progress_bars = False
    t0 = time.perf_counter()
    with Sampler(ray) as s:
        ds = ray.data.read_parquet(files, columns=["band", "key", "doc", "sketch"])
        ds = ds.repartition(partitions, keys=["key"])
        ds = ds.map_batches(_verify_block, batch_size=None, batch_format="pyarrow")
        xs, ys = [], []
        for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
            xs.append(np.asarray(batch["a"], dtype=np.uint64))
            ys.append(np.asarray(batch["b"], dtype=np.uint64))
    wall = time.perf_counter() - t0
    edges = _edge_set(np.concatenate(xs), np.concatenate(ys)) if xs else np.empty((0, 2))
    return {
        "variant": "raydata",
        "wall_seconds": round(wall, 1),
        "partitions": partitions,
        "peak_worker_rss_bytes": s.peak_rss,
        "peak_object_store_bytes": s.peak_store,
        "edges": len(edges),
        "_edges": edges,
    }


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--docs", type=int, default=1_000_000)
    p.add_argument("--dup-fraction", type=float, default=0.3)
    p.add_argument("--max-family", type=int, default=100_000)
    p.add_argument("--chain", type=int, default=10_000)
    p.add_argument("--docs-per-file", type=int, default=11_000)
    p.add_argument(
        "--partitions",
        type=int,
        default=0,
        help="Ray Data hash partitions (0: as many as phase 2's bucket tasks)",
    )
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--workdir", required=True)
    p.add_argument("--json")
    args = p.parse_args()

    import multiprocessing as mp

    import pyarrow.parquet as pq

    from dataproc.dedup.clusters import plan_buckets
    from dataproc.dedup.config import DedupConfig
    from dataproc.io.layout import band_file
    from dataproc.runner.ray_runtime import ensure_loopback_env

    plan = Plan(args.docs, args.dup_fraction, args.max_family, args.chain, args.docs_per_file)
    work = os.path.join(args.workdir, "shuffle")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    with mp.get_context("spawn").Pool(args.workers) as pool:
        pool.starmap(write_file, [(plan, f, work) for f in range(plan.files)])
    files = [band_file(work, f) for f in range(plan.files)]
    rows = [pq.ParquetFile(f).metadata.num_rows for f in files]
    partitions = args.partitions or len(plan_buckets(sum(rows), DedupConfig()))
    print(f"{args.docs:,} docs, {sum(rows):,} band rows in {len(files)} files", flush=True)

    ensure_loopback_env()
    import ray

    ray.init(
        num_cpus=args.workers,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        logging_level="ERROR",
    )
    try:
        ours = run_files(ray, files, rows, work)
        print({k: v for k, v in ours.items() if k != "_edges"}, flush=True)
        theirs = run_raydata(ray, files, sum(rows), partitions)
        print({k: v for k, v in theirs.items() if k != "_edges"}, flush=True)
    finally:
        ray.shutdown()
    same = bool(np.array_equal(ours.pop("_edges"), theirs.pop("_edges")))
    result = {"docs": args.docs, "band_rows": sum(rows), "same_edges": same, "runs": [ours, theirs]}
    print(json.dumps(result), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    shutil.rmtree(work, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
