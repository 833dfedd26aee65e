"""Per-stage counters that add up across shards and workers."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageStats:
    """What one stage saw: documents in / out, drops by reason, bytes, seconds.

    Invariant (checked by tests): ``docs_in == docs_out + sum(dropped.values())``.
    ``counters`` holds anything else worth reporting (e.g. ``pii_email``, ``payload_truncated``).
    ``seconds`` is wall-clock time in the stage; ``cpu_seconds`` the CPU time it used (its
    thread's, plus any child process working for it, e.g. the extraction sandbox): on a shared
    or oversubscribed machine only the CPU figure measures the stage's cost.
    """

    name: str
    docs_in: int = 0
    docs_out: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    counters: Counter[str] = field(default_factory=Counter)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] += n

    @contextmanager
    def timed(self) -> Iterator[None]:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start
            self.cpu_seconds += time.thread_time() - cpu

    def __add__(self, other: StageStats) -> StageStats:
        if other.name != self.name:
            raise ValueError(f"cannot add stats of {other.name!r} to {self.name!r}")
        return StageStats(
            name=self.name,
            docs_in=self.docs_in + other.docs_in,
            docs_out=self.docs_out + other.docs_out,
            dropped=self.dropped + other.dropped,
            bytes_in=self.bytes_in + other.bytes_in,
            bytes_out=self.bytes_out + other.bytes_out,
            seconds=self.seconds + other.seconds,
            cpu_seconds=self.cpu_seconds + other.cpu_seconds,
            counters=self.counters + other.counters,
        )

    @property
    def docs_dropped(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "docs_dropped": self.docs_dropped,
            "dropped": dict(sorted(self.dropped.items())),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "seconds": round(self.seconds, 6),
            "cpu_seconds": round(self.cpu_seconds, 6),
            "counters": dict(sorted(self.counters.items())),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StageStats:
        return cls(
            name=d["name"],
            docs_in=int(d.get("docs_in", 0)),
            docs_out=int(d.get("docs_out", 0)),
            dropped=Counter(d.get("dropped", {})),
            bytes_in=int(d.get("bytes_in", 0)),
            bytes_out=int(d.get("bytes_out", 0)),
            seconds=float(d.get("seconds", 0.0)),
            cpu_seconds=float(d.get("cpu_seconds", 0.0)),
            counters=Counter(d.get("counters", {})),
        )


class StatsSet:
    """Ordered collection of StageStats keyed by stage name; adds like its members."""

    def __init__(self, stages: list[StageStats] | None = None) -> None:
        self._stages: dict[str, StageStats] = {}
        for s in stages or []:
            self.add(s)

    def get(self, name: str) -> StageStats:
        if name not in self._stages:
            self._stages[name] = StageStats(name)
        return self._stages[name]

    def add(self, stats: StageStats) -> None:
        if stats.name in self._stages:
            self._stages[stats.name] = self._stages[stats.name] + stats
        else:
            self._stages[stats.name] = stats

    def __add__(self, other: StatsSet) -> StatsSet:
        out = StatsSet(list(self))
        for s in other:
            out.add(s)
        return out

    def __iter__(self) -> Iterator[StageStats]:
        return iter(self._stages.values())

    def __contains__(self, name: str) -> bool:
        return name in self._stages

    def to_list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self]

    @classmethod
    def from_list(cls, items: list[dict[str, Any]]) -> StatsSet:
        return cls([StageStats.from_dict(d) for d in items])


# WARC records that are never web pages (a Common Crawl file is 2/3 of them): counted by the
# reader, but listing them among "documents dropped" would drown the real drop reasons.
NON_PAGE_RECORDS = ("warcinfo", "request", "metadata", "conversion")


def page_stages(stages: Iterable[StageStats]) -> tuple[list[StageStats], int]:
    """The stages as the summary and the report show them: ``read`` counts web pages only (its
    request, metadata and warcinfo records are neither documents nor drops); plus how many
    records were left out."""
    import dataclasses

    shown, skipped = [], 0
    for s in stages:
        if s.name == "read":
            non_page = sum(s.dropped.get(r, 0) for r in NON_PAGE_RECORDS)
            skipped += non_page
            s = dataclasses.replace(
                s,
                docs_in=s.docs_in - non_page,
                dropped=Counter({r: n for r, n in s.dropped.items() if r not in NON_PAGE_RECORDS}),
            )
        shown.append(s)
    return shown, skipped
