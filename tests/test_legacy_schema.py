"""Token files written before the ``warc_target_uri`` column still verify and reshard."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
from _output_fixtures import make_output

from dataproc.io.token_writer import token_schema
from dataproc.reshard import reshard
from dataproc.verify import verify_output


def _legacy_output(out: Path) -> None:
    """An output as dataproc wrote it before ``warc_target_uri`` (same rows and row groups)."""
    manifest = make_output(str(out), [20, 15])
    legacy = token_schema(False, "cl100k_base", 100257, legacy=True)
    for entry in manifest["files"]:
        path = out / entry["path"]
        table = pq.read_table(path).select(legacy.names).cast(legacy)
        pq.write_table(table, path, compression="zstd", row_group_size=16)
        data = path.read_bytes()
        entry["bytes"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    manifest["totals"]["bytes"] = sum(e["bytes"] for e in manifest["files"])
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_legacy_files_verify_and_reshard(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _legacy_output(out)
    result = verify_output(str(out))
    assert result.ok, result.problems
    reshard(str(out), str(tmp_path / "re"), num_files=2, seed=0)
    assert verify_output(str(tmp_path / "re")).ok


def test_a_file_missing_another_column_is_still_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest = make_output(str(out), [5])
    path = out / manifest["files"][0]["path"]
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["crawl"]), path)
    assert any("schema differs" in p for p in verify_output(str(out)).problems)
