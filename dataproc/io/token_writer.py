"""Write tokenized documents as the final Parquet shards (the format in docs/format.md).

One writer per input file writes ``tokens/part-{input_index:06d}-{part:04d}.parquet``: one row
per document, in the order documents are given (``doc_index`` ascending), rolling over to the
next ``part`` once ``max_file_bytes`` of token data (4 bytes per token) are in a file. A row
group is written once it holds ``row_group_rows`` documents or ``row_group_bytes`` of token
data (plus text, when kept), so memory is bounded in bytes however long the documents are; the
writer keeps only the columns it writes, never the documents. Files are written atomically and
are byte-identical for identical inputs (no timestamps are written; ``created_by`` only names
the pyarrow version).
"""

from __future__ import annotations

import contextlib
import hashlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dataproc.errors import OutputError
from dataproc.io import fs
from dataproc.io.documents import DocColumns
from dataproc.io.layout import token_file

if TYPE_CHECKING:
    from dataproc.config import OutputConfig
    from dataproc.document import Document

FORMAT_VERSION = 1
TOKEN_BYTES = 4  # uint32: cl100k_base / o200k_base ids exceed uint16
META_FORMAT_VERSION = b"dataproc.format_version"
META_TOKENIZER = b"dataproc.tokenizer"
META_EOT_ID = b"dataproc.eot_id"
META_DEDUP_RESULT = b"dataproc.dedup_result"
"""Digest of the dedup result the file was written against (absent when dedup was off)."""

# Parquet's compliant list layout names the child "element"; readers see exactly this type.
TOKEN_LIST_TYPE = pa.list_(pa.field("element", pa.uint32(), nullable=False))

_BASE_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("input_ids", TOKEN_LIST_TYPE, nullable=False),
    pa.field("num_tokens", pa.int32(), nullable=False),
    pa.field("url", pa.string(), nullable=False),
    pa.field("language", pa.string(), nullable=True),
    pa.field("language_score", pa.float32(), nullable=True),
    pa.field("crawl", pa.string(), nullable=True),
    pa.field("warc_date", pa.timestamp("us", tz="UTC"), nullable=True),
    pa.field("source", pa.string(), nullable=False),
    pa.field("warc_target_uri", pa.string(), nullable=False),
]
# Columns added after format version 1 was first written: files from before lack them (and
# are still valid; readers select columns by name).
ADDED_FIELDS = ("warc_target_uri",)
TEXT_FIELD = pa.field("text", pa.string(), nullable=True)


def token_schema(
    keep_text: bool, tokenizer_name: str, eot_id: int, legacy: bool = False
) -> pa.Schema:
    """The exact Arrow schema (column order, types, nullability, metadata) of a token file.

    ``legacy``: the schema of files written before ``ADDED_FIELDS`` existed (still valid)."""
    base = [f for f in _BASE_FIELDS if not (legacy and f.name in ADDED_FIELDS)]
    fields = base + ([TEXT_FIELD] if keep_text else [])
    return pa.schema(
        fields,
        metadata={
            META_FORMAT_VERSION: str(FORMAT_VERSION).encode(),
            META_TOKENIZER: tokenizer_name.encode(),
            META_EOT_ID: str(int(eot_id)).encode(),
        },
    )


@dataclass(frozen=True)
class TokenFileInfo:
    """One written token file, as listed in ``manifest.json`` ``files``."""

    path: str  # relative to OUT, e.g. "tokens/part-000003-0000.parquet"
    input_index: int
    rows: int
    tokens: int
    bytes: int
    sha256: str
    # Per Parquet row group, in file order (manifest format 2): lets a training rank plan its
    # share from the manifest alone. Empty only for records of an older dataproc.
    row_group_rows: tuple[int, ...] = field(default=())
    row_group_tokens: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        # JSON gives lists back; keep tuples so records compare and hash alike.
        object.__setattr__(self, "row_group_rows", tuple(int(x) for x in self.row_group_rows))
        object.__setattr__(self, "row_group_tokens", tuple(int(x) for x in self.row_group_tokens))


class _HashingSink:
    """A write-only file wrapper that hashes and counts bytes as pyarrow writes them.

    Parquet is written strictly sequentially, so hashing on the way out gives the file's
    sha256 without reading it back (which would cost a second download for remote outputs).
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self._size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._hash.update(view)
        self._raw.write(view)
        self._size += len(view)
        return len(view)

    def tell(self) -> int:
        return self._size

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        # The underlying file belongs to fs.atomic_write, which closes and renames it.
        self.closed = True

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    @property
    def size(self) -> int:
        return self._size

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def parquet_write_options(config: OutputConfig) -> dict[str, Any]:
    """Keyword arguments for ``pq.ParquetWriter`` that make output deterministic and readable."""
    compression = None if config.compression == "none" else config.compression
    opts: dict[str, Any] = {
        "compression": compression,
        "write_statistics": True,
        "use_dictionary": ["language", "crawl", "source"],
        "version": "2.6",
        "data_page_version": "1.0",  # widest reader support (DuckDB, Spark, older Arrow)
        "store_schema": True,
    }
    if compression in ("zstd", "gzip"):
        opts["compression_level"] = config.compression_level
    return opts


class ParquetFileSink:
    """Writes one token file atomically, row group by row group, hashing as it goes."""

    def __init__(
        self, out_dir: str, rel_path: str, schema: pa.Schema, config: OutputConfig
    ) -> None:
        self.rel_path = rel_path
        self._cm: AbstractContextManager[IO[bytes]] = fs.atomic_write(fs.join(out_dir, rel_path))
        self._raw = self._cm.__enter__()
        self._sink = _HashingSink(self._raw)
        self._writer = pq.ParquetWriter(self._sink, schema, **parquet_write_options(config))
        self.rows = 0
        self.tokens = 0
        self._rg_rows: list[int] = []
        self._rg_tokens: list[int] = []

    def write_table(self, table: pa.Table, num_tokens: int) -> None:
        """Write ``table`` as one row group holding ``num_tokens`` tokens."""
        self._writer.write_table(table, row_group_size=max(1, table.num_rows))
        self.rows += table.num_rows
        self.tokens += num_tokens
        if table.num_rows:
            self._rg_rows.append(table.num_rows)
            self._rg_tokens.append(num_tokens)

    def close(self, input_index: int) -> TokenFileInfo:
        self._writer.close()
        self._cm.__exit__(None, None, None)
        return TokenFileInfo(
            path=self.rel_path,
            input_index=input_index,
            rows=self.rows,
            tokens=self.tokens,
            bytes=self._sink.size,
            sha256=self._sink.hexdigest(),
            row_group_rows=tuple(self._rg_rows),
            row_group_tokens=tuple(self._rg_tokens),
        )

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            err = OutputError(f"aborted writing {self.rel_path}")
            self._cm.__exit__(OutputError, err, None)


def _check_tokens(doc: Document, eot_id: int, vocab_size: int | None) -> np.ndarray:
    ids = doc.token_ids
    if ids is None:
        raise OutputError(f"document {doc.id!r} has no token_ids: tokenize before writing")
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.size == 0:
        raise OutputError(f"document {doc.id!r}: token_ids must be a non-empty 1-D array")
    if arr.dtype.kind not in "iu":
        raise OutputError(
            f"document {doc.id!r}: token_ids dtype {arr.dtype} is not an integer type"
        )
    if arr.dtype != np.uint32:
        if int(arr.min()) < 0 or int(arr.max()) > np.iinfo(np.uint32).max:
            raise OutputError(f"document {doc.id!r}: token id out of uint32 range")
        arr = arr.astype(np.uint32)
    if int(arr[-1]) != eot_id:
        raise OutputError(
            f"document {doc.id!r} does not end with EOT ({eot_id}); the tokenize stage must append it"
        )
    if vocab_size is not None and int(arr.max()) >= vocab_size:
        raise OutputError(
            f"document {doc.id!r}: token id {int(arr.max())} >= vocab_size {vocab_size}"
        )
    return arr


class TokenShardWriter:
    """Writes the tokenized documents of one input file into one or more Parquet parts.

    ``tokenizer`` is the tokenizer info dict (``name``, ``vocab_size``, ``eot_id``, ...).
    Documents must arrive in ``doc_index`` order; each must carry ``token_ids`` ending in EOT.
    Phase 3's sink (``write``/``close``/``abort``).
    """

    name: ClassVar[str | None] = None

    def __init__(
        self,
        out_dir: str,
        input_index: int,
        config: OutputConfig,
        tokenizer: dict,
        *,
        dedup_result: str | None = None,
    ) -> None:
        for key in ("name", "eot_id"):
            if key not in tokenizer:
                raise OutputError(
                    f"tokenizer info lacks {key!r}; pass tokenizer_info(config.tokenizer)"
                )
        self.out_dir = out_dir
        self.input_index = input_index
        self.config = config
        self.eot_id = int(tokenizer["eot_id"])
        vocab = tokenizer.get("vocab_size")
        self.vocab_size = int(vocab) if vocab is not None else None
        self.schema = token_schema(config.keep_text, str(tokenizer["name"]), self.eot_id)
        if dedup_result is not None:  # lets `dataproc verify` match files to the manifest
            meta = {**(self.schema.metadata or {}), META_DEDUP_RESULT: dedup_result.encode()}
            self.schema = self.schema.with_metadata(meta)
        self._part = 0
        self._sink: ParquetFileSink | None = None
        self._file_bytes = 0  # token bytes in the current file (the roll-over measure)
        self._rows = _RowGroup("text" in self.schema.names)
        self._files: list[TokenFileInfo] = []
        self._closed = False

    def write(self, doc: Document) -> None:
        """Add one document (``doc.token_ids``: uint32 array ending with EOT)."""
        if self._closed:
            raise OutputError("TokenShardWriter.write after close()")
        arr = _check_tokens(doc, self.eot_id, self.vocab_size)
        nbytes = arr.size * TOKEN_BYTES
        open_rows = self._file_bytes > 0 or self._rows.count
        if open_rows and self._file_bytes + nbytes > self.config.max_file_bytes:
            self._finish_file()
        self._rows.add(doc, arr)
        self._file_bytes += nbytes
        if (
            self._rows.count >= self.config.row_group_rows
            or self._rows.nbytes >= self.config.row_group_bytes
        ):
            self._flush_row_group()

    def close(self) -> list[TokenFileInfo]:
        """Finish the last file; return every file written (none for zero documents)."""
        if not self._closed:
            self._finish_file()
            self._closed = True
        return list(self._files)

    def abort(self) -> None:
        """Discard the file being written (files finished before stay: their names are
        rewritten by a rerun, and no marker lists them)."""
        self._closed = True
        if self._sink is not None:
            sink, self._sink = self._sink, None
            with contextlib.suppress(Exception):
                sink.abort()

    def _flush_row_group(self) -> None:
        if not self._rows.count:
            return
        if self._sink is None:
            rel = token_file(self.input_index, self._part)
            self._sink = ParquetFileSink(self.out_dir, rel, self.schema, self.config)
        rows, self._rows = self._rows, _RowGroup(self._rows.keep_text)
        table = rows.table(self.schema)
        self._sink.write_table(table, rows.tokens)

    def _finish_file(self) -> None:
        self._flush_row_group()
        if self._sink is not None:
            self._files.append(self._sink.close(self.input_index))
            self._sink = None
            self._part += 1
        self._file_bytes = 0


# The document fields of a token file besides its text (types from io/documents.py).
_META_FIELDS = tuple(f.name for f in _BASE_FIELDS if f.name not in ("input_ids", "num_tokens"))


class _RowGroup:
    """The columns of one row group being collected: the documents' fields (text only when
    kept) and their token arrays, with the byte count that bounds the group."""

    def __init__(self, keep_text: bool) -> None:
        self.keep_text = keep_text
        self.columns = DocColumns(_META_FIELDS)
        self.texts: list[str] = []
        self.arrays: list[np.ndarray] = []
        self.tokens = 0
        self.nbytes = 0  # token bytes, plus text characters when the text is kept

    @property
    def count(self) -> int:
        return len(self.arrays)

    def add(self, doc: Document, arr: np.ndarray) -> None:
        self.columns.add(doc)
        self.arrays.append(arr)
        self.tokens += arr.size
        self.nbytes += arr.size * TOKEN_BYTES
        if self.keep_text:
            self.texts.append(doc.text)
            self.nbytes += len(doc.text)

    def table(self, schema: pa.Schema) -> pa.Table:
        """This row group's Arrow table in the exact column order and types of ``schema``."""
        arrays = self.arrays
        lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=len(arrays))
        offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if offsets[-1] > np.iinfo(np.int32).max:
            raise OutputError("row group exceeds 2**31 tokens; lower write.row_group_bytes")
        values = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint32)
        input_ids = pa.ListArray.from_arrays(
            pa.array(offsets.astype(np.int32)),
            pa.array(values, type=pa.uint32()),
            type=TOKEN_LIST_TYPE,
        )
        columns = self.columns.arrays()
        columns["input_ids"] = input_ids
        columns["num_tokens"] = pa.array(lengths.astype(np.int32), pa.int32())
        if "text" in schema.names:
            columns["text"] = pa.array(self.texts, pa.string())
        return pa.Table.from_arrays([columns[n] for n in schema.names], schema=schema)
