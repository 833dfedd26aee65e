"""Disk full and permission denied while writing: the job stops cleanly, leaves no file that
looks finished, and a rerun after freeing space produces output identical to a clean run.

A full disk is a small tmpfs pre-filled with a filler file (freeing space = deleting it);
a read-only output is a read-only tmpfs (as root, where file modes do not stop writes) or a
mode-0555 folder otherwise. Tests that need a mount skip cleanly when mounting is not allowed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dataproc.config import PipelineConfig, build_config
from dataproc.errors import OutputError
from dataproc.io.layout import OutputLayout
from dataproc.runner.phase1 import run_phase1
from dataproc.sample import write_sample_warcs

TMPFS_BYTES = 2 * 1024 * 1024


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """Mount a tmpfs at ``path`` for the block; skip the test if mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(mnt: Path, leave_bytes: int) -> Path:
    """Fill the tmpfs at ``mnt`` until only about ``leave_bytes`` are free."""
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    filler = mnt / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave_bytes))
    return filler


def tree_digest(out: Path) -> dict[str, str]:
    """sha256 of every file that must be deterministic (not timings, logs or work state)."""
    skip = ("_work/", "logs/")
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
        and not p.relative_to(out).as_posix().startswith(skip)
        and p.name not in ("manifest.json", "stats.json", "report.html")
    }


def assert_nothing_looks_finished(out: Path) -> None:
    """No temporary leftovers; every Parquet present is complete; no run claims completion."""
    if not out.exists():
        return
    leftovers = [p for p in out.rglob("*.tmp")]
    assert leftovers == [], leftovers
    for p in out.rglob("*.parquet"):
        pq.read_metadata(p)  # a half-written Parquet has no footer and fails here
    manifest = out / "manifest.json"
    if manifest.exists():
        assert json.loads(manifest.read_text())["complete"] is False


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    paths, _truth = write_sample_warcs(str(tmp_path_factory.mktemp("in")), num_files=2, seed=0)
    return paths


def _config(paths: list[str], out: Path, **execution: object) -> PipelineConfig:
    return build_config(
        {
            "inputs": paths,
            "output": str(out),
            "execution": {"progress": "none", **execution},
        }
    )


# -- one shard, no Ray: phase 1 on a full disk ---------------------------------------------------


def test_phase1_on_a_full_disk_fails_cleanly_and_reruns_identically(
    sample: list[str], tmp_path: Path
) -> None:
    ref = tmp_path / "ref"
    config = _config(sample, ref)
    run_phase1(sample[0], 0, config, str(ref))
    ref_layout = OutputLayout(str(ref))

    with tmpfs(tmp_path / "mnt", f"size={TMPFS_BYTES}") as mnt:
        out = mnt / "out"
        filler = fill(mnt, 16 * 1024)
        with pytest.raises(OSError) as err:
            run_phase1(sample[0], 0, _config(sample, out), str(out))
        assert err.value.errno in (28, 27)  # ENOSPC (or EFBIG)
        assert_nothing_looks_finished(out)
        layout = OutputLayout(str(out))
        assert not Path(layout.phase1_marker(0)).exists()

        filler.unlink()  # free the space, run again
        run_phase1(sample[0], 0, _config(sample, out), str(out))
        for name in (layout.docs(0), layout.rejects(0, "filter")):
            rel = os.path.relpath(name, out)
            assert Path(name).read_bytes() == (ref / rel).read_bytes(), rel
        assert Path(ref_layout.docs(0)).exists()


# -- permission denied ---------------------------------------------------------------------------


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() == 0:
        with tmpfs(tmp_path / "ro", "ro,size=1m") as mnt:
            yield mnt
        return
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        yield d
    finally:
        d.chmod(0o755)


def test_read_only_output_is_one_clear_error_from_the_cli(
    sample: list[str], readonly_dir: Path
) -> None:
    out = readonly_dir / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "dataproc", "run", "-i", sample[0], "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dataproc: error: cannot write to"), proc.stderr
    assert "choose another --output" in lines[0]
    assert list(readonly_dir.iterdir()) == []


def test_read_only_output_from_the_api(sample: list[str], readonly_dir: Path) -> None:
    from dataproc.runner.driver import run_pipeline

    with pytest.raises(OutputError, match="cannot write to"):
        run_pipeline(_config(sample, readonly_dir / "out"))
    assert list(readonly_dir.iterdir()) == []


# -- the whole job on Ray: disk fills mid-run, rerun after freeing space -------------------------


@pytest.mark.ray
def test_disk_full_mid_run_then_rerun_gives_identical_output(
    ray_cluster: object, sample: list[str], tmp_path: Path
) -> None:
    from dataproc.runner.driver import run_pipeline

    ref = tmp_path / "ref"
    ref_result = run_pipeline(_config(sample, ref))
    assert ref_result.ok, ref_result.failures
    expected = tree_digest(ref)
    assert any(k.startswith("tokens/") for k in expected)

    with tmpfs(tmp_path / "mnt", f"size={TMPFS_BYTES}") as mnt:
        out = mnt / "out"
        filler = fill(mnt, 96 * 1024)  # run.json fits; the shards' outputs do not
        config = _config(sample, out, max_retries=0)
        try:
            result = run_pipeline(config)
        except OSError as e:
            print(f"run stopped: {e}")  # the manifest itself could not be written
        else:
            assert not result.ok
            assert result.failures
            print(f"run stopped: {result.failures}")
        assert_nothing_looks_finished(out)

        filler.unlink()
        rerun = run_pipeline(config)
        assert rerun.ok, rerun.failures
        assert json.loads((out / "manifest.json").read_text())["complete"] is True
        assert tree_digest(out) == expected
