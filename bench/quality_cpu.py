"""CPU time of the quality stages (Gopher repetition, Gopher quality, C4, FineWeb) on real pages.

    PYTHONPATH=. /work/venv/bin/python bench/quality_cpu.py /path/to/dev-bench.warc.gz \
        --cache /tmp/dev-bench-texts.json [--repeats 5]

The pages are extracted as in ``bench/pii_speed.py`` (same ``--cache`` file). Every pass
builds fresh documents (the C4 stage rewrites text) and runs them through the stages of
``quality_stages`` in order, as phase 1 does, dropping a document at its first reject; the
best **CPU** time of ``--repeats`` passes is reported, with the kept count (which must not
change between two versions of the code). To compare versions, run it once per checkout
(``PYTHONPATH=OLD`` then ``PYTHONPATH=NEW``), alternating, on the same cache.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pii_speed import page_texts


def measure(texts: list[str]) -> tuple[float, int]:
    """CPU seconds of one pass of the quality stages over ``texts``, and documents kept."""
    from dataproc.document import Document, Reject
    from dataproc.stages.quality import QualityConfig, quality_stages

    stages = quality_stages(QualityConfig())
    for s in stages:
        s.setup()
    docs = [
        Document(id=str(i), url="http://x/", source="bench", text=t, language="en")
        for i, t in enumerate(texts)
    ]
    kept = 0
    start = time.process_time()
    for doc in docs:
        result: Document | Reject = doc
        for stage in stages:
            result = stage.process(result)
            if isinstance(result, Reject):
                break
        else:
            kept += 1
    return time.process_time() - start, kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("warc")
    parser.add_argument("--cache", help="JSON file holding the extracted texts")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    texts = page_texts(args.warc, args.cache)
    import dataproc

    best, kept = float("inf"), 0
    for _ in range(args.repeats):
        seconds, kept = measure(texts)
        best = min(best, seconds)
    where = os.path.dirname(os.path.dirname(os.path.abspath(dataproc.__file__)))
    print(
        f"{where}: {len(texts)} documents, {kept} kept; quality stages best of "
        f"{args.repeats}: {best:.3f} s CPU ({best / max(len(texts), 1) * 1e3:.3f} ms/doc)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
