"""Where every file lives under an output folder: the one module that names them.

Everything a run, ``dataproc remove`` or ``dataproc reshard`` writes into ``OUT``, and
everything a reader (report, verify, resume, ``--dedup-against``) looks for there, takes its
path from here, so names never drift between writer and reader. File names come from our own
counters (the input's index in the sorted input list, part numbers), never from the data.
"""

from __future__ import annotations

from dataproc.io import fs

TOKENS_DIR = "tokens"
TOKEN_FILES_GLOB = f"{TOKENS_DIR}/*.parquet"
"""What a loader reads: every Parquet file in ``tokens/`` and nothing else."""
CARD_NAME = "README.md"
"""The dataset card (dataproc/io/card.py)."""
MANIFEST_NAME = "manifest.json"

# Every top-level entry a run creates under OUT: the only names ``--overwrite`` ever deletes.
RUN_ENTRIES = (
    TOKENS_DIR,
    "rejects",
    "logs",
    "_work",
    MANIFEST_NAME,
    "stats.json",
    "report.html",
    CARD_NAME,
)
LOCK_DIR = "_lock"
REMOVE_DIR = ("_work", "remove")
"""Staging folders of ``dataproc remove`` requests."""
RESHARD_SPILL_DIR = "_reshard"
"""Where ``dataproc reshard`` spills its buckets inside the destination (deleted at the end)."""


def token_file(input_index: int, part: int) -> str:
    """Relative path of a token file: ``tokens/part-{input_index:06d}-{part:04d}.parquet``."""
    return f"{TOKENS_DIR}/part-{input_index:06d}-{part:04d}.parquet"


def tombstone_file(digest: str) -> str:
    """Relative path of the tombstone list of a ``dataproc remove`` request."""
    return f"removals/{digest[:16]}.parquet"


def reshard_spill_file(k: int, index: int) -> str:
    """Relative path of the part of source file ``index`` spilled for output file ``k``."""
    return f"{RESHARD_SPILL_DIR}/{k:06d}/{index:06d}.parquet"


def band_folder(work_dir: str) -> str:
    """The band-key files of a run's ``_work`` folder, a range's part folder or a scratch
    folder laid out like one."""
    return fs.join(work_dir, "bands")


def band_file(work_dir: str, input_index: int) -> str:
    """Where input file ``input_index`` writes its band keys (dataproc/dedup/buckets.py)."""
    return fs.join(band_folder(work_dir), f"{input_index:06d}.parquet")


def sorted_run_file(out_path: str, run: int) -> str:
    """A sorted run spilled beside a phase-2 output while it is written (merged into
    ``out_path`` and deleted by ``dataproc.dedup.runs.SortedPairs``)."""
    return f"{out_path}.run{run:05d}"


def marker_unit(name: str) -> tuple[int | None, str]:
    """``(input_index, phase)`` of a done-marker's file name: ``000003-phase1.json`` is
    ``(3, "phase1")``, ``phase2.json`` (run-wide) is ``(None, "phase2")``."""
    stem = name.rsplit("/", 1)[-1].removesuffix(".json")
    index, sep, phase = stem.rpartition("-")
    if sep and index.isdigit():
        return int(index), phase
    return None, stem


class DedupLayout:
    """Files of phase 2 inside its work folder (``OUT/_work/dedup``, or a scratch folder)."""

    def __init__(self, dedup_dir: str) -> None:
        self.dir = dedup_dir

    def edges(self, bucket: int) -> str:
        """Verified candidate edges of bucket task ``bucket``."""
        return fs.join(self.dir, "edges", f"{bucket:05d}.parquet")

    def exact(self, bucket: int) -> str:
        """Exact-text duplicate pairs of bucket task ``bucket``."""
        return fs.join(self.dir, "exact", f"{bucket:05d}.parquet")

    def compacted(self, batch: int) -> str:
        """Band files of one batch of inputs merged into one (``dedup.compact_inputs``)."""
        return fs.join(self.dir, "compact", f"{batch:05d}.parquet")

    def star_round(self, rounds: int, kind: str, part: int) -> str:
        """Edges after a large-star (``kind="l"``) or small-star (``"s"``) round."""
        return fs.join(self.dir, "cc", f"r{rounds:03d}-{kind}-{part:05d}.parquet")

    @property
    def removed_dir(self) -> str:
        return fs.join(self.dir, "removed")

    def removed(self, input_index: int) -> str:
        """Where the removed documents of input ``input_index`` are listed (phase 3's input)."""
        return fs.join(self.dir, "removed", f"{input_index:06d}.parquet")


class OutputLayout:
    """Paths inside ``OUT``."""

    def __init__(self, out_dir: str) -> None:
        self.out = out_dir.rstrip("/") if fs.is_remote(out_dir) else out_dir

    def p(self, *parts: str) -> str:
        return fs.join(self.out, *parts)

    # final outputs
    @property
    def tokens_dir(self) -> str:
        return self.p(TOKENS_DIR)

    @property
    def manifest(self) -> str:
        return self.p(MANIFEST_NAME)

    @property
    def stats(self) -> str:
        return self.p("stats.json")

    @property
    def report(self) -> str:
        return self.p("report.html")

    @property
    def card(self) -> str:
        return self.p(CARD_NAME)

    @property
    def rejects_dir(self) -> str:
        return self.p("rejects")

    def rejects(self, input_index: int, phase: str) -> str:
        return self.p("rejects", f"{input_index:06d}-{phase}.parquet")

    @property
    def logs_dir(self) -> str:
        return self.p("logs")

    def log(self, input_index: int) -> str:
        """The JSON-lines log of input file ``input_index`` (dataproc/logs.py)."""
        return self.p("logs", f"{input_index:06d}.log")

    @property
    def progress_log(self) -> str:
        """The driver's progress snapshots (the report's throughput-over-time chart)."""
        return self.p("logs", "progress.jsonl")

    @property
    def removals_dir(self) -> str:
        """Tombstone lists of ``dataproc remove`` requests (``tombstone_file``)."""
        return self.p("removals")

    def run_entries(self) -> list[str]:
        """Full paths of the top-level entries a run creates (see ``RUN_ENTRIES``)."""
        return [self.p(name) for name in RUN_ENTRIES]

    @property
    def lock_dir(self) -> str:
        """``OUT/_lock/``: one lease per run that wants the folder (dataproc.io.lock)."""
        return self.p(LOCK_DIR)

    # work state (resumable)
    @property
    def work(self) -> str:
        return self.p("_work")

    @property
    def run_state(self) -> str:
        return self.p("_work", "run.json")

    @property
    def docs_dir(self) -> str:
        return self.p("_work", "docs")

    def docs(self, input_index: int) -> str:
        return self.p("_work", "docs", f"{input_index:06d}.parquet")

    @property
    def bands_dir(self) -> str:
        return band_folder(self.work)

    def bands(self, input_index: int) -> str:
        return band_file(self.work, input_index)

    @property
    def ranges_dir(self) -> str:
        """Part folders of the inputs phase 1 reads in byte ranges (runner/ranges.py)."""
        return self.p("_work", "ranges")

    def range_dir(self, input_index: int, k: int) -> str:
        """Range ``k`` of input ``input_index``: its survivors, rejects, band keys, marker."""
        return self.p("_work", "ranges", f"{input_index:06d}-{k:03d}")

    def range_docs(self, input_index: int, k: int) -> str:
        return fs.join(self.range_dir(input_index, k), "docs.parquet")

    def range_rejects(self, input_index: int, k: int) -> str:
        return fs.join(self.range_dir(input_index, k), "rejects.parquet")

    def range_marker(self, input_index: int, k: int) -> str:
        """Range ``k``'s done-marker (in its part folder, not in ``_work/done``)."""
        return fs.join(self.range_dir(input_index, k), "done.json")

    @property
    def dedup_dir(self) -> str:
        return self.p("_work", "dedup")

    @property
    def dedup(self) -> DedupLayout:
        return DedupLayout(self.dedup_dir)

    def removed(self, input_index: int) -> str:
        return self.dedup.removed(input_index)

    @property
    def robots_index_dir(self) -> str:
        """Where a run builds its robots.txt index (dataproc/consent/prepare.py)."""
        return self.p("_work", "consent", "robots")

    @property
    def decontam_index_dir(self) -> str:
        """Where a run builds its decontamination index."""
        return self.p("_work", "decontam")

    def remove_stage(self, digest: str) -> str:
        """Staging folder of a ``dataproc remove`` request (rolled forward after a crash)."""
        return self.p(*REMOVE_DIR, digest[:16])

    @property
    def remove_dir(self) -> str:
        return self.p(*REMOVE_DIR)

    @property
    def reshard_dir(self) -> str:
        return self.p(RESHARD_SPILL_DIR)

    def reshard_spill_dir(self, k: int) -> str:
        """Spilled parts of ``dataproc reshard``'s output file ``k`` (``reshard_spill_file``)."""
        return self.p(RESHARD_SPILL_DIR, f"{k:06d}")

    @property
    def done_dir(self) -> str:
        """Done-markers of the units of work (``marker``)."""
        return self.p("_work", "done")

    def marker(self, name: str) -> str:
        return self.p("_work", "done", f"{name}.json")

    def phase1_marker(self, input_index: int) -> str:
        return self.marker(f"{input_index:06d}-phase1")

    def phase3_marker(self, input_index: int) -> str:
        return self.marker(f"{input_index:06d}-phase3")

    @property
    def phase2_marker(self) -> str:
        return self.marker("phase2")
