"""Turn the user's ``--input`` patterns into a sorted, de-duplicated list of input files."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

from dataproc.errors import InputError
from dataproc.io import fs

WARC_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz")


@dataclass(frozen=True)
class InputFile:
    """One input shard. ``index`` is its position in the sorted list (it names outputs)."""

    index: int
    path: str


def _is_glob(p: str) -> bool:
    return any(c in p for c in "*?[")


def _expand_one(pattern: str) -> list[str]:
    if fs.is_remote(pattern):
        if pattern.startswith(("http://", "https://")):
            return [pattern]  # HTTP has no listing: a URL names one file
        fsys, inner = fs.get_fs(pattern)
        proto = pattern.split("://", 1)[0]
        if _is_glob(pattern):
            found = sorted(fsys.glob(inner))
        elif fsys.isdir(inner):
            found = sorted(p for p in fsys.find(inner) if p.endswith(WARC_SUFFIXES))
        else:
            found = [inner] if fsys.exists(inner) else []
        if not found:
            raise InputError(
                f"--input {pattern!r}: nothing found there; check the URL and your credentials"
            )
        return [f"{proto}://{p}" for p in found]
    if _is_glob(pattern):
        found = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
        if not found:
            raise InputError(
                f"--input {pattern!r} matches no file; quote the pattern so your shell doesn't expand it, "
                "and check the directory"
            )
        return found
    if os.path.isdir(pattern):
        found = sorted(
            os.path.join(root, name)
            for root, _dirs, names in os.walk(pattern)
            for name in names
            if name.endswith(WARC_SUFFIXES)
        )
        if not found:
            raise InputError(
                f"--input {pattern!r} is a directory with no .warc/.warc.gz files in it"
            )
        return found
    if os.path.isfile(pattern):
        return [pattern]
    raise InputError(f"--input {pattern!r}: no such file or directory")


def plan_inputs(patterns: list[str]) -> list[InputFile]:
    """Expand files, directories, globs and URLs; sort; drop repeated paths."""
    if not patterns:
        raise InputError(
            "no inputs: give --input PATH (a WARC file, directory, glob or URL) or --sample"
        )
    paths: set[str] = set()
    for pattern in patterns:
        for p in _expand_one(pattern):
            paths.add(p if fs.is_remote(p) else os.path.abspath(p))
    return [InputFile(i, p) for i, p in enumerate(sorted(paths))]
