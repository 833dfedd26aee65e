"""Build small dataproc output folders in tests (real writer + manifest, synthetic token ids).

Token ids are drawn from cl100k_base's range, so many exceed 65,535 (a uint16 overflow would
show); EOT is cl100k_base's ``<|endoftext|>`` (100257) and never appears inside a document.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from dataproc.config import OutputConfig
from dataproc.document import Document
from dataproc.io.manifest import build_manifest, write_manifest
from dataproc.io.token_writer import TokenFileInfo, TokenShardWriter

EOT = 100257
VOCAB = 100277
TOKENIZER = {
    "name": "cl100k_base",
    "vocab_size": VOCAB,
    "eot_id": EOT,
    "eot_token": "<|endoftext|>",
    # sha256 of the official cl100k_base.tiktoken rank file (what tokenizer_info reports)
    "rank_file_sha256": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "dtype": "uint32",
}


def make_docs(input_index: int, n: int, *, seed: int = 0, max_len: int = 300) -> list[Document]:
    """``n`` documents with random lengths in [1, max_len] tokens (EOT included)."""
    rng = np.random.default_rng([seed, input_index])
    docs = []
    for i in range(n):
        length = int(rng.integers(1, max_len + 1))
        body = rng.integers(0, EOT, size=length - 1, dtype=np.uint32)
        ids = np.concatenate([body, np.array([EOT], dtype=np.uint32)])
        docs.append(
            Document(
                id=f"doc-{input_index}-{i}",
                url=f"https://example.com/{input_index}/{i}",
                source=f"input-{input_index}.warc.gz",
                doc_index=(input_index << 32) | i,
                crawl="CC-MAIN-2024-10" if i % 2 else "CC-MAIN-2024-18",
                warc_date=datetime(2024, 3, 1, 12, 0, i % 60, tzinfo=timezone.utc),
                text=f"text {i}",
                language="en" if i % 3 else "de",
                language_score=0.9,
                token_ids=ids,
            )
        )
    return docs


def make_output(
    out_dir: str,
    docs_per_input: list[int],
    *,
    config: OutputConfig | None = None,
    seed: int = 0,
    max_len: int = 300,
) -> dict:
    """Write a complete output folder (token files + manifest); return the manifest."""
    config = config or OutputConfig(row_group_rows=16)
    files: list[TokenFileInfo] = []
    for i, n in enumerate(docs_per_input):
        writer = TokenShardWriter(out_dir, i, config, TOKENIZER)
        for d in make_docs(i, n, seed=seed, max_len=max_len):
            writer.write(d)
        files.extend(writer.close())
    manifest = build_manifest(
        pipeline="test",
        config={"write": config.model_dump(mode="json")},
        config_fingerprint="f" * 16,
        tokenizer=TOKENIZER,
        inputs=[
            {"index": i, "path": f"input-{i}.warc.gz", "bytes": 1}
            for i in range(len(docs_per_input))
        ],
        files=files,
        timings={"started": "x", "finished": "y", "seconds": 0.0},
    )
    write_manifest(out_dir, manifest)
    return manifest


def all_docs(docs_per_input: list[int], *, seed: int = 0, max_len: int = 300) -> list[np.ndarray]:
    """The token arrays ``make_output`` wrote, in manifest (file, row) order."""
    return [
        d.token_ids
        for i, n in enumerate(docs_per_input)
        for d in make_docs(i, n, seed=seed, max_len=max_len)
    ]
