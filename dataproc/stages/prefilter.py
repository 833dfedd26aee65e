"""Pre-extraction gate: drop pages a cheap look already decides, before trafilatura runs.

Extraction is most of a page's CPU, and for a one-language pipeline most pages are dropped
right after it (by language ID). The gate looks at the page's *visible text* — tags, scripts,
styles and comments stripped by bounded regular expressions, ~1 ms a page — and drops only
what is sure to be dropped later:

- ``language``: the text blocks of the page that look like prose (at least
  ``min_block_words`` words each; navigation and menus are shorter) are, for ``lid.176``,
  confidently in a language the pipeline does not keep: the top label is not kept with
  probability ≥ ``min_top_score``, **and** the best kept language scores ≤
  ``max_kept_score``, on at least ``min_chars`` characters of prose. Pages with too little
  prose are not judged; they go on to extraction.
- ``too_short``: the whole visible text has fewer than ``max_words_factor`` × the Gopher
  minimum words (extraction keeps a subset of the visible text, so it can only have fewer).

Every page the gate cannot decide goes on to extraction exactly as without it.
The loss this costs, measured against a run without the gate, is in docs/quality.md.
"""

from __future__ import annotations

import html as html_lib
import re
from typing import Any, ClassVar

from pydantic import Field

from dataproc.configbase import StrictModel
from dataproc.document import Document, Reject
from dataproc.stages.base import Stage

_INVISIBLE = re.compile(
    r"<(script|style|template|svg)\b[^>]{0,2000}>.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL
)
_BLOCK_TAG = re.compile(
    r"</?(?:p|div|br|li|ul|ol|h[1-6]|tr|td|th|table|section|article|header|footer|nav|"
    r"blockquote|pre|dd|dt|form|aside|main|title|option)\b[^>]{0,2000}>",
    re.IGNORECASE,
)
_TAG = re.compile(r"<[^>]{0,2000}>")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")


class PrefilterConfig(StrictModel):
    """The pre-extraction gate (drops only pages a cheap look is sure about)."""

    enabled: bool = Field(
        True,
        description="Drop pages whose visible text is confidently in a language not kept, or "
        "far too short, before extraction. No effect on language when `langid.languages` is "
        "empty.",
    )
    min_top_score: float = Field(
        0.90, ge=0, le=1, description="lid.176 probability the top (not kept) language needs."
    )
    max_kept_score: float = Field(
        0.01, ge=0, le=1, description="The best kept language may score at most this."
    )
    min_chars: int = Field(
        300, ge=1, description="Characters of prose blocks needed before the language is judged."
    )
    min_block_words: int = Field(
        8, ge=1, description="Words a text block needs to count as prose (menus are shorter)."
    )
    max_words_factor: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Drop as too short when the visible text has fewer words than this × "
        "quality.gopher_quality.min_words (0: never).",
    )


def visible_text(html: str) -> str:
    """The page's visible text, one text block per line (cheap; not an extractor)."""
    text = _INVISIBLE.sub(" ", html)
    text = _BLOCK_TAG.sub("\n", text)
    text = _TAG.sub(" ", text)
    text = html_lib.unescape(text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


class Prefilter(Stage):
    """Drops sure drops before extraction (see the module docstring)."""

    name: ClassVar[str] = "prefilter"
    REASONS: ClassVar[tuple[str, ...]] = ("language", "too_short")

    def __init__(
        self,
        config: PrefilterConfig,
        languages: list[str] | None,
        min_words: int,
        model_path: str | None = None,
    ) -> None:
        self.config = config
        self._keep = frozenset(languages or ())
        self._min_words = int(min_words * config.max_words_factor)
        self._model_path = model_path
        self._model: Any = None

    def setup(self) -> None:
        if self._keep and self._model is None:
            from dataproc.stages.langid import load_model

            self._model = load_model(self._model_path)

    def process(self, doc: Document) -> Document | Reject:
        from dataproc.stages.text_utils import split_words

        # A WET conversion record arrives as text already (no HTML): judge that text.
        text = visible_text(doc.html) if doc.html else doc.text
        if self._min_words:
            n_words = len(split_words(text))
            if n_words < self._min_words:
                return Reject("too_short", f"{n_words} visible words < {self._min_words}")
        if not self._keep:
            return doc
        verdict = self._language(text)
        if verdict is not None:
            return Reject("language", verdict)
        return doc

    def _language(self, text: str) -> str | None:
        """A reason detail if the prose is confidently in a language not kept, else None."""
        from dataproc.stages.langid import _LABEL_PREFIX, _NEWLINES
        from dataproc.stages.text_utils import split_words

        cfg = self.config
        prose: list[str] = []
        size = 0
        for line in text.split("\n"):
            # Words as the quality rules count them (each CJK character is one).
            if len(line) >= cfg.min_block_words and len(split_words(line)) >= cfg.min_block_words:
                prose.append(line)
                size += len(line)
                if size >= 2000:
                    break
        if size < cfg.min_chars:
            return None
        if self._model is None:
            self.setup()
        sample = " ".join(prose)[:2000].translate(_NEWLINES)
        pairs = self._model.f.predict(sample + "\n", 5, 0.0, "strict")
        if not pairs:
            return None
        scores = {label.removeprefix(_LABEL_PREFIX): float(p) for p, label in pairs}
        top, top_score = max(scores.items(), key=lambda kv: kv[1])
        kept_score = max((scores.get(lang, 0.0) for lang in self._keep), default=0.0)
        if top in self._keep or top_score < cfg.min_top_score or kept_score > cfg.max_kept_score:
            return None
        return f"{top} {min(top_score, 1.0):.2f} (kept {kept_score:.3f})"
