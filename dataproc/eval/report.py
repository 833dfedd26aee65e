"""Plain-text tables for evaluation results, and JSON output."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from dataproc.errors import OutputError


def fmt(value: Any, digits: int = 3) -> str:
    """A cell: floats rounded to ``digits`` places, None as ``-``, everything else ``str``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    """A Markdown-compatible pipe table (readable in a terminal, pasteable into docs)."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(widths[i]) for i, v in enumerate(values)) + " |"

    out = [f"### {title}", ""] if title else []
    out.append(line(list(headers)))
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out.extend(line(row) for row in cells)
    return "\n".join(out) + "\n"


def write_json(result: dict[str, Any], path: str) -> None:
    """Write ``result`` as indented JSON to ``path`` (creating its folder)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, sort_keys=False, ensure_ascii=False)
            f.write("\n")
    except OSError as e:
        raise OutputError(
            f"--json {path}: cannot write the result ({e}); choose a writable path"
        ) from None


def extraction_tables(result: dict[str, Any]) -> str:
    """Extraction scores: one row per (gold set, system)."""
    rows = []
    for name, systems in result["datasets"].items():
        for system, s in systems.items():
            rows.append(
                [
                    name,
                    system,
                    s["pages"],
                    s["precision"],
                    s["recall"],
                    s["f1"],
                    s["empty"],
                    s["precision_nonempty"],
                ]
            )
    headers = [
        "gold set",
        "settings",
        "pages",
        "precision",
        "recall",
        "F1",
        "empty",
        "precision (non-empty)",
    ]
    return table(headers, rows, "Extraction (bag-of-words, macro over pages)")


def langid_tables(result: dict[str, Any]) -> str:
    """Language-ID accuracy: key languages, macro averages, weakest ten, threshold sweep."""
    out = [
        table(
            ["language", "accuracy"],
            list(result["key_languages"].items()),
            "Language ID: key languages",
        )
    ]
    out.append(
        table(
            ["measure", "value"],
            [
                [f"macro accuracy, all {result['languages']} languages", result["macro_accuracy"]],
                ["macro accuracy, languages lid.176 knows", result["macro_accuracy_supported"]],
                [
                    "macro accuracy, lenient (bs/hr/sr/sh, no/nn, ms/id)",
                    result["macro_accuracy_lenient"],
                ],
                [
                    "languages lid.176 has no label for (score 0)",
                    " ".join(result["unsupported"]) or "-",
                ],
            ],
            "Language ID: averages",
        )
    )
    out.append(
        table(
            ["language", "fastText label", "accuracy", "lenient", "top confusions"],
            [
                [
                    w["language"],
                    w["label"],
                    w["accuracy"],
                    w["accuracy_lenient"],
                    ", ".join(f"{lab} {n}" for lab, n in w["top_confusions"]),
                ]
                for w in result["weakest"]
            ],
            "Language ID: weakest ten (of the languages lid.176 knows)",
        )
    )
    out.append(
        table(
            [
                "min_score",
                "macro coverage",
                "macro accuracy (kept)",
                "key-7 coverage",
                "key-7 accuracy (kept)",
            ],
            [
                [
                    s["threshold"],
                    s["macro_coverage"],
                    s["macro_accuracy_covered"],
                    s["key_coverage"],
                    s["key_accuracy_covered"],
                ]
                for s in result["threshold_sweep"]
            ],
            "Language ID: score threshold",
        )
    )
    return "\n".join(out)


def pii_tables(result: dict[str, Any]) -> str:
    """PII precision/recall per kind and false positives on PII-free text."""
    out = []
    labelled = result.get("labelled")
    if labelled:
        rows = []
        for kind, s in labelled["per_kind"].items():
            extra = ""
            if kind == "card":
                extra = (
                    f"Luhn-valid 13-19 digits: {fmt(s['recall_luhn_valid'])} "
                    f"of {s['luhn_valid_gold']}"
                )
            if kind == "ip":
                extra = f"routable addresses: {fmt(s['recall_public'])} of {s['public_gold']}"
            rows.append(
                [
                    kind,
                    s["gold"],
                    s["predicted"],
                    s["recall"],
                    s["precision"],
                    s["exact_boundary_matches"],
                    extra,
                ]
            )
        out.append(
            table(
                ["kind", "gold", "detected", "recall", "precision", "exact spans", "note"],
                rows,
                f"PII on labelled spans ({result['matching']})",
            )
        )
    ctx = result.get("context_sentences")
    if ctx:
        out.append(
            table(
                ["measure", "value"],
                [
                    [
                        "sentences with our kinds: detected / total",
                        f"{ctx['our_kinds_detected']} / {ctx['our_kinds']}",
                    ],
                    [
                        "sentences with other entities: any detection / total",
                        f"{ctx['other_entities_with_detection']} / {ctx['other_entities']}",
                    ],
                ],
                "PII: presidio context sentences",
            )
        )
    neg = result["negatives"]
    rows = [[k, v["found"], v["scrubbed"]] for k, v in neg["protected"].items()]
    out.append(
        table(
            ["protected shape", "found", "scrubbed"],
            rows,
            f"PII: PII-free text ({neg['texts']} texts, {neg['chars']} chars)",
        )
    )
    out.append(
        table(
            ["kind", "detections"],
            list(neg["detections"].items()),
            "PII: detections in PII-free text (see JSON for each one)",
        )
    )
    hard = result.get("hard_cases")
    if hard:
        from dataproc.eval.pii import hard_case_rows

        out.append(table(*hard_case_rows(hard)))
    return "\n".join(out)


def dedup_tables(result: dict[str, Any]) -> str:
    """Dedup against truth, brute-force Jaccard bins, graded near-dup corpus."""
    out = []
    w = result.get("warc")
    if w:
        out.append(
            table(
                ["measure", "value"],
                [
                    ["documents reaching dedup", w["docs_read"]],
                    ["removed / should remove (truth)", f"{w['removed']} / {w['should_remove']}"],
                    ["removal recall (truth)", w["removal_recall"]],
                    ["removal precision (truth labels only)", w["removal_precision"]],
                    [
                        "removal precision (+ unlabelled pairs with J >= 0.8)",
                        w["removal_precision_counting_unlabelled_j_ge_0_8"],
                    ],
                    ["pair recall (truth)", w["pair_recall"]],
                    *[
                        [
                            f"recall of labelled `{k}` copies",
                            f"{v['recall']:.3f} ({v['caught']}/{v['pairs']})",
                        ]
                        for k, v in w["recall_by_kind"].items()
                    ],
                ],
                "Dedup: against the truth file",
            )
        )
        b = w["brute_force"]
        rows = [
            [k, v["pairs"], v["caught"], v["candidates"], v["caught_rate"]]
            for k, v in b["bins"].items()
        ]
        out.append(
            table(
                [
                    "exact 5-gram Jaccard",
                    "pairs",
                    "caught (same cluster)",
                    "LSH candidates",
                    "caught rate",
                ],
                rows,
                f"Dedup: brute force over {b['sample_docs']} documents ({b['pairs']} pairs)",
            )
        )
        out.append(
            table(
                ["measure", "value"],
                [
                    ["recall, pairs with J >= 0.8", b["recall_j_ge_0_8"]],
                    ["precision, caught pairs with J >= 0.5", b["precision_j_ge_0_5"]],
                    [
                        "caught pairs with J < 0.5 (direct LSH candidates)",
                        f"{b['caught_j_lt_0_5']} ({b['candidates_j_lt_0_5']})",
                    ],
                ],
                "Dedup: brute-force summary",
            )
        )
    nd = result.get("near_dup_corpus")
    if nd:
        rows = [
            [
                c,
                v["answers"],
                v["mean_jaccard"],
                v["max_jaccard"],
                v["answers_j_ge_0_8"],
                v["caught"],
                v["caught_rate"],
            ]
            for c, v in nd["categories"].items()
        ]
        out.append(
            table(
                ["category", "answers", "mean J", "max J", "J >= 0.8", "caught", "caught rate"],
                rows,
                "Dedup: graded near-duplicate corpus",
            )
        )
    return "\n".join(out)
