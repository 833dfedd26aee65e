"""The whole pipeline through a real local Ray cluster on generated WARCs with known truth."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from dataproc.config import build_config
from dataproc.runner.driver import run_pipeline
from dataproc.runner.phases import Phase
from dataproc.sample import write_sample_warcs
from dataproc.stages.tokenize import load_encoding

pytestmark = pytest.mark.ray


def _tree_digest(out: Path) -> dict[str, str]:
    """sha256 of every output file that must be deterministic."""
    digests = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if (
            p.is_dir()
            or rel.startswith(("_work/", "logs/"))
            or rel in ("manifest.json", "stats.json", "report.html")
        ):
            continue
        digests[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return digests


def _manifest_without_timings(out: Path) -> dict:
    m = json.loads((out / "manifest.json").read_text())
    m.pop("timings")
    return m


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    d = tmp_path_factory.mktemp("sample-in")
    return write_sample_warcs(str(d), num_files=2, seed=0)


@pytest.fixture(scope="module")
def first_run(ray_cluster, sample, tmp_path_factory):
    paths, truth = sample
    out = tmp_path_factory.mktemp("run1") / "out"
    config = build_config(
        {
            "inputs": paths,
            "output": str(out),
            "write": {"keep_text": True},
            "execution": {"progress": "none"},
        }
    )
    result = run_pipeline(config)
    return config, result, out, truth


def test_run_succeeds(first_run):
    _, result, out, _ = first_run
    assert result.ok, result.failures
    assert (out / "manifest.json").exists() and (out / "stats.json").exists()


def test_exact_survivors(first_run):
    _, _, out, truth = first_run
    table = pads.dataset(str(out / "tokens"), format="parquet").to_table()
    got = sorted(table.column("id").to_pylist())
    want = sorted(p.record_id for p in truth.kept())
    assert got == want


def test_every_dropped_page_has_a_reject_with_the_expected_stage(first_run):
    _, _, out, truth = first_run
    rejects = pads.dataset(str(out / "rejects"), format="parquet").to_table().to_pylist()
    by_id = {r["id"]: r for r in rejects}
    for page in truth.pages:
        if page.expected == "kept":
            assert page.record_id not in by_id, (page.url, by_id.get(page.record_id))
        else:
            assert page.record_id in by_id, f"{page.url} ({page.kind}) left no reject"
            assert by_id[page.record_id]["stage"] == page.expected, (
                page.url,
                by_id[page.record_id],
            )


def test_tokens_decode_to_scrubbed_text_and_end_with_eot(first_run):
    config, _, out, truth = first_run
    enc = load_encoding(config.tokenizer)
    planted = {p.record_id: p for p in truth.pages}
    for f in sorted((out / "tokens").glob("*.parquet")):
        t = pq.read_table(f)
        assert t.schema.field("input_ids").type.value_type.bit_width == 32
        for row in t.to_pylist():
            ids = row["input_ids"]
            assert ids[-1] == enc.eot_token
            assert enc.eot_token not in ids[:-1]
            assert row["num_tokens"] == len(ids)
            assert enc.decode(ids[:-1]) == row["text"]
            page = planted[row["id"]]
            for kind, n in page.pii.items():
                if n:
                    placeholder = {
                        "email": "<EMAIL>",
                        "ip": "<IP_ADDRESS>",
                        "phone": "<PHONE>",
                        "card": "<CARD_NUMBER>",
                        "iban": "<IBAN>",
                    }[kind]
                    assert row["text"].count(placeholder) >= n, (row["url"], kind)
            assert "@" not in row["text"] or "<EMAIL>" in row["text"]


def test_stats_add_up(first_run):
    _, _, out, truth = first_run
    stats = json.loads((out / "stats.json").read_text())
    stages = stats["stages"]
    for s in stages:
        assert s["docs_in"] == s["docs_out"] + s["docs_dropped"], s
    # each stage feeds the next
    chain = [s for s in stages if s["name"] not in ("read",)]
    read = stages[0]
    assert read["name"] == "read"
    prev = read["docs_out"]
    for s in chain:
        assert s["docs_in"] == prev, (s["name"], s["docs_in"], prev)
        prev = s["docs_out"]
    m = json.loads((out / "manifest.json").read_text())
    assert m["totals"]["rows"] == prev == len(truth.kept())


def test_manifest_checksums(first_run):
    _, _, out, _ = first_run
    m = json.loads((out / "manifest.json").read_text())
    assert m["files"], "no token files"
    for f in m["files"]:
        data = (out / f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"]
        assert len(data) == f["bytes"]
        assert pq.read_metadata(out / f["path"]).num_rows == f["rows"]
    assert m["tokenizer"]["name"] == "cl100k_base"


def test_rerun_reuses_everything_and_changes_nothing(first_run):
    config, _, out, _ = first_run
    before = _tree_digest(out)
    manifest_before = _manifest_without_timings(out)
    result = run_pipeline(config)
    assert result.ok
    assert result.executed.get(Phase.FILTER) == 0 and result.executed.get(Phase.TOKENIZE) == 0
    assert _tree_digest(out) == before
    assert _manifest_without_timings(out) == manifest_before


def test_one_worker_gives_byte_identical_output(first_run, tmp_path):
    config, _, out, _ = first_run
    other = build_config(
        {**config.model_dump(mode="json"), "output": str(tmp_path / "serial")}
        | {"execution": {"progress": "none", "cpus_per_task": 2}}
    )
    result = run_pipeline(other)
    assert result.ok
    assert _tree_digest(tmp_path / "serial") == _tree_digest(out)
    a, b = _manifest_without_timings(tmp_path / "serial"), _manifest_without_timings(out)
    assert a == b


def test_changed_config_refuses_to_mix(first_run):
    from dataproc.errors import OutputError

    config, _, out, _ = first_run
    changed = build_config({**config.model_dump(mode="json")}, ["langid.min_score=0.9"])
    with pytest.raises(OutputError, match="different config"):
        run_pipeline(changed)
    assert os.path.exists(out / "manifest.json")


def test_multilingual_pipeline_keeps_every_language(ray_cluster, sample, tmp_path):
    from dataproc.config import load_config

    paths, truth = sample
    config = load_config("pipelines/multilingual.yaml", ["execution.progress=none"])
    config = config.model_copy(update={"inputs": paths, "output": str(tmp_path / "multi")})
    result = run_pipeline(config)
    assert result.ok, result.failures
    table = pads.dataset(str(tmp_path / "multi" / "tokens"), format="parquet").to_table()
    got = dict(
        zip(table.column("id").to_pylist(), table.column("language").to_pylist(), strict=True)
    )
    foreign = ("kept", "langid", "prefilter")  # the English gate is off for every language
    want = {p.record_id: p.language for p in truth.pages if p.expected in foreign}
    assert got == want
    manifest = json.loads((tmp_path / "multi" / "manifest.json").read_text())
    assert manifest["tokenizer"]["name"] == "o200k_base"
    assert max(max(ids) for ids in table.column("input_ids").to_pylist()) > 65535


def test_a_part_left_by_an_earlier_generation_is_removed(first_run):
    # An earlier phase-3 run (older dedup generation) recorded one more part than this one
    # will write: the leftover must go, or every Parquet reader would read it.
    config, _, out, _ = first_run
    before = _tree_digest(out)
    marker = out / "_work" / "done" / "000000-phase3.json"
    m = json.loads(marker.read_text())
    stale = "tokens/part-000000-0999.parquet"
    (out / stale).write_bytes((out / m["files"][0]["path"]).read_bytes())
    m["files"].append(dict(m["files"][0], path=stale))
    m["generation"] = "older"
    marker.write_text(json.dumps(m))
    result = run_pipeline(config)
    assert result.ok and result.executed.get(Phase.TOKENIZE) == 1
    assert not (out / stale).exists()
    assert _tree_digest(out) == before


def test_dedup_against_an_earlier_slice_keeps_what_one_run_keeps(first_run, tmp_path):
    """Slice 1 alone, then slice 2 --dedup-against it: the same documents as one run."""
    config, _, out, _ = first_run
    base = config.model_dump(mode="json")
    one = build_config({**base, "inputs": config.inputs[:1], "output": str(tmp_path / "s1")})
    assert run_pipeline(one).ok
    two = build_config(
        {**base, "inputs": config.inputs[1:], "output": str(tmp_path / "s2")},
        [f"dedup.against=[{tmp_path / 's1'}]"],
    )
    result = run_pipeline(two)
    assert result.ok, result.failures

    def ids(folder) -> list[str]:
        table = pads.dataset(str(folder / "tokens"), format="parquet").to_table()
        return table.column("id").to_pylist()

    assert sorted(ids(tmp_path / "s1") + ids(tmp_path / "s2")) == sorted(ids(out))
    removed = pq.read_table(tmp_path / "s2" / "_work" / "dedup" / "removed" / "000000.parquet")
    assert 0 in removed.column("kept_source").to_pylist()  # removed for slice 1's documents


def test_dedup_against_refuses_a_foreign_folder_or_other_settings(first_run, tmp_path):
    from dataproc.errors import DedupError

    config, _, out, _ = first_run
    base = {**config.model_dump(mode="json"), "output": str(tmp_path / "x")}
    (tmp_path / "foreign").mkdir()
    with pytest.raises(DedupError, match="not a dataproc output"):
        run_pipeline(build_config(base, [f"dedup.against=[{tmp_path / 'foreign'}]"]))
    with pytest.raises(DedupError, match=r"settings differ \(ngram 5 != 4\)"):
        run_pipeline(build_config(base, [f"dedup.against=[{out}]", "dedup.ngram=4"]))
    assert not (tmp_path / "x").exists()  # refused before any work


def test_phase2_split_into_many_tasks_gives_byte_identical_output(first_run, tmp_path, monkeypatch):
    """Many bucket tasks and distributed star rounds (forced) write the same output."""
    import dataproc.dedup.clusters as clusters

    config, _, out, _ = first_run
    # The driver sizes phase 2 from this estimate: a huge one forces several node ranges.
    monkeypatch.setattr(clusters, "EDGE_ROW_BYTES", 1 << 26)
    other = build_config(
        {**config.model_dump(mode="json"), "output": str(tmp_path / "split")},
        ["dedup.num_buckets=7"],
    )
    result = run_pipeline(other)
    assert result.ok, result.failures
    stats = json.loads((tmp_path / "split" / "stats.json").read_text())
    assert stats["dedup"]["tasks"]["buckets"] == 7
    assert stats["dedup"]["tasks"]["star_rounds"] >= 1
    assert _tree_digest(tmp_path / "split") == _tree_digest(out)
