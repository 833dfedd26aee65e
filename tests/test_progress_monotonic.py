"""Progress counters in log mode only grow, and a slow live actor never shows as a warning.

The live actor is replaced here by a plain object with the same three methods (the real actor
is exercised in test_progress.py); what is tested is how Progress adds partial and final stats.
"""

from __future__ import annotations

import itertools
import logging
import re
from typing import Any

import pytest

from dataproc.io.markers import FilterMarker
from dataproc.runner.live import LiveClient
from dataproc.runner.progress import Progress
from dataproc.stats import StageStats, StatsSet


def _stats(read: int, dropped: int) -> list[dict[str, Any]]:
    r = StageStats("read", docs_in=read + dropped, docs_out=read)
    r.drop("request", dropped)
    return StatsSet([r]).to_list()


def _marker(index: int, stats: list[dict[str, Any]]) -> FilterMarker:
    return FilterMarker(
        input_index=index,
        input="x.warc.gz",
        fingerprint="f",
        stats=stats,
        seconds=1.0,
        input_bytes=None,
        docs_kept=0,
        languages={},
    )


class _Snapshots:
    """Answers ``snapshot()`` with what the test puts in ``answer`` (None: timed out)."""

    def __init__(self) -> None:
        self.answer: dict[str, list[dict[str, Any]]] | None = {}

    def snapshot(self) -> dict[str, list[dict[str, Any]]] | None:
        return self.answer

    def final(self, *args: Any) -> None:
        pass

    def set_phase(self, *args: Any) -> None:
        pass


def _read_counts(err: str) -> list[tuple[int, int]]:
    return [
        (int(a.replace(",", "")), int(b.replace(",", "")))
        for a, b in re.findall(r"read ([\d,]+) \(-([\d,]+)\)", err)
    ]


def test_stage_counts_never_go_backwards(capsys: pytest.CaptureFixture[str]) -> None:
    p = Progress("log", interval=0.0, total_inputs=2, live=False)
    live = _Snapshots()
    p._live = live
    p.start_phase("filter", 2)
    live.answer = {"filter/0": _stats(230, 1501), "filter/1": _stats(100, 600)}
    p.tick()
    # Unit 0 finishes; its final stats arrive before the next poll drops its partial ones.
    p.unit_done("filter", _marker(0, _stats(250, 1600)))
    live.answer = {"filter/1": _stats(120, 700)}
    p.tick()
    live.answer = None  # the actor did not answer in time: keep the last counts
    p.tick()
    live.answer = {"filter/1": _stats(5, 20)}  # unit 1 was retried and starts from zero
    p.tick()
    counts = _read_counts(capsys.readouterr().err)
    assert len(counts) >= 4
    for before, after in itertools.pairwise(counts):
        assert after[0] >= before[0] and after[1] >= before[1], counts
    assert counts[1] == (350, 2200)  # 250 final + 100 partial, not 250 + 230 + 100


def test_a_slow_live_actor_is_logged_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    class GetTimeoutError(Exception):
        pass

    def slow() -> Any:
        raise GetTimeoutError("Get timed out: some object(s) not ready.")

    client = LiveClient(ray=None, handle=None)
    with caplog.at_level(logging.DEBUG, "dataproc"):
        assert client._call(slow) is None
        assert client._call(slow) is None
    assert [r.levelno for r in caplog.records] == [logging.DEBUG, logging.DEBUG]
