"""Worker memory across a shard made of the worst inputs we know.

Builds one per-record-gzip WARC file holding every hostile case (decompression bombs, a
record claiming hundreds of MiB, a header-line bomb, deep nesting, gigantic lines, binary
served as HTML, broken encodings, a corrupt member, a truncated tail, ...) between ordinary
pages, runs phase 1 on it in this process exactly as a Ray worker would (real reader,
extraction sandbox, langid, quality, PII, MinHash), and samples the resident memory of this
process and of the extraction child every 20 ms. Prints peak RSS, what was kept, and every
reason written to ``rejects/``.

    /work/venv/bin/python bench/hostile_memory.py --work-dir /tmp/hostile --repeat 3

``--repeat`` puts the worst cases in the shard that many times: a bounded worker's peak does
not grow with it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import threading
import time
import zlib
from collections import Counter
from pathlib import Path

import brotli
import psutil
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the WARC builder used by the tests

from warc_builder import WarcBuilder  # noqa: E402

MIB = 1024 * 1024
SENTENCE = "The committee published its annual report on regional water quality today. "
ARTICLE = (
    "<p>The committee published its annual report on regional water quality on Tuesday. "
    "Inspectors sampled forty rivers and found nitrate levels falling in most of them, "
    "although two catchments near the coast still exceed the national limit. Farmers "
    "there have been offered grants to plant buffer strips along the banks.</p><p>Local "
    "councils welcomed the findings but warned that funding for monitoring stations runs "
    "out next spring. The report recommends a permanent budget line and an open data "
    "portal so that residents can follow the measurements themselves.</p>"
)


def _page(body: str) -> str:
    return f"<html><head><title>t</title></head><body><article>{body}</article></body></html>"


def _bomb(kind: str, gib: int) -> bytes:
    zeros = b"<b>x</b>" * (MIB // 8)
    if kind == "gzip":
        c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        parts = [c.compress(b"<html><body><p>")] + [c.compress(zeros) for _ in range(1024 * gib)]
        return b"".join(parts) + c.flush()
    cb = brotli.Compressor(quality=1)
    parts = [cb.process(b"<html><body><p>")] + [cb.process(zeros) for _ in range(1024 * gib)]
    return b"".join(parts) + cb.finish()


def _huge_record_member(block_bytes: int) -> bytes:
    """One gzip member holding a response whose HTML block is ``block_bytes`` long."""
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
    head = (
        b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://huge.example/\r\n"
        b"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-00000000ffff>\r\n"
        + f"Content-Length: {len(http) + block_bytes}\r\n\r\n".encode()
    )
    c = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [c.compress(head + http + b"<html><body><p>")]
    piece = (SENTENCE.encode() * 900)[:MIB]
    for _ in range(block_bytes // MIB):
        out.append(c.compress(piece))
    out.append(c.compress(b"\r\n\r\n"))
    return b"".join(out) + c.flush()


def build_shard(path: Path, repeat: int, bomb_gib: int, huge_mib: int) -> list[str]:
    """Write the hostile shard; return the case names in order."""
    rng = random.Random(0)
    names: list[str] = []
    units: list[bytes] = []
    bombs = {k: _bomb(k, bomb_gib) for k in ("gzip", "br")}
    for r in range(repeat):
        b = WarcBuilder()
        b.warcinfo(is_part_of="CC-HOSTILE")

        def add(name: str, body: bytes | str, b: WarcBuilder = b, r: int = r, **kw: object) -> None:
            names.append(name)
            b.response(f"http://{name}.r{r}.example/", body, **kw)  # type: ignore[arg-type]

        add("ordinary", _page(ARTICLE))
        add("gzip_bomb", bombs["gzip"], headers=[("Content-Encoding", "gzip")])
        add("brotli_bomb", bombs["br"], headers=[("Content-Encoding", "br")])
        add("deep_nesting", _page("<div>" * 100_000 + ARTICLE + "</div>" * 100_000))
        add("gigantic_line", _page("<p>" + SENTENCE * 60_000 + "</p>"))
        add("huge_attribute", _page(f'<p title="{"x" * 4_000_000}">{SENTENCE * 8}</p>'))
        add("binary_as_html", bytes(rng.randrange(256) for _ in range(200_000)))
        add("nul_bytes", _page(ARTICLE).encode().replace(b" ", b" \x00"))
        add(
            "surrogates",
            _page(ARTICLE).encode() + b"\xed\xa0\x80",
            content_type="text/html; charset=utf-8",
        )
        add("lying_meta", ("<meta charset='shift_jis'>" + _page(ARTICLE + "naïve café")).encode())
        add("pii_pathological", _page("<p>" + "4111 1111 1111 1111 " * 5000 + "</p>"))
        add("phone_pathological", _page("<p>" + "1 " * 100_000 + "</p>"))
        add("ordinary_2", _page(ARTICLE.replace("water", "air")))
        units += b.build_units(gzip=True)
        names.append("huge_record")
        units.append(_huge_record_member(huge_mib * MIB))
        names.append("header_line_bomb")
        units.append(gzip.compress(b"WARC/1.0\r\nX-Long: " + b"a" * (32 * MIB) + b"\r\n\r\n", 6))
        names.append("corrupt_member")
        bad = bytearray(
            WarcBuilder().response(f"http://corrupt.r{r}.example/", _page(ARTICLE)).build()
        )
        bad[len(bad) // 2 : len(bad) // 2 + 8] = b"\xff" * 8
        units.append(bytes(bad))
    names.append("truncated_tail")
    tail = WarcBuilder().response("http://truncated.example/", _page(ARTICLE)).build()
    units.append(tail[: len(tail) - 30])
    path.write_bytes(b"".join(units))
    return names


class RssSampler:
    """Peak RSS of this process and of its children, sampled on a thread."""

    def __init__(self, interval_seconds: float = 0.02) -> None:
        self.interval = interval_seconds
        self.me = psutil.Process(os.getpid())
        self.peak_self = 0
        self.peak_children = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_self = max(self.peak_self, self.me.memory_info().rss)
                kids = sum(c.memory_info().rss for c in self.me.children(recursive=True))
                self.peak_children = max(self.peak_children, kids)
            except psutil.Error:
                pass
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--work-dir", default="/tmp/dataproc-hostile", help="where the shard and output go"
    )
    ap.add_argument("--repeat", type=int, default=1, help="copies of the worst cases in the shard")
    ap.add_argument(
        "--bomb-gib", type=int, default=1, help="GiB each decompression bomb inflates to"
    )
    ap.add_argument("--huge-mib", type=int, default=512, help="MiB the huge record claims")
    args = ap.parse_args()

    from dataproc.config import build_config
    from dataproc.io.layout import OutputLayout
    from dataproc.runner.phase1 import close_cached_stages, run_phase1

    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    shard = work / "hostile.warc.gz"
    t0 = time.time()
    names = build_shard(shard, args.repeat, args.bomb_gib, args.huge_mib)
    print(
        f"shard: {shard} ({shard.stat().st_size / MIB:.1f} MiB, {len(names)} cases, built in {time.time() - t0:.1f}s)"
    )
    out = work / "out"
    config = build_config({"inputs": [str(shard)], "output": str(out), "dedup": {"enabled": True}})
    base = psutil.Process().memory_info().rss
    t0 = time.time()
    with RssSampler() as rss:
        result = run_phase1(str(shard), 0, config, str(out))
    seconds = time.time() - t0
    close_cached_stages()

    layout = OutputLayout(str(out))
    rejects = pq.read_table(layout.rejects(0, "filter")).to_pylist()
    kept = pq.read_table(layout.docs(0), columns=["url"]).column("url").to_pylist()
    by_url = {r["url"]: f"{r['stage']}:{r['reason']}" for r in rejects}
    print(
        f"phase 1: {seconds:.1f}s; worker RSS before {base / MIB:.0f} MiB, peak {rss.peak_self / MIB:.0f} MiB; "
        f"extraction child peak {rss.peak_children / MIB:.0f} MiB"
    )
    print(f"kept ({len(kept)}): {sorted(kept)}")
    print("rejects/ rows by stage:reason:", dict(Counter(by_url.values())))
    for r in sorted(by_url):
        print(f"  {r:45s} {by_url[r]}")
    read = next(s for s in result.stats if s["name"] == "read")
    print(
        "read stage:",
        json.dumps({k: read[k] for k in ("docs_in", "docs_out", "dropped", "counters")}),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
