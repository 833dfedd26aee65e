"""Read WARC files into Documents (stub: to be implemented)."""

from __future__ import annotations

from pydantic import Field

from dataproc.configbase import StrictModel


class ReaderConfig(StrictModel):
    """Which WARC records become documents, and how payloads are bounded."""

    max_payload_bytes: int = Field(
        5 * 1024 * 1024, ge=1024, description="HTTP payloads are cut at this many bytes (counted)."
    )
    allowed_statuses: list[int] = Field(default_factory=lambda: [200], description="HTTP statuses kept.")
    html_content_types: list[str] = Field(
        default_factory=lambda: ["text/html", "application/xhtml+xml"],
        description="HTTP Content-Types treated as HTML.",
    )
