"""Stop every process of our local Ray cluster when the driver ends, even by SIGKILL.

``ray.shutdown()`` stops a local cluster when the driver exits normally. A driver killed with
SIGKILL (or by the OOM killer) runs no code, and Ray's agents (``ray::DashboardAgent``,
``ray::RuntimeEnvAgent``) then outlive it for minutes, trying to report the raylet's death to a
GCS that is gone. So before ``ray.init`` the driver tags its environment with a cluster id
(every Ray process it starts inherits the environment) and starts this small watcher in its
own session, holding the write end of a pipe. When the pipe closes (the kernel closes it when
the driver dies, whatever the signal; ``stop()`` closes it after a clean shutdown), the watcher
stops every process that carries the tag: SIGTERM, then SIGKILL after a grace period. Nothing
without the tag is ever signalled, so other users' and other runs' Ray clusters are safe.
Linux only (``/proc``); elsewhere the watcher finds nothing and exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

CLUSTER_ID_ENV = "DATAPROC_LOCAL_CLUSTER_ID"
GRACE_SECONDS = 3.0


def tagged_pids(tag: bytes, spare: set[int]) -> list[int]:
    """Pids whose initial environment holds ``tag`` (``NAME=value``), except ``spare``."""
    found = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit() or int(name) in spare:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if tag in f.read().split(b"\0"):
                    found.append(int(name))
        except OSError:
            continue  # gone, or another user's process (never ours to stop)
    return found


def stop_tagged(tag: bytes, spare: set[int], grace: float = GRACE_SECONDS) -> list[int]:
    """SIGTERM every tagged process, SIGKILL those still there after ``grace`` seconds."""
    pids = tagged_pids(tag, spare)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            continue
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and tagged_pids(tag, spare):
        time.sleep(0.1)
    for pid in tagged_pids(tag, spare):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue
    return pids


class ClusterReaper:
    """The driver's side: tag the environment, start the watcher, stop it when done."""

    def __init__(self) -> None:
        self.cluster_id = uuid.uuid4().hex
        self._previous = os.environ.get(CLUSTER_ID_ENV)
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Tag this process's environment (for the Ray processes it starts) and start watching."""
        os.environ[CLUSTER_ID_ENV] = self.cluster_id
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "dataproc.runner.reaper", self.cluster_id, str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a Ctrl-C to the driver's group must not stop it first
            )
        except OSError:
            self._proc = None  # no watcher: a clean exit still shuts Ray down

    def stop(self) -> None:
        """After ``ray.shutdown()``: let the watcher sweep stragglers, restore the environment."""
        if self._previous is None:
            os.environ.pop(CLUSTER_ID_ENV, None)
        else:
            os.environ[CLUSTER_ID_ENV] = self._previous
        if self._proc is not None and self._proc.stdin is not None:
            self._proc.stdin.close()
            # It finishes on its own; never block the driver's exit on it for long.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=GRACE_SECONDS + 2)


def _main(argv: list[str]) -> int:
    cluster_id, driver_pid = argv[0], int(argv[1])
    sys.stdin.buffer.read()  # returns at EOF: the driver closed the pipe or died
    tag = f"{CLUSTER_ID_ENV}={cluster_id}".encode()
    stop_tagged(tag, spare={os.getpid(), driver_pid})
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
