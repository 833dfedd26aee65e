"""PII detection quality: per-kind precision/recall on span-labelled text, and false positives.

Labelled data is presidio-research's synthetic format: a JSON list of
``{"full_text": str, "spans": [{"entity_type", "start_position", "end_position", ...}]}``.
Entity types map to our kinds by ``ENTITY_TO_KIND``; spans of other types (names, SSNs, dates,
addresses, ...) are not PII we scrub, so a detection on them is a false positive.

Matching rule (per kind): a gold span is *found* when detections of the same kind cover at
least half of its characters; a detection is *correct* when gold spans of the same kind
cover at least half of its characters. Exact-boundary matches are reported too.

Negatives: texts that should hold no scrubbable PII (e.g. the extraction gold articles) are
scanned; every detection is reported with its text so a reader can judge it, and every
version string, date, price and ISBN found in them (plus a built-in adversarial list) must
stay untouched (``protected``).

Hard cases: a generated, labelled suite of the shapes the scrubber once got wrong
(:mod:`dataproc.eval.pii_cases`), scored per class by exact spans (``score_hard_cases``).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from dataproc.errors import InputError

ENTITY_TO_KIND: dict[str, str] = {
    "EMAIL_ADDRESS": "email",
    "IP_ADDRESS": "ip",
    "PHONE_NUMBER": "phone",
    "CREDIT_CARD": "card",
    "IBAN_CODE": "iban",
}
KINDS: tuple[str, ...] = ("email", "ip", "phone", "card", "iban")
MIN_COVERAGE = 0.5

# Shapes that must never be scrubbed. Every repeat is separated by a literal or bounded, so
# the scans are linear.
PROTECTED_PATTERNS: dict[str, re.Pattern[str]] = {
    "version": re.compile(r"(?<![\w.])v?\d{1,4}(?:\.\d{1,6}){2,6}(?![\w.]|\.\d)", re.IGNORECASE),
    "date": re.compile(r"(?<!\d)(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4})(?![\d])"),
    "price": re.compile(r"[$€£¥]\s?\d{1,3}(?:[,.\s]\d{3}){0,4}(?:[.,]\d{2})?(?!\d)"),
    "isbn": re.compile(
        r"(?<!\d)(?:97[89][- ]?)?\d{1,5}[- ]\d{1,7}[- ]\d{1,7}[- ][\dX](?![\d-])|"
        r"(?i:isbn(?:-1[03])?:?\s?)(?:97[89])?\d{9}[\dX]"
    ),
}

ADVERSARIAL: tuple[tuple[str, str], ...] = (
    ("version", "Upgrade to v2.3.1.0 before Friday."),
    ("version", "See section 1.2.3.4.5 of the spec."),
    ("version", "Windows build 10.0.19041.1 is required."),
    ("version", "libfoo 3.2.2.5 fixes the leak."),
    ("version", "Firmware 4.12.7.201 adds Wi-Fi 6."),
    ("date", "The meeting is on 2024-01-15 at noon."),
    ("date", "Geboren am 15.01.1987 in Köln."),
    ("date", "Deadline: 01/15/2024, no extensions."),
    ("date", "Dated 2023-11-30 14:22:05 UTC."),
    ("price", "The bike costs $1,299.99 this week."),
    ("price", "Preis: € 12.345,67 inkl. MwSt."),
    ("price", "Tickets from £1 234 567 in total sales."),
    ("isbn", "ISBN 978-3-16-148410-0 (hardcover)."),
    ("isbn", "ISBN 0-306-40615-2, first edition."),
    ("isbn", "ISBN: 9783161484100"),
    ("isbn", "Order 978-0-596-52068-7 from the publisher."),
)
"""Sentences whose protected item must not be touched by any detector."""


# "202.334.7239" has a version's shape but is a NANP phone number written with dots.
_NANP_DOTTED_RE = re.compile(r"\d{3}\.\d{3}\.\d{4}")


def _protected_matches(what: str, text: str) -> list[re.Match[str]]:
    matches = list(PROTECTED_PATTERNS[what].finditer(text))
    if what == "version":
        matches = [m for m in matches if not _NANP_DOTTED_RE.fullmatch(m.group(0))]
    return matches


def _coverage(span: tuple[int, int], others: Sequence[tuple[int, int]]) -> float:
    """Fraction of ``span``'s characters covered by the (non-overlapping) ``others``."""
    start, end = span
    if end <= start:
        return 0.0
    covered = sum(max(0, min(end, e) - max(start, s)) for s, e in others)
    return covered / (end - start)


def load_presidio(path: str) -> list[dict[str, Any]]:
    """The list of ``{full_text, spans}`` records of a presidio-research synthetic dataset."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise InputError(f"--presidio {path}: cannot read it ({e})") from None
    except json.JSONDecodeError as e:
        raise InputError(f"--presidio {path}: not JSON ({e})") from None
    if not isinstance(data, list) or not all(
        isinstance(d, dict) and "full_text" in d and "spans" in d for d in data
    ):
        raise InputError(
            f"--presidio {path}: expected a JSON list of {{full_text, spans}} records "
            "(presidio-research synth_dataset format)"
        )
    return data


def _luhn_card(value: str, min_digits: int = 13) -> bool:
    from dataproc.stages.pii import luhn_valid

    digits = value.replace(" ", "").replace("-", "")
    return min_digits <= len(digits) <= 19 and luhn_valid(digits)


def score_spans(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-kind precision/recall of ``find_pii`` on span-labelled records."""
    from dataproc.stages.pii import find_pii, is_public_ip

    tp_pred = Counter[str]()
    n_pred = Counter[str]()
    found = Counter[str]()
    n_gold = Counter[str]()
    exact = Counter[str]()
    luhn_found = luhn_total = 0  # 13-19 digits (the stage's card definition)
    luhn_any_found = luhn_any_total = 0  # any length (12-digit Maestro numbers included)
    ip_recalled: list[tuple[bool, bool]] = []  # (found, routable) per gold IP
    fp_on = Counter[str]()  # "kind on ENTITY_TYPE" for wrong detections
    missed: dict[str, list[str]] = {k: [] for k in KINDS}
    false_pos: dict[str, list[str]] = {k: [] for k in KINDS}
    for rec in records:
        text = rec["full_text"]
        spans = find_pii(text)
        pred_by_kind: dict[str, list[tuple[int, int]]] = {k: [] for k in KINDS}
        for s in spans:
            pred_by_kind[s.kind].append((s.start, s.end))
        gold_by_kind: dict[str, list[tuple[int, int]]] = {k: [] for k in KINDS}
        other_gold: list[tuple[int, int, str]] = []
        for g in rec["spans"]:
            kind = ENTITY_TO_KIND.get(g["entity_type"])
            pos = (int(g["start_position"]), int(g["end_position"]))
            if kind is None:
                other_gold.append((*pos, g["entity_type"]))
            else:
                gold_by_kind[kind].append(pos)
        for kind in KINDS:
            preds, golds = pred_by_kind[kind], gold_by_kind[kind]
            for g in golds:
                n_gold[kind] += 1
                ok = _coverage(g, preds) >= MIN_COVERAGE
                found[kind] += ok
                exact[kind] += g in preds
                if kind == "card" and _luhn_card(text[g[0] : g[1]]):
                    luhn_total += 1
                    luhn_found += ok
                if kind == "card" and _luhn_card(text[g[0] : g[1]], min_digits=1):
                    luhn_any_total += 1
                    luhn_any_found += ok
                if kind == "ip":
                    ip_recalled.append((ok, is_public_ip(text[g[0] : g[1]])))
                if not ok and len(missed[kind]) < 20:
                    missed[kind].append(text[g[0] : g[1]])
            for p in preds:
                n_pred[kind] += 1
                if _coverage(p, golds) >= MIN_COVERAGE:
                    tp_pred[kind] += 1
                    continue
                on = [t for s, e, t in other_gold if min(e, p[1]) > max(s, p[0])]
                fp_on[f"{kind} on {on[0] if on else 'unlabelled text'}"] += 1
                if len(false_pos[kind]) < 20:
                    false_pos[kind].append(text[p[0] : p[1]])
    per_kind = {}
    for kind in KINDS:
        per_kind[kind] = {
            "gold": n_gold[kind],
            "predicted": n_pred[kind],
            "recall": found[kind] / n_gold[kind] if n_gold[kind] else None,
            "precision": tp_pred[kind] / n_pred[kind] if n_pred[kind] else None,
            "exact_boundary_matches": exact[kind],
            "missed_examples": missed[kind],
            "false_positive_examples": false_pos[kind],
        }
    per_kind["card"]["luhn_valid_gold"] = luhn_total
    per_kind["card"]["recall_luhn_valid"] = luhn_found / luhn_total if luhn_total else None
    per_kind["card"]["luhn_valid_any_length_gold"] = luhn_any_total
    per_kind["card"]["recall_luhn_valid_any_length"] = (
        luhn_any_found / luhn_any_total if luhn_any_total else None
    )
    ip_public = [ok for ok, public in ip_recalled if public]
    per_kind["ip"]["public_gold"] = len(ip_public)
    per_kind["ip"]["recall_public"] = sum(ip_public) / len(ip_public) if ip_public else None
    return {
        "records": len(records),
        "per_kind": per_kind,
        "false_positives_on": dict(fp_on.most_common()),
    }


def load_context_sentences(path: str) -> list[tuple[str, str]]:
    """``(entity_type, sentence)`` pairs of presidio's context_sentences_tests.txt format."""
    with open(path, encoding="utf-8") as f:
        lines = [ln.rstrip("\n") for ln in f if not ln.startswith("#")]
    blocks = [b.strip().split("\n", 1) for b in "\n".join(lines).split("\n\n") if b.strip()]
    return [(b[0].strip(), b[1].strip()) for b in blocks if len(b) == 2]


def score_context_sentences(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """For each sentence: which kinds were detected, against the entity type it carries."""
    from dataproc.stages.pii import find_pii

    rows: list[dict[str, Any]] = []
    for entity, sentence in pairs:
        kinds = sorted({s.kind for s in find_pii(sentence)})
        rows.append({"entity": entity, "sentence": sentence, "detected": kinds})
    ours = [r for r in rows if r["entity"] in ENTITY_TO_KIND]
    hit = [r for r in ours if ENTITY_TO_KIND[r["entity"]] in r["detected"]]
    others = [r for r in rows if r["entity"] not in ENTITY_TO_KIND]
    return {
        "sentences": len(rows),
        "our_kinds": len(ours),
        "our_kinds_detected": len(hit),
        "other_entities": len(others),
        "other_entities_with_detection": sum(1 for r in others if r["detected"]),
        "rows": rows,
    }


def load_negative_texts(paths: Sequence[str]) -> list[tuple[str, str]]:
    """``(name, text)`` of texts without PII: a scrapinghub gold folder, a CleanEval tarball or
    folder, a ``.txt`` file, or a folder of ``.txt`` files."""
    from dataproc.eval.extraction import load_cleaneval, load_scrapinghub

    out: list[tuple[str, str]] = []
    for path in paths:
        if os.path.isdir(path) and os.path.isfile(os.path.join(path, "ground-truth.json")):
            out += [(f"{path}:{p.page_id}", p.gold) for p in load_scrapinghub(path)]
        elif path.endswith((".tar.xz", ".tar.gz", ".tar", ".tgz")) or (
            os.path.isdir(path) and os.path.isdir(os.path.join(path, "GoldStandard"))
        ):
            out += [(f"{path}:{p.page_id}", p.gold) for p in load_cleaneval(path)]
        elif os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.endswith(".txt"):
                    with open(os.path.join(path, name), encoding="utf-8", errors="replace") as f:
                        out.append((os.path.join(path, name), f.read()))
        elif os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                out.append((path, f.read()))
        else:
            raise InputError(f"--negatives {path}: no such file or folder")
    return out


def score_negatives(texts: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Detections in PII-free texts, and whether any protected shape was touched."""
    from dataproc.stages.pii import find_pii

    detections = Counter[str]()
    examples: list[dict[str, str]] = []
    protected_total = Counter[str]()
    protected_hit = Counter[str]()
    protected_examples: list[dict[str, str]] = []
    chars = 0
    for name, text in [*texts, *((f"adversarial:{k}", s) for k, s in ADVERSARIAL)]:
        chars += len(text)
        spans = find_pii(text)
        for s in spans:
            detections[s.kind] += 1
            if len(examples) < 50:
                lo, hi = max(0, s.start - 30), min(len(text), s.end + 30)
                examples.append(
                    {
                        "source": name,
                        "kind": s.kind,
                        "match": text[s.start : s.end],
                        "context": text[lo:hi].replace("\n", " "),
                    }
                )
        ranges = [(s.start, s.end) for s in spans]
        for what in PROTECTED_PATTERNS:
            for m in _protected_matches(what, text):
                protected_total[what] += 1
                if any(min(e, m.end()) > max(s, m.start()) for s, e in ranges):
                    protected_hit[what] += 1
                    if len(protected_examples) < 50:
                        protected_examples.append(
                            {"source": name, "kind": what, "text": m.group(0)}
                        )
    return {
        "texts": len(texts) + len(ADVERSARIAL),
        "chars": chars,
        "detections": {k: detections[k] for k in KINDS},
        "detections_per_mchar": sum(detections.values()) / max(chars, 1) * 1e6,
        "detection_examples": examples,
        "protected": {
            k: {"found": protected_total[k], "scrubbed": protected_hit[k]}
            for k in PROTECTED_PATTERNS
        },
        "protected_scrubbed_examples": protected_examples,
    }


def score_hard_cases(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per class of :mod:`dataproc.eval.pii_cases`: is every sentence scrubbed exactly right?

    A sentence is *correct* when ``find_pii`` returns exactly its gold spans (same kind, same
    boundaries) and nothing else. ``found`` counts gold spans detected exactly, ``wrong``
    detections that are not gold (a ZIP code called a phone, a fax number called a card).
    """
    from dataproc.eval.pii_cases import CASE_CLASSES
    from dataproc.stages.pii import find_pii

    per_class: dict[str, dict[str, Any]] = {}
    for rec in records:
        text = rec["full_text"]
        gold = {
            (int(g["start_position"]), int(g["end_position"]), ENTITY_TO_KIND[g["entity_type"]])
            for g in rec["spans"]
        }
        pred = {(s.start, s.end, str(s.kind)) for s in find_pii(text)}
        row = per_class.setdefault(
            rec["class"],
            {
                "what": CASE_CLASSES[rec["class"]][0] if rec["class"] in CASE_CLASSES else "",
                "sentences": 0,
                "correct": 0,
                "gold": 0,
                "found": 0,
                "wrong": 0,
                "failures": [],
            },
        )
        row["sentences"] += 1
        row["gold"] += len(gold)
        row["found"] += len(gold & pred)
        row["wrong"] += len(pred - gold)
        if gold == pred:
            row["correct"] += 1
        elif len(row["failures"]) < 10:
            row["failures"].append(
                {"text": text, "detected": [[text[s:e], k] for s, e, k in sorted(pred)]}
            )
    for row in per_class.values():
        row["correct_rate"] = row["correct"] / row["sentences"]
        row["recall"] = row["found"] / row["gold"] if row["gold"] else None
    total = sum(r["sentences"] for r in per_class.values())
    return {
        "sentences": total,
        "correct": sum(r["correct"] for r in per_class.values()),
        "per_class": per_class,
    }


def evaluate_pii(
    presidio: str | None = None,
    negatives: Sequence[str] = (),
    context_sentences: str | None = None,
    hard_cases_per_class: int = 50,
) -> dict[str, Any]:
    """Span precision/recall on ``presidio``, false positives on ``negatives``, and the
    generated hard cases (``hard_cases_per_class`` sentences of each class)."""
    result: dict[str, Any] = {"matching": f"same kind, >= {MIN_COVERAGE:.0%} character coverage"}
    if presidio:
        result["labelled"] = score_spans(load_presidio(presidio))
    if context_sentences:
        result["context_sentences"] = score_context_sentences(
            load_context_sentences(context_sentences)
        )
    # The adversarial protected list always runs, so negatives are never empty.
    result["negatives"] = score_negatives(load_negative_texts(negatives))
    # So does the generated suite of known hard cases (no files needed).
    from dataproc.eval.pii_cases import hard_cases

    result["hard_cases"] = score_hard_cases(hard_cases(per_class=hard_cases_per_class))
    return result


def hard_case_rows(hard: dict[str, Any]) -> tuple[list[str], list[list[Any]], str]:
    """Headers, rows and title of the per-class table of ``score_hard_cases``."""
    rows = [
        [
            name,
            r["sentences"],
            r["correct"],
            r["correct_rate"],
            r["gold"],
            r["found"],
            r["wrong"],
            r["what"],
        ]
        for name, r in hard["per_class"].items()
    ]
    return (
        ["class", "sentences", "correct", "rate", "gold PII", "found", "wrong", "what"],
        rows,
        f"PII: generated hard cases ({hard['correct']} of {hard['sentences']} sentences exactly right)",
    )
