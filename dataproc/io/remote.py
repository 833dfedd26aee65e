"""Streaming reads of remote inputs that survive throttling and dropped connections.

A Common Crawl WARC file is ~1 GB and a run reads tens of thousands of them for days, so a
read must never restart from byte 0 (or fail the shard) because one connection dropped or the
store said "slow down". ``open_remote(url)`` returns a buffered binary stream over one long
GET per connection; when the connection fails it backs off (exponential, full jitter, honouring
``Retry-After``) and reopens **at the failed byte offset** with a Range request:

- ``http(s)://`` — ``requests``; ``Range: bytes=N-`` with ``If-Range`` (the ETag or
  Last-Modified of the first response), so a file that changed mid-read is detected instead of
  being spliced. A server that ignores Range answers 200: the stream skips the bytes it
  already delivered (correct, only slower).
- ``s3://`` — botocore ``GetObject`` with ``Range`` and ``IfMatch`` (``SlowDown``,
  ``ServiceUnavailable``, 5xx are retried). Credentials and endpoint come from the usual AWS
  chain (instance role, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL_S3`` ...).
- anything else fsspec knows (``gs://`` via gcsfs, ...) — the fsspec file is reopened and
  ``seek``-ed to the offset (fsspec files read by ranged requests).

Concurrency: each stream holds one slot of a per-process semaphore
(``max_streams_per_process``) while open. Across a node the bound comes from Ray: one phase-1
task reads one input at a time and reserves ``execution.cpus_per_task`` CPUs, so a node runs at
most ``node CPUs / cpus_per_task`` downloads at once (raise ``cpus_per_task`` to read fewer).

The retry policy is infrastructure, not data: it never changes the output, so it is not part
of the pipeline config (or its fingerprint). It is read from ``DATAPROC_REMOTE_*`` environment
variables, which ``dataproc run`` forwards to every Ray worker (see ``RemoteReadConfig``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

from pydantic import Field, ValidationError

from dataproc.configbase import StrictModel
from dataproc.errors import ConfigError, InputError

log = logging.getLogger("dataproc.remote")

ENV_PREFIX = "DATAPROC_REMOTE_"

# HTTP statuses worth retrying: throttling and transient server/gateway trouble.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# S3 error codes that mean "try again later" (SlowDown is S3's 503 throttling answer).
S3_RETRY_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "500",
        "502",
        "503",
        "504",
    }
)


class RemoteReadConfig(StrictModel):
    """Retry and concurrency policy of remote input reads (env: ``DATAPROC_REMOTE_<NAME>``)."""

    max_failures_without_progress: int = Field(
        10,
        ge=1,
        description="Give up on an input after this many failed attempts in a row that "
        "delivered no new byte (the count resets whenever a retry makes progress).",
    )
    initial_backoff_seconds: float = Field(
        0.5, ge=0, description="Upper bound of the first retry's random wait (full jitter)."
    )
    max_backoff_seconds: float = Field(
        60.0, ge=0, description="Cap on one retry's wait, also on a server's Retry-After."
    )
    connect_timeout_seconds: float = Field(
        30.0, gt=0, description="Seconds to wait for a connection to the store."
    )
    read_timeout_seconds: float = Field(
        120.0,
        gt=0,
        description="Seconds without a byte before a stalled connection is dropped and resumed.",
    )
    chunk_bytes: int = Field(
        1024 * 1024, ge=4096, description="Bytes requested from the connection per read."
    )
    max_streams_per_process: int = Field(
        2,
        ge=1,
        description="Remote inputs one worker process may read at once (others wait).",
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> RemoteReadConfig:
        """Defaults overridden by ``DATAPROC_REMOTE_<FIELD NAME IN CAPITALS>`` variables."""
        env = os.environ if environ is None else environ
        raw = {
            name: env[ENV_PREFIX + name.upper()]
            for name in cls.model_fields
            if ENV_PREFIX + name.upper() in env
        }
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            bad = ", ".join(f"{ENV_PREFIX}{str(err['loc'][0]).upper()}" for err in e.errors())
            raise ConfigError(
                f"{bad}: invalid value ({e.errors()[0]['msg']}); unset it or fix the number"
            ) from None


class RetryableError(Exception):
    """A transient failure (throttled, 5xx, connection dropped): back off and resume."""

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class _Body(Protocol):
    def read(self, n: int) -> bytes: ...

    def close(self) -> None: ...


class _Source(Protocol):
    """One remote object: opens a byte stream starting at an offset."""

    url: str
    size: int | None

    def open_at(self, pos: int) -> _Body: ...


# --------------------------------------------------------------------------------------------
# Retrying stream


_SLOTS_LOCK = threading.Lock()
_SLOTS: threading.BoundedSemaphore | None = None
_SLOTS_SIZE = 0


def _stream_slots(n: int) -> threading.BoundedSemaphore:
    global _SLOTS, _SLOTS_SIZE
    with _SLOTS_LOCK:
        if _SLOTS is None or n != _SLOTS_SIZE:
            _SLOTS, _SLOTS_SIZE = threading.BoundedSemaphore(n), n
        return _SLOTS


class RetryingStream(io.RawIOBase):
    """A raw binary stream over a ``_Source`` that resumes at the current offset after errors.

    ``retries`` counts reconnects, ``throttled`` those caused by throttling answers.
    """

    def __init__(
        self,
        source: _Source,
        config: RemoteReadConfig,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.source = source
        self.config = config
        self.pos = 0
        self.retries = 0
        self.throttled = 0
        self._sleep = sleep
        self._rng = random.Random()
        self._body: _Body | None = None
        self._slots = _stream_slots(config.max_streams_per_process)
        self._slots.acquire()
        self._holds_slot = True

    # io.RawIOBase interface -----------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the read position; the next read reopens there with a Range request."""
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self.pos + offset
        elif whence == io.SEEK_END:
            if self.source.size is None:
                self._ensure_open()
            if self.source.size is None:
                raise OSError(f"{self.source.url}: size unknown, cannot seek from the end")
            target = self.source.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        if target != self.pos:
            self._drop_body()
            self.pos = target
        return self.pos

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        want = len(view)
        if want == 0:
            return 0
        data = self._read(min(want, self.config.chunk_bytes))
        n = len(data)
        view[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            self._drop_body()
            if self._holds_slot:
                self._holds_slot = False
                self._slots.release()
        super().close()

    # retry loop -----------------------------------------------------------------------------
    def _ensure_open(self) -> _Body:
        if self._body is None:
            self._body = self.source.open_at(self.pos)
        return self._body

    def _drop_body(self) -> None:
        if self._body is not None:
            with contextlib.suppress(Exception):
                self._body.close()
            self._body = None

    def _read(self, n: int) -> bytes:
        failures = 0
        while True:
            size = self.source.size
            if size is not None and self.pos >= size:
                return b""
            try:
                data = self._ensure_open().read(n)
                if not data and size is not None and self.pos < size:
                    raise RetryableError(
                        f"connection ended at byte {self.pos} of {size} (dropped mid-file)"
                    )
            except RetryableError as e:
                failures += 1
                self._retry_wait(e, failures)
                continue
            except InputError:
                self._drop_body()
                raise
            except Exception as e:
                kind = classify_error(e)
                if kind is None:
                    self._drop_body()
                    raise InputError(
                        f"at byte {self.pos}: " + permanent_error_message(self.source.url, e)
                    ) from e
                failures += 1
                self._retry_wait(RetryableError(kind), failures)
                continue
            self.pos += len(data)
            return data

    def _retry_wait(self, err: RetryableError, failures: int) -> None:
        self._drop_body()
        cfg = self.config
        if failures >= cfg.max_failures_without_progress:
            raise InputError(
                f"{self.source.url}: giving up at byte {self.pos} after {failures} failed "
                f"attempts in a row (last: {err}); the store may be down or throttling hard — "
                f"rerun the same command later to resume, or raise "
                f"{ENV_PREFIX}MAX_FAILURES_WITHOUT_PROGRESS"
            )
        self.retries += 1
        if is_throttling(str(err)):
            self.throttled += 1
        cap = min(cfg.max_backoff_seconds, cfg.initial_backoff_seconds * 2 ** (failures - 1))
        wait = self._rng.uniform(0, cap)  # full jitter: spreads out many workers retrying at once
        if err.retry_after_seconds is not None:
            wait = max(wait, min(err.retry_after_seconds, cfg.max_backoff_seconds))
        log.warning(
            "%s: %s; retry %d in %.2fs, resuming at byte %d",
            self.source.url,
            err,
            failures,
            wait,
            self.pos,
        )
        self._sleep(wait)


def is_throttling(message: str) -> bool:
    """Whether an error message says the store is throttling us (429, 503, SlowDown)."""
    return any(k in message for k in ("429", "503", "SlowDown", "Throttl", "RequestLimit"))


# getaddrinfo answers that mean "this name does not exist" (not "DNS is slow right now",
# EAI_AGAIN, which is retried like any dropped connection).
_NO_SUCH_HOST = frozenset(
    code
    for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if code
)


def _causes(e: BaseException) -> list[BaseException]:
    """``e`` and what it wraps (cause, context, urllib3's ``reason``, botocore's ``error``)."""
    seen: list[BaseException] = []
    todo = [e]
    while todo and len(seen) < 32:
        cur = todo.pop()
        if any(cur is s for s in seen):
            continue
        seen.append(cur)
        kwargs = getattr(cur, "kwargs", None)
        nested = [
            cur.__cause__,
            cur.__context__,
            getattr(cur, "reason", None),
            kwargs.get("error") if isinstance(kwargs, dict) else None,
            *cur.args,
        ]
        todo += [x for x in nested if isinstance(x, BaseException)]
    return seen


def host_not_found(e: BaseException) -> bool:
    """Whether ``e`` (or what it wraps) is a DNS answer that the host does not exist."""
    return any(isinstance(x, socket.gaierror) and x.errno in _NO_SUCH_HOST for x in _causes(e))


def permanent_error_message(url: str, e: BaseException) -> str:
    """One line for an error that retrying cannot fix: the URL, what happened, what to check."""
    if host_not_found(e):
        host = urlsplit(url).hostname or url
        return (
            f"{url}: host {host!r} not found (DNS: no such name); check the URL, "
            "or the endpoint setting (AWS_ENDPOINT_URL_S3) and this machine's DNS"
        )
    return f"{url}: {_short(e)}; check the URL and your access to it"


def _short(e: BaseException, limit: int = 160) -> str:
    """``Type: message`` on one line, cut to ``limit`` characters (urllib3's run to 400)."""
    text = " ".join(f"{type(e).__name__}: {e}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Client libraries of remote stores: their exceptions reach the CLI from fsspec calls
# (``inspect s3://...``) and deserve one line, not a traceback.
_REMOTE_CLIENT_MODULES = (
    "botocore",
    "aiobotocore",
    "boto3",
    "s3fs",
    "gcsfs",
    "google",
    "aiohttp",
    "requests",
    "urllib3",
    "fsspec",
)


def remote_error_line(e: BaseException) -> str | None:
    """One line for an error raised by a remote store's client (credentials, DNS, access),
    naming what to check; None when ``e`` does not come from one."""
    chain = _causes(e)
    if not any(type(x).__module__.startswith(_REMOTE_CLIENT_MODULES) for x in chain):
        return None
    if host_not_found(e):
        return f"{_short(e)}; the host name does not exist (DNS): check the URL or endpoint"
    if type(e).__name__ == "NoCredentialsError":
        return (
            "no AWS credentials found; give the nodes an instance role or set AWS_PROFILE / "
            "AWS_ACCESS_KEY_ID (Common Crawl's bucket needs any AWS account, or read it over "
            "https://data.commoncrawl.org/)"
        )
    return f"{_short(e, 300)}; check the URL, your credentials and the network"


def classify_error(e: BaseException) -> str | None:
    """A short description if ``e`` is transient (retry it), None if it is permanent.

    Permanent: a file that is missing or not ours (404, 403, auth, missing path) and a host name
    that does not exist (DNS); retrying them would only delay the one clear error line.
    """
    import http.client

    import urllib3.exceptions

    transient: tuple[type[BaseException], ...] = (
        ConnectionError,
        TimeoutError,
        http.client.HTTPException,
        urllib3.exceptions.HTTPError,
    )
    try:
        import requests

        transient += (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
        )
    except ImportError:  # pragma: no cover - requests is a dependency
        pass
    try:
        import botocore.exceptions as bexc

        transient += (
            bexc.ConnectionError,
            bexc.HTTPClientError,
            bexc.IncompleteReadError,
            bexc.ResponseStreamingError,
        )
    except ImportError:  # botocore is only needed for s3:// inputs
        pass
    try:
        import aiohttp

        transient += (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return None
    if host_not_found(e):
        return None
    if isinstance(e, transient):
        return f"connection problem: {_short(e)}"
    if isinstance(e, OSError) and is_throttling(str(e)):
        return f"throttled: {e}"  # fsspec stores wrap throttling answers in OSError
    return None


# --------------------------------------------------------------------------------------------
# HTTP(S)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: ignore, use our own backoff


class _HttpBody:
    """An open HTTP response, read raw (no transparent decompression: .gz stays bytes)."""

    def __init__(self, resp: Any, skip: int) -> None:
        self.resp = resp
        self.skip = skip  # bytes to discard first: the server ignored our Range header

    def read(self, n: int) -> bytes:
        while self.skip:
            junk = self.resp.raw.read(min(self.skip, 1024 * 1024), decode_content=False)
            if not junk:
                return b""
            self.skip -= len(junk)
        return bytes(self.resp.raw.read(n, decode_content=False))

    def close(self) -> None:
        self.resp.close()


_SESSIONS = threading.local()


def _http_session() -> Any:
    import requests

    s = getattr(_SESSIONS, "session", None)
    if s is None:
        s = requests.Session()
        s.headers["User-Agent"] = "dataproc (+https://github.com/; streaming WARC reader)"
        _SESSIONS.session = s
    return s


class HttpSource:
    """An object served over HTTP(S), read with Range requests."""

    def __init__(self, url: str, config: RemoteReadConfig) -> None:
        self.url = url
        self.config = config
        self.size: int | None = None
        self.validator: str | None = None  # ETag or Last-Modified of the first response

    def open_at(self, pos: int) -> _Body:
        import requests

        headers = {"Accept-Encoding": "identity"}
        if pos > 0:
            headers["Range"] = f"bytes={pos}-"
            if self.validator:
                headers["If-Range"] = self.validator
        try:
            resp = _http_session().get(
                self.url,
                headers=headers,
                stream=True,
                timeout=(self.config.connect_timeout_seconds, self.config.read_timeout_seconds),
            )
        except requests.exceptions.RequestException as e:
            if classify_error(e) is None:
                raise InputError(permanent_error_message(self.url, e)) from e
            raise RetryableError(f"connection problem: {_short(e)}") from e
        status = resp.status_code
        if status in RETRY_STATUSES:
            resp.close()
            raise RetryableError(
                f"HTTP {status} {resp.reason}", _retry_after(resp.headers.get("Retry-After"))
            )
        if status == 416 and self.size is not None and pos >= self.size:
            resp.close()
            return _EmptyBody()
        if status not in (200, 206):
            resp.close()
            raise InputError(
                f"{self.url}: HTTP {status} {resp.reason}; check the URL (and that the file "
                "is public or your credentials are set)"
            )
        validator = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
        if status == 206:
            start, total = _parse_content_range(resp.headers.get("Content-Range", ""))
            if start != pos:
                resp.close()
                raise InputError(
                    f"{self.url}: asked for bytes from {pos}, server sent from {start}; "
                    "the server's Range support is broken"
                )
            self.size = total if total is not None else self.size
            return _HttpBody(resp, 0)
        # 200: whole object. On a resume that means Range was ignored, or If-Range failed
        # because the object changed — the latter must not be spliced onto the old bytes.
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit():
            self.size = int(length)
        if pos > 0 and self.validator and validator and validator != self.validator:
            resp.close()
            raise InputError(
                f"{self.url}: the file changed while it was being read "
                f"({self.validator} -> {validator}); rerun to read the new version from the start"
            )
        if self.validator is None:
            self.validator = validator
        return _HttpBody(resp, pos)


def _parse_content_range(value: str) -> tuple[int | None, int | None]:
    """``bytes 100-199/1000`` -> (100, 1000); total ``*`` -> None."""
    try:
        _unit, rest = value.strip().split(" ", 1)
        span, total = rest.split("/", 1)
        start = int(span.split("-", 1)[0])
        return start, (None if total.strip() == "*" else int(total))
    except ValueError:
        return None, None


class _EmptyBody:
    def read(self, n: int) -> bytes:
        return b""

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------------------------
# S3 (botocore)

_S3_CLIENTS = threading.local()


def _s3_client(config: RemoteReadConfig) -> Any:
    # One client per thread (clients are expensive), rebuilt if the endpoint/profile changed.
    key = tuple(
        os.environ.get(k) for k in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_PROFILE")
    )
    client = getattr(_S3_CLIENTS, "client", None)
    if client is None or getattr(_S3_CLIENTS, "key", None) != key:
        try:
            import botocore.session
            from botocore.config import Config
        except ImportError:
            raise InputError("s3:// inputs need botocore: pip install s3fs") from None
        # botocore directly (boto3's client is a thin layer over it): the same credential
        # chain, profiles and endpoint variables, and the version s3fs's aiobotocore pins.
        client = botocore.session.get_session().create_client(
            "s3",
            config=Config(
                # We retry (and resume) ourselves; botocore's own retries would restart reads.
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=config.connect_timeout_seconds,
                read_timeout=config.read_timeout_seconds,
            ),
        )
        _S3_CLIENTS.client = client
        _S3_CLIENTS.key = key
    return client


class _S3Body:
    def __init__(self, body: Any) -> None:
        self.body = body

    def read(self, n: int) -> bytes:
        return bytes(self.body.read(n))

    def close(self) -> None:
        self.body.close()


class S3Source:
    """An S3 object, read with ranged ``GetObject`` calls pinned to the first ETag."""

    def __init__(self, url: str, config: RemoteReadConfig) -> None:
        self.url = url
        self.config = config
        rest = url.split("://", 1)[1]
        self.bucket, _, self.key = rest.partition("/")
        if not self.bucket or not self.key:
            raise InputError(f"{url}: expected s3://BUCKET/KEY")
        self.size: int | None = None
        self.etag: str | None = None

    def open_at(self, pos: int) -> _Body:
        import botocore.exceptions as bexc

        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key}
        if pos > 0:
            kwargs["Range"] = f"bytes={pos}-"
        if self.etag:
            kwargs["IfMatch"] = self.etag
        try:
            resp = _s3_client(self.config).get_object(**kwargs)
        except bexc.ClientError as e:
            err = e.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in S3_RETRY_CODES or status in RETRY_STATUSES:
                hdrs = e.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
                raise RetryableError(
                    f"S3 {code or status}: {err.get('Message', '')}".strip(),
                    _retry_after(hdrs.get("retry-after")),
                ) from e
            if code in ("InvalidRange", "416") and self.size is not None and pos >= self.size:
                return _EmptyBody()
            if code in ("PreconditionFailed", "412"):
                raise InputError(
                    f"{self.url}: the object changed while it was being read; rerun to read "
                    "the new version from the start"
                ) from e
            raise InputError(
                f"{self.url}: S3 {code or status}: {err.get('Message', e)}; check the bucket, "
                "key and credentials (instance role, AWS_PROFILE)"
            ) from e
        except bexc.NoCredentialsError as e:
            raise InputError(
                f"{self.url}: no AWS credentials; give the nodes an instance role or set "
                "AWS_PROFILE / AWS_ACCESS_KEY_ID"
            ) from e
        if self.etag is None:
            self.etag = resp.get("ETag")
        _start, total = _parse_content_range(resp.get("ContentRange", "") or "")
        if total is not None:
            self.size = total
        elif pos == 0 and resp.get("ContentLength") is not None:
            self.size = int(resp["ContentLength"])
        return _S3Body(resp["Body"])


# --------------------------------------------------------------------------------------------
# Anything else fsspec can open (gs://, az://, ...)


class _FsspecBody:
    def __init__(self, f: Any) -> None:
        self.f = f

    def read(self, n: int) -> bytes:
        return bytes(self.f.read(n))

    def close(self) -> None:
        self.f.close()


class FsspecSource:
    """A file on an fsspec store, reopened and ``seek``-ed to resume (ranged reads)."""

    def __init__(self, url: str, config: RemoteReadConfig, block_size: int) -> None:
        import fsspec

        self.url = url
        self.config = config
        self.block_size = block_size
        self.fs, self.inner = fsspec.core.url_to_fs(url)
        self.size: int | None = None

    def open_at(self, pos: int) -> _Body:
        try:
            f = self.fs.open(self.inner, "rb", block_size=self.block_size, cache_type="readahead")
            if self.size is None:
                self.size = getattr(f, "size", None)
            if pos:
                f.seek(pos)
        except (FileNotFoundError, PermissionError) as e:
            raise InputError(f"{self.url}: {e}; check the path and your credentials") from e
        return _FsspecBody(f)


# --------------------------------------------------------------------------------------------


def make_source(url: str, config: RemoteReadConfig, block_size: int = 8 * 1024 * 1024) -> _Source:
    """The right ``_Source`` for a URL's scheme."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("http", "https"):
        return HttpSource(url, config)
    if scheme in ("s3", "s3a"):
        return S3Source(url, config)
    return FsspecSource(url, config, block_size)


def open_remote(
    url: str,
    block_size: int = 8 * 1024 * 1024,
    config: RemoteReadConfig | None = None,
) -> IO[bytes]:
    """Open a remote file for streaming reads that retry and resume (see module docstring).

    The first connection is made here, so a missing file or bad credentials fail at once.
    """
    cfg = config or RemoteReadConfig.from_env()
    raw = RetryingStream(make_source(url, cfg, block_size), cfg)
    try:
        _open_first(raw)
    except BaseException:
        raw.close()
        raise
    return io.BufferedReader(raw, buffer_size=min(block_size, cfg.chunk_bytes))  # type: ignore[return-value]


def _open_first(raw: RetryingStream) -> None:
    """Make the first connection under the retry policy (a 503 on open is retried too)."""
    failures = 0
    while True:
        try:
            raw._ensure_open()
            return
        except RetryableError as e:
            failures += 1
            raw._retry_wait(e, failures)
        except InputError:
            raise
        except Exception as e:
            kind = classify_error(e)
            if kind is None:
                raise InputError(permanent_error_message(raw.source.url, e)) from e
            failures += 1
            raw._retry_wait(RetryableError(kind), failures)


__all__ = [
    "RemoteReadConfig",
    "RetryableError",
    "RetryingStream",
    "classify_error",
    "host_not_found",
    "is_throttling",
    "make_source",
    "open_remote",
    "remote_error_line",
]
