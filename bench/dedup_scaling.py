"""Benchmark: the real dedup phase 2 on a local Ray cluster, synthetic band files, 1 M → 30 M docs.

No text is involved. Band keys, exact keys and MinHash signatures are generated as NumPy arrays
with a known duplicate structure and written with the real ``BandKeyWriter`` (the phase-1
on-disk format: one band file per input, 8-bit sketches with every row). Then the real
``run_phase2`` runs with a Ray executor; every phase-2 task's
peak RSS is measured with the worker's high-water mark reset at the task's start (see
``measured``) and printed with its wall and CPU time.

Duplicate structure (documents are spread over all files by a fixed permutation):

- one family of ``--max-family`` K documents, and families whose sizes follow a power law
  (P(size ≥ s) ∝ 1/s, capped at K) filling ``--dup-fraction`` of the documents. Half of a
  family's members are exact copies (every band and the exact key equal the family's); the
  others share the family's anchor band plus a random half of the other bands, and differ from
  the family's base signature in ``NEAR_CHANGED`` of their values (so any two members agree on
  ≥ 1 - 2 x 6/112 ≈ 0.89 of positions: verified, and each family is one component);
- one chain of ``--chain`` L documents: neighbours j, j+1 share one band key and their
  signatures differ in ~``num_perm / CHAIN_WINDOW`` values (verified); documents more than
  ``CHAIN_WINDOW`` apart share no value, and no two non-neighbours share a band key. The chain
  is one component; its two ends have nothing in common;
- decoy pairs (0.1 % of the unique documents): two documents sharing one band key with
  unrelated signatures. Verification must reject them (none removed);
- all other documents unique.

Expected result (computed here from the structure, not by the code under test): every member
of a family or of the chain except the structure's smallest doc_index is removed, with that
smallest doc_index as ``kept``. ``removed_ok`` compares the full removed (doc, kept) lists.

    /work/venv/bin/python bench/dedup_scaling.py --docs 1000000 10000000 --dup-fraction 0.3 \\
        --max-family 1000000 --chain 100000 --workdir /tmp/dedup-bench --json /tmp/dedup.json

``--cases`` (default on) also times the chain alone (L docs) and the big family alone (K docs).
``--exact-family`` makes every family member an exact copy (one exact group of K documents and
15 band keys each held by K rows: the heavy-key case), e.g. ``--docs 5000000 --dup-fraction 1.0
--max-family 5000000 --chain 0 --no-cases --exact-family``.
Exit status 1 when any removed set differs from the expected one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from typing import Any

import numpy as np

MIX1 = np.uint64(0x9E3779B97F4A7C15)
MIX2 = np.uint64(0xBF58476D1CE4E5B9)
MIX3 = np.uint64(0x94D049BB133111EB)
BANDS = 14
ROWS = 8
NUM_PERM = BANDS * ROWS
NEAR_CHANGED = 6  # signature values a near family member changes
CHAIN_WINDOW = 16  # chain: a value changes every CHAIN_WINDOW steps (staggered by position)
DECOY_SHARE = 0.001


def splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorized SplitMix64 finalizer: a fast, well-mixed, deterministic uint64 → uint64."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + MIX1
        z = (z ^ (z >> np.uint64(30))) * MIX2
        z = (z ^ (z >> np.uint64(27))) * MIX3
        return z ^ (z >> np.uint64(31))


def _h(*parts: Any) -> np.ndarray:
    """Hash of broadcast uint64 arrays/ints (a keyed SplitMix chain)."""
    acc = np.uint64(0x1234567)
    for p in parts:
        acc = splitmix64(np.asarray(acc, dtype=np.uint64) ^ np.asarray(p, dtype=np.uint64))
    return np.asarray(acc, dtype=np.uint64)


class Plan:
    """The synthetic corpus: who is in which structure (all derived from the doc number)."""

    def __init__(self, docs: int, dup_fraction: float, max_family: int, chain: int, dpf: int):
        self.docs, self.dpf = docs, dpf
        self.files = -(-docs // dpf)
        self.chain = min(chain, docs)
        rng = np.random.default_rng(7)
        budget = max(0, int(docs * dup_fraction) - self.chain)
        sizes = [min(max_family, budget)] if max_family >= 2 and budget >= 2 else []
        left = budget - sum(sizes)
        while left >= 2:
            s = int(min(max_family, left, max(2, 2 / (1 - rng.random()))))  # P(≥s) ∝ 1/s
            sizes.append(s)
            left -= s
        self.sizes = np.array(sizes, dtype=np.int64)
        self.fam_start = np.concatenate(([0], np.cumsum(self.sizes)))
        self.dups = int(self.fam_start[-1])
        # A permutation of [0, docs): position p = (g * A + B) mod docs with gcd(A, docs) = 1.
        a = 0x9E3779B1 % docs or 1
        while np.gcd(a, docs) != 1:
            a += 1
        self.a, self.b = a, 12345 % docs
        self.exact_families = False  # --exact-family: every member an exact copy

    def position(self, g: np.ndarray) -> np.ndarray:
        # a < docs < 2**32: g * a + b fits in uint64.
        gu = g.astype(np.uint64)
        return ((gu * np.uint64(self.a) + np.uint64(self.b)) % np.uint64(self.docs)).astype(
            np.int64
        )

    def roles(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(family id or -1, chain position or -1, member rank in its family) per doc."""
        p = self.position(g)
        chain = np.where(p < self.chain, p, -1)
        q = p - self.chain
        in_fam = (q >= 0) & (q < self.dups)
        fam = np.where(in_fam, np.searchsorted(self.fam_start, q, side="right") - 1, -1)
        rank = np.where(in_fam, q - self.fam_start[fam.clip(0)], -1)
        return fam, chain, rank

    def doc_id(self, g: np.ndarray) -> np.ndarray:
        g = g.astype(np.uint64)
        f = g // np.uint64(self.dpf)
        return (f << np.uint64(32)) | (g - f * np.uint64(self.dpf))


def _file_arrays(plan: Plan, f: int) -> tuple[np.ndarray, ...]:
    lo, hi = f * plan.dpf, min(plan.docs, (f + 1) * plan.dpf)
    g = np.arange(lo, hi, dtype=np.int64)
    fam, chain, _ = plan.roles(g)
    n = len(g)
    band_ids = np.arange(BANDS, dtype=np.uint64)
    perm = np.arange(NUM_PERM, dtype=np.uint64)
    gu = g.astype(np.uint64)[:, None]
    keys = _h(1, gu, band_ids[None, :])
    sig = _h(2, gu, perm[None, :]) & np.uint64(0xFFFFFFFF)
    exact = _h(3, g.astype(np.uint64))
    # Families: base keys/signature of the family; near members change a few values.
    m = np.flatnonzero(fam >= 0)
    if len(m):
        fid = fam[m].astype(np.uint64)[:, None]
        fkeys = _h(4, fid, band_ids[None, :])
        fsig = _h(5, fid, perm[None, :]) & np.uint64(0xFFFFFFFF)
        is_exact = ((_h(6, gu[m, 0]) & np.uint64(1)) == 1) | plan.exact_families
        share = (_h(7, gu[m], band_ids[None, :]) & np.uint64(1)) == 1
        share[np.arange(len(m)), (fam[m] % BANDS)] = True
        share[is_exact] = True
        keys[m] = np.where(share, fkeys, keys[m])
        changed = np.zeros((len(m), NUM_PERM), dtype=bool)
        pick = (
            _h(8, gu[m], np.arange(NEAR_CHANGED, dtype=np.uint64)[None, :]) % np.uint64(NUM_PERM)
        ).astype(np.int64)
        changed[np.arange(len(m))[:, None], pick] = True
        changed[is_exact] = False
        band_of = np.arange(NUM_PERM) // ROWS
        changed &= ~share[:, band_of]  # shared bands keep the family's values (keys agree)
        sig[m] = np.where(changed, sig[m], fsig)
        exact[m[is_exact]] = _h(9, fam[m[is_exact]].astype(np.uint64))
    # Chain: neighbours share band (j mod BANDS); values change every CHAIN_WINDOW steps.
    c = np.flatnonzero(chain >= 0)
    if len(c):
        j = chain[c].astype(np.int64)
        keys[c] = _h(10, gu[c], band_ids[None, :])
        prev_b, next_b = (j - 1) % BANDS, j % BANDS
        has_prev = j > 0
        keys[c[has_prev], prev_b[has_prev]] = _h(11, (j[has_prev] - 1).astype(np.uint64))
        keys[c, next_b] = _h(11, j.astype(np.uint64))
        off = (np.arange(NUM_PERM) * CHAIN_WINDOW) // NUM_PERM
        epoch = (j[:, None] + off[None, :]) // CHAIN_WINDOW
        sig[c] = _h(12, perm[None, :], epoch.astype(np.uint64)) & np.uint64(0xFFFFFFFF)
    # Decoys: unique docs paired by position; a pair shares band 0's key only.
    u = np.flatnonzero((fam < 0) & (chain < 0))
    pos = plan.position(g[u]) - plan.chain - plan.dups
    decoy = pos < int(DECOY_SHARE * plan.docs) * 2
    keys[u[decoy], 0] = _h(13, (pos[decoy] // 2).astype(np.uint64))
    return plan.doc_id(g), keys, exact, sig, n


def write_file(plan: Plan, f: int, work: str) -> int:
    from dataproc.dedup.buckets import BandKeyWriter
    from dataproc.dedup.config import DedupConfig

    docs, keys, exact, sig, _ = _file_arrays(plan, f)
    w = BandKeyWriter(work, f, DedupConfig())
    w.add_batch(docs, keys, exact, sig)
    return w.close()


def expected(plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """Expected removed docs and their kept doc, sorted by doc (from the structure alone)."""
    g = np.arange(plan.docs, dtype=np.int64)
    fam, chain, _ = plan.roles(g)
    ids = plan.doc_id(g)
    group = np.where(fam >= 0, fam + 1, np.where(chain >= 0, 0, -1))
    sel = np.flatnonzero(group >= 0)
    grp, doc = group[sel], ids[sel]
    order = np.lexsort((doc, grp))
    grp, doc = grp[order], doc[order]
    first = np.concatenate(([True], grp[1:] != grp[:-1]))
    kept = doc[np.flatnonzero(first)][np.cumsum(first) - 1]
    rem = ~first
    doc, kept = doc[rem], kept[rem]
    order = np.argsort(doc)
    return doc[order], kept[order]


def _peak_rss() -> int:
    """This process's peak RSS (VmHWM), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measured(fn: Any, *args: Any) -> tuple[Any, dict[str, float]]:
    """Run one phase-2 step function; return its result and its peak RSS, wall and CPU time.

    The worker process is reused (a fresh process per task costs seconds on a loaded machine):
    its peak RSS is reset first (``/proc/self/clear_refs`` 5, Linux), so the number is the
    worker's resident memory at the start (interpreter, Ray, imports, heap kept from earlier
    tasks — an overestimate) plus what this task added at its peak.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, {
        "rss": _peak_rss(),
        "wall": time.perf_counter() - t0,
        "cpu": time.process_time() - c0,
    }


def ray_executor(
    ray: Any,
    memory: int,
    log: list[dict[str, Any]],
    verbose: bool,
    on_done: Any = None,
) -> Any:
    """An ``execute`` for ``run_phase2`` that measures every task; ``on_done(step, unit)`` is
    called as each task's result arrives (in submission order)."""
    remote = ray.remote(measured)

    def execute(step: str, calls: list[tuple[str, Any, tuple[Any, ...]]]) -> dict[str, Any]:
        t0 = time.perf_counter()
        refs = {
            unit: remote.options(num_cpus=1, memory=memory).remote(fn, *args)
            for unit, fn, args in calls
        }
        out = {}
        for unit, ref in refs.items():
            res, m = ray.get(ref)
            out[unit] = res
            if on_done is not None:
                on_done(step, unit)
            log.append({"step": step, "unit": unit, **m})
            if verbose:
                print(
                    f"  {step:<22} {unit:>5}  rss {m['rss'] / 2**20:7.1f} MiB  "
                    f"wall {m['wall']:6.2f} s  cpu {m['cpu']:6.2f} s",
                    flush=True,
                )
        steps = [r for r in log if r["step"] == step]
        print(
            f"{step}: {len(calls)} tasks, {time.perf_counter() - t0:.1f} s, max task rss "
            f"{max(r['rss'] for r in steps) / 2**20:.0f} MiB",
            flush=True,
        )
        return out

    return execute


# Measured: 1,663 bytes of band files per document (15 rows x (112-byte sketch + key, doc,
# band)); compaction writes the same again, phase-2 edges and rounds are small next to it.
BAND_BYTES_PER_DOC = 1700


def _check_disk(args: argparse.Namespace) -> None:
    """Fail before generating anything when the scratch disk cannot hold the largest case."""
    os.makedirs(args.workdir, exist_ok=True)
    largest = max([*args.docs, 0 if args.no_cases else max(args.chain, args.max_family)])
    copies = 1.2 if args.free_compacted else 2.1
    need = int(largest * BAND_BYTES_PER_DOC * copies)
    free = shutil.disk_usage(args.workdir).free
    if need > free:
        hint = "" if args.free_compacted else " (--free-compacted needs about half)"
        sys.exit(
            f"dedup_scaling: {largest:,} docs need ~{need / 1e9:.0f} GB of scratch in "
            f"{args.workdir}, {free / 1e9:.0f} GB free{hint}"
        )


def run_case(name: str, plan: Plan, workdir: str, args: argparse.Namespace) -> dict[str, Any]:
    import multiprocessing as mp

    import pyarrow.parquet as pq
    import ray

    from dataproc.dedup.clusters import BandSource, run_phase2
    from dataproc.dedup.config import DedupConfig
    from dataproc.io.layout import band_file

    work = os.path.join(workdir, name)
    t0 = time.perf_counter()
    if args.reuse and all(os.path.exists(band_file(work, f)) for f in range(plan.files)):
        shutil.rmtree(os.path.join(work, "dedup"), ignore_errors=True)
        rows = [pq.ParquetFile(band_file(work, f)).metadata.num_rows for f in range(plan.files)]
    else:
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        with mp.get_context("spawn").Pool(args.workers) as pool:
            rows = pool.starmap(write_file, [(plan, f, work) for f in range(plan.files)])
    write_s = time.perf_counter() - t0
    band_bytes = sum(os.path.getsize(band_file(work, f)) for f in range(plan.files))
    print(
        f"[{name}] {plan.docs:,} docs in {plan.files} files written in {write_s:.0f} s "
        f"({band_bytes / plan.docs:.0f} B/doc on disk); load {os.getloadavg()}",
        flush=True,
    )
    sources = [BandSource(band_file(work, f), f, f, rows[f]) for f in range(plan.files)]
    cfg = DedupConfig(task_memory=args.task_memory)
    log: list[dict[str, Any]] = []
    freed = [0]

    def free_compacted(step: str, unit: str) -> None:
        # The band files of compaction group ``unit`` were generated by this bench and are
        # never read again once their merged file is written (later tasks read the merged
        # files; the row counts come from ``sources``): delete them, so the peak disk is the
        # corpus plus the groups in flight instead of two copies of the corpus.
        if step != "dedup-compact" or not args.free_compacted:
            return
        size = cfg.compact_inputs
        for f in range(int(unit) * size, min(plan.files, (int(unit) + 1) * size)):
            path = band_file(work, f)
            freed[0] += os.path.getsize(path)
            os.remove(path)

    t0 = time.perf_counter()
    summary = run_phase2(
        sources, [0], list(range(plan.files)), os.path.join(work, "dedup"), cfg,
        ray_executor(ray, cfg.task_memory, log, args.verbose, free_compacted),
    )  # fmt: skip
    phase2 = time.perf_counter() - t0
    docs, kept = [], []
    for f in range(plan.files):
        t = pq.read_table(os.path.join(work, "dedup", "removed", f"{f:06d}.parquet"))
        docs.append(t.column("doc").to_numpy())
        kept.append(t.column("kept").to_numpy())
    got_doc, got_kept = np.concatenate(docs), np.concatenate(kept)
    want_doc, want_kept = expected(plan)
    ok = bool(np.array_equal(got_doc, want_doc) and np.array_equal(got_kept, want_kept))
    objects = sum(len(files) for _, _, files in os.walk(os.path.join(work, "dedup")))
    dedup_bytes = sum(
        os.path.getsize(os.path.join(d, f))
        for d, _, files in os.walk(os.path.join(work, "dedup"))
        for f in files
    )
    steps = [r["step"] for r in log]
    result = {
        "case": name,
        "docs": plan.docs,
        "files": plan.files,
        "max_family": int(plan.sizes.max()) if len(plan.sizes) else 0,
        "chain": plan.chain,
        "families": len(plan.sizes),
        "band_rows": int(sum(rows)),
        "band_bytes_per_doc": round(band_bytes / plan.docs, 1),
        "write_seconds": round(write_s, 1),
        "phase2_seconds": round(phase2, 1),
        "max_task_rss_bytes": max(r["rss"] for r in log),
        "max_task_rss_by_step": {
            s: max(r["rss"] for r in log if r["step"] == s) for s in dict.fromkeys(steps)
        },
        "seconds_by_step": {
            s: round(sum(r["wall"] for r in log if r["step"] == s), 1) for s in dict.fromkeys(steps)
        },
        "task_cpu_seconds": round(sum(r["cpu"] for r in log), 1),
        "tasks": summary.tasks,
        "phase2_objects": objects,
        "phase2_bytes": dedup_bytes,
        "band_files_freed_bytes": freed[0],
        "removed": len(got_doc),
        "expected_removed": len(want_doc),
        "removed_ok": ok,
        "pairs_rejected": summary.pairs_rejected,
        "load_after": os.getloadavg(),
    }
    print(json.dumps(result), flush=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--docs", type=int, nargs="+", default=[1_000_000])
    p.add_argument("--dup-fraction", type=float, default=0.3)
    p.add_argument("--max-family", type=int, default=1_000_000)
    p.add_argument("--chain", type=int, default=100_000)
    p.add_argument(
        "--docs-per-file",
        type=int,
        default=11_000,
        help="documents per band file (phase-1 survivors of one input: ~1 B / 90 k inputs of "
        "a whole dump is ~11 k)",
    )
    p.add_argument(
        "--free-compacted",
        action="store_true",
        help="delete each group's generated band files once compaction has merged them (peak "
        "disk ≈ one copy of the band files instead of two)",
    )
    p.add_argument("--task-memory", type=int, default=1 << 30, help="dedup.task_memory")
    p.add_argument(
        "--exact-family",
        action="store_true",
        help="families of the --docs runs are exact copies only (one exact group of K "
        "documents: every band key and the exact key shared by all K, like a template page)",
    )
    p.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray cluster")
    p.add_argument("--workdir", required=True, help="scratch folder")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--no-cases", action="store_true", help="skip the chain/family-only runs")
    p.add_argument("--verbose", action="store_true", help="one line per task")
    p.add_argument("--keep", action="store_true", help="keep the work files")
    p.add_argument(
        "--reuse", action="store_true", help="reuse band files left by an earlier --keep run"
    )
    args = p.parse_args()
    if args.free_compacted and (args.keep or args.reuse):
        p.error("--free-compacted deletes the generated band files: not with --keep/--reuse")
    _check_disk(args)

    from dataproc.runner.ray_runtime import ensure_loopback_env

    ensure_loopback_env()  # a local cluster on 127.0.0.1 only, like every dataproc run
    import ray

    ray.init(
        num_cpus=args.workers,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        logging_level="ERROR",
    )
    results = []
    try:
        if not args.no_cases:
            results.append(
                run_case(
                    "chain",
                    Plan(args.chain, 1.0, 0, args.chain, args.docs_per_file),
                    args.workdir,
                    args,
                )
            )
            results.append(
                run_case(
                    "family",
                    Plan(args.max_family, 1.0, args.max_family, 0, args.docs_per_file),
                    args.workdir,
                    args,
                )
            )
        for n in args.docs:
            plan = Plan(n, args.dup_fraction, args.max_family, args.chain, args.docs_per_file)
            plan.exact_families = args.exact_family
            results.append(run_case(f"n{n}", plan, args.workdir, args))
    finally:
        ray.shutdown()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    print("| case | docs | phase-2 s | max task RSS MiB | tasks | objects | removed ok |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['case']} | {r['docs']:,} | {r['phase2_seconds']} | "
            f"{r['max_task_rss_bytes'] / 2**20:.0f} | {r['tasks']} | {r['phase2_objects']} | "
            f"{r['removed_ok']} |"
        )
    return 0 if all(r["removed_ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
