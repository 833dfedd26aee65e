"""What each kind of phase-2 task returns to the driver: small typed counters, summed into the
run's ``ClusterSummary`` (``dataproc.dedup.clusters``). The data itself stays in files."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BucketResult:
    """One ``dedup-buckets`` task: verified edges written, LSH candidate pairs checked and
    rejected by their sketches."""

    edges: int
    pairs_checked: int
    pairs_rejected: int


@dataclass(frozen=True)
class StarResult:
    """One large- or small-star task: edges written, and nodes of its input that are not yet
    leaves or centres of a min-star (0 everywhere: the rounds have converged)."""

    unstable: int
    edges: int


@dataclass
class RangeResult:
    """One ``dedup-removed`` task over a node range: its components and this run's removals."""

    clusters: int = 0
    docs_in_clusters: int = 0
    max_cluster_size: int = 0
    size_histogram: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)  # reason -> this run's documents
