"""One file-system layer for inputs and outputs, built on fsspec.

fsspec (not pyarrow.fs) because it covers every place crawls live with one API — local,
``s3://`` (s3fs), ``gs://`` (gcsfs), ``https://`` (aiohttp) — streams reads with range
requests, and is what Ray Data, Hugging Face ``datasets`` and DuckDB already use.

Writes are atomic: data goes to a temporary name next to the target and is renamed (local,
HDFS-like) or uploaded in one ``put`` (object stores, where an object only becomes visible once
complete), so a half-written file is never visible under its final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

REMOTE_PREFIXES = ("s3://", "gs://", "gcs://", "http://", "https://", "az://", "abfs://", "hf://")
# Inputs read through dataproc.io.remote (retrying, resuming streams).
_RESUMABLE_PREFIXES = ("http://", "https://", "s3://", "gs://", "gcs://")


def is_remote(path: str) -> bool:
    return path.startswith(REMOTE_PREFIXES)


def get_fs(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return (filesystem, path-within-it) for a local path or URL."""
    fs, inner = fsspec.core.url_to_fs(path)
    return fs, inner


def join(base: str, *parts: str) -> str:
    """Join path parts with '/' (works for URLs and local paths)."""
    if is_remote(base):
        return posixpath.join(base, *parts)
    return os.path.join(base, *parts)


def exists(path: str) -> bool:
    fs, inner = get_fs(path)
    return bool(fs.exists(inner))


def makedirs(path: str) -> None:
    fs, inner = get_fs(path)
    if isinstance(fs, LocalFileSystem):
        os.makedirs(inner, exist_ok=True)
    # Object stores have no directories: nothing to create.


def open_input(path: str, block_size: int = 8 * 1024 * 1024) -> IO[bytes]:
    """Open a file for streaming binary reads (never downloads it whole first).

    ``http(s)://``, ``s3://`` and ``gs://`` go through ``dataproc.io.remote``: retries with
    backoff on throttling and dropped connections, resuming at the failed byte offset.
    """
    if path.startswith(_RESUMABLE_PREFIXES):
        from dataproc.io.remote import open_remote

        return open_remote(path, block_size=block_size)
    fs, inner = get_fs(path)
    if isinstance(fs, LocalFileSystem):
        return open(inner, "rb", buffering=1024 * 1024)
    return fs.open(inner, "rb", block_size=block_size, cache_type="readahead")


def read_bytes(path: str) -> bytes:
    with open_input(path) as f:
        return f.read()


def sha256_file(path: str, chunk_bytes: int = 8 * 1024 * 1024) -> str:
    """Hex sha256 of a file's content, streamed (local or remote)."""
    h = hashlib.sha256()
    with open_input(path) as f:
        while chunk := f.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


def read_json(path: str) -> Any:
    return json.loads(read_bytes(path).decode("utf-8"))


def size(path: str) -> int:
    fs, inner = get_fs(path)
    return int(fs.size(inner))


def listdir(path: str) -> list[str]:
    """Full paths of the entries directly under ``path`` (sorted); [] if it does not exist."""
    fs, inner = get_fs(path)
    if not fs.exists(inner):
        return []
    entries = sorted(fs.ls(inner, detail=False))
    if is_remote(path):
        proto = path.split("://", 1)[0]
        return [e if "://" in e else f"{proto}://{e}" for e in entries]
    return entries


def remove(path: str, recursive: bool = False) -> None:
    fs, inner = get_fs(path)
    if fs.exists(inner):
        fs.rm(inner, recursive=recursive)


@contextmanager
def atomic_write(path: str) -> Iterator[IO[bytes]]:
    """Write ``path`` atomically: readers see the old state or the complete new file.

    Local: write ``.<name>.<uuid>.tmp`` beside it, fsync, ``os.replace``. Remote: write to a
    local temporary file, then upload it in one ``put`` (S3/GCS objects appear only when the
    upload completes).
    """
    fs, inner = get_fs(path)
    if isinstance(fs, LocalFileSystem):
        directory = os.path.dirname(inner) or "."
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f".{os.path.basename(inner)}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, inner)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return
    import tempfile

    with tempfile.NamedTemporaryFile(prefix="dataproc-", suffix=".tmp", delete=True) as tmpf:
        yield tmpf  # type: ignore[misc]
        tmpf.flush()
        fs.put_file(tmpf.name, inner)


def write_bytes_atomic(path: str, data: bytes) -> None:
    with atomic_write(path) as f:
        f.write(data)


def write_json_atomic(path: str, obj: Any) -> None:
    data = json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False).encode("utf-8") + b"\n"
    write_bytes_atomic(path, data)
