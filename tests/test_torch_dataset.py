"""The PyTorch adapter for real: DataLoader workers, pin_memory, resume, mixtures, refusals.

CI installs the CPU build of torch (.ci/run) and sets DATAPROC_REQUIRE_TORCH=1, so there a
missing torch fails instead of skipping these tests.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from _output_fixtures import EOT, make_output

from dataproc.config import OutputConfig
from dataproc.errors import OutputError
from dataproc.training import TokenLoader

if os.environ.get("DATAPROC_REQUIRE_TORCH"):
    import torch
else:
    torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader

from dataproc.training.torch_dataset import TokenIterableDataset

# Without an accelerator torch accepts pin_memory=True and warns that nothing is pinned.
pytestmark = pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true")


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    d = tmp_path_factory.mktemp("out")
    make_output(str(d), [37, 0, 51, 12, 29], config=OutputConfig(row_group_rows=8))
    return str(d)


def _batches(ds, workers: int, **kw) -> list:
    return list(DataLoader(ds, batch_size=None, num_workers=workers, **kw))


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_match_the_loader_for_any_worker_count(out, workers):
    ds = TokenIterableDataset(out, 16, 3, rank=1, world_size=2, seed=4, return_boundaries=True)
    batches = _batches(ds, workers, pin_memory=True)
    windows = list(TokenLoader(out, 16, rank=1, world_size=2, seed=4))
    assert len(batches) == len(ds) == -(-len(windows) // 3)
    assert all(b["input_ids"].dtype == torch.int64 for b in batches)
    flat_x = np.concatenate([b["input_ids"].numpy() for b in batches])
    flat_y = np.concatenate([b["labels"].numpy() for b in batches])
    assert np.array_equal(flat_x, np.stack(windows)[:, :-1])
    assert np.array_equal(flat_y, np.stack(windows)[:, 1:])
    seg = batches[0]["segment_ids"][0].numpy()
    x = batches[0]["input_ids"][0].numpy()
    assert seg[0] == 0 and np.all(np.diff(seg) >= 0)
    for i in np.flatnonzero(x[:-1] == EOT):  # a new document starts right after each EOT
        assert seg[i + 1] == seg[i] + 1


def test_resume_with_workers(out):
    full = _batches(TokenIterableDataset(out, 16, 4, seed=2), 0)
    ds = TokenIterableDataset(out, 16, 4, seed=2)
    state = ds.state_after(5)
    resumed = TokenIterableDataset(out, 16, 4, seed=2)
    resumed.load_state_dict(state)
    assert len(resumed) == len(full) - 5
    tail = _batches(resumed, 2, pin_memory=True)
    assert len(tail) == len(full) - 5
    for a, b in zip(tail, full[5:], strict=True):
        assert torch.equal(a["input_ids"], b["input_ids"])


def test_elastic_resume_through_the_adapter(out):
    """Two ranks trained 3 batches each; one rank takes over the rest of the epoch."""
    seq, bs = 15, 2
    old = [TokenIterableDataset(out, seq, bs, rank=r, world_size=2, seed=7) for r in range(2)]
    seen = [torch.cat([b["input_ids"] for b in _batches(ds, 0)[:3]]) for ds in old]
    state = old[0].state_after(3)
    new = TokenIterableDataset(out, seq, bs, rank=0, world_size=1, seed=7)
    new.load_state_dict(state)
    rest = torch.cat([b["input_ids"] for b in _batches(new, 2)])
    rows = [tuple(r.tolist()) for r in torch.cat([*seen, rest])]
    assert len(set(rows)) == len(rows)  # no window twice
    every = TokenLoader(out, seq, seed=7, drop_last=False)
    assert len(rows) >= len(every) - 2  # nothing skipped beyond the new cut's remainder


def test_mixture_and_accounting(out, tmp_path):
    other = str(tmp_path / "b")
    make_output(other, [20, 20], seed=3)
    ds = TokenIterableDataset({"a": out, "b": other}, 16, 4, weights={"a": 1, "b": 1}, seed=1)
    batches = _batches(ds, 2)
    assert sum(b["input_ids"].shape[0] for b in batches) == len(
        TokenLoader({"a": out, "b": other}, 16, weights={"a": 1, "b": 1}, seed=1)
    )
    state = ds.state_after(len(batches))
    tokens = sum(b["input_ids"].shape[0] for b in batches) * 17
    assert sum(state["consumed_tokens"].values()) == tokens


def test_rank_without_a_window_is_refused_at_construction(tmp_path):
    make_output(str(tmp_path), [2], max_len=5)
    with pytest.raises(OutputError, match="would get no window"):
        TokenIterableDataset(str(tmp_path), 100_000, 2, world_size=8)
