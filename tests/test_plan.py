from __future__ import annotations

import pytest

from dataproc.errors import InputError
from dataproc.runner.plan import plan_inputs


def _touch(p):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")
    return p


def test_files_dirs_and_globs_sorted_and_unique(tmp_path):
    a = _touch(tmp_path / "b" / "2.warc.gz")
    b = _touch(tmp_path / "a" / "1.warc")
    _touch(tmp_path / "a" / "notes.txt")
    got = plan_inputs([str(tmp_path / "a"), str(tmp_path / "*" / "*.warc.gz"), str(a)])
    assert [g.path for g in got] == sorted([str(a), str(b)])
    assert [g.index for g in got] == [0, 1]


def test_glob_matching_nothing_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="matches no file"):
        plan_inputs([str(tmp_path / "*.warc.gz")])


def test_missing_path_and_empty_dir(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        plan_inputs([str(tmp_path / "nope.warc.gz")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no \.warc"):
        plan_inputs([str(tmp_path / "empty")])
    with pytest.raises(InputError, match="no inputs"):
        plan_inputs([])


def test_http_urls_pass_through():
    got = plan_inputs(["https://data.commoncrawl.org/crawl-data/x.warc.gz"])
    assert got[0].path == "https://data.commoncrawl.org/crawl-data/x.warc.gz"
