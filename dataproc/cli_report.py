"""``dataproc report OUT``: (re)write the HTML run report of an output folder."""

from __future__ import annotations

import argparse
import os

from dataproc.errors import OutputError

EXIT_OK = 0

DESCRIPTION = """\
Write OUT/report.html for the run in OUT: one self-contained page (no network needed to open
it) with the funnel of documents and bytes through the stages and the drop reasons, languages,
crawls, document-length and token-count histograms, top dropped domains and URL-filter rules,
PII replaced by type, the dedup cluster-size distribution, throughput per stage and over time,
and a few output documents decoded from their token ids.

Every `dataproc run` already writes it at the end; use this command to rebuild it (after an
upgrade), to write it elsewhere with --html, or for a run that was interrupted: the page then
shows the work that finished (the input files filtered and tokenized so far) and says so.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``report`` to the ``dataproc`` command line."""
    p = subparsers.add_parser(
        "report",
        help="write OUT/report.html (funnel, drop reasons, histograms, samples) for a run",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: dataproc report out/ && xdg-open out/report.html",
    )
    p.add_argument(
        "out", metavar="OUT", help="output folder of a `dataproc run` (local path or URL)"
    )
    p.add_argument(
        "--html",
        metavar="PATH",
        help="write the page here instead of OUT/report.html",
    )
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    """Build the report and print where it is."""
    from dataproc.io import fs
    from dataproc.report import build_report

    if not fs.is_remote(args.out) and not os.path.isdir(args.out):
        raise OutputError(
            f"{args.out}: no such folder; give the --output folder of a `dataproc run`"
        )
    print(build_report(args.out, args.html))
    return EXIT_OK
