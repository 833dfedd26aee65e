"""The ``reader`` config section: which WARC records become documents, and the bounds on
payloads, header lines and the look-back used to resync after damage."""

from __future__ import annotations

from pydantic import Field

from dataproc.configbase import StrictModel
from dataproc.readers.stream import RAW_CHUNK_BYTES


class ReaderConfig(StrictModel):
    """Which WARC records become documents, and how payloads are bounded."""

    max_payload_bytes: int = Field(
        5 * 1024 * 1024, ge=1024, description="HTTP payloads are cut at this many bytes (counted)."
    )
    allowed_statuses: list[int] = Field(
        default_factory=lambda: [200], description="HTTP statuses kept."
    )
    html_content_types: list[str] = Field(
        default_factory=lambda: ["text/html", "application/xhtml+xml"],
        description="HTTP Content-Types treated as HTML.",
    )
    sniff_missing_content_type: bool = Field(
        True,
        description="When a response has no Content-Type at all, keep it if the payload starts "
        "like HTML (`<!doctype html`, `<html`, `<head`); counted as `content_type_sniffed`.",
    )
    max_header_line_bytes: int = Field(
        64 * 1024,
        ge=1024,
        description="WARC/HTTP header lines are cut at this many bytes (bounds memory on junk input).",
    )
    max_resync_history_bytes: int = Field(
        8 * 1024 * 1024,
        ge=RAW_CHUNK_BYTES,
        description="Compressed bytes of the current gzip member kept so that, if the member "
        "turns out corrupt, the scan for the next member can start right after its header.",
    )
