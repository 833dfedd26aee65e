"""One large WARC on 1 worker vs 2 workers: does phase 1 use every core on a single file?

    python bench/split_file.py /work/shared/corpus/bench/dev-bench.warc.gz --copies 4 \\
        --json /tmp/bench/split_file.json

Builds ONE input by concatenating ``--copies`` copies of the given ``.warc.gz`` (gzip members
concatenate, so the result is a valid per-record-gzip WARC; the copies are exact duplicates,
which dedup then removes) into a temporary folder, deleted at the end. Then runs the real
pipeline on it (``run_bench.run_pipeline_isolated``: a fresh driver process, Ray started by the
pipeline) with 1 worker, with 2 workers (the file is split into byte ranges), and, with
``--unsplit``, with 2 workers and ``execution.split_min_bytes=null`` (one task for the file, as
before splitting existed). Reports wall seconds, CPU seconds of all processes, the load
average before and after each run, and checks that every run wrote the same token files.

The machine may be shared: wall-clock ratios are then only indicative; CPU seconds tell whether
the split adds work. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from run_bench import run_pipeline_isolated  # noqa: E402


def concatenate(src: str, copies: int, dest: str) -> int:
    """Write ``copies`` copies of ``src`` one after the other into ``dest``; return its size."""
    with open(dest, "wb") as out:
        for _ in range(copies):
            with open(src, "rb") as f:
                shutil.copyfileobj(f, out, 8 * 1024 * 1024)
    return os.path.getsize(dest)


def token_digest(out: str) -> str:
    """One sha256 over every token file's name and bytes (the output that must not change)."""
    h = hashlib.sha256()
    for p in sorted(Path(out, "tokens").glob("*.parquet")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def one_run(path: str, out: str, workers: int, overrides: list[str]) -> dict[str, Any]:
    load_before = os.getloadavg()
    r = run_pipeline_isolated([path], out, workers, overrides)
    return {
        "workers": workers,
        "overrides": overrides,
        "ok": r["ok"],
        "wall_seconds": r["wall_seconds"],
        "phase_seconds": r["phase_seconds"],
        "cpu_seconds_total": r["cpu_seconds_total"],
        "cpu_seconds": r["cpu_seconds"],
        "docs_kept": r["docs_kept"],
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "tokens_sha256": token_digest(out),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="a per-record-gzip .warc.gz")
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--unsplit", action="store_true", help="also 2 workers without splitting")
    ap.add_argument("--set", action="append", default=[], help="config override (key=value)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="dataproc-split-bench-")
    try:
        path = os.path.join(tmp, "one.warc.gz")
        size = concatenate(args.input, args.copies, path)
        print(f"input: {args.copies} x {args.input} = {size / 1e6:.1f} MB in one file", flush=True)
        plan = [(1, []), (2, [])]
        if args.unsplit:
            plan.append((2, ["execution.split_min_bytes=null"]))
        runs = []
        for workers, extra in plan:
            out = os.path.join(tmp, f"out-{workers}-{len(extra)}")
            run = one_run(path, out, workers, args.set + extra)
            runs.append(run)
            print(json.dumps(run), flush=True)
            shutil.rmtree(out, ignore_errors=True)
        base = runs[0]
        report = {
            "input_bytes": size,
            "copies": args.copies,
            "cpu_count": os.cpu_count(),
            "runs": runs,
            "speedup_wall_2_vs_1": round(base["wall_seconds"] / runs[1]["wall_seconds"], 3),
            "phase1_speedup_wall_2_vs_1": round(
                base["phase_seconds"]["filter"] / runs[1]["phase_seconds"]["filter"], 3
            ),
            "cpu_ratio_2_vs_1": round(runs[1]["cpu_seconds_total"] / base["cpu_seconds_total"], 3),
            "identical_tokens": len({r["tokens_sha256"] for r in runs}) == 1,
        }
        print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=1))
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(report, indent=1))
        return 0 if report["identical_tokens"] and all(r["ok"] for r in runs) else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
