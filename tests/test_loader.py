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
    with pytest.raises(OutputError, match="world_size"):
        TokenLoader(out, 16, world_size=4).load_state_dict(state)


def test_empty_output(tmp_path):
    make_output(str(tmp_path), [0, 0])
    ld = TokenLoader(str(tmp_path), 16)
    assert len(ld) == 0 and list(ld) == []


def test_fewer_tokens_than_one_window_per_rank(tmp_path):
    make_output(str(tmp_path), [2], max_len=5)
    assert [len(TokenLoader(str(tmp_path), 64, rank=r, world_size=2)) for r in range(2)] == [0, 0]


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


def _torch_batches(ds, workers: int) -> list:
    torch = pytest.importorskip("torch")
    dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers)
    return list(dl)


@pytest.mark.parametrize("workers", [0, 2])
def test_torch_adapter_matches_loader_for_any_worker_count(out, workers):
    pytest.importorskip("torch")
    from dataproc.training.torch_dataset import TokenIterableDataset

    ds = TokenIterableDataset(out, 16, 3, rank=1, world_size=2, seed=4, return_boundaries=True)
    batches = _torch_batches(ds, workers)
    windows = list(TokenLoader(out, 16, rank=1, world_size=2, seed=4))
    assert len(batches) == len(ds) == -(-len(windows) // 3)
    flat_x = np.concatenate([b["input_ids"].numpy() for b in batches])
    flat_y = np.concatenate([b["labels"].numpy() for b in batches])
    assert np.array_equal(flat_x, np.stack(windows)[:, :-1])
    assert np.array_equal(flat_y, np.stack(windows)[:, 1:])
    seg = batches[0]["segment_ids"][0].numpy()
    x = batches[0]["input_ids"][0].numpy()
    assert seg[0] == 0 and np.all(np.diff(seg) >= 0)
    for i in np.flatnonzero(x[:-1] == EOT):  # a new document starts right after each EOT
        assert seg[i + 1] == seg[i] + 1


def test_torch_adapter_resume(out):
    pytest.importorskip("torch")
    from dataproc.training.torch_dataset import TokenIterableDataset

    full = _torch_batches(TokenIterableDataset(out, 16, 4, seed=2), 0)
    ds = TokenIterableDataset(out, 16, 4, seed=2)
    state = ds.state_after(5)
    resumed = TokenIterableDataset(out, 16, 4, seed=2)
    resumed.load_state_dict(state)
    tail = _torch_batches(resumed, 2)
    assert len(tail) == len(full) - 5
    for a, b in zip(tail, full[5:], strict=True):
        assert np.array_equal(a["input_ids"].numpy(), b["input_ids"].numpy())
