"""Our local Ray cluster ends with the driver, even a SIGKILLed one (issue 13, item 11).

Every process of the run inherits an ``E2E_TAG`` variable the test sets; after the driver is
killed mid-file no tagged process may remain (Ray's DashboardAgent and RuntimeEnvAgent used
to outlive it for about two minutes).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

import psutil
import pytest
from _crawl_fixtures import FaultyFileServer, write_shards

from ._cli import RUN, cli_env, one_line_error, run_cli, start_cli


def _tagged(tag: str) -> dict[int, str]:
    """pid -> command line of every process whose environment holds ``E2E_TAG=tag``."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if f"E2E_TAG={tag}".encode() not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                found[int(name)] = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
    return found


def _dashboard_missing() -> bool:
    try:
        from ray._private.utils import get_dashboard_dependency_error
    except ImportError:
        return False
    return get_dashboard_dependency_error() is not None


@pytest.mark.skipif(not _dashboard_missing(), reason="ray[default] is installed here")
def test_dashboard_without_ray_default_is_one_line(tmp_path: Path, warcs: list[Path]) -> None:
    proc = run_cli(
        "run",
        "-i",
        "in",
        "-o",
        "out",
        "--set",
        "execution.include_dashboard=true",
        *RUN,
        cwd=tmp_path,
    )
    one_line_error(proc, "execution.include_dashboard=true", "pip install 'ray[default]'")


@pytest.mark.ray
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to find processes")
def test_a_sigkilled_driver_leaves_no_ray_process(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    paths = write_shards(tmp_path / "in", 2)
    with FaultyFileServer({p.name: p.read_bytes() for p in paths}) as srv:
        inputs = [a for p in paths for a in ("-i", srv.url(p.name))]
        srv.fail(paths[0].name, "stall:100")
        driver = start_cli(
            "run", *inputs, "-o", "out", *RUN, cwd=tmp_path, env=cli_env(E2E_TAG=tag)
        )
        try:
            deadline = time.monotonic() + 180
            while not any(
                "RuntimeEnvAgent" in c or "runtime_env/agent" in c for c in _tagged(tag).values()
            ):
                assert time.monotonic() < deadline, "Ray's agents never started"
                time.sleep(0.2)
            while not srv.stalled.is_set():  # the run is mid-file
                assert time.monotonic() < deadline, "the run never read its input"
                time.sleep(0.2)
            # Its process tree too: a process that renames itself (ray::...) may overwrite the
            # environment block where the tag was.
            tree = {(p.pid, p.create_time()) for p in psutil.Process(driver.pid).children(True)}
        finally:
            driver.kill()
            driver.wait()
        srv.release()

        def left() -> list[str]:
            alive = [f"{pid}: {cmd}" for pid, cmd in _tagged(tag).items()]
            for pid, created in tree:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p = psutil.Process(pid)
                    if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                        alive.append(f"{pid}: {' '.join(p.cmdline())[:80]}")
            return alive

        deadline = time.monotonic() + 20
        while left() and time.monotonic() < deadline:
            time.sleep(0.5)
    assert not left()
