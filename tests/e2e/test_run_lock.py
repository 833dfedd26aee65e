"""One run per output folder (issue 13, item 3).

Two real runs are started by the test into the same ``--output``: the first is held mid-file
by a loopback HTTP server (a ``stall`` fault), so it provably runs while the second starts.
The second is refused with one line naming the holder, with or without ``--overwrite``, and
the first then finishes with an output that verifies. Crashed holders are taken over.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _crawl_fixtures import FaultyFileServer, write_shards

from ._cli import RUN, cli_env, one_line_error, run_cli, start_cli


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.ray
def test_a_second_concurrent_run_is_refused_naming_the_holder(tmp_path: Path) -> None:
    paths = write_shards(tmp_path / "in", 2)
    with FaultyFileServer({p.name: p.read_bytes() for p in paths}) as srv:
        urls = [srv.url(p.name) for p in paths]
        inputs = [a for u in urls for a in ("-i", u)]
        srv.fail(paths[0].name, "stall:100")  # the first run's reader hangs mid-file
        first = start_cli("run", *inputs, "-o", "out", *RUN, cwd=tmp_path)
        try:
            _wait_for(srv.stalled.is_set, 180, "the first run to be mid-file")
            for flags in ((), ("--overwrite",)):
                second = run_cli("run", *inputs, "-o", "out", *flags, *RUN, cwd=tmp_path)
                one_line_error(
                    second,
                    "out is in use by another dataproc run",
                    f"host {socket.gethostname()}, pid {first.pid}",
                )
            assert (tmp_path / "out" / "_work" / "run.json").exists()  # nothing was wiped
            srv.release()
            _, err = first.communicate(timeout=300)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
    assert first.returncode == 0, err
    assert not (tmp_path / "out" / "_lock").exists()
    assert run_cli("verify", "out", cwd=tmp_path).returncode == 0


def _lease(lock_dir: Path, run_id: str, host: str, pid: int, heartbeat: float) -> None:
    lock_dir.mkdir(parents=True, exist_ok=True)
    lease = {"run_id": run_id, "host": host, "pid": pid, "started": heartbeat - 5}
    (lock_dir / f"{run_id}.json").write_text(json.dumps({**lease, "heartbeat": heartbeat}))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_lease_on_another_host_blocks_and_names_it(tmp_path: Path) -> None:
    from dataproc.io.lock import RunLock, RunLockedError

    lock_dir = tmp_path / "out" / "_lock"
    _lease(lock_dir, "abc123", "node-7", 4242, time.time())
    with pytest.raises(RunLockedError, match=r"host node-7, pid 4242, run abc123"):
        RunLock(str(lock_dir), "out").acquire()
    assert sorted(p.name for p in lock_dir.iterdir()) == ["abc123.json"]  # ours withdrawn


def test_a_stale_lease_is_taken_over(tmp_path: Path) -> None:
    from dataproc.io.lock import RunLock

    lock_dir = tmp_path / "out" / "_lock"
    _lease(lock_dir, "old", "node-7", 4242, time.time() - 3600)  # heartbeat long stopped
    _lease(lock_dir, "dead", socket.gethostname(), _dead_pid(), time.time())  # crashed here
    lock = RunLock(str(lock_dir), "out").acquire()
    try:
        assert [p.name for p in lock_dir.iterdir()] == [f"{lock.lease.run_id}.json"]
    finally:
        lock.release()
    assert not lock_dir.exists()


def test_the_holder_refreshes_its_heartbeat_and_notices_a_takeover(tmp_path: Path) -> None:
    from dataproc.io.lock import RunLock

    lock_dir = tmp_path / "out" / "_lock"
    lock = RunLock(str(lock_dir), "out", heartbeat=0.2).acquire()
    try:
        path = Path(lock.path)
        first = json.loads(path.read_text())["heartbeat"]
        _wait_for(lambda: json.loads(path.read_text())["heartbeat"] > first, 10, "a heartbeat")
        path.unlink()  # what a contender does to a lease it judged stale
        _wait_for(lambda: lock.lost, 10, "the holder to notice")
        with pytest.raises(Exception, match="lost the lock"):
            lock.ensure_held()
    finally:
        lock.release()


@pytest.mark.ray
def test_a_sigkilled_run_is_taken_over_by_the_next_run_on_the_same_host(
    tmp_path: Path,
) -> None:
    paths = write_shards(tmp_path / "in", 2)
    with FaultyFileServer({p.name: p.read_bytes() for p in paths}) as srv:
        inputs = [a for p in paths for a in ("-i", srv.url(p.name))]
        srv.fail(paths[0].name, "stall:100")
        first = start_cli("run", *inputs, "-o", "out", *RUN, cwd=tmp_path, env=cli_env())
        try:
            _wait_for(srv.stalled.is_set, 180, "the first run to be mid-file")
        finally:
            first.kill()  # SIGKILL: no cleanup code runs, the lease stays behind
            first.wait()
        srv.release()
        leases = list((tmp_path / "out" / "_lock").iterdir())
        assert [json.loads(p.read_text())["pid"] for p in leases] == [first.pid]
        again = run_cli("run", *inputs, "-o", "out", *RUN, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert not (tmp_path / "out" / "_lock").exists()
    assert os.path.exists(tmp_path / "out" / "manifest.json")


@pytest.mark.skipif(os.environ.get("DATAPROC_SKIP_MOTO") == "1", reason="moto disabled")
def test_the_lock_works_on_an_object_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same protocol on S3 (moto in server mode on 127.0.0.1): no conditional writes."""
    pytest.importorskip("boto3")
    pytest.importorskip("moto.server")
    from _crawl_fixtures import moto_s3

    from dataproc.io import fs
    from dataproc.io.lock import RunLock, RunLockedError

    with moto_s3(monkeypatch) as client:
        client.create_bucket(Bucket="runs")
        fs.get_fs("s3://runs")[0].clear_instance_cache()
        lock_dir = "s3://runs/out/_lock"
        holder = RunLock(lock_dir, "s3://runs/out").acquire()
        try:
            with pytest.raises(RunLockedError, match=f"run {holder.lease.run_id}"):
                RunLock(lock_dir, "s3://runs/out").acquire()
            assert len(fs.listdir(lock_dir)) == 1  # the refused contender withdrew its lease
        finally:
            holder.release()
        assert fs.listdir(lock_dir) == []
        stale = {"run_id": "old", "host": "node-7", "pid": 1, "started": 0.0, "heartbeat": 0.0}
        fs.write_json_atomic(f"{lock_dir}/old.json", stale)
        taker = RunLock(lock_dir, "s3://runs/out").acquire()
        assert [p.rsplit("/", 1)[-1] for p in fs.listdir(lock_dir)] == [
            f"{taker.lease.run_id}.json"
        ]
        taker.release()
