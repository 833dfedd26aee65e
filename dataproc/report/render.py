"""Turn ``ReportData`` into one self-contained HTML page (inline CSS and SVG, no scripts).

Nothing on the page is fetched: no fonts, scripts or images from the network, so the file can be
mailed, attached to a ticket or opened on an air-gapped cluster. All text that comes from the
crawl (URLs, drop details, document text) is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from dataproc.report import plots
from dataproc.report.data import ReportData
from dataproc.stats import NON_PAGE_RECORDS, StageStats, page_stages

TOP_N = 20

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:0;background:#f6f7f9}
header{background:#1f3b5c;color:#fff;padding:18px 32px}
header h1{margin:0 0 4px;font-size:22px}
header .meta{opacity:.85;font-size:13px}
main{max-width:1180px;margin:0 auto;padding:8px 24px 48px}
section{background:#fff;border:1px solid #e2e5ea;border-radius:6px;padding:14px 20px;margin:16px 0}
h2{font-size:17px;margin:4px 0 10px;color:#1f3b5c}
h3{font-size:14px;margin:12px 0 6px;color:#444}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:12px 24px}
.kpis{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}
.kpi{background:#f0f4f9;border-radius:5px;padding:8px 14px;min-width:120px}
.kpi b{display:block;font-size:18px}
.kpi span{font-size:12px;color:#555}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid #eceef1;text-align:left;vertical-align:top}
th{background:#fafbfc;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
svg.chart{max-width:100%;height:auto;display:block}
.note{color:#666;font-size:12px}
.bad{background:#fdecea;border-color:#f5c2c0}
.ok{color:#9be39f}.err{color:#c62828}
pre.doc{white-space:pre-wrap;word-break:break-word;background:#fafafa;border:1px solid #eee;padding:8px 10px;max-height:260px;overflow:auto;font-size:12.5px}
.empty{color:#888;font-style:italic}
nav a{color:#cfe0f5;margin-right:14px;font-size:13px}
"""


def _n(x: float | int) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.2f}"


def _mb(nbytes: float) -> str:
    if nbytes >= 1e9:
        return f"{nbytes / 1e9:,.2f} GB"
    if 0 < nbytes < 1e5:  # "0.0 MB" would read as nothing measured
        return f"{nbytes / 1e3:,.1f} kB"
    return f"{nbytes / 1e6:,.1f} MB"


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[bool]) -> str:
    head = "".join(
        f'<th class="n">{escape(h)}</th>' if num else f"<th>{escape(h)}</th>"
        for h, num in zip(headers, numeric, strict=True)
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="n">{escape(str(v))}</td>' if num else f"<td>{escape(str(v))}</td>"
            for v, num in zip(row, numeric, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        return '<p class="empty">nothing to show</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _chart(svg: str | None, empty: str) -> str:
    return svg if svg else f'<p class="empty">{escape(empty)}</p>'


def _section(anchor: str, title: str, body: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f'<section id="{anchor}"{cls}><h2>{escape(title)}</h2>{body}</section>'


def _sample_note(label: str, s: Any, what: str = "rows", where: str = "") -> str:
    """Which files a chart read: ``label: 121 documents from all 20 files of _work/docs``."""
    if s.files_total == 0:
        return ""
    files = (
        f"all {s.files_total:,} file(s)"
        if s.complete
        else f"a sample of {s.files_read:,} of {s.files_total:,} file(s)"
    )
    where = f" {where}" if where else ""
    return f'<p class="note">{escape(f"{label}: {s.rows:,} {what} from {files}{where}")}.</p>'


def _measured_bytes(s: StageStats) -> bool:
    """Stages that count no bytes (url_filter sees no text yet, minhash, dedup) show "-"."""
    return bool(s.bytes_in or s.bytes_out or not s.docs_in)


def _kpis(items: list[tuple[str, str]]) -> str:
    return (
        '<div class="kpis">'
        + "".join(
            f'<div class="kpi"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for k, v in items
        )
        + "</div>"
    )


def _header(d: ReportData) -> str:
    m, st = d.manifest, d.stats
    timings = m.get("timings") or {}
    complete = m.get("complete", st.get("complete", True))
    status = '<span class="ok">complete</span>' if complete else '<b class="err">INCOMPLETE</b>'
    name = st.get("pipeline") or m.get("pipeline") or "?"
    meta = (
        f"pipeline <b>{escape(str(name))}</b> · {status} · "
        f"started {escape(str(timings.get('started', '?')))} · "
        f"{_n(float(timings.get('seconds', 0) or 0))} s · dataproc {escape(str(st.get('dataproc_version', '?')))}"
        f" · config {escape(str(m.get('config_fingerprint', '?')))}"
    )
    nav = "".join(
        f'<a href="#{a}">{t}</a>'
        for a, t in [
            ("overview", "Overview"),
            ("funnel", "Funnel"),
            ("drops", "Drops"),
            ("content", "Languages & crawls"),
            ("lengths", "Lengths"),
            ("domains", "Domains & rules"),
            ("pii", "PII"),
            ("counters", "Counters"),
            ("dedup", "Dedup"),
            ("throughput", "Throughput"),
            ("samples", "Samples"),
        ]
    )
    return (
        f'<header><h1>dataproc run report</h1><div class="meta">{meta}</div>'
        f'<div class="meta">{escape(d.out_dir)}</div><nav>{nav}</nav></header>'
    )


def _overview(d: ReportData) -> str:
    m = d.manifest
    totals = m.get("totals") or {}
    read = next((s for s in d.stages if s.name == "read"), None)
    inputs = m.get("inputs") or []
    in_bytes = sum(int(i.get("bytes") or 0) for i in inputs)
    kept_docs = int(totals.get("rows", d.stages[-1].docs_out if d.stages else 0))
    items = [
        ("input files", f"{len(inputs):,}" if inputs else "?"),
        ("input size (compressed)", _mb(in_bytes) if in_bytes else "?"),
        ("records read", f"{read.docs_out:,}" if read else "?"),
        ("documents kept", f"{kept_docs:,}"),
        ("tokens", f"{int(totals.get('tokens', sum(d.num_tokens))):,}"),
        ("Parquet files", f"{int(totals.get('files', d.tokens.files_total)):,}"),
        ("tokenizer", str((m.get("tokenizer") or {}).get("name", "?"))),
    ]
    if read and read.docs_out:
        items.insert(4, ("kept / read", f"{kept_docs / read.docs_out:.1%}"))
    body = _kpis(items)
    interrupted = d.stats.get("interrupted")
    if interrupted:
        body += (
            '<p class="err">Interrupted run: this report shows only the work that finished '
            f"({interrupted['filtered']:,} of {interrupted['inputs']:,} input file(s) filtered, "
            f"{interrupted['tokenized']:,} tokenized). Rerun the same `dataproc run` command "
            "to finish it.</p>"
        )
    failures = d.stats.get("failures") or m.get("failures") or []
    if failures:
        rows = [
            (f.get("phase", ""), f.get("input", f.get("unit", "")), f.get("error", ""))
            for f in failures
        ]
        body += '<h3 class="err">Failed units (rerun the same command to retry them)</h3>' + _table(
            ["phase", "input", "error"], rows[:200], [False, False, False]
        )
    return _section("overview", "Overview", body, "bad" if failures else "")


def _funnel(d: ReportData) -> str:
    all_stages, non_page = page_stages(d.stages)
    stages = [s for s in all_stages if s.name != "minhash"]
    names = [s.name for s in stages]
    docs_svg = plots.funnel(
        names, [s.docs_out for s in stages], [s.docs_dropped for s in stages], "documents"
    )
    # Bytes out of each stage that measures them: HTML out of `read`, text from `extract` on.
    # Not drawn as kept/dropped: most of extract's "lost" bytes are markup, not dropped pages.
    measured = [s for s in stages if _measured_bytes(s) and s.docs_in]
    bytes_svg = plots.hbar(
        [s.name for s in measured],
        [s.bytes_out / 1e6 for s in measured],
        "funnel-bytes",
        "MB out of the stage",
    )
    rows = []
    for s in all_stages:
        kept = f"{s.docs_out / s.docs_in:.1%}" if s.docs_in else "-"
        top = ", ".join(f"{r} {n:,}" for r, n in s.dropped.most_common(3))
        rows.append(
            (
                s.name,
                f"{s.docs_in:,}",
                f"{s.docs_out:,}",
                f"{s.docs_dropped:,}",
                kept,
                top,
                _mb(s.bytes_in) if _measured_bytes(s) else "-",
                _mb(s.bytes_out) if _measured_bytes(s) else "-",
            )
        )
    table = _table(
        ["stage", "in", "out", "dropped", "kept", "top drop reasons", "bytes in", "bytes out"],
        rows,
        [False, True, True, True, True, False, True, True],
    )
    body = (
        '<div class="grid"><div><h3>Documents</h3>'
        + _chart(docs_svg, "no stage statistics")
        + "</div><div><h3>Bytes out (HTML for read, text from extract on)</h3>"
        + _chart(bytes_svg, "no byte counts")
        + "</div></div>"
        + table
        + '<p class="note">The drop from read to extract in bytes is mostly markup removed '
        "from kept pages, not pages dropped. \u201c-\u201d: the stage does not measure bytes.</p>"
    )
    if non_page:
        body += (
            f'<p class="note">read: {non_page:,} WARC records that are not web pages '
            f"({', '.join(NON_PAGE_RECORDS)}) are left out of its in and dropped counts.</p>"
        )
    return _section("funnel", "Funnel: documents and bytes through the stages", body)


def _drops(d: ReportData) -> str:
    reasons: list[tuple[str, int]] = []
    skipped_records = 0
    for s in d.stages:
        for r, n in s.dropped.items():
            if s.name == "read" and r in NON_PAGE_RECORDS:
                skipped_records += n
            else:
                reasons.append((f"{s.name}: {r}", n))
    reasons.sort(key=lambda x: -x[1])
    total = sum(n for _, n in reasons) or 1
    svg = plots.hbar(
        [r for r, _ in reasons[:TOP_N]],
        [n for _, n in reasons[:TOP_N]],
        "drop-reasons",
        "documents dropped",
        "dropped",
    )
    rows = [(r, f"{n:,}", f"{n / total:.1%}") for r, n in reasons]
    body = _chart(svg, "nothing was dropped") + _table(
        ["stage: reason", "documents", "share of drops"], rows, [False, True, True]
    )
    if skipped_records:
        body += (
            f'<p class="note">Not counted above: {skipped_records:,} WARC records that are not '
            f"web pages ({', '.join(NON_PAGE_RECORDS)}); the funnel's <code>read</code> row "
            "leaves them out too.</p>"
        )
    return _section("drops", "Why documents were dropped", body)


def _content(d: ReportData) -> str:
    seen = d.languages_seen
    if seen:
        # What language ID saw, split into kept (passed every filter) and dropped after it.
        top = sorted(seen.items(), key=lambda x: (-x[1], x[0]))[:TOP_N]
        kept = [min(n, d.languages.get(k, 0)) for k, n in top]
        lang_svg = plots.funnel(
            [k for k, _ in top],
            kept,
            [n - k for (_, n), k in zip(top, kept, strict=True)],
            "documents",
        )
        lang_title = "Languages language ID saw (kept after all filters / dropped)"
    else:  # an output from before rejects had a language column: only the kept documents
        langs = sorted(d.languages.items(), key=lambda x: -x[1])[:TOP_N]
        lang_svg = plots.hbar(
            [k for k, _ in langs], [v for _, v in langs], "languages", "documents after filters"
        )
        lang_title = "Languages (documents that passed the filters)"
    crawls = d.crawls.most_common(TOP_N)
    crawl_svg = plots.hbar(
        [k for k, _ in crawls], [v for _, v in crawls], "crawls", "documents", "accent"
    )
    body = (
        f'<div class="grid"><div><h3>{escape(lang_title)}</h3>'
        + _chart(lang_svg, "no language counts in stats.json")
        + "</div><div><h3>Crawl</h3>"
        + _chart(crawl_svg, "no crawl column in the output")
        + "</div></div>"
        + (
            _sample_note("crawl counts", d.tokens, "documents", "of tokens/")
            if d.tokens.rows
            else _sample_note("crawl counts", d.docs, "documents", "of _work/docs (before dedup)")
        )
    )
    return _section("content", "Languages and crawls", body)


def _lengths(d: ReportData) -> str:
    chars_svg = plots.histogram(d.doc_chars, "doc-chars", "characters per document (after filters)")
    tok_svg = plots.histogram(
        d.num_tokens, "num-tokens", "tokens per document (num_tokens, incl. end-of-text)"
    )
    body = (
        '<div class="grid"><div><h3>Document length</h3>'
        + _chart(chars_svg, "no filtered documents (_work/docs) to measure")
        + _sample_note(
            "document lengths",
            d.docs,
            "filtered documents",
            "of _work/docs (before dedup, so more than the output's documents)",
        )
        + "</div><div><h3>Token count</h3>"
        + _chart(tok_svg, "no tokenized output")
        + _sample_note("token counts", d.tokens, "output documents", "of tokens/")
        + "</div></div>"
    )
    return _section("lengths", "Document length and token count", body)


def _domains(d: ReportData) -> str:
    doms = d.dropped_domains.most_common(TOP_N)
    rules = d.url_rules.most_common(TOP_N)
    dom_svg = plots.hbar(
        [k for k, _ in doms],
        [v for _, v in doms],
        "dropped-domains",
        "documents dropped",
        "dropped",
    )
    body = (
        '<div class="grid"><div><h3>Top dropped domains (all stages)</h3>'
        + _chart(dom_svg, "no rejects")
        + "</div><div><h3>URL-filter rules that fired</h3>"
        + _table(
            ["rule (rejects detail)", "documents"], [(k, f"{v:,}") for k, v in rules], [False, True]
        )
        + "</div></div>"
        + _sample_note("rejects", d.rejects, "dropped documents", "of rejects/")
    )
    return _section("domains", "Dropped domains and URL-filter rules", body)


def _pii(d: ReportData) -> str:
    counts = d.pii_counts
    svg = plots.hbar(list(counts), list(counts.values()), "pii", "occurrences replaced", "accent")
    body = _chart(svg, "no PII was found (or the PII stage was disabled)") + _table(
        ["type", "occurrences replaced"], [(k, f"{v:,}") for k, v in counts.items()], [False, True]
    )
    return _section("pii", "PII replaced, by type", body)


def _counters(d: ReportData) -> str:
    """Every counter a stage reported with ``count()`` (built-in or a user's own step)."""
    rows = [(s.name, k, f"{int(n):,}") for s in d.stages for k, n in sorted(s.counters.items())]
    body = _table(["stage", "counter", "value"], rows, [False, False, True])
    return _section("counters", "What the stages counted", body)


def cluster_size_counts(summary: dict[str, Any]) -> list[tuple[str, int]]:
    """The (cluster size or size range, number of clusters) pairs of a dedup summary, by size.

    Reads ``size_histogram`` (labels like ``"2"``, ``"3-4"``, ``"5-8"``), or any other
    ``*size*`` mapping, and orders it by the first number of each label.
    """
    hist: dict[str, Any] = summary.get("size_histogram") or {}
    if not hist:
        hist = next((v for k, v in summary.items() if "size" in k and isinstance(v, dict)), {})
    pairs = []
    for label, n in hist.items():
        digits = str(label).split("-")[0].strip().rstrip("+")
        if not digits.isdigit():
            continue
        pairs.append((int(digits), str(label), int(n)))
    return [(label, n) for _, label, n in sorted(pairs)]


def _dedup(d: ReportData) -> str:
    summary = d.dedup
    if not summary:
        return _section(
            "dedup",
            "Near-duplicate clusters",
            '<p class="empty">dedup was disabled or did not run</p>',
        )
    sizes = cluster_size_counts(summary)
    scalars = [
        (k, _n(v) if isinstance(v, int | float) else str(v))
        for k, v in summary.items()
        if not isinstance(v, dict | list)
    ]
    removed = summary.get("removed")
    if isinstance(removed, dict):
        scalars += [(f"removed as {k}", _n(v)) for k, v in removed.items()]
    body = _kpis([(k.replace("_", " "), v) for k, v in scalars[:8]]) + _chart(
        plots.cluster_sizes(sizes), "no duplicate clusters"
    )
    return _section("dedup", "Near-duplicate clusters (size distribution)", body)


def _throughput(d: ReportData) -> str:
    # CPU time where the run recorded it (it is what a stage costs on a busy machine); runs of
    # older versions only have wall-clock seconds, which are labelled as such.
    cpu = any(s.cpu_seconds > 0 for s in d.stages)
    unit = "CPU-seconds" if cpu else "seconds (wall clock)"

    def cost(s: StageStats) -> float:
        return s.cpu_seconds if cpu else s.seconds

    stages = [s for s in d.stages if cost(s) > 0]
    svg = plots.hbar(
        [s.name for s in stages],
        [s.docs_in / cost(s) for s in stages],
        "stage-rate",
        f"documents/s per worker (docs in / {unit} in stage)",
    )
    rows = []
    for s in stages:
        tok = s.counters.get("tokens", 0)
        rows.append(
            (
                s.name,
                f"{cost(s):,.1f}",
                f"{s.docs_in / cost(s):,.0f}",
                f"{s.bytes_in / cost(s) / 1e6:,.2f}",
                f"{tok / cost(s):,.0f}" if tok else "-",
            )
        )
    total = sum(cost(s) for s in stages)
    read = next((s for s in d.stages if s.name == "read"), None)
    per_k = f"{total / read.docs_out * 1000:,.1f}" if read and read.docs_out else "?"
    body = (
        '<div class="grid"><div><h3>Per stage</h3>'
        + _chart(svg, "no timings")
        + "</div><div><h3>Over time (whole run)</h3>"
        + _chart(plots.timeline(d.progress), "no progress log (logs/progress.jsonl) for this run")
        + "</div></div>"
        + _table(
            ["stage", unit, "docs/s", "MB/s", "tokens/s"],
            rows,
            [False, True, True, True, True],
        )
        + f'<p class="note">Stage {unit} summed over all workers: {total:,.1f} s, '
        f"i.e. {per_k} {unit} per 1,000 records read.</p>"
    )
    return _section("throughput", "Throughput", body)


def _samples(d: ReportData) -> str:
    if not d.samples:
        return _section(
            "samples",
            "Sample documents",
            f'<p class="empty">{escape(d.sample_note or "no output documents")}</p>',
        )
    parts = []
    if d.sample_note:
        parts.append(f'<p class="note">{escape(d.sample_note)}</p>')
    for s in d.samples:
        meta = " · ".join(
            escape(str(x))
            for x in (s.get("language"), s.get("crawl"), f"{s.get('num_tokens', 0):,} tokens")
            if x
        )
        more = " …" if s.get("truncated") else ""
        parts.append(
            f'<h3>{escape(str(s.get("url") or s.get("id")))}</h3><div class="note">{meta}</div>'
            f'<pre class="doc">{escape(s.get("text") or "")}{more}</pre>'
        )
    return _section(
        "samples", "Sample documents (decoded from the output token ids)", "".join(parts)
    )


def render_html(d: ReportData) -> str:
    """The whole report page as a string."""
    title = f"dataproc report: {d.stats.get('pipeline', '')}"
    sections = [
        _overview(d),
        _funnel(d),
        _drops(d),
        _content(d),
        _lengths(d),
        _domains(d),
        _pii(d),
        _counters(d),
        _dedup(d),
        _throughput(d),
        _samples(d),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Forbid every network fetch: the page must be complete on its own.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        + _header(d)
        + "<main>"
        + "".join(sections)
        + "</main></body></html>\n"
    )
