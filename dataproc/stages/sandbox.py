"""Run a ``str -> str`` function in a persistent child process with a hard per-call time limit.

Why a child process: trafilatura (lxml underneath) can spend minutes on a pathological page and
a Python thread cannot be interrupted inside C code, so a timeout that *really* stops the work
has to kill a process. The child is long-lived (so its imports are paid once), receives one
UTF-8 payload per call over a pipe and answers with one status byte plus a UTF-8 payload: no
pickling per page, so the per-page overhead is a pipe round trip.

How the child starts: ``python -m dataproc.stages.sandbox`` via ``subprocess`` (fork + exec),
which is safe from a threaded parent such as a Ray worker (plain ``fork`` can copy a held lock
into the child and deadlock it). We do not use ``multiprocessing``'s ``spawn`` context because
it re-runs the parent's ``__main__`` file in the child: inside a Ray worker that is Ray's
``default_worker.py``, and in a user script without an ``if __name__ == "__main__"`` guard it
fails outright. The work function is pickled once, at start-up, together with ``sys.path``.

The time limit is on the child's CPU time (read from ``/proc``), not wall time, so a page is
not dropped just because the node is oversubscribed and results do not depend on load; a child
that stalls (no CPU progress) for ``wall_factor`` times the limit in wall time is stopped too.

The child is replaced: after a timeout (SIGKILL, then wait), when it dies, after
``max_calls_per_child`` calls, and when its resident memory exceeds ``max_rss_bytes`` (lxml and
the allocator keep memory after a huge page; a fresh process gives it back).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Literal

from dataproc.errors import ExtractionError

WorkFn = Callable[[str], str]
"""A picklable (module-level, or ``functools.partial`` of one) function run in the child."""

_OK = b"\x00"
_ERROR = b"\x01"
_READY = b"\x02"
# HTML decoded from arbitrary bytes may hold lone surrogates; carry them through unchanged.
_CODEC_ERRORS = "surrogatepass"
# How often (in calls) the parent reads the child's RSS; /proc reads are cheap but not free.
_RSS_CHECK_EVERY_CALLS = 16
_JOIN_SECONDS = 5.0
# Pipe buffer asked for (1 MiB is Linux's default pipe-max-size for unprivileged users).
_PIPE_BYTES = 1 << 20
_MIN_POLL_SECONDS = 0.02
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class CallResult:
    """Outcome of one sandboxed call: ``status`` plus the text (``ok``) or the error detail."""

    status: Literal["ok", "error", "timeout", "crashed"]
    value: str = ""


def _child_loop(conn: Connection, work_fn: WorkFn, warmup: str | None) -> None:
    """Child loop: answer each request until the parent closes its end of the pipe."""
    if warmup is not None:
        # Pay the lazy imports (trafilatura, lxml) before the first timed call.
        try:
            work_fn(warmup)
        except ImportError as e:
            # A broken install (e.g. lxml without lxml_html_clean) fails every page the same
            # way: refuse to start rather than drop every page as an "extraction_error".
            conn.send_bytes(_ERROR + f"{type(e).__name__}: {e}"[:500].encode("utf-8", "replace"))
            return
        except Exception:
            pass  # the warm-up page itself may be unextractable; real pages decide
    conn.send_bytes(_READY)
    while True:
        try:
            request = conn.recv_bytes()
        except (EOFError, OSError):
            return  # parent closed the pipe or died: exit quietly
        try:
            text = work_fn(request.decode("utf-8", _CODEC_ERRORS))
            reply = _OK + text.encode("utf-8", _CODEC_ERRORS)
        except Exception as e:  # any failure of the work function is a per-page error
            reply = _ERROR + f"{type(e).__name__}: {e}"[:500].encode("utf-8", "replace")
        try:
            conn.send_bytes(reply)
        except OSError:
            return


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this child when its parent dies (even mid-page, in C code).

    Without it, a child stuck in a runaway page would outlive a crashed or killed Ray worker.
    Elsewhere (non-Linux) an idle child still exits on pipe EOF.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _child_entry(read_fd: int, write_fd: int) -> None:
    """Entry point of ``python -m dataproc.stages.sandbox READ_FD WRITE_FD``."""
    _die_with_parent()
    conn_in = Connection(read_fd, writable=False)
    conn_out = Connection(write_fd, readable=False)
    # The first message carries the parent's sys.path (so the work function's module imports
    # exactly as in the parent), the pickled work function and the warm-up payload.
    setup = conn_in.recv_bytes()
    path, fn_blob, warmup = pickle.loads(setup)
    sys.path[:] = path
    work_fn = pickle.loads(fn_blob)
    _child_loop(_Duplex(conn_in, conn_out), work_fn, warmup)  # type: ignore[arg-type]


def _widen_pipe(fd: int) -> None:
    """Grow a pipe's buffer (Linux; default 64 KiB) so a typical page goes in one write
    instead of many small writes each waiting for the other side to drain the pipe."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is None:
        return
    with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size: keep the default
        fcntl.fcntl(fd, set_size, _PIPE_BYTES)


class _Duplex:
    """Pairs a read and a write Connection so the child loop sees one object."""

    def __init__(self, conn_in: Connection, conn_out: Connection) -> None:
        self._in, self._out = conn_in, conn_out

    def recv_bytes(self) -> bytes:
        return self._in.recv_bytes()

    def send_bytes(self, data: bytes) -> None:
        self._out.send_bytes(data)


class Sandbox:
    """A persistent child process running ``work_fn`` with a per-call timeout.

    Not thread-safe: one caller at a time (a stage instance is used by one task at a time).
    """

    def __init__(
        self,
        work_fn: WorkFn,
        timeout_seconds: float,
        max_calls_per_child: int = 10_000,
        max_rss_bytes: int = 1 << 30,
        warmup: str | None = None,
        start_timeout_seconds: float = 120.0,
        wall_factor: float = 4.0,
    ) -> None:
        self._work_fn = work_fn
        self._timeout = timeout_seconds
        self._max_calls = max_calls_per_child
        self._max_rss = max_rss_bytes
        self._warmup = warmup
        self._start_timeout = start_timeout_seconds
        self._wall_factor = max(1.0, wall_factor)
        self._proc: subprocess.Popen[bytes] | None = None
        self._send: Connection | None = None
        self._recv: Connection | None = None
        self._calls = 0
        # CPU seconds the children used inside calls (start-up and warm-up excluded).
        self.call_cpu_seconds = 0.0
        # How often the child was replaced, by cause (the stage reports these).
        self.restarts: dict[str, int] = {"timeout": 0, "crashed": 0, "max_calls": 0, "rss": 0}

    @property
    def pid(self) -> int | None:
        """The current child's pid, or None when no child is running."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the child (if not running) and wait until it has warmed up."""
        if self._proc is not None:
            return
        fn = self._work_fn
        while isinstance(fn, functools.partial):
            fn = fn.func
        if getattr(fn, "__module__", None) == "__main__":
            raise ExtractionError(
                f"the extraction work function {fn!r} is defined in __main__, which the child "
                "process cannot import; move it into an importable module"
            )
        try:
            fn_blob = pickle.dumps(self._work_fn)
        except Exception as e:
            raise ExtractionError(
                f"the extraction work function {self._work_fn!r} cannot be pickled ({e}); "
                "use a module-level function or functools.partial of one"
            ) from None
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        _widen_pipe(to_child_w)
        _widen_pipe(from_child_w)
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dataproc.stages.sandbox",
                    str(to_child_r),
                    str(from_child_w),
                ],
                stdin=subprocess.DEVNULL,
                pass_fds=(to_child_r, from_child_w),
                close_fds=True,
            )
        finally:
            # Only the child holds these ends now, so its exit gives us EOF (and ours, it).
            os.close(to_child_r)
            os.close(from_child_w)
        self._proc = proc
        self._send = Connection(to_child_w, readable=False)
        self._recv = Connection(from_child_r, writable=False)
        self._calls = 0
        try:
            self._send.send_bytes(pickle.dumps((list(sys.path), fn_blob, self._warmup)))
            first = self._recv.recv_bytes() if self._recv.poll(self._start_timeout) else b""
        except (EOFError, OSError):
            first = b""
        ready = first == _READY
        if first.startswith(_ERROR):
            self._kill()
            raise ExtractionError(
                "the extractor cannot run in this environment: "
                f"{first[1:].decode('utf-8', 'replace')}; reinstall dataproc with its "
                "dependencies (pip install -e .) and check `python -c 'import trafilatura'`"
            )
        if not ready:
            code = self._exit_code()
            self._kill()
            raise ExtractionError(
                f"the extraction child did not start within {self._start_timeout:.0f} s "
                f"(exit code {code}); its error is on stderr above. Check that the work "
                "function's module imports cleanly in a fresh interpreter"
            )

    def call(self, payload: str, timeout_seconds: float | None = None) -> CallResult:
        """Run ``work_fn(payload)`` in the child; kill and replace the child on timeout.

        The limit is on the child's CPU time (Linux; wall time elsewhere), so a page is not
        dropped just because the node is oversubscribed; a child that stalls without using
        CPU is stopped after ``wall_factor`` times the limit in wall time.
        ``timeout_seconds`` overrides the sandbox's default limit for this call.
        """
        limit = self._timeout if timeout_seconds is None else timeout_seconds
        self.start()
        send, recv = self._send, self._recv
        if send is None or recv is None:  # start() either sets them or raises
            raise ExtractionError("extraction child is not running")
        try:
            cpu_start = self._child_cpu_seconds()
            send.send_bytes(payload.encode("utf-8", _CODEC_ERRORS))
            if not self._wait(recv, limit, cpu_start):
                self._count_call_cpu(cpu_start)
                self.restarts["timeout"] += 1
                self._kill()
                return CallResult("timeout", f"no result within {limit:.3g} s")
            reply = recv.recv_bytes()
            self._count_call_cpu(cpu_start)
        except (EOFError, OSError) as e:
            code = self._exit_code()
            self.restarts["crashed"] += 1
            self._kill()
            return CallResult("crashed", f"extraction child died (exit code {code}): {e!r}")
        self._calls += 1
        self._maybe_recycle()
        if reply[:1] == _OK:
            return CallResult("ok", reply[1:].decode("utf-8", _CODEC_ERRORS))
        return CallResult("error", reply[1:].decode("utf-8", "replace"))

    def _wait(self, recv: Connection, limit: float, cpu_start: float | None) -> bool:
        """Wait for a reply; False once the child used ``limit`` CPU seconds, or stalled.

        The decision must not depend on how busy the machine is, or the output would depend
        on scheduling: a slow page on an oversubscribed node gets less CPU per second but the
        same CPU budget. The wall clock only catches a child that makes *no* progress (blocked,
        not computing): less than 1% CPU over a window of ``limit * wall_factor`` seconds.
        Without CPU accounting (no /proc) the limit is simply that wall window.
        """
        window = limit * self._wall_factor
        if cpu_start is None:
            return bool(recv.poll(window))
        mark_wall, mark_cpu = time.monotonic(), cpu_start
        used = 0.0
        while True:
            # CPU time never runs faster than wall time, so the budget cannot be exhausted
            # before another `limit - used` seconds have passed: sleep in the poll till then.
            until_window = mark_wall + window - time.monotonic()
            step = min(max(limit - used, _MIN_POLL_SECONDS), max(until_window, _MIN_POLL_SECONDS))
            if recv.poll(step):
                return True
            cpu_now = self._child_cpu_seconds()
            if cpu_now is None:
                return False  # the child is gone: the caller reads the EOF
            used = cpu_now - cpu_start
            if used >= limit:
                return False
            now = time.monotonic()
            if now - mark_wall >= window:
                if cpu_now - mark_cpu < 0.01 * (now - mark_wall):
                    return False  # stalled: blocked without computing
                mark_wall, mark_cpu = now, cpu_now

    def _count_call_cpu(self, cpu_start: float | None) -> None:
        cpu_now = self._child_cpu_seconds()
        if cpu_start is not None and cpu_now is not None:
            self.call_cpu_seconds += max(0.0, cpu_now - cpu_start)

    def _child_cpu_seconds(self) -> float | None:
        """User + system CPU seconds of the child so far (None where /proc is unavailable)."""
        pid = self.pid
        if pid is None:
            return None
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            # Fields after the parenthesised command name; utime and stime are 14th and 15th.
            fields = stat[stat.rindex(b")") + 2 :].split()
            return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        except (OSError, ValueError, IndexError):
            return None

    def _exit_code(self) -> int | None:
        """The child's exit status once its pipe broke (it may take a moment to be reaped)."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(1.0)
        except subprocess.TimeoutExpired:
            return None

    def _maybe_recycle(self) -> None:
        if self._calls >= self._max_calls:
            self.restarts["max_calls"] += 1
            self._stop()
        elif self._calls % _RSS_CHECK_EVERY_CALLS == 0 and self.child_rss_bytes() > self._max_rss:
            self.restarts["rss"] += 1
            self._stop()

    def child_rss_bytes(self) -> int:
        """Resident memory of the child in bytes (0 when no child runs)."""
        pid = self.pid
        if pid is None:
            return 0
        try:
            # /proc/<pid>/statm: the second field is resident pages; cheaper than psutil.
            with open(f"/proc/{pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            import psutil

            try:
                return int(psutil.Process(pid).memory_info().rss)
            except psutil.Error:
                return 0

    def _close_pipes(self) -> None:
        for conn in (self._send, self._recv):
            if conn is not None:
                conn.close()
        self._send = self._recv = None

    def _stop(self) -> None:
        """Graceful stop: closing the pipe makes the idle child exit; kill it if it lingers."""
        self._close_pipes()
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.wait(_JOIN_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(_JOIN_SECONDS)

    def _kill(self) -> None:
        """Hard stop (SIGKILL) for a busy or broken child, then reap it so no zombie remains."""
        self._close_pipes()
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait(_JOIN_SECONDS)

    def close(self) -> None:
        """Stop the child. Safe to call twice; the sandbox restarts on the next ``call``."""
        self._stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Last resort (a caller forgot close()): never leave a child behind.
        with contextlib.suppress(Exception):
            self._kill()


if __name__ == "__main__":
    _child_entry(int(sys.argv[1]), int(sys.argv[2]))
