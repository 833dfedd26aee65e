"""Config and CLI mistakes: one clear line naming the problem and the fix, a non-zero exit
code, and nothing written. The CLI runs as a real subprocess (``python -m dataproc``), as a
user would run it; every case fails before Ray starts, so these take seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from warc_builder import WarcBuilder

HTML = "<html><body><p>" + "A sentence of ordinary text. " * 10 + "</p></body></html>"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RAY_ADDRESS="", PYTHONWARNINGS="ignore")
    env.pop("RAY_ADDRESS")
    return subprocess.run(
        [sys.executable, "-m", "dataproc", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and mtime (to prove nothing was written)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("dataproc: error: "), line
    for n in needles:
        assert n in line, (n, line)
    assert "Traceback" not in proc.stderr
    return line


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    WarcBuilder().response("http://a.example/", HTML).write(tmp_path / "in" / "a.warc.gz")
    return tmp_path


def test_unknown_key_in_config_file(workdir: Path) -> None:
    cfg = workdir / "bad.yaml"
    cfg.write_text("langid:\n  min_scor: 0.5\n")
    before = snapshot(workdir)
    proc = run_cli("run", "-c", str(cfg), "-i", "in/a.warc.gz", "-o", "out", cwd=workdir)
    line = assert_one_line_error(proc, "unknown key", "langid.min_scor", "min_score")
    assert "docs/configuration.md" in line
    assert snapshot(workdir) == before


def test_unknown_top_level_section(workdir: Path) -> None:
    cfg = workdir / "bad.yaml"
    cfg.write_text("dedupe:\n  enabled: false\n")
    proc = run_cli("run", "-c", str(cfg), "-i", "in/a.warc.gz", "-o", "out", cwd=workdir)
    assert_one_line_error(proc, "unknown key", "'dedupe'", "dedup")
    assert not (workdir / "out").exists()


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("langid.min_score=abc", "langid.min_score"),
        ("reader.max_payload_bytes=-1", "reader.max_payload_bytes"),
        ("extract.timeout_seconds=[1, 2]", "extract.timeout_seconds"),
        ("write.compression=lz5", "write.compression"),
    ],
)
def test_wrong_type_or_value(workdir: Path, override: str, needle: str) -> None:
    proc = run_cli("run", "--set", override, "-i", "in/a.warc.gz", "-o", "out", cwd=workdir)
    assert_one_line_error(proc, needle)
    assert not (workdir / "out").exists()


def test_override_without_equals(workdir: Path) -> None:
    proc = run_cli(
        "run", "--set", "langid.min_score", "-i", "in/a.warc.gz", "-o", "out", cwd=workdir
    )
    assert_one_line_error(proc, "key=value")


def test_missing_config_file(workdir: Path) -> None:
    proc = run_cli("run", "-c", "nope.yaml", "-i", "in/a.warc.gz", "-o", "out", cwd=workdir)
    assert_one_line_error(proc, "nope.yaml", "no such config file")
    assert not (workdir / "out").exists()


def test_missing_input_file(workdir: Path) -> None:
    proc = run_cli("run", "-i", "in/missing.warc.gz", "-o", "out", cwd=workdir)
    assert_one_line_error(proc, "missing.warc.gz", "no such file")
    assert not (workdir / "out").exists()


def test_glob_matching_nothing(workdir: Path) -> None:
    proc = run_cli("run", "-i", "in/*.arc.gz", "-o", "out", cwd=workdir)
    assert_one_line_error(proc, "matches no file", "quote the pattern")
    assert not (workdir / "out").exists()


def test_empty_input_directory(workdir: Path) -> None:
    (workdir / "empty").mkdir()
    proc = run_cli("run", "-i", "empty", "-o", "out", cwd=workdir)
    assert_one_line_error(proc, "no .warc")
    assert not (workdir / "out").exists()


def test_no_input_and_no_output(workdir: Path) -> None:
    assert_one_line_error(run_cli("run", "-o", "out", cwd=workdir), "--input")
    assert_one_line_error(run_cli("run", "-i", "in/a.warc.gz", cwd=workdir), "--output")
    assert not (workdir / "out").exists()


def test_output_holding_another_runs_data(workdir: Path) -> None:
    out = workdir / "out"
    (out / "_work").mkdir(parents=True)
    (out / "tokens").mkdir()
    (out / "tokens" / "part-000000-0000.parquet").write_bytes(b"PAR1 someone else's tokens")
    state = {"state_version": 1, "fingerprint": "0" * 16, "inputs_digest": "x", "num_inputs": 9}
    (out / "_work" / "run.json").write_text(json.dumps(state))
    before = snapshot(workdir)
    proc = run_cli("run", "-i", "in/a.warc.gz", "-o", "out", cwd=workdir)
    assert_one_line_error(proc, "holds a run with a different", "--overwrite", "--output")
    assert snapshot(workdir) == before


def test_output_folder_with_unrelated_files(workdir: Path) -> None:
    out = workdir / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    before = snapshot(workdir)
    proc = run_cli("run", "-i", "in/a.warc.gz", "-o", "out", cwd=workdir)
    line = assert_one_line_error(proc, "not empty", "holds no dataproc run")
    assert "--overwrite" not in line  # it would never delete a folder that holds no run
    assert snapshot(workdir) == before


def test_output_is_a_file(workdir: Path) -> None:
    (workdir / "out").write_text("a file, not a folder")
    before = snapshot(workdir)
    proc = run_cli("run", "-i", "in/a.warc.gz", "-o", "out", cwd=workdir)
    assert_one_line_error(proc, "is a file, not a folder")
    assert snapshot(workdir) == before
    # --overwrite deletes a previous run, never a file the user named by mistake.
    proc = run_cli("run", "-i", "in/a.warc.gz", "-o", "out", "--overwrite", cwd=workdir)
    assert_one_line_error(proc, "is a file, not a folder")
    assert snapshot(workdir) == before
