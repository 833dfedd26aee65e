"""Remote inputs: retrying, resuming streams over HTTP and S3, crawl listings, and the pipeline
reading through a loopback server that throttles and cuts connections mid-file.

Every server here is started by the test on 127.0.0.1 and stopped by it.
"""

from __future__ import annotations

import gzip
import os
import threading
import time
from pathlib import Path

import pytest
from _crawl_fixtures import FaultyFileServer, output_digest, write_shards

from dataproc.errors import ConfigError, InputError
from dataproc.io import fs
from dataproc.io.crawl import parse_listing, parse_shards, resolve_crawl
from dataproc.io.remote import RemoteReadConfig, open_remote

FAST = RemoteReadConfig(initial_backoff_seconds=0.01, max_backoff_seconds=0.05)
DATA = bytes(range(256)) * 8192  # 2 MiB, every offset distinguishable


def _read_all(url: str, config: RemoteReadConfig = FAST) -> tuple[bytes, object]:
    with open_remote(url, config=config) as f:
        out = bytearray()
        while chunk := f.read(100_000):
            out += chunk
        return bytes(out), f.raw  # type: ignore[attr-defined]


def test_http_retries_throttling_and_resumes_cut_connections_at_the_failed_offset():
    with FaultyFileServer({"a.warc.gz": DATA}) as srv:
        srv.fail("a.warc.gz", "503", "cut:700000", "slowdown", "429", "cut:300000")
        got, raw = _read_all(srv.url("a.warc.gz"))
        assert got == DATA
        # The first full GET was cut after 700000 bytes: the next requests ask for exactly
        # byte 700000 on (Range), never byte 0 again; then the second cut at 1000000.
        assert srv.requests == [
            ("a.warc.gz", 0, 503),
            ("a.warc.gz", 0, 200),
            ("a.warc.gz", 700000, 503),
            ("a.warc.gz", 700000, 429),
            ("a.warc.gz", 700000, 206),
            ("a.warc.gz", 1000000, 206),
        ]
        assert raw.retries == 5 and raw.throttled == 3


def test_http_server_without_range_support_still_reads_correctly():
    with FaultyFileServer({"a": DATA}, honour_range=False) as srv:
        srv.fail("a", "cut:500000")
        got, _ = _read_all(srv.url("a"))
        assert got == DATA
        assert [r[2] for r in srv.requests] == [200, 200]


def test_a_file_that_changes_mid_read_is_an_error_not_a_splice():
    with FaultyFileServer({"a": DATA}) as srv:
        srv.fail("a", "cut:500000")
        with open_remote(srv.url("a"), config=FAST) as f:
            first = f.read(400_000)
            srv.files["a"] = b"new version " + DATA  # ETag changes: If-Range fails, 200 comes
            with pytest.raises(InputError, match="changed while it was being read"):
                f.read()
        assert first == DATA[:400_000]


def test_missing_file_fails_at_open_with_the_url():
    with FaultyFileServer({}) as srv, pytest.raises(InputError, match=r"HTTP 404.*check the URL"):
        open_remote(srv.url("nope.warc.gz"), config=FAST)


def test_gives_up_after_repeated_failures_without_progress():
    cfg = RemoteReadConfig(initial_backoff_seconds=0.0, max_failures_without_progress=3)
    with FaultyFileServer({"a": DATA}) as srv:
        srv.fail("a", "503", "503", "503", "503")
        with pytest.raises(InputError, match=r"after 3 failed attempts.*MAX_FAILURES"):
            open_remote(srv.url("a"), config=cfg)


def test_progress_resets_the_failure_count():
    # Six cuts, each after some progress: more failures in total than the limit of 3, but
    # never 3 in a row without a new byte, so the read completes.
    cfg = RemoteReadConfig(initial_backoff_seconds=0.0, max_failures_without_progress=3)
    with FaultyFileServer({"a": DATA}) as srv:
        srv.fail("a", *["cut:100000"] * 6)
        got, raw = _read_all(srv.url("a"), cfg)
        assert got == DATA and raw.retries == 6


def test_backoff_grows_exponentially_with_jitter_and_honours_retry_after():
    from dataproc.io.remote import HttpSource, RetryableError, RetryingStream

    waits: list[float] = []
    cfg = RemoteReadConfig(initial_backoff_seconds=1.0, max_backoff_seconds=8.0)
    stream = RetryingStream(HttpSource("http://127.0.0.1:9/x", cfg), cfg, sleep=waits.append)
    try:
        for attempt in range(1, 7):
            stream._retry_wait(RetryableError("HTTP 503"), attempt)
        stream._retry_wait(RetryableError("HTTP 429", retry_after_seconds=5.0), 1)
        stream._retry_wait(RetryableError("HTTP 429", retry_after_seconds=500.0), 1)
    finally:
        stream.close()
    caps = [1, 2, 4, 8, 8, 8]
    assert all(0 <= w <= c for w, c in zip(waits, caps, strict=False))
    assert waits[-2] >= 5.0 and waits[-1] == 8.0  # Retry-After honoured, but capped


def test_s3_protocol_slowdown_and_cut_resume_with_ranged_get_object(monkeypatch):
    """boto3 GetObject against a loopback S3-style endpoint that throttles and cuts."""
    pytest.importorskip("boto3")
    key = "commoncrawl/crawl-data/CC-MAIN-2024-22/a.warc.gz"
    with FaultyFileServer({key: DATA}) as srv:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", srv.base_url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        srv.fail(key, "slowdown", "cut:600000", "slowdown", "cut:100000")
        got, raw = _read_all(f"s3://{key}")
        assert got == DATA
        assert [(s, st) for _, s, st in srv.requests] == [
            (0, 503),
            (0, 200),
            (600000, 503),
            (600000, 206),
            (700000, 206),
        ]
        assert raw.throttled == 2
        with pytest.raises(InputError, match="S3 404"):
            open_remote(f"s3://{key}.missing", config=FAST)


def test_streams_per_process_are_bounded():
    cfg = RemoteReadConfig(max_streams_per_process=1)
    with FaultyFileServer({"a": DATA, "b": DATA}) as srv:
        first = open_remote(srv.url("a"), config=cfg)
        opened = threading.Event()

        def second() -> None:
            with open_remote(srv.url("b"), config=cfg):
                opened.set()

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.3)
        assert not opened.is_set()  # waits for the slot
        first.close()
        t.join(timeout=10)
        assert opened.is_set()


def test_open_input_routes_urls_through_the_retrying_reader():
    with FaultyFileServer({"a": DATA}) as srv:
        srv.fail("a", "cut:1000")
        assert fs.read_bytes(srv.url("a")) == DATA


def test_env_config_is_validated(monkeypatch):
    monkeypatch.setenv("DATAPROC_REMOTE_MAX_FAILURES_WITHOUT_PROGRESS", "7")
    assert RemoteReadConfig.from_env().max_failures_without_progress == 7
    monkeypatch.setenv("DATAPROC_REMOTE_READ_TIMEOUT_SECONDS", "soon")
    with pytest.raises(ConfigError, match="DATAPROC_REMOTE_READ_TIMEOUT_SECONDS"):
        RemoteReadConfig.from_env()


# -- crawl listings ------------------------------------------------------------------------


def test_parse_shards():
    assert parse_shards("0:1000") == slice(0, 1000)
    assert parse_shards("5") == slice(5, 6)
    assert parse_shards(":10") == slice(None, 10)
    assert parse_shards("90:") == slice(90, None)
    assert parse_shards(None) == slice(None)
    for bad in ("a:b", "5:2", "1:2:3", "-1:4", "0:" + "9" * 10 + "x"):
        with pytest.raises(InputError, match="--shards"):
            parse_shards(bad)
    t = time.perf_counter()
    with pytest.raises(InputError):
        parse_shards("1" * 100_000 + ":" + "2" * 100_000 + "x")  # adversarial: still linear
    assert time.perf_counter() - t < 1.0


def test_parse_listing_rejects_absolute_and_parent_paths():
    assert parse_listing(gzip.compress(b"a/b.warc.gz\n\nc/d.warc.gz\n"), "x") == [
        "a/b.warc.gz",
        "c/d.warc.gz",
    ]
    for bad in (b"/etc/passwd\n", b"a/../../b\n", b"http://evil/x\n"):
        with pytest.raises(InputError, match="unexpected entry"):
            parse_listing(bad, "x")


def _crawl_files(n: int) -> tuple[dict[str, bytes], list[str]]:
    rel = [
        f"crawl-data/CC-MAIN-2024-22/segments/1715971057216.39/warc/CC-MAIN-2024-{i:05d}.warc.gz"
        for i in range(n)
    ]
    listing = gzip.compress(("\n".join(rel) + "\n").encode())
    return {"crawl-data/CC-MAIN-2024-22/warc.paths.gz": listing}, rel


def test_resolve_crawl_from_a_base_url():
    files, rel = _crawl_files(10)
    with FaultyFileServer(files) as srv:
        srv.fail("crawl-data/CC-MAIN-2024-22/warc.paths.gz", "503")  # retried
        urls = resolve_crawl("CC-MAIN-2024-22", "2:5", base=srv.base_url)
        assert urls == [f"{srv.base_url}/{p}" for p in rel[2:5]]
        assert len(resolve_crawl("CC-MAIN-2024-22", None, base=srv.base_url + "/")) == 10
        with pytest.raises(InputError, match="selects no file; the listing has 10"):
            resolve_crawl("CC-MAIN-2024-22", "10:20", base=srv.base_url)
        with pytest.raises(InputError, match="CC-MAIN-2023-50: cannot read its listing"):
            resolve_crawl("CC-MAIN-2023-50", None, base=srv.base_url)
    with pytest.raises(InputError, match="expected a Common Crawl id"):
        resolve_crawl("2024-22")


def test_cli_dry_run_with_crawl_and_shards(capsys, monkeypatch):
    import gzip

    from dataproc.cli import main

    files, rel = _crawl_files(4)
    # --crawl also reads the crawl's robots.txt listing (the consent step); none for these.
    files["crawl-data/CC-MAIN-2024-22/robotstxt.paths.gz"] = gzip.compress(b"")
    with FaultyFileServer(files) as srv:
        monkeypatch.setenv("DATAPROC_CRAWL_BASE_URL", srv.base_url)
        code = main(["run", "--crawl", "CC-MAIN-2024-22", "--shards", "1:3", "--dry-run"])
        out = capsys.readouterr().out
        assert code == 0
        assert "2 input file(s)" in out
        assert f"{srv.base_url}/{rel[1]}" in out and f"{srv.base_url}/{rel[2]}" in out
        assert rel[0] not in out and rel[3] not in out
        assert main(["crawl", "CC-MAIN-2024-22", "--shards", "3"]) == 0
        assert capsys.readouterr().out.split() == [f"{srv.base_url}/{rel[3]}"]
    assert main(["run", "--shards", "0:1", "--dry-run", "--input", "x"]) == 1
    assert "--shards needs --crawl" in capsys.readouterr().err


# -- the pipeline through the server -------------------------------------------------------


@pytest.fixture(scope="module")
def shard_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("remote-in")
    paths = write_shards(d, 3)
    files = {p.name: p.read_bytes() for p in paths}
    with FaultyFileServer(files) as srv:
        yield srv, paths


def _run(inputs: list[str], out: Path):
    from dataproc.config import build_config
    from dataproc.runner.driver import run_pipeline

    config = build_config({"inputs": inputs, "output": str(out), "execution": {"progress": "none"}})
    return run_pipeline(config)


@pytest.mark.ray
def test_pipeline_output_is_identical_through_throttling_and_cuts(
    ray_cluster, shard_server, tmp_path, monkeypatch
):
    srv, paths = shard_server
    urls = [srv.url(p.name) for p in paths]
    clean = _run(urls, tmp_path / "clean")
    assert clean.ok, clean.failures

    sizes = {p.name: p.stat().st_size for p in paths}
    for p in paths:
        srv.fail(
            p.name,
            "503",
            "slowdown",
            f"cut:{sizes[p.name] // 3}",
            "429",
            f"cut:{sizes[p.name] // 4}",
        )
    before = len(srv.requests)
    faulty = _run(urls, tmp_path / "faulty")
    assert faulty.ok, faulty.failures
    assert output_digest(tmp_path / "faulty") == output_digest(tmp_path / "clean")
    assert output_digest(tmp_path / "clean")  # not vacuous: there are token files
    assert any(k.startswith("tokens/") for k in output_digest(tmp_path / "clean"))
    served = srv.requests[before:]
    for p in paths:
        # Every file was resumed with a Range request at the byte where its connection was cut.
        starts = [s for name, s, st in served if name == p.name and st == 206]
        assert sizes[p.name] // 3 in starts, served

    # Each retry is in the shard's own log, with the byte offset it resumed at.
    from dataproc.logs import read_log

    warnings = [
        r["msg"]
        for log in sorted((tmp_path / "faulty" / "logs").glob("0*.log"))
        for r in read_log(str(log))
        if r["level"] == "WARNING"
    ]
    assert any("resuming at byte" in m and "HTTP 503" in m for m in warnings), warnings

    # The same shards read from local disk give the same documents and tokens.
    local = _run([str(p) for p in paths], tmp_path / "local")
    assert local.ok, local.failures
    assert _tokens(tmp_path / "local") == _tokens(tmp_path / "clean")


def _tokens(out: Path) -> list[tuple]:
    import pyarrow.dataset as pads

    t = pads.dataset(str(out / "tokens"), format="parquet").to_table()
    cols = [c for c in ("id", "url", "input_ids") if c in t.column_names]
    rows = t.select(cols).to_pylist()
    return sorted(tuple(str(r[c]) for c in cols) for r in rows)


@pytest.mark.skipif(os.environ.get("DATAPROC_SKIP_MOTO") == "1", reason="moto disabled")
def test_s3_reads_against_moto_server(monkeypatch):
    """A real S3 implementation (moto in server mode on 127.0.0.1): ranged reads and seeks."""
    pytest.importorskip("boto3")
    pytest.importorskip("moto.server")
    from _crawl_fixtures import moto_s3

    with moto_s3(monkeypatch) as client:
        client.create_bucket(Bucket="commoncrawl")
        client.put_object(Bucket="commoncrawl", Key="x/a.warc.gz", Body=DATA)
        got, _ = _read_all("s3://commoncrawl/x/a.warc.gz")
        assert got == DATA
        with open_remote("s3://commoncrawl/x/a.warc.gz", config=FAST) as f:
            f.seek(1_000_003)
            assert f.read(10) == DATA[1_000_003:1_000_013]
            assert f.seek(-5, os.SEEK_END) == len(DATA) - 5
            assert f.read() == DATA[-5:]
        with pytest.raises(InputError, match=r"NoSuchKey|404"):
            open_remote("s3://commoncrawl/x/missing.warc.gz", config=FAST)


def test_submit_builds_the_job_entrypoint_and_runtime_env(tmp_path):
    from dataproc.cli_cluster import build_entrypoint, build_runtime_env

    assert build_entrypoint(["--", "run", "--crawl", "CC-MAIN-2024-22", "-o", "s3://b/o x"]) == (
        "python -m dataproc run --crawl CC-MAIN-2024-22 -o 's3://b/o x'"
    )
    assert build_entrypoint(["--input", "a.warc.gz"]) == "python -m dataproc run --input a.warc.gz"
    env = build_runtime_env(str(tmp_path), {"DATAPROC_REMOTE_CHUNK_BYTES": "65536", "HOME": "/x"})
    assert env["working_dir"] == str(tmp_path) and ".git" in env["excludes"]
    assert env["env_vars"] == {"DATAPROC_REMOTE_CHUNK_BYTES": "65536"}
    with pytest.raises(ConfigError, match="--working-dir"):
        build_runtime_env(str(tmp_path / "missing"), {})
