"""What the operator sees while a run goes: a live bar on a terminal, log lines elsewhere.

The driver reports phase events (``start_phase``, ``unit_done``, ``unit_failed``, ``reused``,
``tick``, ``end_phase``, ``finish``). ``Progress`` adds the stats of finished units to the
partial stats that running tasks send to the run's ``LiveCounters`` actor (see ``live.py``), and
shows per-stage counts, documents/s, MB/s, tokens/s, units done/total and an ETA:

- ``bar``: a rich progress bar with a per-stage table under it (on a TTY);
- ``log``: one or two plain lines every ``progress_interval_seconds`` (``ray job logs``, CI);
- ``none``: silent.

It also appends a snapshot of the run's cumulative counters to ``OUT/logs/progress.jsonl``
every ``SNAPSHOT_SECONDS``; the report plots throughput over time from it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

from dataproc.config import ExecutionConfig
from dataproc.io import fs
from dataproc.io.layout import OutputLayout
from dataproc.io.markers import UnitMarker
from dataproc.runner.phases import Phase
from dataproc.stats import StatsSet

log = logging.getLogger("dataproc")

SNAPSHOT_SECONDS = 10.0
"""Seconds between two progress.jsonl snapshots."""
LIVE_POLL_SECONDS = 2.0
"""Seconds between two reads of the live actor's partial stats."""
BAR_REFRESH_SECONDS = 1.0
"""How often the driver wakes up to refresh a bar display."""

# Phases whose units are input files, and the stage whose counts measure their throughput.
_FILE_PHASES: dict[str, str] = {Phase.FILTER: "read", Phase.TOKENIZE: "tokenize"}


def format_duration(seconds: float) -> str:
    """``3725`` -> ``1h02m``, ``95`` -> ``1m35s``, ``7`` -> ``7s``."""
    s = int(max(0, seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class Progress:
    """Counts finished units per phase, documents and tokens, and shows rates and an ETA.

    ``mode`` is ``bar``, ``log`` or ``none``; ``interval`` the seconds between log lines;
    ``out_dir`` (optional) where ``logs/progress.jsonl`` is written; ``live`` whether to start
    the live-counters actor when Ray is running.
    """

    def __init__(
        self,
        mode: str = "log",
        interval: float = 10.0,
        total_inputs: int = 0,
        out_dir: str | None = None,
        live: bool = True,
    ) -> None:
        self.mode = mode
        self.log_interval = interval
        # The driver waits at most this long for a task before calling tick().
        self.interval = min(interval, BAR_REFRESH_SECONDS) if mode == "bar" else interval
        self.total_inputs = total_inputs
        self.out_dir = out_dir
        self.phase_total: dict[str, int] = {}
        self.phase_done: dict[str, int] = {}
        self.phase_failed: dict[str, int] = {}
        self.phase_started: dict[str, float] = {}
        self.current_phase: str | None = None
        self.reused_stats = StatsSet()
        self.done_stats = StatsSet()  # units finished by this run
        self.partial_stats = StatsSet()  # units still running (from the live actor)
        self._done_units: set[str] = set()
        self._live_snapshot: dict[str, list[dict[str, Any]]] = {}
        # Highest (in, out, dropped) shown per stage: what the operator sees never goes down,
        # even when a retried task starts its partial counts again from zero.
        self._shown: dict[str, tuple[int, int, int]] = {}
        self.started = time.time()
        self._last_print = 0.0
        self._last_poll = 0.0
        self._last_snapshot = 0.0
        self._snapshots: list[dict[str, Any]] | None = None
        self._want_live = live
        self._live: Any = None
        self._bar: Any = None
        self._task: Any = None

    @classmethod
    def from_config(
        cls, cfg: ExecutionConfig, total_inputs: int, out_dir: str | None = None
    ) -> Progress:
        """Pick the display from ``execution.progress`` (``auto``: bar on a TTY, else log)."""
        mode = cfg.progress
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        return cls(mode, cfg.progress_interval_seconds, total_inputs, out_dir)

    # -- what has been counted ----------------------------------------------------------
    @property
    def stats(self) -> StatsSet:
        """Everything counted so far: reused + finished + running units."""
        return self.reused_stats + self.run_stats

    @property
    def run_stats(self) -> StatsSet:
        """What this run did itself (finished and running units, not reused ones)."""
        return self.done_stats + self.partial_stats

    # -- phase events -------------------------------------------------------------------
    def reused(self, phase: str, n: int, markers: Iterable[UnitMarker]) -> None:
        for m in markers:
            self.reused_stats = self.reused_stats + m.stats_set()
        if n:
            self._emit(f"{phase}: {n} input file(s) already done in an earlier run; reusing them")

    def start_phase(self, phase: str, total: int) -> None:
        self.phase_total[phase] = total
        self.phase_done[phase] = 0
        self.phase_failed[phase] = 0
        self.phase_started[phase] = time.time()
        self.current_phase = phase
        if self._want_live and self._live is None and self.out_dir and total:
            from dataproc.runner.live import LiveClient

            self._live = LiveClient.start(self.out_dir)
            self._want_live = self._live is not None
        if total == 0 or self.mode == "none":
            return
        if self.mode == "bar":
            self._start_bar(phase, total)
        else:
            self._emit(f"{phase}: {total} unit(s) to process")

    def unit_done(self, phase: str, result: object) -> None:
        """One unit finished; a per-input marker's stats count from now on (other results,
        such as a dedup step's, only advance the unit count)."""
        self.phase_done[phase] = self.phase_done.get(phase, 0) + 1
        if isinstance(result, UnitMarker):
            self.done_stats = self.done_stats + result.stats_set()
            unit = result.progress_unit
            self._done_units.add(f"{phase}/{unit}")
            # Its final stats replace its partial ones now, not at the next poll: counted
            # twice until then, the totals would drop back when the poll comes.
            self._recount_partial()
            if self._live is not None:
                self._live.final(phase, unit, result.stats)
        self._update(phase)

    def unit_failed(self, phase: str, unit: str, error: str) -> None:
        self.phase_done[phase] = self.phase_done.get(phase, 0) + 1
        self.phase_failed[phase] = self.phase_failed.get(phase, 0) + 1
        self._done_units.add(f"{phase}/{unit}")
        self._emit(f"{phase}: unit {unit} FAILED: {error}")
        self._update(phase)

    def tick(self) -> None:
        """Called by the driver at least every ``interval`` seconds while a phase runs."""
        now = time.time()
        if self._live is not None and now - self._last_poll >= LIVE_POLL_SECONDS:
            self._last_poll = now
            self._poll_live()
        if self.current_phase is not None:
            self._update(self.current_phase)
        if now - self._last_snapshot >= SNAPSHOT_SECONDS:
            self._snapshot(now)

    def end_phase(self, phase: str) -> None:
        self.partial_stats = StatsSet()
        if self._bar is not None:
            self._bar.update(self._task, completed=self.phase_done.get(phase, 0))
            self._bar.stop()
            self._bar = None
        elif self.mode == "log" and self.phase_total.get(phase):
            self._emit(self.line(phase))
        if self._live is not None:
            self._live.set_phase(
                phase, self.phase_done.get(phase, 0), self.phase_total.get(phase, 0), 0.0
            )
        self._snapshot(time.time())
        self.current_phase = None

    def finish(self, result: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._snapshot(time.time())

    # -- live counters ------------------------------------------------------------------
    def _poll_live(self) -> None:
        snap = self._live.snapshot()
        if snap is not None:  # None: no answer in time; keep the last counts
            self._live_snapshot = snap
            self._recount_partial()
        phase = self.current_phase
        if phase is not None:
            self._live.set_phase(
                phase,
                self.phase_done.get(phase, 0),
                self.phase_total.get(phase, 0),
                self.eta_seconds(phase),
            )

    def _recount_partial(self) -> None:
        partial = StatsSet()
        for key, stats in self._live_snapshot.items():
            if key not in self._done_units:  # its final stats are already in done_stats
                partial = partial + StatsSet.from_list(stats)
        self.partial_stats = partial

    # -- numbers ------------------------------------------------------------------------
    def stage_counts(self) -> list[tuple[str, int, int, int, str]]:
        """Per stage: name, documents in, out, dropped (never lower than shown before), and
        the top drop reason."""
        rows = []
        for s in self.stats:
            before = self._shown.get(s.name, (0, 0, 0))
            now = (s.docs_in, s.docs_out, s.docs_dropped)
            shown = (max(before[0], now[0]), max(before[1], now[1]), max(before[2], now[2]))
            self._shown[s.name] = shown
            top = s.dropped.most_common(1)
            rows.append((s.name, *shown, f"{top[0][0]} {top[0][1]:,}" if top else ""))
        return rows

    def eta_seconds(self, phase: str) -> float | None:
        """Seconds left in ``phase`` at the pace so far (None until one unit is done)."""
        done, total = self.phase_done.get(phase, 0), self.phase_total.get(phase, 0)
        if not 0 < done < total:
            return 0.0 if total and done >= total else None
        elapsed = time.time() - self.phase_started.get(phase, self.started)
        return elapsed / done * (total - done)

    def rates(self, phase: str) -> dict[str, float]:
        """Documents/s, MB/s and tokens/s of this run's own work in ``phase``."""
        elapsed = max(time.time() - self.phase_started.get(phase, self.started), 1e-6)
        stats = self.run_stats
        out: dict[str, float] = {}
        stage = _FILE_PHASES.get(phase)
        if stage and stage in stats:
            s = stats.get(stage)
            out["docs_per_s"] = (s.docs_out if stage == "read" else s.docs_in) / elapsed
            if stage == "read":
                out["mb_per_s"] = s.bytes_in / elapsed / 1e6
            if s.counters.get("tokens"):
                out["tokens_per_s"] = s.counters["tokens"] / elapsed
        return out

    def rate_text(self, phase: str) -> str:
        r = self.rates(phase)
        parts = []
        if "docs_per_s" in r:
            parts.append(f"{r['docs_per_s']:,.0f} docs/s")
        if "mb_per_s" in r:
            parts.append(f"{r['mb_per_s']:,.1f} MB/s")
        if "tokens_per_s" in r:
            parts.append(f"{r['tokens_per_s']:,.0f} tokens/s")
        return ", ".join(parts)

    def line(self, phase: str) -> str:
        """One status line: units done/total, rates, failures, ETA."""
        done, total = self.phase_done.get(phase, 0), self.phase_total.get(phase, 0)
        parts = [f"{phase}: {done}/{total} done"]
        rate = self.rate_text(phase)
        if rate:
            parts.append(rate)
        failed = self.phase_failed.get(phase, 0)
        if failed:
            parts.append(f"{failed} FAILED")
        eta = self.eta_seconds(phase)
        if eta is not None and done < total:
            parts.append(f"ETA {format_duration(eta)}")
        return " | ".join(parts)

    def stage_line(self) -> str:
        """Live per-stage counts: documents out of each stage (and dropped) so far."""
        parts = []
        for name, _docs_in, docs_out, dropped, _top in self.stage_counts():
            if name == "minhash":
                continue
            drop = f" (-{dropped:,})" if dropped else ""
            parts.append(f"{name} {docs_out:,}{drop}")
        return "stages: " + " → ".join(parts) if parts else ""

    # -- rendering ----------------------------------------------------------------------
    def _start_bar(self, phase: str, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress
        from rich.table import Table

        owner = self

        class _StageBar(RichProgress):
            """A progress bar with the live per-stage table under it."""

            def get_renderables(self) -> Any:
                yield self.make_tasks_table(self.tasks)
                table = Table(box=None, padding=(0, 2), show_edge=False)
                for col in ("stage", "in", "out", "dropped", "top reason"):
                    table.add_column(
                        col, justify="left" if col in ("stage", "top reason") else "right"
                    )
                for name, docs_in, docs_out, dropped, top in owner.stage_counts():
                    table.add_row(name, f"{docs_in:,}", f"{docs_out:,}", f"{dropped:,}", top)
                if table.row_count:
                    yield table

        self._bar = _StageBar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(phase, total=total, rate="")

    def _update(self, phase: str) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(
                self._task, completed=self.phase_done.get(phase, 0), rate=self.rate_text(phase)
            )
            return
        now = time.time()
        if self.mode == "log" and now - self._last_print >= self.log_interval:
            self._last_print = now
            self._emit(self.line(phase))
            if phase in _FILE_PHASES:
                stages = self.stage_line()
                if stages:
                    self._emit("  " + stages)

    def _emit(self, msg: str) -> None:
        if self.mode == "none":
            return
        print(f"[dataproc] {msg}", file=sys.stderr, flush=True)

    # -- progress.jsonl -----------------------------------------------------------------
    def snapshot_record(self, now: float) -> dict[str, Any]:
        """This run's cumulative counters at ``now`` (one line of progress.jsonl)."""
        stats = self.run_stats
        read = stats.get("read") if "read" in stats else None
        tok = stats.get("tokenize") if "tokenize" in stats else None
        phase = self.current_phase
        rec: dict[str, Any] = {
            "t": round(now, 3),
            "phase": phase,
            "done": self.phase_done.get(phase, 0) if phase else None,
            "total": self.phase_total.get(phase, 0) if phase else None,
            "docs_read": read.docs_out if read else 0,
            "bytes_read": read.bytes_in if read else 0,
            "docs_tokenized": tok.docs_out if tok else 0,
            "tokens": int(tok.counters.get("tokens", 0)) if tok else 0,
        }
        return rec

    def _snapshot(self, now: float) -> None:
        if not self.out_dir:
            return
        self._last_snapshot = now
        layout = OutputLayout(self.out_dir)
        path = layout.progress_log
        try:
            if self._snapshots is None:
                # Keep the history of earlier (interrupted) runs into this folder.
                self._snapshots = []
                if fs.exists(path):
                    for line in fs.read_bytes(path).decode("utf-8", "replace").splitlines():
                        try:
                            self._snapshots.append(json.loads(line))
                        except json.JSONDecodeError:
                            continue
            self._snapshots.append(self.snapshot_record(now))
            fs.makedirs(layout.logs_dir)
            blob = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in self._snapshots)
            fs.write_bytes_atomic(path, blob.encode())
        except OSError as e:  # a full disk must not kill the run for a progress file
            log.warning("could not write %s: %s", path, e)
