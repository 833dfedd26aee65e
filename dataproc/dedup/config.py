"""Dedup configuration (stub: to be implemented)."""

from __future__ import annotations

from pydantic import Field

from dataproc.configbase import StrictModel


class DedupConfig(StrictModel):
    enabled: bool = Field(True, description="Run near-dedup across the whole run.")
    num_perm: int = Field(112, ge=1)
    bands: int = Field(14, ge=1)
    rows: int = Field(8, ge=1)
    ngram: int = Field(5, ge=1)
    seed: int = Field(1)
    exact: bool = Field(True)
    num_buckets: int = Field(16, ge=1)
