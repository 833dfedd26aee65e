"""TokenLoader: packing, rank split, exactly-once, shuffling, resume, refusal of bad files."""

from __future__ import annotations

import collections

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _output_fixtures import EOT, all_docs, make_output

from dataproc.config import OutputConfig
from dataproc.errors import OutputError
from dataproc.io.manifest import read_manifest, write_manifest
from dataproc.training import TokenLoader

SIZES = [37, 0, 51, 12, 29]  # an empty input, files of uneven size


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    d = tmp_path_factory.mktemp("out")
    make_output(str(d), SIZES, config=OutputConfig(row_group_rows=8))
    return str(d)


def _stream(loader) -> np.ndarray:
    return np.concatenate(list(loader)) if len(loader) else np.zeros(0, dtype=np.int64)


def _split_docs(stream: np.ndarray) -> list[tuple[int, ...]]:
    ends = np.flatnonzero(stream == EOT)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [tuple(stream[s : e + 1].tolist()) for s, e in zip(starts, ends, strict=True)]


def test_unshuffled_stream_is_the_documents_in_order(out):
    loader = TokenLoader(out, 64, shuffle=False, drop_last=False)
    expected = np.concatenate(all_docs(SIZES)).astype(np.int64)
    windows = list(loader)
    assert all(w.dtype == np.int64 for w in windows)
    assert all(len(w) == 65 for w in windows[:-1]) and 0 < len(windows[-1]) <= 65
    assert np.array_equal(np.concatenate(windows), expected)
    assert expected.max() > 65535  # the uint16-overflow case is exercised


def test_shuffled_stream_keeps_every_document_whole_and_once(out):
    loader = TokenLoader(out, 50, seed=7, drop_last=False)
    stream = _stream(loader)
    docs = [tuple(d.tolist()) for d in all_docs(SIZES)]
    assert collections.Counter(_split_docs(stream)) == collections.Counter(docs)
    assert _split_docs(stream) != docs  # actually shuffled


def test_documents_longer_than_seq_len_span_windows(out):
    seq_len = 8  # documents are up to 300 tokens
    loader = TokenLoader(out, seq_len, shuffle=False, drop_last=True, return_boundaries=True)
    expected = np.concatenate(all_docs(SIZES)).astype(np.int64)
    got = []
    for w, eots in loader:
        assert len(w) == seq_len + 1
        assert np.array_equal(eots, np.flatnonzero(w == EOT))
        got.append(w)
    n = len(got) * (seq_len + 1)
    assert n == (len(expected) // (seq_len + 1)) * (seq_len + 1)
    assert np.array_equal(np.concatenate(got), expected[:n])


@pytest.mark.parametrize("world", [2, 3, 4, 7])
def test_ranks_disjoint_balanced_and_cover_the_stream(out, world):
    seq_len = 31
    single = _stream(TokenLoader(out, seq_len, seed=3, drop_last=False))
    total = len(single)
    per_rank = [TokenLoader(out, seq_len, rank=r, world_size=world, seed=3) for r in range(world)]
    n = (total // (seq_len + 1)) // world
    assert [len(ld) for ld in per_rank] == [n] * world  # equal: no hang on the last step
    parts = [_stream(ld) for ld in per_rank]
    assert all(len(p) == n * (seq_len + 1) for p in parts)
    # rank r holds windows [r*n, (r+1)*n) of the one global stream: disjoint, in order
    assert np.array_equal(np.concatenate(parts), single[: world * n * (seq_len + 1)])
    assert total - world * n * (seq_len + 1) < world * (seq_len + 1)  # the documented remainder


def test_drop_last_false_uses_every_token_across_ranks(out):
    single = _stream(TokenLoader(out, 40, seed=1, drop_last=False))
    parts = [
        _stream(TokenLoader(out, 40, rank=r, world_size=3, seed=1, drop_last=False))
        for r in range(3)
    ]
    assert np.array_equal(np.concatenate(parts), single)
    assert len(single) == sum(len(d) for d in all_docs(SIZES))


def test_deterministic_per_seed_and_epoch(out):
    a = _stream(TokenLoader(out, 32, seed=5, epoch=1))
    b = _stream(TokenLoader(out, 32, seed=5, epoch=1))
    c = _stream(TokenLoader(out, 32, seed=5, epoch=2))
    d = _stream(TokenLoader(out, 32, seed=6, epoch=1))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_iteration_advances_epoch(out):
    ld = TokenLoader(out, 32, seed=5)
    first = _stream(ld)
    assert ld.epoch == 1
    assert np.array_equal(_stream(ld), _stream(TokenLoader(out, 32, seed=5, epoch=1)))
    ld.set_epoch(0)
    assert np.array_equal(_stream(ld), first)


@pytest.mark.parametrize("k", [0, 1, 5, 17])
def test_resume_mid_epoch_neither_repeats_nor_skips(out, k):
    kwargs = {"rank": 1, "world_size": 2, "seed": 11, "return_boundaries": False}
    full = list(TokenLoader(out, 16, **kwargs))
    a = TokenLoader(out, 16, **kwargs)
    it = iter(a)
    head = [next(it) for _ in range(k)]
    state = a.state_dict()
    assert state["position"] == k
    b = TokenLoader(out, 16, **kwargs)
    b.load_state_dict(state)
    tail = list(b)
    assert len(head) + len(tail) == len(full)
    assert all(np.array_equal(x, y) for x, y in zip(head + tail, full, strict=True))


def test_resume_refuses_different_cut(out):
    state = TokenLoader(out, 16, world_size=2).state_dict()
    with pytest.raises(OutputError, match="seq_len"):
        TokenLoader(out, 12, world_size=2).load_state_dict(state)
    state = TokenLoader(out, 16, world_size=2, drop_last=False).state_dict()
    with pytest.raises(OutputError, match=r"world_size=2.*needs drop_last=True"):
        TokenLoader(out, 16, world_size=4, drop_last=False).load_state_dict(state)


def test_empty_output_is_refused_at_construction(tmp_path):
    make_output(str(tmp_path), [0, 0])
    with pytest.raises(OutputError, match="rank 0 of world_size 1 would get no window"):
        TokenLoader(str(tmp_path), 16)


def test_rank_without_a_window_is_refused_at_construction(tmp_path):
    # issue 14: TokenLoader(out, seq_len=100000, world_size=8) used to yield nothing silently
    make_output(str(tmp_path), [2], max_len=5)
    for r in range(2):
        with pytest.raises(OutputError, match=f"rank {r} of world_size 2 would get no window"):
            TokenLoader(str(tmp_path), 64, rank=r, world_size=2)
    with pytest.raises(OutputError, match="smaller seq_len"):
        TokenLoader(str(tmp_path), 100000, world_size=8)


def test_refuses_uint16_token_file(tmp_path):
    make_output(str(tmp_path), [4])
    m = read_manifest(str(tmp_path))
    path = tmp_path / m["files"][0]["path"]
    t = pq.read_table(path)
    narrowed = pa.array(
        [[min(x, 65535) for x in row] for row in t.column("input_ids").to_pylist()],
        pa.list_(pa.uint16()),
    )
    pq.write_table(t.set_column(1, "input_ids", narrowed), path)
    with pytest.raises(OutputError, match="expected list<uint32>"):
        TokenLoader(str(tmp_path), 16)


def test_refuses_manifest_without_tokenizer_dtype(tmp_path):
    m = make_output(str(tmp_path), [4])
    m["tokenizer"]["dtype"] = None
    write_manifest(str(tmp_path), m)
    with pytest.raises(OutputError, match="dtype uint32"):
        TokenLoader(str(tmp_path), 16)


def test_bad_arguments(out):
    with pytest.raises(OutputError, match="rank"):
        TokenLoader(out, 16, rank=2, world_size=2)
    with pytest.raises(OutputError, match="seq_len"):
        TokenLoader(out, 0)


# ----- plan from the manifest: which files a rank opens -----


def _count_opens(monkeypatch) -> list[str]:
    from dataproc.io import fs

    opened: list[str] = []
    real = fs.open_input

    def counting(path, *args, **kwargs):
        opened.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(fs, "open_input", counting)
    return opened


def test_rank_opens_only_the_manifest_and_the_files_it_reads(out, monkeypatch):
    files = [f["path"] for f in read_manifest(out)["files"]]
    opened = _count_opens(monkeypatch)
    loader = TokenLoader(out, 31, rank=2, world_size=4, seed=3, shuffle_blocks=1)
    assert opened[0].endswith("manifest.json") and len(opened) == 2  # + the first file it reads
    list(loader)
    plan = loader.plan()
    first, end = loader._rank_windows()
    pieces = set()
    for a, b in loader._ranges(first, end):
        pieces.update(range(plan.piece_at(a), plan.piece_at(b - 1) + 1))
    needed = {plan.piece_blocks(i)[0][0] for i in pieces}
    read = [p for p in opened if not p.endswith("manifest.json")]
    assert sorted({p.rsplit("/", 2)[-2] + "/" + p.rsplit("/", 1)[-1] for p in read}) == sorted(
        files[f] for f in needed
    )
    assert len(opened) == 1 + len(set(read)) and len(needed) < len(files)  # each file once


def test_format_1_manifest_gives_the_same_stream(out, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(out, old)
    m = read_manifest(str(old))
    m["format_version"] = 1
    m["files"] = [
        {k: v for k, v in f.items() if not k.startswith("row_group_")} for f in m["files"]
    ]
    write_manifest(str(old), m)
    assert np.array_equal(
        _stream(TokenLoader(str(old), 40, seed=9)), _stream(TokenLoader(out, 40, seed=9))
    )


# ----- elastic resume -----


def _positions(loader) -> np.ndarray:
    """Stream positions of every token this rank yields in its current cut (no I/O)."""
    first, end = loader._rank_windows()
    ranges = loader._ranges(first + loader._position, end)
    return np.concatenate([np.arange(a, b) for a, b in ranges]) if ranges else np.zeros(0, int)


@pytest.mark.parametrize(("old", "new"), [(8, 6), (6, 8), (4, 1)])
def test_elastic_resume_neither_repeats_nor_skips(out, old, new):
    seq_len, k = 15, 7
    kw = {"seed": 21, "shuffle_blocks": 2}
    reference = _stream(TokenLoader(out, seq_len, drop_last=False, **kw))  # the epoch stream
    first_run = [TokenLoader(out, seq_len, rank=r, world_size=old, **kw) for r in range(old)]
    seen = []
    for ld in first_run:
        pos = _positions(ld)[: k * (seq_len + 1)]
        it = iter(ld)
        got = np.concatenate([next(it) for _ in range(k)])
        assert np.array_equal(got, reference[pos])
        seen.append(pos)
    states = [ld.state_dict() for ld in first_run]
    assert all({**s, "rank": 0} == {**states[0], "rank": 0} for s in states)  # any rank's will do
    second = []
    for r in range(new):
        ld = TokenLoader(out, seq_len, rank=r, world_size=new, **kw)
        ld.load_state_dict(states[r % old])
        pos = _positions(ld)
        assert np.array_equal(_stream(ld), reference[pos])
        second.append(pos)
    assert len({len(p) for p in second}) == 1  # the new ranks are equal too
    used = np.concatenate(seen + second)
    assert len(np.unique(used)) == len(used)  # no token twice
    skipped = len(reference) - len(used)
    assert 0 <= skipped < (new + 1) * (seq_len + 1)  # only the new cut's remainder


def test_same_world_resume_after_elastic_resume_is_exact(out):
    """3 ranks -> 5 ranks, then rank 1 of 5 restarts mid-cut: exact continuation."""
    kw = {"seed": 2, "world_size": 3}
    a = TokenLoader(out, 15, **kw)
    it = iter(a)
    for _ in range(4):
        next(it)
    b = TokenLoader(out, 15, rank=1, seed=2, world_size=5)
    b.load_state_dict(a.state_dict())
    expect = list(b)
    c = TokenLoader(out, 15, rank=1, seed=2, world_size=5)
    c.load_state_dict(a.state_dict())
    it = iter(c)
    head = [next(it) for _ in range(3)]
    d = TokenLoader(out, 15, rank=1, seed=2, world_size=5)
    d.load_state_dict(c.state_dict())
    tail = list(d)
    assert all(np.array_equal(x, y) for x, y in zip(head + tail, expect, strict=True))
    assert b.epoch == 1 and b._segments.ranges == [(0, b.total_tokens)]


# ----- mixtures -----

A_IDS, B_IDS = (0, 50_000), (50_000, 100_000)


def _make_source(path: str, sizes: list[int], ids: tuple[int, int], seed: int) -> dict:
    """An output whose body token ids lie in ``ids`` (documents of >= 2 tokens)."""
    from _output_fixtures import TOKENIZER, make_docs

    from dataproc.io.manifest import replace_files
    from dataproc.io.token_writer import TokenShardWriter

    empty = make_output(path, [])
    files = []
    for i, n in enumerate(sizes):
        w = TokenShardWriter(path, i, OutputConfig(row_group_rows=8), TOKENIZER)
        for d in make_docs(i, n, seed=seed, max_len=120):
            body = d.token_ids[:-1] % (ids[1] - ids[0]) + ids[0]
            if not len(body):
                body = np.array([ids[0]], dtype=np.uint32)
            d.token_ids = np.concatenate([body, d.token_ids[-1:]]).astype(np.uint32)
            w.write(d)
        files += w.close()
    m = replace_files(empty, files)
    write_manifest(path, m)
    return m


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    a = str(tmp_path_factory.mktemp("a"))
    b = str(tmp_path_factory.mktemp("b"))
    _make_source(a, [40, 25, 31], A_IDS, seed=1)
    _make_source(b, [12, 9], B_IDS, seed=2)
    return {"a": a, "b": b}


def _count_by_id(windows: list[np.ndarray]) -> dict[str, int]:
    """Tokens per source by id range; EOT belongs to the token before it (same document)."""
    stream = np.concatenate(windows)
    owner = np.where(stream < B_IDS[0], 0, 1)
    eot = np.flatnonzero(stream == EOT)
    owner[eot] = owner[eot - 1]  # documents have >= 2 tokens, so eot >= 1
    return {"a": int((owner == 0).sum()), "b": int((owner == 1).sum())}


def test_mixture_accounting_is_exact_per_rank_and_overall(mix):
    kw = {"weights": {"a": 0.7, "b": 0.3}, "seed": 5, "epoch_tokens": 40_000}
    world = 3
    loaders = [TokenLoader(mix, 31, rank=r, world_size=world, **kw) for r in range(world)]
    assert loaders[0].quotas == [28_000, 12_000] and loaders[0].total_tokens == 40_000
    per_rank = []
    for ld in loaders:
        it = iter(ld)
        windows = [next(it) for _ in range(len(ld) - 1)]  # stop one window before the end
        counted = _count_by_id(windows)
        assert ld.state_dict()["rank_tokens"] == counted
        assert {n: s["rank_tokens"] for n, s in ld.summary()["sources"].items()} == counted
        per_rank.append(counted)
    consumed = loaders[0].state_dict()["consumed_tokens"]
    assert consumed == {n: sum(c[n] for c in per_rank) for n in ("a", "b")}
    share = consumed["b"] / (consumed["a"] + consumed["b"])
    assert abs(share - 0.3) < 0.05  # spread evenly, not one source after the other


def test_mixture_full_epoch_hits_the_quotas_exactly(mix):
    ld = TokenLoader(mix, 50, weights=[1, 3], seed=8, drop_last=False, epoch_tokens=33_333)
    windows = list(ld)
    assert _count_by_id(windows) == dict(zip(["a", "b"], ld.quotas, strict=True))
    assert ld.quotas == [8_333, 25_000]
    s = ld.summary()["sources"]
    assert s["a"]["consumed_tokens"] == 8_333 and s["b"]["consumed_tokens"] == 25_000


def test_upsampling_repeats_documents_pass_by_pass(mix):
    b_docs = _doc_counts(TokenLoader(mix["b"], 50, shuffle=False, drop_last=False))
    natural_b = TokenLoader(mix["b"], 50).total_tokens
    natural_a = TokenLoader(mix["a"], 50).total_tokens
    ld = TokenLoader(
        mix,
        50,
        weights={"a": 1, "b": 2.5 * natural_b / natural_a},
        seed=3,
        drop_last=False,
        epoch_tokens=natural_a + int(2.5 * natural_b),
    )
    got = _doc_counts(ld)
    assert ld.summary()["sources"]["b"]["repeats_per_epoch"] == pytest.approx(2.5, abs=0.01)
    for doc in b_docs:
        assert 2 <= got[doc] <= 3  # two full passes, then part of a third (fresh shuffles)
    assert sum(got[d] == 3 for d in b_docs) > 0


def _doc_counts(loader) -> collections.Counter:
    return collections.Counter(_split_docs(_stream(loader)))


def test_mixture_is_deterministic_from_the_seed(mix):
    kw = {"weights": [0.5, 0.5]}
    a = _stream(TokenLoader(mix, 31, seed=1, **kw))
    assert np.array_equal(a, _stream(TokenLoader(mix, 31, seed=1, **kw)))
    assert not np.array_equal(a, _stream(TokenLoader(mix, 31, seed=2, **kw)))


def test_mixture_refuses_another_tokenizer(mix, tmp_path):
    import shutil

    other = tmp_path / "o200k"
    shutil.copytree(mix["b"], other)
    m = read_manifest(str(other))
    m["tokenizer"].update(name="o200k_base", eot_id=199999, vocab_size=200019)
    write_manifest(str(other), m)
    with pytest.raises(OutputError, match=r"different tokenizers.*cannot be mixed"):
        TokenLoader({"a": mix["a"], "o": str(other)}, 31, weights=[1, 1])


def test_mixture_state_resumes_with_its_accounting(mix):
    kw = {"weights": [2, 1], "seed": 4, "world_size": 2}
    a = TokenLoader(mix, 31, rank=0, **kw)
    it = iter(a)
    for _ in range(10):
        next(it)
    state = a.state_dict()
    b = TokenLoader(mix, 31, rank=0, world_size=3, weights=[2, 1], seed=4)
    b.load_state_dict(state)
    assert b.state_dict()["consumed_tokens"] == state["consumed_tokens"]
    with pytest.raises(OutputError, match="sources"):
        TokenLoader(mix, 31, rank=0, weights=[1, 1], seed=4, world_size=2).load_state_dict(state)


def test_fresh_copy_reads_no_manifest(out, monkeypatch):
    loader = TokenLoader(out, 31, rank=1, world_size=2, seed=3)
    expected = list(TokenLoader(out, 31, rank=1, world_size=2, seed=3))
    opened = _count_opens(monkeypatch)
    got = list(loader.fresh_copy())
    assert not [p for p in opened if p.endswith("manifest.json")]
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
    assert loader.position == 0  # the original is untouched


def test_state_of_the_previous_loader_version_still_resumes(out):
    """States saved before elastic resume (format 1) continue exactly: same stream."""
    kw = {"rank": 1, "world_size": 2, "seed": 11}
    full = list(TokenLoader(out, 16, **kw))
    a = TokenLoader(out, 16, **kw)
    it = iter(a)
    head = [next(it) for _ in range(6)]
    keys = ["epoch", "position", "seed", "seq_len", "rank", "world_size", "shuffle"]
    keys += ["shuffle_blocks", "drop_last", "total_tokens"]
    old = {k: a.state_dict()[k] for k in keys} | {"format": "dataproc.TokenLoader/1"}
    b = TokenLoader(out, 16, **kw)
    b.load_state_dict(old)
    tail = list(b)
    assert all(np.array_equal(x, y) for x, y in zip(head + tail, full, strict=True))
    with pytest.raises(OutputError, match="world_size"):
        TokenLoader(out, 16, rank=0, world_size=3, seed=11).load_state_dict(old)
