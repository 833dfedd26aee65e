"""Read WARC files (plain, per-record gzip or zstd) into Documents: the ``read`` stage.

warcio's ``ArchiveIterator`` parses the records. Around it this module adds what a
production reader over millions of real files needs and warcio does not do:

* **Gzip members are decoded here, one ArchiveIterator per member** (``readers.stream``).
  Damage is noticed, counted, and reading resumes at the next gzip header; every record
  gets its exact member offset in the compressed file (what Common Crawl indexes point at).
  Plain WARCs resync at the next line that starts a record.
* **Bounded memory.** Header lines are cut at ``max_header_line_bytes``; payloads are read up
  to ``max_payload_bytes`` and decoded with output limits (``readers.http``).
* **Every record is accounted for.** Each record counts once in ``docs_in`` and is either a
  document (``docs_out``) or a drop with one of ``REASONS`` (``readers.records``); damage
  that loses records is counted as one drop per failure.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Generator, Iterator
from typing import Any, BinaryIO

from dataproc.document import Document, RejectSink
from dataproc.readers.config import ReaderConfig
from dataproc.readers.records import RecordPolicy, ran_past_eof
from dataproc.readers.sniff import (
    BZIP2_MAGIC,
    GZIP_MAGIC,
    XZ_MAGIC,
    ZSTD_DICT_MAGIC,
    ZSTD_MAGIC,
    split_zstd_dictionary,
    zstd_decompressor,
)
from dataproc.readers.spans import ReaderState, ReadSpan
from dataproc.readers.stream import (
    RAW_CHUNK_BYTES,
    WARCIO_BLOCK_BYTES,
    CorruptGzip,
    MemberStream,
    RawInput,
    SafeZstdStream,
    TruncatedInput,
)
from dataproc.stats import StageStats

# Where a resync in an uncompressed WARC may resume: a line that starts a record.
_PLAIN_RECORD_START = b"\nWARC/"

# Outcomes of reading one ArchiveIterator to its end.
_OK = "ok"
_TRUNCATED = "truncated"  # the input ended inside a gzip member
_STOP = "stop"  # the file is not one we read (a WAT): stop, the caller refuses it
_BAD_GZIP = "bad_gzip"  # zlib refused the data: resync at the next member
_BAD_WARC = "bad_warc"  # the bytes decompress but are not valid WARC


@functools.cache
def _quiet_iterator_class() -> type:
    from warcio.archiveiterator import WARCIterator

    # warcio logs a warning, with the URI, for every WARC-Target-URI holding spaces (it then
    # percent-encodes them): a hostile file of a million such records would flood the worker
    # and driver logs. The URI is still read (fixed); only the log line is silenced.
    logging.getLogger("warcio.recordloader").setLevel(logging.ERROR)

    class _QuietWARCIterator(WARCIterator):  # type: ignore[misc]
        """warcio writes a warning with the whole offending line to stderr when a record is
        not followed by a blank line (bad Content-Length); we count ``err_count`` instead."""

        INC_RECORD = ""

    return _QuietWARCIterator


def _capped_reader_class(max_line_bytes: int) -> type:
    from warcio.bufferedreaders import BufferedReader

    class _CappedLineReader(BufferedReader):  # type: ignore[misc]
        """warcio's buffered reader without decompression, with header lines cut at a bound
        (warcio's own readline() grows a line without limit)."""

        def readline(self, length: int | None = None) -> bytes:
            if length is None or length <= 0 or length > max_line_bytes:
                length = max_line_bytes
            line: bytes = super().readline(length)
            return line

    return _CappedLineReader


# --------------------------------------------------------------------------------------
# The reader.
# --------------------------------------------------------------------------------------


class _FileReader:
    """State for reading one file; see ``read_warc``."""

    def __init__(
        self,
        stream: BinaryIO,
        source: str,
        input_index: int,
        config: ReaderConfig,
        stats: StageStats,
        reject: RejectSink,
        span: ReadSpan | None = None,
    ) -> None:
        self.config = config
        self.stats = stats
        self.policy = RecordPolicy(source, input_index, config, stats, reject, self._swallow)
        self.span = span
        self.raw = RawInput(stream, config.max_resync_history_bytes, span.start if span else 0)
        self.ordinal = 0
        self.records_ok = 0  # records parsed without damage (to tell "not a WARC" apart)
        self._ordinals_before = 0  # (a range) ordinals used before it, capped at 2
        self._resyncing = False  # (a range) scanning for a member when it stopped
        if span is not None:
            st, p = span.state, self.policy
            self.records_ok, self._ordinals_before = st.records_ok, st.ordinals
            p.crawl, p.web_records, p.conversions = st.crawl, st.web_records, st.conversions
            p.wet, p.wat = st.wet, st.wat
        self.reader_cls = _capped_reader_class(config.max_header_line_bytes)
        self._started = self._started_cpu = 0.0
        self._outcome = _OK
        # A too-long Content-Length swallowed (and counted) the next record(s): see _swallow.
        self._swallowed = False
        # Plain WARC: a record's Content-Length ran past the end of the file; the records it
        # swallowed are found again by scanning from here (see _run_plain).
        self._resync_at: int | None = None

    # -- timing: the reader's own work, not the time the consumer spends between yields --
    def _resume(self) -> None:
        self._started = time.perf_counter()
        self._started_cpu = time.thread_time()

    def _pause(self) -> None:
        self.stats.seconds += time.perf_counter() - self._started
        self.stats.cpu_seconds += time.thread_time() - self._started_cpu

    def run(self) -> Iterator[Document]:
        self._resume()
        head = self.raw.peek(len(XZ_MAGIC))
        span = self.span
        if span is not None:
            # A range of a per-record-gzip file (readers/spans.py): its own members only.
            body = iter(()) if self.policy.wat else self._run_gzip(span.state.resyncing, span.end)
        elif head.startswith(GZIP_MAGIC):
            body = self._run_gzip()
        elif head.startswith((ZSTD_MAGIC, ZSTD_DICT_MAGIC)):
            body = self._run_zstd()
        elif head.startswith(XZ_MAGIC) or (head.startswith(BZIP2_MAGIC) and head[3:4].isdigit()):
            # Recognised only to be refused clearly (the run fails naming the file).
            kind = "xz" if head.startswith(XZ_MAGIC) else "bzip2"
            self.stats.counters[f"unsupported_compression_{kind}"] += 1
            body = iter(())
        else:
            body = self._run_plain()
        for doc in body:
            self._pause()
            yield doc
            self._resume()
        if span is None:
            self.stats.counters[f"input_{self.kind()}"] += 1
        else:  # what kind of file it is, only the merge of all ranges can say
            span.stop = self.raw.pos
            span.ordinals = self.ordinal
            span.end_state = self.state()
        self._pause()

    def state(self) -> ReaderState:
        """The state that carries over to the next member (``readers.spans.ReaderState``)."""
        p = self.policy
        return ReaderState(
            crawl=p.crawl,
            records_ok=min(self.records_ok, 1),
            ordinals=min(self._ordinals_before + self.ordinal, 2),
            web_records=min(p.web_records, 2),
            conversions=min(p.conversions, 2),
            wet=p.wet,
            wat=p.wat,
            resyncing=self._resyncing,
        )

    def kind(self) -> str:
        """What the file turned out to be: ``warc``, ``wet`` (conversion records only),
        ``wat`` (JSON metadata records; reading stopped) or ``no_records``."""
        if self.policy.wat:
            return "wat"
        if self.records_ok == 0:
            return "no_records"
        if self.policy.wet:
            return "wet"
        return "warc"

    # -- zstd: a .warc.zst is a plain WARC once decompressed ------------------------------
    def _run_zstd(self) -> Iterator[Document]:
        raw = self.raw
        try:
            head = raw.peek(8)
            dictionary = None
            if head.startswith(ZSTD_DICT_MAGIC):
                size = int.from_bytes(head[4:8], "little")
                dictionary, used = split_zstd_dictionary(raw.peek(8 + min(size, 1 << 25)))
                raw.read(used)
            decompressed = zstd_decompressor(dictionary).stream_reader(
                raw, read_size=RAW_CHUNK_BYTES, read_across_frames=True
            )
        except Exception as e:  # no zstandard, or a damaged dictionary frame
            self.stats.counters["zstd_unreadable"] += 1
            self._lost("corrupt_record", f"{type(e).__name__}: {e}"[:300])
            return
        self.stats.counters["zstd"] += 1
        # Offsets of documents are then offsets in the decompressed WARC (docs/format.md).
        self.raw = RawInput(
            SafeZstdStream(decompressed, self.stats), self.config.max_resync_history_bytes
        )
        yield from self._run_plain()

    # -- plain (uncompressed) WARC --------------------------------------------------------
    def _run_plain(self) -> Iterator[Document]:
        raw = self.raw
        resyncing = False
        looks_like_warc = raw.peek(16).lstrip().startswith(b"WARC/")
        while True:
            # A leading blank line would make warcio read one header-less record to EOF.
            while raw.peek(1) in (b"\r", b"\n", b" ", b"\t"):
                raw.read(1)
            if not raw.peek(1):
                return
            start = raw.pos
            it = self._iterator(raw)
            outcome = yield from self._iterate(it, member_offset=None, quiet=resyncing)
            if outcome in (_OK, _STOP):
                return
            if self.records_ok == 0 and not resyncing and not looks_like_warc:
                self.stats.counters["not_a_warc"] += 1
                return  # not a WARC at all: don't scan the whole file for one
            if not resyncing:
                self.stats.counters["resyncs"] += 1
            resyncing = True
            if self._resync_at is not None:
                # A record ran past the end of the file: the records its Content-Length
                # swallowed start after its header. Its own bytes are accounted for by it;
                # any that fell out of the bounded history are counted as skipped.
                scan_from = self._resync_at
                self._resync_at = None
                if scan_from < raw.oldest:
                    self.stats.counters["bytes_skipped_past_eof"] += raw.oldest - scan_from
                found = raw.find(_PLAIN_RECORD_START, scan_from)
            else:
                # Resume after what warcio consumed (its read-ahead is still buffered here)
                # at the next line that starts a WARC record.
                consumed = (
                    raw.pos - int(it.reader.rem_length()) if it.reader is not None else raw.pos
                )
                scan_from = max(max(consumed, start + 1) - 1, raw.oldest)
                found = raw.find(_PLAIN_RECORD_START, scan_from)
                end = found if found is not None else raw.pos
                self.stats.counters["bytes_skipped"] += max(0, end - scan_from)
            if found is None:
                return
            raw.read(1)  # the newline before "WARC/"

    # -- gzip: one ArchiveIterator per member, resync on damage ----------------------------
    def _run_gzip(self, resyncing: bool = False, stop_at: int | None = None) -> Iterator[Document]:
        """Read members from the current position; a range stops at the first member start
        at or after ``stop_at``."""
        raw = self.raw
        first = True
        while True:
            self._resyncing = resyncing
            if stop_at is not None and raw.pos >= stop_at:
                return
            if self.span is not None and self.span.settle and self._settled():
                return  # the head read: the state will not change any more
            head = raw.peek(len(GZIP_MAGIC))
            if not head:
                return
            if head != GZIP_MAGIC:
                start = raw.pos
                found = raw.find(GZIP_MAGIC, start)
                end = found if found is not None else raw.pos
                self.stats.counters["bytes_skipped"] += end - start
                if not resyncing:
                    # Junk between or after members: one lost unit of input.
                    self._lost(
                        "corrupt_record", f"{end - start} bytes that are not gzip at {start}"
                    )
                    self.stats.counters["corrupt_member"] += 1
                    resyncing = True
                if found is None:
                    return
                continue
            member_start = raw.pos
            raw.set_mark()
            member = MemberStream(raw)
            it = self._iterator(member)
            outcome = yield from self._iterate(it, member_start, quiet=resyncing)
            if outcome == _STOP:
                return
            if outcome in (_OK, _BAD_WARC):
                try:
                    member.drain()
                except TruncatedInput:
                    outcome = _TRUNCATED if outcome == _OK else outcome
                except CorruptGzip:
                    outcome = _BAD_GZIP if outcome == _OK else outcome
            if first and self.span is not None:
                # Read cleanly, the first member made the start state's resyncing irrelevant.
                self.span.first_ok = outcome == _OK
            first = False
            if outcome == _BAD_WARC and member.done:
                # The gzip layer is fine: carry on with the next member.
                if self.records_ok == 0 and self._ordinals_before + self.ordinal <= 1:
                    self.stats.counters["not_a_warc"] += 1
                raw.clear_mark()
                resyncing = False
                continue
            if outcome == _OK:
                raw.clear_mark()
                resyncing = False
                continue
            if not resyncing:
                kind = "truncated_member" if outcome == _TRUNCATED else "corrupt_member"
                self.stats.counters[kind] += 1
            # Corrupt gzip data, or the input ended inside a member: look for the next member
            # header after this one's start. (A member cut short in the middle of a file makes
            # zlib read the following members as its own data until the end of the input; they
            # are still there to be found.)
            resyncing = True
            before = raw.pos
            found = raw.find(GZIP_MAGIC, member_start + 1)
            self.stats.counters["resync_scans"] += 1
            if found is None:
                self.stats.counters["bytes_skipped"] += max(0, raw.pos - before)
                return

    def _settled(self) -> bool:
        """Whether more records can no longer change the state (kind of file decided)."""
        return self.policy.wat or self.policy.web_records >= 2

    # -- one ArchiveIterator ---------------------------------------------------------------
    def _iterator(self, stream: Any) -> Any:
        it = _quiet_iterator_class()(stream, block_size=WARCIO_BLOCK_BYTES)
        # We decompress ourselves (see module docstring) and cap header lines.
        it.reader = self.reader_cls(it.fh, block_size=WARCIO_BLOCK_BYTES)
        return it

    def _iterate(
        self, it: Any, member_offset: int | None, quiet: bool
    ) -> Generator[Document, None, str]:
        """Yield the documents of one iterator; return an outcome (``_OK`` or damage).

        ``quiet``: we are scanning for a member after damage; a candidate that fails before
        its first record is a false start, not another lost record.
        """
        try:
            yield from self._iterate_records(it, member_offset, quiet)
        finally:
            if it.err_count:
                self.stats.counters["content_length_mismatch"] += it.err_count
        return self._outcome

    def _iterate_records(
        self, it: Any, member_offset: int | None, quiet: bool
    ) -> Iterator[Document]:
        records = iter(it)
        parsed_here = 0
        self._outcome = _OK
        while True:
            current: list[Any] = []
            try:
                try:
                    record = next(records)
                except StopIteration:
                    self._outcome = _OK
                    return
                current.append(record)
                self._swallowed = False  # a record parsed: the swallowed region is behind us
                ordinal = self.ordinal
                self.ordinal += 1
                self.stats.docs_in += 1
                record_start = int(it.offset)
                if member_offset is None:
                    # Plain WARC: keep this record's bytes (up to the history bound) so a
                    # Content-Length that runs past the end of the file can be undone.
                    self.raw.set_mark(record_start)
                result = self.policy.handle(record, it, ordinal, member_offset)
            except Exception as e:  # any failure inside warcio or zlib ends this iterator
                kind, reason = self._classify(e)
                if current:
                    self.policy.drop_damaged(
                        current[0], it, member_offset, self.ordinal - 1, reason, e
                    )
                elif not (quiet and parsed_here == 0) and not self._swallowed:
                    self._lost(reason, f"{type(e).__name__}: {e}"[:300])
                self._swallowed = False
                self._outcome = kind
                return
            parsed_here += 1
            self.records_ok += 1
            if result is not None:
                yield result
            if self.policy.wat:
                self._outcome = _STOP
                return
            if member_offset is None and ran_past_eof(record):
                # The block claimed more bytes than the file has: it swallowed every later
                # record. The record itself is counted (truncated_file for a page); scan
                # its bytes again for the records it swallowed.
                self.stats.counters["content_length_past_eof"] += 1
                self._resync_at = record_start
                self._outcome = _BAD_WARC
                return

    @staticmethod
    def _classify(e: Exception) -> tuple[str, str]:
        if isinstance(e, TruncatedInput):
            return _TRUNCATED, "truncated_file"
        if isinstance(e, CorruptGzip):
            return _BAD_GZIP, "corrupt_record"
        return _BAD_WARC, "corrupt_record"

    def _lost(self, reason: str, detail: str) -> None:
        """A record (or unreadable stretch) that could not even be parsed: count only."""
        del detail  # nothing to attach it to; the counters carry the information
        # It most likely held a record: keep later ordinals (doc_index) where they would be.
        self.ordinal += 1
        self.stats.docs_in += 1
        self.stats.drop(reason)

    def _swallow(self, count: int) -> None:
        """A plain record's too-long Content-Length swallowed the starts of ``count`` later
        records: each is a lost record. The parse failure on the rest of the last one is the
        same loss and is not counted again."""
        for _ in range(count):
            self._lost("corrupt_record", "swallowed by a too-long Content-Length")
        self._swallowed = True


def read_warc(
    stream: BinaryIO,
    *,
    source: str,
    input_index: int,
    config: ReaderConfig,
    stats: StageStats,
    reject: RejectSink,
    span: ReadSpan | None = None,
) -> Iterator[Document]:
    """Yield one Document per HTML web page in a WARC file (``.warc`` or ``.warc.gz``).

    ``stream`` is an open binary stream positioned at the start of the file (it is read
    forward once, in bounded chunks); gzip is recognised by its magic bytes, not the name.
    ``source`` is stored on each Document; ``input_index`` gives ``doc_index`` its high bits.
    Every record is counted in ``stats`` (``docs_in == docs_out + sum(dropped)``); dropped
    web-page records (response, revisit, resource, conversion) also go to ``reject``.
    Damaged input never raises: it is counted (``corrupt_record``/``truncated_file`` drops,
    ``corrupt_member``/``not_a_warc`` counters) and reading resumes where possible.
    ``span`` (a per-record-gzip file only): read one byte range, ``stream`` positioned at its
    start (``readers/spans.py``); doc indices then count from 0 within the range.
    """
    yield from _FileReader(stream, source, input_index, config, stats, reject, span).run()
