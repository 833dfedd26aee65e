"""Phase-1 side of dedup: buffer one input file's band keys, write them partitioned by bucket.

Layout: ``{work_dir}/bands/bucket={b:04d}/{input_index:06d}.parquet`` with columns
``band`` (uint8; the exact-text key uses band id ``config.bands``), ``key`` (uint64) and
``doc`` (uint64 doc_index), sorted by (band, key, doc). A row goes to bucket
``key % num_buckets``: keys are band-salted BLAKE2b digests, so every (band, key) group lands
in exactly one bucket and buckets are evenly filled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dataproc.dedup.config import DedupConfig
from dataproc.errors import DedupError

if TYPE_CHECKING:
    import pyarrow as pa
    from numpy.typing import NDArray


def bucket_path(work_dir: str, bucket: int, input_index: int) -> str:
    """Where input file ``input_index`` writes its keys of ``bucket`` (the one path rule)."""
    from dataproc.io import fs

    return fs.join(work_dir, "bands", f"bucket={bucket:04d}", f"{input_index:06d}.parquet")


def write_parquet_atomic(table: pa.Table, path: str) -> None:
    """Write ``table`` to ``path`` so that readers never see a partial file."""
    import pyarrow.parquet as pq

    from dataproc.io import fs

    with fs.atomic_write(path) as f:
        # zstd: the uint8 band column and the sorted key column compress well; random doc
        # ids do not, but zstd level 1 costs little CPU on them.
        pq.write_table(table, f, compression="zstd", compression_level=1)


def band_table(
    band: NDArray[np.uint8], key: NDArray[np.uint64], doc: NDArray[np.uint64], exact_band: int
) -> pa.Table:
    """The band-key table with the canonical column names and types.

    ``exact_band`` (the band id of exact-text keys) is stored in the schema metadata so that
    phase 2 can tell exact from near-duplicate edges without the config.
    """
    import pyarrow as pa

    from dataproc.dedup.clusters import EXACT_BAND_METADATA_KEY

    return pa.table(
        {
            "band": pa.array(band, type=pa.uint8()),
            "key": pa.array(key, type=pa.uint64()),
            "doc": pa.array(doc, type=pa.uint64()),
        },
        metadata={EXACT_BAND_METADATA_KEY: str(exact_band).encode()},
    )


class BandKeyWriter:
    """Collects the band keys of one input file's documents; ``close()`` writes them.

    Memory: 8 bytes x (bands + 2) per document in growable NumPy arrays (~130 bytes with
    the 14-band default), no Python object per key; ``close()`` adds ~2 bytes per key for
    bucket ids plus sort temporaries for one bucket at a time.
    """

    def __init__(self, work_dir: str, input_index: int, config: DedupConfig) -> None:
        if input_index < 0 or input_index >= 1 << 32:
            raise DedupError(
                f"BandKeyWriter: input_index {input_index} is outside 0..2**32-1; "
                "doc_index packs it into the high 32 bits"
            )
        self.work_dir = work_dir
        self.input_index = input_index
        self.config = config
        self._width = config.bands + 1  # LSH bands + the exact key column
        self._keys = np.empty((1024, self._width), dtype=np.uint64)
        self._has_exact = np.empty(1024, dtype=bool)
        self._docs = np.empty(1024, dtype=np.uint64)
        self._n = 0
        self._closed = False

    def __len__(self) -> int:
        return self._n

    def add(self, doc_index: int, band_keys: NDArray[np.uint64], exact_key: int | None) -> None:
        """Record one document's band keys (and its exact-text key, or None to skip it)."""
        if self._closed:
            raise DedupError("BandKeyWriter.add called after close(); create a new writer")
        if band_keys.shape != (self.config.bands,):
            raise DedupError(
                f"BandKeyWriter.add: got band keys of shape {band_keys.shape} for doc "
                f"{doc_index}, expected ({self.config.bands},) (dedup.bands)"
            )
        if doc_index >> 32 != self.input_index:
            raise DedupError(
                f"BandKeyWriter.add: doc_index {doc_index} belongs to input "
                f"{doc_index >> 32}, not to this writer's input {self.input_index}"
            )
        if self._n == len(self._docs):
            self._grow()
        row = self._n
        self._keys[row, :-1] = band_keys
        self._keys[row, -1] = 0 if exact_key is None else exact_key
        self._has_exact[row] = exact_key is not None
        self._docs[row] = doc_index
        self._n += 1

    def add_batch(
        self,
        doc_indices: NDArray[np.uint64],
        band_keys: NDArray[np.uint64],
        exact_keys: NDArray[np.uint64] | None,
    ) -> None:
        """Record many documents at once: ``band_keys`` is ``(n, bands)``; exact keys or None."""
        if self._closed:
            raise DedupError("BandKeyWriter.add_batch called after close(); create a new writer")
        n = len(doc_indices)
        if band_keys.shape != (n, self.config.bands):
            raise DedupError(
                f"BandKeyWriter.add_batch: band keys have shape {band_keys.shape}, expected "
                f"({n}, {self.config.bands}) for {n} documents (dedup.bands)"
            )
        docs = np.asarray(doc_indices, dtype=np.uint64)
        if n and (docs >> np.uint64(32) != np.uint64(self.input_index)).any():
            raise DedupError(
                f"BandKeyWriter.add_batch: some doc indices do not belong to input "
                f"{self.input_index} (doc_index >> 32 must equal input_index)"
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
        self._n = hi

    def _grow(self) -> None:
        cap = len(self._docs) * 2
        keys = np.empty((cap, self._width), dtype=np.uint64)
        keys[: self._n] = self._keys[: self._n]
        self._keys = keys
        self._has_exact = np.resize(self._has_exact, cap)
        self._docs = np.resize(self._docs, cap)

    def close(self) -> int:
        """Write one Parquet file per non-empty bucket; return the number of key rows written.

        Buckets this file has no keys for get no file (phase 2 treats a missing file as empty).
        Safe to call twice (the second call writes nothing and returns 0).
        """
        if self._closed:
            return 0
        self._closed = True
        n, nb = self._n, self.config.num_buckets
        keys, docs = self._keys[:n], self._docs[:n]
        # Bucket of every (doc, band) cell, uint16 (num_buckets <= 9999), column by column so
        # that no full-size uint64 temporary exists; a missing exact key gets bucket nb (none).
        bucket = np.empty(keys.shape, dtype=np.uint16)
        for col in range(self._width):
            bucket[:, col] = keys[:, col] % np.uint64(nb)
        bucket[~self._has_exact[:n], -1] = nb
        written = 0
        # One bucket at a time: the sort temporaries are 1/num_buckets of the file's keys.
        for b in range(nb):
            rows, cols = np.nonzero(bucket == b)
            if len(rows) == 0:
                continue
            band = cols.astype(np.uint8)
            key = keys[rows, cols]
            doc = docs[rows]
            del rows, cols
            order = np.lexsort((doc, key, band))
            table = band_table(band[order], key[order], doc[order], self.config.bands)
            write_parquet_atomic(table, bucket_path(self.work_dir, b, self.input_index))
            written += len(order)
        self._keys = self._keys[:0]
        self._docs = self._docs[:0]
        self._has_exact = self._has_exact[:0]
        return written
