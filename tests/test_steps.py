"""Pipelines as step lists: built-in names and settings, users' own steps, order, fingerprint."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dataproc.config import build_config, load_config
from dataproc.errors import ConfigError
from dataproc.steps.build import build_stages, check_user_steps
from dataproc.steps.builtin import DEFAULT_STEPS

BASE = ["url_filter", "consent", "prefilter", "extract", "langid", "quality", "pii"]
KEYWORD = "_user_steps:KeywordFilter"


def _with(*extra: object, at: int = len(BASE)) -> list[object]:
    steps: list[object] = list(BASE)
    steps[at:at] = list(extra)
    return steps


def test_a_file_without_steps_runs_the_default_list_with_the_same_fingerprint() -> None:
    implicit = build_config({"langid": {"min_score": 0.7}})
    explicit = build_config({"steps": list(DEFAULT_STEPS), "langid": {"min_score": 0.7}})
    assert implicit.step_names() == explicit.step_names()
    assert implicit.step_names()[5:9] == ["gopher_repetition", "gopher_quality", "c4", "fineweb"]
    assert implicit.fingerprint() == explicit.fingerprint()


def test_settings_in_the_entry_are_the_section() -> None:
    inline = build_config({"steps": [*BASE[:4], {"langid": {"min_score": 0.8}}, *BASE[5:]]})
    section = build_config({"steps": BASE, "langid": {"min_score": 0.8}})
    assert inline.langid.min_score == section.langid.min_score == 0.8
    assert inline.fingerprint() == section.fingerprint()
    # A part of a group has its group's sub-section.
    c4 = build_config({"steps": [*BASE[:5], {"c4": {"min_sentences": 2}}]})
    assert c4.quality.c4.min_sentences == 2
    assert c4.step_names()[-1] == "c4"


def test_a_key_in_both_places_is_an_error_but_set_changes_it_wherever_it_was() -> None:
    both = {"steps": [*BASE[:4], {"langid": {"min_score": 0.8}}], "langid": {"min_score": 0.9}}
    with pytest.raises(ConfigError, match=r"p\.yaml: langid\.min_score is set both in steps\[4\]"):
        build_config(both, source="p.yaml")
    inline = {"steps": [*BASE[:4], {"langid": {"min_score": 0.8, "languages": ["de"]}}]}
    c = build_config(inline, ["langid.min_score=0.5"], source="p.yaml")
    assert (c.langid.min_score, c.langid.languages) == (0.5, ["de"])


def test_fingerprint_follows_steps_order_and_settings() -> None:
    prints = {
        build_config({"steps": BASE}).fingerprint(),
        build_config({"steps": [s for s in BASE if s != "pii"]}).fingerprint(),
        build_config({"steps": [*BASE[:5], "pii", "quality"]}).fingerprint(),
        build_config({"steps": _with(KEYWORD)}).fingerprint(),
        build_config({"steps": _with({KEYWORD: {"word": "x"}})}).fingerprint(),
        build_config({"steps": _with(KEYWORD)}, ["keyword.min_count=2"]).fingerprint(),
    }
    assert len(prints) == 6
    # Same step, same settings, written either way: same run.
    assert (
        build_config({"steps": _with({KEYWORD: {"word": "x"}})}).fingerprint()
        == build_config({"steps": _with(KEYWORD), "keyword": {"word": "x"}}).fingerprint()
    )


@pytest.mark.parametrize(
    ("steps", "extra", "needle"),
    [
        (["langdi", "extract"], {}, "unknown step 'langdi'; did you mean 'langid'?"),
        (["extract", "url_filter"], {}, "'url_filter' works on the page"),
        (["langid", "extract"], {}, "'langid' works on the extracted text and must come after"),
        (["extract", "quality", "c4"], {}, "'c4' is listed twice (quality includes"),
        (["url_filter", "langid"], {}, "exactly one step that turns HTML into text"),
        (["extract", {"langid": {"min_scor": 1}}], {}, "unknown key 'langid.min_scor'"),
        (["extract", {"langid": [1]}], {}, "expected a step name"),
        (["extract", "no_such_module_xyz:Step"], {}, "cannot import 'no_such_module_xyz'"),
        (["extract", "_user_steps:Missing"], {}, "module '_user_steps' has no 'Missing'"),
        (["extract", "_user_steps:NotAStage"], {}, "is not a subclass of"),
        (["extract", "_user_steps:Unnamed"], {}, "set `name` on the class"),
        (["extract", "_user_steps:NamedLikeABuiltin"], {}, "name 'langid' is taken"),
        (["extract", "_user_steps:NamedLikeASection"], {}, "name 'tokenizer' is taken"),
        (["extract", "_user_steps:PageMarker"], {}, "'page_marker' works on the page"),
        (["extract", KEYWORD], {"keyword": {"wrod": "x"}}, "unknown setting 'wrod'"),
        (["extract", KEYWORD], {"keyword": {"min_count": 0}}, "keyword.min_count=0"),
        (["extract", "_user_steps:LooseConfig"], {"loose": {"levle": 2}}, "unknown setting"),
        (["extract", "_user_steps:PageMarker"], {"page_marker": {"a": 1}}, "takes no settings"),
        (["extract", KEYWORD], {"toxicity": {"a": 1}}, "unknown key 'toxicity'"),
        ("extract", {}, "expected a list of steps"),
    ],
)
def test_bad_step_lists_are_one_line_config_errors(
    steps: object, extra: dict[str, object], needle: str
) -> None:
    with pytest.raises(ConfigError) as e:
        build_config({"steps": steps, **extra}, source="p.yaml")
    msg = str(e.value)
    assert needle in msg, msg
    assert msg.startswith("p.yaml: ") and "\n" not in msg, msg


def test_user_step_is_built_with_its_settings_in_its_place() -> None:
    c = build_config(
        {"steps": ["_user_steps:PageMarker", *_with({KEYWORD: {"word": "spam"}}, at=5)]},
        ["keyword.min_count=2"],
    )
    names = c.step_names()
    assert names[0] == "page_marker" and names[6] == "keyword"
    stages = build_stages(c, setup=False)
    assert [s.name for s in stages] == names  # consent etc. on: every step is a stage
    keyword = stages[6]
    assert (keyword.config.word, keyword.config.min_count) == ("spam", 2)  # type: ignore[attr-defined]


def test_a_constructor_that_fails_fails_on_the_driver() -> None:
    c = build_config({"steps": ["extract", "_user_steps:LooseConfig"], "loose": {"level": 9}})
    with pytest.raises(ConfigError, match=r"'_user_steps:LooseConfig': building it failed: .*5"):
        check_user_steps(c)


def test_prefilter_gates_follow_the_steps_that_would_drop_later() -> None:
    def prefilter(steps: list[str]) -> object:
        (stage,) = [
            s for s in build_stages(build_config({"steps": steps}), False) if s.name == "prefilter"
        ]
        return stage

    full = prefilter(["prefilter", "extract", "langid", "quality"])
    assert full._keep == {"en"} and full._min_words == 25  # type: ignore[attr-defined]
    bare = prefilter(["prefilter", "extract", "c4"])
    assert bare._keep == frozenset() and bare._min_words == 0  # type: ignore[attr-defined]


def test_switched_off_steps_are_left_out() -> None:
    c = build_config({"steps": BASE}, ["pii.enabled=false", "quality.c4.enabled=false"])
    names = [s.name for s in build_stages(c, setup=False)]
    assert "pii" not in names and "c4" not in names and "fineweb" in names


def test_config_show_round_trips_a_user_step(tmp_path: Path) -> None:
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump({"steps": _with({KEYWORD: {"word": "spam"}})}))
    c = load_config(p, ["keyword.min_count=3"])
    shown = c.show()
    assert shown["steps"][-1] == {KEYWORD: {"word": "spam", "min_count": 3}}
    assert "keyword" not in shown and "langid" not in shown
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(shown, sort_keys=False))
    assert load_config(again).fingerprint() == c.fingerprint()
