"""Phase-1 side of dedup for one input file: hash each document, write its keys on close.

One place for what every producer of dedup input does per document — MinHash signature, LSH
band keys, exact-text key — so the pipeline and ``dataproc eval dedup`` cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from dataproc.dedup.buckets import BandKeyWriter
from dataproc.dedup.config import DedupConfig
from dataproc.dedup.minhash import MinHasher

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from dataproc.document import Document


class DedupWriter:
    """Band keys and 8-bit signature sketches (``_work/bands``) of one input file.

    The full signatures are not stored: phase 2 verifies candidates on the sketches that travel
    with every band row (``dataproc.dedup.edges``), so it never reads signatures at random.
    In phase 1 it is a sink (``write``/``close``/``abort``), counted as ``minhash``.
    """

    name: ClassVar[str | None] = "minhash"

    def __init__(self, work_dir: str, input_index: int, config: DedupConfig) -> None:
        self.config = config
        self.hasher = MinHasher(config)
        self._bands = BandKeyWriter(work_dir, input_index, config)

    def add(self, doc_index: int, text: str) -> tuple[NDArray[np.uint64], int | None]:
        """Hash one document and record it; return its band keys and exact key (or None)."""
        sig = self.hasher.signature(text)
        keys = self.hasher.band_keys(sig)
        exact = self.hasher.exact_key(text) if self.config.exact else None
        self._bands.add(doc_index, keys, exact, sig)
        return keys, exact

    def write(self, doc: Document) -> None:
        """Sign one document (the ``Sink`` form of ``add``)."""
        self.add(doc.doc_index, doc.text)

    def close(self) -> None:
        """Write the band-key file (one object per input file)."""
        self._bands.close()

    def abort(self) -> None:
        """Nothing is written before ``close()``: there is nothing to discard."""
