"""What the report and `inspect` show a new user: no fake drops, no fake zeros, what language
ID saw, the same words for missing values, honest sampling notes, and interrupted runs."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from test_report import make_run_dir

from dataproc.cli import EXIT_OK, main
from dataproc.report import build_report
from dataproc.report.data import ReportData, load_report_data
from dataproc.report.render import _content, _funnel, _lengths, render_html
from dataproc.stats import StageStats


def _stage(name: str, docs_in: int, dropped: dict[str, int], b_in: int = 0, b_out: int = 0):
    s = StageStats(name, docs_in=docs_in, docs_out=docs_in - sum(dropped.values()))
    for r, n in dropped.items():
        s.drop(r, n)
    s.bytes_in, s.bytes_out = b_in, b_out
    return s


def _data(stages: list[StageStats], **stats: object) -> ReportData:
    return ReportData(out_dir="o", stats=dict(stats), manifest={}, stages=stages)


def _rows(html: str) -> dict[str, list[str]]:
    out = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", html):
        cells = [unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)]
        if cells:
            out[cells[0]] = cells
    return out


def test_non_page_records_are_not_drops_of_read() -> None:
    read = _stage("read", 1000, {"request": 300, "metadata": 300, "warcinfo": 1, "non_html": 99})
    html = _funnel(_data([read, _stage("extract", 300, {"empty": 100})]))
    row = _rows(html)["read"]
    assert row[1:5] == ["399", "300", "99", "75.2%"]  # in, out, dropped, kept: pages only
    assert "601 WARC records that are not web pages" in unescape(html)
    from dataproc.report.render import _drops, _mb

    assert "leaves them out too" in _drops(_data([read]))
    assert _mb(12_345) == "12.3 kB" and _mb(0) == "0.0 MB"  # small, not "0.0 MB"


def test_unmeasured_bytes_show_a_dash_not_zero() -> None:
    stages = [
        _stage("read", 10, {}, 50_000_000, 50_000_000),
        _stage("url_filter", 10, {"blocked_domain": 2}),
        _stage("extract", 8, {}, 40_000_000, 2_000_000),
        _stage("minhash", 8, {}),
        _stage("dedup", 8, {"exact_duplicate": 1}),
    ]
    html = _funnel(_data(stages))
    rows = _rows(html)
    for name in ("url_filter", "minhash", "dedup"):
        assert rows[name][-2:] == ["-", "-"], rows[name]
    assert rows["extract"][-2:] == ["40.0 MB", "2.0 MB"]
    # Extraction shrinking HTML to text is not drawn as "dropped" bytes.
    chart = html.split("<h3>Bytes", 1)[1].split("</div>", 1)[0]
    assert "dropped" not in chart


def test_language_chart_shows_what_language_id_saw(tmp_path: Path) -> None:
    out = make_run_dir(tmp_path / "out")
    schema = pa.schema([("url", pa.string()), ("stage", pa.string()), ("reason", pa.string())])
    schema = schema.append(pa.field("detail", pa.string())).append(
        pa.field("language", pa.string())
    )
    rows = {
        "url": ["https://a.fr/", "https://b.fr/", "https://c.ja/", "https://d/", "https://e/"],
        "stage": ["langid", "langid", "langid", "extract", "dedup"],
        "reason": ["language_not_kept"] * 3 + ["empty", "exact_duplicate"],
        "detail": ["fr (0.9)", "fr (0.8)", "ja (0.99)", "", ""],
        "language": ["fr", "fr", "ja", None, "en"],
    }
    pq.write_table(pa.table(rows, schema=schema), out / "rejects" / "000001-filter.parquet")
    d = load_report_data(str(out))
    # kept after filters (stats.json: en 400, de 15, fr 5) + dropped at/after langid in phase 1;
    # the dedup reject is already among the 400 en, the extract reject was never labelled.
    assert d.languages_seen == {"en": 400, "de": 15, "fr": 7, "ja": 1}
    html = _content(d)
    assert "language ID saw" in html and ">ja<" in html.replace("</tspan>", "<")


def test_length_note_says_the_documents_are_before_dedup(tmp_path: Path) -> None:
    d = load_report_data(str(make_run_dir(tmp_path / "out")))
    note = unescape(_lengths(d))
    assert "30 filtered documents from all 1 file(s) of _work/docs (before dedup" in note
    assert "rows" not in note


def test_inspect_and_report_both_say_unknown(tmp_path: Path) -> None:
    from _output_fixtures import make_output

    from dataproc.inspect_output import inspect_output

    out = tmp_path / "out"
    manifest = make_output(str(out), docs_per_input=[5])
    path = out / manifest["files"][0]["path"]
    t = pq.read_table(path)
    i = t.schema.get_field_index("language")
    t = t.set_column(i, t.schema.field(i), pa.nulls(t.num_rows, pa.string()))
    pq.write_table(t, path)  # a document language ID never labelled
    d = inspect_output(str(out), samples=0)
    assert "(none)" not in d["tokens_by_language"] and "unknown" in d["tokens_by_language"]


def _interrupted_run(out: Path) -> Path:
    """An output whose run stopped after filtering 1 of 2 inputs (markers as the driver writes)."""
    from dataproc.io.markers import FilterMarker, RunState

    (out / "_work" / "done").mkdir(parents=True)
    state = RunState(
        state_version=1,
        fingerprint="f1",
        inputs_digest="d",
        num_inputs=2,
        settings={"name": "mine"},
    )
    (out / "_work" / "run.json").write_text(json.dumps(state.to_json()))
    stats = [
        _stage("read", 500, {"request": 200, "non_html": 50}, 9_000_000, 8_000_000).to_dict(),
        _stage("extract", 250, {"empty": 50}, 8_000_000, 400_000).to_dict(),
    ]
    marker = FilterMarker(
        input_index=0,
        input="a.warc.gz",
        fingerprint="f1",
        stats=stats,
        seconds=1.0,
        input_bytes=9_000_000,
        docs_kept=200,
        languages={"en": 180, "de": 20},
    )
    (out / "_work" / "done" / "000000-phase1.json").write_text(json.dumps(marker.to_json()))
    stale = marker.model_copy(update={"input_index": 1, "fingerprint": "old-config"})
    (out / "_work" / "done" / "000001-phase1.json").write_text(json.dumps(stale.to_json()))
    (out / "_work" / "done" / "000001-phase3.json").write_text("{cut sho")
    return out


def test_report_on_an_interrupted_run_shows_what_finished(tmp_path: Path, capsys) -> None:
    out = _interrupted_run(tmp_path / "out")
    assert main(["report", str(out)]) == EXIT_OK
    html = unescape((out / "report.html").read_text())
    assert "INCOMPLETE" in html
    assert "Interrupted run" in html and "1 of 2 input file(s) filtered, 0 tokenized" in html
    d = load_report_data(str(out))
    assert [s.name for s in d.stages] == ["read", "extract"]
    assert d.stages[0].docs_in == 500  # the stale marker of another config is not counted
    assert d.languages == {"en": 180, "de": 20}


def test_report_still_refuses_a_folder_without_a_run(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path)]) != EXIT_OK
    assert "no _work/run.json" in capsys.readouterr().err


def test_full_report_renders_with_all_changes(tmp_path: Path) -> None:
    out = make_run_dir(tmp_path / "out")
    assert render_html(load_report_data(str(out))).startswith("<!DOCTYPE html>")
    assert Path(build_report(str(out))).exists()
