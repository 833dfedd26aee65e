"""Resume trusts files, not markers: before a rerun skips a unit, its files are checked.

A done-marker (``_work/done/*.json``) names the files its unit wrote with their sizes (token
files also with their sha256). ``invalidate_damaged_units`` deletes the marker of every unit
whose files are missing or have another size (with ``verify``: another sha256), so the run
redoes exactly those units (a phase-1 work file under ``_work/`` counts only while its input's
phase 3 still needs it); they rewrite the same names with the same bytes, and the result is
byte-identical to a clean run. Sizes come from one listing per folder (``ls`` with details),
never one request per file, so checking a 90,000-input run on S3 costs a few listing pages.

``sweep_temp_files`` removes the ``.<name>.<uuid>.tmp`` files a killed worker left next to
the file it was writing (``fs.atomic_write``); with the run lock held no other run writes
there, so any such file is garbage.
"""

from __future__ import annotations

import contextlib
import logging
import os

from dataproc.errors import OutputError
from dataproc.io import fs
from dataproc.io.layout import OutputLayout, band_folder
from dataproc.io.markers import FilterMarker, OutputFile, TokenizeMarker, read_marker
from dataproc.runner.plan import InputFile

log = logging.getLogger("dataproc")

_HASH_CHUNK = 4 * 1024 * 1024


def describe_outputs(out_dir: str, paths: list[str]) -> list[OutputFile]:
    """The files a task wrote (path relative to OUT, size), for its done-marker."""
    prefix = out_dir.rstrip("/\\")
    described = []
    for path in paths:
        rel = path[len(prefix) :].lstrip("/\\").replace("\\", "/")
        described.append(OutputFile(path=rel, bytes=fs.size(path)))
    return described


class _Sizes:
    """File sizes per folder from one listing each, cached for the whole check."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self._dirs: dict[str, dict[str, int]] = {}

    def size(self, rel: str) -> int | None:
        folder, _, name = rel.rpartition("/")
        if folder not in self._dirs:
            self._dirs[folder] = self._list(fs.join(self.out_dir, *folder.split("/")))
        return self._dirs[folder].get(name)

    @staticmethod
    def _list(path: str) -> dict[str, int]:
        if not fs.is_remote(path):
            try:
                with os.scandir(path) as it:
                    return {e.name: e.stat().st_size for e in it if e.is_file()}
            except FileNotFoundError:
                return {}
        fsys, inner = fs.get_fs(path)
        if not fsys.exists(inner):
            return {}
        return {
            str(e["name"]).rstrip("/").rsplit("/", 1)[-1]: int(e.get("size") or 0)
            for e in fsys.ls(inner, detail=True)
            if e.get("type") != "directory"
        }


def damaged_files(
    out_dir: str,
    marker: FilterMarker | TokenizeMarker,
    sizes: _Sizes,
    verify: bool,
    work_needed: bool = True,
) -> list[str]:
    """Why each file the marker names is not as recorded (empty when all are intact).

    Work files (under ``_work/``) are checked only when ``work_needed``: once a later phase
    has consumed them they may be deleted (docs/architecture.md), and that costs no redo.
    """
    problems = []
    for entry in marker.checked_files():
        rel = entry.path
        if rel.startswith("_work/") and not work_needed:
            continue
        actual = sizes.size(rel)
        if actual is None:
            problems.append(f"{rel} is missing")
        elif actual != entry.bytes:
            problems.append(f"{rel} has {actual} bytes, {entry.bytes} recorded")
        elif (
            verify
            and entry.sha256
            and fs.sha256_file(fs.join(out_dir, rel), _HASH_CHUNK) != entry.sha256
        ):
            problems.append(f"{rel} has another sha256 than recorded")
    return problems


def invalidate_damaged_units(
    layout: OutputLayout, inputs: list[InputFile], fingerprint: str, verify: bool
) -> list[str]:
    """Delete the done-markers whose files are damaged; return the markers deleted.

    Only this run's markers (same config fingerprint) are checked: others are redone anyway.
    Phase 3 is checked first: when it must be redone, phase 1's work files must exist too.
    """
    sizes = _Sizes(layout.out)
    done = {p.rstrip("/").rsplit("/", 1)[-1] for p in fs.listdir(layout.done_dir)}
    invalidated = []
    removals = _removals_applied(layout)

    def check(
        inp: InputFile, path: str, kind: type[FilterMarker | TokenizeMarker], work_needed: bool
    ) -> bool:
        """True if the unit stays done."""
        listed = path.rsplit("/", 1)[-1] in done
        marker = read_marker(path, kind, fingerprint) if listed else None
        if marker is None:
            return False
        problems = damaged_files(layout.out, marker, sizes, verify, work_needed)
        if not problems:
            return True
        if removals and path == layout.phase3_marker(inp.index):
            raise OutputError(
                f"{layout.out} had documents taken out by `dataproc remove` ({removals} "
                f"request(s)), and input {inp.index}'s files no longer match what the run wrote "
                f"({problems[0]}): redoing them would bring removed documents back. Run into a "
                "new --output and apply the same removal requests there"
            )
        more = " ..." if len(problems) > 3 else ""
        log.warning(
            "input %d (%s): %s; redoing that unit",
            inp.index,
            inp.path,
            "; ".join(problems[:3]) + more,
        )
        fs.remove(path)
        invalidated.append(path)
        return False

    for inp in inputs:
        phase3_done = check(inp, layout.phase3_marker(inp.index), TokenizeMarker, True)
        check(inp, layout.phase1_marker(inp.index), FilterMarker, not phase3_done)
    return invalidated


def _removals_applied(layout: OutputLayout) -> int:
    """How many ``dataproc remove`` requests the output's manifest lists."""
    if not fs.exists(layout.manifest):
        return 0
    try:
        return len(fs.read_json(layout.manifest).get("removals") or [])
    except (OSError, ValueError, AttributeError):
        return 0


def sweep_temp_files(layout: OutputLayout) -> list[str]:
    """Delete the temporary files killed writers left in OUT's folders (local outputs only).

    Object stores never see a temporary file (``fs.atomic_write`` uploads complete files).
    """
    if fs.is_remote(layout.out):
        return []
    removed = []
    folders = [
        layout.out,
        layout.tokens_dir,
        layout.rejects_dir,
        layout.work,
        layout.docs_dir,
        layout.done_dir,
        layout.bands_dir,
    ]
    # The part folders of split inputs (runner/ranges.py) and their band-key folders.
    with contextlib.suppress(OSError):
        for part in os.scandir(layout.ranges_dir):
            folders += [part.path, band_folder(part.path)]
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for e in entries:
            if e.name.startswith(".") and e.name.endswith(".tmp") and e.is_file():
                try:
                    os.unlink(e.path)
                    removed.append(e.path)
                except FileNotFoundError:
                    continue
    if removed:
        log.info("removed %d temporary file(s) left by killed writers", len(removed))
    return removed
