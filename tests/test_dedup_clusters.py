"""Phase 2 of dedup: band files → verified edges → distributed components → removed lists."""

from __future__ import annotations

import glob
import itertools
import os
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dataproc.dedup.clusters as clusters_mod
from dataproc.dedup.buckets import BAND_ROW_GROUP, BandKeyWriter, read_key_range
from dataproc.dedup.clusters import BandSource, ClusterSummary, plan_buckets, run_phase2
from dataproc.dedup.components import _components, finish_range, size_range
from dataproc.dedup.config import DedupConfig
from dataproc.dedup.edges import write_edges
from dataproc.dedup.minhash import MinHasher
from dataproc.dedup.writer import DedupWriter
from dataproc.errors import DedupError
from dataproc.io.layout import band_file

# Two bands of one row each: tests choose band keys by hand; no verification.
SMALL = DedupConfig(num_perm=2, bands=2, rows=1, num_buckets=3, min_similarity=0)


def d(input_index: int, ordinal: int) -> int:
    return (input_index << 32) | ordinal


def _write(
    work: Path,
    input_index: int,
    rows: list[tuple[int, list[int], int | None]],
    cfg: DedupConfig = SMALL,
    sigs: list[list[int]] | None = None,
) -> int:
    w = BandKeyWriter(str(work), input_index, cfg)
    for k, (doc, keys, exact) in enumerate(rows):
        sig = np.array(sigs[k] if sigs else [7] * cfg.num_perm, dtype=np.uint64)
        w.add(doc, np.array(keys, dtype=np.uint64), exact, sig)
    return w.close()


def _sources(work: Path, inputs: list[int], rows: int = 10) -> list[BandSource]:
    return [BandSource(band_file(str(work), i), i, i, rows) for i in inputs]


def _phase2(work: Path, inputs: list[int], cfg: DedupConfig = SMALL) -> ClusterSummary:
    return run_phase2(_sources(work, inputs), [0], inputs, str(work / "dedup"), cfg)


def _removed(work: Path) -> dict[int, list[dict]]:
    out = {}
    for f in sorted(glob.glob(str(work / "dedup" / "removed" / "*.parquet"))):
        rows = pq.read_table(f).to_pylist()
        if rows:
            out[int(os.path.basename(f)[:6])] = rows
    return out


def _groups(work: Path) -> None:
    """A~B (band 0), B~C (band 1) ⇒ {A, B, C}; D==E exactly; F is an exact copy of C."""
    a, dd, c = d(0, 0), d(0, 1), d(0, 3)
    e, f, b = d(1, 0), d(1, 1), d(1, 2)
    _write(
        work,
        0,
        [
            (a, [100, 1], 1000),
            (dd, [300, 301], 999),
            (d(0, 2), [400, 401], 1002),
            (c, [500, 200], 1003),
            (d(0, 4), [600, 601], 1004),
        ],
    )
    _write(
        work,
        1,
        [
            (e, [300, 301], 999),
            (f, [500, 200], 1003),
            (b, [100, 200], 1001),
            (d(1, 3), [700, 701], 1005),
        ],
    )


def _row(doc: int, kept: int, reason: str) -> dict:
    return {"doc": doc, "kept": kept, "reason": reason, "kept_source": -1}


def test_transitive_clusters_keep_min_and_reasons(tmp_path: Path) -> None:
    _groups(tmp_path)
    summary = _phase2(tmp_path, [0, 1])
    assert _removed(tmp_path) == {
        0: [_row(d(0, 3), d(0, 0), "near_duplicate")],
        1: [
            _row(d(1, 0), d(0, 1), "exact_duplicate"),
            # F is identical to C, but C is removed too: F's text differs from its kept A.
            _row(d(1, 1), d(0, 0), "near_duplicate"),
            _row(d(1, 2), d(0, 0), "near_duplicate"),
        ],
    }
    got = summary.to_dict()
    assert {k: got[k] for k in ("docs_in_clusters", "clusters", "docs_removed", "removed")} == {
        "docs_in_clusters": 6,
        "clusters": 2,
        "docs_removed": 4,
        "removed": {"exact_duplicate": 1, "near_duplicate": 3},
    }
    assert got["size_histogram"] == {"2": 1, "3-4": 1}
    assert got["max_cluster_size"] == 4
    # Every input of the run gets a removal file, also when nothing is removed from it.
    assert sorted(os.listdir(tmp_path / "dedup" / "removed")) == [
        "000000.parquet",
        "000001.parquet",
    ]


def test_one_band_file_per_input_sorted_by_key_with_row_group_stats(tmp_path: Path) -> None:
    _groups(tmp_path)
    assert sorted(os.listdir(tmp_path / "bands")) == ["000000.parquet", "000001.parquet"]
    t = pq.read_table(tmp_path / "bands" / "000000.parquet")
    assert [str(x) for x in t.schema.types] == ["uint8", "uint64", "uint64", "fixed_size_binary[2]"]
    key = t.column("key").to_numpy()
    assert (np.diff(key.astype(np.float64)) >= 0).all()
    assert t.num_rows == 5 * 3  # 2 bands + the exact key per document
    # A key range reads only its rows.
    _band, key, _doc, sketch, exact_band = read_key_range(
        band_file(str(tmp_path), 0), 300, 402, num_perm=2
    )
    assert sorted(key.tolist()) == [300, 301, 400, 401]
    assert exact_band == 2 and sketch.shape == (4, 2)


def test_a_bucket_reads_only_overlapping_row_groups(tmp_path: Path) -> None:
    cfg = DedupConfig(num_perm=1, bands=1, rows=1, exact=False, min_similarity=0)
    n = 4 * BAND_ROW_GROUP
    w = BandKeyWriter(str(tmp_path), 0, cfg)
    keys = np.arange(n, dtype=np.uint64).reshape(n, 1) << np.uint64(40)
    w.add_batch(np.arange(n, dtype=np.uint64), keys, None, np.zeros((n, 1), np.uint64))
    w.close()
    pf = pq.ParquetFile(band_file(str(tmp_path), 0))
    assert pf.num_row_groups == 4
    from dataproc.dedup.buckets import select_row_groups

    lo = int(keys[BAND_ROW_GROUP + 5, 0])
    assert select_row_groups(pf, "key", lo, lo + 1) == [1]


def test_bucket_count_follows_rows_and_budget() -> None:
    cfg = DedupConfig(num_buckets=1, task_memory=64 << 20)
    assert len(plan_buckets(1000, cfg)) == 1
    many = plan_buckets(10_000_000, cfg)
    assert len(many) > 30
    assert many[0][0] == 0 and many[-1][1] == 1 << 64
    assert all(a[1] == b[0] for a, b in itertools.pairwise(many))


def test_verification_leaders_link_members_the_group_minimum_does_not_match(
    tmp_path: Path,
) -> None:
    """One LSH group {A, B, C}: A is unlike B and C, B and C alike → only B~C is linked."""
    cfg = DedupConfig(num_perm=10, bands=1, rows=10, num_buckets=1, exact=False)
    a_sig = list(range(10))
    b_sig = [100 + i for i in range(10)]
    c_sig = [*b_sig[:8], 1, 2]  # 8 of 10 agree with B: 0.8 >= 0.7
    _write(
        tmp_path,
        0,
        [(d(0, 0), [5], None), (d(0, 1), [5], None), (d(0, 2), [5], None)],
        cfg,
        [a_sig, b_sig, c_sig],
    )
    summary = _phase2(tmp_path, [0], cfg)
    assert _removed(tmp_path) == {0: [_row(d(0, 2), d(0, 1), "near_duplicate")]}
    assert summary.pairs_rejected == 2  # B and C against leader A
    assert summary.edges == 1


def test_sketch_is_the_low_byte_and_verification_uses_it(tmp_path: Path) -> None:
    cfg = DedupConfig(num_perm=4, bands=1, rows=4, num_buckets=1, exact=False)
    # Differ only above the low byte: the 8-bit sketches agree on every position.
    _write(
        tmp_path,
        0,
        [(d(0, 0), [9], None), (d(0, 1), [9], None)],
        cfg,
        [[1, 2, 3, 4], [1 + 256, 2 + 512, 3, 4]],
    )
    _phase2(tmp_path, [0], cfg)
    assert _removed(tmp_path) == {0: [_row(d(0, 1), d(0, 0), "near_duplicate")]}


def test_missing_band_file_is_a_clear_error(tmp_path: Path) -> None:
    _groups(tmp_path)
    os.remove(band_file(str(tmp_path), 1))
    with pytest.raises(DedupError, match=r"000001\.parquet: band-key file is missing"):
        _phase2(tmp_path, [0, 1])


def test_writer_validates_input(tmp_path: Path) -> None:
    w = BandKeyWriter(str(tmp_path), 3, SMALL)
    with pytest.raises(DedupError, match="shape"):
        w.add(d(3, 0), np.array([1, 2, 3], dtype=np.uint64), None, np.zeros(2, np.uint64))
    with pytest.raises(DedupError, match="belong"):
        w.add(d(4, 0), np.array([1, 2], dtype=np.uint64), None, np.zeros(2, np.uint64))
    with pytest.raises(DedupError, match="outside"):
        BandKeyWriter(str(tmp_path), 1 << 32, SMALL)


def test_empty_input_writes_an_empty_band_file_and_nothing_is_removed(tmp_path: Path) -> None:
    assert _write(tmp_path, 0, []) == 0
    summary = _phase2(tmp_path, [0])
    assert summary.docs_removed == 0
    assert pq.read_table(tmp_path / "dedup" / "removed" / "000000.parquet").num_rows == 0


# --- connected components: large-star / small-star rounds vs one union-find -------------------


def _reference_labels(nodes: list[int], edges: list[tuple[int, int]]) -> dict[int, int]:
    parent = {n: n for n in nodes}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {n: find(n) for n in nodes}


def _star_labels(tmp: Path, edges: list[tuple[int, int]], parts: int, files: int) -> dict:
    """Components by the distributed rounds: ``files`` edge files, ``parts`` node ranges."""
    rng = random.Random(len(edges) + parts)
    chunks: list[list[tuple[int, int]]] = [[] for _ in range(files)]
    for e in edges:
        chunks[rng.randrange(files)].append(e)
    paths = []
    for i, chunk in enumerate(chunks):
        a = np.array([x for x, _ in chunk], dtype=np.uint64)
        b = np.array([y for _, y in chunk], dtype=np.uint64)
        paths.append(str(tmp / f"e{i}.parquet"))
        write_edges(a, b, paths[-1])
    inputs = max((max(a, b) >> 32 for a, b in edges), default=0) + 1
    bounds = sorted({0, inputs, *rng.sample(range(1, inputs + 1), min(parts - 1, inputs))})
    ranges = list(itertools.pairwise(bounds))
    star, _ = clusters_mod.star_components(
        paths, ranges, str(tmp / "cc"), clusters_mod.local_execute, 1 << 30
    )
    labels = {}
    for lo, hi in ranges:
        from dataproc.dedup.components import read_edges

        x, y = read_edges(star, lo << 32, hi << 32)
        for u, v in zip(x.tolist(), y.tolist(), strict=True):
            if v < u:
                assert u not in labels, "a leaf with two centres"
                labels[u] = v
    return labels


def _check_components(tmp: Path, edges: list[tuple[int, int]], parts: int, files: int) -> None:
    nodes = sorted({n for e in edges for n in e})
    ref = _reference_labels(nodes, edges)
    want = {n: r for n, r in ref.items() if n != r}
    assert _star_labels(tmp, edges, parts, files) == want


@settings(max_examples=40, deadline=None)
@given(
    edges=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 40), st.integers(0, 5), st.integers(0, 40)),
        max_size=80,
    ),
    parts=st.integers(1, 5),
    files=st.integers(1, 4),
)
def test_star_rounds_equal_one_union_find_on_random_graphs(
    tmp_path_factory: pytest.TempPathFactory,
    edges: list[tuple[int, int, int, int]],
    parts: int,
    files: int,
) -> None:
    pairs = [(d(a, b), d(c, e)) for a, b, c, e in edges if (a, b) != (c, e)]
    _check_components(tmp_path_factory.mktemp("g"), pairs, parts, files)


def test_star_rounds_on_a_long_shuffled_chain_and_a_big_star(tmp_path: Path) -> None:
    rng = random.Random(5)
    ids = [d(rng.randrange(8), i) for i in range(3000)]
    rng.shuffle(ids)
    chain = list(itertools.pairwise(ids))
    hub = d(7, 10**6)
    star = [(hub, d(rng.randrange(8), 10**5 + i)) for i in range(2000)]
    _check_components(tmp_path, chain + star, parts=4, files=3)


def test_union_find_matches_reference() -> None:
    rng = random.Random(1)
    for _ in range(20):
        n = rng.randrange(1, 60)
        edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randrange(80))]
        a = np.array([e[0] for e in edges], dtype=np.int64)
        b = np.array([e[1] for e in edges], dtype=np.int64)
        ref = _reference_labels(list(range(n)), edges)
        assert _components(n, a, b).tolist() == [ref[i] for i in range(n)]


def test_size_ranges() -> None:
    assert [size_range(s) for s in (2, 3, 4, 5, 8, 9, 100)] == [
        "2",
        "3-4",
        "3-4",
        "5-8",
        "5-8",
        "9-16",
        "65-128",
    ]


# --- end to end (in-process executor; the Ray executor runs in test_pipeline) -----------------


def _text_corpus(tmp: Path, cfg: DedupConfig, inputs: int, per_input: int) -> list[int]:
    import string

    rng = random.Random(3)
    words = ["".join(rng.choice(string.ascii_lowercase) for _ in range(6)) for _ in range(3000)]
    bases = [[rng.choice(words) for _ in range(120)] for _ in range(40)]
    for i in range(inputs):
        w = DedupWriter(str(tmp), i, cfg)
        for k in range(per_input):
            r = rng.random()
            if r < 0.5:
                text = [rng.choice(words) for _ in range(120)]
            else:
                text = list(bases[rng.randrange(len(bases))])
                if r < 0.75:
                    text[rng.randrange(120)] = "changed"
            w.add(d(i, k), " ".join(text))
        w.close()
    return list(range(inputs))


def _removed_bytes(dedup_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((dedup_dir / "removed").iterdir())}


def test_distributed_path_gives_the_same_removals_as_one_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = DedupConfig(num_buckets=1)
    inputs = _text_corpus(tmp_path, cfg, inputs=6, per_input=60)
    sources = _sources(tmp_path, inputs, rows=60 * 15)
    one = run_phase2(sources, [0], inputs, str(tmp_path / "one"), cfg)
    assert one.tasks == {"buckets": 1, "components": 1, "star_rounds": 0}
    monkeypatch.setattr(clusters_mod, "EDGE_ROW_BYTES", 1 << 24)  # force many node ranges
    many_cfg = DedupConfig(num_buckets=5)
    many = run_phase2(sources, [0], inputs, str(tmp_path / "many"), many_cfg)
    assert many.tasks["buckets"] == 5 and many.tasks["components"] > 1
    assert many.tasks["star_rounds"] >= 1
    assert one.docs_removed > 50
    assert _removed_bytes(tmp_path / "one") == _removed_bytes(tmp_path / "many")
    for k in ("clusters", "docs_in_clusters", "removed", "size_histogram", "max_cluster_size"):
        assert getattr(one, k) == getattr(many, k)


def test_compacting_band_files_changes_nothing(tmp_path: Path) -> None:
    cfg = DedupConfig(num_buckets=3, compact_inputs=0)
    inputs = _text_corpus(tmp_path, cfg, inputs=7, per_input=40)
    sources = _sources(tmp_path, inputs, rows=600)
    plain = run_phase2(sources, [0], inputs, str(tmp_path / "plain"), cfg)
    compact_cfg = DedupConfig(num_buckets=3, compact_inputs=3, task_memory=64 << 20)
    compact = run_phase2(sources, [0], inputs, str(tmp_path / "compact"), compact_cfg)
    assert compact.tasks["compact"] == 3  # 7 inputs in batches of 3
    assert len(os.listdir(tmp_path / "compact" / "compact")) == 3
    assert plain.docs_removed > 20
    assert _removed_bytes(tmp_path / "plain") == _removed_bytes(tmp_path / "compact")
    # Merging in several key chunks writes the same rows as in one.
    from dataproc.dedup.edges import compact_band_files

    srcs = [(s.path, 0, None) for s in sources[:3]]
    one, five = str(tmp_path / "one.parquet"), str(tmp_path / "five.parquet")
    m = 1 << 30
    assert compact_band_files(srcs, one, 112, 14, 1, m) == compact_band_files(
        srcs, five, 112, 14, 5, m
    )
    assert pq.read_table(one).equals(pq.read_table(five))


def test_intermediate_objects_grow_with_tasks_not_inputs_times_buckets(tmp_path: Path) -> None:
    cfg = DedupConfig(num_buckets=8)
    inputs = _text_corpus(tmp_path, cfg, inputs=12, per_input=10)
    run_phase2(_sources(tmp_path, inputs, rows=150), [0], inputs, str(tmp_path / "dedup"), cfg)
    assert len(os.listdir(tmp_path / "bands")) == 12  # one per input (was 12 x 8)
    assert len(os.listdir(tmp_path / "dedup" / "edges")) == 8  # one per bucket task
    assert len(os.listdir(tmp_path / "dedup" / "exact")) == 8
    assert len(os.listdir(tmp_path / "dedup" / "removed")) == 12  # phase 3's interface


def test_dedup_against_in_process_equals_one_run(tmp_path: Path) -> None:
    """Inputs 0-2 dedup alone, then 3-5 against them: same kept set as one run over 0-5."""
    cfg = DedupConfig(num_buckets=2)
    inputs = _text_corpus(tmp_path, cfg, inputs=6, per_input=40)
    both = tmp_path / "both"
    run_phase2(_sources(tmp_path, inputs, 600), [0], inputs, str(both), cfg)
    first = tmp_path / "first"
    run_phase2(_sources(tmp_path, [0, 1, 2], 600), [0], [0, 1, 2], str(first), cfg)
    # Second slice: its own inputs are numbered 0-2 in its run; the first slice's come first.
    second = tmp_path / "second"
    sources = [
        BandSource(
            band_file(str(tmp_path), i), i, i, 600, str(first / "removed" / f"{i:06d}.parquet")
        )
        for i in range(3)
    ]
    work2 = tmp_path / "w2"
    (work2 / "bands").mkdir(parents=True)
    for i in range(3):
        os.link(band_file(str(tmp_path), 3 + i), work2 / "bands" / f"{i:06d}.parquet")
    # The band files of the second slice hold doc ids of inputs 3-5: rename them to 0-2.
    _renumber(work2, cfg, 3)
    sources += [BandSource(band_file(str(work2), i), i, 3 + i, 600) for i in range(3)]
    run_phase2(sources, [0, 3], [0, 1, 2], str(second), cfg)

    def removed_docs(folder: Path, shift: int) -> set[int]:
        out = set()
        for f in (folder / "removed").iterdir():
            out |= {x + (shift << 32) for x in pq.read_table(f).column("doc").to_pylist()}
        return out

    assert removed_docs(first, 0) | removed_docs(second, 3) == removed_docs(both, 0)


def _renumber(work: Path, cfg: DedupConfig, shift: int) -> None:
    import pyarrow as pa

    from dataproc.dedup.buckets import write_parquet_atomic

    for f in (work / "bands").iterdir():
        t = pq.read_table(f)
        doc = t.column("doc").to_numpy() - np.uint64(shift << 32)
        t = t.set_column(2, "doc", pa.array(doc, type=pa.uint64()))
        tmp = str(f) + ".new"
        write_parquet_atomic(t, tmp, row_group_size=BAND_ROW_GROUP)
        os.replace(tmp, f)


# --- from text ----------------------------------------------------------------------------


def test_dedup_writer_end_to_end_from_text(tmp_path: Path) -> None:
    cfg = DedupConfig(num_buckets=4)
    hasher = MinHasher(cfg)
    words = [f"{a}{b}" for a in "abcdefghij" for b in "klmnopqrst"]
    base = " ".join(words)
    texts = [base, base, base.replace("ek", "zz"), " ".join(reversed(words))]
    w = DedupWriter(str(tmp_path), 0, cfg)
    for i, t in enumerate(texts):
        keys, exact = w.add(d(0, i), t)
        assert keys.tolist() == hasher.band_keys(hasher.signature(t)).tolist()
        assert exact == hasher.exact_key(t)
    w.close()
    summary = _phase2(tmp_path, [0], cfg)
    removed = _removed(tmp_path)[0]
    assert [r["doc"] for r in removed] == [d(0, 1), d(0, 2)]
    assert removed[0]["reason"] == "exact_duplicate"
    assert removed[1]["reason"] == "near_duplicate"
    assert summary.clusters == 1


def test_finish_range_rejects_nothing_outside_this_run(tmp_path: Path) -> None:
    """Earlier outputs' documents are never listed as removed, even when not a minimum."""
    a = np.array([d(0, 1), d(0, 2)], dtype=np.uint64)  # earlier output, docs 1 and 2
    b = np.array([d(1, 0), d(1, 0)], dtype=np.uint64)  # this run's doc joins both
    write_edges(a, b, str(tmp_path / "e.parquet"))
    from dataproc.dedup.edges import write_exact

    empty = np.empty(0, np.uint64)
    write_exact(empty, empty, str(tmp_path / "x.parquet"))
    out = finish_range(
        [str(tmp_path / "e.parquet")],
        [str(tmp_path / "x.parquet")],
        0,
        2,
        [0, 1],
        [0],
        str(tmp_path),
        False,
        1 << 30,
    )
    rows = pq.read_table(tmp_path / "removed" / "000000.parquet").to_pylist()
    assert rows == [{"doc": 0, "kept": 1, "reason": "near_duplicate", "kept_source": 0}]
    assert out.clusters == 1 and out.docs_in_clusters == 3
