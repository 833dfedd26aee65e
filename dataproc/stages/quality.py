"""Quality heuristics (stub: to be implemented)."""

from __future__ import annotations

from pydantic import Field

from dataproc.configbase import StrictModel


class QualityConfig(StrictModel):
    enabled: bool = Field(True, description="Run the quality filters.")
