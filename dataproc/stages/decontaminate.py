"""Decontamination: keep benchmark text out of the training data.

A document that shares a normalized n-gram (default 13 words, as in GPT-3 and Llama's
decontamination) with any item of a configured evaluation set is removed
(``mode: remove``, reason ``contamination:<set>``), or has the overlapping spans cut out
(``mode: cut``; removed anyway if less than ``min_chars_after_cut`` characters remain).
The index is built once per run by the driver (``dataproc/decontam/index.py``) and loaded
once per worker process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from dataproc.configbase import StrictModel
from dataproc.document import Document, Reject
from dataproc.stages.base import Stage

if TYPE_CHECKING:
    from dataproc.decontam.index import DecontamIndex


class EvalSetConfig(StrictModel):
    """One evaluation set: a local file (JSONL, JSON list, Parquet) or a Hugging Face dataset."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="Name used in reasons.")
    path: str | None = Field(None, description="Local or remote JSONL / JSON / Parquet file.")
    hf: str | None = Field(None, description="Hugging Face dataset name (needs the network).")
    hf_config: str | None = Field(None, description="Hugging Face dataset config name.")
    split: str | None = Field("test", description="Hugging Face split.")
    field: str | list[str] = Field(
        "text", description="Field(s) holding the item's text (several are joined)."
    )
    sha256: str | None = Field(
        None,
        description="sha256 of the `path` file: filled in by the run (part of the config "
        "fingerprint, so an edited eval file is a changed config); if given, it must match.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> EvalSetConfig:
        if (self.path is None) == (self.hf is None):
            raise ValueError("give exactly one of `path` or `hf`")
        return self


class DecontamConfig(StrictModel):
    """Remove documents that contain evaluation-set text."""

    enabled: bool = Field(True, description="Check documents against `sets` (none: no-op).")
    sets: list[EvalSetConfig] = Field(
        default_factory=list, description="Evaluation sets to keep out of the data."
    )
    ngram: int = Field(13, ge=3, le=64, description="Words per n-gram.")
    min_item_words: int = Field(
        8,
        ge=1,
        description="Items shorter than `ngram` words but at least this long are matched "
        "whole; shorter items are not indexed (counted in the certificate).",
    )
    mode: Literal["remove", "cut"] = Field(
        "remove", description="`remove` the document, or `cut` the overlapping spans out."
    )
    min_chars_after_cut: int = Field(
        200, ge=0, description="With `cut`: remove the document if fewer characters remain."
    )
    index: str | None = Field(
        None,
        description="Index folder: set by the run to OUT/_work/decontam when `sets` is given.",
    )


class Decontaminator(Stage):
    """Drops (or cuts) documents that share an n-gram with an evaluation set."""

    name: ClassVar[str] = "decontaminate"
    REASONS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: DecontamConfig) -> None:
        self.config = config
        # One reason per configured set, in config order.
        self.__dict__["REASONS"] = tuple(f"contamination:{s.name}" for s in config.sets)
        self._index: DecontamIndex | None = None

    def setup(self) -> None:
        self._index = self._load()

    def _load(self) -> DecontamIndex:
        from dataproc.decontam.index import load_index
        from dataproc.errors import ConfigError

        if self.config.index is None:
            raise ConfigError("decontaminate.index is not set (a run sets it from --output)")
        return load_index(self.config.index)

    def process(self, doc: Document) -> Document | Reject:
        from dataproc.decontam.ngrams import (
            gram_hashes,
            normalized_words,
            word_hashes,
            words_with_spans,
        )

        index = self._index or self._load()
        words = normalized_words(doc.text)
        if not words:
            return doc
        wh = word_hashes(words)
        # One lookup for the grams of every indexed length (starts and lengths kept aside).
        grams = [gram_hashes(wh, n) for n in index.lengths]
        owners = index.lookup(np.concatenate(grams))
        found = np.flatnonzero(owners >= 0)
        hits: list[tuple[int, int, int]] = []  # (first word, words, set id)
        if found.size:
            lengths = np.repeat(index.lengths, [g.size for g in grams])
            starts = np.concatenate([np.arange(g.size) for g in grams])
            hits = [(int(starts[i]), int(lengths[i]), int(owners[i])) for i in found]
        if not hits:
            return doc
        first_set = index.set_names[min(h[2] for h in hits)]
        if self.config.mode == "remove":
            return Reject(f"contamination:{first_set}", f"{len(hits)} shared n-grams")
        text = _cut(doc.text, words_with_spans(doc.text)[1], hits)
        if len(text.strip()) < self.config.min_chars_after_cut:
            return Reject(
                f"contamination:{first_set}",
                f"{len(hits)} shared n-grams; {len(text.strip())} chars left after the cut",
            )
        self.count(f"cut:{first_set}")
        doc.text = text
        return doc


def _cut(text: str, spans: list[tuple[int, int]], hits: list[tuple[int, int, int]]) -> str:
    """``text`` without the characters of every matched window (merged, in order)."""
    ranges = sorted((spans[s][0], spans[s + n - 1][1]) for s, n, _ in hits)
    out = []
    pos = 0
    for a, b in ranges:
        if b <= pos:
            continue
        out.append(text[pos : max(a, pos)])
        pos = b
    out.append(text[pos:])
    return "".join(out)
