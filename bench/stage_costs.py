"""CPU-seconds per 1,000 pages read, per stage of a full ``dataproc run`` (docs/operations.md).

    python bench/stage_costs.py --input /work/shared/corpus/bench/dev-bench.warc.gz \\
        --input /work/shared/corpus/warc/commoncrawl --gate both --json /tmp/stage_costs.json

Every ``--input`` (a file, folder or glob, as ``dataproc run`` takes them) is one real run
(``run_pipeline``: Ray started by the pipeline, all three phases, manifest and report), in a
fresh Python process, with the prefilter gate on, off, or both (``--gate``). The table counts
**CPU time**, not wall time, because a shared machine's wall time says little:

- phase-1 stages: ``cpu_seconds`` of each stage in ``stats.json`` (the stage's own thread CPU;
  for ``extract`` plus the extraction child's CPU on those pages);
- the rest of each phase and step (phase-1 work outside the stages: worker start-up, model
  loads, the extraction child's start, writing survivors, rejects and band files; every
  phase-2 dedup step; phase-3 reading, tokenizing and writing): CPU of the Ray workers and
  extraction children between the phase's start and end, from ``/proc`` via psutil, sampled
  at each phase boundary and every 0.2 s (so a process that exits mid-phase still counts);
- Ray's own daemons (GCS, raylet, agents) over the whole run, and the driver's start-up
  (imports, preflight, Ray start), finalize (stats, manifest), report and Ray shutdown.

"Pages read" are the web pages the reader passed on (``read`` stage's documents out: HTML
responses, the count the report's throughput section uses). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for p in (str(REPO), str(HERE)):
    if p not in sys.path:  # run as a script from a checkout
        sys.path.insert(0, p)

from run_bench import _classify, environment  # noqa: E402

SAMPLE_SECONDS = 0.2


class CpuClock(threading.Thread):
    """Cumulative CPU seconds of this process and every descendant, by pid, kept up to date
    every ``SAMPLE_SECONDS`` and on demand (``snapshot``), so the CPU of a process that exits
    between two snapshots is its last sampled value rather than lost."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="cpu-clock")
        import psutil

        self._psutil = psutil
        self.me = os.getpid()
        self.kind: dict[int, str] = {}
        self.last: dict[int, float] = {}
        self._handles: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self.own_cpu = 0.0

    def _sample(self) -> None:
        ps = self._psutil
        try:
            root = ps.Process(self.me)
            procs = [root, *root.children(recursive=True)]
        except ps.Error:
            return
        for p in procs:
            h = self._handles.setdefault(p.pid, p)
            try:
                t = h.cpu_times()
                if h.pid not in self.kind:
                    self.kind[h.pid] = _classify(h, self.me)
            except ps.Error:
                continue
            used = float(t.user + t.system)
            if h.pid == self.me:  # the clock's own thread is the benchmark's, not the run's
                used -= self.own_cpu
            self.last[h.pid] = max(self.last.get(h.pid, 0.0), used)

    def snapshot(self) -> dict[int, float]:
        with self._lock:
            self._sample()
            return dict(self.last)

    def run(self) -> None:
        t0 = time.thread_time()
        while not self._halt.wait(SAMPLE_SECONDS):
            with self._lock:
                self._sample()
                self.own_cpu = time.thread_time() - t0

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def _delta(a: dict[int, float], b: dict[int, float], clock: CpuClock) -> dict[str, float]:
    """CPU used between snapshots ``a`` and ``b``, by process kind."""
    out: dict[str, float] = {}
    for pid, cpu in b.items():
        k = clock.kind.get(pid, "other")
        out[k] = out.get(k, 0.0) + max(0.0, cpu - a.get(pid, 0.0))
    return out


def _instrumented_run(spec: dict[str, Any]) -> dict[str, Any]:
    """One real run in this (fresh) process with CPU snapshots at every boundary."""
    from dataproc.runner.ray_runtime import ensure_loopback_env

    ensure_loopback_env()
    import ray

    from dataproc.config import load_config
    from dataproc.runner import driver
    from dataproc.runner.progress import Progress

    clock = CpuClock()
    marks: list[tuple[str, float, dict[int, float]]] = []

    def mark(name: str) -> None:
        marks.append((name, time.time(), clock.snapshot()))

    class Marking(Progress):
        def start_phase(self, phase: str, total: int) -> None:
            mark(f"start:{phase}")
            super().start_phase(phase, total)

        def end_phase(self, phase: str) -> None:
            super().end_phase(phase)
            mark(f"end:{phase}")

    real = {"shutdown": ray.shutdown, "finalize": driver._finalize}
    real["report"] = driver.build_report_or_warn
    timed: dict[str, list[float]] = {}  # name -> [wall seconds, CPU seconds of its thread]

    def timing(name: str) -> Any:
        def call(*a: Any, **k: Any) -> Any:
            w, c = time.perf_counter(), time.thread_time()
            try:
                return real[name](*a, **k)
            finally:
                timed[name] = [time.perf_counter() - w, time.thread_time() - c]

        return call

    shutdown, finalize, report = timing("shutdown"), timing("finalize"), timing("report")
    ray.shutdown, driver._finalize, driver.build_report_or_warn = shutdown, finalize, report
    config = load_config(
        spec["config"],
        [*spec["overrides"], f"execution.workers={spec['workers']}", "execution.progress=none"],
    )
    config = config.model_copy(update={"inputs": spec["inputs"], "output": spec["out_dir"]})
    shutil.rmtree(spec["out_dir"], ignore_errors=True)
    clock.start()
    mark("begin")  # after imports: the driver's import CPU is added from the process below
    result = driver.run_pipeline(
        config, overwrite=True, progress=Marking(mode="none", total_inputs=1, live=True)
    )
    mark("end")
    clock.stop()
    import psutil

    t = psutil.Process().cpu_times()
    stats = json.loads(Path(spec["out_dir"], "stats.json").read_text())
    return {
        "ok": result.ok,
        "marks": [(n, t_, {str(k): v for k, v in s.items()}) for n, t_, s in marks],
        "kinds": {str(k): v for k, v in clock.kind.items()},
        "driver_pid": os.getpid(),
        "driver_cpu_before_begin": marks[0][2].get(os.getpid(), 0.0),
        "driver_cpu_total": float(t.user + t.system) - clock.own_cpu,
        "timed": timed,
        "stats": stats,
        "docs_kept": sum(f.get("rows", 0) for f in (result.manifest or {}).get("files", [])),
    }


def _window(
    marks: list[tuple[str, float, dict[str, float]]],
    kinds: dict[str, str],
    start: str,
    end: str,
) -> tuple[float, dict[str, float]]:
    """(wall seconds, CPU by kind) between the first mark named ``start`` and the first
    ``end`` after it."""
    i = next(n for n, m in enumerate(marks) if m[0] == start)
    j = next(n for n, m in enumerate(marks) if n > i and m[0] == end)
    a, b = marks[i][2], marks[j][2]
    out: dict[str, float] = {}
    for pid, cpu in b.items():
        k = kinds.get(pid, "other")
        out[k] = out.get(k, 0.0) + max(0.0, cpu - a.get(pid, 0.0))
    return marks[j][1] - marks[i][1], out


NON_STAGE_PHASE1 = "phase 1, outside the stages (worker start-up, models, writing files)"


def cost_table(raw: dict[str, Any]) -> dict[str, Any]:
    """Rows of (what, CPU-seconds) for one run, from its marks and stats.json."""
    marks, kinds = raw["marks"], raw["kinds"]
    stages = raw["stats"]["stages"]
    read = next(s for s in stages if s["name"] == "read")
    pages = read["docs_out"]
    task_kinds = ("ray_worker", "extract_child")
    rows: list[tuple[str, float]] = []
    names = [m[0] for m in marks]
    first_phase = next(n for n in names if n.startswith("start:"))
    wall0, c0 = _window(marks, kinds, "begin", first_phase)
    startup = raw["driver_cpu_before_begin"] + sum(v for k, v in c0.items() if k != "ray_system")
    rows.append(("start-up (driver imports, preflight, Ray start, idle workers' start)", startup))

    phase1_stage_cpu = 0.0
    for s in stages:
        if s["name"] in ("dedup", "tokenize"):
            continue
        cpu = float(s.get("cpu_seconds", 0.0))
        phase1_stage_cpu += cpu
        rows.append((f"  {s['name']}", cpu))
    wall1, c1 = _window(marks, kinds, "start:filter", "end:filter")
    rows.append((NON_STAGE_PHASE1, sum(c1.get(k, 0.0) for k in task_kinds) - phase1_stage_cpu))

    phases: dict[str, float] = {"filter": wall1}
    for n in names:
        if n.startswith("start:") and n != "start:filter":
            step = n[len("start:") :]
            wall, c = _window(marks, kinds, n, f"end:{step}")
            phases[step] = wall
            if step == "tokenize":
                tok = next((s for s in stages if s["name"] == "tokenize"), None)
                tok_cpu = float(tok.get("cpu_seconds", 0.0)) if tok else 0.0
                total = sum(c.get(k, 0.0) for k in task_kinds)
                rows.append(("  tokenize (tiktoken)", tok_cpu))
                rows.append(
                    (
                        "phase 3, outside tokenize (read survivors, drop removed, write Parquet)",
                        total - tok_cpu,
                    )
                )
            else:
                rows.append((f"phase 2: {step}", sum(c.get(k, 0.0) for k in task_kinds)))
    _, whole = _window(marks, kinds, "begin", "end")
    rows.append(("Ray's daemons (GCS, raylet, agents), whole run", whole.get("ray_system", 0.0)))
    timed = raw["timed"]
    for key, label in (
        ("finalize", "finalize (stats.json, manifest, card)"),
        ("report", "report.html"),
        ("shutdown", "Ray shutdown (driver)"),
    ):
        if key in timed:
            rows.append((label, timed[key][1]))
            phases[key] = timed[key][0]
    phases["startup"] = wall0
    accounted = sum(v for k, v in rows if not k.startswith("  "))
    accounted += phase1_stage_cpu + (
        next((float(s.get("cpu_seconds", 0)) for s in stages if s["name"] == "tokenize"), 0.0)
    )
    total = raw["driver_cpu_total"] + sum(v for k, v in whole.items() if k != "driver")
    rows.append(("elsewhere (driver waiting on tasks, between phases)", total - accounted))
    return {
        "pages_read": pages,
        "docs_kept": raw["docs_kept"],
        "rows": [(k, round(v, 3)) for k, v in rows],
        "cpu_total": round(total, 3),
        "wall_seconds": round(marks[-1][1] - marks[0][1], 3),
        "phase_wall_seconds": {k: round(v, 3) for k, v in phases.items()},
        "stage_wall_seconds": {s["name"]: s["seconds"] for s in stages},
    }


def run_isolated(spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dataproc-stage-costs-") as tmp:
        sp, rp = os.path.join(tmp, "spec.json"), os.path.join(tmp, "result.json")
        Path(sp).write_text(json.dumps(spec))
        subprocess.run([sys.executable, __file__, "_run", sp, rp], check=True)
        return json.loads(Path(rp).read_text())


def print_table(runs: list[dict[str, Any]]) -> None:
    heads = [f"{r['label']} ({r['pages_read']:,} pages)" for r in runs]
    print("| CPU-seconds per 1,000 pages read | " + " | ".join(heads) + " |")
    print("|---" * (len(runs) + 1) + "|")
    for i, (name, _) in enumerate(runs[0]["rows"]):
        cells = []
        for r in runs:
            row = r["rows"][i] if i < len(r["rows"]) and r["rows"][i][0] == name else None
            v = dict(r["rows"]).get(name) if row is None else row[1]
            cells.append("-" if v is None else f"{1000 * v / max(1, r['pages_read']):.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(
        "| **all processes** | "
        + " | ".join(f"**{1000 * r['cpu_total'] / max(1, r['pages_read']):.2f}**" for r in runs)
        + " |"
    )
    print()
    for r in runs:
        print(
            f"{r['label']}: {r['cpu_total']:.1f} CPU s, {r['wall_seconds']:.1f} s wall, "
            f"{r['docs_kept']} documents kept; phase wall s {r['phase_wall_seconds']}"
        )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_run":
        spec = json.loads(Path(argv[1]).read_text())
        Path(argv[2]).write_text(json.dumps(_instrumented_run(spec)))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--input",
        action="append",
        required=True,
        help="one run's input (file, folder or glob); repeat for more runs",
    )
    ap.add_argument("--config", "-c", help="pipeline YAML (default: the built-in pipeline)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--gate", choices=("on", "off", "both"), default="both")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--work-dir", help="where outputs go (default: a temp folder, removed)")
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args(argv)
    work = args.work_dir or tempfile.mkdtemp(prefix="dataproc-stage-costs-")
    gates = {"on": ["on"], "off": ["off"], "both": ["on", "off"]}[args.gate]
    report: dict[str, Any] = {"environment": environment(), "runs": []}
    for n, inp in enumerate(args.input):
        for gate in gates:
            overrides = [
                *args.overrides,
                f"prefilter.enabled={'true' if gate == 'on' else 'false'}",
            ]
            out = os.path.join(work, f"out-{n}-{gate}")
            load = os.getloadavg()[0]
            raw = run_isolated(
                {
                    "inputs": [inp],
                    "out_dir": out,
                    "workers": args.workers,
                    "overrides": overrides,
                    "config": args.config,
                }
            )
            if not raw["ok"]:
                print(f"run on {inp} (gate {gate}) had failures", file=sys.stderr)
            table = cost_table(raw)
            table.update(
                label=f"{os.path.basename(inp.rstrip('/'))}, gate {gate}",
                input=inp,
                gate=gate,
                overrides=overrides,
                load_average_1min=[load, os.getloadavg()[0]],
            )
            report["runs"].append(table)
            print(
                f"{table['label']}: {table['cpu_total']:.1f} CPU s, {table['pages_read']} pages",
                flush=True,
            )
            if not args.work_dir:
                shutil.rmtree(out, ignore_errors=True)
    print()
    print_table(report["runs"])
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=2))
        print(f"\nJSON: {args.json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
