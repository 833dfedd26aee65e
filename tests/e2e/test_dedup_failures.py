"""A failed dedup never ships undeduplicated output (issue 12, item 3), on a real local Ray.

Faults are real damage to the on-disk objects phase 2 reads — band keys (read by the bucket
tasks), edges (component rounds), exact groups (removal tasks), removal files (dedup-result
tasks) — placed between the phase that writes an object and the phase that reads it
(``_phase_faults.PhaseHooks``), or a phase-2 worker process SIGKILLed while it reads one
(``_phase_faults.FifoTrap``). Which step writes which directory is learnt from a clean run, so
the tests follow phase 2's layout instead of hard-coding it. Every run here forces the
distributed components path (several node ranges, star rounds as Ray tasks), which a corpus
this small would otherwise skip; ``test_every_phase2_task_kind_was_faulted`` checks that each
kind of phase-2 task met both a damaged input and a killed worker.

Every failed run must exit non-zero with an error naming the object, write no token file and
no complete manifest; the rerun (after repairing what was damaged) must be byte-identical to a
clean run. ``test_issue_scenario_corrupt_band_file`` is the issue's reproduction: before the
fix, the rerun held the clean run's N documents plus the duplicates dedup should remove.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from _crawl_fixtures import manifest_core, output_digest, write_shards
from _phase_faults import FifoTrap, PhaseHooks, pick

from dataproc.config import build_config
from dataproc.runner.driver import run_pipeline
from dataproc.runner.phases import Phase, is_dedup_failure
from dataproc.verify import verify_output

pytestmark = pytest.mark.ray

NUM_SHARDS = 3
# Work-file directories phase 2 reads (relative to _work/). One that a layout lacks is skipped;
# test_every_phase2_task_kind_was_faulted fails if a kind of phase-2 task is never hit.
# (_work/dedup/cc/: a star round's output is read only when the round was not final; with
# this corpus round 0 is final, so its files are deleted unread.)
CORRUPT = ["bands", "dedup/edges", "dedup/exact", "dedup/removed"]
DELETE = ["bands", "dedup/removed"]
KILL = ["bands", "dedup/edges", "dedup/exact", "dedup/removed"]

_FAILED_IN: set[Phase] = set()  # phase-2 kinds a damaged object made fail (coverage test)
_KILLED_IN: set[Phase] = set()  # phase-2 kinds a worker was killed in


def _config(inputs: list[Path], out: Path, against: list[Path] | None = None):
    return build_config(
        {
            "inputs": [str(p) for p in inputs],
            "output": str(out),
            "execution": {"progress": "none"},
            "dedup": {"against": [str(a) for a in against or []]},
        }
    )


def _counts(out: Path) -> dict:
    """stats.json without timings: every stage's counts and the dedup summary."""
    stats = json.loads((out / "stats.json").read_text())
    stages = [
        {k: v for k, v in st.items() if k not in ("seconds", "cpu_seconds")}
        for st in stats["stages"]
    ]
    return {"stages": stages, "dedup": stats["dedup"]}


def _rows(out: Path) -> int:
    return json.loads((out / "manifest.json").read_text())["totals"]["rows"]


@pytest.fixture(scope="module", autouse=True)
def distributed_components():
    """Plan several node ranges (star rounds as Ray tasks) however few edges there are."""
    from dataproc.dedup import clusters

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(clusters, "EDGE_ROW_BYTES", 1 << 28)  # 2 edges' rows fill a 1 GiB budget
        yield


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("dedup-fail-in"), NUM_SHARDS)


@pytest.fixture(scope="module")
def reference(ray_cluster, shards, tmp_path_factory):
    """A clean run, and which phase wrote which work files."""
    out = tmp_path_factory.mktemp("dedup-fail-ref") / "out"
    hooks = PhaseHooks(out)
    result = run_pipeline(_config(shards, out), progress=hooks)
    assert result.ok, result.failures
    stats = json.loads((out / "stats.json").read_text())
    assert stats["dedup"]["docs_removed"] > 0  # the fixture has duplicates for dedup to remove
    assert verify_output(str(out)).ok
    writer = {}
    for phase in hooks.order:
        for rel in hooks.written[phase]:
            for kind in set(CORRUPT + DELETE + KILL):
                if rel.startswith(kind + "/"):
                    writer.setdefault(kind, phase)
    dedup_phases = {Phase.of(p) for p in hooks.order if Phase.of(p).is_dedup}
    assert Phase.DEDUP_COMPONENTS in dedup_phases, hooks.order  # the forced distributed path
    return {
        "out": out,
        "digest": output_digest(out),
        "manifest": manifest_core(out),
        "rows": _rows(out),
        "counts": _counts(out),
        "writer": writer,
        "dedup_phases": dedup_phases,
    }


def _failed_state(result, out: Path) -> dict:
    """What a failed run left: its result, manifest, token files and verify's verdict."""
    tokens = out / "tokens"
    return {
        "result": result,
        "manifest": json.loads((out / "manifest.json").read_text()),
        "tokens": sorted(p.name for p in tokens.iterdir()) if tokens.exists() else [],
        "verify_ok": verify_output(str(out)).ok,
    }


def _assert_failed_cleanly(failed: dict, path: Path) -> None:
    """Non-zero exit, a phase-2 failure naming ``path``, phase 3 not run, nothing shipped."""
    result = failed["result"]
    assert not result.ok and result.exit_code != 0
    dedup = [f for f in result.failures if is_dedup_failure(f)]
    assert dedup, result.failures
    assert any(str(path) in f["error"] for f in dedup), dedup
    skipped = [f for f in result.failures if f["phase"] == Phase.TOKENIZE]
    assert skipped and "dedup (phase 2) failed" in skipped[0]["error"], result.failures
    assert failed["manifest"]["complete"] is False and failed["manifest"]["files"] == []
    assert failed["tokens"] == [] and not failed["verify_ok"]
    _FAILED_IN.update(Phase.of(str(f["phase"])) for f in dedup)


def _assert_same_as_reference(out: Path, reference: dict) -> None:
    assert output_digest(out) == reference["digest"]
    assert manifest_core(out) == reference["manifest"]
    assert _rows(out) == reference["rows"]
    assert _counts(out) == reference["counts"]  # nothing counted twice (or lost)
    check = verify_output(str(out))
    assert check.ok, check.problems


def _damage_then_rerun(shards, reference, tmp_path, kind: str, how: str) -> None:
    if kind not in reference["writer"]:
        pytest.skip(f"this phase-2 layout has no _work/{kind}/")
    out = tmp_path / "out"
    damaged: dict[Path, bytes] = {}

    def on_end(phase: str) -> None:
        if phase != reference["writer"][kind] or damaged:
            return
        rel = pick(hooks.written[phase], kind)
        assert rel is not None, (kind, hooks.written[phase])
        path = out / "_work" / rel
        damaged[path] = path.read_bytes()
        if how == "truncate":  # a torn write or a half-uploaded object
            path.write_bytes(damaged[path][: len(damaged[path]) // 2])
        else:
            path.unlink()

    hooks = PhaseHooks(out, on_end)
    result = run_pipeline(_config(shards, out), progress=hooks)
    assert damaged, f"no file under _work/{kind}/ was damaged"
    (path,) = damaged
    failed = _failed_state(result, out)

    # Repair what phase 1 wrote (a phase-2 object is rebuilt by the rerun anyway), rerun.
    path.write_bytes(damaged[path])
    again = run_pipeline(_config(shards, out))
    assert again.ok, again.failures
    assert _rows(out) == reference["rows"]  # the issue: N + the duplicates before the fix
    _assert_same_as_reference(out, reference)
    _assert_failed_cleanly(failed, path)


def test_issue_scenario_corrupt_band_file(shards, reference, tmp_path):
    """Issue 12: a corrupt band file made dedup fail; the rerun with it repaired must hold N
    documents again (before the fix: N + the duplicates, with a 'complete' manifest)."""
    _damage_then_rerun(shards, reference, tmp_path, "bands", "truncate")


@pytest.mark.parametrize("kind", [k for k in CORRUPT if k != "bands"])
def test_corrupt_phase2_object(shards, reference, tmp_path, kind):
    _damage_then_rerun(shards, reference, tmp_path, kind, "truncate")


@pytest.mark.parametrize("kind", DELETE)
def test_missing_phase2_object(shards, reference, tmp_path, kind):
    _damage_then_rerun(shards, reference, tmp_path, kind, "delete")


@pytest.mark.parametrize("kind", KILL)
def test_phase2_worker_killed_while_reading(shards, reference, tmp_path, kind):
    """SIGKILL the worker process reading a phase-2 input: Ray retries, output is identical."""
    if kind not in reference["writer"]:
        pytest.skip(f"this phase-2 layout has no _work/{kind}/")
    out = tmp_path / "out"
    traps: list[FifoTrap] = []

    def kill(pid: int) -> None:
        assert pid != os.getpid(), "the driver, not a Ray worker, read the file"
        os.kill(pid, signal.SIGKILL)

    def on_end(phase: str) -> None:
        if phase != reference["writer"][kind] or traps:
            return
        rel = pick(hooks.written[phase], kind)
        assert rel is not None
        traps.append(FifoTrap(out / "_work" / rel, tmp_path, kill, lambda: hooks.current_phase))

    hooks = PhaseHooks(out, on_end)
    try:
        result = run_pipeline(_config(shards, out), progress=hooks)
    finally:
        for t in traps:
            t.close()
    (trap,) = traps
    if not trap.pids:
        pytest.skip(f"no phase-2 task of this layout reads _work/{kind}/")
    assert not trap.released, "a reader of the file was not among the processes killed"
    assert result.ok, result.failures
    _assert_same_as_reference(out, reference)
    _KILLED_IN.update(Phase.of(p) for p in trap.phases if p is not None and Phase.of(p).is_dedup)


@pytest.fixture(scope="module")
def slices(ray_cluster, shards, tmp_path_factory):
    """Slice A (shards 0-1), then slice B (shard 2) run ``--dedup-against`` A: B's reference."""
    base = tmp_path_factory.mktemp("dedup-against")
    a, b = base / "a", base / "b"
    assert run_pipeline(_config(shards[:2], a)).ok
    result = run_pipeline(_config(shards[2:], b, against=[a]))
    assert result.ok, result.failures
    assert json.loads((b / "stats.json").read_text())["dedup"]["docs_removed"] > 0
    return {
        "a": a,
        "digest": output_digest(b),
        "manifest": manifest_core(b),
        "rows": _rows(b),
        "counts": _counts(b),
    }


@pytest.mark.parametrize(("kind", "how"), [("bands", "truncate"), ("dedup/removed", "delete")])
def test_damaged_object_of_a_dedup_against_output(shards, slices, tmp_path, kind, how):
    """An earlier output's object that phase 2 reads in place is damaged: the run fails naming
    it (before any work, or as a phase-2 failure) and ships nothing; repaired, the rerun
    equals B's clean run."""
    from dataproc.errors import DedupError

    work = slices["a"] / "_work"
    rel = pick([p.relative_to(work).as_posix() for p in work.rglob("*.parquet")], kind)
    assert rel is not None
    path = work / rel
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.unlink()
    out = tmp_path / "out"
    try:
        try:
            result = run_pipeline(_config(shards[2:], out, against=[slices["a"]]))
        except DedupError as e:  # refused before any work: nothing written at all
            assert str(path) in str(e)
            assert not (out / "tokens").exists() or not list((out / "tokens").iterdir())
        else:
            _assert_failed_cleanly(_failed_state(result, out), path)
    finally:
        path.write_bytes(data)
    again = run_pipeline(_config(shards[2:], out, against=[slices["a"]]))
    assert again.ok, again.failures
    _assert_same_as_reference(out, slices)


def test_every_phase2_task_kind_was_faulted(reference, request):
    """Each kind of phase-2 task met a damaged input and a killed worker (needs the tests
    above in this session: skipped when some were deselected)."""
    names = {item.name for item in request.session.items}
    if not any(n.startswith("test_phase2_worker_killed") for n in names) or not any(
        n.startswith("test_corrupt_phase2_object") for n in names
    ):
        pytest.skip("run the whole module to check coverage")
    assert reference["dedup_phases"] <= _FAILED_IN, (reference["dedup_phases"], _FAILED_IN)
    assert reference["dedup_phases"] <= _KILLED_IN, (reference["dedup_phases"], _KILLED_IN)


def test_phase_tags():
    """One enum tags every kind of task; every dedup kind counts as phase 2."""
    assert {p.number for p in Phase} == {1, 2, 3}
    assert [p for p in Phase if p.number == 1] == [Phase.FILTER]
    assert [p for p in Phase if p.number == 3] == [Phase.TOKENIZE]
    assert all(p.is_dedup == (p.value == "dedup" or p.value.startswith("dedup-")) for p in Phase)
    assert Phase.of("dedup") is Phase.DEDUP  # phase 2 as a whole: its marker, its reuse count
    assert f"{Phase.DEDUP_BUCKETS}" == str(Phase.DEDUP_BUCKETS) == "dedup-buckets"
    assert json.dumps({"phase": Phase.DEDUP_REMOVED}) == '{"phase": "dedup-removed"}'
    assert Phase.of("dedup-components-3S") is Phase.DEDUP_COMPONENTS
    assert Phase.of("dedup-buckets") is Phase.DEDUP_BUCKETS
    with pytest.raises(ValueError):
        Phase.of("dedup-new-kind")  # a new kind of task must be added to the enum
    assert is_dedup_failure({"phase": "dedup-components-0L"})
    assert is_dedup_failure({"phase": "dedup-new-kind"})  # still stops phase 3
    assert not is_dedup_failure({"phase": "filter"})


def test_phase3_refuses_a_missing_removal_file(tmp_path):
    from dataproc.errors import DedupError
    from dataproc.runner.phase3 import _load_removed

    path = str(tmp_path / "_work" / "dedup" / "removed" / "000003.parquet")
    with pytest.raises(DedupError, match="removal file of input 3 is missing") as e:
        _load_removed(path, 3, "0" * 64)
    assert path in str(e.value)
