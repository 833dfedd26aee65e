"""The command line: complete help, `config show`, `--dry-run`, one-line config errors, exit codes."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dataproc import cli
from dataproc.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from dataproc.config import load_config
from dataproc.steps.builtin import DEFAULT_STEPS


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _walk(parser: argparse.ArgumentParser, prefix: str = "dataproc"):
    yield prefix, parser
    for name, sub in _subparsers(parser).items():
        yield from _walk(sub, f"{prefix} {name}")


def test_every_command_and_option_has_help() -> None:
    parser = cli._build_parser()
    commands = dict(_walk(parser))
    assert {"dataproc run", "dataproc config show", "dataproc report"} <= set(commands)
    missing = []
    for name, p in commands.items():
        for sub in (a for a in p._actions if isinstance(a, argparse._SubParsersAction)):
            missing += [f"{name} {c.dest}" for c in sub._choices_actions if not c.help]
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction | argparse._HelpAction):
                continue
            if not a.help or a.help == argparse.SUPPRESS:
                missing.append(f"{name} {'/'.join(a.option_strings) or a.dest}")
    assert not missing, f"options or commands without help: {missing}"


@pytest.mark.parametrize(
    "argv", [["--help"], ["run", "--help"], ["config", "show", "--help"], ["report", "--help"]]
)
def test_help_exits_zero(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    assert "usage: dataproc" in capsys.readouterr().out


def test_no_command_prints_help_and_exits_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_USAGE
    assert "COMMAND" in capsys.readouterr().out


def test_config_show_prints_the_resolved_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = tmp_path / "p.yaml"
    cfg.write_text("name: mine\nlangid:\n  min_score: 0.7\n")
    assert main(["config", "show", "-c", str(cfg), "--set", "tokenizer.name=o200k_base"]) == EXIT_OK
    out = capsys.readouterr().out
    shown = yaml.safe_load(out)
    assert shown["name"] == "mine"
    # Each step with its settings, in order; the other sections as they are.
    steps = [next(iter(s)) for s in shown["steps"]]
    assert steps == [*DEFAULT_STEPS]
    assert shown["steps"][4]["langid"]["min_score"] == 0.7
    assert shown["steps"][5]["quality"]["c4"]["min_sentences"] == 5  # defaults included
    assert "langid" not in shown and "quality" not in shown  # one place for each setting
    assert shown["tokenizer"]["name"] == "o200k_base"
    assert "execution" in shown and "dedup" in shown
    # What it prints is a pipeline file again, with the same fingerprint.
    again = tmp_path / "again.yaml"
    again.write_text(out)
    assert (
        load_config(again).fingerprint()
        == load_config(cfg, ["tokenizer.name=o200k_base"]).fingerprint()
    )


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        (
            "execution.progress=fancy",
            ["execution.progress", '"fancy"', "'auto', 'bar', 'log' or 'none'"],
        ),
        ("langid.min_score=2", ["langid.min_score=2", "less than or equal to 1"]),
        ("langid.min_scor=1", ["unknown key 'langid.min_scor'", "min_score"]),
        ("execution.workers=abc", ["execution.workers", '"abc"', "integer"]),
    ],
)
def test_bad_config_is_one_line_naming_key_value_and_allowed(
    override: str, needles: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "show", "--set", override]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("dataproc: error: ")
    for n in needles:
        assert n in err, (n, err)


def test_bad_yaml_file_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("langid: [unclosed\n")
    assert main(["config", "show", "-c", str(bad)]) == EXIT_ERROR
    assert str(bad) in capsys.readouterr().err
    assert main(["config", "show", "-c", str(tmp_path / "missing.yaml")]) == EXIT_ERROR
    assert "missing.yaml: no such config file" in capsys.readouterr().err


def test_dry_run_lists_inputs_in_order_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from warc_builder import WarcBuilder

    for name in ("b.warc.gz", "a.warc.gz"):  # real WARCs: --dry-run also sniffs each file
        WarcBuilder().response("http://a.example/", "<html>hi</html>").write(tmp_path / name)
    out = tmp_path / "out"
    assert main(["run", "--dry-run", "-i", str(tmp_path / "*.warc.gz"), "-o", str(out)]) == EXIT_OK
    text = capsys.readouterr().out
    assert "2 input file(s) would be processed" in text
    assert (
        text.index("[000000]")
        < text.index("a.warc.gz")
        < text.index("[000001]")
        < text.index("b.warc.gz")
    )
    assert not out.exists()


def test_missing_input_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["run", "--dry-run", "-i", str(tmp_path / "nothing-*.warc.gz"), "-o", str(tmp_path)])
        == EXIT_ERROR
    )
    assert capsys.readouterr().err.startswith("dataproc: error:")


def test_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from test_report import make_run_dir

    out = make_run_dir(tmp_path / "out")
    assert main(["report", str(out), "--html", str(tmp_path / "r.html")]) == EXIT_OK
    assert capsys.readouterr().out.strip() == str(tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert main(["report", str(tmp_path / "nope")]) == EXIT_ERROR
    assert "no such folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == EXIT_ERROR  # a folder without a run
    assert "no stats.json" in capsys.readouterr().err


def test_console_entry_point_exit_code() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "dataproc", "config", "show", "--set", "nope=1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == EXIT_ERROR
    assert r.stderr.strip().startswith("dataproc: error:") and "Traceback" not in r.stderr
