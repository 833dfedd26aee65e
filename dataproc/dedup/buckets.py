"""Phase-1 side of dedup: one band-key file per input file, read back by key range in phase 2.

Layout: ``{work_dir}/bands/{input_index:06d}.parquet`` — ONE object per input file (not one
per input and bucket: at 90,000 inputs x 256 buckets that was 23 M objects). Columns:

- ``band`` (uint8; the exact-text key uses band id ``config.bands``),
- ``key`` (uint64: band-salted BLAKE2b digest, uniform over 0..2**64-1),
- ``doc`` (uint64 doc_index),
- ``sketch`` (fixed-size binary, ``num_perm`` bytes: the low 8 bits of each MinHash value of
  the document — a *b-bit MinHash* signature, see ``dataproc.dedup.edges``),

sorted by (key, band, doc) in row groups of ``BAND_ROW_GROUP`` rows. A phase-2 bucket task owns
a key range ``[lo, hi)`` and reads, from every file, only the row groups whose ``key``
statistics overlap it. Because keys are uniform, the number of bucket tasks can be chosen
after phase 1, from the total row count and the task memory budget, without rewriting files.
The sketch travels with every band row so that the bucket task can verify its candidates
where it finds them, without a random read of anybody's signature (see ``docs/cluster.md``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from dataproc.dedup.config import DedupConfig
from dataproc.errors import DedupError
from dataproc.io.layout import band_file

if TYPE_CHECKING:
    import pyarrow as pa
    from numpy.typing import NDArray

BAND_ROW_GROUP = 4096
"""Rows per row group of a band file (~0.5 MB with 112 permutations)."""

BAND_FORMAT = b"2"
"""Version of the band-file layout (schema metadata ``dataproc.band_format``)."""

EXACT_BAND_METADATA_KEY = b"dataproc.exact_band"
"""Parquet schema metadata of band files: the band id that holds exact-text keys."""

FORMAT_METADATA_KEY = b"dataproc.band_format"

KEY_SPACE = 1 << 64
"""Keys are uniform 64-bit digests: bucket ranges split ``[0, KEY_SPACE)``."""


def sketch_of(signatures: NDArray[Any]) -> NDArray[np.uint8]:
    """The b-bit (b = 8) sketch of MinHash signatures: the low byte of every value."""
    return (np.asarray(signatures, dtype=np.uint64) & np.uint64(0xFF)).astype(np.uint8)


def write_parquet_atomic(table: pa.Table, path: str, row_group_size: int | None = None) -> None:
    """Write ``table`` to ``path`` so that readers never see a partial file."""
    import pyarrow.parquet as pq

    from dataproc.io import fs

    with fs.atomic_write(path) as f:
        # zstd level 1: the sorted key and uint8 band columns compress well, sketches and
        # random doc ids little, and level 1 costs little CPU on them.
        pq.write_table(
            table, f, compression="zstd", compression_level=1, row_group_size=row_group_size
        )


def band_table(
    band: NDArray[np.uint8],
    key: NDArray[np.uint64],
    doc: NDArray[np.uint64],
    sketch: NDArray[np.uint8],
    exact_band: int,
) -> pa.Table:
    """The band-key table with the canonical column names, types and metadata.

    ``exact_band`` (the band id of exact-text keys) is stored in the schema metadata so that
    phase 2 can tell exact from near-duplicate groups without the config.
    """
    import pyarrow as pa

    n, width = sketch.shape
    raw = pa.py_buffer(np.ascontiguousarray(sketch, dtype=np.uint8).tobytes())
    sk = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, raw])
    return pa.table(
        {
            "band": pa.array(band, type=pa.uint8()),
            "key": pa.array(key, type=pa.uint64()),
            "doc": pa.array(doc, type=pa.uint64()),
            "sketch": sk,
        },
        metadata={
            EXACT_BAND_METADATA_KEY: str(exact_band).encode(),
            FORMAT_METADATA_KEY: BAND_FORMAT,
        },
    )


class BandKeyWriter:
    """Collects the band keys and sketches of one input file's documents; ``close()`` writes.

    Memory: 8 bytes x (bands + 2) + ``num_perm`` bytes per document in growable NumPy arrays
    (~240 bytes with the defaults), no Python object per key; ``close()`` adds the sorted
    rows (``17 + num_perm`` bytes per key row) of this one file.
    """

    def __init__(self, work_dir: str, input_index: int, config: DedupConfig) -> None:
        if input_index < 0 or input_index >= 1 << 31:
            raise DedupError(
                f"BandKeyWriter: input_index {input_index} is outside 0..2**31-1; "
                "doc_index packs it into the high 32 bits"
            )
        self.work_dir = work_dir
        self.input_index = input_index
        self.config = config
        self._width = config.bands + 1  # LSH bands + the exact key column
        self._keys = np.empty((1024, self._width), dtype=np.uint64)
        self._has_exact = np.empty(1024, dtype=bool)
        self._docs = np.empty(1024, dtype=np.uint64)
        self._sketch = np.empty((1024, config.num_perm), dtype=np.uint8)
        self._n = 0
        self._closed = False

    def __len__(self) -> int:
        return self._n

    def add(
        self,
        doc_index: int,
        band_keys: NDArray[np.uint64],
        exact_key: int | None,
        signature: NDArray[np.uint64],
    ) -> None:
        """Record one document's band keys, exact-text key (or None) and MinHash signature."""
        self.add_batch(
            np.array([doc_index], dtype=np.uint64),
            np.asarray(band_keys, dtype=np.uint64).reshape(1, -1),
            None if exact_key is None else np.array([exact_key], dtype=np.uint64),
            np.asarray(signature, dtype=np.uint64).reshape(1, -1),
        )

    def add_batch(
        self,
        doc_indices: NDArray[np.uint64],
        band_keys: NDArray[np.uint64],
        exact_keys: NDArray[np.uint64] | None,
        signatures: NDArray[Any],
    ) -> None:
        """Record many documents: ``band_keys`` ``(n, bands)``, ``signatures`` ``(n, num_perm)``."""
        if self._closed:
            raise DedupError("BandKeyWriter.add_batch called after close(); create a new writer")
        n = len(doc_indices)
        if band_keys.shape != (n, self.config.bands):
            raise DedupError(
                f"BandKeyWriter: band keys have shape {band_keys.shape}, expected "
                f"({n}, {self.config.bands}) for {n} documents (dedup.bands)"
            )
        if signatures.shape != (n, self.config.num_perm):
            raise DedupError(
                f"BandKeyWriter: signatures have shape {signatures.shape}, expected "
                f"({n}, {self.config.num_perm}) (dedup.num_perm)"
            )
        docs = np.asarray(doc_indices, dtype=np.uint64)
        if n and (docs >> np.uint64(32) != np.uint64(self.input_index)).any():
            raise DedupError(
                f"BandKeyWriter: some doc indices do not belong to input {self.input_index} "
                "(doc_index >> 32 must equal input_index)"
            )
        while self._n + n > len(self._docs):
            self._grow()
        lo, hi = self._n, self._n + n
        self._keys[lo:hi, :-1] = band_keys
        if exact_keys is None:
            self._keys[lo:hi, -1] = 0
            self._has_exact[lo:hi] = False
        else:
            self._keys[lo:hi, -1] = exact_keys
            self._has_exact[lo:hi] = True
        self._docs[lo:hi] = docs
        self._sketch[lo:hi] = sketch_of(signatures)
        self._n = hi

    def _grow(self) -> None:
        cap = len(self._docs) * 2
        keys = np.empty((cap, self._width), dtype=np.uint64)
        keys[: self._n] = self._keys[: self._n]
        self._keys = keys
        sketch = np.empty((cap, self.config.num_perm), dtype=np.uint8)
        sketch[: self._n] = self._sketch[: self._n]
        self._sketch = sketch
        self._has_exact = np.resize(self._has_exact, cap)
        self._docs = np.resize(self._docs, cap)

    def close(self) -> int:
        """Write the file (also when empty: phase 2 treats a missing file as an error).

        Returns the number of key rows written; a second call writes nothing and returns 0.
        """
        if self._closed:
            return 0
        self._closed = True
        n = self._n
        cell = np.ones((n, self._width), dtype=bool)
        cell[:, -1] = self._has_exact[:n]
        rows, cols = np.nonzero(cell)
        del cell
        key = self._keys[:n][rows, cols]
        band = cols.astype(np.uint8)
        doc = self._docs[:n][rows]
        order = np.lexsort((doc, band, key))
        table = band_table(
            band[order], key[order], doc[order], self._sketch[:n][rows[order]], self.config.bands
        )
        path = band_file(self.work_dir, self.input_index)
        write_parquet_atomic(table, path, row_group_size=BAND_ROW_GROUP)
        self._keys = self._keys[:0]
        self._docs = self._docs[:0]
        self._sketch = self._sketch[:0]
        self._has_exact = self._has_exact[:0]
        return len(order)


def _row_group_range(pf: Any, g: int, col: int) -> tuple[int, int] | None:
    """(min, max) of column ``col`` in row group ``g`` from its statistics, if recorded."""
    st = pf.metadata.row_group(g).column(col).statistics
    if st is None or not st.has_min_max:
        return None
    return int(st.min), int(st.max)


def select_row_groups(pf: Any, column: str, lo: int, hi: int) -> list[int]:
    """Row groups of ``pf`` whose ``column`` values may fall in ``[lo, hi)`` (by statistics)."""
    col = pf.schema_arrow.get_field_index(column)
    groups = []
    for g in range(pf.num_row_groups):
        if pf.metadata.row_group(g).num_rows == 0:
            continue
        r = _row_group_range(pf, g, col)
        if r is None or (r[1] >= lo and r[0] < hi):
            groups.append(g)
    return groups


def check_band_file(pf: Any, path: str, num_perm: int) -> int:
    """Validate a band file's format and sketch width; return its exact-key band id."""
    kv = pf.schema_arrow.metadata or {}
    if kv.get(FORMAT_METADATA_KEY) != BAND_FORMAT:
        raise DedupError(
            f"{path}: not a band-key file of this dataproc version (format "
            f"{kv.get(FORMAT_METADATA_KEY)!r}, expected {BAND_FORMAT!r}); delete _work/ and rerun"
        )
    width = getattr(pf.schema_arrow.field("sketch").type, "byte_width", None)
    if width != num_perm:
        raise DedupError(
            f"{path}: sketches have {width} values, expected {num_perm} (dedup.num_perm "
            "differs from the run that wrote it)"
        )
    return int(kv[EXACT_BAND_METADATA_KEY])


@contextmanager
def _open_band_file(path: str, num_perm: int) -> Iterator[tuple[Any, int]]:
    """The ParquetFile of a band file and its exact-key band id; clear errors when unusable."""
    import pyarrow.parquet as pq

    from dataproc.io import fs

    if not fs.exists(path):
        raise DedupError(
            f"{path}: band-key file is missing; phase 1 of its input did not finish with this "
            "version (rerun; if it persists delete _work/ and rerun)"
        )
    try:
        with fs.open_input(path) as f:
            pf = pq.ParquetFile(f)
            yield pf, check_band_file(pf, path, num_perm)
    except DedupError:
        raise
    except (OSError, ValueError, KeyError) as e:
        raise DedupError(f"{path}: cannot read band-key file: {e}") from None


def _sketch_matrix(sk: Any, num_perm: int) -> NDArray[np.uint8]:
    """The ``sketch`` column (one chunk) as an (n, num_perm) uint8 view of its buffer."""
    return np.frombuffer(
        sk.buffers()[1], dtype=np.uint8, count=len(sk) * num_perm, offset=sk.offset * num_perm
    ).reshape(len(sk), num_perm)


def read_key_range(
    path: str, lo: int, hi: int, num_perm: int, doc_offset: int = 0
) -> tuple[NDArray[np.uint8], NDArray[np.uint64], NDArray[np.uint64], NDArray[np.uint8], int]:
    """Rows of band file ``path`` with ``lo <= key < hi``: band, key, doc, sketch, exact band.

    Reads only the row groups whose key statistics overlap the range, one at a time.
    ``doc_offset`` is added to every doc (``--dedup-against`` puts earlier outputs' documents
    in front of this run's; see ``dataproc.dedup.phase2``).
    """
    bands, keys, docs, sketches = [], [], [], []
    with _open_band_file(path, num_perm) as (pf, exact_band):
        for g in select_row_groups(pf, "key", lo, hi):
            t = pf.read_row_group(g, columns=["band", "key", "doc", "sketch"])
            key = np.asarray(t.column("key").to_numpy(), dtype=np.uint64)
            sel = np.flatnonzero((key >= np.uint64(lo)) & (key <= np.uint64(hi - 1)))
            if len(sel) == 0:
                continue
            keys.append(key[sel])
            bands.append(np.asarray(t.column("band").to_numpy(), dtype=np.uint8)[sel])
            docs.append(np.asarray(t.column("doc").to_numpy(), dtype=np.uint64)[sel])
            sk = t.column("sketch").combine_chunks()
            sketches.append(_sketch_matrix(sk, num_perm)[sel].copy())
            del t, sk
    if not keys:
        return (
            np.empty(0, np.uint8),
            np.empty(0, np.uint64),
            np.empty(0, np.uint64),
            np.empty((0, num_perm), np.uint8),
            exact_band,
        )
    doc = np.concatenate(docs)
    if doc_offset:
        doc += np.uint64(doc_offset)
    return np.concatenate(bands), np.concatenate(keys), doc, np.concatenate(sketches), exact_band


def read_key_counts(
    path: str, lo: int, hi: int, num_perm: int
) -> tuple[NDArray[np.uint64], NDArray[np.int64], int]:
    """Distinct keys of band file ``path`` in ``[lo, hi)`` with their row counts, exact band.

    Reads the ``key`` column only (8 bytes per row, one row group at a time); the file is
    sorted by key, so each row group's keys are counted by their runs.
    """
    keys, counts = [], []
    with _open_band_file(path, num_perm) as (pf, exact_band):
        for g in select_row_groups(pf, "key", lo, hi):
            t = pf.read_row_group(g, columns=["key"])
            key = np.asarray(t.column("key").to_numpy(), dtype=np.uint64)
            key = key[(key >= np.uint64(lo)) & (key <= np.uint64(hi - 1))]
            if len(key) == 0:
                continue
            start = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
            keys.append(key[start])
            counts.append(np.diff(np.append(start, len(key))).astype(np.int64))
    if not keys:
        return np.empty(0, np.uint64), np.empty(0, np.int64), exact_band
    return np.concatenate(keys), np.concatenate(counts), exact_band


def iter_key_rows(
    path: str, key: int, num_perm: int, doc_offset: int = 0
) -> Iterator[tuple[NDArray[np.uint8], NDArray[np.uint64], NDArray[np.uint8]]]:
    """The rows of one key value in band file ``path``, a row group at a time, in file order
    ((band, doc) order: files are sorted by (key, band, doc)): (band, doc, sketch) chunks."""
    with _open_band_file(path, num_perm) as (pf, _):
        for g in select_row_groups(pf, "key", key, key + 1):
            t = pf.read_row_group(g, columns=["band", "key", "doc", "sketch"])
            k = np.asarray(t.column("key").to_numpy(), dtype=np.uint64)
            sel = np.flatnonzero(k == np.uint64(key))
            if len(sel) == 0:
                continue
            band = np.asarray(t.column("band").to_numpy(), dtype=np.uint8)[sel]
            doc = np.asarray(t.column("doc").to_numpy(), dtype=np.uint64)[sel]
            if doc_offset:
                doc += np.uint64(doc_offset)
            sk = t.column("sketch").combine_chunks()
            sketch = _sketch_matrix(sk, num_perm)[sel].copy()
            del t, sk
            yield band, doc, sketch
