"""Cluster commands: ``dataproc submit`` (a Ray job) and ``dataproc crawl`` (list a crawl's files).

``dataproc submit [--address URL] -- run --crawl CC-MAIN-2024-22 --output s3://...`` is
``ray job submit --working-dir . -- python -m dataproc run ...`` through Ray's
``JobSubmissionClient``: the working directory is uploaded, dataproc's own variables
(``DATAPROC_REMOTE_*``, ``DATAPROC_CRAWL_BASE_URL``; never a credential) are forwarded, the job's logs are streamed here until it ends, and the exit code
says how it ended (0 succeeded, 2 failed, 1 stopped). Inside the job, ``dataproc run`` joins
the cluster through the ``RAY_ADDRESS`` Ray Jobs sets.

The job API accepts arbitrary code from whoever reaches it: the default address is
``http://127.0.0.1:8265`` (a port-forward or an SSH tunnel to the head node), never a public one.
Before submitting, ``dataproc submit`` asks the job API whether it requires a Ray token, says
so, and sends this machine's token when it does (``dataproc.runner.ray_auth``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from dataproc.errors import ConfigError, DataprocError

if TYPE_CHECKING:
    from dataproc.config import PipelineConfig

DEFAULT_JOB_ADDRESS = "http://127.0.0.1:8265"
EXIT_OK, EXIT_USAGE, EXIT_FAILED = 0, 1, 3  # docs/api.md: exit codes
# Never uploaded with the working directory: VCS data, caches, local outputs.
DEFAULT_EXCLUDES = [
    ".git",
    "**/__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".venv",
    "venv",
    "*.egg-info",
    "sample-out",
    "out",
    "*.parquet",
    "*.warc",
    "*.warc.gz",
]


# --------------------------------------------------------------------------------------------
# --crawl / --shards for `dataproc run`


def add_crawl_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--crawl``, ``--shards`` and ``--crawl-base-url`` to a ``run``-like parser."""
    parser.add_argument(
        "--crawl",
        metavar="ID",
        help="a Common Crawl dump, e.g. CC-MAIN-2024-22: its warc.paths.gz listing becomes the inputs",
    )
    parser.add_argument(
        "--shards",
        metavar="START:END",
        help="with --crawl: only listing entries START <= i < END (e.g. 0:1000)",
    )
    parser.add_argument(
        "--crawl-base-url",
        metavar="URL",
        help="where crawl data lives: https://data.commoncrawl.org (default, or "
        "DATAPROC_CRAWL_BASE_URL), s3://commoncrawl, or a mirror",
    )


def apply_crawl_args(args: argparse.Namespace, config: PipelineConfig) -> PipelineConfig:
    """The config with ``--crawl``/``--shards`` resolved into its inputs (explicit ``--input``
    kept too)."""
    crawl = getattr(args, "crawl", None)
    shards = getattr(args, "shards", None)
    if not crawl:
        if shards:
            raise ConfigError(
                "--shards needs --crawl (e.g. --crawl CC-MAIN-2024-22 --shards 0:1000)"
            )
        return config
    from dataproc.io.crawl import resolve_crawl

    urls = resolve_crawl(crawl, shards, getattr(args, "crawl_base_url", None))
    return config.model_copy(update={"inputs": urls + list(getattr(args, "inputs", None) or [])})


# --------------------------------------------------------------------------------------------
# dataproc submit


def build_entrypoint(run_args: list[str]) -> str:
    """The job's shell command: ``python -m dataproc run ARGS`` (quoted for the shell).

    ``python -m`` so the uploaded working directory's ``dataproc`` wins over an installed one.
    """
    import shlex

    args = list(run_args)
    if args and args[0] == "--":
        args = args[1:]
    if not args or args[0] != "run":
        args = ["run", *args]
    return "python -m dataproc " + " ".join(shlex.quote(a) for a in args)


def build_runtime_env(
    working_dir: str | None, env: dict[str, str] | None = None, pip: list[str] | None = None
) -> dict[str, Any]:
    """Ray runtime env of the job: working dir, dataproc's variables (by name), extra pip."""
    environ = os.environ if env is None else env
    runtime_env: dict[str, Any] = {}
    if working_dir:
        if not os.path.isdir(working_dir):
            raise ConfigError(f"--working-dir {working_dir!r}: no such directory")
        runtime_env["working_dir"] = working_dir
        runtime_env["excludes"] = list(DEFAULT_EXCLUDES)
    from dataproc.runner.ray_runtime import forwarded_env

    env_vars = forwarded_env(environ)  # by name, never a credential (Ray logs runtime envs)
    if env_vars:
        runtime_env["env_vars"] = env_vars
    if pip:
        runtime_env["pip"] = list(pip)
    return runtime_env


_TERMINAL = {"SUCCEEDED": EXIT_OK, "FAILED": EXIT_FAILED, "STOPPED": EXIT_USAGE}


def cmd_submit(args: argparse.Namespace) -> int:
    """Submit ``dataproc run ...`` as a Ray job; follow its logs unless ``--no-wait``."""
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as e:  # pragma: no cover - ray is a dependency
        raise ConfigError(
            f"ray's job client is unavailable ({e}); pip install 'ray[default]'"
        ) from e

    address = args.address or os.environ.get("RAY_JOB_ADDRESS") or DEFAULT_JOB_ADDRESS
    entrypoint = build_entrypoint(args.run_args)
    runtime_env = build_runtime_env(None if args.no_working_dir else args.working_dir, pip=args.pip)
    from dataproc.runner.ray_auth import prepare_job_api_auth

    print(f"dataproc: {prepare_job_api_auth(address)}", file=sys.stderr)
    try:
        client = JobSubmissionClient(address)
    except Exception as e:
        raise DataprocError(
            f"cannot reach the Ray job API at {address}: {e}; start a cluster (ray start --head), "
            "or forward its port 8265 to 127.0.0.1 (kubectl port-forward / ssh -L), "
            "and pass --address"
        ) from None
    job_id = client.submit_job(
        entrypoint=entrypoint,
        runtime_env=runtime_env,
        submission_id=args.job_id,
        metadata={"tool": "dataproc"},
        entrypoint_num_cpus=args.driver_cpus,
    )
    print(f"dataproc: submitted job {job_id} to {address}: {entrypoint}", file=sys.stderr)
    print(f"  logs:   ray job logs --address {address} -f {job_id}", file=sys.stderr)
    print(f"  status: ray job status --address {address} {job_id}", file=sys.stderr)
    print(f"  stop:   ray job stop --address {address} {job_id}", file=sys.stderr)
    if args.no_wait:
        print(job_id)
        return EXIT_OK
    return follow_job(client, job_id, poll_seconds=args.poll_seconds)


def follow_job(client: Any, job_id: str, poll_seconds: float = 2.0) -> int:
    """Print the job's new log text until it ends; its exit code (0 ok, 3 failed, 1 stopped)."""
    printed = 0
    try:
        while True:
            status = str(client.get_job_status(job_id)).rsplit(".", 1)[-1]
            logs = client.get_job_logs(job_id)
            if len(logs) > printed:
                sys.stdout.write(logs[printed:])
                sys.stdout.flush()
                printed = len(logs)
            if status in _TERMINAL:
                info = client.get_job_info(job_id)
                if status != "SUCCEEDED":
                    print(f"dataproc: job {job_id} {status}: {info.message}", file=sys.stderr)
                return _TERMINAL[status]
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        print(
            f"dataproc: stopped following; job {job_id} keeps running "
            f"(ray job stop {job_id} to stop it)",
            file=sys.stderr,
        )
        return 130


# --------------------------------------------------------------------------------------------
# dataproc crawl


def cmd_crawl(args: argparse.Namespace) -> int:
    """Print the WARC URLs ``--crawl ID --shards A:B`` resolves to (one per line)."""
    from dataproc.io.crawl import resolve_crawl

    urls = resolve_crawl(args.crawl_id, args.shards, args.crawl_base_url)
    for u in urls:
        print(u)
    print(f"dataproc: {len(urls)} file(s)", file=sys.stderr)
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``submit`` and ``crawl`` to the ``dataproc`` command line."""
    sub = subparsers.add_parser(
        "submit",
        help="run the pipeline as a Ray job on a cluster",
        description="Submit `dataproc run ARGS` to a Ray cluster's job API "
        "(like `ray job submit --working-dir . -- python -m dataproc run ARGS`). "
        "Example: dataproc submit -- run --crawl CC-MAIN-2024-22 --shards 0:1000 "
        "--output s3://bucket/cc-2024-22",
    )
    sub.add_argument(
        "--address",
        help=f"Ray job API URL (default: RAY_JOB_ADDRESS or {DEFAULT_JOB_ADDRESS}; "
        "reach a remote head through a port-forward, never expose it publicly)",
    )
    sub.add_argument(
        "--working-dir",
        default=".",
        help="directory uploaded as the job's working dir (default: .)",
    )
    sub.add_argument(
        "--no-working-dir",
        action="store_true",
        help="upload nothing: use the dataproc installed in the cluster's image",
    )
    sub.add_argument(
        "--pip",
        action="append",
        metavar="REQ",
        help="extra pip requirement for the job (repeatable)",
    )
    sub.add_argument("--job-id", help="submission id (default: generated by Ray)")
    sub.add_argument(
        "--driver-cpus", type=float, default=None, help="CPUs reserved for the job's driver"
    )
    sub.add_argument("--no-wait", action="store_true", help="print the job id and return at once")
    sub.add_argument("--poll-seconds", type=float, default=2.0, help="seconds between status polls")
    sub.add_argument(
        "run_args",
        nargs=argparse.REMAINDER,
        metavar="-- run ARGS",
        help="the `dataproc run` arguments, after --",
    )
    sub.set_defaults(func=cmd_submit)

    crawl = subparsers.add_parser(
        "crawl",
        help="list the WARC files of a Common Crawl dump",
        description="Print the input URLs `dataproc run --crawl ID --shards A:B` would process.",
    )
    crawl.add_argument("crawl_id", metavar="ID", help="e.g. CC-MAIN-2024-22")
    crawl.add_argument("--shards", metavar="START:END", help="listing entries START <= i < END")
    crawl.add_argument(
        "--crawl-base-url",
        metavar="URL",
        help="https://data.commoncrawl.org (default) or s3://commoncrawl",
    )
    crawl.set_defaults(func=cmd_crawl)


__all__ = [
    "add_crawl_args",
    "apply_crawl_args",
    "build_entrypoint",
    "build_runtime_env",
    "cmd_crawl",
    "cmd_submit",
    "follow_job",
    "register",
]
