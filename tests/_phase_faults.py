"""Faults placed exactly in a run's phase 2 (dedup), through the files it reads.

``PhaseHooks`` is a real ``Progress`` whose ``end_phase`` calls back: the driver ends a phase
only after every one of its tasks finished, and before it submits the next phase's tasks, so
a file written by one phase can be damaged before the next phase reads it. It also records
which phase wrote which work file (a snapshot of ``_work/`` at the start and end of each
phase), so tests find the objects by what the run did, not by a hard-coded layout.

``FifoTrap`` swaps a work file for a named pipe: the task that opens it blocks in ``open()``
until the test decides what happens to it (its process is killed, or its node
removed); the real file is put back first, so Ray's retry reads it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dataproc.runner.progress import Progress

IGNORED = ("done/", "live/", "run.json")


def work_files(out: Path) -> dict[str, tuple[int, int]]:
    """``{path relative to _work: (mtime_ns, size)}`` of the regular files under ``_work/``."""
    work = out / "_work"
    found = {}
    if not work.exists():
        return found
    for p in work.rglob("*"):
        rel = p.relative_to(work).as_posix()
        if rel.startswith(IGNORED) or p.name.startswith("."):
            continue
        with contextlib.suppress(FileNotFoundError):
            st = p.stat()
            if p.is_file():
                found[rel] = (st.st_mtime_ns, st.st_size)
    return found


class PhaseHooks(Progress):
    """A silent Progress that records each phase's work files and calls ``on_end(phase)``."""

    def __init__(self, out: Path, on_end: Callable[[str], None] | None = None) -> None:
        super().__init__(mode="none", live=False)
        self.out = out
        self.on_end = on_end
        self.order: list[str] = []
        self.written: dict[str, list[str]] = {}
        self._before: dict[str, tuple[int, int]] = {}

    def start_phase(self, phase: str, total: int) -> None:
        self._before = work_files(self.out)
        self.order.append(str(phase))
        super().start_phase(phase, total)

    def end_phase(self, phase: str) -> None:
        super().end_phase(phase)
        after = work_files(self.out)
        self.written[str(phase)] = sorted(k for k, v in after.items() if self._before.get(k) != v)
        if self.on_end is not None:
            self.on_end(str(phase))


def pick(files: list[str], prefix: str) -> str | None:
    """The file of input 1 under ``prefix`` if there is one, else the first (sorted)."""
    under = sorted(f for f in files if f.startswith(prefix + "/"))
    mine = [f for f in under if "000001" in f.rsplit("/", 1)[-1]]
    return (mine or under or [None])[0]


_NOT_TASKS = ("ray::IDLE", "ray::DashboardAgent", "ray::RuntimeEnvAgent")


def busy_workers() -> dict[int, str]:
    """``{pid: title}`` of this Ray session's worker processes that are running a task.

    Workers are children of a raylet whose command line names this session's directory
    (other Ray clusters may run on the machine); a busy worker's title is ``ray::<task>``.
    """
    import psutil
    import ray

    session = ray._private.worker._global_node.get_session_dir_path()
    found: dict[int, str] = {}
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if proc.info["name"] != "raylet" or session not in " ".join(proc.info["cmdline"]):
                continue
            for child in proc.children():
                title = " ".join(child.cmdline()).strip()
                if title.startswith("ray::") and not title.startswith(_NOT_TASKS):
                    found[child.pid] = title
        except (psutil.Error, TypeError):
            continue
    return found


class FifoTrap:
    """Replace ``path`` by a FIFO: a task that opens it blocks in ``open()`` (no writer ever
    comes). Such a task is a worker that stays on one task for STALL_SECONDS (every other task
    of these small runs takes milliseconds; CPU time tells nothing, Ray's own threads use it
    while the task blocks). Once one is seen, the real file is put back (so Ray's retries read
    it) and ``act(pid)`` runs for every worker busy at that moment (several tasks may read the
    same file: every bucket task reads every band file). ``phases`` records ``phase_of()`` then.
    A reader still blocked on the FIFO afterwards (``act`` spared it) is released with an
    empty read, which fails its task (Ray retries it); ``released`` says whether that happened.
    """

    STALL_SECONDS = 2.0

    def __init__(
        self,
        path: Path,
        scratch: Path,
        act: Callable[[int], None],
        phase_of: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.path = path
        self.data = path.read_bytes()
        self.scratch = scratch
        self.act = act
        self.phase_of = phase_of
        self.pids: list[int] = []
        self.phases: list[str | None] = []
        self.released = False
        self._stop = threading.Event()
        self._link = scratch / f"trap-{path.name}"
        path.unlink()
        os.mkfifo(path)
        os.link(path, self._link)  # reaches the FIFO after the path holds the real file again
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _restore(self) -> None:
        tmp = self.scratch / f"restore-{self.path.name}"
        tmp.write_bytes(self.data)
        os.replace(tmp, self.path)  # same file system: atomic

    def _blocked_workers(self) -> list[int]:
        """Poll until a busy worker has kept the same task for STALL_SECONDS; then every
        worker busy at that moment (all of them run phase-2 tasks)."""
        seen: dict[tuple[int, str], float] = {}  # -> busy since
        while not self._stop.is_set():
            now = time.time()
            busy = busy_workers()
            seen = {k: v for k, v in seen.items() if busy.get(k[0]) == k[1]}
            for pid, title in busy.items():
                if now - seen.setdefault((pid, title), now) >= self.STALL_SECONDS:
                    return sorted(busy)
            time.sleep(0.2)
        return []

    def _release_readers(self) -> None:
        """Open the FIFO's write end, if any reader is still blocked, and close it: EOF."""
        try:
            fd = os.open(self._link, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO:  # ENXIO: no reader left
                raise
        else:
            self.released = True
            os.close(fd)

    def _run(self) -> None:
        import psutil

        pids = self._blocked_workers()
        if not pids:
            return
        self.phases.append(self.phase_of())
        self._restore()  # before act: the retries must find the real file
        for pid in pids:
            self.pids.append(pid)
            self.act(pid)
        procs = []
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                procs.append(psutil.Process(pid))
        psutil.wait_procs(procs, timeout=5)  # those killed are gone before we look again
        self._release_readers()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        if self.path.is_fifo():
            self._restore()
        self._release_readers()
        self._link.unlink(missing_ok=True)
