"""Faults survived: a worker SIGKILLed mid-shard, a task that raises once, a shard that keeps
failing, the driver killed mid-run and rerun. Each run must end byte-identical to a clean run,
and no shard that finished may be processed again.

Inputs are served by a loopback HTTP server the test starts (127.0.0.1), so a fault can be
placed exactly: ``stall`` holds a shard's connection open mid-file (the task is provably
mid-shard; the server also knows which process is reading), ``404`` makes the task raise.
Executions are counted from the shard logs: every task attempt writes a ``start`` line to
``OUT/logs/{index:06d}.log`` before it reads anything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _crawl_fixtures import FaultyFileServer, executions, manifest_core, output_digest, write_shards

from dataproc.config import build_config
from dataproc.runner.driver import run_pipeline
from dataproc.runner.phases import Phase

pytestmark = pytest.mark.ray

NUM_SHARDS = 3
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    paths = write_shards(tmp_path_factory.mktemp("fault-in"), NUM_SHARDS)
    with FaultyFileServer({p.name: p.read_bytes() for p in paths}) as srv:
        yield srv, [srv.url(p.name) for p in paths], [p.name for p in paths]


@pytest.fixture(scope="module")
def reference(ray_cluster, server, tmp_path_factory):
    """An uninterrupted run: what every faulty run must reproduce byte for byte."""
    _, urls, _ = server
    out = tmp_path_factory.mktemp("reference") / "out"
    result = _run(urls, out)
    assert result.ok, result.failures
    digest = output_digest(out)
    assert any(k.startswith("tokens/") for k in digest) and any(
        k.startswith("rejects/") for k in digest
    )
    return out, digest


def _config(urls: list[str], out: Path):
    return build_config({"inputs": urls, "output": str(out), "execution": {"progress": "none"}})


def _run(urls: list[str], out: Path):
    return run_pipeline(_config(urls, out))


def _kill_reader_when_stalled(srv: FaultyFileServer, name: str) -> threading.Thread:
    """In the background: wait until ``name`` is stalled mid-file, SIGKILL the reading process."""

    def killer() -> None:
        assert srv.stalled.wait(timeout=120), "the shard never started"
        pid = srv.client_pids[name][-1]
        assert pid != os.getpid(), "the driver, not a Ray worker, was reading the shard"
        os.kill(pid, signal.SIGKILL)
        srv.release()

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    return t


def _reset(srv: FaultyFileServer) -> None:
    srv.faults.clear()
    srv.stalled.clear()
    srv._release.clear()


def _assert_same_as_reference(out: Path, reference: tuple[Path, dict]) -> None:
    ref_out, ref_digest = reference
    assert output_digest(out) == ref_digest
    assert manifest_core(out) == manifest_core(ref_out)


def test_worker_killed_mid_shard_is_retried_and_output_is_identical(server, reference, tmp_path):
    srv, urls, names = server
    _reset(srv)
    size = len(srv.files[names[1]])
    srv.fail(names[1], f"stall:{size // 2}")
    killer = _kill_reader_when_stalled(srv, names[1])
    result = _run(urls, tmp_path / "out")
    killer.join(timeout=5)
    assert result.ok, result.failures
    _assert_same_as_reference(tmp_path / "out", reference)
    # The killed shard ran twice (killed attempt + retry); every other shard exactly once.
    assert executions(tmp_path / "out") == {0: 1, 1: 2, 2: 1}
    assert executions(tmp_path / "out", "tokenize") == {0: 1, 1: 1, 2: 1}


def test_task_that_raises_once_is_retried(server, reference, tmp_path):
    srv, urls, names = server
    _reset(srv)
    srv.fail(names[0], "404")  # a permanent-looking error, once: the task raises, Ray retries
    result = _run(urls, tmp_path / "out")
    assert result.ok, result.failures
    _assert_same_as_reference(tmp_path / "out", reference)
    assert executions(tmp_path / "out") == {0: 2, 1: 1, 2: 1}


def test_shard_that_keeps_failing_is_reported_and_the_rest_finishes(server, reference, tmp_path):
    srv, urls, names = server
    _reset(srv)
    srv.fail(names[2], *["404"] * 20)  # more than 1 + max_retries attempts
    out = tmp_path / "out"
    result = _run(urls, out)
    assert not result.ok and result.exit_code != 0
    assert [(f["phase"], f["input"]) for f in result.failures] == [("filter", urls[2])]
    assert "HTTP 404" in result.failures[0]["error"]
    assert result.manifest is not None and result.manifest["complete"] is False
    counts = executions(out)
    assert counts[0] == counts[1] == 1 and counts[2] == 1 + _config(urls, out).execution.max_retries
    tokens = [k for k in output_digest(out) if k.startswith("tokens/")]
    assert tokens and all("000002" not in k for k in tokens)

    # The file is fixed: the same command resumes, runs only the failed shard's filter phase,
    # and ends exactly where an uninterrupted run ends.
    _reset(srv)
    again = _run(urls, out)
    assert again.ok, again.failures
    assert again.executed[Phase.FILTER] == 1 and again.reused[Phase.FILTER] == 2
    _assert_same_as_reference(out, reference)
    after = executions(out)
    assert after[0] == 1 and after[1] == 1 and after[2] == counts[2] + 1


def test_driver_killed_mid_run_then_rerun_resumes(server, reference, tmp_path, ray_cluster):
    srv, urls, names = server
    _reset(srv)
    out = tmp_path / "out"
    size = len(srv.files[names[1]])
    srv.fail(names[1], f"stall:{size // 2}")
    address = ray_cluster.get_runtime_context().gcs_address
    cmd = [
        sys.executable,
        "-m",
        "dataproc",
        "run",
        "--address",
        address,
        "--output",
        str(out),
        "--quiet",
    ]
    for u in urls:
        cmd += ["--input", u]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    marker_dir = out / "_work" / "done"
    driver = subprocess.Popen(
        cmd, cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        # Kill the driver while shard 1 is stalled mid-file and the other shards are done.
        deadline = time.time() + 120
        while time.time() < deadline:
            done = (
                sorted(p.name for p in marker_dir.glob("*-phase1.json"))
                if marker_dir.exists()
                else []
            )
            if srv.stalled.is_set() and len(done) == 2:
                break
            assert driver.poll() is None, driver.stdout.read().decode() if driver.stdout else ""
            time.sleep(0.2)
        else:
            pytest.fail("the run never reached the point to kill it")
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
        srv.release()
    assert done == ["000000-phase1.json", "000002-phase1.json"]
    assert not (out / "manifest.json").exists()
    before = executions(out)
    assert before == {0: 1, 1: 1, 2: 1}

    # Rerun the same command to the end.
    rerun = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    _assert_same_as_reference(out, reference)
    # Finished shards were not processed again; only the one in flight was.
    assert executions(out) == {0: 1, 1: 2, 2: 1}
