"""The record that flows through every stage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class Document:
    """One web page on its way from a WARC record to a tokenized row.

    ``id`` is the WARC-Record-ID without ``<urn:uuid:`` / ``>`` wrapping (or, for a record
    without one, ``<source-name>@<offset>``). ``doc_index`` is a run-wide integer that orders
    documents deterministically: ``(input_index << 32) | ordinal``, where ``input_index`` is the
    position of the input file in the sorted input list and ``ordinal`` counts the records of
    that file. Dedup keeps the smallest ``doc_index`` of each duplicate cluster.
    """

    id: str
    # The page's URL: WARC-Target-URI, unwrapped for Wayback captures (web.archive.org/web/...).
    url: str
    source: str
    offset: int = 0
    doc_index: int = 0
    crawl: str | None = None
    warc_date: datetime | None = None
    html: str = ""
    text: str = ""
    language: str | None = None
    language_score: float | None = None
    # Token ids (numpy uint32, EOT appended) once the tokenize stage has run.
    token_ids: Any = None
    # WARC-Target-URI exactly as in the record (differs from ``url`` only for Wayback captures).
    warc_target_uri: str = ""
    # Free-form per-stage annotations (e.g. {"pii": {"email": 2}}); not written to Parquet.
    metadata: dict[str, Any] = field(default_factory=dict)
    # ``(text, split_words(text))`` for the text it was split from (``text_utils.doc_words``):
    # the quality stages split a document once. Not part of the document's value.
    word_cache: tuple[str, tuple[str, ...]] | None = field(default=None, repr=False, compare=False)


@dataclass(slots=True, frozen=True)
class Reject:
    """A stage's decision to drop a document: the reason is one of the stage's ``REASONS``."""

    reason: str
    detail: str = ""


RejectSink = Callable[[Document, str, Reject], None]
"""Called as ``sink(doc, stage_name, reject)`` for every dropped document (by the stages and
the readers alike)."""
