"""PII scrubbing (stub: to be implemented)."""

from __future__ import annotations

from pydantic import Field

from dataproc.configbase import StrictModel


class PiiConfig(StrictModel):
    enabled: bool = Field(True, description="Scrub PII.")
