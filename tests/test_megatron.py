"""Megatron .bin/.idx export reads back to exactly the documents, header per Megatron-LM."""

from __future__ import annotations

import struct

import numpy as np
from _output_fixtures import all_docs, make_output

from dataproc.training.megatron import INDEX_HEADER, MegatronDataset, export_megatron


def test_round_trip(tmp_path):
    sizes = [13, 0, 21]
    make_output(str(tmp_path / "out"), sizes)
    info = export_megatron(str(tmp_path / "out"), str(tmp_path / "mega"))
    docs = all_docs(sizes)
    assert info["documents"] == len(docs) and info["tokens"] == sum(len(d) for d in docs)
    ds = MegatronDataset(str(tmp_path / "mega"))
    assert ds.dtype == np.int32 and len(ds) == len(docs)
    assert list(ds.doc_idx) == list(range(len(docs) + 1))
    for i, d in enumerate(docs):
        assert np.array_equal(ds[i], d.astype(np.int32))
    assert max(int(ds[i].max()) for i in range(len(ds))) > 65535
    raw = (tmp_path / "mega.idx").read_bytes()
    assert raw[:9] == INDEX_HEADER
    assert struct.unpack("<QBQQ", raw[9:34]) == (1, 4, len(docs), len(docs) + 1)
    assert len(raw) == 34 + 4 * len(docs) + 8 * len(docs) + 8 * (len(docs) + 1)
    assert (tmp_path / "mega.bin").stat().st_size == 4 * info["tokens"]


def test_empty(tmp_path):
    make_output(str(tmp_path / "out"), [0])
    export_megatron(str(tmp_path / "out"), str(tmp_path / "m"))
    assert len(MegatronDataset(str(tmp_path / "m"))) == 0
