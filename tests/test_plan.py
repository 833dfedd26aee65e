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


def test_phase1_submits_local_inputs_largest_first(tmp_path) -> None:
    """Scheduling order (not output order): biggest local files first, remote ones last."""
    from dataproc.runner.driver import _largest_first
    from dataproc.runner.plan import InputFile

    sizes = {"a": 10, "b": 300, "c": 20, "d": 300}
    inputs = []
    for i, (name, n) in enumerate(sizes.items()):
        p = tmp_path / f"{name}.warc.gz"
        p.write_bytes(b"x" * n)
        inputs.append(InputFile(index=i, path=str(p)))
    inputs.insert(1, InputFile(index=9, path="https://data.commoncrawl.org/x.warc.gz"))
    order = [i.index for i in _largest_first(inputs)]
    assert order == [1, 3, 2, 0, 9]  # ties keep their order; remote after local
