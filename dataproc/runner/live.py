"""Live stage counters while shards are still running, and their export as Ray metrics.

A phase-1 task only returns its ``StageStats`` when its whole input file is done, which can take
many minutes. So each task also sends its partial (cumulative) stats every few seconds to one
small actor, ``LiveCounters``, that the driver creates per run (named after the output folder,
so tasks find it without extra arguments). The actor:

- keeps the latest partial stats of every unit still running, which the driver's ``Progress``
  adds to the finished units' stats to show live per-stage counts and rates;
- exports counters through ``ray.util.metrics`` so Ray's dashboard, its Prometheus endpoint
  and Grafana can chart the run (metric names below, all prefixed ``ray_`` by Ray's exporter).

Exported metrics (tags in brackets):
``dataproc_documents_in`` / ``dataproc_documents_out`` [stage], ``dataproc_documents_dropped``
[stage, reason], ``dataproc_bytes_in`` [stage], ``dataproc_tokens`` [], ``dataproc_units_done``
/ ``dataproc_units_total`` [phase] (gauges), ``dataproc_eta_seconds`` [phase] (gauge).
Counters only go up: a retried task's work is counted again (the final ``stats.json`` is exact).

Everything here is best effort: if the actor cannot be reached, the run goes on without live
counters (the final numbers never depend on this module).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from dataproc.stats import StatsSet

log = logging.getLogger("dataproc")

ACTOR_PREFIX = "dataproc-live-"
HEARTBEAT_SECONDS = 3.0
"""How often a running task sends its partial stats (seconds)."""


def actor_name(out_dir: str) -> str:
    """The run's actor name: the same in the driver and in every task of that run."""
    return ACTOR_PREFIX + hashlib.sha256(out_dir.encode()).hexdigest()[:16]


class LiveCounters:
    """Actor body: partial stats of running units plus Ray metrics. Created with ``start``."""

    def __init__(self) -> None:
        from ray.util import metrics

        self._partial: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._seen: dict[tuple[str, int], StatsSet] = {}
        self._docs_in = metrics.Counter(
            "dataproc_documents_in", "Documents entering a stage.", tag_keys=("stage",)
        )
        self._docs_out = metrics.Counter(
            "dataproc_documents_out", "Documents leaving a stage.", tag_keys=("stage",)
        )
        self._dropped = metrics.Counter(
            "dataproc_documents_dropped", "Documents dropped.", tag_keys=("stage", "reason")
        )
        self._bytes_in = metrics.Counter(
            "dataproc_bytes_in", "Bytes entering a stage (HTML for read).", tag_keys=("stage",)
        )
        self._tokens = metrics.Counter("dataproc_tokens", "Tokens written.")
        self._done = metrics.Gauge("dataproc_units_done", "Units finished.", tag_keys=("phase",))
        self._total = metrics.Gauge("dataproc_units_total", "Units in phase.", tag_keys=("phase",))
        self._eta = metrics.Gauge(
            "dataproc_eta_seconds", "Estimated seconds left.", tag_keys=("phase",)
        )

    def update(
        self, phase: str, unit: int, stats: list[dict[str, Any]], final: bool = False
    ) -> None:
        """Record a unit's cumulative stats so far (``final``: the unit is done, forget it)."""
        key = (phase, unit)
        new = StatsSet.from_list(stats)
        old = self._seen.get(key, StatsSet())
        self._export_delta(old, new)
        if final:
            self._partial.pop(key, None)
            self._seen.pop(key, None)
        else:
            self._partial[key] = stats
            self._seen[key] = new

    def _export_delta(self, old: StatsSet, new: StatsSet) -> None:
        for s in new:
            o = old.get(s.name) if s.name in old else None
            # A retried task starts again from zero: count its work from zero (never decrement).
            restarted = o is not None and s.docs_in < o.docs_in
            base_in = 0 if o is None or restarted else o.docs_in
            base_out = 0 if o is None or restarted else o.docs_out
            base_bytes = 0 if o is None or restarted else o.bytes_in
            tags = {"stage": s.name}
            _inc(self._docs_in, s.docs_in - base_in, tags)
            _inc(self._docs_out, s.docs_out - base_out, tags)
            _inc(self._bytes_in, s.bytes_in - base_bytes, tags)
            for reason, n in s.dropped.items():
                before = 0 if o is None or restarted else o.dropped.get(reason, 0)
                _inc(self._dropped, n - before, {"stage": s.name, "reason": reason})
            before_tok = 0 if o is None or restarted else o.counters.get("tokens", 0)
            _inc(self._tokens, s.counters.get("tokens", 0) - before_tok, None)

    def set_phase(self, phase: str, done: int, total: int, eta_seconds: float | None) -> None:
        """Export a phase's unit counts and ETA as gauges."""
        tags = {"phase": phase}
        self._done.set(done, tags=tags)
        self._total.set(total, tags=tags)
        self._eta.set(eta_seconds if eta_seconds is not None else -1.0, tags=tags)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Partial stats of every running unit, keyed ``"phase/unit"``."""
        return {f"{p}/{u}": s for (p, u), s in self._partial.items()}


def _is_timeout(e: BaseException) -> bool:
    """Ray's ``GetTimeoutError`` (and plain timeouts): the actor is slow, not gone."""
    return isinstance(e, TimeoutError) or "Timeout" in type(e).__name__ or "timed out" in str(e)


def _inc(counter: Any, value: float, tags: dict[str, str] | None) -> None:
    if value > 0:  # Ray counters refuse zero and negative increments
        counter.inc(value, tags=tags)


class LiveClient:
    """The driver's handle on the run's ``LiveCounters`` actor (all calls best effort)."""

    def __init__(self, ray: Any, handle: Any) -> None:
        self._ray = ray
        self._handle = handle
        self._warned = False

    @classmethod
    def start(cls, out_dir: str) -> LiveClient | None:
        """Create (or reuse) the run's actor; None when Ray is not running here."""
        try:
            import ray

            if not ray.is_initialized():
                return None
            actor_cls = ray.remote(num_cpus=0, max_restarts=1)(LiveCounters)
            handle = actor_cls.options(name=actor_name(out_dir), get_if_exists=True).remote()
            return cls(ray, handle)
        except Exception as e:
            log.warning("live stage counters are off: %s", e)
            return None

    def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as e:
            # A busy actor (Get timed out under load) is retried quietly at the next poll; a
            # warning would be printed over the live bar. The final numbers never need it.
            level = logging.DEBUG if self._warned or _is_timeout(e) else logging.WARNING
            log.log(level, "live stage counters unavailable: %s", e)
            self._warned = self._warned or level == logging.WARNING
            return None

    def final(self, phase: str, unit: int, stats: list[dict[str, Any]]) -> None:
        self._call(lambda: self._handle.update.remote(phase, unit, stats, True))

    def set_phase(self, phase: str, done: int, total: int, eta_seconds: float | None) -> None:
        self._call(lambda: self._handle.set_phase.remote(phase, done, total, eta_seconds))

    def snapshot(self, timeout_seconds: float = 2.0) -> dict[str, list[dict[str, Any]]] | None:
        """Partial stats of the running units; None when the actor did not answer in time
        (keep the previous snapshot: an empty one would make the counts drop)."""
        got = self._call(
            lambda: self._ray.get(self._handle.snapshot.remote(), timeout=timeout_seconds)
        )
        return None if got is None else dict(got)

    def stop(self) -> None:
        self._call(lambda: self._ray.kill(self._handle) if self._ray.is_initialized() else None)


def task_heartbeat(
    out_dir: str, phase: str, unit: int, every_seconds: float = HEARTBEAT_SECONDS
) -> Callable[[StatsSet], None]:
    """For a running task: a cheap callable that sends partial stats at most every few seconds.

    Call it as often as you like (e.g. once per record); it returns immediately in between.
    Outside Ray, or when the run has no live actor, it does nothing.
    """
    handle = _find_actor(out_dir)
    if handle is None:
        return lambda stats: None
    last = [time.monotonic()]

    def beat(stats: StatsSet) -> None:
        now = time.monotonic()
        if now - last[0] < every_seconds:
            return
        last[0] = now
        with contextlib.suppress(Exception):  # live counters are optional: never fail a task
            handle.update.remote(phase, unit, stats.to_list(), False)

    return beat


def _find_actor(out_dir: str) -> Any:
    # Looked up once per task (one small request): a handle cached across tasks could point
    # at the actor of an earlier run into the same folder.
    try:
        import ray

        return ray.get_actor(actor_name(out_dir)) if ray.is_initialized() else None
    except Exception:
        return None
