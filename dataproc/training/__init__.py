"""Feed a dataproc output to a training job: packed, sharded, shuffled, resumable sequences.

``TokenLoader`` needs only NumPy and pyarrow; ``dataproc.training.torch_dataset`` adapts it to
``torch.utils.data.IterableDataset`` when PyTorch is installed. See docs/training.md.
"""

from __future__ import annotations

from dataproc.training.loader import TokenLoader

__all__ = ["TokenLoader"]
