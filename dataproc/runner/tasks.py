"""The Ray layer: each phase function wrapped as a remote task that writes its own marker.

Nothing here decides where or when work runs — Ray schedules, places and retries the tasks
(``max_retries`` for crashed workers and lost nodes, ``retry_exceptions`` for errors).
"""

from __future__ import annotations

from typing import Any

from dataproc.config import PipelineConfig
from dataproc.io import fs
from dataproc.io.layout import OutputLayout
from dataproc.runner.resume import describe_outputs


def phase1_task(input_path: str, input_index: int, config: PipelineConfig, out_dir: str) -> dict:
    from dataproc.logs import shard_log
    from dataproc.runner.live import task_heartbeat
    from dataproc.runner.phase1 import run_phase1

    with shard_log(out_dir, input_index, input_path, "filter") as slog:
        heartbeat = task_heartbeat(out_dir, "filter", input_index)

        def on_record(doc: Any, stats: Any) -> None:
            slog.position(doc.offset)  # error lines name the record being processed
            heartbeat(stats)  # live stage counters, every few seconds

        result = run_phase1(input_path, input_index, config, out_dir, on_record=on_record)
        layout = OutputLayout(out_dir)
        result["outputs"] = describe_outputs(
            out_dir, [layout.docs(input_index), layout.rejects(input_index, "filter")]
        )  # what a rerun checks before it trusts this marker (runner/resume.py)
        fs.write_json_atomic(layout.phase1_marker(input_index), result)
        slog.info("result", docs_kept=result.get("docs_kept"), stats=result.get("stats"))
    return result


def range_task(
    input_path: str,
    input_index: int,
    k: int,
    span: tuple[int, int | None],
    first_end: int | None,
    config: PipelineConfig,
    out_dir: str,
) -> dict:
    """Phase 1 of range ``k`` of a split input (``runner/ranges.py``); writes its marker."""
    from dataproc.logs import shard_log
    from dataproc.readers.spans import ReaderState
    from dataproc.runner.live import task_heartbeat
    from dataproc.runner.ranges import head_state, live_unit, run_range

    with shard_log(out_dir, input_index, input_path, f"filter-range-{k}") as slog:
        heartbeat = task_heartbeat(out_dir, "filter", live_unit(input_index, k))

        def on_record(doc: Any, stats: Any) -> None:
            slog.position(doc.offset)
            heartbeat(stats)

        state = ReaderState() if k == 0 else head_state(input_path, input_index, config, first_end)
        result = run_range(input_path, input_index, k, span, state, config, out_dir, on_record)
        slog.info("result", docs_kept=result.get("docs_kept"), stop=result.get("stop"))
    # What the driver needs: progress counts (the merge reads the marker file itself).
    return {"input_index": live_unit(input_index, k), "stats": result["stats"]}


def merge_task(
    input_path: str,
    input_index: int,
    spans: list[tuple[int, int | None]],
    config: PipelineConfig,
    out_dir: str,
) -> dict:
    """Join the ranges of a split input into its phase-1 files and marker."""
    from dataproc.logs import shard_log
    from dataproc.runner.ranges import merge_ranges, remove_parts

    layout = OutputLayout(out_dir)
    done = layout.phase1_marker(input_index)
    if fs.exists(done):
        # An earlier attempt of this task wrote the marker (the driver schedules a merge only
        # for inputs without one) and may have removed the parts already: its result stands.
        marker: dict = fs.read_json(done)
        if marker.get("fingerprint") == config.fingerprint():
            return marker
    with shard_log(out_dir, input_index, input_path, "filter") as slog:
        result = merge_ranges(input_path, input_index, spans, config, out_dir)
        result["outputs"] = describe_outputs(
            out_dir, [layout.docs(input_index), layout.rejects(input_index, "filter")]
        )
        fs.write_json_atomic(layout.phase1_marker(input_index), result)
        remove_parts(layout, input_index)
        slog.info("result", docs_kept=result.get("docs_kept"), ranges=len(spans))
    return result


def phase3_task(
    input_path: str,
    input_index: int,
    config: PipelineConfig,
    out_dir: str,
    tokenizer: dict,
    generation: str,
    dedup_result: str | None = None,
    removed_sha256: str | None = None,
) -> dict:
    from dataproc.logs import shard_log
    from dataproc.runner.phase3 import run_phase3

    with shard_log(out_dir, input_index, input_path, "tokenize") as slog:
        result = run_phase3(
            input_path,
            input_index,
            config,
            out_dir,
            tokenizer,
            dedup_result=dedup_result,
            removed_sha256=removed_sha256,
        )
        result["generation"] = generation
        layout = OutputLayout(out_dir)
        result["outputs"] = describe_outputs(out_dir, [layout.rejects(input_index, "dedup")])
        fs.write_json_atomic(layout.phase3_marker(input_index), result)
        slog.info("result", files=len(result.get("files", [])), stats=result.get("stats"))
    return result


def _remote(ray: Any, fn: Any, opts: dict[str, Any]) -> Any:
    return ray.remote(fn).options(**opts)


def phase1_remote(ray: Any, opts: dict[str, Any]) -> Any:
    return _remote(ray, phase1_task, opts)


def range_remote(ray: Any, opts: dict[str, Any]) -> Any:
    return _remote(ray, range_task, opts)


def merge_remote(ray: Any, opts: dict[str, Any]) -> Any:
    return _remote(ray, merge_task, opts)


def phase3_remote(ray: Any, opts: dict[str, Any]) -> Any:
    return _remote(ray, phase3_task, opts)


def dedup_remote(ray: Any, fn: Any, opts: dict[str, Any]) -> Any:
    """A phase-2 step function (``dataproc.dedup``) as a Ray task; see ``run_phase2``."""
    return _remote(ray, fn, opts)
