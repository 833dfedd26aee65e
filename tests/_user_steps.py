"""User steps for tests/test_steps.py: what a user's own module holds (importable from tests/)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from dataproc.configbase import StrictModel
from dataproc.document import Document, Reject
from dataproc.stages.base import Stage


class KeywordFilter(Stage):
    """Drops documents containing a word."""

    name = "keyword"
    REASONS = ("keyword",)

    class Config(StrictModel):
        word: str = "forbidden"
        min_count: int = Field(1, ge=1)

    def __init__(self, config: Config) -> None:
        self.config = config

    def process(self, doc: Document) -> Document | Reject:
        n = doc.text.lower().count(self.config.word)
        if n >= self.config.min_count:
            return Reject("keyword", f"{n} x {self.config.word}")
        self.count("checked")
        return doc


class PageMarker(Stage):
    """A step without settings that reads the page: runs before extract."""

    name = "page_marker"
    WORKS_ON = "html"

    def process(self, doc: Document) -> Document | Reject:
        return doc


class LooseConfig(Stage):
    """Its Config is a plain BaseModel (extra keys ignored by pydantic): still checked."""

    name = "loose"

    class Config(BaseModel):
        level: int = 1

    def __init__(self, config: Config) -> None:
        if config.level > 5:
            raise ValueError("level above 5 is not supported")
        self.config = config

    def process(self, doc: Document) -> Document | Reject:
        return doc


class Unnamed(Stage):
    def process(self, doc: Document) -> Document | Reject:
        return doc


class NamedLikeABuiltin(Stage):
    name = "langid"


class NamedLikeASection(Stage):
    name = "tokenizer"


class NotAStage:
    name = "nope"
