"""Peak RSS of every process of a real run on long documents, and on a normal crawl file.

Issue 13, item 6: memory must be bounded in bytes, not in document counts. This generates a
per-record-gzip WARC of ``--docs`` HTML pages of ``--words`` words each (80,000 by default:
ordinary, non-repetitive English prose that survives every filter), runs ``dataproc run`` on
it exactly as a user would (a local Ray cluster, all three phases, the report), and samples
the resident memory of every process of the run every ``--interval`` seconds: the driver,
Ray's own processes, the workers (phase-1 and phase-3 tasks run in them) and the extraction
child. It does the same for a normal crawl file (``--crawl-file``, e.g. the dev-bench
shard). Prints one table per run and, with ``--json``, writes the numbers.

    /work/venv/bin/python bench/memory_long_docs.py --docs 200 --work-dir /tmp/memlong
    /work/venv/bin/python bench/memory_long_docs.py --docs 10000   # the issue's size (hours)

Run two sizes (e.g. ``--docs 100`` and ``--docs 400``): a bounded pipeline has the same peak
for both, which is what justifies extrapolating to 10,000.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024

# Ordinary English words (stop words included, so the Gopher quality rules pass).
_WORD_TEXT = (
    "the of and to in a is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there been one all we their has would when if "
    "so no will more can out other into up about than them some time could these two may "
    "first then do any like my now over such our man me even most made after also did many "
    "before must through back years where much your way well down should because each just "
    "those people how too little state good very make world still own see men work long get "
    "here between both life being under never day same another know while last might us "
    "great old year off come since against go came right used take three river valley "
    "village market harbour bridge station council library garden orchard meadow forest "
    "winter summer autumn spring morning evening weather rain snow wind storm cloud sunlight "
    "farmer teacher doctor baker painter sailor miller weaver carpenter gardener engineer "
    "report study survey record letter journal chapter history museum archive collection "
    "walked carried measured planted repaired painted counted wrote read opened closed "
    "built crossed followed noticed remembered explained described discovered gathered "
    "quiet narrow ancient careful patient bright heavy gentle distant modest steady simple "
    "wooden stone copper silver golden northern southern eastern western coastal rural"
)
_WORDS = _WORD_TEXT.split()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 18))]
    return " ".join(words).capitalize() + "."


def _page(rng: random.Random, words: int, title: str) -> bytes:
    """An HTML article of about ``words`` words in paragraphs of a few sentences."""
    paras: list[str] = []
    n = 0
    while n < words:
        para = " ".join(_sentence(rng) for _ in range(rng.randint(3, 7)))
        n += para.count(" ") + 1
        paras.append(f"<p>{para}</p>")
    body = "".join(paras)
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body><article>"
        f"<h1>{title}</h1>{body}</article></body></html>"
    ).encode()


def write_long_doc_warc(path: Path, docs: int, words: int, seed: int = 0) -> int:
    """Write ``docs`` response records (one gzip member each), streaming; return the bytes."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        for i in range(docs):
            url = f"https://long{i % 97}.example.org/article/{i}"
            body = _page(rng, words, f"Article {i}")
            http = (
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            head = (
                "WARC/1.0\r\nWARC-Type: response\r\n"
                f"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{i:012d}>\r\n"
                "WARC-Date: 2024-05-18T12:00:00Z\r\n"
                f"WARC-Target-URI: {url}\r\n"
                "Content-Type: application/http; msgtype=response\r\n"
                f"Content-Length: {len(http)}\r\n\r\n"
            ).encode()
            f.write(gzip.compress(head + http + b"\r\n\r\n", compresslevel=1, mtime=0))
        return f.tell()


def _label(p: psutil.Process) -> str:
    """A short name for a process of the run (Ray sets worker titles like ``ray::phase1_task``)."""
    try:
        cmd = p.cmdline()
    except (psutil.Error, OSError):
        return "?"
    text = " ".join(cmd)
    if "-m dataproc run" in text or "dataproc run" in text:
        return "driver (dataproc run: plan, finalize, report)"
    if cmd and cmd[0].startswith("ray::"):
        return f"ray worker ({cmd[0].split()[0]})"
    if "default_worker.py" in text:
        return "ray worker (starting)"
    for part in ("gcs_server", "raylet", "dashboard", "log_monitor", "runtime_env", "monitor.py"):
        if part in text:
            return f"ray {part}"
    if "multiprocessing" in text or "sandbox" in text or "spawn" in text:
        return "extraction child"
    return (os.path.basename(cmd[0]) if cmd else "?") + " " + " ".join(cmd[1:3])[:60]


def measure_run(
    inputs: list[str], out: Path, extra: list[str], interval: float
) -> tuple[int, float, dict[tuple[int, str], dict]]:
    """Run ``dataproc run`` and sample the RSS of it and all its descendants."""
    cmd = [
        sys.executable,
        "-m",
        "dataproc",
        "run",
        "-i",
        *inputs,
        "-o",
        str(out),
        "--overwrite",
        "--quiet",
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    root = psutil.Process(proc.pid)
    peaks: dict[tuple[int, str], dict] = {}
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            procs = []
        for p in procs:
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            # A Ray worker's title changes with the task it runs (phase 1, then phase 3 in
            # the same process): one peak per process and task.
            label = _label(p)
            entry = peaks.get((p.pid, label))
            if entry is None or rss > entry["rss"]:
                peaks[(p.pid, label)] = {"rss": rss, "label": label}
        time.sleep(interval)
    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    if proc.returncode != 0:
        print(output[-3000:], file=sys.stderr)
    return proc.returncode, time.time() - started, peaks


def _summary(out: Path) -> dict:
    stats = json.loads((out / "stats.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    stages = {s["name"]: s for s in stats.get("stages", [])} if isinstance(stats, dict) else {}
    return {
        "documents_out": sum(f.get("rows", 0) for f in manifest.get("files", [])),
        "tokens_out": sum(f.get("tokens", 0) for f in manifest.get("files", [])),
        "read_docs_out": stages.get("read", {}).get("docs_out"),
    }


def report(
    name: str, code: int, seconds: float, peaks: dict[tuple[int, str], dict], out: Path
) -> dict:
    rows = sorted(peaks.values(), key=lambda e: -e["rss"])
    print(f"\n== {name}: exit {code}, {seconds:.0f} s wall")
    try:
        summary = _summary(out)
        print(f"   output: {summary['documents_out']} documents, {summary['tokens_out']:,} tokens")
    except (OSError, ValueError, KeyError) as err:
        summary = {"error": str(err)}
    print(f"   {'peak RSS':>10}  process")
    for row in rows[:12]:
        print(f"   {row['rss'] / MIB:8.0f} MB  {row['label']}")
    worst = rows[0]["rss"] / MIB if rows else 0.0
    print(
        f"   max over {len({pid for pid, _ in peaks})} processes: {worst:.0f} MB (bound: 1024 MB)"
    )
    return {
        "name": name,
        "exit": code,
        "seconds": round(seconds, 1),
        "max_rss_mb": round(worst, 1),
        "processes": [{"label": e["label"], "rss_mb": round(e["rss"] / MIB, 1)} for e in rows],
        **summary,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=10_000, help="long documents in the file")
    ap.add_argument("--words", type=int, default=80_000, help="words per long document")
    ap.add_argument("--work-dir", default="/tmp/dataproc-memory-long-docs")
    ap.add_argument(
        "--crawl-file", default="", help="a normal crawl file to measure too (e.g. dev-bench)"
    )
    ap.add_argument("--workers", type=int, default=1, help="--workers of the runs")
    ap.add_argument("--interval", type=float, default=0.05, help="RSS sampling period (s)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    # Long pages take trafilatura seconds each: measure memory, not the default time limit.
    extra = [
        "--workers",
        str(args.workers),
        "--set",
        "extract.timeout_seconds=120",
        "--set",
        "extract.timeout_seconds_per_mib=120",
    ]
    results = []
    long_warc = work / f"long-{args.docs}x{args.words}.warc.gz"
    if args.docs > 0:  # --docs 0: only the crawl file
        if not long_warc.exists():
            t0 = time.time()
            size = write_long_doc_warc(long_warc, args.docs, args.words)
            print(f"wrote {long_warc} ({size / MIB:.0f} MB) in {time.time() - t0:.0f} s")
        out = work / "out-long"
        code, secs, peaks = measure_run([str(long_warc)], out, extra, args.interval)
        results.append(
            report(f"{args.docs} documents of {args.words} words", code, secs, peaks, out)
        )
    if args.crawl_file:
        code, secs, peaks = measure_run([args.crawl_file], work / "out-crawl", extra, args.interval)
        results.append(
            report(
                f"normal crawl file {Path(args.crawl_file).name}",
                code,
                secs,
                peaks,
                work / "out-crawl",
            )
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["exit"] == 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
