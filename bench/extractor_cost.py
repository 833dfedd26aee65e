"""CPU time per page of each extractor (trafilatura with dataproc's settings, resiliparse, ...).

    python bench/extractor_cost.py --warc /work/shared/corpus/bench/dev-bench.warc.gz \\
        --scrapinghub /work/shared/corpus/extraction_gold/scrapinghub_aeb \\
        --cleaneval /work/shared/corpus/extraction_gold/CleanPortalEval.tar.xz \\
        --systems dataproc resiliparse --json /tmp/extractor_cost.json

Every page is extracted in this process (``dataproc.eval.extraction``'s systems: the same
functions ``dataproc eval extraction`` scores), one system after the other, after one warm-up
page; CPU time (``time.process_time``) is taken per page, so other load on the machine barely
changes it. WARC pages are those the pipeline would hand to the extractor (reader and URL
filter survivors). Quality (P/R/F1) is ``dataproc eval extraction``'s job; this is the cost.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for p in (str(HERE.parent), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)


def warc_pages(paths: list[str]) -> list[str]:
    """HTML of the pages the pipeline would extract from ``paths``."""
    import os
    import pickle
    import tempfile

    from run_bench import collect_pages

    with tempfile.TemporaryDirectory() as tmp:
        f = os.path.join(tmp, "pages.pickle")
        collect_pages(paths, [], f)
        with open(f, "rb") as fh:
            pages: list[str] = pickle.load(fh)
    return pages


def cost(system: str, htmls: list[str]) -> dict[str, Any]:
    """CPU milliseconds per page of ``system`` over ``htmls``."""
    from dataproc.eval.extraction import _extractor

    fn = _extractor(system)
    fn("<html><body><article><p>warm up, warm up, warm up.</p></article></body></html>")
    times = []
    empty = 0
    for h in htmls:
        c = time.process_time()
        try:
            text = fn(h)
        except Exception:
            text = ""
        times.append(time.process_time() - c)
        empty += not text.strip()
    times.sort()
    return {
        "pages": len(times),
        "cpu_seconds": round(sum(times), 3),
        "cpu_ms_per_page_mean": round(1000 * statistics.fmean(times), 2) if times else None,
        "cpu_ms_per_page_median": round(1000 * times[len(times) // 2], 2) if times else None,
        "cpu_ms_per_page_p99": round(1000 * times[int(len(times) * 0.99)], 2) if times else None,
        "empty": empty,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warc", nargs="*", default=[], help="WARC files (pages as the pipeline)")
    ap.add_argument("--scrapinghub", help="scrapinghub_aeb folder")
    ap.add_argument("--cleaneval", help="CleanPortalEval folder or .tar.xz")
    ap.add_argument("--systems", nargs="+", default=["dataproc", "resiliparse"])
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args(argv)
    from dataproc.eval.extraction import load_cleaneval, load_scrapinghub

    sets: dict[str, list[str]] = {}
    if args.warc:
        sets["warc"] = warc_pages(args.warc)
    if args.scrapinghub:
        sets["scrapinghub"] = [p.html for p in load_scrapinghub(args.scrapinghub)]
    if args.cleaneval:
        sets["cleaneval"] = [p.html for p in load_cleaneval(args.cleaneval)]
    out: dict[str, Any] = {}
    print("| pages | system | pages | CPU s | CPU ms/page mean | median | p99 | empty |")
    print("|---|---|---|---|---|---|---|---|")
    for name, htmls in sets.items():
        out[name] = {}
        for system in args.systems:
            r = out[name][system] = cost(system, htmls)
            print(
                f"| {name} | {system} | {r['pages']} | {r['cpu_seconds']:.1f} | "
                f"{r['cpu_ms_per_page_mean']} | {r['cpu_ms_per_page_median']} | "
                f"{r['cpu_ms_per_page_p99']} | {r['empty']} |",
                flush=True,
            )
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
