"""Byte ranges of one per-record-gzip WARC, so that several workers read one file.

A ``.warc.gz`` as Common Crawl writes it is a chain of gzip members, one record each. A range
``[start, end)`` owns every member whose start offset lies in it; its reader starts at
``start`` (a member start) and stops at the first member start at or after ``end``, so a
record is read by exactly one range. Boundaries are found by ``member_start_at``: a few small
reads at the nominal offsets (never a pass over the whole file).

What the reader carries from one member to the next (the crawl name of the last warcinfo, what
kind of file it is, whether it is resyncing after damage) is ``ReaderState``. A range other
than the first starts with the state read from the file's head; it reports the state it ended
in, and the merge (``dataproc.runner.ranges``) checks that each range started with the state
its predecessor ended in, and reads a range again where not. So the result never depends on
the boundaries, whatever the file holds; the check only decides how much work is redone.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

from dataproc.readers.sniff import GZIP_MAGIC

_SCAN_CHUNK = 1024 * 1024
VERIFY_MAX_BYTES = 8 * 1024 * 1024
"""A candidate boundary's member must end (and the next begin) within this many bytes."""


@dataclass(frozen=True)
class ReaderState:
    """What the reader knows at a member boundary that changes how it reads what follows.

    Counts are kept only as far as they matter (the reader compares them with 0, 1 and 2),
    so the state at a boundary is the same whichever way the reader got there.
    """

    crawl: str | None = None
    records_ok: int = 0  # 0..1: a record was parsed without damage
    ordinals: int = 0  # 0..2: ordinals used before (the reader's "first record" checks)
    web_records: int = 0  # 0..2: response and conversion records seen
    conversions: int = 0  # 0..2
    wet: bool = False
    wat: bool = False
    resyncing: bool = False  # scanning for the next member after damage

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReaderState:
        return cls(**d)


@dataclass
class ReadSpan:
    """One range for ``read_warc``: where to start and stop, and the state to start in.

    The reader fills in the rest: ``stop`` (the member start it stopped at, or the end of the
    file), ``end_state``, ``ordinals`` (record ordinals used; doc indices in the range count
    from 0 and are shifted by the merge), ``first_ok`` (the first member read cleanly, so the
    start state's ``resyncing`` made no difference).
    ``settle``: stop as soon as the state no longer changes with more records (the head read).
    """

    start: int
    end: int | None
    state: ReaderState = field(default_factory=ReaderState)
    settle: bool = False
    stop: int | None = None
    end_state: ReaderState | None = None
    ordinals: int = 0
    first_ok: bool | None = None


def _member_end(read_at: Any, pos: int, limit: int) -> tuple[int, bytes] | None:
    """``(end offset, first decompressed bytes)`` of the gzip member at ``pos``, or None if
    the bytes there are not one whole member within ``limit`` compressed bytes."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    head = b""
    got = 0
    while got < limit:
        chunk = read_at(pos + got, min(_SCAN_CHUNK, limit - got))
        if not chunk:
            return None
        data = chunk
        while data:
            try:
                out = d.decompress(data, 256 * 1024)  # bounded output: a bomb costs nothing
            except zlib.error:
                return None
            if len(head) < 16:
                head += out[: 16 - len(head)]
            if d.eof:
                return pos + got + len(chunk) - len(d.unused_data), head
            data = d.unconsumed_tail
        got += len(chunk)
    return None


def member_start_at(f: BinaryIO, nominal: int, size: int, search_bytes: int) -> int | None:
    """The first offset in ``[nominal, nominal + search_bytes)`` where a WARC record's gzip
    member starts (a whole member that decompresses to ``WARC/``, followed by another member
    or the end of the file), or None. ``f`` is a seekable binary stream of ``size`` bytes."""

    def read_at(pos: int, n: int) -> bytes:
        f.seek(pos)
        return f.read(n) or b""

    pos = nominal
    stop = min(size, nominal + search_bytes)
    while pos < stop:
        window = read_at(pos, min(_SCAN_CHUNK + len(GZIP_MAGIC), stop - pos + len(GZIP_MAGIC)))
        i = window.find(GZIP_MAGIC)
        while i >= 0 and pos + i < stop:
            cand = pos + i
            found = _member_end(read_at, cand, VERIFY_MAX_BYTES)
            if found is not None:
                end, head = found
                after = read_at(end, len(GZIP_MAGIC))
                if head.startswith(b"WARC/") and (after == GZIP_MAGIC or end >= size):
                    return cand
            i = window.find(GZIP_MAGIC, i + 1)
        pos += _SCAN_CHUNK
    return None


def split_points(f: BinaryIO, size: int, ranges: int) -> list[int]:
    """Member starts that cut a per-record-gzip WARC of ``size`` bytes into up to ``ranges``
    ranges of about equal size (sorted, distinct, never 0). Empty when the file is not a
    chain of gzip members (plain, zstd, one gzip member for the whole file): read it whole."""
    if ranges < 2:
        return []
    f.seek(0)
    if f.read(len(GZIP_MAGIC)) != GZIP_MAGIC:
        return []
    first = _member_end(lambda p, n: (f.seek(p), f.read(n))[1] or b"", 0, VERIFY_MAX_BYTES)
    if first is None or first[0] >= size:
        return []  # one member for the whole file (or a huge first one): no chain to cut
    step = size / ranges
    points: list[int] = []
    for k in range(1, ranges):
        p = member_start_at(f, int(k * step), size, int(step))
        if p is not None and p > 0 and (not points or p > points[-1]):
            points.append(p)
    return points
