"""Benchmark: the whole pipeline (filter → dedup → tokenize) on 1, 2, 4, 8 generated shards.

Every shard has the same size: ``--copies`` bundled sample files (``dataproc.sample``, ~40
pages each, a realistic mix of kept and rejected pages), each with its own seed, concatenated
into one multi-member ``.warc.gz`` — or, with ``--warc FILE ...``, copies of real WARC files
(data paths are arguments; nothing is downloaded). So the work per shard is constant and
the question is how wall time and documents/s grow with the number of shards on the CPUs given.
Seeds change record ids, never page texts, so shards after the first are run-wide duplicates:
phase 1 does full work on them, dedup removes them, tokenize has less to do.

One local Ray cluster (loopback only, ``--workers`` CPUs) is started once and reused, so the
numbers exclude Ray's start-up. Each size runs into a fresh output folder.

    /work/venv/bin/python bench/pipeline_scaling.py --shards 1 2 4 8 --copies 4 --workers 2 \\
        --workdir /tmp/pipeline-bench
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any


def make_shards(workdir: Path, num: int, copies: int, warcs: list[str]) -> list[str]:
    """``num`` equal shards under ``workdir/in-{num}``; returns their paths."""
    from dataproc.sample import write_sample_warcs

    d = workdir / f"in-{num}"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    paths = []
    for s in range(num):
        p = d / f"shard-{s:05d}.warc.gz"
        with open(p, "wb") as out:
            for c in range(copies):
                if warcs:
                    src = warcs[(s * copies + c) % len(warcs)]
                    with open(src, "rb") as f:
                        shutil.copyfileobj(f, out)
                    continue
                tmp = workdir / "tmp-sample"
                files, _ = write_sample_warcs(str(tmp), num_files=1, seed=s * copies + c + 1)
                with open(files[0], "rb") as f:
                    shutil.copyfileobj(f, out)  # gzip members concatenate into one valid file
                shutil.rmtree(tmp)
        paths.append(str(p))
    return paths


def run_one(paths: list[str], out: Path) -> dict[str, Any]:
    from dataproc.config import build_config
    from dataproc.runner.driver import run_pipeline

    if out.exists():
        shutil.rmtree(out)
    config = build_config({"inputs": paths, "output": str(out), "execution": {"progress": "none"}})
    t = time.perf_counter()
    result = run_pipeline(config)
    seconds = time.perf_counter() - t
    stats = {s.name: s for s in result.stats}
    read = stats.get("read")
    records = read.docs_in if read else 0
    kept = int((result.manifest or {}).get("totals", {}).get("rows", 0))
    in_bytes = sum(os.path.getsize(p) for p in paths)
    return {
        "shards": len(paths),
        "ok": result.ok,
        "seconds": round(seconds, 2),
        "records_read": records,
        "docs_after_filters": stats["minhash"].docs_out if "minhash" in stats else None,
        "docs_written": kept,
        "tokens": int(stats["tokenize"].counters.get("tokens", 0)) if "tokenize" in stats else 0,
        "input_mb": round(in_bytes / 1e6, 2),
        "docs_per_second": round(records / seconds, 1) if seconds else None,
        "input_mb_per_second": round(in_bytes / 1e6 / seconds, 3) if seconds else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--copies", type=int, default=4, help="sample files per shard (~40 pages each)")
    ap.add_argument("--warc", nargs="*", default=[], help="real WARC files to build shards from")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Ray CPUs")
    ap.add_argument("--workdir", default="/tmp/pipeline-bench")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback-only cluster
    import ray

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ray.init(
        num_cpus=args.workers,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
    )
    rows = []
    try:
        # Warm-up on one shard: worker processes, the fastText model and the tokenizer load
        # once per worker; later sizes reuse them, as the shards of a long run do.
        warm = make_shards(workdir, 1, 1, args.warc)
        run_one(warm, workdir / "out-warmup")
        for n in args.shards:
            paths = make_shards(workdir, n, args.copies, args.warc)
            row = run_one(paths, workdir / f"out-{n}")
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        ray.shutdown()
    base = rows[0]
    print()
    print(
        f"{'shards':>6} {'seconds':>8} {'records':>8} {'docs/s':>8} {'MB/s':>7} {'speedup':>8} {'eff.':>5}"
    )
    for r in rows:
        work_ratio = r["records_read"] / base["records_read"] if base["records_read"] else 0
        speedup = (base["seconds"] * work_ratio / r["seconds"]) if r["seconds"] else 0
        eff = speedup / min(r["shards"], args.workers)
        print(
            f"{r['shards']:>6} {r['seconds']:>8.1f} {r['records_read']:>8} "
            f"{r['docs_per_second']:>8.1f} {r['input_mb_per_second']:>7.2f} "
            f"{speedup:>8.2f} {eff:>5.2f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
