"""Memory is bounded in bytes, not in document counts (issue 13, item 6).

What is checked here is the structure that bounds memory: phase 1 writes survivors in row
groups as they come, and the report reads only the row groups its samples are in. The peak
RSS of whole runs on long documents is measured by ``bench/memory_long_docs.py``.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from _output_fixtures import TOKENIZER, make_docs

from dataproc.config import OutputConfig
from dataproc.document import Document
from dataproc.io import documents
from dataproc.io.token_writer import TokenShardWriter


def test_phase1_writes_survivors_as_they_come(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "DOCS_ROW_GROUP_CHARS", 40_000)  # 2 documents
    sink = io.BytesIO()
    writer = documents.DocsWriter(sink)
    written_before = []
    for i in range(20):
        writer.add(Document(id=str(i), url="u", source="s", doc_index=i, text="w " * 10_000))
        written_before.append(sink.tell())
    # Bytes reach the file while documents still arrive: nothing waits for the end of the input.
    assert written_before[3] > 0
    assert writer.close() == 20
    pf = pq.ParquetFile(io.BytesIO(sink.getvalue()))
    assert pf.num_row_groups == 10 and pf.metadata.num_rows == 20
    assert pf.read().column("doc_index").to_pylist() == list(range(20))


def test_report_samples_decode_only_what_they_show(tmp_path: Path) -> None:
    import pyarrow as pa

    from dataproc.report import data

    # One row group of ~16 MB of tokens: the sample must not decode all of it.
    w = TokenShardWriter(str(tmp_path), 0, OutputConfig(row_group_rows=1024), TOKENIZER)
    for d in make_docs(0, 64, max_len=60_000):
        w.write(d)
    info = w.close()[0]
    path = str(tmp_path / info.path)
    assert pq.ParquetFile(path).num_row_groups == 1 and info.tokens * 4 > 4_000_000
    before = pa.total_allocated_bytes()
    t = data._first_rows(path, ["id", "input_ids", "missing"], 5)
    assert t is not None and t.column("id").to_pylist() == [f"doc-0-{i}" for i in range(5)]
    assert t.column_names == ["id", "input_ids"]
    # The whole row group would take all of its token bytes in Arrow memory.
    assert pa.total_allocated_bytes() - before < info.tokens * 4 // 2
