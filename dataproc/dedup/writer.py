"""Phase-1 side of dedup for one input file: hash each document, write its keys on close.

One place for what every producer of dedup input does per document — MinHash signature, LSH
band keys, exact-text key — so the pipeline and ``dataproc eval dedup`` cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataproc.dedup.buckets import BandKeyWriter
from dataproc.dedup.config import DedupConfig
from dataproc.dedup.minhash import MinHasher
from dataproc.dedup.signatures import SignatureWriter

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


class DedupWriter:
    """Band keys (``_work/bands``) and signatures (``_work/sigs``) of one input file."""

    def __init__(self, work_dir: str, input_index: int, config: DedupConfig) -> None:
        self.config = config
        self.hasher = MinHasher(config)
        self._bands = BandKeyWriter(work_dir, input_index, config)
        # Written even with min_similarity 0, so that phase-1 output does not depend on it.
        self._sigs = SignatureWriter(work_dir, input_index, config.num_perm)

    def add(self, doc_index: int, text: str) -> tuple[NDArray[np.uint64], int | None]:
        """Hash one document and record it; return its band keys and exact key (or None)."""
        sig = self.hasher.signature(text)
        keys = self.hasher.band_keys(sig)
        exact = self.hasher.exact_key(text) if self.config.exact else None
        self._bands.add(doc_index, keys, exact)
        self._sigs.add(doc_index, sig)
        return keys, exact

    def close(self) -> None:
        """Write the band-key files (one per bucket) and the signature file."""
        self._bands.close()
        self._sigs.close()
