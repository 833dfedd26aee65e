"""Small WARC shards and output comparison helpers for the cluster, remote-input and fault tests.

Shards are built in code from the bundled sample page texts (no fixtures on disk, no network):
each file holds distinct pages plus a few exact copies of pages from other files, so the
run-wide dedup phase has cross-shard work to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from warc_builder import WarcBuilder

from dataproc.logs import read_log


@contextlib.contextmanager
def moto_s3(monkeypatch: Any) -> Iterator[Any]:
    """A real S3 implementation (moto in server mode on 127.0.0.1) and an S3 client for it.

    The AWS variables point boto3 and s3fs at it for the test (``monkeypatch``); the server
    stops on exit. Callers skip the test first when moto is unavailable or disabled.
    """
    import socket

    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        for k, v in {
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(k, v)
        yield boto3.client("s3")
    finally:
        server.stop()


_TEXTS = Path(__file__).resolve().parent.parent / "dataproc" / "data" / "sample_pages" / "text"
_SKIP = ("banned-", "spam-", "lorem-", "short-", "list-")


def _page_texts() -> list[tuple[str, str]]:
    out = []
    for p in sorted(_TEXTS.glob("*.txt")):
        if p.name.startswith(_SKIP):
            continue
        out.append((p.stem, p.read_text(encoding="utf-8")))
    return out


def _html(title: str, text: str) -> str:
    paras = "".join(f"<p>{html.escape(par)}</p>" for par in text.split("\n\n") if par.strip())
    return (
        f"<html><head><title>{html.escape(title)}</title></head><body>"
        f"<nav><a href='/'>Home</a></nav><article><h1>{html.escape(title)}</h1>{paras}</article>"
        "<footer>Contact us</footer></body></html>"
    )


def build_shard(shard: int, num_shards: int, pages_per_shard: int = 6) -> bytes:
    """One gzipped WARC: ``pages_per_shard`` pages (round-robin over the texts) + 1 copy."""
    texts = _page_texts()
    b = WarcBuilder().warcinfo(is_part_of="CC-MAIN-2024-22", record_id=_rid(shard, 0))
    n = 1
    for k in range(pages_per_shard):
        stem, text = texts[(shard * pages_per_shard + k) % len(texts)]
        url = f"https://site{shard}.example.com/{stem}-{k}"
        b.request(url, record_id=_rid(shard, n))
        b.response(url, _html(stem, text), record_id=_rid(shard, n + 1))
        n += 2
    # An exact copy of a page that another shard also holds: dedup must keep one.
    stem, text = texts[((shard + 1) % num_shards * pages_per_shard) % len(texts)]
    url = f"https://mirror{shard}.example.org/{stem}"
    b.response(url, _html(stem, text), record_id=_rid(shard, n))
    return b.build(gzip=True)


def _rid(shard: int, n: int) -> str:
    return f"<urn:uuid:{uuid.UUID(int=(shard + 1) << 32 | n)}>"


def write_shards(directory: Path, num_shards: int, pages_per_shard: int = 6) -> list[Path]:
    """Write ``num_shards`` WARC files ``CC-TEST-{i:05d}.warc.gz`` under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(num_shards):
        p = directory / f"CC-TEST-{i:05d}.warc.gz"
        p.write_bytes(build_shard(i, num_shards, pages_per_shard))
        paths.append(p)
    return paths


_VOLATILE = ("manifest.json", "stats.json", "report.html")


def output_digest(out: Path) -> dict[str, str]:
    """sha256 of every deterministic output file (work state, logs and timings excluded)."""
    digests = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if p.is_dir() or rel.startswith(("_work/", "logs/")) or rel in _VOLATILE:
            continue
        digests[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return digests


def manifest_core(out: Path) -> dict:
    """The manifest without timings and input locations (which differ between equal runs)."""
    m = json.loads((out / "manifest.json").read_text())
    m.pop("timings", None)
    m.pop("inputs", None)
    m.get("config", {}).pop("inputs", None)
    m.get("config", {}).pop("output", None)
    m.get("config", {}).pop("execution", None)
    return m


def executions(out: Path, phase: str = "filter") -> dict[int, int]:
    """How many times each input file's ``phase`` task started (its shard log's start lines)."""
    counts: dict[int, int] = {}
    for p in sorted((out / "logs").glob("*.log")):
        for rec in read_log(str(p)):
            if rec.get("msg") == "start" and rec.get("phase") == phase:
                idx = int(rec["input_index"])
                counts[idx] = counts.get(idx, 0) + 1
    return counts


# ------------------------------------------------------------------------------------------
# A loopback HTTP file server with Range support and injectable faults.


class FaultyFileServer:
    """Serves ``files`` (name -> bytes) on 127.0.0.1 with Range/ETag support and faults.

    ``fail(name, *faults)`` queues faults for the next requests of ``name``, one per request:
    ``"404"`` (a permanent error, once), ``"503"`` / ``"429"`` (with ``Retry-After: 0``), ``"slowdown"`` (503 with an S3
    ``SlowDown`` error body), ``"cut:N"`` (send the headers and N body bytes, then drop the
    connection), ``"stall:N"`` (send N bytes, then hang until ``release()``). ``requests``
    records ``(name, range_start, status)`` for every request served; ``client_pids`` the
    process id behind each request (to find and kill the Ray worker reading a file).
    """

    def __init__(self, files: dict[str, bytes], honour_range: bool = True) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.files = dict(files)
        self.honour_range = honour_range
        self.faults: dict[str, list[str]] = {}
        self.requests: list[tuple[str, int, int]] = []
        self.client_pids: dict[str, list[int]] = {}  # name -> pid of each reading process
        self.stalled = threading.Event()  # set once a "stall" fault is hanging
        self._release = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                server._serve(self)

            def do_HEAD(self) -> None:  # size lookups (the manifest lists input sizes)
                data = server.files.get(self.path.lstrip("/"))
                self.send_response(404 if data is None else 200)
                self.send_header("Content-Length", str(0 if data is None else len(data)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def fail(self, name: str, *faults: str) -> None:
        with self._lock:
            self.faults.setdefault(name, []).extend(faults)

    def release(self) -> None:
        self._release.set()

    def __enter__(self) -> FaultyFileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)

    def _serve(self, h: object) -> None:
        from http.server import BaseHTTPRequestHandler

        assert isinstance(h, BaseHTTPRequestHandler)
        name = h.path.lstrip("/").split("?", 1)[0]
        data = self.files.get(name)
        rng = h.headers.get("Range")
        start = 0
        if rng and self.honour_range and rng.startswith("bytes="):
            start = int(rng[len("bytes=") :].split("-", 1)[0])
        with self._lock:
            queue = self.faults.get(name, [])
            fault = queue.pop(0) if queue else None
        pid = _peer_pid(h.client_address[1], self.httpd.server_address[1])
        if pid is not None:
            with self._lock:
                self.client_pids.setdefault(name, []).append(pid)
        if data is None or fault == "404":
            self._record(name, start, 404)
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if fault in ("503", "429", "slowdown"):
            status = 429 if fault == "429" else 503
            body = (
                b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate."
                b"</Message></Error>"
                if fault == "slowdown"
                else b"busy"
            )
            self._record(name, start, status)
            h.send_response(status)
            h.send_header("Retry-After", "0")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        if_range = h.headers.get("If-Range")
        if start and if_range and if_range != etag:
            start = 0  # validator mismatch: whole object, as RFC 9110 says
        body = data[start:]
        status = 206 if start else 200
        self._record(name, start, status)
        h.send_response(status)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("ETag", etag)
        h.send_header("Accept-Ranges", "bytes" if self.honour_range else "none")
        h.send_header("Content-Length", str(len(body)))
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        if fault and fault.startswith(("cut:", "stall:")):
            n = int(fault.split(":", 1)[1])
            h.wfile.write(body[:n])
            h.wfile.flush()
            if fault.startswith("stall:"):
                self.stalled.set()
                self._release.wait(timeout=120)
            h.close_connection = True
            import socket

            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
            return
        h.wfile.write(body)

    def _record(self, name: str, start: int, status: int) -> None:
        with self._lock:
            self.requests.append((name, start, status))


def _peer_pid(client_port: int, server_port: int) -> int | None:
    """The local process that owns the client end of a loopback connection (or None)."""
    import psutil

    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for c in conns:
        if c.laddr and c.raddr and c.laddr.port == client_port and c.raddr.port == server_port:
            return c.pid
    return None
