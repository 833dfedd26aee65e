"""Loader throughput, memory, start-up on 100k files, and mixture accounting (synthetic ids).

    python bench/loader_throughput.py run /tmp/bench-out --gb 2 --seq-len 2048
    python bench/loader_throughput.py startup /tmp/bench-100k --files 100000 --world-size 1000
    python bench/loader_throughput.py mixture /tmp/bench-mix --epoch-tokens 100000000

``generate`` writes ``--gb`` GB of token data (4 bytes/token, before compression) through the
real TokenShardWriter + manifest; ``measure`` iterates ``TokenLoader`` (shuffling on) over one
full epoch in a fresh process and reports tokens/s and peak RSS (so the generator's memory is
not counted). Token ids are Zipf-distributed over cl100k_base's range (compresses like real
text, ids above 65,535 included); document lengths are log-normal (median ~600 tokens).

``startup`` writes ``--files`` tiny token files (one row group each; what matters is the
count) and a format-2 manifest, then starts ``--sample-ranks`` ranks of ``--world-size``, each
in a fresh process: construction time, time to the first window, and every ``fs.open_input``
call over the rank's whole epoch (the manifest must be opened once, each token file at most
once, and only files holding the rank's windows).

``mixture`` writes two outputs whose token ids are disjoint (source ``a`` below 50,000,
``b`` from 50,000), mixes them 70/30 by tokens over ``--epoch-tokens`` (both upsampled), and
checks ``TokenLoader.summary()`` against tokens counted from the ids, exact to the token.
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


def _write_manifest(out: str, infos: list) -> dict:
    from dataproc.io.manifest import build_manifest, write_manifest

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


def generate(out: str, gb: float, files: int, seed: int, ids: tuple[int, int] = (0, EOT)) -> dict:
    from dataproc.config import OutputConfig
    from dataproc.document import Document
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
            lo, span = ids[0], ids[1] - ids[0]
            tok = (rng.zipf(1.3, size=int(lengths.sum())) % span + lo).astype(np.uint32)
            ends = np.cumsum(lengths)
            tok[np.flatnonzero(tok == EOT)] = lo  # no EOT inside
            tok[ends - 1] = EOT
            starts = ends - lengths
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
                w.write(
                    Document(
                        id=f"{i}-{ordinal}",
                        url=f"https://x/{i}/{ordinal}",
                        source=f"f{i}",
                        language="en",
                        language_score=0.9,
                        token_ids=tok[s:e],
                    )
                )
                ordinal += 1
            written += int(lengths.sum())
        infos += w.close()
        print(f"file {i + 1}/{files}: {written:,} tokens ({time.time() - t0:.0f}s)", flush=True)
    return _write_manifest(out, infos)


def measure(out: str, seq_len: int, world_size: int, max_seconds: float) -> dict:
    from dataproc.training import TokenLoader

    t0 = time.time()
    loader = TokenLoader(out, seq_len, world_size=world_size, seed=0)
    init_s = time.time() - t0
    rss_after_init = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tokens, windows = 0, 0
    t1, c1 = time.time(), time.process_time()
    for w in loader:
        tokens += len(w)
        windows += 1
        if time.time() - t1 > max_seconds:
            break
    secs = time.time() - t1
    cpu = time.process_time() - c1  # on a shared machine wall time includes waiting for a core
    return {
        "dataset_tokens": loader.total_tokens,
        "blocks": sum(len(s.block_tokens) for s in loader.sources),
        "world_size": world_size,
        "seq_len": seq_len,
        "windows": windows,
        "tokens": tokens,
        "index_seconds": round(init_s, 2),
        "seconds": round(secs, 2),
        "tokens_per_second": round(tokens / secs),
        "cpu_seconds": round(cpu, 2),
        "tokens_per_cpu_second": round(tokens / cpu),
        "peak_rss_mb_after_index": rss_after_init // 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def generate_many(out: str, files: int, seed: int) -> dict:
    """``files`` tiny token files (8 documents, one row group each) and their manifest.

    Written with the real table builder and Parquet options, but without the per-file fsync of
    the atomic writer (100k fsyncs would measure the disk, not the loader).
    """
    import hashlib
    import io

    import pyarrow.parquet as pq

    from dataproc.config import OutputConfig
    from dataproc.document import Document
    from dataproc.io.layout import token_file
    from dataproc.io.token_writer import (
        TokenFileInfo,
        build_table,
        parquet_write_options,
        token_schema,
    )

    rng = np.random.default_rng(seed)
    schema = token_schema(False, TOKENIZER["name"], EOT)
    opts = parquet_write_options(OutputConfig())
    os.makedirs(os.path.join(out, "tokens"), exist_ok=True)
    infos = []
    t0 = time.time()
    for i in range(files):
        lengths = rng.integers(20, 120, size=8)
        docs, arrays = [], []
        for j, n in enumerate(lengths.tolist()):
            ids = (rng.zipf(1.3, size=n) % EOT).astype(np.uint32)
            ids[-1] = EOT
            docs.append(Document(id=f"{i}-{j}", url="https://x/", source=f"f{i}"))
            arrays.append(ids)
        buf = io.BytesIO()
        pq.write_table(build_table(docs, arrays, schema), buf, row_group_size=8, **opts)
        data = buf.getvalue()
        rel = token_file(i, 0)
        with open(os.path.join(out, rel), "wb") as f:
            f.write(data)
        tokens = int(lengths.sum())
        infos.append(
            TokenFileInfo(
                rel, i, 8, tokens, len(data), hashlib.sha256(data).hexdigest(), (8,), (tokens,)
            )
        )
        if (i + 1) % 10_000 == 0:
            print(f"{i + 1:,} files ({time.time() - t0:.0f}s)", flush=True)
    return _write_manifest(out, infos)


def measure_startup(out: str, seq_len: int, world_size: int, rank: int) -> dict:
    """One rank's start-up, and every file it opens over its whole epoch (fresh process)."""
    from dataproc.io import fs
    from dataproc.training import TokenLoader

    opened: list[str] = []
    real_open = fs.open_input

    def counting_open(path: str, *args: object, **kwargs: object) -> object:
        opened.append(path)
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    fs.open_input = counting_open  # type: ignore[assignment]
    t0, c0 = time.time(), time.process_time()
    loader = TokenLoader(out, seq_len, rank=rank, world_size=world_size, seed=0)
    construct = time.time() - t0
    construct_cpu = time.process_time() - c0  # the shared machine's wall time is noisy
    opens_at_construction = len(opened)
    it = iter(loader)
    next(it)
    first_window = time.time() - t0
    windows = 1 + sum(1 for _ in it)
    epoch_s = time.time() - t0
    token_files = [p for p in opened if not p.endswith("manifest.json")]
    return {
        "rank": rank,
        "world_size": world_size,
        "windows": windows,
        "construct_s": round(construct, 3),
        "construct_cpu_s": round(construct_cpu, 3),
        "first_window_s": round(first_window, 3),
        "epoch_s": round(epoch_s, 3),
        "opens_at_construction": opens_at_construction,
        "manifest_opens": len(opened) - len(token_files),
        "token_file_opens": len(token_files),
        "distinct_files_read": len(set(token_files)),
        "opens_ok": len(opened) <= len(set(token_files)) + 1,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def mixture(out: str, epoch_tokens: int, seq_len: int, gb: float) -> dict:
    """Mix two outputs with disjoint ids 70/30 by tokens; count per source from the ids."""
    from dataproc.training import TokenLoader

    srcs = {"a": os.path.join(out, "a"), "b": os.path.join(out, "b")}
    for name, ids, part in (("a", (0, 50_000), 0.6), ("b", (50_000, EOT), 0.4)):
        if not os.path.exists(os.path.join(srcs[name], "manifest.json")):
            generate(srcs[name], gb * part, 4, seed=len(name) + ord(name), ids=ids)
    t0, c0 = time.time(), time.process_time()
    loader = TokenLoader(
        srcs, seq_len, seed=0, weights={"a": 0.7, "b": 0.3}, epoch_tokens=epoch_tokens
    )
    counted = np.zeros(2, dtype=np.int64)
    prev_owner = 0
    tokens = 0
    for w in loader:
        owner = (w >= 50_000).astype(np.int64)
        eot = np.flatnonzero(w == EOT)
        # an EOT belongs to the document it ends: the token before it (maybe last window's)
        before = np.where(eot > 0, owner[np.maximum(eot - 1, 0)], prev_owner)
        owner[eot] = before
        prev_owner = int(owner[-1])
        counted += np.bincount(owner, minlength=2)
        tokens += len(w)
    secs, cpu = time.time() - t0, time.process_time() - c0
    sources = loader.summary()["sources"]  # the loader has finished epoch 0
    counted_d = {"a": int(counted[0]), "b": int(counted[1])}
    consumed = {n: v["consumed_tokens"] for n, v in sources.items()}
    rank = {n: v["rank_tokens"] for n, v in sources.items()}
    return {
        "epoch_tokens": epoch_tokens,
        "natural_tokens": {n: v["natural_tokens"] for n, v in sources.items()},
        "quotas": {n: v["epoch_tokens"] for n, v in sources.items()},
        "repeats_per_epoch": {n: v["repeats_per_epoch"] for n, v in sources.items()},
        "tokens_yielded": tokens,
        "counted_from_ids": counted_d,
        "consumed_tokens": consumed,
        "rank_tokens": rank,
        "exact": consumed == counted_d == rank,
        "share_b": round(int(counted[1]) / max(1, tokens), 6),
        "seconds": round(secs, 2),
        "tokens_per_second": round(tokens / secs),
        "cpu_seconds": round(cpu, 2),
        "tokens_per_cpu_second": round(tokens / cpu),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def _sub(args: list[str]) -> dict:
    """Run ``measure``-style actions in a fresh interpreter; return its JSON line."""
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "action", choices=["generate", "measure", "run", "startup", "startup-rank", "mixture"]
    )
    p.add_argument("out", help="output folder to create / read")
    p.add_argument("--gb", type=float, default=2.0, help="GB of token data to generate (default 2)")
    p.add_argument("--files", type=int, default=8, help="files to generate (default 8)")
    p.add_argument("--seq-len", type=int, default=2048, help="sequence length (default 2048)")
    p.add_argument("--world-size", type=int, default=1, help="ranks; measures rank 0 (default 1)")
    p.add_argument("--rank", type=int, default=0, help="startup-rank: which rank")
    p.add_argument("--sample-ranks", type=int, default=20, help="startup: ranks measured")
    p.add_argument("--epoch-tokens", type=int, default=100_000_000, help="mixture: epoch size")
    p.add_argument("--max-seconds", type=float, default=600, help="stop measuring after this")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    exists = os.path.exists(os.path.join(a.out, "manifest.json"))
    if a.action in ("generate", "run"):
        if exists:
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
        args = ["measure", a.out, "--seq-len", str(a.seq_len), "--world-size", str(a.world_size)]
        print(json.dumps(_sub([*args, "--max-seconds", str(a.max_seconds)])))
    elif a.action == "startup-rank":
        print(json.dumps(measure_startup(a.out, a.seq_len, a.world_size, a.rank)))
    elif a.action == "startup":
        if not exists:
            print(json.dumps(generate_many(a.out, a.files, a.seed)), flush=True)
        n = min(a.sample_ranks, a.world_size)
        ranks = sorted({round(i * (a.world_size - 1) / max(1, n - 1)) for i in range(n)})
        rows = []
        for r in ranks:
            args = ["startup-rank", a.out, "--seq-len", str(a.seq_len)]
            rows.append(_sub([*args, "--world-size", str(a.world_size), "--rank", str(r)]))
            print(json.dumps(rows[-1]), flush=True)
        print(
            json.dumps(
                {
                    "ranks_measured": len(rows),
                    "max_construct_s": max(r["construct_s"] for r in rows),
                    "median_construct_s": sorted(r["construct_s"] for r in rows)[len(rows) // 2],
                    "max_construct_cpu_s": max(r["construct_cpu_s"] for r in rows),
                    "max_first_window_s": max(r["first_window_s"] for r in rows),
                    "max_token_file_opens": max(r["token_file_opens"] for r in rows),
                    "manifest_opens": sorted({r["manifest_opens"] for r in rows}),
                    "all_opens_ok": all(r["opens_ok"] for r in rows),
                    "max_peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
                }
            )
        )
    elif a.action == "mixture":
        result = mixture(a.out, a.epoch_tokens, a.seq_len, a.gb)
        print(json.dumps(result))
        return 0 if result["exact"] else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
