"""``--output`` and ``--overwrite`` never destroy what a run did not create (issue 13, items 1-2).

Each refusal is one line, exit code 1, and nothing under the test's folder changes (files are
compared by size and sha256). Refusals happen before Ray starts, so they take seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from ._cli import RUN, one_line_error, run_cli, run_ok, snapshot


def _fake_run_state(out: Path) -> None:
    """A dataproc run's state with another config (so a rerun is refused or wiped)."""
    (out / "_work").mkdir(parents=True)
    state = {"state_version": 1, "fingerprint": "0" * 16, "inputs_digest": "x", "num_inputs": 1}
    (out / "_work" / "run.json").write_text(json.dumps(state))


def _refused_whatever_the_flags(tmp_path: Path, args: tuple[str, ...], *needles: str) -> str:
    """Run with and without --overwrite: one-line refusal each time, nothing changed."""
    before = snapshot(tmp_path)
    lines = []
    for flags in ((), ("--overwrite",)):
        proc = run_cli("run", *args, *flags, *RUN, cwd=tmp_path, timeout=120)
        lines.append(one_line_error(proc, *needles))
        assert snapshot(tmp_path) == before, flags
    return "\n".join(lines)


@pytest.mark.parametrize("holds_run", [False, True], ids=["plain-folder", "dataproc-run"])
def test_input_inside_output_is_refused_whatever_the_flags(
    tmp_path: Path, warcs: list[Path], holds_run: bool
) -> None:
    ovr = tmp_path / "ovr"
    ovr.mkdir()
    shutil.copy(warcs[0], ovr / "x.warc.gz")
    if holds_run:
        _fake_run_state(ovr)
    args = ("-i", "ovr/x.warc.gz", "-o", "ovr")
    _refused_whatever_the_flags(tmp_path, args, "x.warc.gz is inside --output ovr")


def test_output_inside_an_input_folder_is_refused(tmp_path: Path, warcs: list[Path]) -> None:
    args = ("-i", "in", "-o", "in/out")
    _refused_whatever_the_flags(tmp_path, args, "--output in/out is inside the input folder in")


def test_a_fifo_output_is_refused_and_kept(tmp_path: Path, warcs: list[Path]) -> None:
    os.mkfifo(tmp_path / "out")
    needle = "--output out is a FIFO (named pipe), not a folder"
    _refused_whatever_the_flags(tmp_path, ("-i", "in", "-o", "out"), needle)
    assert stat.S_ISFIFO(os.lstat(tmp_path / "out").st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_a_character_device_output_is_refused_and_kept(tmp_path: Path, warcs: list[Path]) -> None:
    dev = tmp_path / "null"
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a twin of /dev/null
    except PermissionError:
        pytest.skip("this container may not create device nodes")
    needle = "is a character device, not a folder"
    _refused_whatever_the_flags(tmp_path, ("-i", "in", "-o", str(dev)), needle)
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


def test_overwrite_never_empties_a_folder_without_a_run(tmp_path: Path, warcs: list[Path]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    args = ("-i", "in", "-o", "out")
    lines = _refused_whatever_the_flags(tmp_path, args, "holds no dataproc run", "'thesis.tex'")
    assert "--overwrite" not in lines  # never recommend a flag that would delete it


@pytest.mark.ray
def test_overwrite_names_and_deletes_only_what_a_run_created(
    tmp_path: Path, warcs: list[Path]
) -> None:
    out = tmp_path / "out"
    run_ok("run", "-i", "in", "-o", "out", *RUN, cwd=tmp_path)
    (out / "notes.txt").write_text("the user's own file next to the run")
    changed = ("--set", "langid.min_score=0.3")
    proc = run_cli("run", "-i", "in", "-o", "out", *changed, *RUN, cwd=tmp_path)
    # The refusal recommends --overwrite only together with what it would delete.
    one_line_error(proc, "different config", "--overwrite", "tokens/", "_work/", "manifest.json")
    proc = run_cli("run", "-i", "in", "-o", "out", "--overwrite", *changed, *RUN, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (out / "notes.txt").read_text() == "the user's own file next to the run"
    assert not (out / "_lock").exists()  # the run lock is gone once the run ended
    assert run_cli("verify", "out", cwd=tmp_path).returncode == 0
