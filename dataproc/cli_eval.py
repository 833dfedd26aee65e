"""``dataproc eval``: measure each stage's quality on labelled data and print tables.

Every subcommand takes its data paths as arguments, prints Markdown tables and, with
``--json OUT.json``, writes the full result (per-page / per-language details included).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from dataproc.errors import InputError

EXIT_OK = 0


def _emit(result: dict[str, Any], text: str, json_path: str | None) -> int:
    from dataproc.eval.report import write_json

    print(text, end="")
    if json_path:
        write_json(result, json_path)
        print(f"\nfull result written to {json_path}")
    return EXIT_OK


def cmd_extraction(args: argparse.Namespace) -> int:
    from dataproc.eval.extraction import evaluate_extraction
    from dataproc.eval.report import extraction_tables

    result = evaluate_extraction(args.scrapinghub, args.cleaneval, args.systems, args.workers)
    return _emit(result, extraction_tables(result), args.json)


def cmd_langid(args: argparse.Namespace) -> int:
    from dataproc.eval.langid import evaluate_langid
    from dataproc.eval.report import langid_tables

    result = evaluate_langid(args.sentences, model_path=args.model_path)
    return _emit(result, langid_tables(result), args.json)


def cmd_pii(args: argparse.Namespace) -> int:
    from dataproc.eval.pii import evaluate_pii
    from dataproc.eval.report import pii_tables

    result = evaluate_pii(args.presidio, args.negatives, args.context_sentences)
    return _emit(result, pii_tables(result), args.json)


def cmd_dedup(args: argparse.Namespace) -> int:
    from dataproc.eval.dedup import evaluate_dedup
    from dataproc.eval.report import dedup_tables

    result = evaluate_dedup(
        args.warc, args.truth, args.near_dup_corpus, args.sample_docs, args.seed, args.workers
    )
    return _emit(result, dedup_tables(result), args.json)


def _need(path: str) -> str:
    if not os.path.exists(path):
        raise InputError(
            f"--shared-corpus: expected {path}; point --shared-corpus at the corpus folder "
            "(holding extraction_gold/, langid/, pii/, bench/, near_dup/)"
        )
    return path


def cmd_all(args: argparse.Namespace) -> int:
    from dataproc.eval import report
    from dataproc.eval.dedup import evaluate_dedup
    from dataproc.eval.extraction import evaluate_extraction
    from dataproc.eval.langid import evaluate_langid
    from dataproc.eval.pii import evaluate_pii

    c = args.shared_corpus
    sh = _need(os.path.join(c, "extraction_gold", "scrapinghub_aeb"))
    ce = _need(os.path.join(c, "extraction_gold", "CleanPortalEval.tar.xz"))
    steps: list[tuple[str, Callable[[], dict[str, Any]], Callable[[dict[str, Any]], str]]] = [
        (
            "extraction",
            lambda: evaluate_extraction(sh, ce, workers=args.workers),
            report.extraction_tables,
        ),
        (
            "langid",
            lambda: evaluate_langid(_need(os.path.join(c, "langid", "sentences"))),
            report.langid_tables,
        ),
        (
            "pii",
            lambda: evaluate_pii(
                _need(os.path.join(c, "pii", "presidio-research_synth_dataset_v2.json")),
                [sh, ce],
                _need(os.path.join(c, "pii", "presidio_context_sentences_tests.txt")),
            ),
            report.pii_tables,
        ),
        (
            "dedup",
            lambda: evaluate_dedup(
                _need(os.path.join(c, "bench", "dev-bench.warc.gz")),
                _need(os.path.join(c, "bench", "dev-bench.truth.json")),
                _need(os.path.join(c, "near_dup", "clough_stevenson_plagiarism_corpus")),
                workers=args.workers,
            ),
            report.dedup_tables,
        ),
    ]
    result: dict[str, Any] = {}
    for name, run, render in steps:
        result[name] = run()
        print(f"## {name}\n\n{render(result[name])}", flush=True)
    if args.json:
        report.write_json(result, args.json)
        print(f"full result written to {args.json}")
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``dataproc eval ...`` to the top-level parser."""
    from dataproc.eval.extraction import SYSTEMS

    ev = subparsers.add_parser(
        "eval",
        help="measure stage quality on labelled data",
        description="Run the pipeline's own stages on labelled data; print tables, write JSON.",
    )
    sub = ev.add_subparsers(dest="eval_command", metavar="EVAL")
    ev.set_defaults(func=lambda a: (ev.print_help(), 1)[1])
    default_workers = max(1, min(4, os.cpu_count() or 1))

    def common(p: argparse.ArgumentParser, workers: bool = False) -> None:
        p.add_argument("--json", metavar="OUT.json", help="also write the full result as JSON")
        if workers:
            p.add_argument(
                "--workers",
                type=int,
                default=default_workers,
                help=f"extraction processes (default {default_workers})",
            )

    p = sub.add_parser("extraction", help="extraction P/R/F1 against gold text")
    p.add_argument(
        "--scrapinghub",
        metavar="DIR",
        help="article-extraction-benchmark folder (ground-truth.json + html/)",
    )
    p.add_argument(
        "--cleaneval",
        metavar="TARXZ_OR_DIR",
        help="CleanEval-style gold (input/ + GoldStandard/), folder or .tar.xz",
    )
    p.add_argument(
        "--systems",
        nargs="+",
        default=["dataproc", "trafilatura_default"],
        choices=SYSTEMS,
        help="settings to compare (default: ours and trafilatura's)",
    )
    common(p, workers=True)
    p.set_defaults(func=cmd_extraction)

    p = sub.add_parser("langid", help="language-ID accuracy per language")
    p.add_argument(
        "--sentences",
        required=True,
        metavar="DIR",
        help="folder of <iso639-1>.txt files, one sentence per line",
    )
    p.add_argument("--model-path", help="fastText model (default: bundled lid.176.ftz)")
    common(p)
    p.set_defaults(func=cmd_langid)

    p = sub.add_parser("pii", help="PII precision/recall per kind, false positives")
    p.add_argument(
        "--presidio",
        metavar="JSON",
        help="presidio-research synthetic dataset (full_text + character spans)",
    )
    p.add_argument(
        "--negatives",
        nargs="*",
        default=[],
        metavar="PATH",
        help="PII-free texts: scrapinghub gold folder, CleanEval tarball/folder, "
        ".txt files or folders of them",
    )
    p.add_argument(
        "--context-sentences",
        metavar="TXT",
        help="presidio context_sentences_tests.txt (entity line + sentence)",
    )
    common(p)
    p.set_defaults(func=cmd_pii)

    p = sub.add_parser("dedup", help="near-dedup recall/precision against truth and Jaccard")
    p.add_argument("--warc", metavar="FILE", help="WARC file whose duplicates are labelled")
    p.add_argument("--truth", metavar="JSON", help="truth file (records with cluster ids)")
    p.add_argument(
        "--near-dup-corpus",
        metavar="DIR",
        help="graded corpus: file_information.csv (File,Task,Category) + texts",
    )
    p.add_argument(
        "--sample-docs",
        type=int,
        default=None,
        help="brute-force Jaccard over a sample of this many documents "
        "(default: all; cost grows with the square)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the brute-force sample")
    common(p, workers=True)
    p.set_defaults(func=cmd_dedup)

    p = sub.add_parser("all", help="every evaluation on a corpus folder of the standard layout")
    p.add_argument(
        "--shared-corpus",
        required=True,
        metavar="DIR",
        help="folder holding extraction_gold/, langid/, pii/, bench/, near_dup/",
    )
    common(p, workers=True)
    p.set_defaults(func=cmd_all)
