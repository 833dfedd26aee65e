"""Phase 3's first step: drop the documents run-wide dedup (phase 2) removed."""

from __future__ import annotations

from typing import ClassVar

from dataproc.dedup.components import REASON_EXACT, REASON_NEAR
from dataproc.document import Document, Reject
from dataproc.stages.base import Stage


class RemoveDuplicates(Stage):
    """Drops each document of ``removed`` (``{doc_index: (kept doc_index, reason)}``, one
    input's removal file); its reject ``detail`` names the document kept in its place."""

    name: ClassVar[str] = "dedup"
    REASONS: ClassVar[tuple[str, ...]] = (REASON_EXACT, REASON_NEAR)

    def __init__(self, removed: dict[int, tuple[int, str]]) -> None:
        self.removed = removed

    def process(self, doc: Document) -> Document | Reject:
        hit = self.removed.get(doc.doc_index)
        if hit is None:
            return doc
        kept, reason = hit
        return Reject(reason, f"kept_doc_index:{kept}")

    def text_bytes(self, doc: Document) -> int:
        return 0  # it keeps or drops whole documents: no bytes measured (the report shows "-")
