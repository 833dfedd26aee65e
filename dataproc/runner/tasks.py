"""The Ray layer: each phase function wrapped as a remote task that writes its own marker.

Nothing here decides where or when work runs — Ray schedules, places and retries the tasks
(``max_retries`` for crashed workers and lost nodes, ``retry_exceptions`` for errors).
"""

from __future__ import annotations

from typing import Any

from dataproc.config import PipelineConfig
from dataproc.io.layout import OutputLayout
from dataproc.io.markers import (
    FilterMarker,
    RangeMarker,
    TokenizeMarker,
    read_marker,
    write_marker,
)
from dataproc.runner.phases import Phase
from dataproc.runner.resume import describe_outputs


def phase1_task(
    input_path: str, input_index: int, config: PipelineConfig, out_dir: str
) -> FilterMarker:
    """Phase 1 of one input; writes and returns its marker."""
    from dataproc.logs import shard_log
    from dataproc.runner.live import task_heartbeat
    from dataproc.runner.phase1 import run_phase1

    with shard_log(out_dir, input_index, input_path, Phase.FILTER) as slog:
        heartbeat = task_heartbeat(out_dir, Phase.FILTER, input_index)

        def on_record(doc: Any, stats: Any) -> None:
            slog.position(doc.offset)  # error lines name the record being processed
            heartbeat(stats)  # live stage counters, every few seconds

        result = run_phase1(input_path, input_index, config, out_dir, on_record=on_record)
        layout = OutputLayout(out_dir)
        outputs = describe_outputs(
            out_dir, [layout.docs(input_index), layout.rejects(input_index, Phase.FILTER)]
        )  # what a rerun checks before it trusts this marker (runner/resume.py)
        result = result.model_copy(update={"outputs": outputs})
        write_marker(layout.phase1_marker(input_index), result)
        slog.info("result", docs_kept=result.docs_kept, stats=result.stats)
    return result


def range_task(
    input_path: str,
    input_index: int,
    k: int,
    span: tuple[int, int | None],
    first_end: int | None,
    config: PipelineConfig,
    out_dir: str,
) -> RangeMarker:
    """Phase 1 of range ``k`` of a split input (``runner/ranges.py``); writes and returns
    its marker (the driver shows its stats; the merge reads the marker file itself)."""
    from dataproc.logs import shard_log
    from dataproc.readers.spans import ReaderState
    from dataproc.runner.live import task_heartbeat
    from dataproc.runner.ranges import head_state, live_unit, run_range

    with shard_log(out_dir, input_index, input_path, f"{Phase.FILTER}-range-{k}") as slog:
        heartbeat = task_heartbeat(out_dir, Phase.FILTER, live_unit(input_index, k))

        def on_record(doc: Any, stats: Any) -> None:
            slog.position(doc.offset)
            heartbeat(stats)

        state = ReaderState() if k == 0 else head_state(input_path, input_index, config, first_end)
        result = run_range(input_path, input_index, k, span, state, config, out_dir, on_record)
        slog.info("result", docs_kept=result.docs_kept, stop=result.stop)
    return result


def merge_task(
    input_path: str,
    input_index: int,
    spans: list[tuple[int, int | None]],
    config: PipelineConfig,
    out_dir: str,
) -> FilterMarker:
    """Join the ranges of a split input into its phase-1 files and marker."""
    from dataproc.logs import shard_log
    from dataproc.runner.ranges import merge_ranges, remove_parts

    layout = OutputLayout(out_dir)
    done = layout.phase1_marker(input_index)
    # An earlier attempt of this task wrote the marker (the driver schedules a merge only for
    # inputs without one) and may have removed the parts already: its result stands.
    marker = read_marker(done, FilterMarker, config.fingerprint())
    if marker is not None:
        return marker
    with shard_log(out_dir, input_index, input_path, Phase.FILTER) as slog:
        result = merge_ranges(input_path, input_index, spans, config, out_dir)
        outputs = describe_outputs(
            out_dir, [layout.docs(input_index), layout.rejects(input_index, Phase.FILTER)]
        )
        result = result.model_copy(update={"outputs": outputs})
        write_marker(done, result)
        remove_parts(layout, input_index)
        slog.info("result", docs_kept=result.docs_kept, ranges=len(spans))
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
) -> TokenizeMarker:
    """Phase 3 of one input; writes and returns its marker."""
    from dataproc.logs import shard_log
    from dataproc.runner.phase3 import run_phase3

    with shard_log(out_dir, input_index, input_path, Phase.TOKENIZE) as slog:
        result = run_phase3(
            input_path,
            input_index,
            config,
            out_dir,
            tokenizer,
            generation=generation,
            dedup_result=dedup_result,
            removed_sha256=removed_sha256,
        )
        layout = OutputLayout(out_dir)
        outputs = describe_outputs(out_dir, [layout.rejects(input_index, "dedup")])
        result = result.model_copy(update={"outputs": outputs})
        write_marker(layout.phase3_marker(input_index), result)
        slog.info("result", files=len(result.files), stats=result.stats)
    return result


def remote(ray: Any, fn: Any, opts: dict[str, Any]) -> Any:
    """``fn`` as a Ray task with ``opts`` (CPUs, retries, memory)."""
    return ray.remote(fn).options(**opts)
