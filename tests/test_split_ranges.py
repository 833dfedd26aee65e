"""One file read in byte ranges by several tasks gives exactly what one task gives.

Most tests drive the range and merge functions directly (no Ray) on a generated sample shard
and compare every phase-1 file byte for byte with a whole-file run: any number of ranges,
boundaries that are no member start, damage at a boundary, a second warcinfo, a remote file.
The Ray tests run the whole pipeline split and resume a run that lost one range.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from warc_builder import WarcBuilder

from dataproc.config import PipelineConfig, build_config
from dataproc.io.layout import OutputLayout
from dataproc.io.markers import FilterMarker
from dataproc.readers.spans import ReaderState, split_points
from dataproc.runner.phase1 import run_phase1
from dataproc.runner.ranges import Span, head_state, merge_ranges, run_range
from dataproc.sample import write_sample_warcs


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("split-in")
    paths, _ = write_sample_warcs(str(d), num_files=1, seed=3)
    return Path(paths[0])


def member_starts(data: bytes) -> list[int]:
    """Offsets of the gzip members of a per-record .warc.gz."""
    starts, pos = [], 0
    while pos < len(data):
        starts.append(pos)
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        d.decompress(data[pos:])
        pos = len(data) - len(d.unused_data)
    return starts


def _config(path: Path | str, out: Path) -> PipelineConfig:
    return build_config({"inputs": [str(path)], "output": str(out)})


def _files(out: Path) -> dict[str, str]:
    layout = OutputLayout(str(out))
    paths = {
        "docs": layout.docs(0),
        "rejects": layout.rejects(0, "filter"),
        "bands": layout.bands(0),
    }
    return {k: hashlib.sha256(Path(p).read_bytes()).hexdigest() for k, p in paths.items()}


def _result(marker: FilterMarker) -> dict[str, Any]:
    """A marker's JSON without what may differ between runs (timings)."""
    r = marker.to_json()
    keep = {k: v for k, v in r.items() if k not in ("seconds", "outputs")}
    keep["stats"] = [{k: v for k, v in s.items() if "seconds" not in k} for s in r["stats"]]
    return keep


def whole(path: Path | str, out: Path) -> dict[str, Any]:
    return _result(run_phase1(str(path), 0, _config(path, out), str(out)))


def split(path: Path | str, out: Path, spans: list[Span]) -> dict[str, Any]:
    config = _config(path, out)
    for k, span in enumerate(spans):
        state = ReaderState() if k == 0 else head_state(str(path), 0, config, spans[0][1])
        run_range(str(path), 0, k, span, state, config, str(out))
    return _result(merge_ranges(str(path), 0, spans, config, str(out)))


def spans_of(points: list[int]) -> list[Span]:
    bounds: list[int | None] = [0, *points, None]
    return [(int(bounds[i] or 0), bounds[i + 1]) for i in range(len(bounds) - 1)]


def assert_same(path: Path | str, tmp_path: Path, spans: list[Span]) -> dict[str, Any]:
    a = whole(path, tmp_path / "whole")
    b = split(path, tmp_path / "split", spans)
    assert b == a
    assert _files(tmp_path / "split") == _files(tmp_path / "whole")
    return a


def test_split_points_are_member_starts_and_only_cut_member_chains(shard, tmp_path):
    data = shard.read_bytes()
    starts = member_starts(data)
    with open(shard, "rb") as f:
        points = split_points(f, len(data), 5)
    assert len(points) == 4 and set(points) <= set(starts)
    # each is the first member start at or after its nominal offset
    nominal = [int(k * len(data) / 5) for k in range(1, 5)]
    assert points == [min(s for s in starts if s >= n) for n in nominal]

    import zstandard

    plain = gzip.decompress(data)
    single = gzip.compress(plain)
    for other in (plain, single, zstandard.ZstdCompressor().compress(plain)):
        p = tmp_path / "other.warc.gz"
        p.write_bytes(other)
        with open(p, "rb") as f:
            assert split_points(f, len(other), 5) == []


@pytest.mark.parametrize("ranges", [1, 2, 7, "every 4th member"])
def test_any_number_of_ranges_gives_the_files_of_one_task(shard, tmp_path, ranges):
    data = shard.read_bytes()
    if ranges == "every 4th member":  # dozens of ranges, some with a single page
        points = member_starts(data)[1::4]
        assert len(points) > 20
    else:
        with open(shard, "rb") as f:
            points = split_points(f, len(data), int(ranges))
        assert len(points) == ranges - 1
    result = assert_same(shard, tmp_path, spans_of(points))
    assert result["docs_kept"] > 10  # not vacuous


def test_a_boundary_that_is_no_member_start_is_read_again(shard, tmp_path, caplog):
    starts = member_starts(shard.read_bytes())
    # Range 0 ends inside member 10 (it reads to member 11); range 1 claims to start at 20.
    spans: list[Span] = [(0, starts[10] + 7), (starts[20], starts[30]), (starts[30], None)]
    with caplog.at_level("WARNING", logger="dataproc"):
        assert_same(shard, tmp_path, spans)
    assert "reading it again" in caplog.text


def _corrupt(data: bytes, starts: list[int], i: int) -> bytes:
    """Flip bytes in the middle of member ``i``."""
    end = starts[i + 1] if i + 1 < len(starts) else len(data)
    mid = (starts[i] + end) // 2
    bad = bytearray(data)
    for j in range(mid, min(mid + 8, end)):
        bad[j] ^= 0x5A
    return bytes(bad)


@pytest.mark.parametrize("which", ["before", "at", "truncated before"])
def test_damage_at_a_boundary_is_counted_once(shard, tmp_path, which):
    data = shard.read_bytes()
    starts = member_starts(data)
    b = 12
    path = tmp_path / "bad.warc.gz"
    if which == "truncated before":
        # Member b-1 loses its second half: zlib reads on into the next members until it
        # fails, the reader resyncs from its start and finds member b at the boundary.
        cut = starts[b] - (starts[b] - starts[b - 1]) // 2
        path.write_bytes(data[:cut] + data[starts[b] :])
        spans: list[Span] = [(0, cut), (cut, None)]
    else:
        path.write_bytes(_corrupt(data, starts, b - 1 if which == "before" else b))
        spans = [(0, starts[b]), (starts[b], None)]
    result = assert_same(path, tmp_path, spans)
    read = next(s for s in result["stats"] if s["name"] == "read")
    kind = "truncated_member" if which.startswith("truncated") else "corrupt_member"
    assert read["counters"].get("corrupt_member", 0) + read["counters"].get(kind, 0) >= 1


def test_a_second_warcinfo_naming_another_crawl(shard, tmp_path):
    """Two files concatenated: the second range starts in the first file's crawl state."""
    data = shard.read_bytes()
    other = (
        WarcBuilder()
        .warcinfo(is_part_of="CC-MAIN-2099-01")
        .response("http://other.example/", "<html><body>" + "Words here. " * 80 + "</body></html>")
        .build(gzip=True)
    )
    path = tmp_path / "two.warc.gz"
    path.write_bytes(data + other + data)
    starts = member_starts(path.read_bytes())
    n = len(member_starts(data))
    spans: list[Span] = [
        (0, starts[n // 2]),
        (starts[n // 2], starts[n + 1]),
        (starts[n + 1], None),
    ]
    assert_same(path, tmp_path, spans)


def test_a_wet_file_in_ranges(shard, tmp_path):
    """WET: conversion records are the documents (decided by the file's first page record,
    which every range starts knowing)."""
    b = WarcBuilder().warcinfo(is_part_of="CC-MAIN-2024-22")
    words = "The committee met on Tuesday to discuss the new library budget and its plans. "
    for i in range(12):
        b.conversion(f"http://wet.example/{i}", (words * (8 + i)).strip())
    path = tmp_path / "x.warc.wet.gz"
    path.write_bytes(b.build(gzip=True))
    starts = member_starts(path.read_bytes())
    result = assert_same(path, tmp_path, spans_of(starts[3::3]))
    read = next(s for s in result["stats"] if s["name"] == "read")
    assert read["counters"]["input_wet"] == 1 and read["docs_out"] == 12


def test_a_merge_retried_after_it_finished_returns_its_marker(shard, tmp_path):
    """Ray may rerun a merge whose worker died after it wrote the marker and removed the
    parts: the rerun returns that marker instead of failing on the missing parts."""
    from dataproc.runner.tasks import merge_task

    out = tmp_path / "out"
    config = _config(shard, out)
    data = shard.read_bytes()
    with open(shard, "rb") as f:
        spans = spans_of(split_points(f, len(data), 2))
    for k, span in enumerate(spans):
        state = ReaderState() if k == 0 else head_state(str(shard), 0, config, spans[0][1])
        run_range(str(shard), 0, k, span, state, config, str(out))
    first = merge_task(str(shard), 0, spans, config, str(out))
    assert not list((out / "_work" / "ranges").iterdir())
    assert merge_task(str(shard), 0, spans, config, str(out)) == first


def test_a_remote_file_read_in_ranges(shard, tmp_path):
    from _crawl_fixtures import FaultyFileServer

    from dataproc.io import fs

    data = shard.read_bytes()
    with FaultyFileServer({"a.warc.gz": data}) as srv:
        url = srv.url("a.warc.gz")
        with fs.open_input(url) as f:
            points = split_points(f, len(data), 3)  # type: ignore[arg-type]
        assert len(points) == 2
        srv.fail("a.warc.gz", f"cut:{len(data) // 2}")  # a dropped connection mid-range
        b = split(url, tmp_path / "remote", spans_of(points))
        assert any(start > 0 and status == 206 for _, start, status in srv.requests)
    a = whole(shard, tmp_path / "whole")
    assert {k: v for k, v in b.items() if k != "input"} == {
        k: v for k, v in a.items() if k != "input"
    }
    # Rejects name their source (the URL): compare the survivors and band keys.
    fa, fb = _files(tmp_path / "whole"), _files(tmp_path / "remote")
    assert fa["bands"] == fb["bands"]


# -- through Ray ----------------------------------------------------------------------------


def _tree(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
        and (p.relative_to(out).parts[0] in ("tokens", "rejects") or "_work/bands" in p.as_posix())
    }


def _stats(out: Path) -> list[dict[str, Any]]:
    stages = json.loads((out / "stats.json").read_text())["stages"]
    return [{k: v for k, v in s.items() if "seconds" not in k} for s in stages]


def _phases_run(out: Path) -> list[str]:
    from dataproc.logs import read_log

    return sorted(
        r["phase"]
        for r in read_log(str(out / "logs" / "000000.log"))
        if r["msg"] == "start" and r["phase"].startswith("filter")
    )


@pytest.mark.ray
def test_pipeline_split_and_resumed_range_give_the_unsplit_output(ray_cluster, shard, tmp_path):
    from dataproc.runner import ranges
    from dataproc.runner.driver import prepare_output, run_pipeline
    from dataproc.runner.plan import plan_inputs
    from dataproc.runner.split import plan_splits

    def config(out: Path, split: int | None) -> PipelineConfig:
        return build_config(
            {
                "inputs": [str(shard)],
                "output": str(out),
                "execution": {"progress": "none", "split_min_bytes": split},
            }
        )

    whole_cfg = config(tmp_path / "whole", None)
    assert run_pipeline(whole_cfg).ok
    assert _phases_run(tmp_path / "whole") == ["filter"]

    # A run that stopped with ranges 0, 2 and 3 done, range 1's files damaged (size changed)
    # and the others never run: the rerun redoes exactly ranges 1, 4, 5, ... and merges.
    cfg = config(tmp_path / "split", 4096)
    inputs = plan_inputs(cfg.inputs)
    spans = plan_splits(inputs, cfg, slots=2)[0]
    assert len(spans) == 8
    prepare_output(OutputLayout(str(tmp_path / "split")), cfg, inputs, overwrite=False)
    for k in (0, 1, 2, 3):
        state = ReaderState() if k == 0 else head_state(str(shard), 0, cfg, spans[0][1])
        run_range(str(shard), 0, k, spans[k], state, cfg, str(tmp_path / "split"))
    layout = OutputLayout(str(tmp_path / "split"))
    with open(ranges.part_files(layout, 0, 1).docs, "ab") as f:
        f.write(b"x")
    result = run_pipeline(cfg)
    assert result.ok, result.failures
    assert _phases_run(tmp_path / "split") == ["filter"] + [
        f"filter-range-{k}" for k in (1, 4, 5, 6, 7)
    ]
    assert _tree(tmp_path / "split") == _tree(tmp_path / "whole")
    assert any(k.startswith("tokens/") for k in _tree(tmp_path / "whole"))
    assert _stats(tmp_path / "split") == _stats(tmp_path / "whole")
    assert not list((tmp_path / "split" / "_work" / "ranges").iterdir())  # parts cleaned up
