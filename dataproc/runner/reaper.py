"""Stop every process of our local Ray cluster when the driver ends, even by SIGKILL.

``ray.shutdown()`` stops a local cluster when the driver exits normally. A driver killed with
SIGKILL (or by the OOM killer) runs no code, and Ray's agents (``ray::DashboardAgent``,
``ray::RuntimeEnvAgent``) then outlive it for minutes, trying to report the raylet's death to a
GCS that is gone. So the driver starts this small watcher in its own session, holding the write
end of a pipe. While the driver lives, the watcher notes every descendant of the driver (pid and
start time, from ``/proc``) twice a second; it also tags the driver's environment with a cluster
id before ``ray.init``, which the Ray processes inherit (a second way to find one born between
two looks; not the only one, because a process that renames itself, as Ray's agents and workers
do, may overwrite its environment block). When the pipe closes (the kernel closes it when the
driver dies, whatever the signal; ``stop()`` closes it after a clean shutdown), the watcher
stops every process it noted that still runs with the same start time, and every tagged one:
SIGTERM, then SIGKILL after a grace period. Nothing else is ever signalled, so other users' and
other runs' Ray clusters are safe. Linux only (``/proc``); elsewhere the watcher finds nothing.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
import uuid

CLUSTER_ID_ENV = "DATAPROC_LOCAL_CLUSTER_ID"
GRACE_SECONDS = 3.0
NOTE_SECONDS = 0.5


def _stat(pid: str) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a process, from ``/proc/<pid>/stat``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()  # the name in parentheses may hold spaces
    try:
        return int(fields[1]), int(fields[19])
    except (IndexError, ValueError):
        return None


def _is_ray(pid: int) -> bool:
    """A Ray process: its command line names Ray (``.../ray/...``, ``ray::Name``)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"ray" in f.read()
    except OSError:
        return False


def descendants(root: int, spare: set[int], since: int = 0) -> dict[int, int]:
    """pid -> start time of the Ray processes below ``root`` started at or after ``since``.

    ``spare`` and their subtrees are left out; so is anything that is not a Ray process or is
    older than the watcher (what the driver's caller started itself, e.g. in a notebook).
    """
    try:
        names = [n for n in os.listdir("/proc") if n.isdigit()]
    except OSError:
        return {}
    children: dict[int, list[tuple[int, int]]] = {}
    for name in names:
        st = _stat(name)
        if st is not None:
            children.setdefault(st[0], []).append((int(name), st[1]))
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for pid, start in children.get(todo.pop(), []):
            if pid not in spare and pid not in found and start >= since:
                found[pid] = start
                todo.append(pid)
    return {pid: start for pid, start in found.items() if _is_ray(pid)}


def tagged_pids(tag: bytes, spare: set[int]) -> dict[int, int]:
    """pid -> start time of processes whose environment still holds ``tag`` (``NAME=value``)."""
    found = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return {}
    for name in names:
        if not name.isdigit() or int(name) in spare:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if tag not in f.read().split(b"\0"):
                    continue
        except OSError:
            continue  # gone, or another user's process (never ours to stop)
        st = _stat(name)
        if st is not None:
            found[int(name)] = st[1]
    return found


def _alive(noted: dict[int, int]) -> list[int]:
    """The noted processes still running as the same process (pid reuse is checked)."""
    alive = []
    for pid, start in noted.items():
        st = _stat(str(pid))
        if st is not None and st[1] == start:
            alive.append(pid)
    return alive


def stop_noted(noted: dict[int, int], grace: float = GRACE_SECONDS) -> list[int]:
    """SIGTERM every noted process, SIGKILL those still there after ``grace`` seconds."""
    pids = _alive(noted)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(noted):
        time.sleep(0.1)
    for pid in _alive(noted):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
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
    spare = {os.getpid()}
    me = _stat(str(os.getpid()))
    since = me[1] if me is not None else 0  # Ray's processes start after the watcher
    noted: dict[int, int] = {}
    stdin = sys.stdin.buffer
    while True:
        # Readable means EOF (the driver closed the pipe or died): it never writes.
        ready, _, _ = select.select([stdin], [], [], NOTE_SECONDS)
        if ready and not stdin.read(1):
            break
        noted.update(descendants(driver_pid, spare, since))
    noted.update(tagged_pids(f"{CLUSTER_ID_ENV}={cluster_id}".encode(), spare | {driver_pid}))
    stop_noted(noted)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
