"""Phase 3, one input file: phase 1's survivors → drop run-wide duplicates → tokenize → shards."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from dataproc.config import PipelineConfig
from dataproc.errors import DedupError
from dataproc.io import fs
from dataproc.io.documents import DocsSource
from dataproc.io.layout import OutputLayout
from dataproc.io.markers import MarkerError, TokenizeMarker, parse_marker
from dataproc.io.rejects import RejectWriter
from dataproc.stages.base import Stage, run_flow
from dataproc.stages.remove_duplicates import RemoveDuplicates
from dataproc.stats import StatsSet

_TOKENIZER_CACHE: dict[str, Any] = {}


def _tokenizer_stage(config: PipelineConfig) -> Stage:
    from dataproc.stages.tokenize import Tokenizer

    key = config.tokenizer.model_dump_json()
    if key not in _TOKENIZER_CACHE:
        stage = Tokenizer(config.tokenizer)
        stage.setup()
        _TOKENIZER_CACHE.clear()
        _TOKENIZER_CACHE[key] = stage
    return _TOKENIZER_CACHE[key]


def _load_removed(path: str, input_index: int, sha256: str) -> dict[int, tuple[int, str]]:
    """The removed documents of one input: ``{doc_index: (kept doc_index, reason)}``.

    The file must be exactly the one phase 2's result was computed from (``sha256``): a
    missing file is an error, never "nothing removed", and so is a changed one.
    """
    from dataproc.runner.dedup_result import read_removal_file

    data, t = read_removal_file(path, input_index)
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise DedupError(
            f"{path}: sha256 {got[:12]}… is not the {sha256[:12]}… phase 2 recorded; the file "
            "changed after dedup (another run writing this folder?). Delete "
            "_work/done/phase2.json in the output folder and rerun to redo dedup"
        )
    docs = t.column("doc").to_pylist()
    kept = t.column("kept").to_pylist()
    reasons = t.column("reason").to_pylist()
    return {d: (k, r) for d, k, r in zip(docs, kept, reasons, strict=True)}


def _earlier_parts(layout: OutputLayout, input_index: int) -> set[str]:
    """Token files an earlier phase-3 run of this input recorded (a retry, or an earlier dedup
    generation); read from its marker, so no listing of ``tokens/`` (90,000 inputs on S3)."""
    path = layout.phase3_marker(input_index)
    if not fs.exists(path):
        return set()
    try:
        marker = parse_marker(TokenizeMarker, fs.read_json(path), path)
    except (OSError, ValueError, MarkerError):
        return set()  # not one we wrote: its files are not ours to remove
    return {f.path for f in marker.files}


def run_phase3(
    input_path: str,
    input_index: int,
    config: PipelineConfig,
    out_dir: str,
    tokenizer: dict,
    *,
    generation: str,
    dedup_result: str | None = None,
    removed_sha256: str | None = None,
) -> TokenizeMarker:
    """Tokenize the surviving documents of one input file; return its marker (the task adds
    the rejects file it wrote).

    ``generation`` keys the marker on phase 2's result. With dedup on, ``dedup_result`` (the
    digest of phase 2's result, see ``dataproc.runner.dedup_result``) and ``removed_sha256``
    (this input's removal file in it) are required: phase 3 never runs against an unfinished
    or unknown dedup.
    """
    from dataproc.io.token_writer import TokenShardWriter

    started = time.time()
    layout = OutputLayout(out_dir)
    removed: dict[int, tuple[int, str]] = {}
    if config.dedup.enabled:
        if dedup_result is None or removed_sha256 is None:
            raise DedupError(
                f"phase 3 of input {input_index} was started without phase 2's result; "
                "dedup must finish first (this is a bug in the caller)"
            )
        removed = _load_removed(layout.removed(input_index), input_index, removed_sha256)
    stats = StatsSet()
    rejects = RejectWriter(layout.rejects(input_index, "dedup"), config.write.rejects_text)
    earlier = _earlier_parts(layout, input_index)
    stages: list[Stage] = [RemoveDuplicates(removed), _tokenizer_stage(config)]
    writer = TokenShardWriter(
        out_dir, input_index, config.write, tokenizer, dedup_result=dedup_result
    )
    (files,) = run_flow(DocsSource(layout.docs(input_index)), stages, [writer], stats, rejects)
    # Same config and inputs rewrite the same names; a new dedup generation may need fewer
    # parts, and a leftover part would be read by every Parquet reader: remove it.
    for stale in sorted(earlier - {f.path for f in files}):
        fs.remove(fs.join(out_dir, stale))
    rejects.close()
    return TokenizeMarker(
        input_index=input_index,
        input=input_path,
        fingerprint=config.fingerprint(),
        dedup_result=dedup_result,
        files=files,
        stats=stats.to_list(),
        seconds=round(time.time() - started, 3),
        generation=generation,
    )
