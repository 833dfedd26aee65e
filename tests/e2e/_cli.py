"""Helpers of the end-to-end suite: run the CLI as a subprocess as a user would."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: this checkout first, no cluster to join."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["PYTHONWARNINGS"] = "ignore"
    env.update(extra)
    return env


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m dataproc ARGS`` to completion (a run adds ``--quiet --workers 1``)."""
    return subprocess.run(
        [sys.executable, "-m", "dataproc", *args],
        cwd=cwd,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_ok(*args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    """``python -m dataproc ARGS``, which must succeed (its stderr shows if not)."""
    proc = run_cli(*args, cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr


def start_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m dataproc ARGS`` in the background (the caller waits for or kills it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "dataproc", *args],
        cwd=cwd,
        env=env or cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The single ``dataproc: error:`` line of a refused command (checked to contain needles)."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dataproc: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every entry under ``root`` (files with size and sha256), to prove nothing changed."""
    snap: dict[str, tuple[int, str]] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_file() and not p.is_symlink():
            snap[rel] = (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        else:
            snap[rel] = (-1, "")
    return snap


# Flags of every real run here: no progress display, one worker (the machine is shared).
RUN = ("--quiet", "--workers", "1")
