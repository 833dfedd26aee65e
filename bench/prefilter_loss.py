"""The pre-extraction gate's loss and savings, measured against the same run without it.

    python bench/prefilter_loss.py /work/shared/corpus/bench/dev-bench.warc.gz \\
        /work/shared/corpus/warc/*/*.warc* --config pipelines/commoncrawl_en.yaml --json /tmp/p.json

Every page of every input goes through the real phase-1 stages (in this process, no Ray) with
the gate **off**; next to that the gate (``dataproc.stages.prefilter``) judges the same page
at its place in the chain. Phase-1 stages judge each page on its own, so the run with the gate
on keeps exactly the pages kept without it minus those the gate drops: the loss is that
intersection, listed page by page with the gate's reason. Dedup then works on either kept set;
a lost page can only make a near-duplicate of it survive in its place.

Reports, per input and in total: pages reaching the gate, gate drops (by reason), pages the
full run keeps, pages lost (count, share, URL, gate detail, the language the full run found),
and CPU: the gate's seconds and the extraction seconds it saves (the pages it drops,
extracted again in this process to time them). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def measure(path: str, config: Any) -> dict[str, Any]:
    from dataproc.document import Document, Reject
    from dataproc.io import fs
    from dataproc.readers.warc import read_warc
    from dataproc.runner.phase1 import build_filter_stages
    from dataproc.stages.extract import extract_text
    from dataproc.stages.prefilter import Prefilter
    from dataproc.stats import StatsSet

    off = config.model_copy(
        update={"prefilter": config.prefilter.model_copy(update={"enabled": False})}
    )
    stages = build_filter_stages(off)
    gopher = config.quality.gopher_quality
    gate = Prefilter(
        config.prefilter,
        config.langid.languages,
        gopher.min_words if config.quality.enabled and gopher.enabled else 0,
        config.langid.model_path,
    )
    gate.setup()
    stats = StatsSet()
    reached = kept = 0
    drops: dict[str, int] = {}
    lost: list[dict[str, Any]] = []
    gate_seconds = 0.0
    saved_extract = 0.0
    with fs.open_input(path) as f:
        for doc in read_warc(
            f,
            source=path,
            input_index=0,
            config=config.reader,
            stats=stats.get("read"),
            reject=lambda *a: None,
        ):
            verdict: Reject | None = None
            html = doc.html  # the extract stage frees doc.html
            fate: Document | Reject = doc
            for stage in stages:
                if stage.name == "extract":
                    reached += 1
                    t0 = time.process_time()
                    g = gate.process(
                        Document(id=doc.id, url=doc.url, source=doc.source, html=doc.html)
                    )
                    gate_seconds += time.process_time() - t0
                    if isinstance(g, Reject):
                        verdict = g
                        drops[g.reason] = drops.get(g.reason, 0) + 1
                    fate = stage.process(fate)  # type: ignore[arg-type]
                    if verdict is not None:
                        # The stage extracts in a child process: time the same call here.
                        t0 = time.process_time()
                        extract_text(html, config.extract)
                        saved_extract += time.process_time() - t0
                else:
                    fate = stage.process(fate)  # type: ignore[arg-type]
                if isinstance(fate, Reject):
                    break
            if isinstance(fate, Document):
                kept += 1
                if verdict is not None:
                    lost.append(
                        {
                            "url": doc.url,
                            "gate": f"{verdict.reason}: {verdict.detail}",
                            "language": fate.language,
                            "words": len(fate.text.split()),
                        }
                    )
    for s in stages:
        s.close()
    return {
        "input": path,
        "reached_gate": reached,
        "gate_drops": drops,
        "kept_without_gate": kept,
        "lost": lost,
        "lost_share": round(len(lost) / kept, 5) if kept else 0.0,
        "gate_cpu_seconds": round(gate_seconds, 2),
        "extract_cpu_seconds_saved": round(saved_extract, 2),
    }


def main() -> None:
    from dataproc.config import load_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--config", default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    config = load_config(args.config, args.overrides)
    rows = [measure(p, config) for p in args.inputs]
    kept = sum(r["kept_without_gate"] for r in rows)
    lost = sum(len(r["lost"]) for r in rows)
    total = {
        "kept_without_gate": kept,
        "lost": lost,
        "lost_share": round(lost / kept, 5) if kept else 0.0,
        "reached_gate": sum(r["reached_gate"] for r in rows),
        "gate_drops": sum(sum(r["gate_drops"].values()) for r in rows),
        "gate_cpu_seconds": round(sum(r["gate_cpu_seconds"] for r in rows), 2),
        "extract_cpu_seconds_saved": round(sum(r["extract_cpu_seconds_saved"] for r in rows), 2),
    }
    for r in rows:
        print(
            f"{Path(r['input']).name}: reached {r['reached_gate']}, gate drops {r['gate_drops']}, "
            f"kept {r['kept_without_gate']}, lost {len(r['lost'])}"
        )
        for item in r["lost"]:
            print(f"    LOST {item}")
    print(json.dumps(total, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps({"total": total, "inputs": rows}, indent=2))


if __name__ == "__main__":
    main()
