"""A rerun trusts files, not done-markers (issue 13, item 4).

Files of a finished output are deleted or corrupted between runs; the rerun redoes exactly the
units whose files are damaged (counted from the shard logs' ``start`` lines), and the result is
byte-identical to the clean run and passes ``verify``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _crawl_fixtures import executions, manifest_core, output_digest

from ._cli import RUN, one_line_error, run_cli, run_ok

pytestmark = pytest.mark.ray


def _index(name: str) -> int:
    """The input index in ``part-000001-0000.parquet`` / ``000001-filter.parquet``."""
    return int(name.removeprefix("part-").split("-", 1)[0])


def test_rerun_redoes_exactly_the_units_with_missing_or_corrupt_files(
    tmp_path: Path, warcs: list[Path]
) -> None:
    out = tmp_path / "out"
    run_ok("run", "-i", "in", "-o", "out", *RUN, cwd=tmp_path)
    digest, core = output_digest(out), manifest_core(out)
    parts = sorted((out / "tokens").glob("part-*.parquet"))
    assert len({_index(p.name) for p in parts}) >= 2, parts

    deleted, flipped = parts[0], next(p for p in parts if _index(p.name) != _index(parts[0].name))
    other = next(i for i in range(3) if i not in (_index(deleted.name), _index(flipped.name)))

    # A token file (phase 3) and a rejects file (phase 1) deleted: sizes are always checked.
    deleted.unlink()
    (out / "rejects" / f"{other:06d}-filter.parquet").unlink()
    run_ok("run", "-i", "in", "-o", "out", *RUN, cwd=tmp_path)
    assert output_digest(out) == digest
    assert manifest_core(out) == core
    assert executions(out, "tokenize") == {i: 1 + (i == _index(deleted.name)) for i in range(3)}
    assert executions(out, "filter") == {i: 1 + (i == other) for i in range(3)}

    # One byte flipped in another token file (same size): --verify compares sha256.
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    run_ok("run", "-i", "in", "-o", "out", "--verify", *RUN, cwd=tmp_path)
    assert output_digest(out) == digest
    assert manifest_core(out) == core
    redone = {_index(deleted.name), _index(flipped.name)}
    assert executions(out, "tokenize") == {i: 1 + (i in redone) for i in range(3)}
    assert run_cli("verify", "out", cwd=tmp_path).returncode == 0


def test_a_rerun_never_brings_back_documents_taken_out_by_remove(
    tmp_path: Path, warcs: list[Path]
) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    run_ok("run", "-i", "in", "-o", "out", *RUN, cwd=tmp_path)
    part = sorted((out / "tokens").glob("part-*.parquet"))[0]
    url = pq.read_table(part, columns=["url"]).column("url")[0].as_py()
    (tmp_path / "urls.txt").write_text(url + "\n")
    run_ok("remove", "out", "--urls", "urls.txt", cwd=tmp_path)
    before = output_digest(out)
    proc = run_cli("run", "-i", "in", "-o", "out", *RUN, cwd=tmp_path)
    one_line_error(proc, "taken out by `dataproc remove`", "would bring removed documents back")
    assert output_digest(out) == before
