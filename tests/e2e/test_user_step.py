"""docs/stages.md "Adding a step", exactly as written, through a real run (one Ray start).

The example's module and its YAML diff are read from the page itself: the diff must turn the
shipped pipelines/commoncrawl_en.yaml into the pipeline that runs, and the user's step must
come out with what a built-in step has: stats, counters, rejects, report rows, fingerprint.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from _crawl_fixtures import _html, _page_texts
from warc_builder import WarcBuilder

from dataproc.config import load_config

from ._cli import REPO, RUN, cli_env, run_cli, run_ok

PAGE = REPO / "docs" / "stages.md"


def _example() -> tuple[str, str, str]:
    """(my_filters.py, the shipped pipeline as the diff shows it, my_pipeline.yaml)."""
    section = PAGE.read_text(encoding="utf-8").split("## Adding a step", 1)[1]
    code = re.search(r"```python\n(# my_filters\.py\n.*?)```", section, re.S)
    diff = re.search(r"```diff\n(.*?)```", section, re.S)
    assert code and diff, "docs/stages.md lost its worked example"
    old, new = [], []
    for line in diff.group(1).splitlines():
        tag, rest = line[:1], line[1:]
        assert tag in " +-", line
        if tag in " -":
            old.append(rest)
        if tag in " +":
            new.append(rest)
    return code.group(1), "\n".join(old) + "\n", "\n".join(new) + "\n"


def _crawl(path: Path) -> list[str]:
    """Five English pages; the last two turn to capitals after their first third."""
    b = WarcBuilder()
    shouting = []
    for k, (stem, text) in enumerate(_page_texts()[:5]):
        url = f"https://site.example.com/{stem}"
        if k >= 3:
            cut = len(text) // 3
            text = text[:cut] + text[cut:].upper()
            shouting.append(url)
        b.response(url, _html(stem, text))
    path.parent.mkdir(parents=True)
    path.write_bytes(b.build(gzip=True))
    return shouting


@pytest.mark.ray
def test_the_documented_step_runs_like_a_built_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, shipped, mine = _example()
    assert shipped == (REPO / "pipelines" / "commoncrawl_en.yaml").read_text(encoding="utf-8")
    (tmp_path / "my_filters.py").write_text(code, encoding="utf-8")
    (tmp_path / "my_pipeline.yaml").write_text(mine, encoding="utf-8")
    shouting = _crawl(tmp_path / "crawl" / "CC-TEST-00000.warc.gz")
    env = cli_env(PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))

    # The documented `config show`: the step with its settings, --set applied.
    proc = run_cli(
        "config", "show", "-c", "my_pipeline.yaml", "--set", "shouting.max_upper_ratio=0.4",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    steps = yaml.safe_load(proc.stdout)["steps"]
    assert steps[6] == {"my_filters:ShoutingFilter": {"max_upper_ratio": 0.4}}

    run_ok("run", "-c", "my_pipeline.yaml", "-i", "crawl", "-o", "out", *RUN, cwd=tmp_path, env=env)
    out = tmp_path / "out"
    stages = json.loads((out / "stats.json").read_text())["stages"]
    names = [s["name"] for s in stages]
    assert names.index("fineweb") < names.index("shouting") < names.index("pii")
    st = stages[names.index("shouting")]
    assert (st["docs_in"], st["docs_out"]) == (5, 3)
    assert st["dropped"] == {"too_many_capitals": 2}
    assert st["counters"]["capital_letters"] > 0 and st["seconds"] > 0

    rejects = pq.read_table(out / "rejects").to_pylist()
    mine_rejected = sorted(r["url"] for r in rejects if r["stage"] == "shouting")
    assert mine_rejected == sorted(shouting)
    assert all(
        r["reason"] == "too_many_capitals" and "of letters are capitals" in r["detail"]
        for r in rejects
        if r["stage"] == "shouting"
    )
    assert len(pq.read_table(out / "tokens")) == 3

    report = (out / "report.html").read_text(encoding="utf-8")
    assert "shouting: too_many_capitals" in report
    assert "<td>shouting</td><td>capital_letters</td>" in report

    # The step, its place and its settings are part of the run's fingerprint.
    monkeypatch.syspath_prepend(str(tmp_path))
    manifest = json.loads((out / "manifest.json").read_text())
    pipeline = tmp_path / "my_pipeline.yaml"
    assert manifest["config_fingerprint"] == load_config(pipeline).fingerprint()
    others = {
        load_config(REPO / "pipelines" / "commoncrawl_en.yaml").fingerprint(),
        load_config(pipeline, ["shouting.max_upper_ratio=0.5"]).fingerprint(),
    }
    assert manifest["config_fingerprint"] not in others and len(others) == 2
