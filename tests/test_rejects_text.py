"""The original WARC-Target-URI survives Wayback unwrapping (tokens and rejects), rejects carry
the language, and ``write.rejects_text`` stores what a dropped page said. One sample shard
through phases 1 and 3 in this process (no Ray; the real reader, extractor and language ID)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dataproc.config import build_config
from dataproc.io.layout import OutputLayout
from dataproc.io.rejects import HTML_PREVIEW_CHARS
from dataproc.runner.phase1 import build_filter_stages, run_phase1
from dataproc.runner.phase3 import run_phase3
from dataproc.sample import write_sample_warcs
from dataproc.stages.tokenize import tokenizer_info


@pytest.fixture(scope="module")
def wayback_shard(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    paths, truth = write_sample_warcs(str(tmp_path_factory.mktemp("sample")))
    page = next(p for p in truth.pages if p.kind == "wayback")
    return paths[page.file_index], page.file_index


def _run(shard: tuple[str, int], out: Path, rejects_text: bool) -> OutputLayout:
    path, index = shard
    config = build_config(
        {
            "inputs": [path],
            "output": str(out),
            "dedup": {"enabled": False},
            "write": {"rejects_text": rejects_text},
        }
    )
    run_phase1(path, index, config, str(out))
    run_phase3(path, index, config, str(out), tokenizer_info(config.tokenizer), generation="g")
    return OutputLayout(str(out))


def test_wayback_capture_keeps_its_warc_target_uri(wayback_shard, tmp_path: Path) -> None:
    layout = _run(wayback_shard, tmp_path / "out", rejects_text=False)
    tokens = pq.read_table(next(Path(layout.tokens_dir).glob("*.parquet"))).to_pylist()
    wayback = [r for r in tokens if r["url"] != r["warc_target_uri"]]
    assert [r["url"] for r in wayback] == [
        "https://blog.example.org/2023/restoring-an-old-kitchen-chair"
    ]
    assert wayback[0]["warc_target_uri"].startswith("https://web.archive.org/web/20240101000000")
    assert all(r["warc_target_uri"] for r in tokens)
    rejects = pq.read_table(layout.rejects(wayback_shard[1], "filter")).to_pylist()
    assert rejects and all(r["warc_target_uri"] for r in rejects if r["url"])
    # Off by default: no text in rejects.
    assert all(r["text"] is None and r["html_bytes"] is None for r in rejects)
    # Dropped at or after language ID (langid, c4, ...): the language it found is kept.
    order = [s.name for s in build_filter_stages(build_config({}))]
    after = set(order[order.index("langid") :])
    labelled = [r for r in rejects if r["stage"] in after]
    assert labelled and all(r["language"] for r in labelled)
    assert all(r["language"] is None for r in rejects if r["stage"] not in after | {"dedup"})


def test_rejects_text_stores_text_or_html_preview(wayback_shard, tmp_path: Path) -> None:
    layout = _run(wayback_shard, tmp_path / "out", rejects_text=True)
    rejects = pq.read_table(layout.rejects(wayback_shard[1], "filter")).to_pylist()
    after_extraction = [r for r in rejects if r["language"] is not None]
    assert after_extraction and all(r["text"] and r["html_bytes"] is None for r in after_extraction)
    before = [r for r in rejects if r["stage"] in ("url_filter", "extract")]
    assert before
    for r in before:  # dropped before or by the extractor: the HTML's size and first characters
        assert r["html_bytes"] and 0 < len(r["text"]) <= HTML_PREVIEW_CHARS
        assert "<" in r["text"]
    skipped_records = [r for r in rejects if r["stage"] == "read"]
    assert all(r["text"] is None for r in skipped_records)  # no payload was decoded
