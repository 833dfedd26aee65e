"""manifest.json: content, determinism (only timings differ), clear errors."""

from __future__ import annotations

import json

import pytest
from _output_fixtures import TOKENIZER, make_output

from dataproc.errors import OutputError
from dataproc.io.manifest import build_manifest, manifest_files, read_manifest, write_manifest
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
        "inputs",
        "files",
        "totals",
        "timings",
    ]
    assert m["format"] == "dataproc.tokens" and m["format_version"] == 1
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
    f1 = TokenFileInfo("tokens/part-000001-0000.parquet", 1, 1, 2, 3, "a")
    f0 = TokenFileInfo("tokens/part-000000-0000.parquet", 0, 1, 2, 3, "b")
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
    m["format_version"] = 2
    write_manifest(str(tmp_path), m)
    with pytest.raises(OutputError, match="format_version 2 is not supported"):
        read_manifest(str(tmp_path))
