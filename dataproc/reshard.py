"""``dataproc reshard OUT --files N --output NEW``: a global shuffle into N equal files.

Two streaming passes, so memory is bounded by one input row group (pass 1) and one output
file (pass 2), never the dataset:

1. **Assign and spill.** Walking the input files in manifest order, each document is sent to
   one of the N outputs by "power of two choices": two outputs are drawn at random (seeded)
   and the one with fewer tokens so far wins. That spreads every input over all outputs and
   keeps output sizes within a few documents' tokens of each other. Rows are appended to
   ``NEW/_reshard/{k:06d}/{i:06d}.parquet`` (output ``k``, input file ``i``).
2. **Shuffle within each output.** Output ``k``'s spill files are read, its rows permuted with
   a permutation seeded by ``(seed, k)``, and written as ``tokens/part-{k:06d}-0000.parquet``
   in the source's format and compression. The spill folder is then removed.

The result is a complete output folder with its own manifest (``input_index`` of a file is its
output number; ``resharded_from`` names the source). Same source + N + seed ⇒ identical bytes.
With ``use_ray=True`` both passes run as Ray tasks (one per input file, then one per output).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from dataproc.errors import OutputError
from dataproc.io import fs
from dataproc.io.layout import OutputLayout, reshard_spill_file, token_file
from dataproc.io.manifest import build_manifest, read_manifest, write_manifest
from dataproc.io.token_writer import ParquetFileSink, TokenFileInfo, token_schema

if TYPE_CHECKING:
    from dataproc.config import ExecutionConfig

_SEED_TAG_ASSIGN = 0xA551
_SEED_TAG_PERM = 0x9E53


def _output_config(manifest: dict) -> Any:
    from dataproc.config import OutputConfig

    return OutputConfig(**(manifest.get("config", {}).get("write") or {}))


def _assign(src: str, manifest: dict, num_files: int, seed: int) -> list[np.ndarray]:
    """Output number of every row of every input file (reads only ``num_tokens``)."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng([seed, _SEED_TAG_ASSIGN])
    load = np.zeros(num_files, dtype=np.int64)
    result = []
    for entry in manifest["files"]:
        with fs.open_input(fs.join(src, entry["path"])) as handle:
            tokens = pq.ParquetFile(handle).read(columns=["num_tokens"]).column(0).to_numpy()
        picks = rng.integers(0, num_files, size=(len(tokens), 2))
        out = np.empty(len(tokens), dtype=np.int32)
        for r, (a, b) in enumerate(picks):
            k = a if load[a] <= load[b] else b
            out[r] = k
            load[k] += tokens[r]
        result.append(out)
    return result


def _spill_input(
    src: str, dst: str, index: int, rel: str, assignment: np.ndarray, config: Any
) -> None:
    """Pass 1 for one input file: append its rows to the spill file of their output."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writers: dict[int, Any] = {}
    row0 = 0
    try:
        with fs.open_input(fs.join(src, rel)) as handle:
            pf = pq.ParquetFile(handle)
            for rg in range(pf.num_row_groups):
                table = pf.read_row_group(rg)
                target = assignment[row0 : row0 + table.num_rows]
                row0 += table.num_rows
                for k in np.unique(target):
                    rows = table.take(pa.array(np.flatnonzero(target == k)))
                    if int(k) not in writers:
                        rel_spill = reshard_spill_file(int(k), index)
                        writers[int(k)] = ParquetFileSink(dst, rel_spill, pf.schema_arrow, config)
                    writers[int(k)].write_table(rows, 0)
    finally:
        for sink in writers.values():
            sink.close(index)


def _write_output(
    dst: str, k: int, config: Any, tokenizer: dict, seed: int
) -> TokenFileInfo | None:
    """Pass 2 for output ``k``: gather its spill files, permute rows, write the final file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = []
    for path in fs.listdir(OutputLayout(dst).reshard_spill_dir(k)):
        with fs.open_input(path) as handle:
            parts.append(pq.ParquetFile(handle).read())
    if not parts:
        return None
    table = pa.concat_tables(parts)
    perm = np.random.default_rng([seed, _SEED_TAG_PERM, k]).permutation(table.num_rows)
    table = table.take(pa.array(perm))
    legacy = "warc_target_uri" not in table.column_names  # an output from before that column
    schema = token_schema(
        config.keep_text, str(tokenizer["name"]), int(tokenizer["eot_id"]), legacy=legacy
    )
    table = table.select(schema.names).cast(schema)
    sink = ParquetFileSink(dst, token_file(k, 0), schema, config)
    step = config.row_group_rows
    num_tokens = table.column("num_tokens").to_numpy()
    for s in range(0, table.num_rows, step):
        sink.write_table(table.slice(s, step), int(num_tokens[s : s + step].sum(dtype=np.int64)))
    return sink.close(k)


def reshard(
    src: str,
    dst: str,
    *,
    num_files: int,
    seed: int = 0,
    use_ray: bool = False,
    execution: ExecutionConfig | None = None,
) -> dict:
    """Shuffle all documents of ``src`` into ``num_files`` near-equal files under ``dst``.

    ``use_ray``: both passes as Ray tasks, on the cluster ``execution`` names (default: a
    loopback-only local one, started and stopped like a run's, ``runner/ray_runtime.py``).
    Returns the new manifest (also written to ``dst/manifest.json``).
    """
    started = time.time()
    if num_files < 1:
        raise OutputError(f"--files {num_files}: must be >= 1")
    if fs.join(src, "") == fs.join(dst, ""):
        raise OutputError("reshard output must be a different folder than its source")
    out = OutputLayout(dst)
    if fs.exists(out.manifest) or fs.listdir(out.tokens_dir):
        raise OutputError(f"{dst}: already holds an output; choose an empty folder")
    manifest = read_manifest(src)
    config = _output_config(manifest)
    tokenizer = manifest["tokenizer"]
    assignment = _assign(src, manifest, num_files, seed)
    entries = manifest["files"]
    if use_ray:
        from dataproc.config import ExecutionConfig
        from dataproc.runner.ray_runtime import ray_session

        with ray_session(execution or ExecutionConfig()) as ray:
            spill = ray.remote(_spill_input)
            ray.get(
                [
                    spill.remote(src, dst, i, e["path"], a, config)
                    for i, (e, a) in enumerate(zip(entries, assignment, strict=True))
                ]
            )
            write = ray.remote(_write_output)
            infos = ray.get(
                [write.remote(dst, k, config, tokenizer, seed) for k in range(num_files)]
            )
    else:
        for i, (e, a) in enumerate(zip(entries, assignment, strict=True)):
            _spill_input(src, dst, i, e["path"], a, config)
        infos = [_write_output(dst, k, config, tokenizer, seed) for k in range(num_files)]
    fs.remove(OutputLayout(dst).reshard_dir, recursive=True)
    finished = time.time()
    new = build_manifest(
        pipeline=manifest.get("pipeline", ""),
        config=manifest.get("config", {}),
        config_fingerprint=manifest.get("config_fingerprint", ""),
        tokenizer=tokenizer,
        inputs=manifest.get("inputs", []),
        files=[f for f in infos if f is not None],
        timings={
            "started": datetime.fromtimestamp(started, timezone.utc).isoformat(),
            "finished": datetime.fromtimestamp(finished, timezone.utc).isoformat(),
            "seconds": round(finished - started, 3),
        },
    )
    new["resharded_from"] = {
        "path": src,
        "num_files": num_files,
        "seed": seed,
        "config_fingerprint": manifest.get("config_fingerprint"),
        "totals": manifest["totals"],
    }
    write_manifest(dst, new)
    return new
