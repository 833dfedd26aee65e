"""Per-shard JSON-lines logs: one file per input, identity on every line, errors with offsets."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from dataproc.io.layout import OutputLayout
from dataproc.logs import read_log, shard_log


def test_lines_carry_shard_identity_and_stage_logs_are_captured(tmp_path: Path) -> None:
    out = str(tmp_path)
    with shard_log(out, 7, "/data/CC-MAIN-x-00007.warc.gz", "filter") as slog:
        slog.position(1234)
        logging.getLogger("dataproc.stages.extract").warning("slow page %s", "http://a")
        slog.info("progress", docs=3)
    path = OutputLayout(out).log(7)
    assert path.endswith("logs/000007.log")
    lines = read_log(path)
    assert [r["msg"] for r in lines] == ["start", "slow page http://a", "progress", "done"]
    for r in lines:
        assert r["shard"] == "CC-MAIN-x-00007.warc.gz"
        assert r["input"] == "/data/CC-MAIN-x-00007.warc.gz"
        assert r["input_index"] == 7 and r["phase"] == "filter" and r["attempt"] == 1
        assert "task_id" in r and r["ts"].endswith("Z")
    assert lines[1]["level"] == "WARNING" and lines[1]["logger"] == "dataproc.stages.extract"
    assert lines[2]["docs"] == 3
    # The handler is removed afterwards: later records do not land in this shard's log.
    logging.getLogger("dataproc").warning("after")
    assert len(read_log(path)) == 4


def test_error_names_input_and_record_offset_and_reraises(tmp_path: Path) -> None:
    out = str(tmp_path)
    with pytest.raises(ZeroDivisionError), shard_log(out, 0, "s3://b/in.warc.gz", "filter") as slog:
        slog.position(98765)
        1 / 0  # noqa: B018 - the failure under test
    err = [r for r in read_log(OutputLayout(out).log(0)) if r["level"] == "ERROR"]
    assert len(err) == 1
    assert err[0]["input"] == "s3://b/in.warc.gz" and err[0]["offset"] == 98765
    assert err[0]["error"].startswith("ZeroDivisionError") and "1 / 0" in err[0]["traceback"]


def test_retries_and_phases_append_to_the_same_file(tmp_path: Path) -> None:
    out = str(tmp_path)
    for _ in range(2):
        with shard_log(out, 3, "in.warc", "filter"):
            pass
    with shard_log(out, 3, "in.warc", "tokenize"):
        pass
    starts = [r for r in read_log(OutputLayout(out).log(3)) if r["msg"] == "start"]
    assert [(r["phase"], r["attempt"]) for r in starts] == [
        ("filter", 1),
        ("filter", 2),
        ("tokenize", 1),
    ]


def test_lines_are_valid_json_even_with_hostile_text(tmp_path: Path) -> None:
    out = str(tmp_path)
    with shard_log(out, 1, "in\n.warc", "filter") as slog:
        slog.warning('bad "quote"\n\u2028 and \x00', url="http://x/\u00e9")
    raw = Path(OutputLayout(out).log(1)).read_text(encoding="utf-8").splitlines()
    assert len(raw) == 3
    assert json.loads(raw[1])["url"] == "http://x/\u00e9"
