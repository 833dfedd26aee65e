"""``dataproc remove``: take-downs after the fact — exact, idempotent, crash-safe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as pads
import pytest
from _output_fixtures import make_output

from dataproc.remove import remove_documents
from dataproc.training import TokenLoader
from dataproc.verify import verify_output

DOCS = [40, 25, 30]  # three inputs; urls https://example.com/{input}/{i}


def _rows(out: Path) -> dict[str, dict]:
    table = pads.dataset(str(out / "tokens"), format="parquet").to_table()
    return {r["id"]: r for r in table.to_pylist()}


@pytest.fixture()
def out(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    make_output(str(d), DOCS)
    assert verify_output(str(d)).ok
    return d


def _request(tmp_path: Path, name: str, lines: list[str]) -> Path:
    p = tmp_path / name
    p.write_text("# a take-down request\n" + "\n".join(lines) + "\n")
    return p


def test_removes_exactly_the_requested_documents(out: Path, tmp_path: Path) -> None:
    before = _rows(out)
    manifest_before = json.loads((out / "manifest.json").read_text())
    req = _request(tmp_path, "urls.txt", ["https://example.com/1/3", "https://example.com/1/7"])
    r = remove_documents(str(out), str(req), "urls")
    assert r.documents_removed == 2 and r.files_rewritten == ["tokens/part-000001-0000.parquet"]
    after = _rows(out)
    assert set(before) - set(after) == {"doc-1-3", "doc-1-7"}
    for doc_id, row in after.items():
        assert row == before[doc_id]  # every other row unchanged, value for value
    v = verify_output(str(out))
    assert v.ok, v.problems
    m = json.loads((out / "manifest.json").read_text())
    assert m["totals"]["rows"] == manifest_before["totals"]["rows"] - 2
    # Untouched files keep their exact bytes (same sha256 in the manifest).
    old = {f["path"]: f["sha256"] for f in manifest_before["files"]}
    new = {f["path"]: f["sha256"] for f in m["files"]}
    assert {p for p in old if old[p] != new[p]} == {"tokens/part-000001-0000.parquet"}
    (entry,) = m["removals"]
    assert entry["documents_removed"] == 2 and entry["request_sha256"] == r.request_sha256
    tomb = pads.dataset(str(out / entry["tombstones"]), format="parquet").to_table()
    assert sorted(tomb.column("id").to_pylist()) == ["doc-1-3", "doc-1-7"]


def test_same_request_twice_changes_nothing(out: Path, tmp_path: Path) -> None:
    req = _request(tmp_path, "ids.txt", ["doc-0-1", "doc-2-29"])
    remove_documents(str(out), str(req), "ids")
    snapshot = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    # Same entries, other order and comments: the same request.
    again = _request(tmp_path, "ids2.txt", ["doc-2-29", "", "doc-0-1"])
    r = remove_documents(str(out), str(again), "ids")
    assert r.already_applied
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == snapshot


def test_domains_match_subdomains_and_can_empty_a_file(tmp_path: Path) -> None:
    from _output_fixtures import make_docs

    out = tmp_path / "o"
    make_output(str(out), [5, 5])
    req = _request(tmp_path, "d.txt", ["EXAMPLE.com"])
    r = remove_documents(str(out), str(req), "domains")
    assert r.documents_removed == 10 and len(r.files_emptied) == 2
    assert not list((out / "tokens").glob("*.parquet"))
    assert make_docs(0, 1)[0].url.startswith("https://example.com/")


def test_crash_before_commit_leaves_previous_output(out: Path, tmp_path: Path, monkeypatch) -> None:
    import dataproc.remove as rm

    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    def boom(*a, **k):
        raise RuntimeError("killed")

    monkeypatch.setattr(rm, "_updated_manifest", boom)
    req = _request(tmp_path, "u.txt", ["https://example.com/0/0"])
    with pytest.raises(RuntimeError):
        remove_documents(str(out), str(req), "urls")
    after = {
        p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and "_work" not in p.parts
    }
    assert after == before
    assert verify_output(str(out)).ok
    monkeypatch.undo()
    assert remove_documents(str(out), str(req), "urls").documents_removed == 1
    assert verify_output(str(out)).ok


def test_crash_after_commit_is_rolled_forward(out: Path, tmp_path: Path, monkeypatch) -> None:
    import dataproc.remove as rm

    real = rm._roll_forward
    monkeypatch.setattr(rm, "_roll_forward", lambda *a: None)  # "crash" right after COMMIT
    req = _request(tmp_path, "u.txt", ["https://example.com/2/5"])
    remove_documents(str(out), str(req), "urls")
    v = verify_output(str(out))
    assert not v.ok and any("committed but not finished" in p for p in v.problems)
    monkeypatch.setattr(rm, "_roll_forward", real)
    other = _request(tmp_path, "other.txt", ["https://nowhere.example/"])
    remove_documents(str(out), str(other), "urls")  # any remove finishes the pending one first
    assert verify_output(str(out)).ok
    assert "doc-2-5" not in _rows(out)


def test_loader_never_sees_removed_documents(out: Path, tmp_path: Path) -> None:
    req = _request(tmp_path, "ids.txt", [f"doc-0-{i}" for i in range(40)])
    remove_documents(str(out), str(req), "ids")
    loader = TokenLoader(str(out), seq_len=64, rank=0, world_size=1, seed=0)
    kept = _rows(out)
    # The loader's stream is exactly the surviving documents' tokens: input 0's are gone.
    assert loader.total_tokens == sum(r["num_tokens"] for r in kept.values())
    assert not any(doc_id.startswith("doc-0-") for doc_id in kept)
    assert json.loads((out / "manifest.json").read_text())["totals"]["files"] == 2


def test_cli_one_line_errors_and_dry_run(out: Path, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dataproc", "remove", *args],
            capture_output=True,
            text=True,
            check=False,
        )

    p = cli(str(out), "--urls", str(tmp_path / "missing.txt"))
    assert (
        p.returncode != 0 and "no such file" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    )
    req = _request(tmp_path, "u.txt", ["https://example.com/0/1"])
    p = cli(str(out), "--urls", str(req), "--ids", str(req))
    assert p.returncode != 0 and "exactly one" in p.stderr
    p = cli(str(out), "--urls", str(req), "--dry-run")
    assert p.returncode == 0 and "would remove 1 document" in p.stdout
    assert "removals" not in json.loads((out / "manifest.json").read_text())
