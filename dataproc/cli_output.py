"""CLI subcommands on finished outputs: verify, inspect, reshard, export-megatron."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dataproc.errors import ConfigError

EXIT_OK, EXIT_PROBLEMS = 0, 3  # docs/api.md: 3 = finished, found problems


def cmd_verify(args: argparse.Namespace) -> int:
    from dataproc.verify import verify_output

    result = verify_output(args.out, sample_docs=args.samples)
    if args.json:
        print(
            json.dumps(
                {"ok": result.ok, "problems": result.problems, "checked": result.checked},
                indent=2,
                default=str,
            )
        )
    else:
        c = result.checked
        for p in result.problems:
            print(f"PROBLEM: {p}", file=sys.stderr)
        if result.ok:
            print(
                f"OK: {c.get('files', 0)} files, {c.get('rows', 0):,} documents, "
                f"{c.get('tokens', 0):,} tokens; tokenizer: {c.get('tokenizer')}"
            )
            for s in c.get("samples", []):
                print(f"  sample {s['file']}#{s['row']}: {s['text'][:120]!r}")
            for line in c.get("certificates", []):
                print(f"  {line}")
        else:
            print(f"FAILED: {len(result.problems)} problem(s) in {args.out}", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_PROBLEMS


def cmd_inspect(args: argparse.Namespace) -> int:
    from dataproc.inspect_output import format_inspect, inspect_output

    d = inspect_output(args.out, samples=args.samples)
    print(json.dumps(d, indent=2, default=str) if args.json else format_inspect(d))
    return EXIT_OK


def cmd_reshard(args: argparse.Namespace) -> int:
    from dataproc.config import ExecutionConfig
    from dataproc.reshard import reshard

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: must be at least 1")
    execution = ExecutionConfig(address=args.address, workers=args.workers)
    m = reshard(
        args.out,
        args.output,
        num_files=args.files,
        seed=args.seed,
        use_ray=args.ray,
        execution=execution,
    )
    t = m["totals"]
    print(
        f"wrote {t['files']} files, {t['rows']:,} documents, {t['tokens']:,} tokens to {args.output}"
    )
    return EXIT_OK


def cmd_export_megatron(args: argparse.Namespace) -> int:
    from dataproc.training.megatron import export_megatron

    info = export_megatron(args.out, args.prefix)
    print(
        f"wrote {info['bin']} and {info['idx']}: {info['documents']:,} documents, "
        f"{info['tokens']:,} tokens (int32)"
    )
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``verify``, ``inspect``, ``reshard`` and ``export-megatron`` to the dataproc CLI."""
    v = subparsers.add_parser(
        "verify",
        help="check an output folder against its manifest before training",
        description="Check OUT: manifest vs files (sha256, rows, tokens, bytes), exact schema, "
        "tokenizer hash vs the local rank file, every document ends with EOT and has none inside, "
        "ids < vocab_size, unique document ids, no unlisted files; decode a few samples. "
        "Exit code 0 if clean, 3 with one line per problem otherwise.",
    )
    v.add_argument("out", metavar="OUT", help="output folder (local path or URL)")
    v.add_argument("--samples", type=int, default=5, help="documents to decode (default 5)")
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.set_defaults(func=cmd_verify)

    i = subparsers.add_parser(
        "inspect",
        help="summarize an output folder",
        description="Totals, tokens per language and per crawl, document-length histogram and a "
        "few decoded samples of OUT.",
    )
    i.add_argument("out", metavar="OUT", help="output folder (local path or URL)")
    i.add_argument("--samples", type=int, default=3, help="documents to decode (default 3)")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    i.set_defaults(func=cmd_inspect)

    r = subparsers.add_parser(
        "reshard",
        help="globally shuffle an output into N equal files",
        description="Write a new output folder with OUT's documents shuffled across all files "
        "into N files of near-equal token counts, with its own manifest. Streams: memory is one "
        "row group plus one output file.",
    )
    r.add_argument("out", metavar="OUT", help="source output folder")
    r.add_argument("--files", type=int, required=True, metavar="N", help="number of output files")
    r.add_argument("--output", "-o", required=True, metavar="NEW", help="new (empty) output folder")
    r.add_argument("--seed", type=int, default=0, help="shuffle seed (default 0)")
    r.add_argument(
        "--ray",
        action="store_true",
        help="run both passes as Ray tasks (a local cluster bound to 127.0.0.1 unless "
        "--address or RAY_ADDRESS names one)",
    )
    r.add_argument("--address", help="with --ray: Ray cluster to join (`auto`, ray://host:10001)")
    r.add_argument(
        "--workers", type=int, metavar="N", help="with --ray: CPUs of a local cluster (default all)"
    )
    r.set_defaults(func=cmd_reshard)

    m = subparsers.add_parser(
        "export-megatron",
        help="write Megatron-LM .bin/.idx from an output",
        description="Write PREFIX.bin and PREFIX.idx (Megatron MMapIndexedDataset, int32 ids, one "
        "sequence per document with its EOT) for Megatron-LM, NeMo and datatrove.",
    )
    m.add_argument("out", metavar="OUT", help="source output folder")
    m.add_argument("prefix", metavar="PREFIX", help="path prefix of the .bin/.idx files")
    m.set_defaults(func=cmd_export_megatron)
