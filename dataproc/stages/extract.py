"""Text extraction (stub: to be implemented)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dataproc.configbase import StrictModel


class ExtractConfig(StrictModel):
    extractor: Literal["trafilatura", "resiliparse"] = Field("trafilatura", description="Extractor.")
    timeout_seconds: float = Field(1.0, gt=0, description="Per-page extraction time limit.")
    min_chars: int = Field(50, ge=0, description="Drop extractions shorter than this.")
