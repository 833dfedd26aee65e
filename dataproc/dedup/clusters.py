"""Phase 2 of dedup, orchestrated: band keys → verified edges → components → removed docs.

Every step is a batch of independent tasks whose memory is bounded by ``dedup.task_memory``
whatever the corpus size: the number of tasks is derived from row and edge counts. Steps
(see the modules for the details):

1. ``dedup-buckets`` (``dataproc.dedup.edges``): T key ranges of the band files; candidate
   groups verified where found; one edge file and one exact-group file per task.
2. ``dedup-components`` (``dataproc.dedup.components``): large-star / small-star rounds over
   P node ranges until the edges are stars around each component's minimum — or, when all
   edges fit in one task, one union-find.
3. ``dedup-removed``: per node range, the removal file of each of this run's inputs.

Keep rule: each connected component of *verified* edges keeps its smallest doc_index and
removes every other document. Guarantee: a removed document is linked to the kept one by a
chain of verified pairs (each pair's 8-bit MinHash sketches agree on ≥ ``min_similarity`` of
positions), not necessarily directly similar to the kept one (docs/architecture.md).

The orchestration is the same function for the Ray driver, ``dataproc eval dedup``, the
benchmark and the tests: only the ``execute`` callable differs (Ray tasks or a plain loop).
The result does not depend on T, P or task order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dataproc.dedup.components import (
    EDGE_ROW_BYTES,
    NODE_BYTES,
    REASON_EXACT,
    REASON_NEAR,
    finish_range,
    size_range,
    star_round,
)
from dataproc.dedup.config import DedupConfig
from dataproc.dedup.edges import band_row_bytes, find_bucket_edges
from dataproc.dedup.results import BucketResult, RangeResult
from dataproc.errors import DedupError
from dataproc.io.layout import DedupLayout

__all__ = [
    "REASON_EXACT",
    "REASON_NEAR",
    "BandSource",
    "ClusterSummary",
    "Execute",
    "local_execute",
    "plan_buckets",
    "run_phase2",
    "size_range",
]

Execute = Callable[[str, list[tuple[str, Callable[..., Any], tuple[Any, ...]]]], dict[str, Any]]
"""``execute(step, [(unit, function, args), ...])`` → ``{unit: function(*args)}``.

Raises (any exception) if a unit failed: the Ray driver records the failure and stops."""

MAX_ROUNDS = 200
"""Star rounds before giving up (log² of any realistic component diameter is far below)."""


@dataclass(frozen=True)
class BandSource:
    """One band file taking part: this run's or an earlier output's (``--dedup-against``).

    ``gid`` is the input's position in the id space (earlier outputs first, in the order
    given, then this run): a document's phase-2 id is ``doc_index + (gid - input) << 32``, so
    the smallest id of a component is an earlier output's document whenever it has one.
    ``removed`` (earlier outputs only) lists documents that output did not keep.
    """

    path: str
    input_index: int
    gid: int
    rows: int
    removed: str | None = None


@dataclass
class ClusterSummary:
    """What dedup found in the whole run (for the manifest and the report).

    ``docs_in_clusters`` counts every document of a component with ≥ 2 documents (kept ones
    and earlier outputs' documents included); ``clusters`` is the number of such components;
    ``edges`` the verified duplicate pairs; ``pairs_rejected`` LSH candidate pairs whose
    sketches disagreed (verification); ``removed`` this run's removed documents by reason.
    """

    docs_in_clusters: int = 0
    clusters: int = 0
    edges: int = 0
    candidate_pairs: int = 0
    pairs_rejected: int = 0
    removed: dict[str, int] = field(default_factory=lambda: {REASON_EXACT: 0, REASON_NEAR: 0})
    size_histogram: dict[str, int] = field(default_factory=dict)
    max_cluster_size: int = 0
    tasks: dict[str, int] = field(default_factory=dict)

    @property
    def docs_removed(self) -> int:
        return sum(self.removed.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "docs_in_clusters": self.docs_in_clusters,
            "clusters": self.clusters,
            "edges": self.edges,
            "candidate_pairs": self.candidate_pairs,
            "pairs_rejected": self.pairs_rejected,
            "docs_removed": self.docs_removed,
            "removed": dict(sorted(self.removed.items())),
            "size_histogram": dict(sorted(self.size_histogram.items(), key=_hist_order)),
            "max_cluster_size": self.max_cluster_size,
            "tasks": dict(self.tasks),
        }


def _hist_order(item: tuple[str, int]) -> int:
    return int(item[0].split("-")[0])


def local_execute(
    step: str, calls: list[tuple[str, Callable[..., Any], tuple[Any, ...]]]
) -> dict[str, Any]:
    """Run the units one after the other in this process (eval, tests, benchmarks)."""
    return {unit: fn(*args) for unit, fn, args in calls}


def plan_buckets(total_rows: int, config: DedupConfig) -> list[tuple[int, int]]:
    """Key ranges of the bucket tasks: enough that each holds ≤ ``task_memory`` bytes."""
    from dataproc.dedup.buckets import KEY_SPACE

    need = math.ceil(total_rows * band_row_bytes(config.num_perm) / config.task_memory)
    t = max(1, config.num_buckets, need)
    return [(KEY_SPACE * i // t, KEY_SPACE * (i + 1) // t) for i in range(t)]


def _node_ranges(sources: list[BandSource], parts: int, id_space: int) -> list[tuple[int, int]]:
    """``parts`` contiguous input ranges of the id space with about equal band rows each."""
    weight = [0] * id_space
    for s in sources:
        weight[s.gid] += max(1, s.rows)
    total = sum(weight)
    bounds = [0]
    acc = 0
    for gid, w in enumerate(weight):
        acc += w
        if acc * parts >= total * len(bounds) and gid + 1 < id_space:
            bounds.append(gid + 1)
    bounds.append(id_space)
    ranges = sorted(set(itertools.pairwise(bounds)))
    return [(lo, hi) for lo, hi in ranges if hi > lo]


def run_phase2(
    sources: list[BandSource],
    offsets: list[int],
    run_inputs: list[int],
    dedup_dir: str,
    config: DedupConfig,
    execute: Execute = local_execute,
) -> ClusterSummary:
    """Run phase 2 over ``sources``; write ``{dedup_dir}/removed/{input:06d}.parquet``.

    ``offsets``: first gid of each ``--dedup-against`` output, then of this run (so
    ``offsets[-1]`` is this run's); ``run_inputs``: this run's input indices, each of which
    gets a removal file (empty when nothing is removed).
    """
    files = DedupLayout(dedup_dir)
    id_space = max([s.gid + 1 for s in sources] + [offsets[-1] + max(run_inputs, default=-1) + 1])
    srcs = [(s.path, s.gid - s.input_index, s.removed) for s in sorted(sources, key=_gid)]
    summary = ClusterSummary()
    if config.compact_inputs >= 2 and len(srcs) > config.compact_inputs:
        srcs = _compact(sources, dedup_dir, config, execute)
        summary.tasks["compact"] = len(srcs)
    buckets = plan_buckets(sum(s.rows for s in sources), config)
    edge_files = [files.edges(t) for t in range(len(buckets))]
    exact_files = [files.exact(t) for t in range(len(buckets))]
    calls = [
        (
            str(t),
            find_bucket_edges,
            (
                srcs,
                lo,
                hi,
                edge_files[t],
                exact_files[t],
                config.num_perm,
                config.min_similarity,
                config.task_memory,
            ),
        )
        for t, (lo, hi) in enumerate(buckets)
    ]
    stats: dict[str, BucketResult] = execute("dedup-buckets", calls)
    summary.edges = sum(s.edges for s in stats.values())
    summary.candidate_pairs = sum(s.pairs_checked for s in stats.values())
    summary.pairs_rejected = sum(s.pairs_rejected for s in stats.values())
    summary.tasks["buckets"] = len(buckets)

    parts = math.ceil(2 * summary.edges * EDGE_ROW_BYTES / config.task_memory)
    removed_dir = dedup_dir
    if parts <= 1:
        args = (
            edge_files,
            exact_files,
            0,
            id_space,
            offsets,
            run_inputs,
            removed_dir,
            False,
            config.task_memory,
        )
        results = execute("dedup-removed", [("all", finish_range, args)])
        summary.tasks["components"] = 1
        summary.tasks["star_rounds"] = 0
    else:
        # Star tasks hold per-node state for their range (not its edges: those stream), and
        # a range's nodes are documents of its inputs, at most band rows / bands of them.
        docs = sum(s.rows for s in sources) // max(1, config.bands)
        parts = max(parts, math.ceil(docs * NODE_BYTES / config.task_memory))
        ranges = _node_ranges(sources, parts, id_space)
        current, rounds = star_components(
            edge_files, ranges, dedup_dir, execute, config.task_memory
        )
        results = execute(
            "dedup-removed",
            [
                (
                    str(q),
                    finish_range,
                    (
                        current,
                        exact_files,
                        lo,
                        hi,
                        offsets,
                        run_inputs,
                        removed_dir,
                        True,
                        config.task_memory,
                    ),
                )
                for q, (lo, hi) in enumerate(ranges)
            ],
        )
        summary.tasks["components"] = len(ranges)
        summary.tasks["star_rounds"] = rounds
    ranges_done: list[RangeResult] = list(results.values())
    for part in ranges_done:
        summary.clusters += part.clusters
        summary.docs_in_clusters += part.docs_in_clusters
        summary.max_cluster_size = max(summary.max_cluster_size, part.max_cluster_size)
        for k, v in part.size_histogram.items():
            summary.size_histogram[k] = summary.size_histogram.get(k, 0) + v
        for k, v in part.removed.items():
            summary.removed[k] += v
    return summary


def _compact(
    sources: list[BandSource], dedup_dir: str, config: DedupConfig, execute: Execute
) -> list[tuple[str, int, str | None]]:
    """Merge the band files of every ``compact_inputs`` consecutive inputs into one file."""
    from dataproc.dedup.edges import compact_band_files

    ordered = sorted(sources, key=_gid)
    size = config.compact_inputs
    calls = []
    out: list[tuple[str, int, str | None]] = []
    for b in range(0, len(ordered), size):
        batch = ordered[b : b + size]
        rows = sum(s.rows for s in batch)
        # Merging holds a chunk as read, concatenated, sorted and as an Arrow table: ~2x a
        # bucket task's bytes per row.
        need = rows * 2 * band_row_bytes(config.num_perm)
        chunks = max(1, math.ceil(need / config.task_memory))
        path = DedupLayout(dedup_dir).compacted(b // size)
        srcs = [(s.path, s.gid - s.input_index, s.removed) for s in batch]
        calls.append(
            (
                str(b // size),
                compact_band_files,
                (srcs, path, config.num_perm, config.bands, chunks, config.task_memory),
            )
        )
        out.append((path, 0, None))
    execute("dedup-compact", calls)
    return out


def star_components(
    edge_files: list[str],
    ranges: list[tuple[int, int]],
    dedup_dir: str,
    execute: Execute,
    task_memory: int,
) -> tuple[list[str], int]:
    """Large-star/small-star rounds over the input ``ranges`` until the edges are min-stars.

    Returns the files holding the min-star edges (one per range: the last large-star round's
    output, in which every star edge is written once, by its centre's task) and the number of
    large-star rounds run. Files of finished rounds are deleted as soon as the next round is
    written (the bucket tasks' ``edge_files`` are kept).
    """
    from dataproc.io import fs

    files = DedupLayout(dedup_dir)
    current, rounds = edge_files, 0
    while True:
        if rounds >= MAX_ROUNDS:
            raise DedupError(f"connected components did not converge in {MAX_ROUNDS} rounds")
        large = [files.star_round(rounds, "l", q) for q in range(len(ranges))]
        res = execute(
            f"dedup-components-{rounds}L",
            [
                (str(q), star_round, ("large", current, lo << 32, hi << 32, large[q], task_memory))
                for q, (lo, hi) in enumerate(ranges)
            ],
        )
        rounds += 1
        if current is not edge_files:
            for p in current:
                fs.remove(p)
        if sum(r.unstable for r in res.values()) == 0:
            # The input was min-stars already: a large-star round maps min-stars onto
            # themselves, each edge emitted once by its centre's task (no repeats).
            return large, rounds
        small = [files.star_round(rounds - 1, "s", q) for q in range(len(ranges))]
        execute(
            f"dedup-components-{rounds - 1}S",
            [
                (str(q), star_round, ("small", large, lo << 32, hi << 32, small[q], task_memory))
                for q, (lo, hi) in enumerate(ranges)
            ],
        )
        for p in large:
            fs.remove(p)
        current = small


def _gid(s: BandSource) -> int:
    return s.gid
