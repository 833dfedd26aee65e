"""A killed writer's temporary file never breaks ``verify`` (issue 13, item 9).

``fs.atomic_write`` writes ``.<name>.<uuid>.tmp`` beside its target and renames it; a worker
killed mid-write (phase 3 writing ``tokens/``) leaves that file behind. The next run (and the
run whose worker died, before it finalizes) sweeps them, holding the run lock.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from _crawl_fixtures import output_digest

from ._cli import RUN, run_cli, run_ok

pytestmark = pytest.mark.ray


def test_temp_files_of_killed_writers_are_swept(tmp_path: Path, warcs: list[Path]) -> None:
    out = tmp_path / "out"
    run_ok("run", "-i", "in", "-o", "out", *RUN, cwd=tmp_path)
    digest = output_digest(out)
    leftovers = [
        out / "tokens" / f".part-000001-0000.parquet.{uuid.uuid4().hex}.tmp",
        out / "rejects" / f".000001-dedup.parquet.{uuid.uuid4().hex}.tmp",
        out / "_work" / "done" / f".000001-phase3.json.{uuid.uuid4().hex}.tmp",
    ]
    for p in leftovers:
        p.write_bytes(b"PAR1 half a file")
    assert run_cli("verify", "out", cwd=tmp_path).returncode != 0  # what a user saw before

    run_ok("run", "-i", "in", "-o", "out", *RUN, cwd=tmp_path)
    assert not [p for p in leftovers if p.exists()]
    assert output_digest(out) == digest
    assert run_cli("verify", "out", cwd=tmp_path).returncode == 0
