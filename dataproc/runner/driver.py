"""The run: plan inputs, check the output folder, run the three phases on Ray, finalize.

The driver holds no documents and no signatures: tasks read and write files under ``OUT``
and return small dicts (stats, file lists). Each finished unit of work leaves a marker in
``OUT/_work/done/``; a rerun skips what is marked done for the same config, so a crash costs
only the files in flight, and the final output is byte-identical to an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dataproc.config import PipelineConfig
from dataproc.errors import OutputError
from dataproc.io import fs
from dataproc.io.card import write_card
from dataproc.io.layout import OutputLayout
from dataproc.io.lock import RunLock
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
    reused: dict[str, int] = field(default_factory=dict)
    executed: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 3  # = dataproc.cli.EXIT_FAILED_UNITS (docs/api.md)


def _inputs_digest(inputs: list[InputFile]) -> str:
    return hashlib.sha256("\n".join(i.path for i in inputs).encode()).hexdigest()[:16]


def _run_state(config: PipelineConfig, inputs: list[InputFile]) -> dict[str, Any]:
    return {
        "state_version": STATE_VERSION,
        "fingerprint": config.fingerprint(),
        "inputs_digest": _inputs_digest(inputs),
        "num_inputs": len(inputs),
    }


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
    old = fs.read_json(layout.run_state)
    if not overwrite and not all(old.get(k) == v for k, v in state.items()):
        if old.get("fingerprint") != state["fingerprint"]:
            changed = _changed_keys(old.get("settings", {}), _result_settings(config))
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
        fs.write_json_atomic(
            layout.run_state, {**_run_state(config, inputs), "settings": _result_settings(config)}
        )
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


def _read_marker(path: str, fingerprint: str) -> dict[str, Any] | None:
    if not fs.exists(path):
        return None
    try:
        m = fs.read_json(path)
    except (OSError, json.JSONDecodeError):
        return None
    return m if m.get("fingerprint") == fingerprint else None


FollowUp = Callable[[str, Any], tuple[list[tuple[str, Any]], Any]]


class _Phase:
    """Submits one Ray task per unit, collects results, records failures (no scheduling here:
    Ray places and retries the tasks; we only wait for them)."""

    def __init__(self, phase: Phase, progress: Progress, step: str | None = None) -> None:
        self.phase = phase
        self.name = step or phase.value  # the step shown (e.g. "dedup-components-0L")
        self.progress = progress

    def run(
        self,
        ray: Any,
        submissions: list[tuple[str, Any]],
        follow_up: FollowUp | None = None,
        later: int = 0,
    ) -> tuple[dict[str, Any], list[dict]]:
        """Wait for every task; ``follow_up(key, result)`` may submit more (``later`` of them
        are counted in the phase's total from the start) and says what progress shows."""
        results: dict[str, Any] = {}
        failures: list[dict[str, Any]] = []
        pending = {ref: key for key, ref in submissions}
        self.progress.start_phase(self.name, len(pending) + later)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=self.progress.interval)
            for ref in done:
                key = pending.pop(ref)
                try:
                    results[key] = ray.get(ref)
                    shown = results[key]
                    if follow_up is not None:
                        more, shown = follow_up(key, shown)
                        pending.update({r: k for k, r in more})
                    self.progress.unit_done(self.name, shown)
                except Exception as e:
                    msg = _short_error(e)
                    failure = {"phase": self.phase, "unit": key, "error": msg}
                    if self.name != self.phase.value:
                        failure["step"] = self.name
                    failures.append(failure)
                    log.error("%s failed for %s after retries: %s", self.name, key, msg)
                    self.progress.unit_failed(self.name, key, msg)
            self.progress.tick()
        self.progress.end_phase(self.name)
        return results, failures


def _short_error(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    tail = [line for line in text if line.strip()][-1:] or [type(e).__name__]
    return f"{type(e).__name__}: {tail[0][:500]}"


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

    resolve_index_paths(config)  # the run's robots / decontamination index folders
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
        # Phase 1: per-file filtering.
        p1_results: dict[str, Any] = {}
        todo: list[InputFile] = []
        for inp in inputs:
            m = _read_marker(layout.phase1_marker(inp.index), fp)
            if m is not None:
                p1_results[str(inp.index)] = m
            else:
                todo.append(inp)
        result.reused["phase1"] = len(inputs) - len(todo)
        result.executed["phase1"] = len(todo)
        progress.reused(Phase.FILTER, len(inputs) - len(todo), p1_results.values())
        new1, fail1 = _run_phase1(ray, opts, config, layout, todo, progress)
        p1_results.update(new1)
        result.failures += [
            dict(f, input=inputs[int(str(f["unit"]).split(":")[0])].path) for f in fail1
        ]
        ok_inputs = [i for i in inputs if str(i.index) in p1_results]

        # Phase 2: run-wide dedup over the band keys of every finished file.
        dedup_summary: dict[str, Any] = {}
        dedup_result: str | None = None  # digest of phase 2's removal files (dedup_result.py)
        removal_sha256: dict[int, str] = {}
        generation = hashlib.sha256(
            (fp + ",".join(str(i.index) for i in ok_inputs)).encode()
        ).hexdigest()[:16]
        if config.dedup.enabled:
            m2 = _read_marker(layout.phase2_marker, fp)
            if m2 is not None and m2.get("generation") == generation and "result" in m2:
                dedup_summary = m2["summary"]
                dedup_result = m2["result"]
                removal_sha256 = {int(k): v for k, v in m2["removed_sha256"].items()}
                result.reused["phase2"] = 1
            else:
                # The old marker names removal files this run is about to replace: were it
                # left and this attempt failed, a later run could trust it.
                fs.remove(layout.phase2_marker)
                dedup_summary, fail2 = _run_dedup(
                    ray, opts, config, layout, ok_inputs, progress, p1_results
                )
                if not fail2:
                    removal_sha256, fail2 = _hash_removals(ray, opts, layout, ok_inputs, progress)
                result.failures += fail2
                if not fail2:
                    dedup_result = dedup_digest(removal_sha256)
                    fs.write_json_atomic(
                        layout.phase2_marker,
                        {
                            "fingerprint": fp,
                            "generation": generation,
                            "summary": dedup_summary,
                            "result": dedup_result,
                            "removed_sha256": {str(k): v for k, v in removal_sha256.items()},
                        },
                    )
                result.executed["phase2"] = 1
        # Phase-3 markers are keyed on phase 2's result, so a token file written against
        # other removals (or none) is never reused.
        generation3 = hashlib.sha256(
            f"{generation},{dedup_result or NO_DEDUP}".encode()
        ).hexdigest()[:16]

        # Phase 3: tokenize and write.
        p3_results: dict[str, Any] = {}
        todo3: list[InputFile] = []
        if config.dedup.enabled and dedup_result is None:
            # Any phase-2 failure: tokenizing now would ship duplicates as a finished output.
            msg = (
                "not run: dedup (phase 2) failed, see the dedup failures; no token file was "
                "written. Fix their cause and rerun the same command"
            )
            log.error("tokenize %s", msg)
            result.failures.append({"phase": Phase.TOKENIZE, "unit": "all", "error": msg})
        else:
            for inp in ok_inputs:
                m = _read_marker(layout.phase3_marker(inp.index), fp)
                if m is not None and m.get("generation") == generation3:
                    p3_results[str(inp.index)] = m
                else:
                    todo3.append(inp)
            result.reused["phase3"] = len(ok_inputs) - len(todo3)
            result.executed["phase3"] = len(todo3)
            progress.reused(Phase.TOKENIZE, len(ok_inputs) - len(todo3), p3_results.values())
            remote3 = tasks.phase3_remote(ray, opts)
            subs = [
                (
                    str(i.index),
                    remote3.remote(
                        i.path,
                        i.index,
                        config,
                        layout.out,
                        tok_info,
                        generation3,
                        dedup_result,
                        removal_sha256.get(i.index),
                    ),
                )
                for i in todo3
            ]
            new3, fail3 = _Phase(Phase.TOKENIZE, progress).run(ray, subs)
            p3_results.update(new3)
            result.failures += [dict(f, input=inputs[int(f["unit"])].path) for f in fail3]

        # Every task has returned: finalize now, and draw the report while Ray shuts down
        # (~1.5 s of waiting on Ray's processes; the report is ~2 s of matplotlib).
        _finalize_run(
            config,
            layout,
            inputs,
            p1_results,
            p3_results,
            dedup_summary,
            dedup_result,
            tok_info,
            started,
            lock,
            progress,
            result,
        )
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
    p1_results: dict[str, Any],
    p3_results: dict[str, Any],
    dedup_summary: dict[str, Any],
    dedup_result: str | None,
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
    for key in sorted(p1_results, key=int):
        stats = stats + StatsSet.from_list(p1_results[key]["stats"])
    for key in sorted(p3_results, key=int):
        stats = stats + StatsSet.from_list(p3_results[key]["stats"])
    result.stats = stats
    finished = time.time()
    result.seconds = finished - started
    result.manifest = _finalize(
        config,
        layout,
        inputs,
        p1_results,
        p3_results,
        stats,
        dedup_summary,
        dedup_result,
        tok_info,
        result.failures,
        started,
        finished,
    )
    progress.finish(result)


def _slots(ray: Any, config: PipelineConfig) -> int:
    """How many phase-1 tasks run at once on the cluster."""
    try:
        cpus = float(ray.cluster_resources().get("CPU", 1))
    except Exception:  # a cluster that does not answer: no splitting
        return 1
    return max(1, int(cpus // config.execution.cpus_per_task))


def _run_phase1(
    ray: Any,
    opts: dict[str, Any],
    config: PipelineConfig,
    layout: OutputLayout,
    todo: list[InputFile],
    progress: Progress,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Phase 1 as Ray tasks: one per input file, or one per byte range of a file and then a
    merge (``runner/split.py``, ``runner/ranges.py``). Results are keyed by input index."""
    from dataproc.runner import ranges, tasks
    from dataproc.runner.split import plan_splits

    fp = config.fingerprint()
    splits = plan_splits(todo, config, _slots(ray, config)) if todo else {}
    remote1 = tasks.phase1_remote(ray, opts)
    remote_range = tasks.range_remote(ray, opts)
    remote_merge = tasks.merge_remote(ray, opts)
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
            return [], {k: v for k, v in res.items() if k != "stats"}
        return [], res

    later = len(splits) - len(merges_now)
    results, failures = _Phase(Phase.FILTER, progress).run(ray, subs, follow_up, later)
    return {k: v for k, v in results.items() if ":" not in k}, failures


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

    def __init__(self, failures: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(failures)} dedup unit(s) failed")
        self.failures = failures


def _run_dedup(
    ray: Any,
    opts: dict[str, Any],
    config: PipelineConfig,
    layout: OutputLayout,
    ok_inputs: list[InputFile],
    progress: Progress,
    p1_results: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Phase 2 as Ray tasks: ``dataproc.dedup.clusters.run_phase2`` with a Ray executor.

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
    results = p1_results or {}
    for inp in ok_inputs:
        kept = int(results.get(str(inp.index), {}).get("docs_kept", 1))
        sources.append(
            BandSource(layout.bands(inp.index), inp.index, gid + inp.index, kept * per_doc)
        )
    task_opts = dict(opts, memory=dcfg.task_memory)

    def execute(step: str, calls: list[tuple[str, Any, tuple[Any, ...]]]) -> dict[str, Any]:
        subs = [
            (unit, tasks.dedup_remote(ray, fn, task_opts).remote(*args)) for unit, fn, args in calls
        ]
        res, failures = _Phase(Phase.of(step), progress, step).run(ray, subs)
        if failures:
            raise _DedupStepFailed(failures)
        return res

    try:
        summary = run_phase2(
            sources, offsets, [i.index for i in ok_inputs], layout.dedup_dir, dcfg, execute
        )
    except _DedupStepFailed as e:
        return {}, e.failures
    return summary.to_dict(), []


def _hash_removals(
    ray: Any,
    opts: dict[str, Any],
    layout: OutputLayout,
    ok_inputs: list[InputFile],
    progress: Progress,
) -> tuple[dict[int, str], list[dict[str, Any]]]:
    """sha256 of every finished input's removal file, hashed by Ray tasks (a missing file
    fails its task with a DedupError naming it)."""
    remote = ray.remote(hash_removal_files).options(**opts)
    indices = [i.index for i in ok_inputs]
    subs = [(f"{c[0]}-{c[-1]}", remote.remote(layout.out, c)) for c in chunks(indices)]
    results, failures = _Phase(Phase.DEDUP_RESULT, progress).run(ray, subs)
    if failures:
        return {}, failures
    return {int(k): v for part in results.values() for k, v in part.items()}, []


def _finalize(
    config: PipelineConfig,
    layout: OutputLayout,
    inputs: list[InputFile],
    p1: dict[str, Any],
    p3: dict[str, Any],
    stats: StatsSet,
    dedup_summary: dict[str, Any],
    dedup_result: str | None,
    tok_info: dict[str, Any],
    failures: list[dict[str, Any]],
    started: float,
    finished: float,
) -> dict[str, Any]:
    from dataproc.io.manifest import build_manifest, with_row_group_counts, write_manifest
    from dataproc.io.token_writer import TokenFileInfo

    # Markers carry per-row-group counts; one from an older dataproc (resume) is read once.
    files = [
        with_row_group_counts(layout.out, TokenFileInfo(**f))
        for key in sorted(p3, key=int)
        for f in p3[key]["files"]
    ]
    input_entries = []
    for inp in inputs:
        # Sizes come from the phase-1 markers (bytes the task read), so finalizing a crawl of
        # 90,000 remote files costs no request per file; local files are stat'ed.
        nbytes = p1.get(str(inp.index), {}).get("input_bytes")
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
        dedup_result=dedup_result,
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
    for key in sorted(p1, key=int):
        for lang, n in p1[key].get("languages", {}).items():
            languages[lang] = languages.get(lang, 0) + n
    stats_doc = {
        "dataproc_version": __version__,
        "pipeline": config.name,
        "complete": not failures,
        "stages": stats.to_list(),
        "languages_after_filters": dict(sorted(languages.items())),
        "dedup": dedup_summary,
        "failures": manifest.get("failures", []),
        "execution": config.execution.model_dump(mode="json"),
        "timings": manifest["timings"],
    }
    fs.write_json_atomic(layout.stats, stats_doc)
    return manifest


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
