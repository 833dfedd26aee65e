"""``dataproc remove OUT --urls F | --domains F | --ids F``: take documents out after the fact.

A site asks to be removed, a legal request arrives, a bad source is found late: the documents
must leave an output that training jobs already read. ``remove_documents``

1. reads the request (one URL, domain or document id per line; ``#`` comments and blanks
   skipped) and hashes it (kind + sorted unique entries): the request's identity;
2. if the manifest already lists that hash, does nothing (a request applied twice changes
   nothing);
3. scans only the ``id`` and ``url`` columns of every token file, and rewrites only the files
   that hold a match, row group by row group without the matching rows (same schema, metadata,
   codec; every other row unchanged), into a staging folder ``_work/remove/<hash>/``;
4. writes the tombstones (``removals/<hash>.parquet``: id, url, file of every removed
   document) and the new manifest there too, then a ``COMMIT`` marker: the point of no return;
5. moves the staged files over the old ones, then the manifest, then drops the staging folder.

A crash before ``COMMIT`` leaves the previous output untouched and ``verify``-clean (staged
files live under ``_work/``). A crash after it is finished by the next ``dataproc remove`` on
the output (any request, or the same one), which rolls the commit forward first; ``verify``
names the pending commit until then.

Domains match the host and its subdomains (``example.com`` removes ``www.example.com``); URLs
match the ``url`` column exactly; ids the ``id`` column (WARC-Record-ID).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from dataproc.errors import InputError, OutputError
from dataproc.io import fs
from dataproc.io.layout import OutputLayout, tombstone_file
from dataproc.io.manifest import read_manifest, write_manifest

Kind = Literal["urls", "domains", "ids"]
COMMIT = "COMMIT"


@dataclass
class RemoveResult:
    """What a request did: ``already_applied`` (no change), or the files rewritten."""

    request_sha256: str
    kind: str
    entries: int
    documents_removed: int = 0
    files_rewritten: list[str] = field(default_factory=list)
    files_emptied: list[str] = field(default_factory=list)
    already_applied: bool = False
    dry_run: bool = False


def read_request(path: str, kind: Kind) -> tuple[list[str], str]:
    """The request's entries (normalized, sorted, unique) and its sha256."""
    if not fs.exists(path):
        raise InputError(f"--{kind} {path}: no such file")
    raw = fs.read_bytes(path).decode("utf-8", "replace")
    entries: set[str] = set()
    for line in raw.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if kind == "domains":
            line = line.lower().rstrip(".")
            if "/" in line or " " in line:
                raise InputError(f"--domains {path}: {line!r} is not a domain name")
        entries.add(line)
    if not entries:
        raise InputError(f"--{kind} {path}: the request names nothing (empty file?)")
    ordered = sorted(entries)
    blob = json.dumps({"kind": kind, "entries": ordered}, separators=(",", ":")).encode()
    return ordered, hashlib.sha256(blob).hexdigest()


def _matcher(kind: Kind, entries: list[str]) -> Any:
    wanted = set(entries)
    if kind == "ids":
        return lambda doc_id, url: doc_id in wanted
    if kind == "urls":
        return lambda doc_id, url: url in wanted

    def by_domain(doc_id: str, url: str) -> bool:
        host = (urlsplit(url).hostname or "").rstrip(".")
        while host:
            if host in wanted:
                return True
            _, _, host = host.partition(".")
        return False

    return by_domain


def pending_commits(out_dir: str) -> list[str]:
    """Staging folders of committed but unfinished removals (for ``verify``)."""
    root = OutputLayout(out_dir).remove_dir
    return [d for d in fs.listdir(root) if fs.exists(fs.join(d, COMMIT))]


def _roll_forward(out_dir: str, stage: str) -> None:
    """Finish a committed removal: move staged files into place, then the manifest."""
    plan = fs.read_json(fs.join(stage, COMMIT))
    for rel in plan["rewritten"]:
        staged = fs.join(stage, rel)
        if fs.exists(staged):  # already moved by an earlier, interrupted roll-forward
            fs.write_bytes_atomic(fs.join(out_dir, rel), fs.read_bytes(staged))
            fs.remove(staged)
    for rel in plan["emptied"]:
        fs.remove(fs.join(out_dir, rel))
    out, mirror = OutputLayout(out_dir), OutputLayout(stage)  # the stage mirrors OUT
    tomb = plan["tombstones"]
    if fs.exists(fs.join(stage, tomb)):
        fs.makedirs(out.removals_dir)
        fs.write_bytes_atomic(fs.join(out_dir, tomb), fs.read_bytes(fs.join(stage, tomb)))
    if fs.exists(mirror.stats):
        fs.write_bytes_atomic(out.stats, fs.read_bytes(mirror.stats))
    write_manifest(out_dir, fs.read_json(mirror.manifest))
    fs.remove(stage, recursive=True)


def remove_documents(
    out_dir: str, request_path: str, kind: Kind, *, dry_run: bool = False
) -> RemoveResult:
    """Apply one removal request to the output ``out_dir`` (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataproc.config import OutputConfig
    from dataproc.io.token_writer import ParquetFileSink

    for stage in pending_commits(out_dir):
        _roll_forward(out_dir, stage)
    manifest = read_manifest(out_dir)
    if manifest.get("complete") is False:
        raise OutputError(f"{out_dir}: the run is incomplete; finish it before removing documents")
    entries, digest = read_request(request_path, kind)
    result = RemoveResult(request_sha256=digest, kind=kind, entries=len(entries), dry_run=dry_run)
    if any(r["request_sha256"] == digest for r in manifest.get("removals", [])):
        result.already_applied = True
        return result
    match = _matcher(kind, entries)
    stage = OutputLayout(out_dir).remove_stage(digest)
    if not dry_run:
        fs.remove(stage, recursive=True)  # a staging folder of an uncommitted, crashed attempt
    write_cfg = OutputConfig(**(manifest.get("config", {}).get("write") or {}))
    tomb_rows: dict[str, list[str]] = {"id": [], "url": [], "file": []}
    new_entries: list[dict[str, Any]] = []
    for entry in manifest["files"]:
        path = fs.join(out_dir, entry["path"])
        if not fs.exists(path):
            raise OutputError(f"{path}: listed in the manifest but missing; run `dataproc verify`")
        with fs.open_input(path) as handle:
            cols = pq.ParquetFile(handle).read(columns=["id", "url"])
        ids, urls = cols.column("id").to_pylist(), cols.column("url").to_pylist()
        hit = [bool(match(i, u)) for i, u in zip(ids, urls, strict=True)]
        if not any(hit):
            new_entries.append(entry)
            continue
        for i, u, h in zip(ids, urls, hit, strict=True):
            if h:
                tomb_rows["id"].append(i)
                tomb_rows["url"].append(u)
                tomb_rows["file"].append(entry["path"])
        result.documents_removed += sum(hit)
        if all(hit):
            result.files_emptied.append(entry["path"])
            continue
        result.files_rewritten.append(entry["path"])
        if dry_run:
            continue
        keep = pa.array([not h for h in hit])
        with fs.open_input(path) as handle:
            pf = pq.ParquetFile(handle)
            sink = ParquetFileSink(stage, entry["path"], pf.schema_arrow, write_cfg)
            row0 = 0
            for rg in range(pf.num_row_groups):
                table = pf.read_row_group(rg)
                mask = keep.slice(row0, table.num_rows)
                row0 += table.num_rows
                kept = table.filter(mask)
                if kept.num_rows:
                    tokens = int(pa.compute.sum(kept.column("num_tokens")).as_py() or 0)
                    sink.write_table(kept, tokens)
            info = sink.close(entry["input_index"])
        new_entries.append({**entry, **asdict(info)})
    if dry_run:
        return result
    # Even a request that matched nothing is recorded, so that repeating it is a no-op.
    tomb_rel = tombstone_file(digest)
    tomb = pa.table(
        {k: pa.array(v, pa.string()) for k, v in tomb_rows.items()},
    )
    mirror = OutputLayout(stage)  # the stage mirrors OUT
    fs.makedirs(mirror.removals_dir)
    with fs.atomic_write(fs.join(stage, tomb_rel)) as f:
        pq.write_table(tomb, f, compression="zstd")
    new_manifest = _updated_manifest(manifest, new_entries, result, tomb_rel, stage)
    fs.write_json_atomic(mirror.manifest, new_manifest)
    stats_path = OutputLayout(out_dir).stats
    if fs.exists(stats_path):
        stats = fs.read_json(stats_path)
        stats["removals"] = new_manifest["removals"]
        fs.write_json_atomic(mirror.stats, stats)
    fs.write_json_atomic(
        fs.join(stage, COMMIT),
        {
            "rewritten": result.files_rewritten,
            "emptied": result.files_emptied,
            "tombstones": tomb_rel,
        },
    )
    _roll_forward(out_dir, stage)
    return result


def _updated_manifest(
    manifest: dict[str, Any],
    files: list[dict[str, Any]],
    result: RemoveResult,
    tomb_rel: str,
    stage: str,
) -> dict[str, Any]:
    from dataproc.io.manifest import refresh_file_totals

    new = dict(manifest)
    new["files"] = sorted(files, key=lambda f: f["path"])
    refresh_file_totals(new)
    tomb_sha = hashlib.sha256(fs.read_bytes(fs.join(stage, tomb_rel))).hexdigest()
    new["removals"] = [
        *manifest.get("removals", []),
        {
            "request_sha256": result.request_sha256,
            "kind": result.kind,
            "entries": result.entries,
            "documents_removed": result.documents_removed,
            "files_rewritten": result.files_rewritten,
            "files_emptied": result.files_emptied,
            "tombstones": tomb_rel,
            "tombstones_sha256": tomb_sha,
        },
    ]
    return new
