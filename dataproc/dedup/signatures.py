"""MinHash signatures kept on disk so phase 2 can verify LSH candidates.

LSH banding finds *candidate* pairs: a pair with Jaccard 0.5 still shares a band ~5% of the
time with 14x8 banding, and candidates chain (A~B, B~C, yet A and C differ). Phase 2 therefore
re-checks every removal against the document kept in its place with the estimated Jaccard
similarity of the two signatures (the share of equal MinHash values), which needs the
signatures of the documents that have candidates, and only those.

Layout: ``{work_dir}/sigs/{input_index:06d}.parquet`` with columns ``doc`` (uint64 doc_index,
ascending) and ``sig`` (fixed-size binary: ``num_perm`` little-endian uint32 values). datasketch's
default ``affine32`` scheme yields values below 2**32, so uint32 loses nothing and halves the
file (448 bytes per document with the default 112 permutations).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dataproc.errors import DedupError

if TYPE_CHECKING:
    from numpy.typing import NDArray


def signature_path(work_dir: str, input_index: int) -> str:
    """Where input file ``input_index`` writes its signatures (the one path rule)."""
    from dataproc.io import fs

    return fs.join(work_dir, "sigs", f"{input_index:06d}.parquet")


class SignatureWriter:
    """Collects one input file's signatures in a growable uint32 matrix; ``close()`` writes it."""

    def __init__(self, work_dir: str, input_index: int, num_perm: int) -> None:
        self.path = signature_path(work_dir, input_index)
        self.num_perm = num_perm
        self._sigs = np.empty((1024, num_perm), dtype=np.uint32)
        self._docs = np.empty(1024, dtype=np.uint64)
        self._n = 0

    def add(self, doc_index: int, signature: NDArray[np.uint64]) -> None:
        """Record one document's signature (``(num_perm,)`` values below 2**32)."""
        if signature.shape != (self.num_perm,):
            raise DedupError(
                f"SignatureWriter.add: signature of shape {signature.shape} for doc "
                f"{doc_index}, expected ({self.num_perm},) (dedup.num_perm)"
            )
        if int(signature.max(initial=0)) >> 32:
            raise DedupError(
                f"SignatureWriter.add: doc {doc_index} has MinHash values >= 2**32; only "
                "datasketch's 32-bit hash schemes can be stored"
            )
        if self._n == len(self._docs):
            self._sigs = np.concatenate((self._sigs, np.empty_like(self._sigs)))
            self._docs = np.resize(self._docs, 2 * len(self._docs))
        self._sigs[self._n] = signature
        self._docs[self._n] = doc_index
        self._n += 1

    def close(self) -> int:
        """Write the file (sorted by doc) and return the number of signatures in it."""
        import pyarrow as pa

        from dataproc.dedup.buckets import write_parquet_atomic

        n = self._n
        order = np.argsort(self._docs[:n], kind="stable")
        docs = self._docs[:n][order]
        raw = np.ascontiguousarray(self._sigs[:n][order], dtype="<u4").tobytes()
        width = 4 * self.num_perm
        sig = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(raw)])
        table = pa.table({"doc": pa.array(docs, type=pa.uint64()), "sig": sig})
        write_parquet_atomic(table, self.path)
        self._sigs = self._sigs[:0]
        self._docs = self._docs[:0]
        return n


def load_signatures(work_dir: str, docs: NDArray[np.uint64], num_perm: int) -> NDArray[np.uint32]:
    """Signatures of ``docs`` (ascending doc_index values) as a ``(len(docs), num_perm)`` matrix.

    Reads one input file's signatures at a time and keeps only the requested rows, so memory
    is ``4 * num_perm`` bytes per requested document plus one input file's signatures.
    """
    import pyarrow.parquet as pq

    from dataproc.io import fs

    out = np.empty((len(docs), num_perm), dtype=np.uint32)
    inputs = docs >> np.uint64(32)
    bounds = np.flatnonzero(np.concatenate(([True], inputs[1:] != inputs[:-1], [True])))
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        path = signature_path(work_dir, int(inputs[lo]))
        if not fs.exists(path):
            raise DedupError(
                f"{path}: signature file is missing; phase 1 of input {int(inputs[lo])} did "
                "not finish with this version (delete _work/ and rerun)"
            )
        with fs.open_input(path) as f:
            table = pq.ParquetFile(f).read()
        have = np.asarray(table.column("doc").to_numpy(), dtype=np.uint64)
        want = docs[lo:hi]
        pos = np.minimum(np.searchsorted(have, want), max(len(have) - 1, 0))
        if len(have) == 0 or not np.array_equal(have[pos], want):
            raise DedupError(
                f"{path}: holds no signature for some documents with candidates; the file "
                "is from another run (delete _work/ and rerun)"
            )
        sig_col = table.column("sig").combine_chunks()
        width = sig_col.type.byte_width
        if width != 4 * num_perm:
            raise DedupError(
                f"{path}: signatures have {width // 4} values, expected {num_perm} "
                "(dedup.num_perm changed: delete _work/ and rerun)"
            )
        buf = sig_col.buffers()[1]
        start = sig_col.offset * width
        matrix = np.frombuffer(buf, dtype="<u4", count=len(have) * num_perm, offset=start)
        out[lo:hi] = matrix.reshape(len(have), num_perm)[pos]
        del table, sig_col, matrix
    return out
