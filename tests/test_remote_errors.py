"""Unreachable remotes: permanent errors (no such host, 403, 404, 401) fail at once with one
clear line; transient ones (503) keep their retries. Servers bind 127.0.0.1 and are stopped here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dataproc.errors import InputError
from dataproc.io.remote import RemoteReadConfig, host_not_found, open_remote

FAST = RemoteReadConfig(initial_backoff_seconds=0.0, max_failures_without_progress=4)


@contextmanager
def status_server(status: int) -> Iterator[tuple[str, list[str]]]:
    """A server answering every GET with ``status``; yields its base URL and the paths asked."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.send_header("Retry-After", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize("status", [401, 403, 404])
def test_forbidden_or_missing_fails_on_the_first_request(status: int, caplog) -> None:
    with (
        status_server(status) as (base, seen),
        caplog.at_level(logging.WARNING, "dataproc"),
        pytest.raises(InputError, match=rf"HTTP {status}") as e,
    ):
        open_remote(f"{base}/a.warc.gz", config=FAST)
    assert seen == ["/a.warc.gz"]  # asked once, never retried
    assert "\n" not in str(e.value) and not caplog.records


def test_transient_503_is_still_retried() -> None:
    with status_server(503) as (base, seen), pytest.raises(InputError, match="after 4 failed"):
        open_remote(f"{base}/a.warc.gz", config=FAST)
    assert len(seen) == 4


def test_unknown_host_fails_at_once_with_one_short_line(caplog) -> None:
    url = "http://no-such-host.dataproc-test.invalid/a.warc.gz"
    with caplog.at_level(logging.WARNING, "dataproc"), pytest.raises(InputError) as e:
        open_remote(url, config=RemoteReadConfig())  # default policy: 10 tries over minutes
    msg = str(e.value)
    assert "not found (DNS" in msg and "no-such-host.dataproc-test.invalid" in msg
    assert len(msg) < 250 and "\n" not in msg
    assert not caplog.records  # no retry warnings
    assert host_not_found(e.value)


def test_s3_endpoint_that_does_not_resolve_fails_at_once(monkeypatch, caplog) -> None:
    pytest.importorskip("boto3")
    from dataproc.io import remote

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://no-such-endpoint.dataproc-test.invalid")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(remote, "_S3_CLIENTS", threading.local())  # no client of another test
    with caplog.at_level(logging.WARNING, "dataproc"), pytest.raises(InputError) as e:
        open_remote("s3://bucket/a.warc.gz", config=RemoteReadConfig())
    assert "not found (DNS" in str(e.value) and not caplog.records


def _cli(*args: str, **env: str):
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update(
        AWS_EC2_METADATA_DISABLED="true",  # no instance-metadata lookups from a test
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_MAX_ATTEMPTS="1",
        PYTHONPATH=os.pathsep.join(sys.path),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "dataproc", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=base,
    )


@pytest.mark.parametrize("command", ["inspect", "verify", "report"])
def test_s3_client_errors_are_one_line_not_a_traceback(command: str) -> None:
    pytest.importorskip("s3fs")
    proc = _cli(command, "s3://bucket/out")  # no credentials anywhere
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "no AWS credentials" in lines[0] and "Traceback" not in proc.stderr
    proc = _cli(
        command,
        "s3://bucket/out",
        AWS_ENDPOINT_URL_S3="http://no-such-endpoint.dataproc-test.invalid",
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "DNS" in lines[0] or "no-such-endpoint" in lines[0], lines[0]
