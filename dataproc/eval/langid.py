"""Language-ID accuracy per language on labelled sentences (one file per language).

Input: a folder of ``<code>.txt`` files, one sentence per line, where ``<code>`` is the ISO
639-1 code of the language (lingua's ``language-testdata/sentences`` layout). Each sentence is
classified by the langid stage (``LanguageId`` with ``languages=None, min_score=0``, so every
prediction is recorded) and counted correct when the predicted fastText label equals the
file's code mapped by ``ISO_TO_FASTTEXT``. Languages lid.176 has no label for still count in
the 75-language macro average (they can never be right) and are listed as ``unsupported``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

from dataproc.errors import InputError

ISO_TO_FASTTEXT: dict[str, str] = {
    # lid.176 labels Norwegian Bokmål as "no" (macrolanguage); Nynorsk has its own "nn".
    "nb": "no",
}
"""ISO 639-1 codes whose lid.176 label differs. Every other code maps to itself."""

LENIENT_GROUPS: tuple[frozenset[str], ...] = (
    frozenset({"bs", "hr", "sr", "sh"}),  # one pluricentric language (Serbo-Croatian)
    frozenset({"no", "nn"}),  # Bokmål / Nynorsk
    frozenset({"ms", "id"}),  # Malay / Indonesian
)
"""Mutually intelligible labels accepted by the secondary ``accuracy_lenient`` score only."""

KEY_LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "ru", "zh", "ja")
THRESHOLDS: tuple[float, ...] = (0.5, 0.65, 0.8)


def fasttext_label(iso: str) -> str:
    """The lid.176 label expected for sentences of ISO 639-1 language ``iso``."""
    return ISO_TO_FASTTEXT.get(iso, iso)


def _lenient_match(expected: str, predicted: str) -> bool:
    if expected == predicted:
        return True
    return any(expected in g and predicted in g for g in LENIENT_GROUPS)


def load_sentences(folder: str, max_per_language: int | None = None) -> dict[str, list[str]]:
    """``{iso: [sentence, ...]}`` from ``<iso>.txt`` files (blank lines skipped)."""
    if not os.path.isdir(folder):
        raise InputError(
            f"--sentences {folder}: not a folder; give a folder of <iso>.txt files, "
            "one sentence per line"
        )
    out: dict[str, list[str]] = {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".txt"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
            lines = [ln.strip() for ln in f if ln.strip()]
        if max_per_language is not None:
            lines = lines[:max_per_language]
        if lines:
            out[name[: -len(".txt")]] = lines
    if not out:
        raise InputError(f"--sentences {folder}: no non-empty <iso>.txt files found")
    return out


def evaluate_langid(
    sentences: str,
    model_path: str | None = None,
    thresholds: Sequence[float] = THRESHOLDS,
    max_per_language: int | None = None,
) -> dict[str, Any]:
    """Accuracy per language, macro averages, weakest ten and the threshold sweep."""
    from dataproc.document import Document
    from dataproc.stages.langid import LangIdConfig, LanguageId

    data = load_sentences(sentences, max_per_language)
    stage = LanguageId(LangIdConfig(languages=None, min_score=0.0, model_path=model_path))
    stage.setup()
    model_labels = {lab.removeprefix("__label__") for lab in stage._model.get_labels()}

    per_language: dict[str, dict[str, Any]] = {}
    # (expected, predicted, score) per sentence, for the threshold sweep.
    predictions: dict[str, list[tuple[str, float]]] = {}
    for iso, lines in data.items():
        expected = fasttext_label(iso)
        preds: list[tuple[str, float]] = []
        for i, line in enumerate(lines):
            doc = Document(id=f"{iso}-{i}", url="", source=sentences, text=line)
            result = stage.process(doc)
            if isinstance(result, Document) and result.language is not None:
                preds.append((result.language, float(result.language_score or 0.0)))
            else:  # blank after cleaning: counts as wrong
                preds.append(("", 0.0))
        predictions[iso] = preds
        correct = sum(1 for lab, _ in preds if lab == expected)
        lenient = sum(1 for lab, _ in preds if _lenient_match(expected, lab))
        confusions = Counter(lab for lab, _ in preds if lab != expected).most_common(3)
        per_language[iso] = {
            "label": expected,
            "supported": expected in model_labels,
            "sentences": len(preds),
            "accuracy": correct / len(preds),
            "accuracy_lenient": lenient / len(preds),
            "top_confusions": [[lab, n] for lab, n in confusions],
        }
    stage.close()

    accs = {iso: r["accuracy"] for iso, r in per_language.items()}
    supported = [iso for iso, r in per_language.items() if r["supported"]]
    sweep = []
    for t in thresholds:
        cov_l, acc_l = [], []
        for iso in supported:
            expected = per_language[iso]["label"]
            kept = [lab for lab, score in predictions[iso] if score >= t]
            cov_l.append(len(kept) / len(predictions[iso]))
            acc_l.append(sum(lab == expected for lab in kept) / len(kept) if kept else 0.0)
        key = [iso for iso in KEY_LANGUAGES if iso in predictions]
        key_kept = [
            (lab == per_language[iso]["label"])
            for iso in key
            for lab, score in predictions[iso]
            if score >= t
        ]
        key_total = sum(len(predictions[iso]) for iso in key)
        sweep.append(
            {
                "threshold": t,
                "macro_coverage": sum(cov_l) / len(cov_l) if cov_l else 0.0,
                "macro_accuracy_covered": sum(acc_l) / len(acc_l) if acc_l else 0.0,
                "key_coverage": len(key_kept) / key_total if key_total else 0.0,
                "key_accuracy_covered": sum(key_kept) / len(key_kept) if key_kept else 0.0,
            }
        )
    # Unsupported languages always score 0 and are listed apart: rank the others.
    weakest = sorted(supported, key=lambda iso: (accs[iso], iso))[:10]
    return {
        "languages": len(per_language),
        "macro_accuracy": sum(accs.values()) / len(accs),
        "macro_accuracy_supported": (
            sum(accs[i] for i in supported) / len(supported) if supported else 0.0
        ),
        "macro_accuracy_lenient": sum(r["accuracy_lenient"] for r in per_language.values())
        / len(per_language),
        "unsupported": sorted(iso for iso in per_language if iso not in supported),
        "key_languages": {iso: accs[iso] for iso in KEY_LANGUAGES if iso in accs},
        "weakest": [{"language": iso, **per_language[iso]} for iso in weakest],
        "threshold_sweep": sweep,
        "per_language": per_language,
    }
