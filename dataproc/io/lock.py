"""One run per output folder: a lease under ``OUT/_lock/`` with an owner and a heartbeat.

The same code works on local disks, NFS and object stores, because it needs only what every
store we write to offers: writing an object under a *new, unique* name never replaces anyone
else's, and a listing made after a write has completed shows it (local and NFS directories;
S3 and GCS have been strongly consistent since 2020). No conditional put is needed.

A contender C takes the lock in three steps:

1. write its own lease ``_lock/<run_id>.json`` (host, pid, run id, start, heartbeat);
2. list ``_lock/`` and delete the leases that are stale (below);
3. if any other live lease is listed, delete its own lease and refuse, naming the holder.

If two contenders race, either both see each other in step 3 and both back off (nobody runs:
safe, and a rerun settles it), or one listed before the other's write was visible, and then
that other one sees the first lease and backs off. So at most one run passes step 3.

A lease is **stale** when its heartbeat is older than ``STALE_AFTER_SECONDS`` on the reader's
clock (keep hosts' clocks in sync, e.g. NTP), or at once when it was written on this host by a
process that no longer exists (a crashed or killed driver on the same machine). The holder
rewrites its heartbeat every ``HEARTBEAT_SECONDS`` from a daemon thread; if it finds its lease
gone (taken over after a stall longer than the timeout), it marks the lock lost, and the
driver stops with an error at its next check instead of writing next to the new holder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from types import TracebackType

from dataproc.errors import OutputError
from dataproc.io import fs

log = logging.getLogger("dataproc")

HEARTBEAT_SECONDS = 10.0
STALE_AFTER_SECONDS = 120.0


class RunLockedError(OutputError):
    """Another live run holds the output folder's lock."""


@dataclass(frozen=True)
class Lease:
    """Who holds (or held) the lock, as written in ``_lock/<run_id>.json``."""

    run_id: str
    host: str
    pid: int
    started: float
    heartbeat: float

    def describe(self, now: float) -> str:
        age = max(0, round(now - self.heartbeat))
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started))
        return (
            f"host {self.host}, pid {self.pid}, run {self.run_id}, started {start}, "
            f"last heartbeat {age} s ago"
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    except OSError:
        return True  # cannot tell: treat as alive, the heartbeat timeout still applies
    return True


def is_stale(lease: Lease, now: float, host: str, stale_after: float) -> bool:
    """True when ``lease``'s holder is certainly gone (see the module docstring)."""
    if now - lease.heartbeat > stale_after:
        return True
    return lease.host == host and lease.pid != os.getpid() and not _pid_alive(lease.pid)


class RunLock:
    """The lock on one output folder, held from ``acquire()`` until ``release()``.

    ``stale_after`` and ``heartbeat`` are in seconds; tests shorten them.
    """

    def __init__(
        self,
        lock_dir: str,
        out_dir: str,
        *,
        stale_after: float = STALE_AFTER_SECONDS,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.lock_dir = lock_dir
        self.out_dir = out_dir
        self.stale_after = stale_after
        self.heartbeat_seconds = heartbeat
        now = time.time()
        self.lease = Lease(
            run_id=uuid.uuid4().hex[:12],
            host=socket.gethostname(),
            pid=os.getpid(),
            started=now,
            heartbeat=now,
        )
        self.path = fs.join(lock_dir, f"{self.lease.run_id}.json")
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- taking and giving back -------------------------------------------------------------

    def acquire(self) -> RunLock:
        """Take the lock or raise ``RunLockedError`` naming the holder."""
        self._write(time.time())
        now = time.time()
        holders = []
        for other in self._leases():
            if other.run_id == self.lease.run_id:
                continue
            if is_stale(other, now, self.lease.host, self.stale_after):
                log.warning("taking over the lock of a run that is gone (%s)", other.describe(now))
                fs.remove(fs.join(self.lock_dir, f"{other.run_id}.json"))
                continue
            holders.append(other)
        if holders:
            self._delete_own()
            holder = min(holders, key=lambda lease: (lease.started, lease.run_id))
            raise RunLockedError(
                f"{self.out_dir} is in use by another dataproc run ({holder.describe(now)}); "
                "wait for it to finish. A crashed run's lock is taken over automatically: at "
                f"once on the same host, elsewhere once its heartbeat is {self.stale_after:.0f} s "
                "old (docs/operations.md#one-run-per-output)"
            )
        self._thread = threading.Thread(target=self._beat, name="dataproc-run-lock", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        """Stop the heartbeat and delete our lease (and the empty ``_lock/`` folder)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.heartbeat_seconds + 5)
        if not self.lost:
            self._delete_own()
        if not fs.is_remote(self.lock_dir):
            # Fails when another contender's lease is there, or the folder is already gone.
            with contextlib.suppress(OSError):
                os.rmdir(self.lock_dir)

    def ensure_held(self) -> None:
        """Raise if the heartbeat found our lease taken over (call between phases)."""
        if self.lost:
            raise OutputError(
                f"lost the lock on {self.out_dir}: this run stalled for more than "
                f"{self.stale_after:.0f} s and another run took the folder over; this run "
                "stops without writing more (the other run's output is the one to use)"
            )

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    # -- internals -----------------------------------------------------------------------------

    def _write(self, heartbeat: float) -> None:
        data = asdict(Lease(**{**asdict(self.lease), "heartbeat": heartbeat}))
        try:
            fs.makedirs(self.lock_dir)
            fs.write_json_atomic(self.path, data)
        except OSError as e:
            raise OutputError(
                f"cannot write to {self.out_dir}: {e.strerror or e} (taking the run lock "
                f"{self.path}); make it writable (and check free space) or choose another --output"
            ) from None

    def _delete_own(self) -> None:
        try:
            fs.remove(self.path)
        except OSError as e:  # the lease then goes stale on its own
            log.warning("could not delete the run lock %s: %s", self.path, e)

    def _forget_listings(self) -> None:
        """Drop fsspec's cached listings (s3fs, gcsfs): other runs' writes must be seen."""
        fsys, inner = fs.get_fs(self.lock_dir)
        with contextlib.suppress(Exception):  # a file system without a cache has nothing to drop
            fsys.invalidate_cache(inner)

    def _leases(self) -> list[Lease]:
        self._forget_listings()
        leases = []
        for path in fs.listdir(self.lock_dir):
            name = path.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith(".") or not name.endswith(".json"):
                continue  # a heartbeat's temporary file
            try:
                raw = fs.read_json(path)
                leases.append(
                    Lease(
                        run_id=str(raw["run_id"]),
                        host=str(raw["host"]),
                        pid=int(raw["pid"]),
                        started=float(raw["started"]),
                        heartbeat=float(raw["heartbeat"]),
                    )
                )
            except FileNotFoundError:
                continue  # released while we listed
            except (OSError, ValueError, KeyError, TypeError):
                # Unreadable: not ours to judge or delete; its file age decides staleness.
                leases.append(self._unreadable(path))
        return leases

    def _unreadable(self, path: str) -> Lease:
        try:
            fsys, inner = fs.get_fs(path)
            mtime = fsys.modified(inner).timestamp()
        except (OSError, NotImplementedError, ValueError, AttributeError):
            mtime = time.time()
        run_id = path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")
        return Lease(run_id=run_id, host="?", pid=-1, started=mtime, heartbeat=mtime)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                self._forget_listings()
                if not fs.exists(self.path):
                    self.lost = True
                    log.error("the run lock %s was taken over by another run", self.path)
                    return
                self._write(time.time())
            except (OSError, OutputError, json.JSONDecodeError) as e:
                # A missed heartbeat is harmless until STALE_AFTER_SECONDS; keep trying.
                log.warning("could not refresh the run lock %s: %s", self.path, e)
