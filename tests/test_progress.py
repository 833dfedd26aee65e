"""Progress display, progress.jsonl snapshots, and live stage counters through a Ray actor."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dataproc.config import ExecutionConfig
from dataproc.io.markers import FilterMarker
from dataproc.runner.progress import Progress, format_duration
from dataproc.stats import StageStats, StatsSet


def _unit(index: int, read: int, kept: int, tokens: int = 0) -> FilterMarker:
    r = StageStats("read", docs_in=read, docs_out=read, bytes_in=read * 1000)
    x = StageStats("extract", docs_in=read, docs_out=kept)
    x.drop("empty", read - kept)
    stats = StatsSet([r, x])
    if tokens:
        t = StageStats("tokenize", docs_in=kept, docs_out=kept)
        t.counters["tokens"] = tokens
        stats = StatsSet([t])
    return FilterMarker(
        input_index=index,
        input=f"in-{index}.warc.gz",
        fingerprint="f",
        stats=stats.to_list(),
        seconds=1.0,
        input_bytes=read * 1000,
        docs_kept=kept,
        languages={},
    )


def test_format_duration() -> None:
    assert format_duration(7) == "7s"
    assert format_duration(95) == "1m35s"
    assert format_duration(3725) == "1h02m"
    assert format_duration(-3) == "0s"


def test_from_config_picks_log_when_not_a_tty() -> None:
    p = Progress.from_config(ExecutionConfig(progress="auto", progress_interval_seconds=7), 3, None)
    assert p.mode == "log" and p.interval == 7  # pytest captures stderr: not a TTY
    bar = Progress.from_config(ExecutionConfig(progress="bar", progress_interval_seconds=30), 3)
    assert bar.interval == 1.0  # a bar refreshes every second


def test_log_lines_show_counts_rates_and_eta(capsys: pytest.CaptureFixture[str]) -> None:
    p = Progress("log", interval=0.0, total_inputs=4, live=False)
    p.start_phase("filter", 4)
    p.phase_started["filter"] = time.time() - 10  # ten seconds into the phase
    p.unit_done("filter", _unit(0, 100, 60))
    err = capsys.readouterr().err
    assert "[dataproc] filter: 4 unit(s) to process" in err
    line = next(ln for ln in err.splitlines() if "1/4 done" in ln)
    assert "10 docs/s" in line and "0.0 MB/s" in line and "ETA 30s" in line
    assert "stages: read 100 → extract 60 (-40)" in err
    p.unit_failed("filter", "3", "OSError: boom")
    err = capsys.readouterr().err
    assert "unit 3 FAILED: OSError: boom" in err and "1 FAILED" in err


def test_reused_units_count_in_totals_but_not_in_rates() -> None:
    p = Progress("none", live=False)
    p.reused("filter", 1, [_unit(0, 1000, 500)])
    p.start_phase("filter", 1)
    p.phase_started["filter"] = time.time() - 10
    p.unit_done("filter", _unit(1, 100, 50))
    assert p.stats.get("read").docs_out == 1100
    assert p.rates("filter")["docs_per_s"] == pytest.approx(10, rel=0.05)


def test_tokens_per_second_in_tokenize_phase() -> None:
    p = Progress("none", live=False)
    p.start_phase("tokenize", 2)
    p.phase_started["tokenize"] = time.time() - 4
    p.unit_done("tokenize", _unit(0, 10, 10, tokens=4000))
    assert p.rates("tokenize")["tokens_per_s"] == pytest.approx(1000, rel=0.05)
    assert "tokens/s" in p.line("tokenize")


def test_snapshots_go_to_progress_jsonl_and_keep_history(tmp_path: Path) -> None:
    out = str(tmp_path)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "progress.jsonl").write_text('{"t": 1, "docs_read": 5}\n{cut')
    p = Progress("none", out_dir=out, live=False)
    p.start_phase("filter", 1)
    p.unit_done("filter", _unit(0, 100, 60))
    p.end_phase("filter")
    p.finish(None)
    lines = [json.loads(x) for x in (tmp_path / "logs" / "progress.jsonl").read_text().splitlines()]
    assert lines[0] == {"t": 1, "docs_read": 5}  # an earlier run's history is kept
    assert lines[-1]["docs_read"] == 100 and lines[-1]["bytes_read"] == 100_000


def test_bar_renders_a_stage_table() -> None:
    from rich.console import Console

    p = Progress("bar", live=False)
    p.start_phase("filter", 2)
    try:
        p.unit_done("filter", _unit(0, 100, 60))
        console = Console(record=True, width=120, force_terminal=False)
        for r in p._bar.get_renderables():
            console.print(r)
        text = console.export_text()
    finally:
        p.end_phase("filter")
    assert "1/2" in text and "extract" in text and "empty 40" in text


@pytest.mark.ray
def test_live_counters_actor_sees_partial_stats_of_running_tasks(
    ray_cluster, tmp_path: Path
) -> None:
    from dataproc.runner.live import LiveClient, task_heartbeat

    out = str(tmp_path / "out")

    @ray_cluster.remote
    def running_task(out_dir: str) -> int:
        stats = StatsSet([StageStats("read", docs_in=42, docs_out=40, bytes_in=4200)])
        beat = task_heartbeat(out_dir, "filter", 5, every_seconds=0.0)
        beat(stats)
        return 1

    client = LiveClient.start(out)
    assert client is not None
    try:
        p = Progress("none", out_dir=out, live=False)
        p._live = client
        p.start_phase("filter", 2)
        ray_cluster.get(running_task.remote(out))
        deadline = time.time() + 20
        while time.time() < deadline:
            p._poll_live()
            if "read" in p.partial_stats:
                break
            time.sleep(0.2)
        assert p.stats.get("read").docs_out == 40
        # The unit finishes: its final stats replace the partial ones (no double counting).
        p.unit_done("filter", _unit(5, 50, 45))
        p._poll_live()
        assert p.stats.get("read").docs_out == 50
        snap = client.snapshot()
        assert "filter/5" not in snap
    finally:
        client.stop()


def test_heartbeat_outside_ray_is_a_no_op(tmp_path: Path) -> None:
    from dataproc.runner.live import task_heartbeat

    beat = task_heartbeat(str(tmp_path), "filter", 0)
    beat(StatsSet())  # no actor, no Ray: nothing happens, nothing raises
