"""dataproc vs Hugging Face datatrove on the same WARC files and the same number of workers.

    python bench/datatrove_compare.py /work/shared/corpus/bench/dev-bench.warc.gz \\
        --workers 1 --json /tmp/dt-compare.json [--set extract.extractor=resiliparse]

datatrove is installed into its own venv (``--venv``, created on first use with
``pip install datatrove[io,processing] aiohttp``) and is never a dependency of dataproc. The
datatrove side runs its FineWeb-style building blocks with ``LocalPipelineExecutor``:

1. WarcReader → URLFilter → Trafilatura → LanguageFilter(en) → PIIFormatter → JsonlWriter
   → MinhashDedupSignature (one task per input file)
2. MinhashDedupBuckets (one task per bucket), 3. MinhashDedupCluster (one task),
4. JsonlReader → MinhashDedupFilter → JsonlWriter (one task per input file)

with dataproc's settings where both have them (Trafilatura favour_precision, 2 s per-page
timeout, English at score ≥ 0.65, MinHash 5-grams, 14 bands × 8 rows). Differences that favour
datatrove are kept on purpose and listed in the report: it runs no quality filters and no
tokenizer, and its MinHash uses a plain ``\\w+`` word splitter instead of NLTK (NLTK's punkt
data would have to be downloaded, and it is slower). Its fastText model is dataproc's bundled
lid.176.ftz, copied into datatrove's asset cache so nothing is downloaded.

The dataproc side is ``run_pipeline`` (the real thing, Ray included) on the same files with
``execution.workers`` set to the same number. Both sides are timed from start to finished
output; documents/s counts WARC response records. ``--shards K`` first rewrites the inputs into
K generated files (see run_bench.make_shards) so that several workers have work to share.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import run_bench  # noqa: E402 - bench/ is not a package

DEFAULT_VENV = os.path.join(tempfile.gettempdir(), "dataproc-datatrove-venv")
DATATROVE_REQUIREMENT = "datatrove[io,processing]==0.10.1"

# Runs inside the datatrove venv. Kept as a string so this file imports nothing of datatrove.
DT_TOKENIZER = '''
import re
from datatrove.utils.word_tokenizers import WordTokenizer

_WORD = re.compile(r"\\w+")
_SENT = re.compile(r"[^.!?\\n]+[.!?]*")


class RegexWordTokenizer(WordTokenizer):
    """\\w+ words: no NLTK data to download (and cheaper than NLTK: favours datatrove)."""

    def word_tokenize(self, text):
        return _WORD.findall(text)

    def sent_tokenize(self, text):
        return [s.strip() for s in _SENT.findall(text) if s.strip()]

    def span_tokenize(self, text):
        return [m.span() for m in _WORD.finditer(text)]
'''

DT_PIPELINE = """
import json, os, shutil, sys, time


def main():


    args = json.loads(sys.argv[1])
    os.environ["HF_HUB_OFFLINE"] = "1"
    from datatrove.io import cached_assets_path, strip_protocol
    from datatrove.utils.lid import FT176LID

    # Offline: put dataproc's lid.176.ftz where datatrove would download lid.176.bin.
    d = cached_assets_path(library_name="datatrove", namespace="lid", subfolder=FT176LID.MODEL_SUBFOLDER)
    local = os.path.join(d, strip_protocol(FT176LID.MODEL_URL).replace("/", "_"))
    if not os.path.exists(local + ".completed"):
        shutil.copyfile(args["lid_model"], local)
        open(local + ".completed", "w").close()

    # Offline: tldextract (used by URLFilter) would try to download the public suffix list and
    # wait for the network to fail; use its bundled snapshot, as an offline user would.
    import tldextract
    _tld_init = tldextract.TLDExtract.__init__
    def _offline_tld_init(self, *a, **k):
        k["suffix_list_urls"] = ()
        _tld_init(self, *a, **k)
    tldextract.TLDExtract.__init__ = _offline_tld_init

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import LanguageFilter, URLFilter
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.writers import JsonlWriter
    from dt_regex_tokenizer import RegexWordTokenizer

    w, work, n_files = args["workers"], args["work"], args["n_files"]
    mh = MinhashConfig(n_grams=args["ngram"], num_buckets=args["bands"], hashes_per_bucket=args["rows"])
    tok = RegexWordTokenizer("en")
    stage1 = LocalPipelineExecutor(
        pipeline=[
            WarcReader(args["input_dir"], glob_pattern="*.warc*"),
            URLFilter(),
            Trafilatura(favour_precision=True, timeout=args["timeout"]),
            LanguageFilter(languages=["en"], language_threshold=args["min_score"]),
            PIIFormatter(),
            JsonlWriter(f"{work}/docs"),
            MinhashDedupSignature(output_folder=f"{work}/sigs", config=mh, language=tok),
        ],
        tasks=n_files, workers=w, logging_dir=f"{work}/logs/s1",
    )
    stage2 = LocalPipelineExecutor(
        pipeline=[MinhashDedupBuckets(input_folder=f"{work}/sigs", output_folder=f"{work}/buckets", config=mh)],
        tasks=mh.num_buckets, workers=w, logging_dir=f"{work}/logs/s2", depends=stage1,
    )
    stage3 = LocalPipelineExecutor(
        pipeline=[MinhashDedupCluster(input_folder=f"{work}/buckets", output_folder=f"{work}/remove_ids", config=mh)],
        tasks=1, workers=1, logging_dir=f"{work}/logs/s3", depends=stage2,
    )
    stage4 = LocalPipelineExecutor(
        pipeline=[
            JsonlReader(f"{work}/docs"),
            MinhashDedupFilter(input_folder=f"{work}/remove_ids"),
            JsonlWriter(f"{work}/final"),
        ],
        tasks=n_files, workers=w, logging_dir=f"{work}/logs/s4", depends=stage3,
    )
    t0 = time.time()
    stage4.run()
    wall = time.time() - t0
    kept = 0
    import gzip
    for name in sorted(os.listdir(f"{work}/final")):
        with gzip.open(os.path.join(work, "final", name), "rt") as f:
            kept += sum(1 for _ in f)
    print(json.dumps({"wall_seconds": wall, "docs_kept": kept}))


# datatrove's executor starts its workers with forkserver, which re-imports this __main__
# module: without the guard every worker process would start the whole pipeline again.
if __name__ == "__main__":
    main()
"""


def ensure_venv(venv: str) -> str:
    """The datatrove venv's python, creating the venv (and installing datatrove) if needed."""
    py = os.path.join(venv, "bin", "python")
    if os.path.exists(py):
        ok = subprocess.run(
            [py, "-c", "import datatrove, trafilatura, fasttext, warcio, aiohttp, magic, cchardet"],
            capture_output=True,
        )
        if ok.returncode == 0:
            return py
    print(f"creating {venv} with {DATATROVE_REQUIREMENT} (once; takes a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run(
        # lxml_html_clean: trafilatura 1.x imports lxml.html.clean, which lxml >= 5.2 moved out.
        [
            py,
            "-m",
            "pip",
            "install",
            "-q",
            DATATROVE_REQUIREMENT,
            "warcio",
            "aiohttp",
            "lxml_html_clean",
        ],
        check=True,
    )
    return py


def _venv_versions(py: str) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in "
        "('datatrove', 'trafilatura', 'lxml', 'fasttext-numpy2-wheel', 'warcio')}))"
    )
    out = subprocess.run([py, "-c", code], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def run_datatrove(
    py: str, paths: list[str], workers: int, work: str, overrides: list[str]
) -> dict[str, Any]:
    """Run the datatrove pipeline in its venv on ``paths``; return wall time and kept docs."""
    from dataproc.config import build_config
    from dataproc.stages.langid import default_model_path

    cfg = build_config({}, overrides)
    shutil.rmtree(work, ignore_errors=True)
    input_dir = os.path.join(work, "input")
    os.makedirs(input_dir)
    for i, p in enumerate(paths):  # WarcReader reads a folder: link the files into one
        os.symlink(os.path.abspath(p), os.path.join(input_dir, f"{i:05d}-{os.path.basename(p)}"))
    Path(work, "dt_regex_tokenizer.py").write_text(DT_TOKENIZER)
    Path(work, "dt_pipeline.py").write_text(DT_PIPELINE)
    args = {
        "workers": workers,
        "work": os.path.join(work, "out"),
        "input_dir": input_dir,
        "n_files": len(paths),
        "lid_model": cfg.langid.model_path or default_model_path(),
        "timeout": cfg.extract.timeout_seconds,
        "min_score": cfg.langid.min_score,
        "ngram": cfg.dedup.ngram,
        "bands": cfg.dedup.bands,
        "rows": cfg.dedup.rows,
    }
    env = dict(
        os.environ, PYTHONPATH=work, HF_HOME=os.path.join(work, "..", "hf-home"), HF_HUB_OFFLINE="1"
    )
    sampler = run_bench.Sampler()
    sampler.start()
    t0 = time.time()
    try:
        proc = subprocess.run(
            [py, os.path.join(work, "dt_pipeline.py"), json.dumps(args)],
            capture_output=True,
            text=True,
            env=env,
            cwd=work,
        )
    finally:
        wall = time.time() - t0
        sampler.stop()
    Path(work, "datatrove.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(
            f"datatrove failed (exit {proc.returncode}); log: {work}/datatrove.log\n"
            + proc.stderr[-3000:]
        )
    inner = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "wall_seconds": round(wall, 3),
        "pipeline_seconds": round(inner["wall_seconds"], 3),
        "docs_kept": inner["docs_kept"],
        "processes": sampler.summary(),
        "log": f"{work}/datatrove.log",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", help="WARC files")
    ap.add_argument("--workers", type=int, nargs="+", default=[1], help="worker counts (default 1)")
    ap.add_argument(
        "--shards",
        type=int,
        default=0,
        help="rewrite the inputs into this many generated shards first (0: use as given)",
    )
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="dataproc config override (e.g. extract.extractor=resiliparse)",
    )
    ap.add_argument(
        "--also-resiliparse",
        action="store_true",
        help="also run dataproc with extract.extractor=resiliparse against the same datatrove run",
    )
    ap.add_argument("--venv", default=DEFAULT_VENV, help=f"datatrove venv (default {DEFAULT_VENV})")
    ap.add_argument("--work-dir", default=None, help="scratch folder (default: a new temp folder)")
    ap.add_argument("--json", dest="json_path", help="also write the results as JSON here")
    args = ap.parse_args(argv)

    from dataproc.runner.ray_runtime import ensure_loopback_env

    ensure_loopback_env()
    work = args.work_dir or tempfile.mkdtemp(prefix="dataproc-vs-datatrove-")
    os.makedirs(work, exist_ok=True)
    py = ensure_venv(args.venv)
    if args.shards:
        gen = run_bench.make_shards(args.inputs, os.path.join(work, "shards"), args.shards)
        paths, responses = gen["paths"], gen["responses"]
    else:
        paths, responses = list(args.inputs), run_bench.count_responses(args.inputs)
    nbytes = sum(os.path.getsize(p) for p in paths)
    env = run_bench.environment()
    env["datatrove_venv"] = {"path": args.venv, "versions": _venv_versions(py)}
    report: dict[str, Any] = {
        "environment": env,
        "inputs": paths,
        "responses": responses,
        "input_bytes": nbytes,
        "overrides": args.overrides,
        "results": [],
    }
    variants = [("dataproc", args.overrides)]
    if args.also_resiliparse:
        variants.append(
            ("dataproc+resiliparse", [*args.overrides, "extract.extractor=resiliparse"])
        )
    for w in args.workers:
        # datatrove first, then each dataproc variant, back to back (same machine load).
        dt = run_datatrove(py, paths, w, os.path.join(work, f"datatrove-w{w}"), args.overrides)
        dt_rate = round(responses / dt["wall_seconds"], 2)
        for name, overrides in variants:
            out = os.path.join(work, f"{name.replace('+', '-')}-w{w}")
            dp = run_bench.run_pipeline_isolated(paths, out, w, overrides)
            row = {
                "workers": w,
                "variant": name,
                "overrides": overrides,
                "datatrove": dt,
                "dataproc": dp,
                "datatrove_docs_per_second": dt_rate,
                "dataproc_docs_per_second": round(responses / dp["wall_seconds"], 2),
            }
            row["ratio"] = round(row["dataproc_docs_per_second"] / dt_rate, 3)
            report["results"].append(row)
            print(
                f"workers={w}: datatrove {dt['wall_seconds']:.1f} s, {name} "
                f"{dp['wall_seconds']:.1f} s, ratio {row['ratio']:.2f}",
                flush=True,
            )
    env["load_average_at_end"] = os.getloadavg()

    print(f"\n# dataproc vs datatrove — {env['cpu']}, {env['cores']} cores")
    print(f"command: {env['command']}")
    print("dataproc: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v))
    print(
        "datatrove venv: "
        + ", ".join(f"{k} {v}" for k, v in env["datatrove_venv"]["versions"].items())
    )
    print(
        f"input: {len(paths)} file(s), {responses:,} responses, {nbytes / 1e6:.1f} MB; "
        f"dataproc overrides: {args.overrides or 'none'}"
    )
    print(
        f"load average at start {env['load_average_at_start']}, at end {env['load_average_at_end']}"
    )
    print(
        "| workers | dataproc variant | datatrove s | datatrove docs/s | dataproc s "
        "| dataproc docs/s | ratio | kept dt / dp |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in report["results"]:
        print(
            f"| {r['workers']} | {r['variant']} | {r['datatrove']['wall_seconds']:.1f} | {r['datatrove_docs_per_second']:.1f} | "
            f"{r['dataproc']['wall_seconds']:.1f} | {r['dataproc_docs_per_second']:.1f} | {r['ratio']:.2f} | "
            f"{r['datatrove']['docs_kept']:,} / {r['dataproc']['docs_kept']:,} |"
        )
    print("datatrove runs no quality filters and no tokenizer; dataproc runs both (see README).")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=2, default=list))
        print(f"JSON: {args.json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
