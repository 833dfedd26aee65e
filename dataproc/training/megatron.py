"""Export to Megatron-LM's ``MMapIndexedDataset`` (``PREFIX.bin`` + ``PREFIX.idx``).

The layout (Megatron-LM ``megatron/core/datasets/indexed_dataset.py``; NeMo and datatrove read
the same): ``.bin`` is every document's token ids back to back; ``.idx`` is

* ``b"MMIDIDX\\x00\\x00"`` (9 bytes), version ``<Q`` = 1, dtype code ``<B``;
* sequence count ``<Q``, document count ``<Q`` (= sequences + 1);
* sequence lengths ``int32[n]``, byte pointers into ``.bin`` ``int64[n]``,
  document indices ``int64[n + 1]`` (``0, 1, ..., n``: one sequence per document).

Megatron's dtype table has no uint32 (1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 6 float64,
7 float32, 8 uint16), so ids are written as int32 (code 4), which holds every id below 2**31;
uint16 is never used because cl100k_base/o200k_base ids exceed 65,535. Each document keeps
its trailing EOT (what Megatron's ``preprocess_data.py --append-eod`` produces).
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from dataproc.errors import OutputError
from dataproc.io import fs
from dataproc.io.manifest import read_manifest
from dataproc.training.loader import check_token_schema

INDEX_HEADER = b"MMIDIDX\x00\x00"
DTYPE_CODES: dict[int, type] = {
    1: np.uint8,
    2: np.int8,
    3: np.int16,
    4: np.int32,
    5: np.int64,
    6: np.float64,
    7: np.float32,
    8: np.uint16,
}
INT32_CODE = 4


def export_megatron(src: str, prefix: str) -> dict[str, Any]:
    """Write ``prefix.bin``/``prefix.idx`` from the output ``src`` (manifest order, rows in order).

    Returns ``{"documents", "tokens", "bin", "idx"}``. Memory: 12 bytes per document (the index)
    plus one row group.
    """
    import pyarrow.parquet as pq

    manifest = read_manifest(src)
    if int(manifest["tokenizer"].get("vocab_size") or 0) >= 2**31:
        raise OutputError("vocab_size >= 2**31 does not fit Megatron's int32 token dtype")
    lengths: list[np.ndarray] = []
    with fs.atomic_write(prefix + ".bin") as out:
        for entry in manifest["files"]:
            path = fs.join(src, entry["path"])
            with fs.open_input(path) as handle:
                pf = pq.ParquetFile(handle)
                check_token_schema(pf.schema_arrow, path)
                for rg in range(pf.num_row_groups):
                    col = pf.read_row_group(rg, columns=["input_ids"]).column(0).combine_chunks()
                    offsets = col.offsets.to_numpy().astype(np.int64)
                    values = col.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
                    out.write(values.astype(np.int32).tobytes())
                    lengths.append(np.diff(offsets).astype(np.int32))
    sizes = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int32)
    pointers = np.zeros(len(sizes), dtype=np.int64)
    if len(sizes) > 1:
        np.cumsum(sizes[:-1].astype(np.int64) * 4, out=pointers[1:])
    doc_idx = np.arange(len(sizes) + 1, dtype=np.int64)
    with fs.atomic_write(prefix + ".idx") as idx:
        idx.write(INDEX_HEADER)
        idx.write(struct.pack("<Q", 1))
        idx.write(struct.pack("<B", INT32_CODE))
        idx.write(struct.pack("<Q", len(sizes)))
        idx.write(struct.pack("<Q", len(doc_idx)))
        idx.write(sizes.tobytes())
        idx.write(pointers.tobytes())
        idx.write(doc_idx.tobytes())
    return {
        "documents": len(sizes),
        "tokens": int(sizes.sum(dtype=np.int64)),
        "bin": prefix + ".bin",
        "idx": prefix + ".idx",
    }


class MegatronDataset:
    """Read-only view of a local ``PREFIX.bin``/``.idx`` pair (memory-mapped), for checking."""

    def __init__(self, prefix: str) -> None:
        with open(prefix + ".idx", "rb") as f:
            if f.read(9) != INDEX_HEADER:
                raise OutputError(f"{prefix}.idx: not a Megatron MMIDIDX index")
            (version,) = struct.unpack("<Q", f.read(8))
            if version != 1:
                raise OutputError(f"{prefix}.idx: index version {version}, expected 1")
            (code,) = struct.unpack("<B", f.read(1))
            if code not in DTYPE_CODES:
                raise OutputError(f"{prefix}.idx: unknown dtype code {code}")
            self.dtype = np.dtype(DTYPE_CODES[code])
            (n,) = struct.unpack("<Q", f.read(8))
            (n_docs,) = struct.unpack("<Q", f.read(8))
            offset = f.tell()
        buf = np.memmap(prefix + ".idx", mode="r", dtype=np.uint8)
        self.sizes = np.frombuffer(buf, dtype=np.int32, count=n, offset=offset)
        offset += self.sizes.nbytes
        self.pointers = np.frombuffer(buf, dtype=np.int64, count=n, offset=offset)
        offset += self.pointers.nbytes
        self.doc_idx = np.frombuffer(buf, dtype=np.int64, count=n_docs, offset=offset)
        # numpy cannot map an empty file; an empty export has nothing to read anyway
        empty = not any(self.sizes)
        self._bin = np.zeros(0, np.uint8) if empty else np.memmap(prefix + ".bin", mode="r")

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int) -> np.ndarray:
        return np.frombuffer(
            self._bin, dtype=self.dtype, count=int(self.sizes[i]), offset=int(self.pointers[i])
        )
