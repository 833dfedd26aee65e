"""The pre-extraction gate: drops only sure drops (language confidently not kept, far too short)."""

from __future__ import annotations

import pytest

from dataproc.document import Document, Reject
from dataproc.stages.prefilter import Prefilter, PrefilterConfig, visible_text

DE = (
    "Die Radtour entlang der Mosel beginnt in Koblenz und führt durch steile Weinberge, "
    "kleine Dörfer und alte Burgen. Unterwegs gibt es viele Gelegenheiten, in einer "
    "Straußwirtschaft einzukehren und den regionalen Riesling zu probieren. Die Strecke ist "
    "flach und auch für Familien mit Kindern gut geeignet, denn der Radweg verläuft fast "
    "immer getrennt von der Straße direkt am Ufer des Flusses entlang."
)
EN = (
    "The cycle route along the river starts in the old harbour town and follows the valley "
    "past steep vineyards, small villages and ruined castles. There are many places to stop "
    "for lunch along the way, and the path is flat enough for families with children, because "
    "it runs almost entirely on its own track beside the water, away from the main road."
)


def _page(body: str, nav: str = "Home | About | Contact") -> str:
    return (
        "<html><head><title>t</title><style>p{color:red}</style>"
        "<script>var x = 'ignored words here';</script></head>"
        f"<body><nav>{nav}</nav><!-- a comment --><article><p>{body}</p></article></body></html>"
    )


def _gate(languages: list[str] | None = None, min_words: int = 50, **kw: object) -> Prefilter:
    g = Prefilter(PrefilterConfig(**kw), ["en"] if languages is None else languages, min_words)  # type: ignore[arg-type]
    g.setup()
    return g


def _verdict(g: Prefilter, html: str) -> str:
    r = g.process(Document(id="d", url="https://x.example/", source="s", html=html))
    return r.reason if isinstance(r, Reject) else "kept"


def test_visible_text_drops_scripts_styles_comments() -> None:
    text = visible_text(_page("Hello &amp; welcome"))
    assert "ignored" not in text and "color" not in text and "comment" not in text
    assert "Hello & welcome" in text.splitlines()


def test_confident_other_language_is_dropped_before_extraction() -> None:
    g = _gate()
    assert _verdict(g, _page(DE)) == "language"
    assert _verdict(g, _page(EN)) == "kept"


def test_english_prose_under_foreign_navigation_is_kept() -> None:
    nav = " | ".join(["Startseite", "Über uns", "Kontakt", "Impressum", "Datenschutz"] * 5)
    assert _verdict(_gate(), _page(EN, nav=nav)) == "kept"


def test_mixed_prose_with_enough_english_is_kept() -> None:
    # The English score is far above max_kept_score: the gate cannot be sure.
    assert _verdict(_gate(), _page(DE + " " + EN)) == "kept"


def test_too_little_prose_is_not_judged() -> None:
    short_de = "Die Radtour entlang der Mosel beginnt in Koblenz heute früh."
    assert _verdict(_gate(min_words=0), _page(short_de)) == "kept"


def test_far_too_short_pages_are_dropped_and_the_rule_has_a_margin() -> None:
    g = _gate()  # gopher min 50 words, factor 0.5: below 25 visible words is sure
    assert _verdict(g, _page("Closed today.")) == "too_short"
    thirty = " ".join(["word"] * 30)
    assert _verdict(g, _page(thirty, nav="")) == "kept"  # 30 < 50, but extraction decides
    assert _verdict(_gate(max_words_factor=0.0), _page("Closed today.")) == "kept"


def test_every_language_kept_means_no_language_gate() -> None:
    assert _verdict(_gate(languages=[]), _page(DE)) == "kept"


@pytest.mark.parametrize("lang", [["de"], ["en", "de"]])
def test_kept_languages_are_never_gated(lang: list[str]) -> None:
    assert _verdict(_gate(languages=lang), _page(DE)) == "kept"
