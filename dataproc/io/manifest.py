"""``OUT/manifest.json``: the versioned table of contents of an output folder (docs/format.md).

Everything in it except ``timings`` is a pure function of the input files and the config, so
two runs of the same job produce the same manifest apart from ``timings``.

Manifest format 2 adds per-row-group ``row_group_rows``/``row_group_tokens`` to every file
entry (a training rank plans its share from them without opening any file); format 1
manifests still load. The token files themselves stay at ``token_writer.FORMAT_VERSION``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from typing import Any

from dataproc.errors import OutputError
from dataproc.io import fs
from dataproc.io.layout import OutputLayout
from dataproc.io.token_writer import TokenFileInfo

MANIFEST_FORMAT = "dataproc.tokens"
MANIFEST_VERSION = 2  # 2: per-row-group counts in files[]
READABLE_VERSIONS = (1, 2)
TOKENIZER_KEYS = ("name", "vocab_size", "eot_id", "eot_token", "rank_file_sha256", "dtype")


def _version() -> str:
    from dataproc.version import __version__

    return __version__


def build_manifest(
    *,
    pipeline: str,
    config: dict,
    config_fingerprint: str,
    tokenizer: dict,
    inputs: list[dict],
    files: list[TokenFileInfo],
    timings: dict,
    dedup_result: str | None = None,
) -> dict:
    """Assemble the manifest dict (key order fixed) from the run's parts.

    ``files`` are sorted by path, so the order tasks finished in never shows.
    ``dedup_result`` is the digest of the dedup result every token file was written against
    (null when dedup was off or the files were rewritten, e.g. by ``dataproc reshard``).
    """
    tok = {k: tokenizer.get(k) for k in TOKENIZER_KEYS}
    tok["dtype"] = "uint32"  # the only dtype this format version writes
    for f in files:
        if f.rows and not f.row_group_rows:
            raise OutputError(
                f"{f.path}: no per-row-group counts; fill them with with_row_group_counts()"
            )
    file_entries = [_entry(f) for f in sorted(files, key=lambda f: f.path)]
    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "created_by": f"dataproc {_version()}",
        "pipeline": pipeline,
        "config_fingerprint": config_fingerprint,
        "config": config,
        "tokenizer": tok,
        "dedup_result": dedup_result,
        "inputs": sorted(inputs, key=lambda i: i.get("index", 0)),
        "files": file_entries,
        "totals": _totals(file_entries),
        "timings": timings,
    }


def _totals(entries: list[dict]) -> dict[str, int]:
    return {
        "files": len(entries),
        "rows": sum(f["rows"] for f in entries),
        "tokens": sum(f["tokens"] for f in entries),
        "bytes": sum(f["bytes"] for f in entries),
    }


def _entry(f: TokenFileInfo) -> dict[str, Any]:
    entry = asdict(f)
    entry["row_group_rows"] = list(f.row_group_rows)
    entry["row_group_tokens"] = list(f.row_group_tokens)
    return entry


def _dumps(manifest: dict) -> str:
    """Indented JSON, except one line per file entry: a 100k-file manifest stays readable
    (and parses fast) instead of putting every per-row-group count on a line of its own."""
    parts = []
    for key, value in manifest.items():
        if key == "files" and value:
            lines = ",\n".join("    " + json.dumps(f, ensure_ascii=False) for f in value)
            text = "[\n" + lines + "\n  ]"
        else:
            text = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        parts.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def write_manifest(out_dir: str, manifest: dict) -> None:
    """Write ``OUT/manifest.json`` atomically (readers never see a partial manifest)."""
    fs.write_bytes_atomic(OutputLayout(out_dir).manifest, _dumps(manifest).encode("utf-8"))


def _read(out_dir: str) -> tuple[str, bytes]:
    path = OutputLayout(out_dir).manifest
    if not fs.exists(path):
        raise OutputError(
            f"{path}: no manifest. Is {out_dir!r} a dataproc output folder? A run writes "
            "manifest.json when it finishes; rerun `dataproc run` to complete it."
        )
    return path, fs.read_bytes(path)


def _parse(path: str, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as e:
        raise OutputError(
            f"{path}: not valid JSON ({e}); the file is corrupt, rerun the job"
        ) from None


def _check(path: str, manifest: Any) -> dict:
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise OutputError(f"{path}: not a dataproc token manifest (format != {MANIFEST_FORMAT!r})")
    version = manifest.get("format_version")
    if version not in READABLE_VERSIONS:
        raise OutputError(
            f"{path}: format_version {version!r} is not supported by this dataproc "
            f"(reads versions {', '.join(map(str, READABLE_VERSIONS))}); install the dataproc "
            f"version that wrote it ({manifest.get('created_by', 'unknown')})"
        )
    for key in ("tokenizer", "files", "totals"):
        if key not in manifest:
            raise OutputError(f"{path}: missing {key!r}; the manifest is incomplete or corrupt")
    tok = manifest["tokenizer"]
    if not isinstance(tok, dict) or tok.get("eot_id") is None or tok.get("name") is None:
        raise OutputError(f"{path}: tokenizer info lacks name/eot_id; cannot delimit documents")
    return manifest


def read_manifest(out_dir: str) -> dict:
    """Read and check ``OUT/manifest.json``; raise OutputError naming the problem and the fix."""
    path, data = _read(out_dir)
    return _check(path, _parse(path, data))


_FILES_OPEN = b'\n  "files": [\n'
_FILES_CLOSE = b"\n  ]"


def _files_table(path: str, data: bytes) -> tuple[dict, Any] | None:
    """(manifest with ``files: []``, Arrow table of the entries) when ``data`` has the layout
    ``write_manifest`` writes (one entry per line); None otherwise."""
    import pyarrow as pa
    import pyarrow.json as pj

    i = data.find(_FILES_OPEN)
    if i < 0:
        return None
    start = i + len(_FILES_OPEN)
    end = data.find(_FILES_CLOSE, start)  # entries are one line each: the first "]" line ends it
    if end < 0:
        return None
    head = _parse(path, data[:i] + b'\n  "files": []' + data[end + len(_FILES_CLOSE) :])
    body = data[start:end]
    try:
        # one thread: on a node starting 8 ranks at once, threads only add overhead
        opts = pj.ReadOptions(use_threads=False)
        table = pj.read_json(pa.py_buffer(body.replace(b"},\n", b"}\n")), read_options=opts)
    except (pa.ArrowInvalid, ValueError):
        return None
    if table.num_rows != body.count(b"\n") + 1 or "path" not in table.column_names:
        return None
    if "row_group_tokens" in table.column_names:
        typ = table.schema.field("row_group_tokens").type
        if not (pa.types.is_list(typ) and typ.value_type == pa.int64()):
            return None  # unusual content: let the json module read it
    return head, table


def _flat(arr: Any, dtype: Any) -> Any:
    """A primitive Arrow array as NumPy, from its buffer (Array.to_numpy imports pandas)."""
    import numpy as np

    width = np.dtype(dtype).itemsize
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * width)


def read_manifest_index(out_dir: str) -> tuple[dict, list[str], Any, Any]:
    """What a training rank plans from: ``(manifest, paths, rg_per_file, rg_tokens)``.

    ``rg_per_file`` (int64, one per file) and ``rg_tokens`` (int64, all row groups in file
    order) are the per-row-group token counts, or both None for a format-1 manifest. The
    returned manifest may have its ``files`` emptied. Reads the file once; for the one-line-
    per-entry layout the entries are parsed by Arrow's JSON reader into columns (100k files:
    ~0.15 s of CPU instead of ~0.4 s for ``json`` plus Python loops).
    """
    import numpy as np

    path, data = _read(out_dir)
    fast = _files_table(path, data)
    if fast is not None:
        head, table = fast
        manifest = _check(path, head)
        paths = table.column("path").to_pylist()
        if manifest["format_version"] < 2 or "row_group_tokens" not in table.column_names:
            return manifest, paths, None, None
        col = table.column("row_group_tokens").combine_chunks()
        if col.null_count:
            return manifest, paths, None, None
        offsets = np.frombuffer(
            col.buffers()[1], dtype=np.int32, count=len(col) + 1, offset=col.offset * 4
        ).astype(np.int64)
        tokens = _flat(col.values, np.int64)[offsets[0] : offsets[-1]]
        return manifest, paths, np.diff(offsets), tokens
    manifest = _check(path, _parse(path, data))
    paths = [f["path"] for f in manifest["files"]]
    if not has_row_group_counts(manifest):
        return manifest, paths, None, None
    per_file = [f["row_group_tokens"] for f in manifest["files"]]
    sizes = np.fromiter(map(len, per_file), dtype=np.int64, count=len(per_file))
    tokens = np.fromiter((c for p in per_file for c in p), dtype=np.int64, count=int(sizes.sum()))
    return manifest, paths, sizes, tokens


def manifest_files(manifest: dict) -> list[TokenFileInfo]:
    """The manifest's ``files`` as TokenFileInfo records (manifest order)."""
    return [TokenFileInfo(**f) for f in manifest["files"]]


def refresh_file_totals(manifest: dict) -> None:
    """Recompute ``totals`` from ``files`` (after a rewrite such as ``dataproc remove``)."""
    manifest["totals"] = _totals(manifest["files"])


def has_row_group_counts(manifest: dict) -> bool:
    """True if every file entry carries per-row-group counts (format 2)."""
    return manifest.get("format_version", 1) >= 2 and all(
        "row_group_tokens" in f for f in manifest["files"]
    )


def read_row_group_counts(out_dir: str, rel: str) -> tuple[list[int], list[int]]:
    """(rows, tokens) per row group of one token file: its footer and ``num_tokens`` column."""
    import numpy as np
    import pyarrow.parquet as pq

    rows: list[int] = []
    tokens: list[int] = []
    with fs.open_input(fs.join(out_dir, rel)) as handle:
        pf = pq.ParquetFile(handle)
        for rg in range(pf.num_row_groups):
            n = pf.read_row_group(rg, columns=["num_tokens"]).column(0).to_numpy()
            rows.append(pf.metadata.row_group(rg).num_rows)
            tokens.append(int(np.asarray(n, dtype=np.int64).sum()))
    return rows, tokens


def with_row_group_counts(out_dir: str, info: TokenFileInfo) -> TokenFileInfo:
    """``info`` with its per-row-group counts, read from the file only when they are missing
    (a phase-3 marker written by an older dataproc, trusted on resume)."""
    if info.row_group_rows or not info.rows:
        return info
    rows, tokens = read_row_group_counts(out_dir, info.path)
    return replace(info, row_group_rows=tuple(rows), row_group_tokens=tuple(tokens))


def token_file_info(out_dir: str, rel: str, input_index: int) -> TokenFileInfo:
    """A complete manifest record (counts per file and row group, bytes, sha256) for a token
    file as it is on disk now: what a rewrite (``reshard``, ``remove``) lists for a file it
    changed. Reads the file twice (hash, then footer and ``num_tokens``)."""
    h = hashlib.sha256()
    size = 0
    with fs.open_input(fs.join(out_dir, rel)) as f:
        while chunk := f.read(8 * 1024 * 1024):
            h.update(chunk)
            size += len(chunk)
    rows, tokens = read_row_group_counts(out_dir, rel)
    return TokenFileInfo(
        path=rel,
        input_index=input_index,
        rows=sum(rows),
        tokens=sum(tokens),
        bytes=size,
        sha256=h.hexdigest(),
        row_group_rows=tuple(rows),
        row_group_tokens=tuple(tokens),
    )


def replace_files(manifest: dict, files: list[TokenFileInfo]) -> dict:
    """A copy of ``manifest`` listing ``files`` instead (sorted by path), with its totals
    recomputed and the current format version: the last step of an in-place rewrite."""
    new = dict(manifest)
    entries = [_entry(f) for f in sorted(files, key=lambda f: f.path)]
    new["format_version"] = MANIFEST_VERSION
    new["files"] = entries
    new["totals"] = _totals(entries)
    return new
