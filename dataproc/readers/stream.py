"""The bytes under the WARC records: a forward-only input with bounded look-back, one gzip
member at a time, and a zstd stream whose damage ends it instead of raising.

warcio's own gzip reader swallows a zlib error in the middle of a file (it prints to stderr and
then reads the rest of the file as empty), so a single flipped bit would silently lose
everything after it. Decoding each member here lets the reader (``readers.warc``) notice the
damage, count it, scan forward for the next gzip header (``1f 8b 08``) and go on.
"""

from __future__ import annotations

import zlib
from typing import Any, BinaryIO

from dataproc.stats import StageStats

RAW_CHUNK_BYTES = 64 * 1024
"""How much of the input is read at a time (and the least look-back kept)."""
WARCIO_BLOCK_BYTES = 16 * 1024
"""The block size warcio reads decompressed bytes in."""


class TruncatedInput(Exception):
    """The input ended inside a gzip member."""


class CorruptGzip(Exception):
    """zlib rejected the bytes of a gzip member."""


class RawInput:
    """Reads the underlying stream in chunks; supports peek, a short unread and, while a
    mark is set, seeking back to (at most ``history_bytes`` before) the read position."""

    def __init__(
        self, stream: BinaryIO | SafeZstdStream, history_bytes: int, start: int = 0
    ) -> None:
        self._stream = stream  # positioned at offset ``start`` of the file
        self._buf = bytearray()
        self._base = start  # absolute offset of _buf[0]
        self.pos = start  # absolute read position
        self._mark: int | None = None
        self._history = max(history_bytes, RAW_CHUNK_BYTES)
        self._eof = False

    def _avail(self) -> int:
        return self._base + len(self._buf) - self.pos

    def _more(self) -> bool:
        if self._eof:
            return False
        data = self._stream.read(RAW_CHUNK_BYTES)
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _compact(self) -> None:
        # Keep one chunk behind the read position (gzip's unused_data is pushed back) and,
        # while a member is being read, its bytes up to the history bound.
        keep = self.pos - RAW_CHUNK_BYTES
        if self._mark is not None:
            keep = max(min(keep, self._mark), self.pos - self._history)
        drop = keep - self._base
        if drop >= RAW_CHUNK_BYTES:
            del self._buf[:drop]
            self._base = keep

    def peek(self, n: int) -> bytes:
        while self._avail() < n and self._more():
            pass
        i = self.pos - self._base
        return bytes(self._buf[i : i + n])

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = RAW_CHUNK_BYTES
        if self._avail() <= 0:
            self._more()
        i = self.pos - self._base
        with memoryview(self._buf) as view:
            data = bytes(view[i : i + n])  # one copy (slicing a bytearray copies twice)
        self.pos += len(data)
        self._compact()
        return data

    def tell(self) -> int:
        return self.pos

    def unread(self, n: int) -> None:
        self.pos = max(self.pos - n, self._base)

    def set_mark(self, at: int | None = None) -> None:
        """Keep the bytes from ``at`` (default: the read position) while reading on, up to
        the history bound; clamped to what is still buffered."""
        self._mark = self.pos if at is None else max(at, self._base)

    @property
    def oldest(self) -> int:
        """The offset of the oldest byte still buffered (a resync cannot start before it)."""
        return self._base

    def clear_mark(self) -> None:
        self._mark = None

    def find(self, pattern: bytes, start: int) -> int | None:
        """Move to the first ``pattern`` at or after ``start`` (clamped to what is still
        buffered); return its offset, or None (and move to the end) if there is none."""
        self._mark = None
        self.pos = max(start, self._base)
        while True:
            idx = self._buf.find(pattern, self.pos - self._base)
            if idx >= 0:
                self.pos = self._base + idx
                return self.pos
            # The pattern may straddle the end of the buffer: keep its possible start.
            self.pos = max(self.pos, self._base + len(self._buf) - (len(pattern) - 1))
            self._compact()
            if not self._more():
                self.pos = self._base + len(self._buf)
                return None


class MemberStream:
    """The decompressed bytes of exactly one gzip member, read incrementally.

    Raises ``CorruptGzip`` on bad data and ``TruncatedInput`` if the input ends first;
    at the member's end, bytes read past it are handed back to the raw input.
    """

    def __init__(self, raw: RawInput) -> None:
        self._raw = raw
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._tail = b""
        self._out = 0
        self.done = False
        self._flushed = False

    def tell(self) -> int:
        return self._out

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = WARCIO_BLOCK_BYTES
        while not self.done:
            if self._tail:
                data = self._tail
            else:
                data = self._raw.read(RAW_CHUNK_BYTES)
                if not data:
                    if not self._flushed:
                        self._flushed = True
                        rest = self._d.flush()
                        if rest:
                            self._out += len(rest)
                            return rest
                    raise TruncatedInput("input ends inside a gzip member")
            try:
                out = self._d.decompress(data, n)
            except zlib.error as e:
                raise CorruptGzip(str(e)) from None
            self._tail = self._d.unconsumed_tail
            if self._d.eof:
                self._raw.unread(len(self._d.unused_data))
                self._tail = b""
                self.done = True
            if out:
                self._out += len(out)
                return out
        return b""

    def drain(self) -> None:
        """Read (and discard) up to the end of the member."""
        while self.read(RAW_CHUNK_BYTES):
            pass

    def close(self) -> None:
        """Nothing to release (the raw input belongs to the caller)."""


class SafeZstdStream:
    """A zstd stream reader whose damage ends the stream (counted) instead of raising: the
    plain reader then sees a cut-off record and counts it as ``truncated_file``."""

    def __init__(self, reader: Any, stats: StageStats) -> None:
        self._reader = reader
        self._stats = stats
        self._failed = False

    def read(self, n: int | None = -1) -> bytes:
        if self._failed:
            return b""
        try:
            return bytes(self._reader.read(n if n is not None and n > 0 else RAW_CHUNK_BYTES))
        except Exception:  # zstandard.ZstdError: corrupt or truncated frame
            self._failed = True
            self._stats.counters["corrupt_zstd"] += 1
            return b""
