"""What protects a Ray cluster, checked against real ``ray start --head`` clusters on loopback.

Each head is started the way deploy/ starts one (``RAY_AUTH_MODE`` and the token in place
before ``ray start``), on 127.0.0.1 with its own ports and temp dir, and stopped by
the test (its process group). Clients run in subprocesses: Ray's auth mode is per process and
the test session has its own local cluster.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests

from dataproc.runner.ray_auth import dashboard_auth_mode

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).with_name("ray")
# Ray's dashboard HTTP server (and job API) needs `ray[default]` (pip install 'dataproc[cluster]');
# a minimal Ray runs without one.
HAS_DASHBOARD = all(
    importlib.util.find_spec(m) for m in ("aiohttp_cors", "grpc", "prometheus_client")
)
needs_dashboard = pytest.mark.skipif(
    not HAS_DASHBOARD, reason="Ray's dashboard needs ray[default]: pip install 'dataproc[cluster]'"
)
AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment without any Ray auth setting, HOME elsewhere (no ~/.ray/auth_token)."""
    env = {k: v for k, v in os.environ.items() if k not in AUTH_VARS}
    env.update(
        HOME=str(home),
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # keep every Ray server on loopback
        RAY_USAGE_STATS_ENABLED="0",
    )
    env.update(extra)
    return env


@dataclass
class Head:
    gcs: str
    dashboard: str
    token: str | None
    home: Path
    pid: int  # the `ray start --block` process: every server of the head descends from it


def _kill_tree(proc: subprocess.Popen[bytes], temp_dir: str) -> None:
    """Stop the head we started: its process group, then anything left that runs from its dir."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            break
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if temp_dir in " ".join(p.info["cmdline"] or []):
                p.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue


@pytest.fixture(scope="module", params=["token", "plain"])
def head(request: pytest.FixtureRequest) -> Iterator[Head]:
    """A head with token auth set up as deploy/ does, or a plain ``ray start --head``.

    "plain" is what the deploy files did before: no RAY_AUTH_MODE and no token anywhere, which
    in Ray 2.60 means no auth at all (the test asserts the cluster says so).
    """
    token = secrets.token_hex(16) if request.param == "token" else None
    temp_dir = tempfile.mkdtemp(prefix="rauth")  # short: Ray's unix socket paths are limited
    home = Path(temp_dir) / "home"
    home.mkdir()
    gcs_port, dash_port = _free_port(), _free_port()
    extra = {}
    if token:
        # The head reads a token file, as deploy/aws-cluster.yaml's nodes do; clients below
        # pass RAY_AUTH_TOKEN, as KubeRay's containers do: both of Ray's token sources.
        extra["RAY_AUTH_MODE"] = "token"
        token_file = Path(temp_dir) / "token" / "auth_token"
        token_file.parent.mkdir()
        token_file.write_text(token)
        extra["RAY_AUTH_TOKEN_PATH"] = str(token_file)
    env = _clean_env(home, **extra)
    cmd = [
        str(RAY), "start", "--head", "--block", "--disable-usage-stats",
        "--node-ip-address=127.0.0.1", f"--port={gcs_port}",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dash_port}",
        f"--dashboard-agent-listen-port={_free_port()}",
        f"--dashboard-agent-grpc-port={_free_port()}",
        f"--runtime-env-agent-port={_free_port()}",
        f"--metrics-export-port={_free_port()}",
        "--num-cpus=1", f"--object-store-memory={100 * 1024 * 1024}",
        f"--temp-dir={temp_dir}",
    ]  # fmt: skip
    log = open(Path(temp_dir) / "ray-start.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    dashboard = f"http://127.0.0.1:{dash_port}"
    try:
        deadline = time.monotonic() + 180
        while b"Ray runtime started" not in (Path(temp_dir) / "ray-start.log").read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                text = (Path(temp_dir) / "ray-start.log").read_text(errors="replace")
                pytest.fail(f"ray start --head did not come up:\n{text[-3000:]}")
            time.sleep(1)
        if HAS_DASHBOARD:  # the HTTP server comes up after `ray start` returns
            while dashboard_auth_mode(dashboard, timeout=2) is None:
                assert time.monotonic() < deadline, "the dashboard never answered"
                time.sleep(1)
        yield Head(f"127.0.0.1:{gcs_port}", dashboard, token, home, proc.pid)
    finally:
        _kill_tree(proc, temp_dir)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _python(
    code: str, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout
    )


JOIN = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(message)s")
from dataproc.config import ExecutionConfig
from dataproc.runner.ray_runtime import ray_session
with ray_session(ExecutionConfig(address=sys.argv[1] if len(sys.argv) > 1 else {addr!r})) as ray:
    print("CPUS", ray.cluster_resources().get("CPU"))
"""


def test_the_head_listens_on_loopback_only(head: Head) -> None:
    procs = psutil.Process(head.pid).children(recursive=True)
    pids = {head.pid, *(p.pid for p in procs)}
    listeners = [
        c
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]
    assert len(listeners) >= 3, "found too few listeners: the check itself is broken"
    for c in listeners:
        ip = ipaddress.ip_address(c.laddr.ip)
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        assert ip.is_loopback, f"pid {c.pid} listens on {c.laddr.ip}:{c.laddr.port}"


@needs_dashboard
def test_the_dashboard_says_whether_the_head_requires_a_token(head: Head) -> None:
    expected = "token" if head.token else "disabled"
    assert dashboard_auth_mode(head.dashboard) == expected
    # and means it: the job API without a token
    status = requests.get(head.dashboard + "/api/jobs/", timeout=10).status_code
    assert (status == 401) if head.token else (status == 200)


def test_joining_says_whether_auth_is_on(head: Head) -> None:
    """dataproc run --address ...: start-up says what protects the cluster it joined."""
    if head.token:
        env = _clean_env(head.home, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=head.token)
        expected = f"INFO Ray cluster at {head.gcs}: token auth on (the cluster requires a token)"
    else:
        env = _clean_env(head.home)
        expected = f"WARNING Ray cluster at {head.gcs}: token auth OFF — this client sent no token"
    out = _python(JOIN.format(addr=head.gcs), env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "CPUS 1.0" in out.stdout
    assert expected in out.stdout, out.stdout


def test_a_token_client_is_told_when_the_cluster_does_not_check_it(head: Head) -> None:
    """A client in token mode is let into any cluster: the cluster itself must be asked."""
    if head.token:
        pytest.skip("the token cluster is covered above")
    env = _clean_env(head.home, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    out = _python(JOIN.format(addr=head.gcs), env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"WARNING Ray cluster at {head.gcs}: token auth OFF on the cluster" in out.stdout


def test_joining_a_token_cluster_without_the_token_fails(head: Head) -> None:
    if not head.token:
        pytest.skip("only a token cluster refuses")
    env = _clean_env(head.home, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="not-" + head.token)
    out = _python(JOIN.format(addr=head.gcs), env, timeout=300)
    assert out.returncode != 0
    assert "CPUS" not in out.stdout
    assert "uthentication" in out.stdout + out.stderr, out.stderr[-2000:]


SUBMIT_CHECK = """
import sys
from dataproc.errors import ConfigError
from dataproc.runner.ray_auth import prepare_job_api_auth
try:
    print(prepare_job_api_auth(sys.argv[1]))
except ConfigError as e:
    print("ERROR", e)
    sys.exit(3)
from ray.job_submission import JobSubmissionClient
print("JOBS", len(JobSubmissionClient(sys.argv[1]).list_jobs()))
"""


@needs_dashboard
def test_submit_sends_the_token_when_the_job_api_requires_one(head: Head) -> None:
    """dataproc submit: says whether the job API requires a token, and sends it if so."""
    env = _clean_env(head.home, **({"RAY_AUTH_TOKEN": head.token} if head.token else {}))
    out = subprocess.run(
        [sys.executable, "-c", SUBMIT_CHECK, head.dashboard],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    if head.token:
        assert "token auth on (sending this machine's token)" in out.stdout
    else:
        assert "token auth OFF" in out.stdout
    assert re.search(r"^JOBS \d+$", out.stdout, re.M)  # a real call to the job API went through


@needs_dashboard
def test_submit_without_a_token_fails_in_one_line(head: Head) -> None:
    if not head.token:
        pytest.skip("only a token cluster refuses")
    out = subprocess.run(
        [sys.executable, "-c", SUBMIT_CHECK, head.dashboard],
        env=_clean_env(head.home), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 3, out.stdout + out.stderr
    assert "requires a token (token auth on) and this machine has none" in out.stdout


LOCAL = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(message)s")
from dataproc.config import ExecutionConfig
from dataproc.runner.ray_runtime import ray_session
with ray_session(ExecutionConfig(workers=1, object_store_memory=100 * 1024 * 1024)) as ray:
    print("CPUS", ray.cluster_resources().get("CPU"))
"""


def test_a_local_cluster_says_loopback_and_token_auth(tmp_path: Path) -> None:
    """dataproc run without an address: a loopback-only cluster, and Ray 2.60 turns auth on."""
    out = _python(LOCAL, _clean_env(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert (
        "INFO local Ray cluster: every Ray server listens on 127.0.0.1 only "
        "(unreachable from other machines); Ray token auth on"
    ) in out.stdout, out.stdout


def test_local_auth_off_is_said_too(tmp_path: Path) -> None:
    """RAY_AUTH_MODE=disabled: Ray's own config API says off, and so does the start-up line."""
    code = "from dataproc.runner.ray_auth import describe_local_cluster as d; print(d())"
    out = _python(code, _clean_env(tmp_path, RAY_AUTH_MODE="disabled"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("Ray token auth off (RAY_AUTH_MODE=disabled)")
