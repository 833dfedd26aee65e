"""Command line: ``dataproc run|config|verify|inspect|reshard|...``.

Every error a user can cause ends as one clear line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from dataproc.errors import DataprocError
from dataproc.version import __version__

# Exit codes (docs/api.md): usage errors share argparse's 2; errors in what the command was
# asked to do (config, inputs, output) are 1; a run that finished with failed units is 3.
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_FAILED_UNITS = 0, 1, 2, 3
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_QUIET_LIBRARIES = (
    "matplotlib",
    "PIL",
    "fontTools",
    "botocore",
    "aiobotocore",
    "boto3",
    "s3transfer",
    "s3fs",
    "gcsfs",
    "fsspec",
    "urllib3",
    "filelock",
)


def _positive_int(value: str) -> int:
    """argparse type for counts that must be >= 1 (reported under the flag's own name)."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} must be >= 1")
    return n


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        "-c",
        metavar="YAML",
        help="pipeline config (e.g. pipelines/commoncrawl_en.yaml); default: built-in FineWeb-like English",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one option, e.g. --set langid.min_score=0.8 (repeatable; values are YAML)",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dataproc",
        description="Turn Common Crawl WARC files into training-ready tokenized Parquet, on Ray.",
        epilog="Quick start: `dataproc run --sample`. Docs: docs/ in the repository.",
    )
    parser.add_argument("--version", action="version", version=f"dataproc {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=LOG_LEVELS,
        help="logging level: DEBUG, INFO, WARNING or ERROR (default INFO)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the pipeline on WARC inputs",
        description="Run the pipeline: WARC → filters → dedup → tokenized Parquet under OUTPUT.",
    )
    _add_config_args(run)
    run.add_argument(
        "--input",
        "-i",
        dest="inputs",
        action="extend",
        nargs="+",
        default=[],
        metavar="PATH",
        help="WARC files, directories, globs or URLs (s3://, gs://, https://); repeatable",
    )
    run.add_argument("--output", "-o", help="output folder (local path or URL)")
    from dataproc.cli_cluster import add_crawl_args

    add_crawl_args(run)  # --crawl ID --shards A:B --crawl-base-url URL
    run.add_argument(
        "--robots",
        nargs="+",
        metavar="PATH",
        help="robots.txt WARC files or folders of the crawl (Common Crawl's robotstxt/ files): "
        "pages whose site disallows an AI agent are dropped (docs/consent.md)",
    )
    run.add_argument(
        "--dedup-against",
        dest="dedup_against",
        nargs="+",
        default=None,
        metavar="OUT",
        help="earlier dataproc outputs: also remove this run's documents that duplicate "
        "documents they kept (same dedup settings; their _work/ must exist)",
    )
    run.add_argument(
        "--sample",
        action="store_true",
        help="generate the bundled sample shard and run on it (output defaults to ./sample-out; "
        "a rerun resumes like any run, --overwrite starts again)",
    )
    run.add_argument(
        "--address",
        help="Ray cluster to join (`auto`, ray://...); default: RAY_ADDRESS or a local cluster",
    )
    run.add_argument(
        "--workers", type=_positive_int, help="CPUs for a local Ray cluster (default: all)"
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the previous dataproc run in OUTPUT first (only what a run creates: "
        "tokens/, rejects/, logs/, _work/, manifest.json, stats.json, report.html, README.md)",
    )
    run.add_argument(
        "--verify",
        action="store_true",
        help="when resuming, also check the sha256 of every finished token file (reads them); "
        "sizes are always checked",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="list the input files that would be processed and exit",
    )
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.set_defaults(func=cmd_run)

    cfg = sub.add_parser("config", help="show the resolved configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION")
    show = cfg_sub.add_parser("show", help="print the resolved config as YAML")
    _add_config_args(show)
    show.set_defaults(func=cmd_config_show)

    def config_help(_args: argparse.Namespace) -> int:
        cfg.print_help()
        return EXIT_USAGE

    cfg.set_defaults(func=config_help)

    for module in (
        "dataproc.cli_output",  # verify, inspect, reshard, export-megatron
        "dataproc.cli_report",  # report
        "dataproc.cli_eval",  # eval
        "dataproc.cli_cluster",  # submit, crawl listing
        "dataproc.cli_remove",  # remove (take-down requests)
    ):
        try:
            mod = __import__(module, fromlist=["register"])
        except ImportError:
            continue
        mod.register(sub)
    return parser


def _load(args: argparse.Namespace) -> Any:
    from dataproc.config import load_config

    return load_config(args.config, args.overrides)


def cmd_config_show(args: argparse.Namespace) -> int:
    import yaml

    config = _load(args)
    print(yaml.safe_dump(config.show(), sort_keys=False), end="")
    return EXIT_OK


def _done_inputs(config: Any) -> set[int]:
    """Input indexes an earlier run into the same output finished with the same config."""
    from dataproc.io import fs
    from dataproc.io.layout import OutputLayout, marker_unit
    from dataproc.io.markers import MarkerError, TokenizeMarker, read_marker

    if not config.output:
        return set()
    done = set()
    for p in fs.listdir(OutputLayout(config.output).done_dir):
        index, phase = marker_unit(p)
        if index is not None and phase == "phase3":
            try:
                marker = read_marker(p, TokenizeMarker, config.fingerprint())
            except MarkerError:
                continue  # the run itself says what to do about it
            if marker is not None:
                done.add(index)
    return done


def cmd_run(args: argparse.Namespace) -> int:
    from dataproc.runner.plan import plan_inputs

    # Command-line flags are overrides like --set, so they are validated the same way.
    if args.workers is not None:
        args.overrides.append(f"execution.workers={args.workers}")
    if args.address:
        args.overrides.append(f"execution.address={args.address}")
    if args.quiet:
        args.overrides.append("execution.progress=none")
    config = _load(args)
    if args.sample:
        from dataproc.sample import sample_input_dir, write_sample_warcs

        # A rerun resumes like any run (README); --overwrite starts again. The input goes to
        # a private folder per user and output, so two users or two outputs never collide.
        config = config.model_copy(update={"output": args.output or config.output or "sample-out"})
        assert config.output is not None
        sample_dir = sample_input_dir(config.output)
        paths, _truth = write_sample_warcs(sample_dir)
        config = config.model_copy(update={"inputs": paths})
        print(f"sample input: {len(paths)} WARC file(s) in {sample_dir}", file=sys.stderr)
    if args.inputs:
        config = config.model_copy(update={"inputs": list(args.inputs)})
    from dataproc.cli_cluster import apply_crawl_args

    config = apply_crawl_args(
        args, config
    )  # --crawl/--shards: the crawl's listing becomes the inputs
    if args.dedup_against:
        dedup = config.dedup.model_copy(update={"against": list(args.dedup_against)})
        config = config.model_copy(update={"dedup": dedup})
    if getattr(args, "shards", None) and not config.dedup.against:
        print(
            f"WARNING: --shards {args.shards} dedups only WITHIN this slice: documents that "
            "duplicate documents of other slices are kept. To dedup across slices, run them "
            "one after the other with --dedup-against OUT_OF_EACH_EARLIER_SLICE.",
            file=sys.stderr,
        )
    if args.output:
        config = config.model_copy(update={"output": args.output})
    from dataproc.consent.prepare import apply_consent_args

    config = apply_consent_args(args, config)  # --robots / --crawl: the run's robots.txt index

    from dataproc.preflight import check_run

    check_run(config)  # optional packages, extractor, models, tokenizer: here, not in workers
    inputs = plan_inputs(config.inputs)
    if args.dry_run:
        print(
            f"{len(inputs)} input file(s) would be processed into {config.output or '(no --output given)'}:"
        )
        from dataproc.runner.plan import sniff_local_inputs, unreadable_inputs

        done = _done_inputs(config)
        sniffed = sniff_local_inputs(inputs)  # what each local file looks like (first bytes)
        if config.consent.enabled:
            n_robots = len(config.consent.robots)
            print(
                f"consent: page-level opt-outs; robots.txt from {n_robots} robots file(s) of the crawl"
                if n_robots
                else "consent: page-level opt-outs only (no --robots / --crawl robots.txt files)"
            )
        for i in inputs:
            mark = "  (done)" if i.index in done else ""
            s = sniffed.get(i.index)
            kind = f"  {s.describe()}" if s is not None else "  (remote: not sniffed)"
            problem = s.problem() if s is not None else None
            print(
                f"  [{i.index:06d}] {i.path}{kind}{mark}" + (f"  <- {problem}" if problem else "")
            )
        bad = unreadable_inputs(sniffed, inputs)
        if bad:
            print(f"dataproc: error: {bad[0]}", file=sys.stderr)
            return EXIT_ERROR  # what a run would exit with (InputError)
        return EXIT_OK

    from dataproc.runner.driver import run_pipeline
    from dataproc.summary import print_summary

    result = run_pipeline(config, overwrite=args.overwrite, verify_files=args.verify)
    print_summary(result)
    return result.exit_code  # EXIT_FAILED_UNITS when units failed


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Libraries' INFO chatter (matplotlib's "generated new fontManager", botocore's "Found
    # credentials in environment variables") is not ours to show.
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except DataprocError as e:
        print(f"dataproc: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except ImportError as e:
        from dataproc.preflight import missing_package_message

        print(f"dataproc: error: {missing_package_message(e)}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # `dataproc inspect OUT | head`: the reader left; not an error of ours.
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print("dataproc: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as e:
        from dataproc.io.remote import remote_error_line

        line = remote_error_line(e)  # s3fs/botocore/aiohttp: credentials, DNS, access
        if line is not None:
            print(f"dataproc: error: {line}", file=sys.stderr)
            return EXIT_ERROR
        if not isinstance(e, OSError):
            raise
        # Disk full or permission lost mid-run: finished work is kept (atomic files, markers).
        where = f"{e.filename}: " if e.filename else ""
        # Only `run` keeps finished work to resume from; other commands simply start again.
        then = "rerun the same command to resume" if args.command == "run" else "try again"
        print(
            f"dataproc: error: {where}{e.strerror or e}; free space, fix permissions or pick "
            f"another path, then {then}",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
