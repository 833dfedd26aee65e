"""manifest.json: content, determinism (only timings differ), clear errors."""

from __future__ import annotations

import json

import pytest
from _output_fixtures import TOKENIZER, make_output

from dataproc.config import OutputConfig
from dataproc.errors import OutputError
from dataproc.io.manifest import (
    build_manifest,
    has_row_group_counts,
    manifest_files,
    read_manifest,
    read_row_group_counts,
    replace_files,
    token_file_info,
    with_row_group_counts,
    write_manifest,
)
from dataproc.io.token_writer import TokenFileInfo


def test_manifest_content(tmp_path):
    m = make_output(str(tmp_path), [20, 0, 35])
    assert list(m) == [
        "format",
        "format_version",
        "created_by",
        "pipeline",
        "config_fingerprint",
        "config",
        "tokenizer",
        "dedup_result",
        "inputs",
        "files",
        "totals",
        "timings",
    ]
    assert m["format"] == "dataproc.tokens" and m["format_version"] == 2
    assert m["tokenizer"]["dtype"] == "uint32" and m["tokenizer"]["eot_id"] == TOKENIZER["eot_id"]
    assert [f["input_index"] for f in m["files"]] == [0, 2]  # empty input: no file
    assert m["totals"]["rows"] == 55 and m["totals"]["files"] == 2
    assert m["totals"]["tokens"] == sum(f["tokens"] for f in m["files"])
    assert read_manifest(str(tmp_path)) == json.loads(json.dumps(m))
    assert all(isinstance(f, TokenFileInfo) for f in manifest_files(m))


def test_two_runs_differ_only_in_timings(tmp_path):
    a = make_output(str(tmp_path / "a"), [10, 12])
    b = make_output(str(tmp_path / "b"), [10, 12])
    a.pop("timings"), b.pop("timings")
    assert a == b
    fa = (tmp_path / "a" / a["files"][0]["path"]).read_bytes()
    assert fa == (tmp_path / "b" / b["files"][0]["path"]).read_bytes()


def test_files_sorted_regardless_of_completion_order():
    f1 = TokenFileInfo("tokens/part-000001-0000.parquet", 1, 1, 2, 3, "a", (1,), (2,))
    f0 = TokenFileInfo("tokens/part-000000-0000.parquet", 0, 1, 2, 3, "b", (1,), (2,))
    m = build_manifest(
        pipeline="p",
        config={},
        config_fingerprint="x",
        tokenizer=TOKENIZER,
        inputs=[],
        files=[f1, f0],
        timings={},
    )
    assert [f["input_index"] for f in m["files"]] == [0, 1]


def test_read_manifest_errors(tmp_path):
    with pytest.raises(OutputError, match="no manifest"):
        read_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(OutputError, match="not valid JSON"):
        read_manifest(str(tmp_path))
    m = make_output(str(tmp_path), [3])
    m["format_version"] = 3
    write_manifest(str(tmp_path), m)
    with pytest.raises(OutputError, match="format_version 3 is not supported"):
        read_manifest(str(tmp_path))


def _as_format_1(m: dict) -> dict:
    """What dataproc wrote before manifest format 2 (no per-row-group counts)."""
    old = {**m, "format_version": 1}
    old["files"] = [
        {k: v for k, v in f.items() if not k.startswith("row_group_")} for f in m["files"]
    ]
    return old


def test_per_row_group_counts_are_exact(tmp_path):
    m = make_output(str(tmp_path), [40, 0, 9], config=OutputConfig(row_group_rows=16))
    assert has_row_group_counts(m)
    first = m["files"][0]
    assert first["row_group_rows"] == [16, 16, 8]
    assert sum(first["row_group_tokens"]) == first["tokens"]
    for f in m["files"]:
        assert read_row_group_counts(str(tmp_path), f["path"]) == (
            f["row_group_rows"],
            f["row_group_tokens"],
        )
    # one line per file entry: a 100k-file manifest stays a 100k-line file
    text = (tmp_path / "manifest.json").read_text()
    assert sum('"row_group_tokens"' in line for line in text.splitlines()) == 2


def test_format_1_manifest_still_loads(tmp_path):
    m = make_output(str(tmp_path), [5, 7])
    write_manifest(str(tmp_path), _as_format_1(m))
    old = read_manifest(str(tmp_path))
    assert old["format_version"] == 1 and not has_row_group_counts(old)
    # the run's finalize fills counts for records written by an older dataproc
    filled = [with_row_group_counts(str(tmp_path), f) for f in manifest_files(old)]
    assert [f.row_group_tokens for f in filled] == [
        tuple(f["row_group_tokens"]) for f in m["files"]
    ]


def test_rewrite_helpers_recount_a_changed_file(tmp_path):
    import pyarrow.parquet as pq

    m = make_output(str(tmp_path), [30, 12], config=OutputConfig(row_group_rows=8))
    rel = m["files"][0]["path"]
    table = pq.read_table(tmp_path / rel).slice(0, 20)  # a rewrite dropped 10 documents
    pq.write_table(table, tmp_path / rel, row_group_size=8)
    info = token_file_info(str(tmp_path), rel, 0)
    assert info.rows == 20 and info.row_group_rows == (8, 8, 4)
    assert info.tokens == sum(table.column("num_tokens").to_pylist())
    new = replace_files(m, [info, *manifest_files(m)[1:]])
    assert new["totals"]["rows"] == 32 and new["totals"]["tokens"] == sum(
        f["tokens"] for f in new["files"]
    )
    assert new["files"][0]["sha256"] != m["files"][0]["sha256"]


def test_dataproc_remove_keeps_per_row_group_counts(tmp_path):
    from dataproc.remove import remove_documents
    from dataproc.verify import verify_output

    out = tmp_path / "out"
    make_output(str(out), [30, 20], config=OutputConfig(row_group_rows=8))
    req = tmp_path / "ids.txt"
    req.write_text("\n".join(f"doc-0-{i}" for i in range(0, 30, 3)) + "\n")
    remove_documents(str(out), str(req), "ids")
    m = read_manifest(str(out))
    assert has_row_group_counts(m) and m["files"][0]["rows"] == 20
    for f in m["files"]:
        rows, tokens = read_row_group_counts(str(out), f["path"])
        assert (f["row_group_rows"], f["row_group_tokens"]) == (rows, tokens)
    assert verify_output(str(out)).ok


def test_read_manifest_index_fast_path_matches_json(tmp_path):
    from dataproc.io import fs
    from dataproc.io.manifest import read_manifest_index

    m = make_output(str(tmp_path), [40, 0, 9, 17], config=OutputConfig(row_group_rows=8))
    head, paths, per_file, tokens = read_manifest_index(str(tmp_path))
    assert head["tokenizer"] == m["tokenizer"] and paths == [f["path"] for f in m["files"]]
    assert per_file.tolist() == [len(f["row_group_tokens"]) for f in m["files"]]
    assert tokens.tolist() == [t for f in m["files"] for t in f["row_group_tokens"]]
    # any other JSON layout of the same manifest (e.g. json.dumps indent=2) gives the same
    fs.write_json_atomic(str(tmp_path / "manifest.json"), m)
    _, paths2, per_file2, tokens2 = read_manifest_index(str(tmp_path))
    assert paths2 == paths and per_file2.tolist() == per_file.tolist()
    assert tokens2.tolist() == tokens.tolist()
    write_manifest(str(tmp_path), _as_format_1(m))
    assert read_manifest_index(str(tmp_path))[2:] == (None, None)
