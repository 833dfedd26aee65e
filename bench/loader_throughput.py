"""Loader throughput and memory on a multi-GB output generated here (synthetic token ids).

    python bench/loader_throughput.py run /tmp/bench-out --gb 2 --seq-len 2048

``generate`` writes ``--gb`` GB of token data (4 bytes/token, before compression) through the
real TokenShardWriter + manifest; ``measure`` iterates ``TokenLoader`` over one full epoch in
a fresh process and reports tokens/s and peak RSS (so the generator's memory is not counted).
Token ids are Zipf-distributed over cl100k_base's range (compresses like real text, ids above
65,535 included); document lengths are log-normal (median ~600 tokens).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

EOT, VOCAB = 100257, 100277
TOKENIZER = {
    "name": "cl100k_base",
    "vocab_size": VOCAB,
    "eot_id": EOT,
    "eot_token": "<|endoftext|>",
    "rank_file_sha256": None,
    "dtype": "uint32",
}


def generate(out: str, gb: float, files: int, seed: int) -> dict:
    from dataproc.config import OutputConfig
    from dataproc.document import Document
    from dataproc.io.manifest import build_manifest, write_manifest
    from dataproc.io.token_writer import TokenShardWriter

    target_tokens = int(gb * 1e9 / 4)
    per_file = target_tokens // files
    rng = np.random.default_rng(seed)
    infos = []
    t0 = time.time()
    for i in range(files):
        w = TokenShardWriter(out, i, OutputConfig(), TOKENIZER)
        written, ordinal = 0, 0
        while written < per_file:
            lengths = np.clip(rng.lognormal(6.4, 1.0, size=1024).astype(np.int64), 2, 100_000)
            ids = (rng.zipf(1.3, size=int(lengths.sum())) % EOT).astype(np.uint32)
            ends = np.cumsum(lengths)
            ids[ends - 1] = EOT
            ids[np.setdiff1d(np.flatnonzero(ids == EOT), ends - 1)] = 0  # no EOT inside
            starts = ends - lengths
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
                w.write(
                    Document(
                        id=f"{i}-{ordinal}",
                        url=f"https://x/{i}/{ordinal}",
                        source=f"f{i}",
                        language="en",
                        language_score=0.9,
                        token_ids=ids[s:e],
                    )
                )
                ordinal += 1
            written += int(lengths.sum())
        infos += w.close()
        print(f"file {i + 1}/{files}: {written:,} tokens ({time.time() - t0:.0f}s)", flush=True)
    m = build_manifest(
        pipeline="bench",
        config={},
        config_fingerprint="bench",
        tokenizer=TOKENIZER,
        inputs=[],
        files=infos,
        timings={},
    )
    write_manifest(out, m)
    return m["totals"]


def measure(out: str, seq_len: int, world_size: int, max_seconds: float) -> dict:
    from dataproc.training import TokenLoader

    t0 = time.time()
    loader = TokenLoader(out, seq_len, world_size=world_size, seed=0)
    init_s = time.time() - t0
    rss_after_init = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tokens, windows = 0, 0
    t1 = time.time()
    for w in loader:
        tokens += len(w)
        windows += 1
        if time.time() - t1 > max_seconds:
            break
    secs = time.time() - t1
    return {
        "dataset_tokens": loader.total_tokens,
        "blocks": len(loader.blocks),
        "world_size": world_size,
        "seq_len": seq_len,
        "windows": windows,
        "tokens": tokens,
        "index_seconds": round(init_s, 2),
        "seconds": round(secs, 2),
        "tokens_per_second": round(tokens / secs),
        "peak_rss_mb_after_index": rss_after_init // 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("action", choices=["generate", "measure", "run"])
    p.add_argument("out", help="output folder to create / read")
    p.add_argument("--gb", type=float, default=2.0, help="GB of token data to generate (default 2)")
    p.add_argument("--files", type=int, default=8, help="input files to generate (default 8)")
    p.add_argument("--seq-len", type=int, default=2048, help="sequence length (default 2048)")
    p.add_argument("--world-size", type=int, default=1, help="ranks; measures rank 0 (default 1)")
    p.add_argument("--max-seconds", type=float, default=600, help="stop measuring after this")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.action in ("generate", "run"):
        if os.path.exists(os.path.join(a.out, "manifest.json")):
            print(f"{a.out} exists; reusing it")
        else:
            print(json.dumps(generate(a.out, a.gb, a.files, a.seed)))
        size = sum(
            os.path.getsize(os.path.join(a.out, "tokens", f))
            for f in os.listdir(os.path.join(a.out, "tokens"))
        )
        print(f"on disk: {size / 1e9:.2f} GB")
    if a.action == "measure":
        print(json.dumps(measure(a.out, a.seq_len, a.world_size, a.max_seconds)))
    elif a.action == "run":
        cmd = [
            sys.executable,
            __file__,
            "measure",
            a.out,
            "--seq-len",
            str(a.seq_len),
            "--world-size",
            str(a.world_size),
            "--max-seconds",
            str(a.max_seconds),
        ]
        return subprocess.call(cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
