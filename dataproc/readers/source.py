"""Phase 1's source: the records of one WARC/WET file as documents, counted as ``read``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from dataproc.document import Document, RejectSink
from dataproc.errors import InputError
from dataproc.io import fs
from dataproc.readers.config import ReaderConfig
from dataproc.readers.sniff import sniff_stream
from dataproc.stats import StageStats

if TYPE_CHECKING:
    from dataproc.readers.spans import ReadSpan


class WarcSource:
    """Reads one input file (local or remote) with ``read_warc``.

    A file that turns out to be no WARC/WET at all (no record, a WAT) fails when the stream
    ends, with one line naming it, before any sink publishes what it wrote: the run cannot end
    ``complete`` on it (checked by the merge when only a byte ``span`` of it is read).
    ``bytes_read`` is the input's size once read (no extra request)."""

    name: ClassVar[str | None] = "read"

    def __init__(
        self, path: str, input_index: int, config: ReaderConfig, span: ReadSpan | None = None
    ) -> None:
        self.path = path
        self.input_index = input_index
        self.config = config
        self.span = span
        self.bytes_read: int | None = None

    def read(self, stats: StageStats, reject: RejectSink) -> Iterator[Document]:
        from dataproc.readers.warc import read_warc

        with fs.open_input(self.path) as stream:
            if self.span is not None and self.span.start:
                stream.seek(self.span.start)
            yield from read_warc(
                stream,  # type: ignore[arg-type]  # fsspec files are binary streams
                source=self.path,
                input_index=self.input_index,
                config=self.config,
                stats=stats,
                reject=reject,
                span=self.span,
            )
            self.bytes_read = _position(stream)
        if self.span is None:  # a range: the merge checks the whole file
            check_input_kind(self.path, stats)


def _position(stream: object) -> int | None:
    """Bytes consumed from the input (the reader reads to the end): its size, without a HEAD."""
    try:
        return int(stream.tell())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None


def check_input_kind(path: str, stats: StageStats) -> None:
    """Raise InputError naming ``path`` if its ``read`` counters say it is no WARC/WET at all
    (no record, a WAT): its task fails, so the run cannot end ``complete`` on it."""
    c = stats.counters
    if not (c.get("input_no_records") or c.get("input_wat")):
        return
    try:
        with fs.open_input(path) as f:
            problem = sniff_stream(f).problem()  # type: ignore[arg-type]
    except OSError:
        problem = None
    if c.get("input_wat"):
        problem = "is a WAT file (JSON metadata records, no page text); give its WARC or WET file"
    raise InputError(
        f"{path} {problem or 'yields no WARC record (damaged beyond repair or not a WARC)'}"
    )
