"""Documents as Arrow columns, both ways: the one place that maps ``Document`` fields to Parquet.

Phase 1 writes its survivors to ``_work/docs/{i}.parquet`` (``DocsSink``, schema
``DOCS_SCHEMA``), phase 3 reads them back (``DocsSource``), and the token writer takes the
documents' fields for ``tokens/`` from ``DocColumns``; all three use ``FIELD_TYPES``, so a
field cannot be written under one type and read under another.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import IO, TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from dataproc.document import Document, RejectSink
from dataproc.io import fs

if TYPE_CHECKING:
    from dataproc.stats import StageStats

FIELD_TYPES: dict[str, pa.DataType] = {
    "doc_index": pa.uint64(),
    "id": pa.string(),
    "url": pa.string(),
    "warc_target_uri": pa.string(),
    "source": pa.string(),
    "offset": pa.int64(),
    "crawl": pa.string(),
    "warc_date": pa.timestamp("us", tz="UTC"),
    "language": pa.string(),
    "language_score": pa.float32(),
    "text": pa.string(),
}
"""Every ``Document`` field that is ever stored, with its Arrow type."""

DOCS_SCHEMA = pa.schema([(name, FIELD_TYPES[name]) for name in FIELD_TYPES])
"""``_work/docs/{i}.parquet``: phase 1's survivors, everything phase 3 needs."""


class DocColumns:
    """The fields ``names`` of the documents added so far, as column lists."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.columns: dict[str, list[Any]] = {n: [] for n in self.names}
        self._lists = list(self.columns.values())
        self._fields = operator.attrgetter(*self.names)  # one call per document: hot path
        self._target_uri = self.columns.get("warc_target_uri")

    def __len__(self) -> int:
        return len(self._lists[0]) if self._lists else 0

    def add(self, doc: Document) -> None:
        values = self._fields(doc)
        for column, value in zip(
            self._lists, values if len(self._lists) > 1 else (values,), strict=True
        ):
            column.append(value)
        if self._target_uri is not None and not doc.warc_target_uri:
            # A Document built without it (tests, old _work/docs): the URL is all there is.
            self._target_uri[-1] = doc.url

    def arrays(self) -> dict[str, pa.Array]:
        """Each column as an Arrow array of its ``FIELD_TYPES`` type."""
        return {n: pa.array(v, FIELD_TYPES[n]) for n, v in self.columns.items()}


def _document(row: dict[str, Any]) -> Document:
    return Document(
        id=row["id"],
        url=row["url"],
        # _work/docs written before this column: the URL is all we have.
        warc_target_uri=row.get("warc_target_uri") or row["url"],
        source=row["source"],
        offset=row["offset"],
        doc_index=row["doc_index"],
        crawl=row["crawl"],
        warc_date=row["warc_date"],
        text=row["text"],
        language=row["language"],
        language_score=row["language_score"],
    )


class DocsSource:
    """Reads the documents of a ``_work/docs`` file back, in order (phase 3's source)."""

    name: ClassVar[str | None] = None  # not counted: phase 1 counted these documents

    def __init__(self, path: str) -> None:
        self.path = path

    def read(self, stats: StageStats, reject: RejectSink) -> Iterator[Document]:
        """The documents in file order (``stats`` and ``reject`` unused: none is dropped)."""
        with fs.open_input(self.path) as f:
            pf = pq.ParquetFile(f)
            # One row group at a time: iter_batches over the whole file keeps the buffers of
            # every row group it has read until it ends (494 MB of Arrow memory after 3,000
            # documents of 80k words, pyarrow 26); per row group it stays flat. Small batches:
            # 64 documents of 80k words are ~32 MB of text as Python strings.
            batches = (
                batch
                for group in range(pf.num_row_groups)
                for batch in pf.iter_batches(batch_size=64, row_groups=[group])
            )
            for batch in batches:
                for row in batch.to_pylist():
                    yield _document(row)


# A row group of survivors is written once it holds this many documents or this many
# characters of text, whichever comes first: memory stays bounded by bytes, however long the
# documents of a file are (10,000 documents of 80k words would otherwise be ~5 GB).
DOCS_ROW_GROUP_ROWS = 2048
DOCS_ROW_GROUP_CHARS = 16 * 1024 * 1024


class DocsWriter:
    """Writes documents into an open binary file as they come, row group by row group
    (bounded in rows and in text characters)."""

    def __init__(self, sink: IO[bytes] | Any) -> None:
        self._writer = pq.ParquetWriter(sink, DOCS_SCHEMA, compression="zstd")
        self.rows = 0
        self._reset()

    def _reset(self) -> None:
        self._cols = DocColumns(DOCS_SCHEMA.names)
        self._buffered = 0
        self._chars = 0

    def add(self, d: Document) -> None:
        self._cols.add(d)
        self._buffered += 1
        self._chars += len(d.text)
        if self._buffered >= DOCS_ROW_GROUP_ROWS or self._chars >= DOCS_ROW_GROUP_CHARS:
            self._flush()

    def _flush(self) -> None:
        if self._buffered:
            self._writer.write_table(pa.table(self._cols.arrays(), schema=DOCS_SCHEMA))
            self.rows += self._buffered
            self._reset()

    def close(self) -> int:
        """Write what is buffered and the footer; return the number of documents written."""
        self._flush()
        self._writer.close()
        return self.rows

    def abort(self) -> None:
        """Stop writing after a failure (the file is discarded by its owner)."""
        # The sink may already be broken (disk full): there is nothing to save.
        with contextlib.suppress(Exception):
            self._writer.close()


class DocsSink:
    """Phase 1's survivors file ``path``, published (atomically) only by ``close()``."""

    name: ClassVar[str | None] = None

    def __init__(self, path: str) -> None:
        self._cm: AbstractContextManager[IO[bytes]] = fs.atomic_write(path)
        self._writer = DocsWriter(self._cm.__enter__())

    def write(self, doc: Document) -> None:
        self._writer.add(doc)

    def close(self) -> int:
        """Publish the file; the number of documents in it."""
        try:
            rows = self._writer.close()
        except BaseException as e:
            self._cm.__exit__(type(e), e, e.__traceback__)
            raise
        self._cm.__exit__(None, None, None)
        return rows

    def abort(self) -> None:
        """Discard the file (after a failure anywhere in the phase)."""
        self._writer.abort()
        err = RuntimeError("aborted")
        with contextlib.suppress(Exception):
            self._cm.__exit__(RuntimeError, err, None)
