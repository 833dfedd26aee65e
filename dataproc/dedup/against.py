"""``--dedup-against OUT ...``: earlier outputs whose kept documents this run dedups against.

An earlier output takes part through its own band-key files (``OUT/_work/bands``) and removal
lists (``OUT/_work/dedup/removed``), read in place (local or remote): its documents are placed
in front of this run's in the phase-2 id space, so a component holding one of them keeps it
and removes every document of this run in it. Checked before any work starts: the folder must
be a complete dataproc output with dedup on and the same dedup settings (``SAME_SETTINGS``);
anything else is a one-line ``DedupError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dataproc.dedup.config import DedupConfig
from dataproc.errors import DedupError
from dataproc.io.layout import OutputLayout

if TYPE_CHECKING:
    from dataproc.io.markers import RunState

SAME_SETTINGS = ("num_perm", "bands", "rows", "ngram", "seed", "exact")
"""Dedup settings that must agree (shingling, normalization and hashing depend on them)."""


@dataclass(frozen=True)
class EarlierOutput:
    """An output given to ``--dedup-against``: its inputs' band files, rows and removals."""

    path: str
    band_files: list[str]
    removed_files: list[str]
    rows: list[int]


def _settings_of(out: str) -> tuple[RunState, dict[str, Any]]:
    """The run state and manifest of an earlier output, checked to be a complete run."""
    from dataproc.io import fs
    from dataproc.io.markers import MarkerError, read_run_state

    layout = OutputLayout(out)
    run_json, manifest = layout.run_state, layout.manifest
    if not fs.exists(run_json) or not fs.exists(manifest):
        raise DedupError(
            f"--dedup-against {out}: not a dataproc output (no manifest.json and _work/run.json)"
        )
    try:
        state = read_run_state(run_json)
        man = fs.read_json(manifest)
    except (OSError, ValueError, MarkerError) as e:
        raise DedupError(f"--dedup-against {out}: cannot read its run state: {e}") from None
    if not man.get("complete"):
        raise DedupError(f"--dedup-against {out}: that run is not complete; finish it first")
    return state, man


def check_against(config: DedupConfig) -> list[EarlierOutput]:
    """Validate every ``dedup.against`` output; return where their dedup files are."""
    from dataproc.io import fs
    from dataproc.io.markers import FilterMarker, MarkerError, read_marker

    outs: list[EarlierOutput] = []
    mine = config.model_dump(mode="json")
    for out in config.against:
        state, manifest = _settings_of(out)
        theirs = state.settings.get("dedup", {})
        if not theirs.get("enabled", False):
            raise DedupError(f"--dedup-against {out}: that run had dedup off; nothing to use")
        diff = [k for k in SAME_SETTINGS if theirs.get(k) != mine.get(k)]
        if diff:
            what = ", ".join(f"{k} {theirs.get(k)!r} != {mine.get(k)!r}" for k in diff)
            raise DedupError(f"--dedup-against {out}: dedup settings differ ({what})")
        layout = OutputLayout(out)
        indices = [int(i["index"]) for i in manifest.get("inputs", [])]
        bands = [layout.bands(i) for i in indices]
        if indices and not fs.exists(bands[0]):
            raise DedupError(
                f"--dedup-against {out}: {bands[0]} is missing (its _work/ was deleted, or it "
                "was written by an older dataproc); rerun that output"
            )
        rows = []
        for i in indices:
            try:
                marker = read_marker(layout.phase1_marker(i), FilterMarker, state.fingerprint)
            except MarkerError as e:
                raise DedupError(f"--dedup-against {out}: {e}") from None
            kept = marker.docs_kept if marker is not None else 0
            rows.append(kept * (config.bands + 1))
        removed = [layout.removed(i) for i in indices]
        outs.append(EarlierOutput(out, bands, removed, rows))
    return outs
