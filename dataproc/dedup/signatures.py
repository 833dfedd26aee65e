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

SIGNATURE_ROW_GROUP = 4096
"""Rows per Parquet row group of a signature file (~1.8 MB with 112 permutations)."""

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
        self._closed = False

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
        self._reserve(1)
        self._sigs[self._n] = signature
        self._docs[self._n] = doc_index
        self._n += 1

    def add_batch(
        self, doc_indices: NDArray[np.uint64], signatures: NDArray[np.uint64] | NDArray[np.uint32]
    ) -> None:
        """Record many documents at once: ``signatures`` is ``(n, num_perm)``, values < 2**32.

        Same checks and the same file as ``add`` called once per row.
        """
        n = len(doc_indices)
        if signatures.shape != (n, self.num_perm):
            raise DedupError(
                f"SignatureWriter.add_batch: signatures of shape {signatures.shape} for {n} "
                f"documents, expected ({n}, {self.num_perm}) (dedup.num_perm)"
            )
        if n and int(signatures.max()) >> 32:
            bad = int(np.flatnonzero((signatures >> 32).any(axis=1))[0])
            raise DedupError(
                f"SignatureWriter.add_batch: doc {int(doc_indices[bad])} has MinHash values "
                ">= 2**32; only datasketch's 32-bit hash schemes can be stored"
            )
        self._reserve(n)
        self._sigs[self._n : self._n + n] = signatures
        self._docs[self._n : self._n + n] = doc_indices
        self._n += n

    def _reserve(self, extra: int) -> None:
        """Room for ``extra`` more rows: at least double the capacity (amortized O(1) a row)."""
        if self._closed:
            raise DedupError(
                f"SignatureWriter: {self.path} is already written; create a new writer"
            )
        if self._n + extra > len(self._docs):
            cap = max(2 * len(self._docs), self._n + extra)
            sigs = np.empty((cap, self.num_perm), dtype=np.uint32)
            sigs[: self._n] = self._sigs[: self._n]
            self._sigs = sigs
            self._docs = np.resize(self._docs, cap)

    def close(self) -> int:
        """Write the file (sorted by doc) and return the number of signatures in it."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from dataproc.io import fs

        n = self._n
        order = np.argsort(self._docs[:n], kind="stable")
        docs = self._docs[:n][order]
        raw = np.ascontiguousarray(self._sigs[:n][order], dtype="<u4").tobytes()
        width = 4 * self.num_perm
        sig = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(raw)])
        table = pa.table({"doc": pa.array(docs, type=pa.uint64()), "sig": sig})
        with fs.atomic_write(self.path) as f:
            # Fixed-size row groups let load_signatures read only the groups holding the few
            # documents with candidates. Signature bytes are random: no compression.
            pq.write_table(
                table,
                f,
                row_group_size=SIGNATURE_ROW_GROUP,
                compression={"doc": "zstd", "sig": "none"},
            )
        self._sigs = self._sigs[:0]
        self._docs = self._docs[:0]
        self._closed = True
        return n


def load_signatures(work_dir: str, docs: NDArray[np.uint64], num_perm: int) -> NDArray[np.uint32]:
    """Signatures of ``docs`` (ascending doc_index values) as a ``(len(docs), num_perm)`` matrix.

    Per input file, reads the ``doc`` column, then only the row groups that hold requested
    documents, so memory is ``4 * num_perm`` bytes per requested document plus 8 bytes per
    document of one input file and a few row groups.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataproc.io import fs

    out = np.empty((len(docs), num_perm), dtype=np.uint32)
    if len(docs) == 0:
        return out
    width = 4 * num_perm
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
            pf = pq.ParquetFile(f)
            sig_type = pf.schema_arrow.field("sig").type
            if getattr(sig_type, "byte_width", None) != width:
                raise DedupError(
                    f"{path}: signatures have {getattr(sig_type, 'byte_width', 0) // 4} "
                    f"values, expected {num_perm} (dedup.num_perm changed: delete _work/ and "
                    "rerun)"
                )
            have = np.asarray(pf.read(columns=["doc"]).column("doc").to_numpy(), np.uint64)
            want = docs[lo:hi]
            pos = np.minimum(np.searchsorted(have, want), max(len(have) - 1, 0))
            if len(have) == 0 or not np.array_equal(have[pos], want):
                raise DedupError(
                    f"{path}: holds no signature for some documents with candidates; the file "
                    "is from another run (delete _work/ and rerun)"
                )
            # Row group boundaries from the metadata (files of other writers may differ).
            group_rows = [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)]
            group_start = np.concatenate(([0], np.cumsum(group_rows)))
            group_of = np.searchsorted(group_start, pos, side="right") - 1
            for g in np.unique(group_of).tolist():
                col = pf.read_row_group(g, columns=["sig"]).column("sig").combine_chunks()
                matrix = np.frombuffer(
                    col.buffers()[1],
                    dtype="<u4",
                    count=len(col) * num_perm,
                    offset=col.offset * width,
                ).reshape(len(col), num_perm)
                rows = np.flatnonzero(group_of == g)
                out[lo + rows] = matrix[pos[rows] - group_start[g]]
                del col, matrix
        del have
        # Arrow's pool keeps freed read buffers otherwise: hand them back per file.
        pa.default_memory_pool().release_unused()
    return out
