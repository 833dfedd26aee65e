"""``OUT/manifest.json``: the versioned table of contents of an output folder (docs/format.md).

Everything in it except ``timings`` is a pure function of the input files and the config, so
two runs of the same job produce the same manifest apart from ``timings``.
"""

from __future__ import annotations

from dataclasses import asdict

from dataproc.errors import OutputError
from dataproc.io import fs
from dataproc.io.token_writer import FORMAT_VERSION, TokenFileInfo

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "dataproc.tokens"
TOKENIZER_KEYS = ("name", "vocab_size", "eot_id", "eot_token", "rank_file_sha256", "dtype")


def _version() -> str:
    from dataproc import __version__

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
) -> dict:
    """Assemble the manifest dict (key order fixed) from the run's parts.

    ``files`` are sorted by path, so the order tasks finished in never shows.
    """
    tok = {k: tokenizer.get(k) for k in TOKENIZER_KEYS}
    tok["dtype"] = "uint32"  # the only dtype this format version writes
    file_entries = [asdict(f) for f in sorted(files, key=lambda f: f.path)]
    return {
        "format": MANIFEST_FORMAT,
        "format_version": FORMAT_VERSION,
        "created_by": f"dataproc {_version()}",
        "pipeline": pipeline,
        "config_fingerprint": config_fingerprint,
        "config": config,
        "tokenizer": tok,
        "inputs": sorted(inputs, key=lambda i: i.get("index", 0)),
        "files": file_entries,
        "totals": {
            "files": len(file_entries),
            "rows": sum(f["rows"] for f in file_entries),
            "tokens": sum(f["tokens"] for f in file_entries),
            "bytes": sum(f["bytes"] for f in file_entries),
        },
        "timings": timings,
    }


def write_manifest(out_dir: str, manifest: dict) -> None:
    """Write ``OUT/manifest.json`` atomically (readers never see a partial manifest)."""
    fs.write_json_atomic(fs.join(out_dir, MANIFEST_NAME), manifest)


def read_manifest(out_dir: str) -> dict:
    """Read and check ``OUT/manifest.json``; raise OutputError naming the problem and the fix."""
    path = fs.join(out_dir, MANIFEST_NAME)
    if not fs.exists(path):
        raise OutputError(
            f"{path}: no manifest. Is {out_dir!r} a dataproc output folder? A run writes "
            "manifest.json when it finishes; rerun `dataproc run` to complete it."
        )
    try:
        manifest = fs.read_json(path)
    except ValueError as e:
        raise OutputError(
            f"{path}: not valid JSON ({e}); the file is corrupt, rerun the job"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise OutputError(f"{path}: not a dataproc token manifest (format != {MANIFEST_FORMAT!r})")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise OutputError(
            f"{path}: format_version {version!r} is not supported by this dataproc "
            f"(reads version {FORMAT_VERSION}); install the dataproc version that wrote it "
            f"({manifest.get('created_by', 'unknown')})"
        )
    for key in ("tokenizer", "files", "totals"):
        if key not in manifest:
            raise OutputError(f"{path}: missing {key!r}; the manifest is incomplete or corrupt")
    tok = manifest["tokenizer"]
    if not isinstance(tok, dict) or tok.get("eot_id") is None or tok.get("name") is None:
        raise OutputError(f"{path}: tokenizer info lacks name/eot_id; cannot delimit documents")
    return manifest


def manifest_files(manifest: dict) -> list[TokenFileInfo]:
    """The manifest's ``files`` as TokenFileInfo records (manifest order)."""
    return [TokenFileInfo(**f) for f in manifest["files"]]


def refresh_file_totals(manifest: dict) -> None:
    """Recompute ``totals`` from ``files`` (after a rewrite such as ``dataproc remove``)."""
    files = manifest["files"]
    manifest["totals"] = {
        "files": len(files),
        "rows": sum(f["rows"] for f in files),
        "tokens": sum(f["tokens"] for f in files),
        "bytes": sum(f["bytes"] for f in files),
    }
