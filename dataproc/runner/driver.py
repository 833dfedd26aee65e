"""The run: plan inputs, check the output folder, run the three phases on Ray, finalize.

The driver holds no documents and no signatures: tasks read and write files under ``OUT``
and return small dicts (stats, file lists). Each finished unit of work leaves a marker in
``OUT/_work/done/``; a rerun skips what is marked done for the same config, so a crash costs
only the files in flight, and the final output is byte-identical to an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dataproc.config import PipelineConfig
from dataproc.errors import OutputError
from dataproc.io import fs
from dataproc.io.card import write_card
from dataproc.io.layout import OutputLayout
from dataproc.io.lock import RunLock
from dataproc.io.markers import (
    DedupMarker,
    FilterMarker,
    MarkerError,
    RunState,
    TokenizeMarker,
    read_marker,
    read_run_state,
    write_marker,
)
from dataproc.report import build_report_or_warn
from dataproc.runner import output_guard, resume
from dataproc.runner.dedup_result import NO_DEDUP, chunks, dedup_digest, hash_removal_files
from dataproc.runner.phases import Phase
from dataproc.runner.plan import InputFile, check_inputs, plan_inputs
from dataproc.runner.progress import Progress
from dataproc.runner.resume import sweep_temp_files
from dataproc.stats import StatsSet
from dataproc.version import __version__

log = logging.getLogger("dataproc")

STATE_VERSION = 1


@dataclass
class RunResult:
    """What a run produced: where, how much, what failed."""

    out_dir: str
    inputs: list[InputFile]
    manifest: dict[str, Any] | None
    stats: StatsSet
    failures: list[dict[str, Any]] = field(default_factory=list)
    reused: dict[Phase, int] = field(default_factory=dict)  # units an earlier run finished
    executed: dict[Phase, int] = field(default_factory=dict)  # units run now
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 3  # = dataproc.cli.EXIT_FAILED_UNITS (docs/api.md)


def _inputs_digest(inputs: list[InputFile]) -> str:
    return hashlib.sha256("\n".join(i.path for i in inputs).encode()).hexdigest()[:16]


def _run_state(config: PipelineConfig, inputs: list[InputFile]) -> RunState:
    return RunState(
        state_version=STATE_VERSION,
        fingerprint=config.fingerprint(),
        inputs_digest=_inputs_digest(inputs),
        num_inputs=len(inputs),
        settings=_result_settings(config),
    )


def check_output(
    layout: OutputLayout, config: PipelineConfig, inputs: list[InputFile], overwrite: bool
) -> bool:
    """Refuse what this run may not do to ``OUT`` (reads only); True if a run is to be wiped.

    The checks that protect data (``output_guard``) hold whatever the flags; another run's
    output (other config or inputs) is refused unless ``overwrite``.
    """
    output_guard.check_output_target(layout.out)
    output_guard.check_inputs_outside(config.inputs, inputs, layout.out)
    output_guard.refuse_foreign(layout)
    if not output_guard.holds_run(layout):
        return False
    state = _run_state(config, inputs)
    try:
        old: RunState | None = read_run_state(layout.run_state)
    except MarkerError:
        old = None  # another dataproc's run: not this one, whatever it holds
    if not overwrite and (old is None or not old.same_run(state)):
        if old is None or old.fingerprint != state.fingerprint:
            changed = _changed_keys(old.settings, state.settings) if old is not None else []
            what = "config" + (f" ({', '.join(changed[:5])} changed)" if changed else "")
        else:
            what = "list of inputs"
        raise OutputError(
            f"{layout.out} holds a run with a different {what}; use another --output, or "
            f"--overwrite to delete that run ({output_guard.run_entries_text()}; nothing "
            "else in the folder)"
        )
    return overwrite  # --overwrite means start again, even with the same config


def prepare_output(
    layout: OutputLayout, config: PipelineConfig, inputs: list[InputFile], overwrite: bool
) -> None:
    """Check ``OUT`` (``check_output``), wipe the previous run if asked, record this run.

    Call with the run lock held (``run_pipeline`` does).
    """
    if check_output(layout, config, inputs, overwrite):
        output_guard.wipe_run(layout)
    try:
        fs.makedirs(layout.out)
        write_marker(layout.run_state, _run_state(config, inputs))
    except OSError as e:
        raise OutputError(
            f"cannot write to {layout.out}: {e.strerror or e}; make it writable (and check free "
            "space) or choose another --output"
        ) from None


def _result_settings(config: PipelineConfig) -> dict[str, Any]:
    """The part of the config that decides the result (not where or how it runs)."""
    return config.model_dump(mode="json", exclude={"inputs", "output", "execution"})


def _changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _changed_keys(a, b, f"{prefix}{k}.")
        elif a != b:
            keys.append(f"{prefix}{k}")
    return keys


def run_pipeline(
    config: PipelineConfig,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    verify_files: bool = False,
) -> RunResult:
    """Run the whole pipeline described by ``config`` (inputs and output included).

    One run per output folder at a time (``dataproc.io.lock``). A rerun redoes the units whose
    files are missing or have the wrong size (``verify_files``: or the wrong sha256).
    """
    from dataproc.stages.tokenize import tokenizer_info

    started = time.time()
    if not config.output:
        raise OutputError("no output folder: give --output PATH")
    from dataproc.preflight import check_run

    check_run(config)  # optional packages, extractor, models: here, not in the Ray workers
    inputs = plan_inputs(config.inputs)
    check_inputs(inputs)  # a WAT, bzip2 or HTML file is refused before Ray starts
    layout = OutputLayout(config.output)
    tok_info = tokenizer_info(config.tokenizer)  # fail fast, before any work, if it can't load
    from dataproc.consent.prepare import prepare_run_indexes, resolve_index_paths

    config = resolve_index_paths(config)  # the run's robots / decontamination index folders
    _check_dedup_against(config)  # --dedup-against: one-line error before any work
    # Checked before the lock too (reads only), so a refused run writes nothing at all.
    check_output(layout, config, inputs, overwrite)
    with RunLock(layout.lock_dir, layout.out) as lock:
        prepare_output(layout, config, inputs, overwrite)
        sweep_temp_files(layout)
        resume.invalidate_damaged_units(layout, inputs, config.fingerprint(), verify_files)
        prepare_run_indexes(config)  # built once per run, before any task needs them
        return _run_locked(config, layout, inputs, tok_info, started, lock, progress)


def _run_locked(
    config: PipelineConfig,
    layout: OutputLayout,
    inputs: list[InputFile],
    tok_info: dict[str, Any],
    started: float,
    lock: RunLock,
    progress: Progress | None,
) -> RunResult:
    """The three phases and the finalize step, with the output folder's lock held."""
    from dataproc.runner import tasks
    from dataproc.runner.ray_runtime import ray_session

    fp = config.fingerprint()
    progress = progress or Progress.from_config(config.execution, len(inputs), layout.out)
    result = RunResult(out_dir=layout.out, inputs=inputs, manifest=None, stats=StatsSet())
    opts = {
        "num_cpus": config.execution.cpus_per_task,
        "max_retries": config.execution.max_retries,
        "retry_exceptions": True,
    }

    with ray_session(config.execution) as ray:
        runner = _PhaseRunner(ray, progress, result, fp)
        # Phase 1: per-file filtering.
        p1, todo = runner.reuse(Phase.FILTER, FilterMarker, layout.phase1_marker, inputs)
        p1.update(_run_phase1(runner, opts, config, layout, todo))
        ok_inputs = [i for i in inputs if i.index in p1]

        # Phase 2: run-wide dedup over the band keys of every finished file.
        generation = hashlib.sha256(
            (fp + ",".join(str(i.index) for i in ok_inputs)).encode()
        ).hexdigest()[:16]
        p2: DedupMarker | None = None
        if config.dedup.enabled:
            p2 = runner.reusable(
                DedupMarker, layout.phase2_marker, lambda m: m.generation == generation
            )
            runner.count(Phase.DEDUP, int(p2 is not None), int(p2 is None))
            if p2 is None:
                # The old marker names removal files this run is about to replace: were it
                # left and this attempt failed, a later run could trust it.
                fs.remove(layout.phase2_marker)
                p2 = _run_dedup(runner, opts, config, layout, ok_inputs, p1, generation)
        dedup_result = p2.result if p2 is not None else None
        # Phase-3 markers are keyed on phase 2's result, so a token file written against
        # other removals (or none) is never reused.
        generation3 = hashlib.sha256(
            f"{generation},{dedup_result or NO_DEDUP}".encode()
        ).hexdigest()[:16]

        # Phase 3: tokenize and write.
        p3: dict[int, TokenizeMarker] = {}
        if config.dedup.enabled and p2 is None:
            # Any phase-2 failure: tokenizing now would ship duplicates as a finished output.
            msg = (
                "not run: dedup (phase 2) failed, see the dedup failures; no token file was "
                "written. Fix their cause and rerun the same command"
            )
            log.error("tokenize %s", msg)
            result.failures.append({"phase": Phase.TOKENIZE, "unit": "all", "error": msg})
        else:
            removal_sha256 = p2.removed_sha256 if p2 is not None else {}
            remote3 = tasks.remote(ray, tasks.phase3_task, opts)
            p3 = runner.per_input(
                Phase.TOKENIZE,
                TokenizeMarker,
                layout.phase3_marker,
                ok_inputs,
                lambda i: remote3.remote(
                    i.path,
                    i.index,
                    config,
                    layout.out,
                    tok_info,
                    generation3,
                    dedup_result,
                    removal_sha256.get(i.index),
                ),
                accept=lambda m: m.generation == generation3,
            )

        # Every task has returned: finalize now, and draw the report while Ray shuts down
        # (~1.5 s of waiting on Ray's processes; the report is ~2 s of matplotlib).
        _finalize_run(config, layout, inputs, p1, p3, p2, tok_info, started, lock, progress, result)
        report = threading.Thread(
            target=build_report_or_warn, args=(layout.out,), name="dataproc-report"
        )
        report.start()
    report.join()  # OUT/report.html (a report problem never fails the run)
    return result


def _finalize_run(
    config: PipelineConfig,
    layout: OutputLayout,
    inputs: list[InputFile],
    p1: dict[int, FilterMarker],
    p3: dict[int, TokenizeMarker],
    p2: DedupMarker | None,
    tok_info: dict[str, Any],
    started: float,
    lock: RunLock,
    progress: Progress,
    result: RunResult,
) -> None:
    """Stats, manifest, card and the run summary, once no task runs any more."""
    lock.ensure_held()
    sweep_temp_files(layout)  # a killed worker's half-written file; its retry wrote the real one
    # Finalize: stats, manifest (on the driver: small data only).
    stats = StatsSet()
    for index in sorted(p1):
        stats = stats + p1[index].stats_set()
    for index in sorted(p3):
        stats = stats + p3[index].stats_set()
    result.stats = stats
    finished = time.time()
    result.seconds = finished - started
    result.manifest = _finalize(
        config,
        layout,
        inputs,
        p1,
        p3,
        stats,
        p2,
        tok_info,
        result.failures,
        started,
        finished,
    )
    progress.finish(result)


M = TypeVar("M", FilterMarker, DedupMarker, TokenizeMarker)
U = TypeVar("U", FilterMarker, TokenizeMarker)

FollowUp = Callable[[str, Any], tuple[list[tuple[str, Any]], Any]]
"""``follow_up(unit, result)`` -> (more ``(unit, task)`` to wait for, what progress shows)."""


class _PhaseRunner:
    """The one loop of every phase: reuse what an earlier run finished (its marker, for this
    config), submit one Ray task per remaining unit, collect results and failures.

    No scheduling here: Ray places and retries the tasks; the driver only waits for them.
    """

    def __init__(self, ray: Any, progress: Progress, result: RunResult, fingerprint: str) -> None:
        self.ray = ray
        self.progress = progress
        self.result = result
        self.fingerprint = fingerprint

    def reusable(
        self, kind: type[M], path: str, accept: Callable[[M], bool] | None = None
    ) -> M | None:
        """The marker at ``path`` if an earlier run left it for this config and ``accept``
        takes it (same generation), else None: the unit is to be run."""
        marker = read_marker(path, kind, self.fingerprint)
        if marker is not None and (accept is None or accept(marker)):
            return marker
        return None

    def count(self, phase: Phase, reused: int, executed: int) -> None:
        """Record how many units of ``phase`` were reused and how many run now."""
        self.result.reused[phase] = reused
        self.result.executed[phase] = executed

    def reuse(
        self,
        phase: Phase,
        kind: type[U],
        marker_path: Callable[[int], str],
        inputs: list[InputFile],
        accept: Callable[[U], bool] | None = None,
    ) -> tuple[dict[int, U], list[InputFile]]:
        """The markers of the inputs an earlier run finished, and the inputs left to run."""
        done: dict[int, U] = {}
        todo: list[InputFile] = []
        for inp in inputs:
            marker = self.reusable(kind, marker_path(inp.index), accept)
            if marker is not None:
                done[inp.index] = marker
            else:
                todo.append(inp)
        self.count(phase, len(done), len(todo))
        self.progress.reused(phase, len(done), done.values())
        return done, todo

    def per_input(
        self,
        phase: Phase,
        kind: type[U],
        marker_path: Callable[[int], str],
        inputs: list[InputFile],
        submit: Callable[[InputFile], Any],
        accept: Callable[[U], bool] | None = None,
    ) -> dict[int, U]:
        """Every input's marker: reused, or from the task ``submit`` starts for it. Failed
        inputs are missing from the result and recorded as failures."""
        done, todo = self.reuse(phase, kind, marker_path, inputs, accept)
        by_index = {i.index: i for i in inputs}
        new = self.collect(phase, [(str(i.index), submit(i)) for i in todo], by_index)
        done.update({int(k): v for k, v in new.items()})
        return done

    def collect(
        self,
        phase: Phase,
        submissions: list[tuple[str, Any]],
        inputs: dict[int, InputFile] | None = None,
        step: str | None = None,
        follow_up: FollowUp | None = None,
        later: int = 0,
    ) -> dict[str, Any]:
        """Wait for every submitted task; ``{unit: result}`` of those that succeeded.

        ``follow_up(unit, result)`` may submit more (``later`` of them are counted in the
        phase's total from the start) and says what progress shows. Each failure is recorded
        in the run's result (with its input's path when the units are ``inputs``: unit
        ``"3"`` or ``"3:k"``); the caller sees it by the unit's absence.
        """
        name = step or phase.value  # the step shown (e.g. "dedup-components-0L")
        results: dict[str, Any] = {}
        pending = {ref: key for key, ref in submissions}
        self.progress.start_phase(name, len(pending) + later)
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1, timeout=self.progress.interval)
            for ref in done:
                key = pending.pop(ref)
                try:
                    results[key] = shown = self.ray.get(ref)
                    if follow_up is not None:
                        more, shown = follow_up(key, shown)
                        pending.update({r: k for k, r in more})
                    self.progress.unit_done(name, shown)
                except Exception as e:
                    msg = _short_error(e)
                    failure: dict[str, Any] = {"phase": phase, "unit": key, "error": msg}
                    if name != phase.value:
                        failure["step"] = name
                    if inputs is not None:
                        failure["input"] = inputs[int(key.split(":")[0])].path
                    self.result.failures.append(failure)
                    log.error("%s failed for %s after retries: %s", name, key, msg)
                    self.progress.unit_failed(name, key, msg)
            self.progress.tick()
        self.progress.end_phase(name)
        return results


def _short_error(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    tail = [line for line in text if line.strip()][-1:] or [type(e).__name__]
    return f"{type(e).__name__}: {tail[0][:500]}"


def _slots(ray: Any, config: PipelineConfig) -> int:
    """How many phase-1 tasks run at once on the cluster."""
    try:
        cpus = float(ray.cluster_resources().get("CPU", 1))
    except Exception:  # a cluster that does not answer: no splitting
        return 1
    return max(1, int(cpus // config.execution.cpus_per_task))


def _run_phase1(
    runner: _PhaseRunner,
    opts: dict[str, Any],
    config: PipelineConfig,
    layout: OutputLayout,
    todo: list[InputFile],
) -> dict[int, FilterMarker]:
    """Phase 1 as Ray tasks: one per input file, or one per byte range of a file and then a
    merge (``runner/split.py``, ``runner/ranges.py``). Results are keyed by input index."""
    from dataproc.runner import ranges, tasks
    from dataproc.runner.split import plan_splits

    ray = runner.ray
    fp = config.fingerprint()
    splits = plan_splits(todo, config, _slots(ray, config)) if todo else {}
    remote1 = tasks.remote(ray, tasks.phase1_task, opts)
    remote_range = tasks.remote(ray, tasks.range_task, opts)
    remote_merge = tasks.remote(ray, tasks.merge_task, opts)
    by_index = {i.index: i for i in todo}
    waiting: dict[int, set[int]] = {}  # split input -> ranges still running
    subs: list[tuple[str, Any]] = []
    merges_now: list[int] = []
    for inp in _largest_first(todo):
        spans = splits.get(inp.index)
        if not spans:
            subs.append((str(inp.index), remote1.remote(inp.path, inp.index, config, layout.out)))
            continue
        reused = ranges.reusable_ranges(layout, inp.index, spans, fp)
        if reused:
            log.info(
                "%s: %d of %d range(s) done in an earlier run", inp.path, len(reused), len(spans)
            )
        waiting[inp.index] = set(range(len(spans))) - reused
        for k in sorted(waiting[inp.index]):
            subs.append(
                (
                    f"{inp.index}:{k}",
                    remote_range.remote(
                        inp.path, inp.index, k, spans[k], spans[0][1], config, layout.out
                    ),
                )
            )
        if not waiting[inp.index]:
            merges_now.append(inp.index)
    if splits:
        log.info(
            "phase 1 reads %d file(s) in %d byte ranges",
            len(splits),
            sum(len(v) for v in splits.values()),
        )

    def merge(index: int) -> tuple[str, Any]:
        inp = by_index[index]
        return str(index), remote_merge.remote(inp.path, index, splits[index], config, layout.out)

    subs += [merge(i) for i in merges_now]

    def follow_up(key: str, res: Any) -> tuple[list[tuple[str, Any]], Any]:
        if ":" in key:  # a range: once its input's last range is done, merge them
            index, k = (int(x) for x in key.split(":"))
            waiting[index].discard(k)
            return ([merge(index)] if not waiting[index] else []), res
        if int(key) in splits:  # a merge: its stats were shown as its ranges finished
            return [], None
        return [], res

    later = len(splits) - len(merges_now)
    results = runner.collect(Phase.FILTER, subs, by_index, follow_up=follow_up, later=later)
    return {int(k): v for k, v in results.items() if ":" not in k}


def _largest_first(inputs: list[InputFile]) -> list[InputFile]:
    """Local inputs in decreasing size (remote ones after them, in their order).

    Submission order only affects scheduling, never output. Longest first is the classic
    makespan heuristic: the tasks still running at the end are small ones, so workers run
    out of work at nearly the same time instead of one finishing a big file alone. Remote
    sizes would cost one request per file, so those keep their order.
    """

    def size(inp: InputFile) -> int:
        if fs.is_remote(inp.path):
            return -1
        try:
            return fs.size(inp.path)
        except (OSError, ValueError):
            return -1

    return sorted(inputs, key=lambda i: -size(i))


def _check_dedup_against(config: PipelineConfig) -> None:
    if not config.dedup.against:
        return
    from dataproc.dedup.against import check_against
    from dataproc.errors import DedupError

    if not config.dedup.enabled:
        raise DedupError("--dedup-against needs dedup on (dedup.enabled is false)")
    check_against(config.dedup)


class _DedupStepFailed(Exception):
    """A phase-2 step had failed units (already recorded); phase 2 stops there."""


def _run_dedup(
    runner: _PhaseRunner,
    opts: dict[str, Any],
    config: PipelineConfig,
    layout: OutputLayout,
    ok_inputs: list[InputFile],
    p1: dict[int, FilterMarker],
    generation: str,
) -> DedupMarker | None:
    """Phase 2 as Ray tasks (``dataproc.dedup.clusters.run_phase2`` with a Ray executor),
    then the removal files hashed into the dedup result; its marker, or None if a step failed
    (the failures are recorded).

    Every phase-2 task asks Ray for ``dedup.task_memory`` of memory, so Ray never packs more
    of them on a node than its memory holds.
    """
    from dataproc.dedup.against import check_against
    from dataproc.dedup.clusters import BandSource, run_phase2
    from dataproc.runner import tasks

    fs.remove(layout.dedup_dir, recursive=True)
    dcfg = config.dedup
    per_doc = dcfg.bands + 1
    sources: list[BandSource] = []
    offsets: list[int] = []
    gid = 0
    for ref in check_against(dcfg):
        offsets.append(gid)
        for i, (path, removed, rows) in enumerate(
            zip(ref.band_files, ref.removed_files, ref.rows, strict=True)
        ):
            sources.append(BandSource(path, i, gid + i, rows, removed))
        gid += len(ref.band_files)
    offsets.append(gid)
    for inp in ok_inputs:
        kept = p1[inp.index].docs_kept
        sources.append(
            BandSource(layout.bands(inp.index), inp.index, gid + inp.index, kept * per_doc)
        )
    task_opts = dict(opts, memory=dcfg.task_memory)

    def execute(step: str, calls: list[tuple[str, Any, tuple[Any, ...]]]) -> dict[str, Any]:
        subs = [
            (unit, tasks.remote(runner.ray, fn, task_opts).remote(*args))
            for unit, fn, args in calls
        ]
        failed = len(runner.result.failures)
        res = runner.collect(Phase.of(step), subs, step=step)
        if len(runner.result.failures) > failed:
            raise _DedupStepFailed(step)
        return res

    try:
        summary = run_phase2(
            sources, offsets, [i.index for i in ok_inputs], layout.dedup_dir, dcfg, execute
        )
    except _DedupStepFailed:
        return None
    # sha256 of every finished input's removal file, hashed by Ray tasks (a missing file
    # fails its task with a DedupError naming it).
    remote = tasks.remote(runner.ray, hash_removal_files, opts)
    indices = [i.index for i in ok_inputs]
    subs = [(f"{c[0]}-{c[-1]}", remote.remote(layout.out, c)) for c in chunks(indices)]
    failed = len(runner.result.failures)
    hashed = runner.collect(Phase.DEDUP_RESULT, subs)
    if len(runner.result.failures) > failed:
        return None
    removal_sha256 = {i: h for part in hashed.values() for i, h in part.items()}
    marker = DedupMarker(
        fingerprint=runner.fingerprint,
        generation=generation,
        summary=summary.to_dict(),
        result=dedup_digest(removal_sha256),
        removed_sha256=removal_sha256,
    )
    write_marker(layout.phase2_marker, marker)
    return marker


def _finalize(
    config: PipelineConfig,
    layout: OutputLayout,
    inputs: list[InputFile],
    p1: dict[int, FilterMarker],
    p3: dict[int, TokenizeMarker],
    stats: StatsSet,
    p2: DedupMarker | None,
    tok_info: dict[str, Any],
    failures: list[dict[str, Any]],
    started: float,
    finished: float,
) -> dict[str, Any]:
    from dataproc.io.manifest import build_manifest, with_row_group_counts, write_manifest

    # Markers carry per-row-group counts; one from an older dataproc (resume) is read once.
    files = [with_row_group_counts(layout.out, f) for index in sorted(p3) for f in p3[index].files]
    input_entries = []
    for inp in inputs:
        # Sizes come from the phase-1 markers (bytes the task read), so finalizing a crawl of
        # 90,000 remote files costs no request per file; local files are stat'ed.
        nbytes = p1[inp.index].input_bytes if inp.index in p1 else None
        if not fs.is_remote(inp.path):
            with contextlib.suppress(OSError, ValueError):
                nbytes = fs.size(inp.path)
        input_entries.append({"index": inp.index, "path": inp.path, "bytes": nbytes})
    manifest = build_manifest(
        pipeline=config.name,
        # Only what decides the result: the manifest is the same whatever the worker count
        # or progress display (those are in stats.json's "execution").
        config={**_result_settings(config), "inputs": [i.path for i in inputs]},
        config_fingerprint=config.fingerprint(),
        tokenizer=tok_info,
        dedup_result=p2.result if p2 is not None else None,
        inputs=input_entries,
        files=files,
        timings={
            "started": _iso(started),
            "finished": _iso(finished),
            "seconds": round(finished - started, 3),
        },
    )
    from dataproc.consent.prepare import certificates

    manifest.update(certificates(config, stats))  # consent and decontamination audit trail
    manifest["complete"] = not failures
    if failures:
        manifest["failures"] = sorted(failures, key=lambda f: (f["phase"], f["unit"]))
    write_manifest(layout.out, manifest)
    write_card(layout.out, manifest)  # OUT/README.md: loaders read only tokens/*.parquet

    languages: dict[str, int] = {}
    for index in sorted(p1):
        for lang, n in p1[index].languages.items():
            languages[lang] = languages.get(lang, 0) + n
    stats_doc = {
        "dataproc_version": __version__,
        "pipeline": config.name,
        "complete": not failures,
        "stages": stats.to_list(),
        "languages_after_filters": dict(sorted(languages.items())),
        "dedup": p2.summary if p2 is not None else {},
        "failures": manifest.get("failures", []),
        "execution": config.execution.model_dump(mode="json"),
        "timings": manifest["timings"],
    }
    fs.write_json_atomic(layout.stats, stats_doc)
    return manifest


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
