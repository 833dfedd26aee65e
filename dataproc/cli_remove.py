"""``dataproc remove``: take documents out of a finished output (docs/consent.md)."""

from __future__ import annotations

import argparse

from dataproc.errors import ConfigError

EXIT_OK = 0


def cmd_remove(args: argparse.Namespace) -> int:
    from dataproc.io.layout import tombstone_file
    from dataproc.remove import remove_documents

    given = [
        (k, v) for k, v in (("urls", args.urls), ("domains", args.domains), ("ids", args.ids)) if v
    ]
    if len(given) != 1:
        raise ConfigError("remove: give exactly one of --urls FILE, --domains FILE, --ids FILE")
    kind, path = given[0]
    r = remove_documents(args.out, path, kind, dry_run=args.dry_run)  # type: ignore[arg-type]
    if r.already_applied:
        print(f"request {r.request_sha256[:16]} is already applied to {args.out}: nothing changed")
        return EXIT_OK
    verb = "would remove" if r.dry_run else "removed"
    print(
        f"{verb} {r.documents_removed:,} document(s) matching {r.entries:,} {kind} "
        f"(request {r.request_sha256[:16]}); rewrote {len(r.files_rewritten)} file(s), "
        f"emptied {len(r.files_emptied)}"
    )
    if not r.dry_run:
        print(f"tombstones: {args.out}/{tombstone_file(r.request_sha256)}")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "remove",
        help="remove documents from a finished output (take-down requests)",
        description="Remove documents by URL, domain or id from a finished output: only the "
        "affected token files are rewritten, atomically; the manifest records the request's "
        "hash and a tombstone list. Applying the same request twice changes nothing.",
    )
    p.add_argument("out", help="the output folder")
    p.add_argument("--urls", metavar="FILE", help="one URL per line (exact match)")
    p.add_argument("--domains", metavar="FILE", help="one domain per line (and its subdomains)")
    p.add_argument("--ids", metavar="FILE", help="one document id (WARC-Record-ID) per line")
    p.add_argument("--dry-run", action="store_true", help="count what would go; change nothing")
    p.set_defaults(func=cmd_remove)
