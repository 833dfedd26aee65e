"""Tokenization (stub: to be implemented)."""

from __future__ import annotations

from pydantic import Field

from dataproc.configbase import StrictModel


class TokenizerConfig(StrictModel):
    name: str = Field("cl100k_base", description="tiktoken encoding name.")
    path: str | None = Field(None, description="Local .tiktoken rank file (overrides name's ranks).")
