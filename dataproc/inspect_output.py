"""``dataproc inspect OUT``: what is in an output folder, at a glance (reads metadata columns)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dataproc.io import fs
from dataproc.io.manifest import read_manifest

# Document-length buckets (tokens, EOT included): powers of two from 1 to 2**20 and above.
LENGTH_EDGES = [0, *[2**k for k in range(0, 21, 2)], 2**62]


def inspect_output(out_dir: str, *, samples: int = 3, sample_chars: int = 300) -> dict[str, Any]:
    """Totals, tokens per language and per crawl, a length histogram and decoded samples."""
    import pyarrow.parquet as pq

    manifest = read_manifest(out_dir)
    languages: dict[str, int] = {}
    crawls: dict[str, int] = {}
    hist = np.zeros(len(LENGTH_EDGES) - 1, dtype=np.int64)
    sample_ids: list[list[int]] = []
    longest = 0
    for entry in manifest["files"]:
        with fs.open_input(fs.join(out_dir, entry["path"])) as handle:
            pf = pq.ParquetFile(handle)
            for rg in range(pf.num_row_groups):
                t = pf.read_row_group(rg, columns=["num_tokens", "language", "crawl"])
                n = t.column("num_tokens").to_numpy().astype(np.int64)
                for col, acc in (("language", languages), ("crawl", crawls)):
                    keys = t.column(col).to_pylist()
                    for key, tokens in zip(keys, n.tolist(), strict=True):
                        k = key if key is not None else "unknown"  # as in the report
                        acc[k] = acc.get(k, 0) + tokens
                hist += np.histogram(n, bins=LENGTH_EDGES)[0]
                longest = max(longest, int(n.max(initial=0)))
            if len(sample_ids) < samples and pf.num_row_groups:
                ids = pf.read_row_group(0, columns=["input_ids"]).column(0).to_pylist()
                sample_ids += ids[: samples - len(sample_ids)]
    decoded = _decode(manifest["tokenizer"], sample_ids, sample_chars)
    return {
        "out_dir": out_dir,
        "pipeline": manifest.get("pipeline"),
        "created_by": manifest.get("created_by"),
        "tokenizer": manifest["tokenizer"],
        "totals": manifest["totals"],
        "tokens_by_language": dict(sorted(languages.items(), key=lambda kv: -kv[1])),
        "tokens_by_crawl": dict(sorted(crawls.items())),
        "length_histogram": [
            {"min_tokens": int(lo), "max_tokens": int(hi) - 1, "documents": int(c)}
            for lo, hi, c in zip(LENGTH_EDGES[:-1], LENGTH_EDGES[1:], hist, strict=True)
            if c
        ],
        "longest_document_tokens": longest,
        "samples": decoded,
    }


def _decode(tokenizer: dict, docs: list[list[int]], chars: int) -> list[dict[str, Any]]:
    encoding = None
    try:
        from dataproc.stages.tokenize import TokenizerConfig, load_encoding

        encoding = load_encoding(TokenizerConfig(name=str(tokenizer["name"])))
    except Exception:  # no local tokenizer: show ids instead of text
        encoding = None
    out = []
    for ids in docs:
        body = ids[:-1] if ids and ids[-1] == tokenizer["eot_id"] else ids
        if encoding is not None:
            out.append({"tokens": len(ids), "text": encoding.decode(body)[:chars]})
        else:
            out.append({"tokens": len(ids), "ids": body[:32]})
    return out


def _bar(value: int, top: int, width: int = 30) -> str:
    return "█" * max(1 if value else 0, round(width * value / top)) if top else ""


def format_inspect(d: dict[str, Any]) -> str:
    """Human-readable text for ``inspect_output``'s dict."""
    t = d["totals"]
    tok = d["tokenizer"]
    lines = [
        f"{d['out_dir']}  (pipeline {d['pipeline']}, {d['created_by']})",
        f"files {t['files']:,}   documents {t['rows']:,}   tokens {t['tokens']:,}   "
        f"bytes {t['bytes']:,}",
        f"tokenizer {tok['name']} (vocab {tok.get('vocab_size')}, EOT {tok['eot_id']}, "
        f"{tok.get('dtype')})",
        "",
        "tokens by language:",
    ]
    total = max(1, t["tokens"])
    for k, v in list(d["tokens_by_language"].items())[:20]:
        lines.append(f"  {k:<12} {v:>15,}  {100 * v / total:5.1f}%")
    lines.append("tokens by crawl:")
    for k, v in d["tokens_by_crawl"].items():
        lines.append(f"  {k:<20} {v:>15,}  {100 * v / total:5.1f}%")
    lines.append("document length (tokens, EOT included):")
    top = max((b["documents"] for b in d["length_histogram"]), default=0)
    for b in d["length_histogram"]:
        hi = "∞" if b["max_tokens"] > 2**40 else f"{b['max_tokens']:,}"
        lines.append(
            f"  {b['min_tokens']:>9,}–{hi:<9} {b['documents']:>10,} {_bar(b['documents'], top)}"
        )
    lines.append(f"longest document: {d['longest_document_tokens']:,} tokens")
    for i, s in enumerate(d["samples"]):
        body = s.get("text", s.get("ids"))
        lines.append(f"sample {i} ({s['tokens']} tokens): {body!r}")
    return "\n".join(lines)
