"""The first hour with the CLI: usage errors exit 2 under the flag's own name, missing optional
packages are one line naming the extra, optional components are checked on the driver before
Ray starts, rich output keeps ``[brackets]``, and `--sample` resumes instead of overwriting.
"""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from dataproc import cli
from dataproc.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == EXIT_USAGE
    return capsys.readouterr().err


def test_workers_zero_is_reported_as_the_flag(capsys, tmp_path: Path) -> None:
    err = _usage_error(["run", "--workers", "0", "--dry-run", "-i", str(tmp_path)], capsys)
    last = err.strip().splitlines()[-1]
    assert "argument --workers: 0 must be >= 1" in last and "execution.workers" not in err


def test_unknown_log_level_is_rejected(capsys) -> None:
    err = _usage_error(["--log-level", "verbose", "config", "show"], capsys)
    assert "--log-level" in err
    assert main(["--log-level", "debug", "config", "show"]) == EXIT_OK  # any case works


def test_usage_errors_share_argparse_code(capsys) -> None:
    assert main([]) == EXIT_USAGE
    assert main(["config"]) == EXIT_USAGE
    _usage_error(["run", "--no-such-flag"], capsys)
    assert EXIT_USAGE == 2 and EXIT_ERROR == 1 and cli.EXIT_FAILED_UNITS == 3


def test_exit_codes_are_documented() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    section = doc.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 130 |"):
        assert code in section


@pytest.mark.parametrize("command", [["inspect"], ["verify"], ["report"]])
def test_missing_filesystem_package_is_one_line_naming_the_extra(command: list[str]) -> None:
    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here")
    proc = subprocess.run(
        [sys.executable, "-m", "dataproc", *command, "gs://bucket/out"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == EXIT_ERROR and len(lines) == 1, proc.stderr
    assert "pip install 'dataproc[gcs]'" in lines[0]


def test_dry_run_checks_filesystem_packages(tmp_path: Path, capsys) -> None:
    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here")
    assert main(["run", "--dry-run", "-i", "gs://b/x.warc.gz", "-o", str(tmp_path)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'dataproc[gcs]'" in err


def test_s3_support_is_in_the_default_install() -> None:
    import fsspec

    fsspec.get_filesystem_class("s3")  # raised ImportError ("Install s3fs") before
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    deps = pyproject.split("dependencies = [", 1)[1].split("\n]", 1)[0]
    assert '"s3fs' in deps


def test_missing_extractor_fails_dry_run_before_ray(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.warc.gz").write_bytes(b"")
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name.split(".")[0] == "resiliparse" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    argv = ["run", "-i", str(tmp_path / "a.warc.gz"), "-o", str(tmp_path / "out")]
    argv += ["--set", "extract.extractor=resiliparse"]
    for extra in (["--dry-run"], []):  # the real run fails the same way, before Ray starts
        assert main(argv + extra) == EXIT_ERROR
        err = capsys.readouterr().err
        assert "pip install 'dataproc[resiliparse]'" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_summary_keeps_brackets_in_messages() -> None:
    from dataproc.stats import StatsSet
    from dataproc.summary import print_summary

    buf = io.StringIO()
    result = SimpleNamespace(
        stats=StatsSet(),
        manifest={},
        out_dir="out[1]",
        seconds=1.0,
        reused={},
        failures=[
            {"phase": "filter", "unit": "0", "error": "needs pip install 'dataproc[resiliparse]'"}
        ],
    )
    print_summary(result, Console(file=buf, width=200))
    assert "dataproc[resiliparse]" in buf.getvalue()
    assert "out[1]" in buf.getvalue()


def test_summary_is_not_cut_at_80_columns_off_a_terminal() -> None:
    from dataproc.stats import StageStats, StatsSet
    from dataproc.summary import print_summary, summary_console

    s = StageStats("quality", docs_in=10, docs_out=4)
    s.drop("gopher_quality_fraction_of_lines_ending_with_ellipsis_too_high", 6)
    long_out = "/data/" + "very-long-folder-name/" * 6
    result = SimpleNamespace(
        stats=StatsSet([s]), manifest={}, out_dir=long_out, seconds=1.0, reused={}, failures=[]
    )
    buf = io.StringIO()
    console = summary_console(file=buf)  # a pipe, as in CI or `ray job logs`
    print_summary(result, console)
    text = buf.getvalue()
    assert "gopher_quality_fraction_of_lines_ending_with_ellipsis_too_high 6" in text
    assert os.path.join(long_out, "tokens") in text  # not wrapped


def test_other_commands_never_advise_resume_on_disk_errors(tmp_path: Path, capsys) -> None:
    from test_report import make_run_dir

    out = make_run_dir(tmp_path / "out")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["export-megatron", str(out), str(blocker / "sub" / "prefix")])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR and "resume" not in err, err


def test_sample_input_is_private_per_user_and_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from dataproc.sample import sample_input_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # leave nothing in /tmp
    (tmp_path / "tmp").mkdir()

    a = sample_input_dir(str(tmp_path / "a"))
    b = sample_input_dir(str(tmp_path / "b"))
    assert a != b and a == sample_input_dir(str(tmp_path / "a"))
    assert "dataproc-sample-input" not in a
    assert str(os.getuid()) in a
    parent = os.stat(os.path.dirname(a))
    assert parent.st_uid == os.getuid() and parent.st_mode & 0o077 == 0


def test_sample_run_does_not_overwrite_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run --sample` no longer forces --overwrite: the driver's own checks decide (resume)."""
    import dataproc.runner.driver as driver

    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def fake_run(config: Any, overwrite: bool = False, **_: Any) -> Any:
        seen.update(config=config, overwrite=overwrite)
        raise Stop

    monkeypatch.setattr(driver, "run_pipeline", fake_run)
    monkeypatch.chdir(tmp_path)
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the sample input goes here
    with pytest.raises(Stop):
        cli.main(["run", "--sample"])
    assert seen["overwrite"] is False
    assert seen["config"].output == "sample-out"
    first = list(seen["config"].inputs)
    assert all(p.startswith(sample_dir_of(tmp_path / "sample-out")) for p in first)
    with pytest.raises(Stop):
        cli.main(["run", "--sample"])
    assert seen["config"].inputs == first  # same inputs: the driver resumes the earlier run


def sample_dir_of(out: Path) -> str:
    from dataproc.sample import sample_input_dir

    return sample_input_dir(str(out))


def test_matplotlib_info_lines_are_silenced(tmp_path: Path) -> None:
    """A first run builds matplotlib's font cache, which it announces at INFO level."""
    from test_report import make_run_dir

    out = make_run_dir(tmp_path / "out")
    env = dict(os.environ, MPLCONFIGDIR=str(tmp_path / "mpl"), PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run(
        [sys.executable, "-m", "dataproc", "--log-level", "INFO", "report", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "matplotlib" not in proc.stderr and "fontManager" not in proc.stderr, proc.stderr


def test_python_api_checks_components_before_ray(tmp_path: Path, monkeypatch) -> None:
    import ray

    from dataproc.config import build_config
    from dataproc.preflight import MissingPackageError
    from dataproc.runner.driver import run_pipeline

    (tmp_path / "a.warc.gz").write_bytes(b"")
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name.split(".")[0] == "resiliparse" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    config = build_config(
        {
            "inputs": [str(tmp_path / "a.warc.gz")],
            "output": str(tmp_path / "out"),
            "extract": {"extractor": "resiliparse"},
        }
    )
    started = ray.is_initialized()
    with pytest.raises(MissingPackageError, match=r"pip install 'dataproc\[resiliparse\]'"):
        run_pipeline(config)
    assert ray.is_initialized() == started and not (tmp_path / "out").exists()
