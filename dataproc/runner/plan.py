"""Turn the user's ``--input`` patterns into a sorted, de-duplicated list of input files, and
check that the local ones are files dataproc can read before any work starts."""

from __future__ import annotations

import glob
import os
import stat
from dataclasses import dataclass

from dataproc.errors import InputError
from dataproc.io import fs
from dataproc.readers.sniff import ARCHIVE_NAME, Sniffed, sniff_stream


@dataclass(frozen=True)
class InputFile:
    """One input shard. ``index`` is its position in the sorted list (it names outputs)."""

    index: int
    path: str


def _is_glob(p: str) -> bool:
    return any(c in p for c in "*?[")


def _is_archive_name(path: str) -> bool:
    """Names a folder input picks up: every web-archive-looking file (``.warc``, ``.warc.gz``,
    ``.warc.zst``, ``.warc.bz2``, ``.warc.wet.gz``, ``.arc.gz``, ...), so that a format dataproc
    cannot read is refused by the check below instead of being skipped without a word."""
    return ARCHIVE_NAME.search(path) is not None


_FILE_TYPES = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _require_regular(path: str) -> None:
    """Refuse anything but a regular file (or a symlink to one). Reading a FIFO blocks until
    someone writes to it and a device may never end, so the run would hang; skipping it would
    silently leave data out. One line names the file and what it is."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise InputError(f"--input {path}: cannot be read ({e.strerror or e})") from None
    if stat.S_ISREG(mode):
        return
    what = next((name for test, name in _FILE_TYPES if test(mode)), "not a regular file")
    raise InputError(
        f"--input {path} is {what}, not a regular file: dataproc reads only regular files "
        "(it would block or never end); remove it or name the real files"
    )


def _expand_one(pattern: str) -> list[str]:
    if fs.is_remote(pattern):
        if pattern.startswith(("http://", "https://")):
            return [pattern]  # HTTP has no listing: a URL names one file
        fsys, inner = fs.get_fs(pattern)
        proto = pattern.split("://", 1)[0]
        if _is_glob(pattern):
            found = sorted(fsys.glob(inner))
        elif fsys.isdir(inner):
            found = sorted(p for p in fsys.find(inner) if _is_archive_name(p))
        else:
            found = [inner] if fsys.exists(inner) else []
        if not found:
            raise InputError(
                f"--input {pattern!r}: nothing found there; check the URL and your credentials"
            )
        return [f"{proto}://{p}" for p in found]
    if _is_glob(pattern):
        found = sorted(p for p in glob.glob(pattern, recursive=True) if not os.path.isdir(p))
        if not found:
            raise InputError(
                f"--input {pattern!r} matches no file; quote the pattern so your shell doesn't expand it, "
                "and check the directory"
            )
        for p in found:
            _require_regular(p)
        return found
    if os.path.isdir(pattern):
        found = sorted(
            os.path.join(root, name)
            for root, _dirs, names in os.walk(pattern)
            for name in names
            if _is_archive_name(name)
        )
        if not found:
            raise InputError(
                f"--input {pattern!r} is a directory with no .warc/.warc.gz files in it"
            )
        for p in found:
            _require_regular(p)
        return found
    if os.path.lexists(pattern):
        _require_regular(pattern)
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


def sniff_input(path: str) -> Sniffed:
    """What the file at ``path`` looks like, from its first bytes (one short read)."""
    with fs.open_input(path) as f:
        return sniff_stream(f)  # type: ignore[arg-type]  # fsspec files are binary streams


def sniff_local_inputs(inputs: list[InputFile]) -> dict[int, Sniffed]:
    """``sniff_input`` for every local input (remote ones are read only by their task: a
    request per file before the run would cost minutes on a whole crawl)."""
    return {i.index: sniff_input(i.path) for i in inputs if not fs.is_remote(i.path)}


def unreadable_inputs(sniffed: dict[int, Sniffed], inputs: list[InputFile]) -> list[str]:
    """One line per input that dataproc cannot read: ``<path> <why>``."""
    lines = []
    for inp in inputs:
        s = sniffed.get(inp.index)
        problem = s.problem() if s is not None else None
        if problem is not None:
            lines.append(f"{inp.path} {problem}")
    return lines


def check_inputs(inputs: list[InputFile]) -> None:
    """Refuse, before Ray starts, local inputs that are not WARC or WET files (a WAT, bzip2,
    an HTML page, an empty file): ``InputError`` naming the first and counting the rest."""
    bad = unreadable_inputs(sniff_local_inputs(inputs), inputs)
    if bad:
        more = f" (and {len(bad) - 1} more input(s); `dataproc run --dry-run` lists them)"
        raise InputError(bad[0] + (more if len(bad) > 1 else ""))
