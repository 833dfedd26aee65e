"""Evaluation sets → the run's decontamination index (``OUT/_work/decontam/``).

Files written:

- ``index.npz``: ``keys`` (sorted unique uint64 n-gram hashes) and ``sets`` (uint16, the first
  set, in config order, that holds each key);
- ``meta.json``: per set its source, the sha256 of the file, items read, items indexed, items
  too short to index, and n-grams; plus ``n`` and the gram lengths present.

Items with ``n`` words or more contribute all their ``n``-grams. Items with fewer words (short
questions and answers) but at least ``min_item_words`` contribute themselves whole, as one
gram of their own length; shorter items are counted as ``items_too_short`` and not indexed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from dataproc.decontam.ngrams import gram_hashes, normalized_words, word_hashes
from dataproc.errors import ConfigError, InputError
from dataproc.io import fs

INDEX_VERSION = 1
_FILTER_SLOTS = 1 << 24


def _field_text(row: dict[str, Any], fields: list[str], source: str) -> str:
    parts: list[str] = []
    for name in fields:
        if name not in row:
            raise InputError(f"{source}: item has no field {name!r} (fields: {sorted(row)})")
        value = row[name]
        if isinstance(value, list):
            parts.extend(str(v) for v in value)
        elif value is not None:
            parts.append(str(value))
    return "\n".join(parts)


def iter_items(spec: Any) -> Iterator[str]:
    """Texts of one evaluation set: a local JSONL/JSON/Parquet file or a Hugging Face dataset."""
    fields = [spec.field] if isinstance(spec.field, str) else list(spec.field)
    if spec.path:
        path = spec.path
        if not fs.exists(path):
            raise InputError(f"decontaminate set {spec.name!r}: no such file {path}")
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            with fs.open_input(path) as f:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=4096):
                    for row in batch.to_pylist():
                        yield _field_text(row, fields, path)
            return
        with fs.open_input(path) as f:
            data = f.read().decode("utf-8")
        if path.endswith(".json"):
            rows = json.loads(data)
            if not isinstance(rows, list):
                raise InputError(f"{path}: a .json eval set must be a list of objects")
        else:
            rows = []
            for n, line in enumerate(data.splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError as e:
                        raise InputError(f"{path}:{n}: not a JSON line ({e})") from None
        for row in rows:
            if not isinstance(row, dict):
                raise InputError(f"{path}: items must be JSON objects")
            yield _field_text(row, fields, path)
        return
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - datasets is optional
        raise ConfigError(
            f"decontaminate set {spec.name!r}: Hugging Face datasets need `pip install datasets`"
        ) from e
    try:
        ds = datasets.load_dataset(spec.hf, spec.hf_config, split=spec.split)
    except Exception as e:
        raise InputError(
            f"decontaminate set {spec.name!r}: cannot load Hugging Face dataset {spec.hf!r} "
            f"({type(e).__name__}: {str(e)[:200]}); offline? give a local `path` instead"
        ) from None
    for row in ds:
        yield _field_text(dict(row), fields, spec.hf)


def build_index(config: Any, out_dir: str) -> dict[str, Any]:
    """Read every configured set once and write ``out_dir``/index.npz + meta.json."""
    n = config.ngram
    keys: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    sets_meta = []
    lengths: set[int] = set()
    for set_id, spec in enumerate(config.sets):
        items = indexed = too_short = grams = 0
        for text in iter_items(spec):
            items += 1
            words = normalized_words(text)
            if len(words) >= n:
                g = gram_hashes(word_hashes(words), n)
                lengths.add(n)
            elif len(words) >= config.min_item_words:
                g = gram_hashes(word_hashes(words), len(words))
                lengths.add(len(words))
            else:
                too_short += 1
                continue
            indexed += 1
            grams += int(g.size)
            keys.append(g)
            owners.append(np.full(g.size, set_id, dtype=np.uint16))
        sets_meta.append(
            {
                "name": spec.name,
                "source": spec.path or f"hf:{spec.hf}" + (f"/{spec.split}" if spec.split else ""),
                "sha256": fs.sha256_file(spec.path) if spec.path else None,
                "items": items,
                "items_indexed": indexed,
                "items_too_short": too_short,
                "ngrams": grams,
            }
        )
    all_keys = np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64)
    all_sets = np.concatenate(owners) if owners else np.zeros(0, dtype=np.uint16)
    # Sort by (key, set) so each key is owned by the first set that holds it.
    order = np.lexsort((all_sets, all_keys))
    all_keys, all_sets = all_keys[order], all_sets[order]
    first = np.ones(all_keys.size, dtype=bool)
    first[1:] = all_keys[1:] != all_keys[:-1]
    all_keys, all_sets = all_keys[first], all_sets[first]
    fs.makedirs(out_dir)
    path = fs.join(out_dir, "index.npz")
    with fs.atomic_write(path) as f:
        np.savez(f, keys=all_keys, sets=all_sets)
    meta = {
        "version": INDEX_VERSION,
        "n": n,
        "min_item_words": config.min_item_words,
        "lengths": sorted(lengths),
        "keys": int(all_keys.size),
        "sets": sets_meta,
        "index_sha256": fs.sha256_file(path),
    }
    fs.write_json_atomic(fs.join(out_dir, "meta.json"), meta)
    return meta


class DecontamIndex:
    """Read side: ``lookup(keys)`` gives, per key, the owning set id or -1."""

    def __init__(self, index_dir: str) -> None:
        meta_path = fs.join(index_dir, "meta.json")
        if not fs.exists(meta_path):
            raise InputError(f"{index_dir}: not a decontamination index (no meta.json)")
        self.meta = fs.read_json(meta_path)
        with fs.open_input(fs.join(index_dir, "index.npz")) as f:
            data = np.load(f, allow_pickle=False)
            self.keys = data["keys"]
            self.sets = data["sets"]
        self.lengths: list[int] = list(self.meta["lengths"])
        # A one-bit-per-slot filter over the low bits of the keys: most document n-grams miss
        # it, so only a few go on to the binary search (~2 MiB, false hits ~2 % at 300k keys).
        self._filter = np.zeros(_FILTER_SLOTS, dtype=bool)
        self._filter[(self.keys & np.uint64(_FILTER_SLOTS - 1)).astype(np.int64)] = True
        self.set_names: list[str] = [s["name"] for s in self.meta["sets"]]

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        out = np.full(keys.size, -1, dtype=np.int32)
        if self.keys.size == 0 or keys.size == 0:
            return out
        maybe = np.flatnonzero(self._filter[(keys & np.uint64(_FILTER_SLOTS - 1)).astype(np.int64)])
        if maybe.size == 0:
            return out
        cand = keys[maybe]
        pos = np.minimum(np.searchsorted(self.keys, cand), self.keys.size - 1)
        hit = self.keys[pos] == cand
        out[maybe[hit]] = self.sets[pos[hit]]
        return out


_LOADED: dict[str, DecontamIndex] = {}


def load_index(index_dir: str) -> DecontamIndex:
    """The index at ``index_dir``, loaded once per worker process."""
    if index_dir not in _LOADED:
        _LOADED[index_dir] = DecontamIndex(index_dir)
    return _LOADED[index_dir]
