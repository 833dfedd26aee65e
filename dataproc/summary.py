"""The end-of-run summary printed to the terminal."""

from __future__ import annotations

import os
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dataproc.io.layout import OutputLayout
from dataproc.runner.phases import Phase

# Off a terminal (CI, `ray job logs`, a file) nothing should be cut or wrapped at rich's default
# 80 columns: tables take the width they need, long paths stay on one line.
PIPE_WIDTH = 10_000


def summary_console(file: IO[str] | None = None) -> Console:
    """The console the summary prints to: the terminal's width, or unlimited off a terminal."""
    console = Console(file=file, soft_wrap=True)
    if not console.is_terminal:
        console = Console(file=file, soft_wrap=True, width=PIPE_WIDTH)
    return console


def print_summary(result: Any, console: Console | None = None) -> None:
    """Print the funnel (in/out/dropped per stage), totals and where the output is.

    Everything that comes from data or the file system is escaped: rich would otherwise eat
    ``[resiliparse]`` in ``pip install 'dataproc[resiliparse]'`` as a style tag.
    """
    console = console or summary_console()
    table = Table(title="dataproc run: documents through the stages", title_justify="left")
    table.add_column("stage")
    table.add_column("in", justify="right")
    table.add_column("out", justify="right")
    table.add_column("dropped", justify="right")
    table.add_column("top drop reasons")
    table.add_column("seconds", justify="right")
    from dataproc.stats import page_stages

    stages, non_page = page_stages(result.stats)
    for s in stages:
        reasons = escape(", ".join(f"{r} {n:,}" for r, n in s.dropped.most_common(3)))
        table.add_row(
            escape(s.name),
            f"{s.docs_in:,}",
            f"{s.docs_out:,}",
            f"{s.docs_dropped:,}",
            reasons,
            f"{s.seconds:,.1f}",
        )
    console.print(table)
    if non_page:
        console.print(
            f"read: {non_page:,} WARC records that are not web pages (request, metadata, "
            "warcinfo) are not counted as documents"
        )
    m = result.manifest or {}
    totals = m.get("totals", {})
    console.print(
        f"[bold]{totals.get('rows', 0):,}[/] documents, [bold]{totals.get('tokens', 0):,}[/] tokens "
        f"({escape(str(m.get('tokenizer', {}).get('name', '?')))}) in {totals.get('files', 0)} Parquet file(s), "
        f"{result.seconds:,.1f}s"
    )
    if not totals.get("rows") and not result.failures:
        console.print(
            "[bold yellow]warning:[/] no document survived; the table above says which stage "
            "dropped them and rejects/ says why"
        )
    pii = {k[4:]: v for s in result.stats for k, v in s.counters.items() if k.startswith("pii_")}
    if pii:
        console.print(
            "PII scrubbed: " + escape(", ".join(f"{k} {v:,}" for k, v in sorted(pii.items())))
        )
    reused = {k: v for k, v in result.reused.items() if v}
    if reused:
        names = {
            Phase.FILTER: "filtered files",
            Phase.DEDUP: "dedup",
            Phase.TOKENIZE: "tokenized files",
        }
        parts = [f"{names.get(k, k)} {v}" for k, v in reused.items()]
        console.print("reused from an earlier run (not redone): " + escape(", ".join(parts)))
    layout = OutputLayout(result.out_dir)
    console.print(f"output:   {escape(layout.tokens_dir)}/")
    console.print(f"manifest: {escape(layout.manifest)}   stats: {escape(layout.stats)}")
    console.print(
        f"rejects:  {escape(layout.rejects_dir)}/ (every dropped document with its reason)"
    )
    if os.path.exists(layout.report):
        console.print(f"report:   {escape(layout.report)}")
    if result.failures:
        console.print(
            f"[bold red]{len(result.failures)} unit(s) failed[/]; rerun the same command to retry them:"
        )
        for f in result.failures:
            console.print(escape(f"  {f['phase']} {f.get('input', f['unit'])}: {f['error']}"))
