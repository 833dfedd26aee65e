"""Near-dedup quality: the pipeline's MinHash-LSH dedup against labelled duplicates.

How it runs (no Ray, same code as the pipeline): the WARC is read with ``read_warc``, each page
extracted in-process with ``extract_text`` (our settings; pages under ``extract.min_chars``
are dropped, as the Extractor stage does), PII-scrubbed, then hashed and written with
phase 1's ``DedupWriter``; ``run_phase2`` (in-process executor) — phase 2 of the
pipeline, unchanged — turn the keys into removed documents. Language ID and quality filters
are skipped on purpose, so that dedup sees every page with text (the truth file labels copies
of all kinds of pages, not only English articles). Running phases in-process instead of
``run_pipeline`` keeps the evaluation quick, deterministic and free of a Ray cluster, while
every dedup decision is made by the pipeline's own functions.

Definitions (also in docs/quality.md):

* Truth clusters: records of the truth file sharing ``cluster``; only documents that reach
  dedup count. A *true pair* is two such documents of one truth cluster.
* Predicted clusters: each kept document with the documents removed in its favour. A
  *predicted pair* is two documents of one predicted cluster (what dedup treats as copies).
* Pair precision / recall: |true ∩ predicted pairs| / |predicted pairs| and / |true pairs|.
* Removal precision: share of removed documents whose kept document is in their truth
  cluster; removal recall: correct removals / (Σ over truth clusters of members − 1).
* Brute force: exact Jaccard of the same 5-word shingle sets MinHash uses, for every pair of
  documents (or of a sample: whole truth clusters drawn at random until it is full); a pair
  is *caught* when both documents end in one predicted cluster, *candidate* when they share
  an LSH band (or the exact-text key) directly.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import random
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from dataproc.errors import InputError

JACCARD_BINS: tuple[tuple[float, float], ...] = (
    (0.0, 0.3),
    (0.3, 0.5),
    (0.5, 0.7),
    (0.7, 0.8),
    (0.8, 0.9),
    (0.9, 1.0),
    (1.0, 1.01),
)


def jaccard(a: set[bytes] | frozenset[bytes], b: set[bytes] | frozenset[bytes]) -> float:
    """Exact Jaccard similarity of two shingle sets (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def _bin_label(lo: float, hi: float) -> str:
    return "J = 1.0" if lo == 1.0 else f"{lo:.1f} <= J < {hi:.1f}"


def load_truth(path: str) -> dict[str, Any]:
    """The truth file: ``records`` (id, cluster, kind, ...) and ``duplicates`` (id, dup_of, kind)."""
    try:
        with open(path, encoding="utf-8") as f:
            truth = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"--truth {path}: cannot read it as JSON ({e})") from None
    if not isinstance(truth, dict) or not isinstance(truth.get("records"), list):
        raise InputError(
            f"--truth {path}: expected an object with a `records` list of "
            "{id, cluster, kind} (the dev-bench truth format)"
        )
    return truth


def _record_id(raw: str) -> str:
    return raw.strip().removeprefix("<").removesuffix(">").removeprefix("urn:uuid:")


def extract_warc_texts(warc: str, workers: int = 1) -> list[tuple[int, str, str, str]]:
    """``(doc_index, id, url, text)`` of every page of ``warc`` that reaches dedup."""
    from dataproc.eval.extraction import run_extractions
    from dataproc.readers.config import ReaderConfig
    from dataproc.readers.warc import read_warc
    from dataproc.stages.extract import ExtractConfig
    from dataproc.stages.pii import scrub
    from dataproc.stats import StageStats

    if not os.path.isfile(warc):
        raise InputError(f"--warc {warc}: no such file")
    with open(warc, "rb") as stream:
        docs = [
            (d.doc_index, d.id, d.url, d.html)
            for d in read_warc(
                stream,
                source=warc,
                input_index=0,
                config=ReaderConfig(),
                stats=StageStats("read"),
                reject=lambda doc, stage, rej: None,
            )
        ]
    texts = run_extractions("dataproc", [h for *_, h in docs], workers)
    min_chars = ExtractConfig().min_chars
    return [
        (idx, doc_id, url, scrub(text)[0])
        for (idx, doc_id, url, _), text in zip(docs, texts, strict=True)
        if len(text) >= min_chars
    ]


def run_dedup(
    texts: Sequence[str], config: Any = None
) -> tuple[dict[int, int], dict[int, set[int]]]:
    """Dedup ``texts`` (doc_index = position) with the pipeline's phase-1/phase-2 functions.

    Returns ``(kept_of, candidates)``: ``kept_of[i]`` is the kept document that ``i`` was
    removed for (removed documents only); ``candidates[i]`` the documents sharing at least one
    LSH band or the exact-text key with ``i``.
    """
    import glob

    import numpy as np
    import pyarrow.parquet as pq

    from dataproc.dedup.clusters import BandSource, run_phase2
    from dataproc.dedup.config import DedupConfig
    from dataproc.dedup.writer import DedupWriter
    from dataproc.io.layout import OutputLayout

    cfg = config or DedupConfig()
    by_key: dict[tuple[int, int], list[int]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="dataproc-eval-dedup-") as scratch:
        # The scratch folder is laid out like a run's output folder.
        layout = OutputLayout(scratch)
        writer = DedupWriter(layout.work, 0, cfg)
        for i, text in enumerate(texts):
            keys, exact = writer.add(i, text)
            for band, key in enumerate(keys.tolist()):
                by_key[(band, key)].append(i)
            if exact is not None:
                by_key[(cfg.bands, exact)].append(i)
        writer.close()
        source = BandSource(layout.bands(0), 0, 0, len(texts) * (cfg.bands + 1))
        run_phase2([source], [0], [0], layout.dedup_dir, cfg)
        kept_of: dict[int, int] = {}
        for path in glob.glob(os.path.join(layout.dedup.removed_dir, "*.parquet")):
            t = pq.read_table(path)
            docs = np.asarray(t.column("doc").to_numpy(), dtype=np.uint64)
            kept = np.asarray(t.column("kept").to_numpy(), dtype=np.uint64)
            for d, k in zip(docs.tolist(), kept.tolist(), strict=True):
                kept_of[int(d)] = int(k)
    candidates: dict[int, set[int]] = defaultdict(set)
    for members in by_key.values():
        if len(members) > 1:
            for m in members:
                candidates[m].update(x for x in members if x != m)
    return kept_of, candidates


def _pairs_of(groups: dict[Any, list[int]]) -> set[tuple[int, int]]:
    return {
        (a, b) for members in groups.values() for a, b in itertools.combinations(sorted(members), 2)
    }


def _sample_clusters(cluster_of: dict[int, Any], sample_docs: int | None, seed: int) -> list[int]:
    if sample_docs is None or sample_docs >= len(cluster_of):
        return sorted(cluster_of)
    groups: dict[Any, list[int]] = defaultdict(list)
    for i, c in cluster_of.items():
        groups[c].append(i)
    keys = sorted(groups, key=str)
    random.Random(seed).shuffle(keys)
    picked: list[int] = []
    for k in keys:
        if len(picked) >= sample_docs:
            break
        picked.extend(groups[k])
    return sorted(picked)


def evaluate_dedup_warc(
    warc: str,
    truth_path: str,
    sample_docs: int | None = None,
    seed: int = 0,
    workers: int = 1,
    config: Any = None,
) -> dict[str, Any]:
    """Dedup ``warc`` with the pipeline's code and score it against ``truth_path``."""
    from dataproc.dedup.config import DedupConfig
    from dataproc.dedup.minhash import MinHasher

    cfg = config or DedupConfig()
    truth = load_truth(truth_path)
    cluster_by_id = {_record_id(r["id"]): r["cluster"] for r in truth["records"]}
    pages = extract_warc_texts(warc, workers)
    # Position in `pages` is the doc id used below (doc_index order is kept, so the kept
    # document of a cluster is the same one the pipeline keeps).
    texts = [p[3] for p in pages]
    ids = [_record_id(p[1]) for p in pages]
    unknown = [i for i in ids if i not in cluster_by_id]
    kept_of, candidates = run_dedup(texts, cfg)

    cluster_of = {i: cluster_by_id[d] for i, d in enumerate(ids) if d in cluster_by_id}
    truth_groups: dict[Any, list[int]] = defaultdict(list)
    for i, c in cluster_of.items():
        truth_groups[c].append(i)
    pred_root = {i: kept_of.get(i, i) for i in range(len(texts))}
    pred_groups: dict[int, list[int]] = defaultdict(list)
    for i, r in pred_root.items():
        if i in cluster_of:
            pred_groups[r].append(i)
    true_pairs = _pairs_of(truth_groups)
    pred_pairs = _pairs_of(pred_groups)
    both = true_pairs & pred_pairs

    hasher = MinHasher(cfg)
    shingles: dict[int, frozenset[bytes]] = {}

    def sh(i: int) -> frozenset[bytes]:
        if i not in shingles:
            shingles[i] = frozenset(hasher.shingles(texts[i]))
        return shingles[i]

    # Removals judged against the truth, and wrong ones measured.
    removals = [(d, k) for d, k in kept_of.items() if d in cluster_of and k in cluster_of]
    correct = [(d, k) for d, k in removals if cluster_of[d] == cluster_of[k]]
    wrong = [(d, k) for d, k in removals if cluster_of[d] != cluster_of[k]]
    wrong_j = [jaccard(sh(d), sh(k)) for d, k in wrong]
    removal_j = [jaccard(sh(d), sh(k)) for d, k in removals]
    removal_bins = {
        _bin_label(lo, hi): sum(lo <= j < hi for j in removal_j) for lo, hi in JACCARD_BINS
    }
    should_remove = sum(len(m) - 1 for m in truth_groups.values())
    wrong_examples = [
        {"removed": pages[d][2], "kept": pages[k][2], "jaccard": round(j, 4)}
        for (d, k), j in sorted(zip(wrong, wrong_j, strict=True), key=lambda x: x[1])[:15]
    ]

    # Recall per labelled duplicate kind (the copy and its original both reach dedup).
    pos = {d: i for i, d in enumerate(ids)}
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for dup in truth.get("duplicates", []):
        a, b = pos.get(_record_id(dup["id"])), pos.get(_record_id(dup["dup_of"]))
        if a is not None and b is not None:
            by_kind[dup["kind"]].append(pred_root[a] == pred_root[b])

    # Brute force over a sample.
    sample = _sample_clusters(cluster_of, sample_docs, seed)
    bins = {_bin_label(lo, hi): [0, 0, 0] for lo, hi in JACCARD_BINS}  # pairs, caught, cand.
    caught_low: list[dict[str, Any]] = []
    n_pairs = 0
    caught_pairs = caught_ge_05 = 0
    for a, b in itertools.combinations(sample, 2):
        j = jaccard(sh(a), sh(b))
        n_pairs += 1
        caught = pred_root[a] == pred_root[b]
        cand = b in candidates.get(a, ())
        for lo, hi in JACCARD_BINS:
            if lo <= j < hi:
                row = bins[_bin_label(lo, hi)]
                row[0] += 1
                row[1] += caught
                row[2] += cand
                break
        if caught:
            caught_pairs += 1
            caught_ge_05 += j >= 0.5
            if j < 0.5 and len(caught_low) < 15:
                caught_low.append(
                    {"a": pages[a][2], "b": pages[b][2], "jaccard": round(j, 4), "direct": cand}
                )
    high = [bins[k] for k in bins if k.startswith(("0.8", "0.9", "J = 1"))]
    low = [bins[k] for k in bins if k.startswith(("0.0", "0.3"))]
    brute = {
        "sample_docs": len(sample),
        "pairs": n_pairs,
        "bins": {
            k: {
                "pairs": v[0],
                "caught": v[1],
                "candidates": v[2],
                "caught_rate": v[1] / v[0] if v[0] else None,
            }
            for k, v in bins.items()
        },
        "recall_j_ge_0_8": sum(v[1] for v in high) / max(1, sum(v[0] for v in high)),
        "pairs_j_ge_0_8": sum(v[0] for v in high),
        "caught_j_lt_0_5": sum(v[1] for v in low),
        "candidates_j_lt_0_5": sum(v[2] for v in low),
        "precision_j_ge_0_5": caught_ge_05 / caught_pairs if caught_pairs else None,
        "caught_j_lt_0_5_examples": caught_low,
    }
    return {
        "docs_read": len(ids),
        "docs_not_in_truth": len(unknown),
        "truth_clusters": len(truth_groups),
        "true_pairs": len(true_pairs),
        "predicted_pairs": len(pred_pairs),
        "pair_precision": len(both) / len(pred_pairs) if pred_pairs else None,
        "pair_recall": len(both) / len(true_pairs) if true_pairs else None,
        "removed": len(removals),
        "should_remove": should_remove,
        "removal_precision": len(correct) / len(removals) if removals else None,
        "removal_recall": len(correct) / should_remove if should_remove else None,
        "wrong_removals": len(wrong),
        "wrong_removals_j_ge_0_8": sum(j >= 0.8 for j in wrong_j),
        "removal_precision_counting_unlabelled_j_ge_0_8": (
            (len(correct) + sum(j >= 0.8 for j in wrong_j)) / len(removals) if removals else None
        ),
        "removal_jaccard_bins": removal_bins,
        "removals_j_ge_0_5": sum(j >= 0.5 for j in removal_j),
        "wrong_removal_examples": wrong_examples,
        "recall_by_kind": {
            k: {"pairs": len(v), "caught": sum(v), "recall": sum(v) / len(v)}
            for k, v in sorted(by_kind.items())
        },
        "brute_force": brute,
    }


def evaluate_near_dup_corpus(folder: str, config: Any = None) -> dict[str, Any]:
    """Graded behaviour on a plagiarism corpus: each answer against its source text.

    ``folder`` holds ``file_information.csv`` (``File,Task,Category``) and the texts,
    with sources named ``orig_task<Task>.txt`` (the Clough & Stevenson layout).
    """
    from dataproc.dedup.config import DedupConfig
    from dataproc.dedup.minhash import MinHasher

    info = os.path.join(folder, "file_information.csv")
    if not os.path.isfile(info):
        raise InputError(
            f"--near-dup-corpus {folder}: no file_information.csv there (File,Task,Category); "
            "point it at the Clough & Stevenson corpus folder"
        )
    cfg = config or DedupConfig()
    hasher = MinHasher(cfg)

    def read(name: str) -> str:
        with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
            return f.read()

    def keys(text: str) -> tuple[set[int], int]:
        return set(hasher.band_keys(hasher.signature(text)).tolist()), hasher.exact_key(text)

    rows: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    with open(info, encoding="utf-8", newline="") as f:
        entries = [r for r in csv.DictReader(f) if r.get("Category") and r["Category"] != "orig"]
    sources: dict[str, tuple[frozenset[bytes], set[int], int]] = {}
    for r in entries:
        task = r["Task"]
        if task not in sources:
            text = read(f"orig_task{task}.txt")
            sources[task] = (frozenset(hasher.shingles(text)), *keys(text))
        text = read(r["File"])
        src_sh, src_bands, src_exact = sources[task]
        bands, exact = keys(text)
        caught = bool(bands & src_bands) or exact == src_exact
        rows[r["Category"]].append((jaccard(frozenset(hasher.shingles(text)), src_sh), caught))
    order = ["cut", "light", "heavy", "non"]
    out = {}
    for cat in sorted(rows, key=lambda c: (order.index(c) if c in order else 99, c)):
        js = [j for j, _ in rows[cat]]
        out[cat] = {
            "answers": len(js),
            "mean_jaccard": sum(js) / len(js),
            "min_jaccard": min(js),
            "max_jaccard": max(js),
            "answers_j_ge_0_8": sum(j >= 0.8 for j in js),
            "caught": sum(c for _, c in rows[cat]),
            "caught_rate": sum(c for _, c in rows[cat]) / len(js),
        }
    return {"categories": out, "pairs": sum(len(v) for v in rows.values())}


def evaluate_dedup(
    warc: str | None = None,
    truth: str | None = None,
    near_dup_corpus: str | None = None,
    sample_docs: int | None = None,
    seed: int = 0,
    workers: int = 1,
) -> dict[str, Any]:
    """Dedup quality on a labelled WARC and/or a graded near-duplicate corpus."""
    if bool(warc) != bool(truth):
        raise InputError("eval dedup: give --warc and --truth together")
    if not warc and not near_dup_corpus:
        raise InputError("eval dedup: give --warc FILE --truth JSON and/or --near-dup-corpus DIR")
    from dataproc.dedup.config import DedupConfig

    cfg = DedupConfig()
    result: dict[str, Any] = {
        "config": {
            "num_perm": cfg.num_perm,
            "bands": cfg.bands,
            "rows": cfg.rows,
            "ngram": cfg.ngram,
            "exact": cfg.exact,
        },
    }
    if warc and truth:
        result["warc"] = evaluate_dedup_warc(warc, truth, sample_docs, seed, workers, cfg)
    if near_dup_corpus:
        result["near_dup_corpus"] = evaluate_near_dup_corpus(near_dup_corpus, cfg)
    return result
