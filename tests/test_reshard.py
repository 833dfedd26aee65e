"""reshard: same documents, N near-equal files, shuffled across inputs, deterministic, verifiable."""

from __future__ import annotations

import collections
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from _output_fixtures import make_output

from dataproc.config import OutputConfig
from dataproc.errors import OutputError
from dataproc.reshard import reshard
from dataproc.verify import verify_output

SIZES = [60, 0, 45, 80]


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp("src")
    make_output(str(d), SIZES, config=OutputConfig(row_group_rows=16))
    return str(d)


def _docs(out: str, manifest: dict) -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for f in manifest["files"]:
        t = pq.read_table(f"{out}/{f['path']}", columns=["id", "input_ids"])
        rows += list(
            zip(
                t.column("id").to_pylist(),
                map(tuple, t.column("input_ids").to_pylist()),
                strict=True,
            )
        )
    return rows


def test_reshard_keeps_every_document_once(src, tmp_path):
    from dataproc.io.manifest import read_manifest

    old = read_manifest(src)
    new = reshard(src, str(tmp_path / "new"), num_files=3, seed=1)
    assert new["totals"]["rows"] == old["totals"]["rows"]
    assert new["totals"]["tokens"] == old["totals"]["tokens"]
    assert [f["path"] for f in new["files"]] == [
        f"tokens/part-{k:06d}-0000.parquet" for k in range(3)
    ]
    before, after = _docs(src, old), _docs(str(tmp_path / "new"), new)
    assert collections.Counter(before) == collections.Counter(after)
    assert verify_output(str(tmp_path / "new")).ok
    assert not (tmp_path / "new" / "_reshard").exists()
    tokens = [f["tokens"] for f in new["files"]]
    assert max(tokens) - min(tokens) <= 2 * 300  # within a couple of documents (max 300 tokens)
    first = [i for i, _ in after[: new["files"][0]["rows"]]]
    assert len({i.split("-")[1] for i in first}) == 3  # mixes all non-empty inputs
    assert new["resharded_from"]["num_files"] == 3


def test_reshard_is_deterministic_and_seeded(src, tmp_path):
    a = reshard(src, str(tmp_path / "a"), num_files=2, seed=5)
    b = reshard(src, str(tmp_path / "b"), num_files=2, seed=5)
    c = reshard(src, str(tmp_path / "c"), num_files=2, seed=6)
    assert [f["sha256"] for f in a["files"]] == [f["sha256"] for f in b["files"]]
    assert [f["sha256"] for f in a["files"]] != [f["sha256"] for f in c["files"]]


def test_more_files_than_documents(tmp_path):
    make_output(str(tmp_path / "s"), [2])
    new = reshard(str(tmp_path / "s"), str(tmp_path / "d"), num_files=5)
    assert new["totals"]["rows"] == 2 and new["totals"]["files"] <= 2
    assert verify_output(str(tmp_path / "d")).ok


def test_refuses_non_empty_destination(src, tmp_path):
    reshard(src, str(tmp_path / "x"), num_files=1)
    with pytest.raises(OutputError, match="already holds"):
        reshard(src, str(tmp_path / "x"), num_files=1)
    with pytest.raises(OutputError, match="must be >= 1"):
        reshard(src, str(tmp_path / "y"), num_files=0)


@pytest.mark.ray
def test_reshard_on_ray_matches_local(src, tmp_path, ray_cluster):
    a = reshard(src, str(tmp_path / "local"), num_files=2, seed=3)
    b = reshard(src, str(tmp_path / "ray"), num_files=2, seed=3, use_ray=True)
    assert [f["sha256"] for f in a["files"]] == [f["sha256"] for f in b["files"]]


def test_reshard_keeps_per_row_group_counts_and_verify_checks_them(src, tmp_path):
    from dataproc.io.manifest import read_manifest, read_row_group_counts, write_manifest

    dst = str(tmp_path / "new")
    new = reshard(src, dst, num_files=2, seed=0)
    assert new["format_version"] == 2
    for f in new["files"]:
        rows, tokens = read_row_group_counts(dst, f["path"])
        assert (f["row_group_rows"], f["row_group_tokens"]) == (rows, tokens)
        assert sum(rows) == f["rows"] and sum(tokens) == f["tokens"]
    m = read_manifest(dst)
    m["files"][1]["row_group_tokens"][0] += 1
    m["files"][1]["row_group_tokens"][-1] -= 1  # file totals still right: only the split lies
    write_manifest(dst, m)
    problems = verify_output(dst).problems
    assert len(problems) == 1 and "per-row-group counts differ" in problems[0]


def test_only_ray_runtime_brings_ray_up():
    """``reshard --ray`` and every other Ray user get Ray from ``runner/ray_runtime.py`` (which
    binds a local cluster to 127.0.0.1 and reaps it): a bare ``import ray`` elsewhere would
    let ``ray.remote`` start a cluster on its own, on every interface."""
    import ast

    import dataproc

    root = Path(dataproc.__file__).parent
    importers = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import) and any(a.name == "ray" for a in node.names):
                importers.add(path.relative_to(root).as_posix())
    # live.py and logs.py only look up what a running session holds (actor, worker context).
    assert importers == {"runner/ray_runtime.py", "runner/live.py", "logs.py"}
