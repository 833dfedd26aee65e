"""``OUT/README.md``: a Hugging Face dataset card, so loaders see only the token files.

Without it, ``datasets.load_dataset(OUT)`` reads every Parquet file under ``OUT`` (``rejects/``
and ``_work/`` too, with other schemas) and fails. The card's YAML front matter declares one
config whose ``data_files`` are ``tokens/*.parquet``; the Hub reads the same header if the folder
is uploaded. The body says what the rows are (tokenizer, counts) and what the other files are.
Written by every run after its manifest, from the manifest alone (deterministic: no dates).
"""

from __future__ import annotations

from typing import Any

import yaml

from dataproc.io import fs
from dataproc.io.layout import TOKEN_FILES_GLOB, OutputLayout


def card_text(manifest: dict[str, Any]) -> str:
    """The card for an output with this manifest (front matter + a short description)."""
    tok = manifest.get("tokenizer") or {}
    totals = manifest.get("totals") or {}
    header = {
        "configs": [{"config_name": "default", "data_files": TOKEN_FILES_GLOB}],
        "tags": ["dataproc", "tokenized", "common-crawl"],
    }
    front = yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
    name = str(manifest.get("pipeline") or "dataproc output")
    complete = manifest.get("complete", True)
    lines = [
        "---",
        front.rstrip("\n"),
        "---",
        "",
        f"# {name}",
        "",
        "Web text from Common Crawl, filtered, deduplicated and tokenized by dataproc "
        f"({manifest.get('created_by', 'dataproc')}).",
        "",
        f"- tokenizer: `{tok.get('name', '?')}` (vocab size {tok.get('vocab_size', '?')}, "
        f"end-of-text id {tok.get('eot_id', '?')}, ids stored as {tok.get('dtype', 'uint32')})",
        f"- documents: {int(totals.get('rows', 0)):,}",
        f"- tokens: {int(totals.get('tokens', 0)):,} (each document ends with end-of-text)",
        f"- files: {int(totals.get('files', 0)):,} Parquet files in `tokens/`",
        f"- complete: {'yes' if complete else 'no: some inputs failed, see manifest.json'}",
        "",
        "Load it with `datasets.load_dataset(path)` (only `tokens/*.parquet` is data) or, for "
        "training, `dataproc.training.TokenLoader(path, seq_len)`. Check it first with "
        "`dataproc verify`.",
        "",
        "Not data: `manifest.json` (files, checksums, tokenizer), `stats.json` and "
        "`report.html` (what each stage kept and dropped), `rejects/` (every dropped document "
        "and why), `logs/`, `_work/` (resume state). Column meanings: dataproc's "
        "docs/format.md.",
        "",
    ]
    return "\n".join(lines)


def write_card(out_dir: str, manifest: dict[str, Any]) -> str:
    """Write ``OUT/README.md`` atomically and return its path."""
    path = OutputLayout(out_dir).card
    fs.write_bytes_atomic(path, card_text(manifest).encode("utf-8"))
    return path


__all__ = ["card_text", "write_card"]
