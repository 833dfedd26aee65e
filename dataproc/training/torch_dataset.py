"""``torch.utils.data.IterableDataset`` over a dataproc output (imports PyTorch; optional).

Use it with ``DataLoader(ds, batch_size=None, num_workers=K)``: the dataset batches itself and
deals whole batches round-robin to the DataLoader workers (batch ``c`` goes to worker
``c % K``), which is exactly the order in which DataLoader collects them. So the batches come
out in the same order whatever ``num_workers`` is, and resuming is "skip the batches already
trained on" (``state_after``). Each worker reads the rank's whole stream and keeps its own
batches (decoding cost × K, memory per worker as in ``TokenLoader``). Workers get a copy of
the dataset's loader (index and plan included), so the manifest is read once per rank.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from dataproc.errors import OutputError
from dataproc.training.loader import TokenLoader


class TokenIterableDataset(IterableDataset):
    """Batches ``{"input_ids": (B, seq_len), "labels": (B, seq_len)}`` of int64 tensors.

    With ``return_boundaries=True`` each batch also has ``"segment_ids"`` (B, seq_len): the
    document number of each input position within its window (starts at 0, +1 after each EOT),
    so ``(seg[:, :, None] == seg[:, None, :]) & causal`` is the intra-document attention mask.
    The last batch of an epoch may be smaller than ``batch_size`` (all ranks alike). Windows
    follow ``TokenLoader(drop_last=True)`` (so a state resumes under another world size too);
    ``out_dir``, ``weights`` and ``epoch_tokens`` are ``TokenLoader``'s (one output or a
    mixture). With ``num_workers > 0`` call ``set_epoch`` before each epoch (the workers'
    copies cannot advance the main process's epoch). A rank with no window is refused here.
    """

    def __init__(
        self,
        out_dir: str | Sequence[str] | Mapping[str, str],
        seq_len: int,
        batch_size: int,
        *,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        epoch: int = 0,
        return_boundaries: bool = False,
        shuffle: bool = True,
        shuffle_blocks: int = 4,
        weights: Sequence[float] | Mapping[str, float] | None = None,
        epoch_tokens: int | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise OutputError(f"batch_size={batch_size}: must be >= 1")
        self.batch_size = batch_size
        self._kwargs: dict[str, Any] = {
            "rank": rank,
            "world_size": world_size,
            "seed": seed,
            "shuffle": shuffle,
            # equal-length windows only (stackable); the remainder rule is TokenLoader's
            "drop_last": True,
            "shuffle_blocks": shuffle_blocks,
            "weights": weights,
            "epoch_tokens": epoch_tokens,
        }
        self.out_dir, self.seq_len, self.return_boundaries = out_dir, seq_len, return_boundaries
        # Built in the main process too: validates the output early and gives len().
        self._loader = TokenLoader(out_dir, seq_len, epoch=epoch, **self._kwargs)
        self._loader.close()
        self.vocab_size: int = self._loader.vocab_size  # for sizing the embedding
        self.eot_id: int = self._loader.eot_id

    def __len__(self) -> int:
        """Batches per epoch for this rank (from the current position on)."""
        remaining = len(self._loader) - self._loader.position
        return -(-remaining // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its first batch."""
        self._loader.set_epoch(epoch)

    def state_after(self, batches: int) -> dict[str, Any]:
        """Loader state after the trainer has consumed ``batches`` batches of this epoch
        (with the per-source accounting of exactly those windows)."""
        position = self._loader.position + batches * self.batch_size
        return self._loader.state_dict(position=min(len(self._loader), position))

    def summary(self) -> dict[str, Any]:
        """Per-source accounting of the loader in this process (see ``TokenLoader.summary``)."""
        return self._loader.summary()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a state made by ``state_after`` (or ``TokenLoader.state_dict``)."""
        self._loader.load_state_dict(state)

    def _batch(self, windows: list[np.ndarray]) -> dict[str, torch.Tensor]:
        arr = torch.from_numpy(np.stack(windows))
        out = {"input_ids": arr[:, :-1], "labels": arr[:, 1:]}
        if self.return_boundaries:
            eot = self._loader.eot_id
            ends = (arr[:, :-1] == eot).to(torch.int64)
            # position i belongs to the document that started after the last EOT before i
            out["segment_ids"] = torch.cumsum(ends, dim=1) - ends
        return out

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch = self._loader.epoch
        loader = self._loader.fresh_copy()  # the index came with the dataset: no manifest read
        pending: list[np.ndarray] = []
        batch_no = 0
        try:
            for window in loader:
                pending.append(window)
                if len(pending) == self.batch_size:
                    if batch_no % workers == worker:
                        yield self._batch(pending)
                    pending, batch_no = [], batch_no + 1
            if pending and batch_no % workers == worker:
                yield self._batch(pending)
        finally:
            loader.close()
        if info is None:
            self._loader.set_epoch(epoch + 1)
