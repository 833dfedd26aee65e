"""What a run may do to ``--output`` before it writes anything: the checks that protect data.

Three rules, whatever the flags:

- ``--output`` must be a folder (or not exist yet). A file, FIFO, device or socket is refused:
  dataproc never writes into or deletes anything but a folder.
- No input may be inside ``--output``, and ``--output`` may not be inside an input folder:
  a run (and ``--overwrite``) owns what is under ``--output``, and a folder input would read
  the run's own files back.
- ``--overwrite`` only empties a folder that holds a dataproc run (``_work/run.json``), and
  then deletes only the entries a run creates (``RUN_ENTRIES``): a folder that holds anything
  else is refused, and a user's own file next to a run survives.
"""

from __future__ import annotations

import os
import stat

from dataproc.errors import OutputError
from dataproc.io import fs
from dataproc.io.layout import LOCK_DIR, RUN_ENTRIES, OutputLayout
from dataproc.runner.plan import InputFile

_KINDS = (
    (stat.S_ISREG, "a file"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def run_entries_text() -> str:
    """The names ``--overwrite`` deletes, for messages that mention the flag."""
    return ", ".join(n + ("" if "." in n else "/") for n in RUN_ENTRIES)


def check_output_target(out: str) -> None:
    """Refuse an ``--output`` that exists and is not a folder (never written to or deleted)."""
    if fs.is_remote(out):
        fsys, inner = fs.get_fs(out)
        if fsys.isfile(inner):
            raise OutputError(f"--output {out} is a file, not a folder; give a folder path")
        return
    try:
        mode = os.stat(out).st_mode
    except FileNotFoundError:
        if os.path.islink(out):
            raise OutputError(
                f"--output {out} is a broken symbolic link; give a folder path"
            ) from None
        return
    if stat.S_ISDIR(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a folder")
    raise OutputError(
        f"--output {out} is {kind}, not a folder; give a folder path "
        "(dataproc writes into and deletes only folders it created)"
    )


def _norm(path: str) -> str:
    if fs.is_remote(path):
        return path.rstrip("/")
    return os.path.realpath(path)


def _inside(child: str, parent: str) -> bool:
    """True if ``child`` is ``parent`` or below it (both normalized with ``_norm``)."""
    if child == parent:
        return True
    sep = "/" if fs.is_remote(parent) else os.sep
    return child.startswith(parent.rstrip(sep) + sep)


def _input_folders(patterns: list[str], inputs: list[InputFile]) -> list[tuple[str, str]]:
    """(pattern, folder) for every pattern that names a folder or a recursive glob."""
    files = {i.path for i in inputs}
    folders = []
    for pattern in patterns:
        if "**" in pattern:
            base = pattern.split("**", 1)[0].rstrip("/\\") or "."
            folders.append((pattern, base))
        elif any(c in pattern for c in "*?["):
            continue  # a one-level glob never reaches into a sub-folder
        elif fs.is_remote(pattern):
            if pattern.rstrip("/") not in files and not pattern.startswith("http"):
                folders.append((pattern, pattern))
        elif os.path.isdir(pattern):
            folders.append((pattern, pattern))
    return folders


def check_inputs_outside(patterns: list[str], inputs: list[InputFile], out: str) -> None:
    """Refuse inputs inside ``out`` and ``out`` inside an input folder (whatever the flags)."""
    out_n = _norm(out)
    for inp in inputs:
        if fs.is_remote(inp.path) != fs.is_remote(out):
            continue
        if _inside(_norm(inp.path), out_n):
            raise OutputError(
                f"--input {inp.path} is inside --output {out}; a run owns everything under its "
                "output folder: choose an --output that holds no input"
            )
    for pattern, folder in _input_folders(patterns, inputs):
        if fs.is_remote(folder) != fs.is_remote(out):
            continue
        if _inside(out_n, _norm(folder)):
            raise OutputError(
                f"--output {out} is inside the input folder {pattern}; the run would read its "
                "own output back: choose an --output outside every input folder"
            )


def holds_run(layout: OutputLayout) -> bool:
    """True if ``OUT`` holds a dataproc run (its run state ``_work/run.json``)."""
    return fs.exists(layout.run_state)


def foreign_entries(layout: OutputLayout) -> list[str]:
    """Entries of ``OUT`` when it is not empty and holds no dataproc run (else [])."""
    if holds_run(layout):
        return []
    return [e for e in fs.listdir(layout.out) if e.rstrip("/").rsplit("/", 1)[-1] != LOCK_DIR]


def refuse_foreign(layout: OutputLayout) -> None:
    """Refuse a non-empty folder that holds no dataproc run, with or without --overwrite."""
    entries = foreign_entries(layout)
    if entries:
        first = entries[0].rstrip("/").rsplit("/", 1)[-1]
        raise OutputError(
            f"{layout.out} is not empty and holds no dataproc run (it has {first!r}"
            f"{f' and {len(entries) - 1} more' if len(entries) > 1 else ''}); dataproc never "
            "deletes what it did not create: use an empty or new --output folder"
        )


def wipe_run(layout: OutputLayout) -> None:
    """Delete the previous run in ``OUT``: the entries a run creates, nothing else.

    Called with the run lock held and after ``holds_run`` was checked; ``_work`` goes last, so
    an interrupted wipe still leaves ``run.json`` to mark the folder as dataproc's.
    """
    if not holds_run(layout):
        raise OutputError(f"{layout.out} holds no dataproc run; refusing to delete anything")
    entries = layout.run_entries()
    work = layout.work
    for path in [e for e in entries if e != work] + [work]:
        fs.remove(path, recursive=True)
