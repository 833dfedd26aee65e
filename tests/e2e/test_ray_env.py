"""Only dataproc's own variables reach Ray's ``runtime_env``, never a credential (item 8).

Ray writes a job's runtime env in full to its session logs (world-readable under
``/tmp/ray``). The test runs a real local cluster with secrets in ``DATAPROC_*`` variables
and searches every file of that run's Ray session for them.
"""

from __future__ import annotations

import glob
import uuid
from pathlib import Path

import pytest

from dataproc.cli_cluster import build_runtime_env

from ._cli import RUN, cli_env, start_cli

SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCY" + uuid.uuid4().hex  # an AWS-secret-like value
PASSWORD = "pw" + uuid.uuid4().hex


def _env() -> dict[str, str]:
    return {
        "DATAPROC_S3_SECRET_ACCESS_KEY": SECRET,  # not a variable dataproc reads
        "DATAPROC_CRAWL_BASE_URL": f"https://user:{PASSWORD}@mirror.example/",  # ours, a secret
        "DATAPROC_REMOTE_CHUNK_BYTES": "65536",  # ours, harmless: forwarded
    }


def test_forwarded_by_name_without_credentials() -> None:
    from dataproc.runner.ray_runtime import forwarded_env

    assert forwarded_env(_env()) == {"DATAPROC_REMOTE_CHUNK_BYTES": "65536"}
    assert build_runtime_env(None, _env())["env_vars"] == {"DATAPROC_REMOTE_CHUNK_BYTES": "65536"}


@pytest.mark.ray
def test_no_secret_in_any_file_of_the_ray_session(tmp_path: Path, warcs: list[Path]) -> None:
    proc = start_cli("run", "-i", "in", "-o", "out", *RUN, cwd=tmp_path, env=cli_env(**_env()))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    sessions = glob.glob(f"/tmp/ray/session_*_{proc.pid}")
    assert len(sessions) == 1, sessions
    files = [p for p in Path(sessions[0]).rglob("*") if p.is_file() and not p.is_symlink()]
    logged = b"".join(p.read_bytes() for p in files if p.suffix in (".log", ".out", ".err"))
    assert b"DATAPROC_REMOTE_CHUNK_BYTES" in logged  # the runtime env is logged: the test sees it
    for p in files:
        data = p.read_bytes()
        assert SECRET.encode() not in data, p
        assert PASSWORD.encode() not in data, p
