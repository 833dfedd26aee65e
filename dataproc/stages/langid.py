"""Language identification (stub: to be implemented)."""

from __future__ import annotations

from pydantic import Field

from dataproc.configbase import StrictModel


class LangIdConfig(StrictModel):
    languages: list[str] | None = Field(default_factory=lambda: ["en"], description="Languages kept (None: all).")
    min_score: float = Field(0.65, ge=0, le=1, description="Minimum fastText probability.")
