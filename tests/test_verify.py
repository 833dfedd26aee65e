"""verify_output catches each classic corruption; a clean output verifies."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _output_fixtures import EOT, VOCAB, make_output

from dataproc.io.manifest import read_manifest, write_manifest
from dataproc.io.token_writer import TOKEN_LIST_TYPE
from dataproc.verify import verify_output


@pytest.fixture
def out(tmp_path):
    make_output(str(tmp_path), [20, 15])
    return tmp_path


def _rewrite(out, transform, *, fix_manifest: bool = True) -> None:
    """Apply ``transform(table) -> table`` to the first file, keeping the manifest's hash."""
    m = read_manifest(str(out))
    entry = m["files"][0]
    path = out / entry["path"]
    pf = pq.ParquetFile(path)
    table = transform(pq.read_table(path))
    table = table.replace_schema_metadata(pf.schema_arrow.metadata)
    pq.write_table(table, path, compression="zstd")
    if fix_manifest:
        data = path.read_bytes()
        entry["bytes"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
        m["totals"]["bytes"] = sum(f["bytes"] for f in m["files"])
        write_manifest(str(out), m)


def _map_ids(fn):
    def transform(t: pa.Table) -> pa.Table:
        rows = [fn(list(r)) for r in t.column("input_ids").to_pylist()]
        arr = pa.array(rows, TOKEN_LIST_TYPE)
        return t.set_column(1, t.schema.field("input_ids"), arr)

    return transform


def _problems(out) -> str:
    r = verify_output(str(out))
    assert not r.ok
    return "\n".join(r.problems)


def test_clean_output_verifies(out):
    r = verify_output(str(out))
    assert r.ok, r.problems
    assert r.checked["files"] == 2 and r.checked["rows"] == 35 and r.checked["unique_ids"] == 35


def test_empty_output_is_flagged(tmp_path):
    # A well-formed output with no documents is never what training wants (e.g. a broken
    # extractor dropped everything): verify says so instead of "safe to train on".
    make_output(str(tmp_path), [0])
    r = verify_output(str(tmp_path))
    assert not r.ok and "holds no documents" in " ".join(r.problems)


def test_flipped_byte_is_a_sha_mismatch(out):
    path = out / read_manifest(str(out))["files"][1]["path"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert "sha256" in _problems(out)


def test_missing_eot(out):
    _rewrite(out, _map_ids(lambda r: [*r[:-1], 5] if len(r) > 1 else [5]))
    assert "does not end with EOT" in _problems(out)


def test_eot_inside_document(out):
    _rewrite(out, _map_ids(lambda r: [EOT, *r]))
    p = _problems(out)
    assert "EOT inside" in p and "num_tokens" in p  # length changed too


def test_id_at_or_above_vocab(out):
    _rewrite(out, _map_ids(lambda r: [VOCAB, *r[1:]] if len(r) > 1 else r))
    assert ">= vocab_size" in _problems(out)


def test_wrong_dtype_uint16(out):
    def narrow(t: pa.Table) -> pa.Table:
        arr = pa.array(
            [[x % 65536 for x in r] for r in t.column("input_ids").to_pylist()],
            pa.list_(pa.uint16()),
        )
        return t.set_column(1, "input_ids", arr)

    _rewrite(out, narrow)
    assert "schema differs" in _problems(out)


def test_wrong_num_tokens(out):
    _rewrite(
        out,
        lambda t: t.set_column(
            2, t.schema.field("num_tokens"), pa.array(np.zeros(t.num_rows, np.int32))
        ),
    )
    assert "num_tokens 0 != len(input_ids)" in _problems(out)


def test_extra_and_missing_files(out):
    m = read_manifest(str(out))
    src = out / m["files"][0]["path"]
    shutil.copy(src, out / "tokens" / "part-000099-0000.parquet")
    (out / m["files"][1]["path"]).unlink()
    p = _problems(out)
    assert "part-000099-0000.parquet: in tokens/ but not in the manifest" in p
    assert "missing" in p


def test_duplicate_ids(out):
    _rewrite(out, lambda t: t.set_column(0, t.schema.field("id"), pa.array(["same"] * t.num_rows)))
    assert "duplicate document" in _problems(out)


def test_manifest_counts_must_match(out):
    m = read_manifest(str(out))
    m["files"][0]["rows"] += 1
    write_manifest(str(out), m)
    assert "rows but the manifest says" in _problems(out)


def test_no_manifest(tmp_path):
    assert "no manifest" in _problems(tmp_path)


def test_incomplete_run_flagged(out):
    m = read_manifest(str(out))
    m["complete"] = False
    write_manifest(str(out), m)
    assert "incomplete" in _problems(out)


def test_tokenizer_hash_mismatch(out):
    pytest.importorskip("dataproc.stages.tokenize").load_encoding  # noqa: B018
    m = read_manifest(str(out))
    m["tokenizer"]["rank_file_sha256"] = "0" * 64
    write_manifest(str(out), m)
    assert "different ranks" in _problems(out)


def test_clean_output_checks_tokenizer_and_decodes_samples(out):
    tokenize = pytest.importorskip("dataproc.stages.tokenize")
    if not hasattr(tokenize, "load_encoding"):
        pytest.skip("tokenizer loader not available")
    r = verify_output(str(out), sample_docs=3)
    assert r.ok, r.problems
    assert r.checked["tokenizer"] == "matches local rank file"
    assert len(r.checked["samples"]) == 3


def test_cli_exit_codes(out, capsys):
    from dataproc.cli import main

    assert main(["verify", str(out)]) == 0
    assert main(["inspect", str(out)]) == 0
    assert "tokens by language" in capsys.readouterr().out
    (out / "tokens" / "stray.parquet").write_bytes(b"x")
    assert main(["verify", str(out)]) == 3
    assert "stray.parquet" in capsys.readouterr().err


def _stamp_dedup_result(out, digest: str) -> str:
    """Rewrite the first file with ``dataproc.dedup_result`` metadata; keep the manifest true."""
    m = read_manifest(str(out))
    entry = m["files"][0]
    path = out / entry["path"]
    pf = pq.ParquetFile(path)
    groups = [pf.read_row_group(g) for g in range(pf.num_row_groups)]  # keep the row groups
    meta = {**pf.schema_arrow.metadata, b"dataproc.dedup_result": digest.encode()}
    schema = pf.schema_arrow.with_metadata(meta)
    with pq.ParquetWriter(path, schema, compression="zstd") as w:
        for g in groups:
            w.write_table(g.replace_schema_metadata(meta))
    data = path.read_bytes()
    entry["bytes"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    m["totals"]["bytes"] = sum(f["bytes"] for f in m["files"])
    write_manifest(str(out), m)
    return entry["path"]


def _set_manifest_dedup_result(out, digest: str | None) -> None:
    m = read_manifest(str(out))
    m["dedup_result"] = digest
    write_manifest(str(out), m)


def test_every_file_must_be_written_against_the_manifests_dedup_result(out):
    """Issue 12: a token file filtered with another set of removals (or none) is reported."""
    assert verify_output(str(out)).ok  # neither the manifest nor the files name one
    _set_manifest_dedup_result(out, "a" * 64)
    problems = verify_output(str(out)).problems
    assert len(problems) == 2 and all("records no dedup result" in p for p in problems)

    first = _stamp_dedup_result(out, "b" * 64)
    problems = verify_output(str(out)).problems
    assert problems[0] == (
        f"{first}: written against dedup result bbbbbbbbbbbb… but the manifest names "
        "aaaaaaaaaaaa…; it was filtered with another set of removals (it may hold duplicates): "
        "rerun the job"
    )
    _set_manifest_dedup_result(out, None)
    problems = verify_output(str(out)).problems
    assert problems == [
        f"{first}: written against dedup result bbbbbbbbbbbb… but the manifest names none; "
        "the file is from another run: rerun the job into a fresh folder"
    ]


def test_a_manifest_from_before_dedup_result_is_not_checked(out):
    m = read_manifest(str(out))
    del m["dedup_result"]
    write_manifest(str(out), m)
    _stamp_dedup_result(out, "b" * 64)
    result = verify_output(str(out))
    assert result.ok and result.checked["dedup_result"] == "not recorded"
