"""Where every file of a run lives under the output folder (one place, so names never drift)."""

from __future__ import annotations

from dataproc.io import fs

# Every top-level entry a run creates under OUT: the only names ``--overwrite`` ever deletes.
RUN_ENTRIES = (
    "tokens",
    "rejects",
    "logs",
    "_work",
    "manifest.json",
    "stats.json",
    "report.html",
    "README.md",  # the dataset card (dataproc/io/card.py)
)
LOCK_DIR = "_lock"


class OutputLayout:
    """Paths inside ``OUT``. File names come from our own counters, never from the data."""

    def __init__(self, out_dir: str) -> None:
        self.out = out_dir.rstrip("/") if fs.is_remote(out_dir) else out_dir

    def p(self, *parts: str) -> str:
        return fs.join(self.out, *parts)

    # final outputs
    @property
    def tokens_dir(self) -> str:
        return self.p("tokens")

    @property
    def manifest(self) -> str:
        return self.p("manifest.json")

    @property
    def stats(self) -> str:
        return self.p("stats.json")

    @property
    def report(self) -> str:
        return self.p("report.html")

    @property
    def rejects_dir(self) -> str:
        return self.p("rejects")

    def rejects(self, input_index: int, phase: str) -> str:
        return self.p("rejects", f"{input_index:06d}-{phase}.parquet")

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

    def docs(self, input_index: int) -> str:
        return self.p("_work", "docs", f"{input_index:06d}.parquet")

    @property
    def bands_dir(self) -> str:
        return self.p("_work", "bands")

    @property
    def dedup_dir(self) -> str:
        return self.p("_work", "dedup")

    def removed(self, input_index: int) -> str:
        return self.p("_work", "dedup", "removed", f"{input_index:06d}.parquet")

    def marker(self, name: str) -> str:
        return self.p("_work", "done", f"{name}.json")

    def phase1_marker(self, input_index: int) -> str:
        return self.marker(f"{input_index:06d}-phase1")

    def phase3_marker(self, input_index: int) -> str:
        return self.marker(f"{input_index:06d}-phase3")

    @property
    def phase2_marker(self) -> str:
        return self.marker("phase2")

    @property
    def logs_dir(self) -> str:
        return self.p("logs")
