"""The done-markers of a run (``OUT/_work/done/*.json``) and ``_work/run.json``, as typed records.

A marker is what a finished unit of work leaves behind, written last (atomically) by the task
that did the work: phase 1 per input (``FilterMarker``), phase 2 once per run
(``DedupMarker``), phase 3 per input (``TokenizeMarker``). The same record is what the Ray
task returns to the driver, so the driver, resume, ``dataproc report`` on an interrupted run
and ``--dry-run`` all read one shape instead of spelling keys.

The JSON is the format markers have had so far: a marker written by this version is read back
by the previous one and the other way round. One that parses as JSON but not as its record
(a different dataproc wrote it) is a ``MarkerError`` naming the file and the fix; a marker of
another config (other fingerprint) is simply not this run's, as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from dataproc.errors import OutputError
from dataproc.io import fs
from dataproc.io.token_writer import TokenFileInfo
from dataproc.stats import StatsSet


class MarkerError(OutputError):
    """A done-marker or run state file that is JSON but not of the shape this dataproc writes."""


class _Record(BaseModel):
    """A JSON record under ``_work/``: extra keys are errors (a different format), frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to the file."""
        return self.model_dump(mode="json")


class OutputFile(_Record):
    """A file a task wrote, as its marker records it (resume checks it before trusting it)."""

    path: str  # relative to OUT, with "/"
    bytes: int


@dataclass(frozen=True)
class CheckedFile:
    """A file resume checks before it trusts a marker: size always, sha256 with --verify."""

    path: str  # relative to OUT
    bytes: int
    sha256: str | None = None


class UnitMarker(_Record):
    """What every per-input marker has: the input, the config it ran with, its stage counts."""

    input_index: int
    input: str
    fingerprint: str
    stats: list[dict[str, Any]]  # StatsSet.to_list()
    seconds: float

    def stats_set(self) -> StatsSet:
        """The unit's stage counters."""
        return StatsSet.from_list(self.stats)

    @property
    def progress_unit(self) -> int:
        """The unit's number in live progress (its input's index)."""
        return self.input_index

    def checked_files(self) -> list[CheckedFile]:
        """The files resume checks before it trusts this marker."""
        raise NotImplementedError


class FilterMarker(UnitMarker):
    """Phase 1 of one input is done: its survivors, band keys and rejects are in place."""

    input_bytes: int | None  # bytes read (the finalize step's input sizes, no HEAD each)
    docs_kept: int
    languages: dict[str, int]  # survivors per language
    outputs: list[OutputFile] = []  # the survivors file and the rejects

    def checked_files(self) -> list[CheckedFile]:
        return [CheckedFile(f.path, f.bytes) for f in self.outputs]


class DedupMarker(_Record):
    """Phase 2 is done: every finished input has a removal file, hashed into ``result``.

    ``generation`` keys it on the set of inputs that finished phase 1 (and the config), so a
    rerun in which another input got through redoes dedup.
    """

    fingerprint: str
    generation: str
    # ``ClusterSummary.to_dict()`` (dataproc.dedup.clusters), as stats.json and the report
    # show it: kept as written, so this floor of the package does not depend on dedup.
    summary: dict[str, Any]
    result: str  # dataproc.runner.dedup_result.dedup_digest(removed_sha256)
    removed_sha256: dict[int, str]  # input index -> sha256 of its removal file


class TokenizeMarker(UnitMarker):
    """Phase 3 of one input is done: its token files (``files``) and dedup rejects exist.

    ``generation`` keys it on phase 2's result: a token file written against other removals
    (or none) is never reused.
    """

    dedup_result: str | None
    files: list[TokenFileInfo]  # in the manifest's format (sha256 for --verify)
    generation: str
    outputs: list[OutputFile] = []  # the dedup rejects

    def checked_files(self) -> list[CheckedFile]:
        tokens = [CheckedFile(f.path, f.bytes, f.sha256) for f in self.files]
        return tokens + [CheckedFile(f.path, f.bytes) for f in self.outputs]


def range_unit(input_index: int, k: int) -> int:
    """The live-progress unit of byte range ``k`` of an input (apart from input numbers)."""
    return (1 << 40) | (input_index << 12) | k


class RangeMarker(FilterMarker):
    """Phase 1 of byte range ``range`` of a split input is done (``runner/ranges.py``): the
    range's part folder holds its survivors, rejects and band keys (``outputs``), numbered
    from 0; the merge checks where it started and stopped, and in which reader state
    (``readers/spans.py``: ``ReaderState.to_dict()``)."""

    range: int
    start: int
    end: int | None
    state: dict[str, Any]  # the reader state the range started in
    stop: int  # the byte the reader stopped at (the next range must start there)
    end_state: dict[str, Any]  # the reader state it ended in
    ordinals: int  # records numbered (the doc-index base of the next range)
    first_ok: bool  # its first member read cleanly

    @property
    def progress_unit(self) -> int:
        return range_unit(self.input_index, self.range)


M = TypeVar("M", bound=_Record)


def parse_marker(kind: type[M], data: Any, path: str) -> M:
    """``data`` (a marker's JSON) as ``kind``; MarkerError naming ``path`` if it is not one."""
    try:
        return kind.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise MarkerError(
            f"{path}: not a {kind.__name__} this dataproc can read ({where}: {first['msg']}); "
            "another dataproc version wrote it. Rerun with --overwrite, or delete this file to "
            "redo its unit"
        ) from None


def read_marker(path: str, kind: type[M], fingerprint: str) -> M | None:
    """The marker at ``path`` if it is this config's (``fingerprint``), else None.

    Missing, unreadable or half-written JSON (a crash; markers are written atomically, so only
    a foreign tool leaves one) is None: the unit is redone. JSON of this config that is not
    a ``kind`` raises MarkerError rather than guessing.
    """
    if not fs.exists(path):
        return None
    try:
        data = fs.read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("fingerprint") != fingerprint:
        return None
    return parse_marker(kind, data, path)


def write_marker(path: str, marker: _Record) -> None:
    """Write ``marker`` atomically (readers see the old file or the whole new one)."""
    fs.write_json_atomic(path, marker.to_json())


class RunState(_Record):
    """``_work/run.json``: which run the folder holds (config, inputs) and its settings."""

    state_version: int
    fingerprint: str
    inputs_digest: str
    num_inputs: int
    settings: dict[str, Any] = {}  # the result-deciding config, for "what changed" errors

    def same_run(self, other: RunState) -> bool:
        """Whether ``other`` is the same config over the same inputs."""
        return (
            self.state_version == other.state_version
            and self.fingerprint == other.fingerprint
            and self.inputs_digest == other.inputs_digest
            and self.num_inputs == other.num_inputs
        )


def read_run_state(path: str) -> RunState:
    """``_work/run.json``; MarkerError naming it if it is not a run state of this format."""
    try:
        data = fs.read_json(path)
    except json.JSONDecodeError as e:
        raise MarkerError(f"{path}: not valid JSON ({e}); rerun with --overwrite") from None
    return parse_marker(RunState, data, path)
