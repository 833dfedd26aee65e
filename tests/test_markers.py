"""Done-markers and run.json as typed records: the previous version's files read back exactly,
and a marker this dataproc cannot read is an error naming the file, never a guess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataproc.io.markers import (
    DedupMarker,
    FilterMarker,
    MarkerError,
    RunState,
    TokenizeMarker,
    read_marker,
    read_run_state,
    write_marker,
)

# Written by dataproc at 8fbdb67 (string-keyed dicts) on the sample (stats lists shortened).
PHASE1 = """{"input_index": 0, "input": "/tmp/in/a.warc.gz", "fingerprint": "2d037365945377a3",
"input_bytes": 73359, "docs_kept": 16, "languages": {"en": 16}, "stats": [{"name": "read",
"docs_in": 79, "docs_out": 23, "docs_dropped": 56, "dropped": {"http_status": 1, "metadata": 26,
"non_html": 1, "request": 26, "revisit": 1, "warcinfo": 1}, "bytes_in": 76857, "bytes_out":
76865, "seconds": 0.012062, "counters": {"charset_http": 22, "charset_meta": 1, "input_warc":
1}}], "seconds": 1.018, "outputs": [{"path": "_work/docs/000000.parquet", "bytes": 22845},
{"path": "rejects/000000-filter.parquet", "bytes": 5152}]}"""
PHASE2 = """{"fingerprint": "2d037365945377a3", "generation": "411f43a1804b48f7", "summary":
{"docs_in_clusters": 12, "clusters": 6, "edges": 54, "candidate_pairs": 76, "pairs_rejected": 0,
"docs_removed": 6, "removed": {"exact_duplicate": 3, "near_duplicate": 3}, "size_histogram":
{"2": 6}, "max_cluster_size": 2, "tasks": {"buckets": 16, "components": 1, "star_rounds": 0}},
"result": "2917fde15cb6406861f630c51955f9e9d8d1e1428b9c8b433c09e0eb6163cea2", "removed_sha256":
{"0": "d66c67e92f23371628ec3aa5ab8b729ecf039a49df123141f0cd70ddd3524a9a", "1":
"379c2e25ebbf80ef5d9e84d74215ade24e96de07a508eee056dd8d68bde04fea"}}"""
PHASE3 = """{"input_index": 0, "input": "/tmp/in/a.warc.gz", "fingerprint": "2d037365945377a3",
"dedup_result": "2917fde15cb6406861f630c51955f9e9d8d1e1428b9c8b433c09e0eb6163cea2", "files":
[{"path": "tokens/part-000000-0000.parquet", "input_index": 0, "rows": 15, "tokens": 4463,
"bytes": 14348, "sha256": "3585dbb7505403cff9d90f9015595dc65716687d3b84ce09052dff03ccb62506",
"row_group_rows": [15], "row_group_tokens": [4463]}], "stats": [{"name": "dedup", "docs_in": 16,
"docs_out": 15, "docs_dropped": 1, "dropped": {"exact_duplicate": 1}, "bytes_in": 0,
"bytes_out": 0, "seconds": 0.0, "counters": {}}], "seconds": 0.149, "generation":
"21d694bb994481b0", "outputs": [{"path": "rejects/000000-dedup.parquet", "bytes": 4201}]}"""
RUN = """{"state_version": 1, "fingerprint": "2d037365945377a3", "inputs_digest":
"7d92bde40627e4c2", "num_inputs": 2, "settings": {"name": "default"}}"""
FP = "2d037365945377a3"


@pytest.mark.parametrize(
    ("kind", "text"),
    [(FilterMarker, PHASE1), (DedupMarker, PHASE2), (TokenizeMarker, PHASE3)],
)
def test_markers_of_the_previous_version_read_and_write_back_the_same(
    tmp_path: Path, kind: type, text: str
) -> None:
    path = tmp_path / "m.json"
    path.write_text(text)
    marker = read_marker(str(path), kind, FP)
    assert isinstance(marker, kind)
    write_marker(str(tmp_path / "again.json"), marker)
    assert json.loads((tmp_path / "again.json").read_text()) == json.loads(text)


def test_typed_fields(tmp_path: Path) -> None:
    (tmp_path / "2.json").write_text(PHASE2)
    (tmp_path / "3.json").write_text(PHASE3)
    dedup = read_marker(str(tmp_path / "2.json"), DedupMarker, FP)
    assert dedup is not None and dedup.summary["docs_removed"] == 6
    assert sorted(dedup.removed_sha256) == [0, 1]  # input indices, not strings
    tok = read_marker(str(tmp_path / "3.json"), TokenizeMarker, FP)
    assert tok is not None and tok.files[0].row_group_rows == (15,)
    checked = [(f.path, f.bytes, f.sha256) for f in tok.checked_files()]
    assert checked == [
        ("tokens/part-000000-0000.parquet", 14348, tok.files[0].sha256),
        ("rejects/000000-dedup.parquet", 4201, None),
    ]
    assert tok.stats_set().get("dedup").dropped["exact_duplicate"] == 1


def test_other_config_missing_or_cut_short_is_no_marker(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    assert read_marker(str(path), FilterMarker, FP) is None  # missing
    path.write_text(PHASE1)
    assert read_marker(str(path), FilterMarker, "another-config") is None
    path.write_text(PHASE1[:100])  # cut short
    assert read_marker(str(path), FilterMarker, FP) is None


def test_a_marker_of_another_shape_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "000000-phase1.json"
    data = json.loads(PHASE1)
    del data["docs_kept"]
    path.write_text(json.dumps(data))
    with pytest.raises(MarkerError, match=r"000000-phase1\.json.*docs_kept.*--overwrite"):
        read_marker(str(path), FilterMarker, FP)
    data = json.loads(PHASE2)
    data["removed_sha256"] = {"first": "abc"}  # keys are input indices
    path.write_text(json.dumps(data))
    with pytest.raises(MarkerError, match="removed_sha256"):
        read_marker(str(path), DedupMarker, FP)


def test_run_state(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(RUN)
    state = read_run_state(str(path))
    assert state.same_run(state.model_copy(update={"settings": {}}))  # settings: for messages
    assert not state.same_run(state.model_copy(update={"num_inputs": 3}))
    assert state.to_json() == json.loads(RUN)
    path.write_text('{"fingerprint": 1}')
    with pytest.raises(MarkerError, match=r"run\.json"):
        read_run_state(str(path))
    assert isinstance(state, RunState)
