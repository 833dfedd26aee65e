"""Phase 2's result as phase 3 and ``dataproc verify`` see it: one digest over the removal files.

Phase 2 writes ``_work/dedup/removed/{i:06d}.parquet`` for every input that finished phase 1,
an empty table when nothing of it is removed, so a missing file always means "dedup did not
finish", never "nothing removed". After phase 2, Ray tasks hash those files (``HASH_CHUNK``
inputs per task, streamed, so the driver reads nothing); the **dedup result** is the sha256
over ``(input index, file sha256)`` of all of them. It goes into the phase-2 marker, into the
generation that phase-3 markers are keyed on (a token file written against another dedup
result is never reused), into every token file's Parquet metadata and into the manifest, so
``dataproc verify`` can tell a file tokenized against a different set of removals.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from dataproc.errors import DedupError
from dataproc.io import fs
from dataproc.io.layout import OutputLayout

if TYPE_CHECKING:
    import pyarrow as pa

HASH_CHUNK = 256
"""Removal files hashed by one Ray task (90,000 inputs: ~350 small tasks)."""

NO_DEDUP = "dedup-disabled"
"""What stands in for the dedup result in phase 3's generation when dedup is off."""


def missing_removal_file(path: str, input_index: int) -> DedupError:
    """The error for a removal file that is not there (phase 2 writes one for every input)."""
    return DedupError(
        f"{path}: removal file of input {input_index} is missing; phase 2 (dedup) writes one "
        "for every input, so dedup did not finish or the file was deleted. Delete "
        "_work/done/phase2.json in the output folder and rerun to redo dedup"
    )


REMOVAL_COLUMNS = ("doc", "kept", "reason")


def read_removal_file(path: str, input_index: int) -> tuple[bytes, pa.Table]:
    """The bytes and the table of one removal file; DedupError naming it if missing or bad."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not fs.exists(path):
        raise missing_removal_file(path, input_index)
    try:
        data = fs.read_bytes(path)  # one input's removals: small, read whole
        table = pq.ParquetFile(pa.BufferReader(data)).read()
    except (OSError, pa.ArrowException) as e:
        raise DedupError.unreadable(path, e) from None
    missing = [c for c in REMOVAL_COLUMNS if c not in table.column_names]
    if missing:
        raise DedupError(
            f"{path}: removal file lacks columns {missing} (has {table.column_names}); it is "
            "from another dataproc version: rerun with --overwrite"
        )
    return data, table


def hash_removal_files(out_dir: str, indices: list[int]) -> dict[int, str]:
    """``{input_index: sha256}`` of these inputs' removal files (a Ray task's body).

    Each file is also parsed, so a damaged one fails phase 2 (whose rerun rewrites it), not
    phase 3. Raises DedupError naming the first missing or unreadable file.
    """
    layout = OutputLayout(out_dir)
    out: dict[int, str] = {}
    for i in indices:
        data, _ = read_removal_file(layout.removed(i), i)
        out[i] = hashlib.sha256(data).hexdigest()
    return out


def dedup_digest(removal_sha256: dict[int, str]) -> str:
    """The dedup result: sha256 over every input's removal-file hash, in input order."""
    h = hashlib.sha256()
    for i in sorted(removal_sha256):
        h.update(f"{i:06d} {removal_sha256[i]}\n".encode())
    return h.hexdigest()


def chunks(indices: list[int], size: int = HASH_CHUNK) -> list[list[int]]:
    """``indices`` cut into consecutive runs of at most ``size``."""
    return [indices[k : k + size] for k in range(0, len(indices), size)]
