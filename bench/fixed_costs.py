"""Wall and CPU time of a whole ``dataproc run`` (every process: driver, Ray's daemons,
workers, extraction children), repeated, optionally for two checkouts side by side.

    python bench/fixed_costs.py --repeat 3 --checkout before=/tmp/base --checkout after=. \\
        -- run --sample --output /tmp/fc-out --overwrite

The command after ``--`` is given to ``python -m dataproc`` with ``PYTHONPATH`` set to each
checkout in turn (runs alternate between checkouts, so both see the same machine load). CPU
is read from ``/proc`` (psutil) for the command's whole process tree every 0.1 s, so a process
that exits between samples keeps its last value. The smallest runs are mostly fixed cost:
Ray's start and shutdown, worker and extraction-child start-up, the report
(docs/performance.md, "Fixed costs"). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from run_bench import _classify  # noqa: E402


def measure(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``cmd``; wall seconds and CPU seconds of its process tree, by process kind."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root = psutil.Process(proc.pid)
    last: dict[int, float] = {}
    kind: dict[int, str] = {}
    handles: dict[int, Any] = {}
    while True:
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            procs = []
        for p in procs:
            h = handles.setdefault(p.pid, p)
            try:
                t = h.cpu_times()
                if h.pid not in kind:
                    kind[h.pid] = "driver" if h.pid == proc.pid else _classify(h, -1)
            except psutil.Error:
                continue
            last[h.pid] = max(last.get(h.pid, 0.0), float(t.user + t.system))
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-2000:]}")
    by_kind: dict[str, float] = {}
    count: dict[str, int] = {}
    for pid, cpu in last.items():
        by_kind[kind[pid]] = by_kind.get(kind[pid], 0.0) + cpu
        count[kind[pid]] = count.get(kind[pid], 0) + 1
    return {
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(sum(last.values()), 3),
        "cpu_by_kind": {k: round(v, 3) for k, v in sorted(by_kind.items())},
        "processes_by_kind": dict(sorted(count.items())),
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        raise SystemExit("usage: fixed_costs.py [options] -- DATAPROC_ARGS...")
    cut = argv.index("--")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--checkout",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a source tree to put first on PYTHONPATH (default: this checkout)",
    )
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args(argv[:cut])
    checkouts = [c.split("=", 1) for c in args.checkout] or [["this", str(HERE.parent)]]
    cmd = [sys.executable, "-m", "dataproc", *argv[cut + 1 :]]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in checkouts}
    for i in range(args.repeat):
        for name, path in checkouts:
            env = dict(os.environ, PYTHONPATH=os.path.abspath(path))
            load = os.getloadavg()[0]
            r = measure(cmd, env)
            r["load_average_1min"] = load
            runs[name].append(r)
            print(
                f"{name} #{i + 1}: {r['wall_seconds']:.2f} s wall, {r['cpu_seconds']:.2f} CPU s "
                f"{r['cpu_by_kind']} processes {r['processes_by_kind']} (load {load:.1f})",
                flush=True,
            )
    print()
    print("| checkout | runs | wall s (median) | CPU s (median) | CPU s by process kind (median) |")
    print("|---|---|---|---|---|")
    for name, rs in runs.items():
        kinds = sorted({k for r in rs for k in r["cpu_by_kind"]})
        by = {k: statistics.median(r["cpu_by_kind"].get(k, 0.0) for r in rs) for k in kinds}
        print(
            f"| {name} | {len(rs)} | {statistics.median(r['wall_seconds'] for r in rs):.2f} | "
            f"{statistics.median(r['cpu_seconds'] for r in rs):.2f} | "
            + ", ".join(f"{k} {v:.2f}" for k, v in by.items())
            + " |"
        )
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"command": cmd, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
