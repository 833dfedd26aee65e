"""PII scrubbing time per document on real page text, optionally against another pii.py.

    /work/venv/bin/python bench/pii_speed.py /path/to/dev-bench.warc.gz \
        --cache /tmp/dev-bench-texts.json [--compare OLD_PII.py] [--repeats 3]

The WARC's pages are extracted with the pipeline's own reader and extractor (no Ray) and kept
when they reach ``extract.min_chars``; ``--cache`` stores the texts so later runs skip that
step. Then ``scrub`` runs over every text ``--repeats`` times and the best **CPU** time is
reported (the machine may be shared: CPU time of this process is far steadier than wall
time). ``--compare`` loads another version of ``dataproc/stages/pii.py`` (e.g. ``git show
OLD:dataproc/stages/pii.py > /tmp/old_pii.py``) and measures it in alternation with the
current one, so both see the same machine. Detections per kind are printed for each.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from collections import Counter
from types import ModuleType
from typing import Any


def page_texts(warc: str, cache: str | None) -> list[str]:
    """Extracted texts of ``warc`` (from ``cache`` when it exists, else written there)."""
    if cache and os.path.exists(cache):
        with open(cache, encoding="utf-8") as f:
            texts: list[str] = json.load(f)
        return texts
    from dataproc.eval.extraction import run_extractions
    from dataproc.readers.config import ReaderConfig
    from dataproc.readers.warc import read_warc
    from dataproc.stages.extract import ExtractConfig
    from dataproc.stats import StageStats

    with open(warc, "rb") as stream:
        html = [
            d.html
            for d in read_warc(
                stream,
                source=warc,
                input_index=0,
                config=ReaderConfig(),
                stats=StageStats("read"),
                reject=lambda *_: None,
            )
        ]
    min_chars = ExtractConfig().min_chars
    texts = [t for t in run_extractions("dataproc", html, 1) if len(t) >= min_chars]
    if cache:
        with open(cache, "w", encoding="utf-8") as f:
            json.dump(texts, f)
    return texts


def load_module(path: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"--compare {path}: cannot load it")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def measure(module: Any, texts: list[str]) -> tuple[float, dict[str, int]]:
    """CPU seconds of one ``scrub`` pass over ``texts``, and the detections per kind."""
    counts: Counter[str] = Counter()
    start = time.process_time()
    for text in texts:
        _, per_kind = module.scrub(text)
        counts.update(per_kind)
    return time.process_time() - start, dict(counts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("warc")
    parser.add_argument("--cache", help="JSON file holding the extracted texts")
    parser.add_argument("--compare", metavar="PII_PY", help="another pii.py to time alongside")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    texts = page_texts(args.warc, args.cache)
    from dataproc.stages import pii

    versions: dict[str, Any] = {"current": pii}
    if args.compare:
        versions["compare"] = load_module(args.compare, "_pii_compare")
    best = dict.fromkeys(versions, float("inf"))
    found: dict[str, dict[str, int]] = {}
    for _ in range(args.repeats):
        for name, module in versions.items():
            seconds, found[name] = measure(module, texts)
            best[name] = min(best[name], seconds)
    chars = sum(map(len, texts))
    print(f"{len(texts)} documents, {chars:,} characters; best of {args.repeats}, CPU time")
    for name in versions:
        per_doc = best[name] / max(len(texts), 1) * 1e3
        print(f"{name:8s} scrub {best[name]:.3f} s  {per_doc:.3f} ms/doc  {found[name]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
