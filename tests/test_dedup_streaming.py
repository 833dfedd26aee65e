"""Phase 2 under a tiny ``task_memory``: heavy band keys and hub components are streamed, and
the result equals the in-memory path's (and a reference union-find's)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dataproc.dedup.clusters as clusters_mod
import dataproc.dedup.components as comp
import dataproc.dedup.edges as edges_mod
import dataproc.dedup.runs as runs_mod
from dataproc.dedup.buckets import BandKeyWriter
from dataproc.dedup.clusters import BandSource, run_phase2
from dataproc.dedup.components import read_edges
from dataproc.dedup.config import DedupConfig
from dataproc.dedup.edges import (
    MAX_LEADERS,
    LeaderStream,
    _leader_edges,
    compact_band_files,
    find_bucket_edges,
    write_edges,
)
from dataproc.io.layout import band_file


def d(input_index: int, ordinal: int) -> int:
    return (input_index << 32) | ordinal


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of the streaming paths taken: heavy keys streamed, sorted runs spilled, star
    tasks whose rows were folded (and read twice)."""
    seen = {"heavy": 0, "spills": 0, "folded": 0}
    stream, spill, stats = edges_mod._stream_key, runs_mod.SortedPairs._spill, comp.node_stats

    def stream_key(*args: Any) -> Any:
        seen["heavy"] += 1
        return stream(*args)

    def spill_run(self: Any) -> None:
        seen["spills"] += 1
        spill(self)

    def node_stats(*args: Any) -> Any:
        out = stats(*args)
        seen["folded"] += out[1] is None
        return out

    monkeypatch.setattr(edges_mod, "_stream_key", stream_key)
    monkeypatch.setattr(runs_mod.SortedPairs, "_spill", spill_run)
    monkeypatch.setattr(comp, "node_stats", node_stats)
    return seen


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks and run row groups of a few rows, so that every boundary is crossed."""
    monkeypatch.setattr(edges_mod, "STREAM_ROWS", 7)
    monkeypatch.setattr(runs_mod, "RUN_ROW_GROUP", 5)


# --- the streamed leader verification is the round-based one ---------------------------------


@settings(max_examples=150, deadline=None)
@given(
    sketch=st.lists(st.lists(st.integers(0, 2), min_size=4, max_size=4), min_size=2, max_size=60),
    need=st.integers(0, 4),
    cuts=st.lists(st.integers(1, 60), max_size=6),
)
def test_leader_stream_equals_the_round_based_leaders(
    sketch: list[list[int]], need: int, cuts: list[int]
) -> None:
    n = len(sketch)
    sk = np.array(sketch, dtype=np.uint8)
    doc = np.arange(100, 100 + n, dtype=np.uint64)
    a, b, counts = _leader_edges(np.zeros(n, np.int64), doc, sk, need)
    stream = LeaderStream(need)
    got_a, got_b = [], []
    bounds = sorted({0, n, *(c for c in cuts if c < n)})
    for lo, hi in itertools.pairwise(bounds):
        x, y = stream.feed(doc[lo:hi], sk[lo:hi])
        got_a += x.tolist()
        got_b += y.tolist()
    assert sorted(zip(got_a, got_b, strict=True)) == sorted(
        zip(a.tolist(), b.tolist(), strict=True)
    )
    assert stream.counters() == counts
    assert len(stream.leader_doc) <= MAX_LEADERS


# --- bucket tasks: heavy keys streamed, output spilled and merged ------------------------------

CFG = DedupConfig(num_perm=8, bands=4, rows=2, min_similarity=0.5)


def _band_files(tmp: Path) -> list[tuple[str, int, str | None]]:
    """Three inputs; 40 % of documents share one exact key and a band-0 key (heavy groups,
    several leaders; the key also holds a band-1 group), the rest collide in light groups;
    input 0 has a removal file (an earlier output's removed documents)."""
    rng = np.random.default_rng(7)
    for i in range(3):
        w = BandKeyWriter(str(tmp), i, CFG)
        for k in range(300):
            keys = rng.integers(0, 60, size=CFG.bands).astype(np.uint64) + np.uint64(1000)
            exact: int | None = int(rng.integers(0, 40)) + 5000
            sig = rng.integers(0, 3, size=CFG.num_perm).astype(np.uint64)
            if rng.random() < 0.4:
                keys[0] = 555
                exact = 777 if rng.random() < 0.5 else exact
            elif rng.random() < 0.2:
                keys[1] = 555  # the same key value in another band: a second heavy group
            if rng.random() < 0.1:
                exact = None
            w.add(d(i, k), keys, exact, sig)
        w.close()
    removed = str(tmp / "removed0.parquet")
    pq.write_table(
        pa.table({"doc": pa.array([d(0, k) for k in range(0, 300, 7)], pa.uint64())}), removed
    )
    return [(band_file(str(tmp), 0), 0, removed)] + [
        (band_file(str(tmp), i), 0, None) for i in (1, 2)
    ]


def _bucket(tmp: Path, name: str, sources: list, memory: int) -> tuple[Any, bytes, bytes]:
    e, x = str(tmp / f"{name}-e.parquet"), str(tmp / f"{name}-x.parquet")
    stats = find_bucket_edges(sources, 0, 1 << 64, e, x, CFG.num_perm, CFG.min_similarity, memory)
    return stats, Path(e).read_bytes(), Path(x).read_bytes()


def test_bucket_task_streams_heavy_keys_to_the_same_files(
    tmp_path: Path, small_blocks: None, spied: dict[str, int]
) -> None:
    sources = _band_files(tmp_path)
    whole = _bucket(tmp_path, "whole", sources, 1 << 30)
    assert spied == {"heavy": 0, "spills": 0, "folded": 0}
    tiny = _bucket(tmp_path, "tiny", sources, 60_000)  # heavy above 113 rows, spills
    assert spied["heavy"] == 2 and spied["spills"] > 4  # keys 555 (2 bands) and 777
    assert whole[0].edges > 300 and whole[0].pairs_rejected > 0
    assert tiny == whole
    assert not list(tmp_path.glob("*.run*")), "run files are removed after the merge"


def test_compaction_streams_heavy_keys_to_the_same_rows(tmp_path: Path, small_blocks: None) -> None:
    sources = _band_files(tmp_path)
    out = {}
    for name, memory in (("whole", 1 << 30), ("tiny", 120_000)):
        path = str(tmp_path / f"{name}.parquet")
        n = compact_band_files(sources, path, CFG.num_perm, CFG.bands, 2, memory)
        out[name] = (n, pq.read_table(path))
    assert out["tiny"][0] == out["whole"][0] > 800
    assert out["tiny"][1].equals(out["whole"][1])


# --- star rounds: hubs streamed ---------------------------------------------------------------


def _reference(edges: list[tuple[int, int]]) -> dict[int, int]:
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    return {n: find(n) for n in list(parent) if find(n) != n}


def _star_leaves(tmp: Path, edges: list[tuple[int, int]], parts: int, memory: int) -> dict:
    rng = random.Random(parts)
    where = [rng.randrange(3) for _ in edges]
    paths = []
    for i in range(3):
        chunk = [e for e, w in zip(edges, where, strict=True) if w == i]
        paths.append(str(tmp / f"e{i}.parquet"))
        write_edges(
            np.array([a for a, _ in chunk], np.uint64),
            np.array([b for _, b in chunk], np.uint64),
            paths[-1],
        )
    inputs = max(max(a, b) >> 32 for a, b in edges) + 1
    bounds = sorted({0, inputs, *rng.sample(range(1, inputs + 1), min(parts - 1, inputs))})
    ranges = list(itertools.pairwise(bounds))
    star, _ = clusters_mod.star_components(
        paths, ranges, str(tmp / "cc"), clusters_mod.local_execute, memory
    )
    seen: dict[int, int] = {}
    for lo, hi in ranges:
        x, y = read_edges(star, lo << 32, hi << 32)
        for u, v in zip(x.tolist(), y.tolist(), strict=True):
            if v < u:
                assert u not in seen, "a leaf with two centres"
                seen[u] = v
    # Every star edge is stored once (finish_range counts rows): no repeats across files.
    rows = sum(pq.read_metadata(p).num_rows for p in star)
    assert rows == 2 * len(seen)
    return seen


@settings(max_examples=25, deadline=None)
@given(
    edges=st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 30), st.integers(0, 4), st.integers(0, 30)),
        min_size=1,
        max_size=60,
    ),
    parts=st.integers(1, 4),
)
def test_streamed_star_rounds_equal_one_union_find(
    tmp_path_factory: pytest.TempPathFactory,
    edges: list[tuple[int, int, int, int]],
    parts: int,
) -> None:
    pairs = [(d(a, b), d(c, e)) for a, b, c, e in edges if (a, b) != (c, e)]
    if not pairs:
        return
    tmp = tmp_path_factory.mktemp("g")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runs_mod, "RUN_ROW_GROUP", 3)
        # 1 KB: rows folded every 4, output spilled every 5 rows
        assert _star_leaves(tmp, pairs, parts, 1000) == _reference(pairs)


def test_a_hub_and_a_chain_streamed(
    tmp_path: Path, small_blocks: None, spied: dict[str, int]
) -> None:
    rng = random.Random(3)
    hub = d(0, 5)
    star = [(hub, d(rng.randrange(4), 100 + i)) for i in range(300)]
    ids = [d(rng.randrange(4), 1000 + i) for i in range(60)]
    chain = [*itertools.pairwise(ids), (ids[30], d(3, 100))]
    pairs = star + chain
    # 20 KB: the hub's 300+ rows are folded every 78 rows, its output spilled every 104
    assert _star_leaves(tmp_path, pairs, 3, 20_000) == _reference(pairs)
    assert spied["folded"] > 0 and spied["spills"] > 0


# --- the whole phase 2: tiny budget == default budget ------------------------------------------


def test_phase2_under_a_tiny_budget_removes_the_same(tmp_path: Path, spied: dict[str, int]) -> None:
    sources = []
    rng = np.random.default_rng(11)
    for i in range(4):
        w = BandKeyWriter(str(tmp_path), i, CFG)
        for k in range(250):
            keys = rng.integers(0, 400, size=CFG.bands).astype(np.uint64) + np.uint64(1000)
            exact = 777 if rng.random() < 0.3 else int(rng.integers(0, 10**6)) + 5000
            sig = rng.integers(0, 2, size=CFG.num_perm).astype(np.uint64)
            w.add(d(i, k), keys, exact, sig)
        sources.append(BandSource(band_file(str(tmp_path), i), i, i, w.close()))
    inputs = [0, 1, 2, 3]
    cfg = CFG.model_copy(update={"compact_inputs": 2})
    one = run_phase2(sources, [0], inputs, str(tmp_path / "one"), cfg)
    assert one.tasks["star_rounds"] == 0
    tiny_cfg = cfg.model_copy(update={"task_memory": 100_000, "num_buckets": 2})
    tiny = run_phase2(sources, [0], inputs, str(tmp_path / "tiny"), tiny_cfg)
    assert tiny.tasks["components"] > 1 and tiny.tasks["star_rounds"] >= 1
    assert spied["heavy"] > 0 and spied["spills"] > 0 and spied["folded"] > 0
    assert one.docs_removed > 250
    for name in [f"{i:06d}.parquet" for i in inputs]:
        a = (tmp_path / "one" / "removed" / name).read_bytes()
        assert a == (tmp_path / "tiny" / "removed" / name).read_bytes()
    got, want = tiny.to_dict(), one.to_dict()
    got.pop("tasks")
    want.pop("tasks")
    assert got == want
