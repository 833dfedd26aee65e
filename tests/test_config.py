from __future__ import annotations

import pytest

from dataproc.config import PipelineConfig, build_config, load_config
from dataproc.errors import ConfigError


def test_defaults_are_complete_and_fineweb_like():
    c = PipelineConfig()
    assert c.langid.languages == ["en"]
    assert c.langid.min_score == 0.65
    assert c.tokenizer.name == "cl100k_base"
    assert (c.dedup.bands, c.dedup.rows, c.dedup.num_perm) == (14, 8, 112)


def test_unknown_key_names_the_key():
    with pytest.raises(ConfigError, match=r"unknown key 'langid.colour'"):
        build_config({"langid": {"colour": "red"}})


def test_wrong_type_names_key_and_value():
    with pytest.raises(ConfigError, match=r"langid.min_score=\"high\""):
        build_config({}, ["langid.min_score=high"])


def test_override_parses_yaml_values():
    c = build_config({}, ["langid.languages=[de, fr]", "write.keep_text=true"])
    assert c.langid.languages == ["de", "fr"]
    assert c.write.keep_text is True


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="expected key=value"):
        build_config({}, ["langid.min_score"])


def test_fingerprint_ignores_where_but_not_what():
    a = build_config({"inputs": ["a"], "output": "x"})
    b = build_config({"inputs": ["b"], "output": "y", "execution": {"workers": 1}})
    c = build_config({}, ["langid.min_score=0.9"])
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()


@pytest.mark.parametrize("name", ["commoncrawl_en", "multilingual"])
def test_shipped_pipelines_load(name):
    c = load_config(f"pipelines/{name}.yaml")
    assert c.name == name


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")


def test_bad_yaml_is_a_clear_error(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("langid: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)


def test_shipped_pipelines_load_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config("pipelines/multilingual.yaml").name == "multilingual"


def test_set_errors_are_blamed_on_set_and_file_errors_on_the_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("langid:\n  min_score: 0.5\n")
    with pytest.raises(ConfigError, match=r"^--set: langid.min_score"):
        load_config(p, ["langid.min_score=high"])
    p.write_text("langid:\n  min_score: high\n")
    with pytest.raises(ConfigError, match=r"c.yaml: langid.min_score"):
        load_config(p, ["tokenizer.name=o200k_base"])


def test_yaml_syntax_error_is_one_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("langid:\n  languages: [en\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "\n" not in str(e.value) and "line" in str(e.value)
