"""The built-in phase-1 steps: their names, where their settings live, what they work on.

One row per step a pipeline's ``steps:`` list may name. ``section`` is the config section that
holds the step's settings (``quality.c4`` for ``c4``); ``works_on`` places it around
``extract`` (``html`` steps run before it, ``text`` steps after); ``build`` makes the stage(s)
from the whole config, or none when the step's own settings switch it off. Heavy modules are
imported only when a step is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dataproc.stages.quality import QUALITY_STAGES, quality_stage, quality_stages

if TYPE_CHECKING:
    from dataproc.config import PipelineConfig
    from dataproc.stages.base import Stage

WorksOn = Literal["html", "extract", "text"]
"""``html``: reads the page (URL, HTML, headers), runs before ``extract``; ``extract``: turns
HTML into text (one per pipeline); ``text``: reads ``doc.text``, runs after ``extract``."""


@dataclass(frozen=True)
class Builtin:
    """One built-in step."""

    name: str
    section: tuple[str, ...]
    works_on: WorksOn
    build: Callable[[PipelineConfig], list[Stage]]
    includes: tuple[str, ...] = ()  # a group (``quality``): the steps it stands for


def _url_filter(c: PipelineConfig) -> list[Stage]:
    from dataproc.stages.url_filter import UrlFilter

    return [UrlFilter(c.url_filter)] if c.url_filter.enabled else []


def _consent(c: PipelineConfig) -> list[Stage]:
    from dataproc.stages.consent import ConsentFilter

    return [ConsentFilter(c.consent)] if c.consent.enabled else []


def _prefilter(c: PipelineConfig) -> list[Stage]:
    from dataproc.stages.prefilter import Prefilter

    if not c.prefilter.enabled:
        return []
    # The prefilter drops only what a later step would drop: the language gate needs the
    # langid step, the too-short rule the gopher_quality step (with their settings).
    names = c.step_names()
    languages = c.langid.languages if "langid" in names else None
    gopher = c.quality.gopher_quality
    on = "gopher_quality" in names and c.quality.enabled and gopher.enabled
    min_words = gopher.min_words if on else 0
    return [Prefilter(c.prefilter, languages, min_words, c.langid.model_path)]


def _extract(c: PipelineConfig) -> list[Stage]:
    from dataproc.stages.extract import Extractor

    return [Extractor(c.extract)]


def _langid(c: PipelineConfig) -> list[Stage]:
    from dataproc.stages.langid import LanguageId

    return [LanguageId(c.langid)]


def _quality_part(name: str) -> Callable[[PipelineConfig], list[Stage]]:
    def build(c: PipelineConfig) -> list[Stage]:
        stage = quality_stage(name, c.quality)
        return [stage] if stage is not None else []

    return build


def _quality(c: PipelineConfig) -> list[Stage]:
    return quality_stages(c.quality)


def _pii(c: PipelineConfig) -> list[Stage]:
    from dataproc.stages.pii import PiiScrubber

    return [PiiScrubber(c.pii)] if c.pii.enabled else []


def _decontaminate(c: PipelineConfig) -> list[Stage]:
    from dataproc.stages.decontaminate import Decontaminator

    d = c.decontaminate
    return [Decontaminator(d)] if d.enabled and d.sets else []


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin("url_filter", ("url_filter",), "html", _url_filter),
        Builtin("consent", ("consent",), "html", _consent),
        Builtin("prefilter", ("prefilter",), "html", _prefilter),
        Builtin("extract", ("extract",), "extract", _extract),
        Builtin("langid", ("langid",), "text", _langid),
        Builtin("quality", ("quality",), "text", _quality, includes=QUALITY_STAGES),
        *(Builtin(n, ("quality", n), "text", _quality_part(n)) for n in QUALITY_STAGES),
        Builtin("pii", ("pii",), "text", _pii),
        Builtin("decontaminate", ("decontaminate",), "text", _decontaminate),
    )
}

DEFAULT_STEPS = (
    "url_filter",
    "consent",
    "prefilter",
    "extract",
    "langid",
    "quality",
    "pii",
    "decontaminate",
)
"""The steps of a pipeline that lists none (FineWeb's order)."""

RESERVED_NAMES = ("read", "minhash", "dedup", "tokenize")
"""Stage names of the steps outside the list (``stats.json`` keys): no step may take them."""
