"""End-to-end benchmark of the dataproc pipeline against its extraction-only speed limit.

    python bench/run_bench.py /work/shared/corpus/bench/dev-bench.warc.gz \\
        --workers 1 2 --shards 1 10 --json /tmp/bench.json

For every (workers, shards) pair it runs the real pipeline (``run_pipeline``, Ray started by
the pipeline itself, exactly as ``dataproc run`` does) and reports: documents/s and input MB/s
end to end, the wall time of each phase, per-stage seconds and share (from ``stats.json``),
CPU seconds and peak RSS of every process (driver, Ray workers, extraction children, Ray's own
daemons; sampled with psutil in a background thread), the whole run's peak RSS and PSS (PSS
counts shared pages once), and Ray object-store use. Next to that it measures the *limit*:
the same pages (those the pipeline hands to the extractor) extracted in a plain loop, one
process per worker, with no Ray, no other stage and no I/O.

Shards: the input's response records are rewritten into ``S`` generated WARC files (new
WARC-Record-IDs, so nothing looks like an exact copy of the source; ``--copies`` repeats every
record that many times for bigger inputs). ``--shards 1 10`` therefore processes the same
records as one file or as ten, which shows whether memory grows with the number of shards.

A "document" in documents/s is one WARC response record (what a user counts in a crawl).
Results go to stdout as tables and to ``--json``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

SAMPLE_SECONDS = 0.25
PSS_EVERY = 4


# --------------------------------------------------------------------------------------------
# Generated shards
# --------------------------------------------------------------------------------------------
def make_shards(
    inputs: list[str], out_dir: str, shards: int, copies: int = 1, max_records: int | None = None
) -> dict[str, Any]:
    """Write the response records of ``inputs`` (``copies`` times each, at most
    ``max_records`` per copy) round-robin into ``shards`` gzipped WARC files with fresh
    WARC-Record-IDs; return paths and counts."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.warcwriter import WARCWriter

    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, f"shard-{i:03d}.warc.gz") for i in range(shards)]
    files = [open(p, "wb") for p in paths]  # noqa: SIM115 - closed below
    writers = [WARCWriter(f, gzip=True) for f in files]
    n = 0
    try:
        for copy in range(copies):
            taken = 0
            for path in inputs:
                with open(path, "rb") as stream:
                    for rec in ArchiveIterator(stream, no_record_parse=True):
                        if rec.rec_type != "response":
                            continue
                        if max_records is not None and taken >= max_records:
                            break
                        taken += 1
                        payload = rec.raw_stream.read()
                        headers = rec.rec_headers
                        old_id = headers.get_header("WARC-Record-ID") or str(n)
                        # Deterministic new ids: the same command makes the same files.
                        new_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{old_id}/{copy}")
                        headers.replace_header("WARC-Record-ID", f"<urn:uuid:{new_id}>")
                        if copy:
                            uri = headers.get_header("WARC-Target-URI") or ""
                            headers.replace_header("WARC-Target-URI", f"{uri}#copy{copy}")
                        headers.remove_header("WARC-Payload-Digest")
                        headers.remove_header("WARC-Block-Digest")
                        out = writers[n % shards].create_warc_record(
                            headers.get_header("WARC-Target-URI"),
                            "response",
                            payload=io.BytesIO(payload),
                            warc_headers=headers,
                            length=len(payload),
                        )
                        writers[n % shards].write_record(out)
                        n += 1
    finally:
        for f in files:
            f.close()
    return {"paths": paths, "responses": n, "bytes": sum(os.path.getsize(p) for p in paths)}


def count_responses(paths: list[str]) -> int:
    """Number of WARC response records in ``paths``."""
    from warcio.archiveiterator import ArchiveIterator

    n = 0
    for p in paths:
        with open(p, "rb") as stream:
            n += sum(1 for r in ArchiveIterator(stream) if r.rec_type == "response")
    return n


# --------------------------------------------------------------------------------------------
# Process sampling
# --------------------------------------------------------------------------------------------
def _classify(proc: Any, me: int) -> str:
    if proc.pid == me:
        return "driver"
    try:
        cmd = " ".join(proc.cmdline())
        name = proc.name()
    except Exception:
        return "other"
    if "dataproc.stages.sandbox" in cmd:
        return "extract_child"
    if cmd.startswith("ray::") or name.startswith("ray::") or "default_worker.py" in cmd:
        return "ray_worker"
    if "ray" in cmd or "gcs_server" in name or "raylet" in name:
        return "ray_system"
    return "other"  # e.g. datatrove's processes in datatrove_compare.py


@dataclass
class ProcInfo:
    """What the sampler saw of one process."""

    pid: int
    kind: str
    title: str
    ppid: int
    peak_rss: int = 0
    cpu_seconds: float = 0.0
    titles: set[str] = field(default_factory=set)


class Sampler(threading.Thread):
    """Samples RSS/PSS/CPU of this process and all its descendants, and Ray's object store."""

    def __init__(self, interval: float = SAMPLE_SECONDS) -> None:
        super().__init__(daemon=True, name="bench-sampler")
        import psutil

        self._psutil = psutil
        self.interval = interval
        self.me = os.getpid()
        # Processes already running (this one) count only the CPU they use from now on.
        me_cpu = psutil.Process(self.me).cpu_times()
        self._cpu_base: dict[int, float] = {self.me: me_cpu.user + me_cpu.system}
        self.procs: dict[int, ProcInfo] = {}
        self.peak_total_rss = 0
        self.samples = 0
        self.cpu_seconds = 0.0
        self.peak_total_pss = 0
        self.peak_store_bytes = 0
        self.store_samples = 0
        self.store_error: str | None = None
        self._halt = threading.Event()
        self._handles: dict[int, Any] = {}
        self._pss_tick: dict[int, int] = {}
        self._pss_last: dict[int, int] = {}

    def _pss(self, h: Any, rss: int) -> int:
        # smaps_rollup is ~10x dearer than statm: read PSS every PSS_EVERY samples, and
        # reuse the last value in between (the sampler's own cost stays below 1% of a core).
        self._pss_tick[h.pid] = self._pss_tick.get(h.pid, -1) + 1
        if self._pss_tick[h.pid] % PSS_EVERY == 0:
            try:
                self._pss_last[h.pid] = int(h.memory_full_info().pss)
            except (self._psutil.Error, AttributeError):
                self._pss_last[h.pid] = rss
        return self._pss_last.get(h.pid, rss)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def run(self) -> None:
        t0 = time.thread_time()
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)
        self.sample()
        self.cpu_seconds = time.thread_time() - t0

    def sample(self) -> None:
        psutil = self._psutil
        try:
            root = psutil.Process(self.me)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        total_rss = total_pss = 0
        for p in procs:
            h = self._handles.setdefault(p.pid, p)  # cached handle keeps cpu_times cheap
            try:
                with h.oneshot():
                    mem = h.memory_info()
                    cpu = h.cpu_times()
                    info = self.procs.get(h.pid)
                    if info is None:
                        kind = _classify(h, self.me)
                        info = ProcInfo(h.pid, kind, h.name(), h.ppid())
                        self.procs[h.pid] = info
                    if info.kind == "ray_worker":
                        info.titles.add(h.name())
                pss = self._pss(h, mem.rss)
            except psutil.Error:
                continue
            info.peak_rss = max(info.peak_rss, int(mem.rss))
            used = float(cpu.user + cpu.system) - self._cpu_base.get(h.pid, 0.0)
            info.cpu_seconds = max(info.cpu_seconds, used)
            total_rss += int(mem.rss)
            total_pss += pss
        self.samples += 1
        self.peak_total_rss = max(self.peak_total_rss, total_rss)
        self.peak_total_pss = max(self.peak_total_pss, total_pss)
        self._sample_store(procs)

    def _sample_store(self, procs: list[Any]) -> None:
        """Bytes allocated in Ray's plasma store: the tmpfs file the raylet maps
        (``/dev/shm/plasma*``, deleted but open); its allocated blocks are the store's
        high-water use. Read from /proc, so no Ray API (and no grpc) is needed."""
        for p in procs:
            try:
                if "raylet" not in p.name():
                    continue
                fd_dir = f"/proc/{p.pid}/fd"
                for fd in os.listdir(fd_dir):
                    try:
                        target = os.readlink(f"{fd_dir}/{fd}")
                        if "plasma" not in target:
                            continue
                        used = os.stat(f"{fd_dir}/{fd}").st_blocks * 512
                    except OSError:
                        continue
                    self.peak_store_bytes = max(self.peak_store_bytes, used)
                    self.store_samples += 1
            except (self._psutil.Error, OSError) as e:
                self.store_error = f"{type(e).__name__}: {e}"[:200]

    def summary(self) -> dict[str, Any]:
        by_kind: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"processes": 0, "cpu_seconds": 0.0, "peak_rss_bytes": 0}
        )
        for p in self.procs.values():
            k = by_kind[p.kind]
            k["processes"] += 1
            k["cpu_seconds"] += p.cpu_seconds
            k["peak_rss_bytes"] = max(k["peak_rss_bytes"], p.peak_rss)
        # A "worker" in the targets is a Ray worker that ran phase tasks plus its extraction
        # child(ren): that pair is what one CPU's worth of pipeline costs in memory.
        workers = []
        for p in self.procs.values():
            if p.kind != "ray_worker":
                continue
            kids = [c for c in self.procs.values() if c.ppid == p.pid and c.kind == "extract_child"]
            if not kids and not any("phase" in t for t in p.titles):
                continue  # an idle worker or an actor, not one that ran the pipeline
            workers.append(
                {
                    "pid": p.pid,
                    "peak_rss_bytes": p.peak_rss,
                    "extract_child_peak_rss_bytes": max((c.peak_rss for c in kids), default=0),
                    "cpu_seconds": round(p.cpu_seconds, 2),
                    "extract_child_cpu_seconds": round(sum(c.cpu_seconds for c in kids), 2),
                }
            )
        return {
            "by_kind": {
                k: dict(v, cpu_seconds=round(v["cpu_seconds"], 2)) for k, v in by_kind.items()
            },
            "workers": workers,
            "driver_peak_rss_bytes": self.procs[self.me].peak_rss if self.me in self.procs else 0,
            "total_peak_rss_bytes": self.peak_total_rss,
            "total_peak_pss_bytes": self.peak_total_pss,
            "samples": self.samples,
            "sampler_cpu_seconds": round(self.cpu_seconds, 2),
            "object_store_peak_bytes": self.peak_store_bytes if self.store_samples else None,
            "object_store_samples": self.store_samples,
            "object_store_error": None if self.store_samples else self.store_error,
        }


# --------------------------------------------------------------------------------------------
# One pipeline run
# --------------------------------------------------------------------------------------------
def _timing_progress(total_inputs: int) -> Any:
    from dataproc.runner.progress import Progress

    class TimingProgress(Progress):
        """Silent progress that remembers when each phase started and ended."""

        def __init__(self) -> None:
            super().__init__(mode="none", total_inputs=total_inputs, live=True)
            self.phase_seconds: dict[str, float] = {}
            self.first_phase_started: float | None = None

        def start_phase(self, phase: str, total: int) -> None:
            if self.first_phase_started is None:
                self.first_phase_started = time.time()
            super().start_phase(phase, total)

        def end_phase(self, phase: str) -> None:
            self.phase_seconds[phase] = time.time() - self.phase_started[phase]
            super().end_phase(phase)

    return TimingProgress()


def run_pipeline_isolated(
    paths: list[str], out_dir: str, workers: int, overrides: list[str]
) -> dict[str, Any]:
    """``run_pipeline_once`` in a fresh Python process, which is then the run's driver: its
    memory and CPU are the driver's alone, not the benchmark's (pages held for the limit)."""
    with tempfile.TemporaryDirectory(prefix="dataproc-bench-run-") as tmp:
        spec, result = os.path.join(tmp, "spec.json"), os.path.join(tmp, "result.json")
        Path(spec).write_text(
            json.dumps(
                {"paths": paths, "out_dir": out_dir, "workers": workers, "overrides": overrides}
            )
        )
        subprocess.run([sys.executable, __file__, "_run-once", spec, result], check=True)
        return json.loads(Path(result).read_text())


def _run_once_child(spec_path: str, result_path: str) -> None:
    from dataproc.runner.ray_runtime import ensure_loopback_env

    ensure_loopback_env()
    spec = json.loads(Path(spec_path).read_text())
    r = run_pipeline_once(spec["paths"], spec["out_dir"], spec["workers"], spec["overrides"])
    Path(result_path).write_text(json.dumps(r, default=list))


def run_pipeline_once(
    paths: list[str], out_dir: str, workers: int, overrides: list[str]
) -> dict[str, Any]:
    """Run the real pipeline on ``paths`` with ``workers`` CPUs in this process; measure it."""
    from dataproc.config import build_config
    from dataproc.runner.driver import run_pipeline

    config = build_config(
        {"inputs": paths, "output": out_dir, "execution": {"workers": workers, "progress": "none"}},
        overrides,
    )
    # A fresh folder: an earlier run's markers would be reused and nothing measured.
    shutil.rmtree(out_dir, ignore_errors=True)
    progress = _timing_progress(len(paths))
    sampler = Sampler()
    sampler.start()
    t0 = time.time()
    try:
        result = run_pipeline(config, overwrite=True, progress=progress)
    finally:
        wall = time.time() - t0
        sampler.stop()
    procs = sampler.summary()
    cpu = {k: v["cpu_seconds"] for k, v in procs["by_kind"].items()}
    # The sampler thread runs in the driver process: its CPU is the benchmark's, not the run's.
    cpu["driver"] = max(0.0, cpu.get("driver", 0.0) - procs["sampler_cpu_seconds"])
    total_cpu = sum(cpu.values())
    stats = json.loads(Path(out_dir, "stats.json").read_text())
    stages = [s for s in stats["stages"] if s["name"] != "dedup" or s["seconds"] > 0]
    stage_total = sum(s["seconds"] for s in stages) or 1.0
    return {
        "ok": result.ok,
        "failures": result.failures,
        "wall_seconds": round(wall, 3),
        "ray_start_seconds": round((progress.first_phase_started or t0) - t0, 3),
        "phase_seconds": {k: round(v, 3) for k, v in progress.phase_seconds.items()},
        "stages": [
            {
                "name": s["name"],
                "docs_in": s["docs_in"],
                "docs_out": s["docs_out"],
                "seconds": s["seconds"],
                "share": round(s["seconds"] / stage_total, 4),
            }
            for s in stats["stages"]
        ],
        "docs_kept": sum(f.get("rows", 0) for f in (result.manifest or {}).get("files", [])),
        "processes": procs,
        "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
        "cpu_seconds_total": round(total_cpu, 2),
        "extraction_cpu_share": round(cpu.get("extract_child", 0.0) / total_cpu, 4)
        if total_cpu
        else None,
    }


# --------------------------------------------------------------------------------------------
# The extraction-only limit
# --------------------------------------------------------------------------------------------
def collect_pages(paths: list[str], overrides: list[str], out_file: str) -> dict[str, Any]:
    """Pages the pipeline would extract (read + url_filter survivors), pickled to ``out_file``."""
    import pickle

    from dataproc.config import build_config
    from dataproc.readers.warc import read_warc
    from dataproc.stages.base import run_stage
    from dataproc.stages.url_filter import UrlFilter
    from dataproc.stats import StageStats

    config = build_config({}, overrides)
    url_filter = UrlFilter(config.url_filter) if config.url_filter.enabled else None
    if url_filter is not None:
        url_filter.setup()
    pages: list[str] = []

    def sink(*_: Any) -> None:
        pass

    for i, p in enumerate(paths):
        with open(p, "rb") as stream:
            docs = read_warc(
                stream,
                source=p,
                input_index=i,
                config=config.reader,
                stats=StageStats("read"),
                reject=sink,
            )
            if url_filter is not None:
                docs = run_stage(url_filter, docs, StageStats("url_filter"), sink)
            pages.extend(d.html for d in docs if d.html.strip())
    with open(out_file, "wb") as f:
        pickle.dump(pages, f, protocol=pickle.HIGHEST_PROTOCOL)
    return {
        "pages": len(pages),
        "html_bytes": sum(len(h.encode("utf-8", "surrogatepass")) for h in pages),
    }


def _limit_worker(pages_file: str, rank: int, world: int, overrides: list[str]) -> None:
    """Child: extract pages ``rank::world`` in a plain loop; print per-page seconds as JSON."""
    import pickle

    from dataproc.config import build_config
    from dataproc.stages.extract import extract_text

    cfg = build_config({}, overrides).extract
    with open(pages_file, "rb") as f:
        pages = pickle.load(f)[rank::world]
    extract_text("<html><body><article><p>warm up</p></article></body></html>", cfg)
    times = []
    mib = []
    c0 = time.process_time()
    t0 = time.perf_counter()
    for html in pages:
        s = time.perf_counter()
        with contextlib.suppress(Exception):
            extract_text(html, cfg)
        times.append(time.perf_counter() - s)
        mib.append(len(html) / (1 << 20))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    json.dump({"wall": wall, "cpu": cpu, "times": times, "mib": mib}, sys.stdout)


def measure_limit(pages_file: str, workers: int, overrides: list[str]) -> dict[str, Any]:
    """Extraction-only rate with ``workers`` processes, each a plain loop over its share."""
    from dataproc.config import build_config

    cfg = build_config({}, overrides).extract
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "_limit-worker",
                pages_file,
                str(r),
                str(workers),
                *[x for o in overrides for x in ("--set", o)],
            ],
            stdout=subprocess.PIPE,
        )
        for r in range(workers)
    ]
    outs = [json.loads(p.communicate()[0]) for p in procs]
    walls = [o["wall"] for o in outs]
    # Capped: a page never costs more than the pipeline's own time limit for it (pages past
    # it are killed there), so both sides do the same work.
    capped = [
        sum(
            min(t, cfg.timeout_seconds + cfg.timeout_seconds_per_mib * m)
            for t, m in zip(o["times"], o["mib"], strict=True)
        )
        for o in outs
    ]
    times = sorted(t for o in outs for t in o["times"])
    return {
        "workers": workers,
        "pages": len(times),
        "wall_seconds": round(max(walls), 3),
        "wall_seconds_capped": round(max(capped), 3),
        "cpu_seconds": round(sum(o["cpu"] for o in outs), 3),
        "page_ms_median": round(1000 * times[len(times) // 2], 2) if times else None,
        "page_ms_p99": round(1000 * times[int(len(times) * 0.99)], 2) if times else None,
        "page_ms_max": round(1000 * times[-1], 2) if times else None,
    }


def measure_tokenizer(
    pages_file: str, overrides: list[str], min_seconds: float = 5.0
) -> dict[str, Any]:
    """Tokenizer speed per core on real page text: the pages' text (resiliparse, fast) encoded
    by the pipeline's Tokenizer stage in its batches, timed in CPU seconds of this process."""
    import pickle

    from dataproc.config import build_config
    from dataproc.document import Document
    from dataproc.stages.extract import ExtractConfig, extract_text
    from dataproc.stages.tokenize import Tokenizer

    cfg = build_config({}, overrides).tokenizer
    with open(pages_file, "rb") as f:
        pages = pickle.load(f)
    rx = ExtractConfig(extractor="resiliparse")
    texts = [t for t in (extract_text(h, rx) for h in pages) if t]
    nbytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
    stage = Tokenizer(cfg)
    stage.setup()
    batch = max(1, cfg.batch_size)
    rounds = tokens = 0
    c0, t0 = time.process_time(), time.perf_counter()
    while True:
        for i in range(0, len(texts), batch):
            docs = [
                Document(id=str(j), url="", source="bench", text=t)
                for j, t in enumerate(texts[i : i + batch])
            ]
            for d in stage.process_batch(docs):
                tokens += 0 if d.token_ids is None else len(d.token_ids)
        rounds += 1
        if time.process_time() - c0 >= min_seconds:
            break
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    return {
        "tokenizer": cfg.name,
        "num_threads": cfg.num_threads,
        "texts": len(texts),
        "text_bytes": nbytes * rounds,
        "tokens": tokens,
        "cpu_seconds": round(cpu, 3),
        "wall_seconds": round(wall, 3),
        "mb_per_cpu_second": round(nbytes * rounds / 1e6 / cpu, 2),
        "bytes_per_token": round(nbytes * rounds / max(1, tokens), 2),
    }


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------
def environment() -> dict[str, Any]:
    import importlib.metadata as md

    import psutil

    def ver(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "machine": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
        "versions": {
            n: ver(n)
            for n in (
                "dataproc",
                "ray",
                "trafilatura",
                "resiliparse",
                "warcio",
                "fasttext",
                "datasketch",
                "tiktoken",
                "pyarrow",
                "numpy",
                "lxml",
            )
        },
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
    }


def _mb(n: float | None) -> str:
    return "-" if n is None else f"{n / 1e6:,.0f}"


def print_report(report: dict[str, Any]) -> None:
    env = report["environment"]
    print(
        f"# dataproc benchmark — {env['cpu']}, {env['cores']} cores, "
        f"{env['memory_bytes'] / 2**30:.0f} GiB, Python {env['python']}"
    )
    print("versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v))
    print(f"command:  {env['command']}")
    print(f"load average at start: {', '.join(f'{x:.1f}' for x in env['load_average_at_start'])}")
    print()
    hdr = (
        "workers",
        "shards",
        "docs",
        "wall s",
        "docs/s",
        "MB/s",
        "limit docs/s",
        "e2e/limit",
        "CPU s",
        "extract CPU share",
        "limit CPU / run CPU",
        "worker RSS MB",
        "child RSS MB",
        "driver MB",
        "run PSS MB",
        "store MB",
    )
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for r in report["runs"]:
        pr = r["processes"]
        w_rss = max((w["peak_rss_bytes"] for w in pr["workers"]), default=None)
        c_rss = max((w["extract_child_peak_rss_bytes"] for w in pr["workers"]), default=None)
        lim = r.get("limit_docs_per_second")
        print(
            "| "
            + " | ".join(
                [
                    str(r["workers"]),
                    str(r["shards"]),
                    f"{r['docs']:,}",
                    f"{r['wall_seconds']:.1f}",
                    f"{r['docs_per_second']:.1f}",
                    f"{r['input_mb_per_second']:.2f}",
                    "-" if lim is None else f"{lim:.1f}",
                    "-" if lim is None else f"{r['docs_per_second'] / lim:.2f}",
                    f"{r['cpu_seconds_total']:.0f}",
                    "-"
                    if r["extraction_cpu_share"] is None
                    else f"{100 * r['extraction_cpu_share']:.0f}%",
                    "-"
                    if r.get("limit_cpu_over_run_cpu") is None
                    else f"{r['limit_cpu_over_run_cpu']:.2f}",
                    _mb(w_rss),
                    _mb(c_rss),
                    _mb(pr["driver_peak_rss_bytes"]),
                    _mb(pr["total_peak_pss_bytes"]),
                    "n/a"
                    if pr["object_store_peak_bytes"] is None
                    else f"{pr['object_store_peak_bytes'] / 1e6:.2f}",
                ]
            )
            + " |"
        )
    print()
    for r in report["runs"]:
        print(
            f"## workers={r['workers']} shards={r['shards']}: ray start {r['ray_start_seconds']:.1f} s, phases "
            + ", ".join(f"{k} {v:.1f} s" for k, v in r["phase_seconds"].items())
        )
        print("| stage | in | out | seconds | share |")
        print("|---|---|---|---|---|")
        for s in r["stages"]:
            print(
                f"| {s['name']} | {s['docs_in']:,} | {s['docs_out']:,} | {s['seconds']:.2f} | {100 * s['share']:.1f}% |"
            )
        print("| process kind | count | CPU s | peak RSS MB (max of kind) |")
        print("|---|---|---|---|")
        for k, v in sorted(r["processes"]["by_kind"].items()):
            cpu = r.get("cpu_seconds", {}).get(k, v["cpu_seconds"])  # driver: less the sampler
            print(f"| {k} | {v['processes']} | {cpu:.1f} | {_mb(v['peak_rss_bytes'])} |")
        print()
    tok = report.get("tokenizer")
    if tok:
        print(
            f"tokenizer {tok['tokenizer']} (num_threads={tok['num_threads']}): "
            f"{tok['mb_per_cpu_second']} MB of page text per CPU second "
            f"({tok['bytes_per_token']} bytes/token, {tok['cpu_seconds']} CPU s)"
        )
    for lim in report["limits"]:
        print(
            f"limit before run workers={lim['workers']} shards={lim.get('shards')}: "
            f"{lim['workers']} process(es): {lim['pages']} pages in {lim['wall_seconds']:.1f} s "
            f"({lim['wall_seconds_capped']:.1f} s with the pipeline's per-page time limit; "
            f"{lim['cpu_seconds']:.1f} CPU s); "
            f"page median {lim['page_ms_median']} ms, p99 {lim['page_ms_p99']} ms, max {lim['page_ms_max']} ms"
        )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_run-once":
        _run_once_child(argv[1], argv[2])
        return 0
    if argv and argv[0] == "_limit-worker":
        overrides = [argv[i + 1] for i in range(4, len(argv) - 1) if argv[i] == "--set"]
        _limit_worker(argv[1], int(argv[2]), int(argv[3]), overrides)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", help="WARC files (.warc / .warc.gz)")
    ap.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)"
    )
    ap.add_argument(
        "--shards", type=int, nargs="+", default=[1, 10], help="shard counts (default 1 10)"
    )
    ap.add_argument("--copies", type=int, default=1, help="repeat every record this many times")
    ap.add_argument("--max-records", type=int, help="use only the first N responses (smoke runs)")
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="config override for the pipeline and the limit, e.g. extract.extractor=resiliparse",
    )
    ap.add_argument("--work-dir", default=None, help="scratch folder (default: a new temp folder)")
    ap.add_argument("--no-limit", action="store_true", help="skip the extraction-only limit")
    ap.add_argument("--json", dest="json_path", help="also write the report as JSON here")
    args = ap.parse_args(argv)

    from dataproc.runner.ray_runtime import ensure_loopback_env

    ensure_loopback_env()
    work = args.work_dir or tempfile.mkdtemp(prefix="dataproc-bench-")
    os.makedirs(work, exist_ok=True)
    report: dict[str, Any] = {"environment": environment(), "runs": [], "limits": []}
    shard_sets: dict[int, dict[str, Any]] = {}
    for s in sorted(set(args.shards)):
        shard_sets[s] = make_shards(
            args.inputs, os.path.join(work, f"shards-{s}"), s, args.copies, args.max_records
        )
        print(
            f"generated {s} shard(s): {shard_sets[s]['responses']:,} responses, "
            f"{shard_sets[s]['bytes'] / 1e6:.1f} MB",
            flush=True,
        )

    # The limit is measured right before each pipeline run with the same worker count, so
    # both see the same machine load (a shared machine's load can change 2x in minutes).
    pages_file = os.path.join(work, "pages.pickle")
    if not args.no_limit:
        first = shard_sets[min(shard_sets)]
        report["limit_pages"] = collect_pages(first["paths"], args.overrides, pages_file)
        report["tokenizer"] = measure_tokenizer(pages_file, args.overrides)
        print(f"tokenizer: {report['tokenizer']}", flush=True)
    for s in sorted(set(args.shards)):
        for w in sorted(set(args.workers)):
            ss = shard_sets[s]
            limit: dict[str, Any] = {}
            if not args.no_limit:
                limit = measure_limit(pages_file, w, args.overrides)
                limit.update(
                    shards=s,
                    docs_per_second=round(ss["responses"] / limit["wall_seconds_capped"], 2),
                )
                report["limits"].append(limit)
                print(f"limit {w} worker(s): {limit}", flush=True)
            out = os.path.join(work, f"out-w{w}-s{s}")
            load_before = os.getloadavg()[0]
            r = run_pipeline_isolated(ss["paths"], out, w, args.overrides)
            r.update(
                workers=w,
                shards=s,
                docs=ss["responses"],
                input_bytes=ss["bytes"],
                docs_per_second=round(ss["responses"] / r["wall_seconds"], 2),
                input_mb_per_second=round(ss["bytes"] / 1e6 / r["wall_seconds"], 3),
                limit_docs_per_second=limit.get("docs_per_second"),
                # Load-proof efficiency: CPU the plain extraction loop needed for these pages
                # over CPU the whole run used (every process, Ray's daemons included).
                limit_cpu_over_run_cpu=(
                    round(limit["cpu_seconds"] / r["cpu_seconds_total"], 3)
                    if limit and r["cpu_seconds_total"]
                    else None
                ),
                load_average_1min=[load_before, os.getloadavg()[0]],
            )
            report["runs"].append(r)
            print(
                f"run workers={w} shards={s}: {r['wall_seconds']:.1f} s, "
                f"{r['docs_per_second']:.1f} docs/s",
                flush=True,
            )
    if os.path.exists(pages_file):
        os.remove(pages_file)
    report["environment"]["load_average_at_end"] = os.getloadavg()
    print()
    print_report(report)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=2, default=list))
        print(f"\nJSON: {args.json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
