"""Consent: robots.txt as captured in the crawl, noai / TDMRep page signals (docs/consent.md).

Robots captures and pages are generated here (tests/warc_builder.py); the exact set of dropped
pages is asserted, with the reason each gets.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from warc_builder import WarcBuilder

from dataproc.consent.robots_index import (
    RobotsIndex,
    build_robots_index,
    host_hash,
    tdmrep_reserves,
)
from dataproc.consent.signals import header_signals, meta_signals
from dataproc.document import Document, Reject
from dataproc.errors import InputError
from dataproc.stages.consent import ConsentConfig, ConsentFilter

AGENTS = ["GPTBot", "CCBot", "ClaudeBot", "Google-Extended"]

ROBOTS = {
    # Disallows GPTBot everywhere; everyone else may fetch.
    "https://gpt-blocker.example/robots.txt": "User-agent: GPTBot\nDisallow: /\n\nUser-agent: *\nAllow: /\n",
    # Agent group with a wildcard and an Allow that overrides the Disallow (longest match).
    "https://mixed.example/robots.txt": (
        "User-agent: ClaudeBot\nUser-agent: Google-Extended\nDisallow: /private/\n"
        "Disallow: /*.pdf$\nAllow: /private/open/\n\nUser-agent: *\nDisallow:\n"
    ),
    # Names no AI agent: nothing here can opt a listed agent out.
    "https://plain.example/robots.txt": "User-agent: *\nDisallow: /admin/\n",
    # A 404 robots.txt: captured, allows everything.
    "https://missing-robots.example/robots.txt": None,
}


def _robots_warc(path: Path) -> Path:
    b = WarcBuilder()
    for url, body in ROBOTS.items():
        if body is None:
            b.response(
                url, "not found", status_line="HTTP/1.1 404 Not Found", content_type="text/plain"
            )
        else:
            b.response(url, body, content_type="text/plain")
    # A redirect: http://redirected.example -> https://gpt-blocker.example/robots.txt.
    b.response(
        "http://redirected.example/robots.txt",
        "",
        status_line="HTTP/1.1 301 Moved Permanently",
        headers=[("Location", "https://gpt-blocker.example/robots.txt")],
        content_type=None,
    )
    # A 500 KB robots file: rules past 500 KiB are ignored (RFC 9309), the ones before count.
    big = "User-agent: CCBot\nDisallow: /big-early/\n" + "# filler\n" * 64000
    big += "User-agent: GPTBot\nDisallow: /big-late/\n"
    b.response("https://big.example/robots.txt", big, content_type="text/plain")
    # Not UTF-8 (Latin-1 comment bytes) and half garbage: parsed leniently.
    latin = "# r\xe9serv\xe9\nUser-agent: GPTBot\nDisallow: /fr/\n\x00\x01garbage line\n"
    b.response(
        "https://latin.example/robots.txt", latin, encoding="latin-1", content_type="text/plain"
    )
    # A captured TDMRep policy.
    b.response(
        "https://tdm.example/.well-known/tdmrep.json",
        '[{"location": "/news/*", "tdm-reservation": 1}, {"location": "/*", "tdm-reservation": 0}]',
        content_type="application/json",
    )
    return b.write(path / "robots.warc.gz")


@pytest.fixture()
def index(tmp_path: Path) -> RobotsIndex:
    warc = _robots_warc(tmp_path)
    meta = build_robots_index([str(warc)], AGENTS, str(tmp_path / "index"))
    assert meta["hosts"] == 7  # every robots.txt capture, whatever its status
    return RobotsIndex(str(tmp_path / "index"))


def _doc(
    url: str, html: str = "<html><head></head><body>hi</body></html>", **headers: str
) -> Document:
    d = Document(id=url, url=url, source="t", html=html)
    if headers:
        d.metadata["http_headers"] = {k.replace("_", "-"): v for k, v in headers.items()}
    return d


def _verdicts(stage: ConsentFilter, urls: list[str]) -> dict[str, str]:
    out = {}
    for u in urls:
        r = stage.process(_doc(u))
        out[u] = r.reason if isinstance(r, Reject) else "kept"
    return out


def test_robots_rules_as_captured(tmp_path: Path) -> None:
    warc = _robots_warc(tmp_path)
    cfg = ConsentConfig(agents=AGENTS, robots=[str(warc)], robots_index=str(tmp_path / "idx"))
    build_robots_index([str(warc)], AGENTS, str(tmp_path / "idx"))
    stage = ConsentFilter(cfg)
    stage.setup()
    got = _verdicts(
        stage,
        [
            "https://gpt-blocker.example/a",
            "http://gpt-blocker.example/b",  # same host, other scheme: the host's rules apply
            "https://mixed.example/private/x",
            "https://mixed.example/private/open/y",  # Allow overrides Disallow
            "https://mixed.example/doc.pdf",  # wildcard + $ anchor
            "https://mixed.example/doc.pdf.html",
            "https://mixed.example/public",
            "https://plain.example/admin/z",  # * rules were honoured by CCBot itself
            "https://missing-robots.example/anything",
            "http://redirected.example/page",  # one redirect hop to gpt-blocker's rules
            "https://big.example/big-early/1",
            "https://big.example/big-late/1",  # beyond 500 KiB: not a rule
            "https://latin.example/fr/page",
            "https://no-capture.example/page",
        ],
    )
    assert got == {
        "https://gpt-blocker.example/a": "opt_out:robots:GPTBot",
        "http://gpt-blocker.example/b": "opt_out:robots:GPTBot",
        "https://mixed.example/private/x": "opt_out:robots:ClaudeBot",
        "https://mixed.example/private/open/y": "kept",
        "https://mixed.example/doc.pdf": "opt_out:robots:ClaudeBot",
        "https://mixed.example/doc.pdf.html": "kept",
        "https://mixed.example/public": "kept",
        "https://plain.example/admin/z": "kept",
        "https://missing-robots.example/anything": "kept",
        "http://redirected.example/page": "opt_out:robots:GPTBot",
        "https://big.example/big-early/1": "opt_out:robots:CCBot",
        "https://big.example/big-late/1": "kept",
        "https://latin.example/fr/page": "opt_out:robots:GPTBot",
        "https://no-capture.example/page": "kept",
    }


def test_missing_robots_policy_drop(tmp_path: Path) -> None:
    warc = _robots_warc(tmp_path)
    build_robots_index([str(warc)], AGENTS, str(tmp_path / "idx"))
    stage = ConsentFilter(
        ConsentConfig(agents=AGENTS, robots_index=str(tmp_path / "idx"), missing_robots="drop")
    )
    stage.setup()
    got = _verdicts(stage, ["https://no-capture.example/p", "https://plain.example/p"])
    assert got == {
        "https://no-capture.example/p": "opt_out:no_robots",
        "https://plain.example/p": "kept",
    }


def test_tdmrep_policy_from_the_crawl(index: RobotsIndex) -> None:
    assert index.tdm_reserved("https://tdm.example/news/today", "tdm.example")
    assert not index.tdm_reserved("https://tdm.example/about", "tdm.example")
    assert not index.tdm_reserved("https://other.example/news/x", "other.example")


def test_index_is_keyed_by_hash_and_compact(index: RobotsIndex) -> None:
    # Only hosts naming a listed agent keep their robots.txt; the rest are 8-byte hashes.
    assert sorted(index.rules.column("host").to_pylist()) == [
        "big.example",
        "gpt-blocker.example",
        "latin.example",
        "mixed.example",
        "redirected.example",
    ]
    assert index.captured("plain.example") and not index.captured("nowhere.example")
    assert int(index.hosts[0]) <= int(index.hosts[-1])
    assert host_hash("a.example") == host_hash("a.example") != host_hash("b.example")


def test_damaged_robots_file_is_counted_not_fatal(tmp_path: Path) -> None:
    good = _robots_warc(tmp_path)
    bad = tmp_path / "bad.warc.gz"
    bad.write_bytes(good.read_bytes()[:700] + b"\x00garbage" * 50)
    meta = build_robots_index([str(good), str(bad)], AGENTS, str(tmp_path / "idx"))
    assert any(k.startswith("damaged_file") for k in meta["counters"])
    assert meta["hosts"] == 7


def test_missing_robots_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        build_robots_index([str(tmp_path / "nope.warc.gz")], AGENTS, str(tmp_path / "idx"))


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        ('<head><meta name="robots" content="noindex, noai"></head>', "opt_out:meta_noai"),
        ("<head><meta content='NOAI' name='ROBOTS'></head>", "opt_out:meta_noai"),
        ('<head><meta name="GPTBot" content="noai"></head>', "opt_out:meta_noai"),
        ('<head><meta name="otherbot" content="noai"></head>', "kept"),
        ('<head><meta name="robots" content="noimageai"></head>', "kept"),
        ('<head><meta name="tdm-reservation" content="1"></head>', "opt_out:tdm_reservation"),
        ('<head><meta name="tdm-reservation" content="0"></head>', "kept"),
        ("<head><title>noai in text only</title></head>", "kept"),
    ],
)
def test_page_meta_signals(html: str, reason: str) -> None:
    stage = ConsentFilter(ConsentConfig(agents=AGENTS))
    stage.setup()
    r = stage.process(_doc("https://x.example/", html))
    assert (r.reason if isinstance(r, Reject) else "kept") == reason


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"x_robots_tag": "noai"}, "opt_out:header_noai"),
        ({"x_robots_tag": "noindex\nnoai, noimageai"}, "opt_out:header_noai"),
        ({"x_robots_tag": "GPTBot: noai"}, "opt_out:header_noai"),
        ({"x_robots_tag": "somebot: noai"}, "kept"),
        ({"x_robots_tag": "noimageai"}, "kept"),
        ({"tdm_reservation": "1"}, "opt_out:tdm_reservation"),
        ({"tdm_reservation": "0"}, "kept"),
    ],
)
def test_header_signals(headers: dict[str, str], reason: str) -> None:
    stage = ConsentFilter(ConsentConfig(agents=AGENTS))
    r = stage.process(_doc("https://x.example/", **headers))
    assert (r.reason if isinstance(r, Reject) else "kept") == reason


def test_noimageai_is_opt_in() -> None:
    stage = ConsentFilter(ConsentConfig(agents=AGENTS, noimageai=True))
    r = stage.process(_doc("https://x.example/", '<meta name="robots" content="noimageai">'))
    assert isinstance(r, Reject) and r.reason == "opt_out:meta_noimageai"


def test_signal_parsers_directly() -> None:
    assert meta_signals('<meta name="robots" content="noai">', AGENTS).noai
    assert not meta_signals("<p>" + "noai " * 10000 + "</p>", AGENTS).noai
    assert header_signals({"x-robots-tag": "CCBot: noai"}, AGENTS).noai
    assert tdmrep_reserves('[{"location": "/*.pdf$", "tdm-reservation": 1}]', "/a/b.pdf")
    assert not tdmrep_reserves("not json", "/")


def test_reasons_name_configured_agents() -> None:
    stage = ConsentFilter(ConsentConfig(agents=["MyBot"]))
    assert "opt_out:robots:MyBot" in stage.REASONS
    assert "opt_out:robots:GPTBot" in ConsentFilter.REASONS


# -- the whole pipeline ---------------------------------------------------------------------


@pytest.mark.ray
def test_pipeline_drops_opted_out_pages_and_reuses_its_index(ray_cluster, tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    from _crawl_fixtures import _html, _page_texts, output_digest

    from dataproc.config import build_config
    from dataproc.io.layout import OutputLayout
    from dataproc.runner.driver import run_pipeline

    robots = _robots_warc(tmp_path)
    texts = _page_texts()
    pages = {
        "https://gpt-blocker.example/a": ({}, "opt_out:robots:GPTBot"),
        "https://mixed.example/private/x": ({}, "opt_out:robots:ClaudeBot"),
        "https://mixed.example/private/open/y": ({}, None),
        "https://plain.example/admin/z": ({}, None),
        "https://tdm.example/news/today": ({}, "opt_out:tdm_reservation"),
        "https://hdr.example/p": ({"X-Robots-Tag": "noai"}, "opt_out:header_noai"),
        "https://meta.example/p": ({"meta": "noai"}, "opt_out:meta_noai"),
    }
    b = WarcBuilder().warcinfo(is_part_of="CC-MAIN-2024-22")
    for k, (url, (hdrs, _)) in enumerate(pages.items()):
        stem, text = texts[k]
        html = _html(stem, text)
        if hdrs.get("meta"):
            html = html.replace("<head>", '<head><meta name="robots" content="noai">')
        b.response(url, html, headers=[(k2, v) for k2, v in hdrs.items() if k2 != "meta"])
    warc = b.write(tmp_path / "pages.warc.gz")
    out = tmp_path / "out"
    config = build_config(
        {
            "inputs": [str(warc)],
            "output": str(out),
            "consent": {
                "agents": AGENTS,
                "robots": [str(robots)],
                "robots_index": OutputLayout(str(out)).robots_index_dir,
            },
            "execution": {"progress": "none"},
        }
    )
    result = run_pipeline(config)
    assert result.ok, result.failures
    rej = pq.read_table(out / "rejects" / "000000-filter.parquet").to_pylist()
    dropped = {r["url"]: r["reason"] for r in rej if r["stage"] == "consent"}
    assert dropped == {u: why for u, (_, why) in pages.items() if why}
    consent = result.stats.get("consent")
    assert consent.docs_in == len(pages)
    assert consent.docs_in - consent.docs_out == sum(1 for _, why in pages.values() if why)
    before = output_digest(out)
    index_meta = (out / "_work" / "consent" / "robots" / "meta.json").stat().st_mtime_ns
    again = run_pipeline(config)
    assert again.ok and output_digest(out) == before
    assert (out / "_work" / "consent" / "robots" / "meta.json").stat().st_mtime_ns == index_meta


def test_crawl_finds_robots_files_of_the_selected_segments(tmp_path: Path) -> None:
    """``--crawl ID``: robots files come from robotstxt.paths.gz, for the inputs' segments."""
    import argparse
    import gzip

    from _crawl_fixtures import FaultyFileServer

    from dataproc.config import build_config
    from dataproc.consent.prepare import apply_consent_args, resolve_index_paths

    crawl = "CC-MAIN-2024-22"
    seg_a, seg_b = "1715971057216.39", "1715971058000.11"
    robots_paths = [
        f"crawl-data/{crawl}/segments/{seg_a}/robotstxt/CC-MAIN-x-00000.warc.gz",
        f"crawl-data/{crawl}/segments/{seg_b}/robotstxt/CC-MAIN-x-00000.warc.gz",
    ]
    files = {
        f"crawl-data/{crawl}/robotstxt.paths.gz": gzip.compress("\n".join(robots_paths).encode()),
        robots_paths[0]: _robots_warc(tmp_path).read_bytes(),
    }
    with FaultyFileServer(files) as srv:
        config = build_config(
            {
                "output": str(tmp_path / "out"),
                "inputs": [
                    f"{srv.base_url}/crawl-data/{crawl}/segments/{seg_a}/warc/CC-MAIN-x-00001.warc.gz"
                ],
            }
        )
        args = argparse.Namespace(robots=None, crawl=crawl, crawl_base_url=srv.base_url)
        config = apply_consent_args(args, config)
        assert config.consent.robots == [f"{srv.base_url}/{robots_paths[0]}"]
        config = resolve_index_paths(config)
        from dataproc.consent.prepare import prepare_run_indexes

        prepare_run_indexes(config)  # remote robots files are read like any input
        idx = RobotsIndex(str(config.consent.robots_index))
        assert idx.captured("gpt-blocker.example")


def test_run_with_missing_robots_path_is_a_one_line_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    from warc_builder import WarcBuilder as WB

    warc = WB().response("https://a.example/", "<html>x</html>").write(tmp_path / "in.warc.gz")
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "dataproc",
            "run",
            "-i",
            str(warc),
            "-o",
            str(tmp_path / "o"),
            "--robots",
            str(tmp_path / "nope"),
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode != 0 and "--robots" in p.stderr and "no such file" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
