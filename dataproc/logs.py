"""Structured per-shard logs: one JSON-lines file per input file, ``OUT/logs/{index:06d}.log``.

Every line is one JSON object with at least ``ts`` (UTC, ISO 8601), ``level``, ``msg``,
``shard`` (the input file's name), ``input`` (its full path), ``input_index``, ``phase``
(``filter`` or ``tokenize``), ``task_id`` (the Ray task, ``null`` outside Ray) and ``attempt``
(1 for the first try, 2 after one retry, ...). Errors also carry ``offset``: the byte offset of
the last WARC record the shard had read (open the file there to reproduce), and ``error`` plus
``traceback``. While a shard runs, records the ``dataproc`` loggers emit in that worker (e.g. a
stage's warnings) land in the same file.

Find everything that went wrong in a run with
``cat OUT/logs/*.log | jq -c 'select(.level=="ERROR")'``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from dataproc.io import fs
from dataproc.io.layout import OutputLayout

LOGGER_NAME = "dataproc"


def _ray_task_id() -> str | None:
    try:
        import ray

        if not ray.is_initialized():
            return None
        return ray.get_runtime_context().get_task_id()
    except Exception:
        return None


def _attempt(path: str, phase: str) -> int:
    """1 + how many earlier ``start`` lines this phase has in the log (Ray retries, reruns)."""
    try:
        if not fs.exists(path):
            return 1
        text = fs.read_bytes(path).decode("utf-8", "replace")
    except OSError:
        return 1
    starts = 0
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        starts += rec.get("msg") == "start" and rec.get("phase") == phase
    return 1 + starts


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


class ShardLog:
    """The JSON-lines log of one input file during one phase (use ``shard_log`` to open it).

    Local folders are appended to line by line (a crash loses nothing already logged); on
    object stores, which cannot append, the lines are buffered and the file is rewritten with
    the old lines plus the new ones when the shard ends.
    """

    def __init__(self, out_dir: str, input_index: int, input_path: str, phase: str) -> None:
        self.path = OutputLayout(out_dir).log(input_index)
        self.offset: int | None = None
        self._remote = fs.is_remote(self.path)
        self._buffer: list[str] = []
        self._file: IO[str] | None = None
        self._base: dict[str, Any] = {
            "shard": os.path.basename(input_path.rstrip("/")) or input_path,
            "input": input_path,
            "input_index": input_index,
            "phase": phase,
            "task_id": _ray_task_id(),
            "attempt": _attempt(self.path, phase),
        }
        if not self._remote:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def position(self, offset: int) -> None:
        """Remember the byte offset of the record being processed (for error lines)."""
        self.offset = offset

    def write(self, level: str, msg: str, **fields: Any) -> None:
        """Write one line: the shard's identity, ``level``, ``msg`` and any extra fields."""
        rec = {"ts": _iso(time.time()), "level": level, "msg": msg, **self._base, **fields}
        # ASCII-only JSON: no raw U+2028 or control character can split a line for any reader.
        line = json.dumps(rec, default=str, ensure_ascii=True, separators=(",", ":")) + "\n"
        if self._file is not None:
            self._file.write(line)
            self._file.flush()
        else:
            self._buffer.append(line)

    def info(self, msg: str, **fields: Any) -> None:
        self.write("INFO", msg, **fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self.write("WARNING", msg, **fields)

    def error(self, msg: str, exc: BaseException | None = None, **fields: Any) -> None:
        """An error line with the input file and the offset of the last record read."""
        extra: dict[str, Any] = {"offset": self.offset}
        if exc is not None:
            extra["error"] = f"{type(exc).__name__}: {exc}"
            extra["traceback"] = "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__)
            )[-4000:]
        self.write("ERROR", msg, **extra, **fields)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            return
        if self._buffer:
            old = fs.read_bytes(self.path) if fs.exists(self.path) else b""
            fs.write_bytes_atomic(self.path, old + "".join(self._buffer).encode("utf-8"))
            self._buffer = []


class _Forward(logging.Handler):
    """Copies ``dataproc`` log records emitted during a shard into its ShardLog."""

    def __init__(self, shard: ShardLog) -> None:
        super().__init__(level=logging.INFO)
        self.shard = shard

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] = {"logger": record.name}
            if record.exc_info and record.exc_info[1] is not None:
                fields["error"] = repr(record.exc_info[1])
            if record.levelno >= logging.ERROR:
                fields["offset"] = self.shard.offset
            self.shard.write(record.levelname, record.getMessage(), **fields)
        except Exception:
            self.handleError(record)


@contextmanager
def shard_log(out_dir: str, input_index: int, input_path: str, phase: str) -> Iterator[ShardLog]:
    """Open the shard's log for one phase: logs ``start``, then ``done`` or an error.

    An exception inside the block is logged (with input file, record offset and traceback)
    and re-raised, so Ray still sees the failure and retries the task.
    """
    slog = ShardLog(out_dir, input_index, input_path, phase)
    handler = _Forward(slog)
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    started = time.time()
    slog.info("start")
    try:
        yield slog
    except BaseException as e:
        slog.error("failed", e, seconds=round(time.time() - started, 3))
        raise
    else:
        slog.info("done", seconds=round(time.time() - started, 3))
    finally:
        logger.removeHandler(handler)
        slog.close()


def read_log(path: str) -> list[dict[str, Any]]:
    """The lines of a shard log as dicts (lines cut short by a crash are skipped)."""
    out = []
    for line in fs.read_bytes(path).decode("utf-8", "replace").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


__all__ = ["ShardLog", "read_log", "shard_log"]
