"""When phase 1 splits an input file into byte ranges, and where (``runner/ranges.py``).

A run with at least ``slots x split_ranges_per_slot`` input files keeps one task per file (a
90,000-file crawl is never split, and costs no request per file here). Otherwise every file
of at least two target ranges is cut, the target range being
``max(split_min_bytes, all input bytes / (slots x split_ranges_per_slot))``: one 150 MB file
on 2 workers becomes 8 ranges, forty such files on 64 workers 2 or 3 each. Only chains of
gzip members (per-record ``.warc.gz``/``.wet.gz``) are cut; plain, zstd and single-member gzip
files read whole (``split_points`` returns no point for them).
"""

from __future__ import annotations

import logging

from dataproc.config import PipelineConfig
from dataproc.io import fs
from dataproc.readers.spans import split_points
from dataproc.runner.plan import InputFile

log = logging.getLogger("dataproc")

MAX_RANGES = 1024
"""At most this many ranges per file (live progress numbers ranges in 12 bits)."""


def plan_splits(
    inputs: list[InputFile], config: PipelineConfig, slots: int
) -> dict[int, list[tuple[int, int | None]]]:
    """``{input index: [(start, end), ...]}`` for the inputs to read in ranges (end None: to
    the end of the file). Reads a few small pieces of each file it cuts, nothing else."""
    cfg = config.execution
    units = slots * cfg.split_ranges_per_slot
    if cfg.split_min_bytes is None or slots < 2 or not inputs or len(inputs) >= units:
        return {}
    sizes: dict[int, int] = {}
    for inp in inputs:
        try:
            sizes[inp.index] = fs.size(inp.path)  # remote: one request, few files here
        except (OSError, ValueError) as e:
            log.warning("%s: size unknown (%s); read whole", inp.path, e)
    target = max(cfg.split_min_bytes, sum(sizes.values()) // units)
    plans: dict[int, list[tuple[int, int | None]]] = {}
    for inp in inputs:
        size = sizes.get(inp.index, 0)
        n = min(size // target, MAX_RANGES)
        if n < 2:
            continue
        try:
            with fs.open_input(inp.path) as f:
                points = split_points(f, size, n)  # type: ignore[arg-type]
        except (OSError, ValueError) as e:
            log.warning("%s: not split (%s)", inp.path, e)
            continue
        if points:
            bounds: list[int | None] = [0, *points, None]
            plans[inp.index] = [
                (int(bounds[i] or 0), bounds[i + 1]) for i in range(len(bounds) - 1)
            ]
    return plans
