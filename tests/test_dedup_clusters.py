"""Band-key files → edges → clusters → removed lists (dataproc.dedup.buckets / clusters)."""

from __future__ import annotations

import glob
import os
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from dataproc.dedup.buckets import BandKeyWriter, bucket_path
from dataproc.dedup.clusters import (
    ClusterSummary,
    _assign_centers,
    _components,
    _size_range,
    build_clusters,
    find_bucket_edges,
)
from dataproc.dedup.config import DedupConfig
from dataproc.dedup.minhash import MinHasher
from dataproc.dedup.signatures import SignatureWriter, load_signatures
from dataproc.dedup.writer import DedupWriter
from dataproc.errors import DedupError

# Two bands of one row each: tests choose band keys by hand.
SMALL = DedupConfig(num_perm=2, bands=2, rows=1, num_buckets=3)


def d(input_index: int, ordinal: int) -> int:
    return (input_index << 32) | ordinal


def _write(
    work: Path,
    input_index: int,
    rows: list[tuple[int, list[int], int | None]],
    cfg: DedupConfig = SMALL,
) -> int:
    w = BandKeyWriter(str(work), input_index, cfg)
    for doc, keys, exact in rows:
        w.add(doc, np.array(keys, dtype=np.uint64), exact)
    return w.close()


def _phase2(work: Path, cfg: DedupConfig = SMALL, shuffle: int | None = None) -> ClusterSummary:
    edge_files = []
    for b in range(cfg.num_buckets):
        files = sorted(glob.glob(str(work / "bands" / f"bucket={b:04d}" / "*.parquet")))
        if shuffle is not None:
            random.Random(shuffle + b).shuffle(files)
        out = str(work / "edges" / f"bucket={b:04d}.parquet")
        find_bucket_edges(files, out)
        edge_files.append(out)
    if shuffle is not None:
        random.Random(shuffle).shuffle(edge_files)
    return build_clusters(edge_files, str(work / "dedup"))


def _removed(work: Path) -> dict[int, list[dict]]:
    out = {}
    for f in sorted(glob.glob(str(work / "dedup" / "removed" / "*.parquet"))):
        out[int(os.path.basename(f)[:6])] = pq.read_table(f).to_pylist()
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


def test_transitive_clusters_keep_min_and_reasons(tmp_path: Path) -> None:
    _groups(tmp_path)
    summary = _phase2(tmp_path)
    assert _removed(tmp_path) == {
        0: [{"doc": d(0, 3), "kept": d(0, 0), "reason": "near_duplicate"}],
        1: [
            {"doc": d(1, 0), "kept": d(0, 1), "reason": "exact_duplicate"},
            # F is identical to C, but C is removed too: F's text differs from its kept A.
            {"doc": d(1, 1), "kept": d(0, 0), "reason": "near_duplicate"},
            {"doc": d(1, 2), "kept": d(0, 0), "reason": "near_duplicate"},
        ],
    }
    assert summary.to_dict() == {
        "docs_in_clusters": 6,
        "clusters": 2,
        "edges": summary.edges,
        "split_by_verification": 0,
        "docs_removed": 4,
        "removed": {"exact_duplicate": 1, "near_duplicate": 3},
        "size_histogram": {"2": 1, "3-4": 1},
        "max_cluster_size": 4,
    }
    assert summary.edges >= 4


def test_band_files_layout_and_sorting(tmp_path: Path) -> None:
    _groups(tmp_path)
    rows = 0
    for f in glob.glob(str(tmp_path / "bands" / "bucket=*" / "*.parquet")):
        t = pq.read_table(f)
        assert [str(x) for x in t.schema.types] == ["uint8", "uint64", "uint64"]
        band, key, doc = (t.column(n).to_numpy() for n in ("band", "key", "doc"))
        bucket = int(f.split("bucket=")[1][:4])
        assert (key % SMALL.num_buckets == bucket).all()
        rows_here = list(zip(band.tolist(), key.tolist(), doc.tolist(), strict=True))
        assert rows_here == sorted(rows_here)
        assert set(band.tolist()) <= {0, 1, 2}  # exact key is band id == bands
        rows += t.num_rows
    assert rows == 9 * 3
    assert bucket_path(str(tmp_path), 2, 7).endswith(
        os.path.join("bands", "bucket=0002", "000007.parquet")
    )


def test_edges_are_stars_from_the_run_minimum(tmp_path: Path) -> None:
    cfg = DedupConfig(num_perm=1, bands=1, rows=1, num_buckets=1, exact=False)
    _write(tmp_path, 0, [(d(0, i), [42], None) for i in (5, 1, 3)], cfg)
    _write(tmp_path, 1, [(d(1, 0), [42], None), (d(1, 1), [7], None)], cfg)
    files = sorted(glob.glob(str(tmp_path / "bands" / "bucket=0000" / "*.parquet")))
    n = find_bucket_edges(files, str(tmp_path / "e.parquet"))
    t = pq.read_table(tmp_path / "e.parquet").to_pydict()
    assert n == 3
    assert t == {"a": [d(0, 1)] * 3, "b": [d(0, 3), d(0, 5), d(1, 0)], "exact": [False] * 3}


def test_pair_in_several_bands_is_one_edge_exact_if_any(tmp_path: Path) -> None:
    cfg = DedupConfig(num_perm=3, bands=3, rows=1, num_buckets=1)
    _write(tmp_path, 0, [(d(0, 0), [1, 2, 3], 9), (d(0, 1), [1, 2, 3], 9)], cfg)
    files = glob.glob(str(tmp_path / "bands" / "bucket=0000" / "*.parquet"))
    assert find_bucket_edges(files, str(tmp_path / "e.parquet")) == 1
    assert pq.read_table(tmp_path / "e.parquet").to_pydict() == {
        "a": [0],
        "b": [1],
        "exact": [True],
    }


def test_output_is_byte_identical_under_shuffled_file_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    cfg = DedupConfig(num_perm=4, bands=4, rows=1, num_buckets=4)
    for i in range(6):
        rows = []
        for j in range(300):
            keys = rng.integers(0, 400, size=4).tolist()  # plenty of collisions, big clusters
            rows.append((d(i, j), keys, int(rng.integers(0, 150))))
        _write(tmp_path / "w", i, rows, cfg)
    first = _phase2(tmp_path / "w", cfg)
    blobs = {
        p: Path(p).read_bytes()
        for p in glob.glob(str(tmp_path / "w" / "dedup" / "**" / "*.parquet"), recursive=True)
    }
    assert len(blobs) == 6
    for seed in (1, 2):
        import shutil

        shutil.rmtree(tmp_path / "w" / "dedup")
        shutil.rmtree(tmp_path / "w" / "edges")
        again = _phase2(tmp_path / "w", cfg, shuffle=seed)
        assert again == first
        for p, blob in blobs.items():
            assert Path(p).read_bytes() == blob


def test_empty_inputs(tmp_path: Path) -> None:
    assert _write(tmp_path, 0, []) == 0
    assert not glob.glob(str(tmp_path / "bands" / "**" / "*.parquet"), recursive=True)
    out = str(tmp_path / "edges" / "bucket=0000.parquet")
    assert find_bucket_edges([], out) == 0
    assert pq.read_table(out).num_rows == 0
    summary = build_clusters([out], str(tmp_path / "dedup"))
    assert summary.to_dict()["docs_removed"] == 0
    assert summary.clusters == 0
    assert not (tmp_path / "dedup" / "removed").exists()
    assert build_clusters([], str(tmp_path / "dedup")).edges == 0


def test_missing_edge_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DedupError, match="edge file is missing"):
        build_clusters([str(tmp_path / "nope.parquet")], str(tmp_path / "dedup"))


def test_writer_validates_input(tmp_path: Path) -> None:
    w = BandKeyWriter(str(tmp_path), 3, SMALL)
    with pytest.raises(DedupError, match="expected \\(2,\\)"):
        w.add(d(3, 0), np.zeros(3, dtype=np.uint64), None)
    with pytest.raises(DedupError, match="belongs to input 2"):
        w.add(d(2, 0), np.zeros(2, dtype=np.uint64), None)
    w.close()
    assert w.close() == 0
    with pytest.raises(DedupError, match="after close"):
        w.add(d(3, 0), np.zeros(2, dtype=np.uint64), None)
    with pytest.raises(DedupError, match="input_index"):
        BandKeyWriter(str(tmp_path), 1 << 32, SMALL)


def test_writer_grows_past_initial_capacity(tmp_path: Path) -> None:
    cfg = DedupConfig(num_perm=1, bands=1, rows=1, num_buckets=2)
    n = 5000
    assert (
        _write(tmp_path, 0, [(d(0, i), [i], i if i % 2 else None) for i in range(n)], cfg)
        == n + n // 2
    )
    docs = np.concatenate(
        [
            pq.read_table(f).column("doc").to_numpy()
            for f in glob.glob(str(tmp_path / "bands" / "*" / "*.parquet"))
        ]
    )
    assert np.array_equal(np.unique(docs), np.arange(n, dtype=np.uint64))


def test_components_match_reference_union_find() -> None:
    rng = np.random.default_rng(0)
    for trial in range(30):
        n = int(rng.integers(1, 400))
        m = int(rng.integers(0, 2 * n))
        a = rng.integers(0, n, size=m)
        b = rng.integers(0, n, size=m)
        parent = list(range(n))

        def find(x: int, parent: list[int] = parent) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            rx, ry = find(x), find(y)
            if rx != ry:
                parent[max(rx, ry)] = min(rx, ry)
        expected = [find(x) for x in range(n)]
        assert _components(n, a.astype(np.int64), b.astype(np.int64)).tolist() == expected, trial


def test_long_chain_collapses_to_minimum() -> None:
    n = 20_000
    perm = np.random.default_rng(1).permutation(n - 1)
    a = perm.astype(np.int64)
    labels = _components(n, a, a + 1)
    assert (labels == 0).all()


def test_size_ranges() -> None:
    assert [_size_range(s) for s in (2, 3, 4, 5, 8, 9, 1000)] == [
        "2",
        "3-4",
        "3-4",
        "5-8",
        "5-8",
        "9-16",
        "513-1024",
    ]


def test_end_to_end_from_text(tmp_path: Path) -> None:
    cfg = DedupConfig(num_buckets=4)
    hasher = MinHasher(cfg)
    rng = np.random.default_rng(2)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, size=int(k))) for k in rng.integers(2, 9, size=400)]
    base = " ".join(words)
    near = " ".join(["edited" if i in (50, 300) else w for i, w in enumerate(words)])
    other = " ".join(reversed(words))
    texts = {
        0: [other, base, "", "Unique page about something else entirely, with enough words here."],
        1: [base.upper() + "!!!", near, "?? !!"],
    }
    for i, ts in texts.items():
        w = BandKeyWriter(str(tmp_path), i, cfg)
        for j, t in enumerate(ts):
            w.add(d(i, j), hasher.band_keys(hasher.signature(t)), hasher.exact_key(t))
        w.close()
    summary = _phase2(tmp_path, cfg)
    assert _removed(tmp_path) == {
        1: [
            {"doc": d(1, 0), "kept": d(0, 1), "reason": "exact_duplicate"},
            {"doc": d(1, 1), "kept": d(0, 1), "reason": "near_duplicate"},
            # Documents without words are all the same (empty) text.
            {"doc": d(1, 2), "kept": d(0, 2), "reason": "exact_duplicate"},
        ]
    }
    assert summary.clusters == 2


def test_add_batch_writes_the_same_files_as_add(tmp_path: Path) -> None:
    cfg = DedupConfig(num_perm=6, bands=3, rows=2, num_buckets=3)
    rng = np.random.default_rng(4)
    docs = np.array([d(2, i) for i in range(500)], dtype=np.uint64)
    keys = rng.integers(0, 2**63, size=(500, 3), dtype=np.uint64)
    exact = rng.integers(0, 2**63, size=500, dtype=np.uint64)
    one = BandKeyWriter(str(tmp_path / "one"), 2, cfg)
    for i in range(500):
        one.add(int(docs[i]), keys[i], int(exact[i]))
    many = BandKeyWriter(str(tmp_path / "many"), 2, cfg)
    many.add_batch(docs[:200], keys[:200], exact[:200])
    many.add_batch(docs[200:], keys[200:], exact[200:])
    assert one.close() == many.close() == 2000
    for b in range(3):
        rel = os.path.join("bands", f"bucket={b:04d}", "000002.parquet")
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "many" / rel).read_bytes()
    bad = BandKeyWriter(str(tmp_path / "bad"), 2, cfg)
    with pytest.raises(DedupError, match="do not belong to input 2"):
        bad.add_batch(docs[:3] + np.uint64(1 << 32), keys[:3], None)
    with pytest.raises(DedupError, match=r"expected \(3, 3\)"):
        bad.add_batch(docs[:3], keys[:3, :2], None)


# ---- verification of LSH candidates against stored signatures (dedup.min_similarity) -------


def _chain_texts(n_links: int, words_per_text: int = 300, step: int = 45) -> list[str]:
    """Texts that each share most words with the next, while the ends share little.

    Text k is a window of ``words_per_text`` random words starting at ``k * step``: neighbours
    overlap by ``words_per_text - step`` words, text 0 and the last text by far fewer.
    """
    rng = np.random.default_rng(7)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    total = words_per_text + step * (n_links - 1)
    words = ["".join(rng.choice(letters, size=int(k))) for k in rng.integers(3, 9, size=total)]
    return [" ".join(words[k * step : k * step + words_per_text]) for k in range(n_links)]


def _dedup_texts(work: Path, texts: list[str], cfg: DedupConfig) -> ClusterSummary:
    writer = DedupWriter(str(work), 0, cfg)  # phase 1's own writer
    for j, t in enumerate(texts):
        writer.add(d(0, j), t)
    writer.close()
    edge_files = []
    for b in range(cfg.num_buckets):
        files = sorted(glob.glob(str(work / "bands" / f"bucket={b:04d}" / "*.parquet")))
        out = str(work / "edges" / f"bucket={b:04d}.parquet")
        find_bucket_edges(files, out)
        edge_files.append(out)
    return build_clusters(
        edge_files,
        str(work / "dedup"),
        signatures_dir=str(work),
        num_perm=cfg.num_perm,
        min_similarity=cfg.min_similarity,
    )


def _jaccard(hasher: MinHasher, x: str, y: str) -> float:
    a, b = set(hasher.shingles(x)), set(hasher.shingles(y))
    return len(a & b) / len(a | b)


def test_verification_stops_candidate_chains(tmp_path: Path) -> None:
    """A~B~C~... chains: plain LSH components remove the far end; verification keeps it."""
    texts = _chain_texts(6)
    hasher = MinHasher(DedupConfig())
    assert _jaccard(hasher, texts[0], texts[1]) > 0.65  # neighbours: LSH candidates
    assert _jaccard(hasher, texts[0], texts[5]) < 0.3  # ends: unrelated pages

    plain = _dedup_texts(tmp_path / "plain", texts, DedupConfig(min_similarity=0.0))
    verified = _dedup_texts(tmp_path / "verified", texts, DedupConfig(min_similarity=0.75))
    kept_plain = {r["doc"]: r["kept"] for rs in _removed(tmp_path / "plain").values() for r in rs}
    kept_ver = {r["doc"]: r["kept"] for rs in _removed(tmp_path / "verified").values() for r in rs}
    # Without verification the chain collapses: some removal is of a page unlike its kept one.
    assert any(
        _jaccard(hasher, texts[x & 0xFFFF], texts[k & 0xFFFF]) < 0.5 for x, k in kept_plain.items()
    )
    # With it, every removal is of a page similar to the one kept in its place ...
    assert kept_ver
    for doc, kept in kept_ver.items():
        assert kept < doc
        assert _jaccard(hasher, texts[doc & 0xFFFF], texts[kept & 0xFFFF]) >= 0.6
    # ... and the chain's far end survives.
    assert d(0, 5) not in kept_ver or kept_ver[d(0, 5)] >= d(0, 3)
    assert verified.split_by_verification >= 1
    assert plain.split_by_verification == 0
    assert verified.docs_removed < plain.docs_removed


def test_assign_centers_greedy_in_node_order() -> None:
    """Nodes join the first earlier center they match, else become centers themselves."""
    p = 10
    base = np.arange(p, dtype=np.uint32)
    sigs = np.stack(
        [
            base,  # 0: center of component 0
            base + np.array([0] * 8 + [99, 99], dtype=np.uint32),  # 1: 8/10 agree with 0
            base + 50,  # 2: agrees with nobody -> new center
            base + np.array([50] * 9 + [7], dtype=np.uint32),  # 3: 9/10 with 2, 0 with 0
            base,  # 4: identical to 0
            base + 1000,  # 5: own component (root), matches itself
            base + 1000,  # 6: same as 5
        ]
    )
    comp = np.array([0, 0, 0, 0, 0, 5, 5], dtype=np.int64)
    center = _assign_centers(comp, sigs, need=8)
    assert center.tolist() == [0, 0, 2, 2, 0, 5, 5]
    # need=10: only identical signatures stay together.
    assert _assign_centers(comp, sigs, need=10).tolist() == [0, 1, 2, 3, 0, 5, 5]


def test_signatures_round_trip_and_subset(tmp_path: Path) -> None:
    w = SignatureWriter(str(tmp_path), 3, 4)
    rng = np.random.default_rng(0)
    rows = {d(3, j): rng.integers(0, 2**32, size=4, dtype=np.uint64) for j in range(9000)}
    for doc in sorted(rows, reverse=True):  # written sorted whatever the order of add
        w.add(doc, rows[doc])
    assert w.close() == 9000
    assert pq.ParquetFile(w.path).num_row_groups == 3  # read group by group
    want = np.array([d(3, 5), d(3, 17), d(3, 4100), d(3, 8999)], dtype=np.uint64)
    got = load_signatures(str(tmp_path), want, 4)
    assert got.tolist() == [rows[int(x)].tolist() for x in want]
    assert load_signatures(str(tmp_path), np.array([], dtype=np.uint64), 4).shape == (0, 4)
    empty = SignatureWriter(str(tmp_path), 5, 4)
    assert empty.close() == 0  # an input whose documents were all dropped still gets a file
    with pytest.raises(DedupError, match="no signature"):
        load_signatures(str(tmp_path), np.array([d(5, 0)], dtype=np.uint64), 4)
    with pytest.raises(DedupError, match="no signature"):
        load_signatures(str(tmp_path), np.array([d(3, 50000)], dtype=np.uint64), 4)
    with pytest.raises(DedupError, match="missing"):
        load_signatures(str(tmp_path), np.array([d(4, 0)], dtype=np.uint64), 4)
    with pytest.raises(DedupError, match="num_perm"):
        load_signatures(str(tmp_path), want, 8)
    with pytest.raises(DedupError, match="2\\*\\*32"):
        SignatureWriter(str(tmp_path), 0, 2).add(0, np.array([1, 2**40], dtype=np.uint64))


def test_signature_add_batch_writes_the_same_file_as_add(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    docs = np.array([d(1, j) for j in range(3000)], dtype=np.uint64)[::-1].copy()
    sigs = rng.integers(0, 2**32, size=(3000, 7), dtype=np.uint64)
    one = SignatureWriter(str(tmp_path / "one"), 1, 7)
    for doc, sig in zip(docs.tolist(), sigs, strict=True):
        one.add(doc, sig)
    many = SignatureWriter(str(tmp_path / "many"), 1, 7)
    many.add_batch(docs[:0], sigs[:0])  # empty batches are fine
    many.add_batch(docs[:1500], sigs[:1500])  # grows past the initial capacity at once
    many.add_batch(docs[1500:], sigs[1500:].astype(np.uint32))  # uint32 input too
    assert one.close() == many.close() == 3000
    rel = os.path.join("sigs", "000001.parquet")
    assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "many" / rel).read_bytes()
    bad = SignatureWriter(str(tmp_path / "bad"), 1, 7)
    with pytest.raises(DedupError, match=r"expected \(3, 7\)"):
        bad.add_batch(docs[:3], sigs[:3, :6])
    too_big = sigs[:3].copy()
    too_big[1, 4] = 2**40
    with pytest.raises(DedupError, match=rf"doc {int(docs[1])} .*2\*\*32"):
        bad.add_batch(docs[:3], too_big)
