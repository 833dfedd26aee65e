"""What the operator sees while a run goes: a bar on a terminal, log lines elsewhere."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

from dataproc.config import ExecutionConfig
from dataproc.stats import StatsSet

log = logging.getLogger("dataproc")


class Progress:
    """Counts finished units per phase, documents and tokens, and prints rates and an ETA."""

    def __init__(self, mode: str = "log", interval: float = 10.0, total_inputs: int = 0) -> None:
        self.mode = mode
        self.interval = interval
        self.total_inputs = total_inputs
        self.phase_total: dict[str, int] = {}
        self.phase_done: dict[str, int] = {}
        self.stats = StatsSet()
        self.started = time.time()
        self.phase_started: dict[str, float] = {}
        self._last_print = 0.0
        self._bar: Any = None
        self._task: Any = None

    @classmethod
    def from_config(cls, cfg: ExecutionConfig, total_inputs: int) -> Progress:
        mode = cfg.progress
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        return cls(mode, cfg.progress_interval_seconds, total_inputs)

    # -- phase events -------------------------------------------------------------------
    def reused(self, phase: str, n: int, markers: Iterable[dict[str, Any]]) -> None:
        for m in markers:
            self.stats = self.stats + StatsSet.from_list(m.get("stats", []))
        if n and self.mode != "none":
            self._emit(f"{phase}: {n} input file(s) already done in an earlier run; reusing them")

    def start_phase(self, phase: str, total: int) -> None:
        self.phase_total[phase] = total
        self.phase_done[phase] = 0
        self.phase_started[phase] = time.time()
        if total == 0 or self.mode == "none":
            return
        if self.mode == "bar":
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress as RichProgress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = RichProgress(
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
        else:
            self._emit(f"{phase}: {total} unit(s) to process")

    def unit_done(self, phase: str, result: Any) -> None:
        self.phase_done[phase] = self.phase_done.get(phase, 0) + 1
        if isinstance(result, dict) and "stats" in result:
            self.stats = self.stats + StatsSet.from_list(result["stats"])
        self._update(phase)

    def unit_failed(self, phase: str, unit: str, error: str) -> None:
        self.phase_done[phase] = self.phase_done.get(phase, 0) + 1
        self._emit(f"{phase}: unit {unit} FAILED: {error}")
        self._update(phase)

    def tick(self) -> None:
        pass

    def end_phase(self, phase: str) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif self.mode == "log" and self.phase_total.get(phase):
            self._emit(self._line(phase))

    def finish(self, result: Any) -> None:
        pass

    # -- rendering ----------------------------------------------------------------------
    def _rate(self, phase: str) -> str:
        elapsed = max(time.time() - self.phase_started.get(phase, self.started), 1e-6)
        read = self.stats.get("read") if "read" in self.stats else None
        tok = self.stats.get("tokenize") if "tokenize" in self.stats else None
        parts = []
        if phase == "filter" and read is not None:
            parts.append(f"{read.docs_out / elapsed:,.0f} docs/s")
            parts.append(f"{read.bytes_in / elapsed / 1e6:,.1f} MB/s")
        if phase == "tokenize" and tok is not None:
            parts.append(f"{tok.counters.get('tokens', 0) / elapsed:,.0f} tokens/s")
        return ", ".join(parts)

    def _line(self, phase: str) -> str:
        done, total = self.phase_done.get(phase, 0), self.phase_total.get(phase, 0)
        elapsed = time.time() - self.phase_started.get(phase, self.started)
        eta = ""
        if 0 < done < total:
            eta = f", ETA {elapsed / done * (total - done):,.0f}s"
        return f"{phase}: {done}/{total} done, {self._rate(phase)}{eta}"

    def _update(self, phase: str) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.phase_done[phase], rate=self._rate(phase))
            return
        now = time.time()
        if self.mode == "log" and now - self._last_print >= self.interval:
            self._last_print = now
            self._emit(self._line(phase))

    def _emit(self, msg: str) -> None:
        if self.mode == "none":
            return
        print(f"[dataproc] {msg}", file=sys.stderr, flush=True)
