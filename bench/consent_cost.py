"""CPU cost of the consent and decontamination steps per page, next to the rest of phase 1.

    python bench/consent_cost.py /work/shared/corpus/bench/dev-bench.warc.gz \\
        --eval-sentences /work/shared/corpus/langid/sentences --json /tmp/consent.json

Runs the real phase-1 stage chain in this process (no Ray: stage seconds only) over every
page of the WARC, with ``consent`` (page signals + a robots index) and ``decontaminate`` on,
and reports each stage's CPU seconds (this process; extraction runs in-process here) per
1,000 pages read and the two steps' share of the whole chain's CPU. The robots index is built from generated robots.txt captures for every host of
the input: a third of them name an AI agent with Disallow rules (a far higher share than the
web's, so lookups and protego parses are exercised). The decontamination sets are the
sentences of ``--eval-sentences`` (JSONL items; 500 per language there) plus 200 passages cut
from the input's own pages (so matches happen).

Then a scaling measure of the robots index: ``--hosts N`` synthetic hosts (3 % naming an
agent) built into an index, with build time, peak RSS and bytes per host, for the whole-crawl
estimate in docs/operations.md. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _robots_warc(hosts: list[str], path: Path, share_naming: float, seed: int = 0) -> None:
    from tests.warc_builder import WarcBuilder

    rng = random.Random(seed)
    b = WarcBuilder()
    for h in hosts:
        if rng.random() < share_naming:
            body = (
                "User-agent: *\nDisallow: /cgi-bin/\n\nUser-agent: GPTBot\nDisallow: /\n\n"
                "User-agent: Google-Extended\nUser-agent: CCBot\nDisallow: /private/\n"
                + "".join(f"Disallow: /section-{k}/\n" for k in range(rng.randint(0, 40)))
            )
        else:
            body = "User-agent: *\nDisallow: /admin/\nSitemap: https://" + h + "/sitemap.xml\n"
        b.response(f"https://{h}/robots.txt", body, content_type="text/plain")
    b.write(path)


def stage_costs(warc: str, sentences: str | None, work: Path) -> dict[str, Any]:
    from urllib.parse import urlsplit

    from dataproc.config import build_config
    from dataproc.consent.prepare import prepare_run_indexes, resolve_index_paths
    from dataproc.document import Document
    from dataproc.readers.config import ReaderConfig
    from dataproc.readers.warc import read_warc
    from dataproc.runner.phase1 import build_filter_stages
    from dataproc.stages.base import run_stage
    from dataproc.stats import StatsSet

    read_stats = StatsSet()
    with open(warc, "rb") as f:
        pages: list[Document] = list(
            read_warc(
                f,
                source=warc,
                input_index=0,
                config=ReaderConfig(),
                stats=read_stats.get("read"),
                reject=lambda *a: None,
            )
        )
    hosts = sorted({(urlsplit(p.url).hostname or "").lower() for p in pages} - {""})
    robots = work / "robots.warc.gz"
    _robots_warc(hosts, robots, share_naming=1 / 3)
    evals = work / "evals.jsonl"
    rng = random.Random(1)
    with evals.open("w") as out:
        if sentences:
            for p in sorted(Path(sentences).glob("*.txt")):
                for line in p.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        out.write(json.dumps({"text": line}) + "\n")
        for _ in range(200):  # passages of the input's own pages: real matches
            html = rng.choice(pages).html
            words = [w for w in html.split() if w.isalpha()]
            if len(words) > 40:
                start = rng.randrange(len(words) - 30)
                out.write(json.dumps({"text": " ".join(words[start : start + 30])}) + "\n")
    config = build_config(
        {
            "output": str(work / "out"),
            "consent": {"robots": [str(robots)]},
            "decontaminate": {"sets": [{"name": "bench", "path": str(evals)}]},
            "extract": {"isolate": False},
        }
    )
    config = resolve_index_paths(config)
    t0 = time.process_time()
    prepare_run_indexes(config)
    index_seconds = time.process_time() - t0
    stages = build_filter_stages(config)
    cpu: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        # CPU seconds of this process (extraction runs in-process: extract.isolate=false).
        def wrapper(doc: Any) -> Any:
            t0 = time.process_time()
            try:
                return fn(doc)
            finally:
                cpu[name] = cpu.get(name, 0.0) + time.process_time() - t0

        return wrapper

    for stage in stages:
        stage.process = timed(stage.name, stage.process)  # type: ignore[method-assign]
    stats = StatsSet()
    docs: Any = iter(pages)
    for stage in stages:
        docs = run_stage(stage, docs, stats.get(stage.name), lambda *a: None)
    kept = sum(1 for _ in docs)
    for s in stages:
        s.close()
    per_k = 1000 / len(pages)
    rows = {name: round(sec * per_k, 3) for name, sec in cpu.items()}
    total = sum(cpu.values())
    ours = cpu.get("consent", 0.0) + cpu.get("decontaminate", 0.0)
    return {
        "pages": len(pages),
        "kept": kept,
        "hosts": len(hosts),
        "index_build_cpu_seconds": round(index_seconds, 2),
        "cpu_seconds_per_1000_pages": rows,
        "consent_plus_decontam_share": round(ours / total, 4),
        "dropped": {s.name: dict(s.dropped) for s in stats if s.dropped},
    }


def robots_scaling(n_hosts: int, work: Path) -> dict[str, Any]:
    from dataproc.consent.robots_index import RobotsIndex, build_robots_index

    hosts = [f"host{i}.example{i % 97}.com" for i in range(n_hosts)]
    path = work / "robots-scale.warc.gz"
    t0 = time.time()
    _robots_warc(hosts, path, share_naming=0.03)
    gen = time.time() - t0
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.time(), time.process_time()
    meta = build_robots_index([str(path)], ["GPTBot", "CCBot", "Google-Extended"], str(work / "ri"))
    build, build_cpu = time.time() - t0, time.process_time() - c0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    size = sum(f.stat().st_size for f in (work / "ri").iterdir())
    t0 = time.time()
    idx = RobotsIndex(str(work / "ri"))
    load = time.time() - t0
    t0 = time.time()
    for i in range(0, n_hosts, max(1, n_hosts // 20000)):
        idx.verdict(f"https://{hosts[i]}/private/x", hosts[i], ["GPTBot", "CCBot"])
    lookups = max(1, n_hosts // max(1, n_hosts // 20000))
    return {
        "hosts": n_hosts,
        "hosts_naming_agents": meta["hosts_naming_agents"],
        "robots_warc_bytes": path.stat().st_size,
        "generate_seconds": round(gen, 1),
        "build_seconds": round(build, 1),
        "build_cpu_seconds": round(build_cpu, 1),
        "build_hosts_per_cpu_second": round(n_hosts / max(build_cpu, 1e-9)),
        "build_peak_rss_mb_growth": round((rss1 - rss0) / 1024, 1),
        "index_bytes": size,
        "index_bytes_per_host": round(size / n_hosts, 1),
        "load_seconds": round(load, 2),
        "lookup_us": round((time.time() - t0) / lookups * 1e6, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("warc")
    ap.add_argument("--eval-sentences", default=None)
    ap.add_argument("--hosts", type=int, default=200_000)
    ap.add_argument("--json", default=None)
    ap.add_argument("--skip-stages", action="store_true", help="only the robots index scaling")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result = {
            "stages": None
            if args.skip_stages
            else stage_costs(args.warc, args.eval_sentences, work),
            "robots_index": robots_scaling(args.hosts, work),
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
        }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
