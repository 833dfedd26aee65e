"""``dataproc verify OUT``: prove an output folder is what its manifest says, before training.

Checks, each reported as one line naming the file and what to do:
manifest readable and of a supported version; no file missing or unlisted; per file: size and
sha256, exact schema and format metadata, row and token counts (per file and, manifest format 2,
per row group); per document: ``num_tokens ==
len(input_ids)``, ends with EOT, no EOT inside, every id < vocab_size, ids unique across the
output; tokenizer: the manifest's rank-file hash equals the locally available one; dedup:
every file was written against the dedup result the manifest names (``dedup_result``, in each
file's Parquet metadata); a few documents decode (and match the ``text`` column when it was
kept).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dataproc.errors import DataprocError
from dataproc.io import fs
from dataproc.io.layout import TOKENS_DIR, OutputLayout
from dataproc.io.manifest import MANIFEST_VERSION, read_manifest
from dataproc.io.token_writer import (
    ADDED_FIELDS,
    FORMAT_VERSION,
    META_DEDUP_RESULT,
    META_EOT_ID,
    META_FORMAT_VERSION,
    META_TOKENIZER,
    token_schema,
)

MAX_PROBLEMS_PER_FILE = 10  # one corrupt file should not bury the rest of the report


@dataclass
class VerifyResult:
    """Outcome of ``verify_output``: ``ok`` iff ``problems`` is empty."""

    problems: list[str] = field(default_factory=list)
    checked: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _sha256(path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with fs.open_input(path) as f:
        while chunk := f.read(8 * 1024 * 1024):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def _local_tokenizer(name: str) -> tuple[dict[str, Any] | None, Any, str | None]:
    """(tokenizer_info, encoding, why-not) for ``name`` from what is installed locally."""
    try:
        from dataproc.stages.tokenize import TokenizerConfig, load_encoding, tokenizer_info

        cfg = TokenizerConfig(name=name)
        return tokenizer_info(cfg), load_encoding(cfg), None
    except (ImportError, AttributeError) as e:
        return None, None, f"tokenizer loader unavailable ({e})"
    except DataprocError as e:
        return None, None, str(e)
    except Exception as e:  # an unknown name or a missing rank file: report, keep verifying
        return None, None, f"{type(e).__name__}: {e}"


class _DocChecker:
    """Streams one file's row groups and checks every document."""

    def __init__(self, rel: str, eot: int, vocab: int | None, problems: list[str]) -> None:
        self.rel, self.eot, self.vocab, self.problems = rel, eot, vocab, problems
        self.rows = 0
        self.tokens = 0
        self.reported = 0

    def problem(self, msg: str) -> None:
        self.reported += 1
        if self.reported <= MAX_PROBLEMS_PER_FILE:
            self.problems.append(f"{self.rel}: {msg}")

    def check(self, ids_col: Any, num_tokens: np.ndarray, doc_ids: list[str], row0: int) -> None:
        offsets = ids_col.offsets.to_numpy().astype(np.int64)
        values = ids_col.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
        offsets = offsets - offsets[0]
        lengths = np.diff(offsets)
        self.rows += len(lengths)
        self.tokens += int(lengths.sum())
        bad = np.flatnonzero(lengths != num_tokens)
        if bad.size:
            r = int(bad[0])
            self.problem(
                f"row {row0 + r} ({doc_ids[r]}): num_tokens {int(num_tokens[r])} != "
                f"len(input_ids) {int(lengths[r])} ({bad.size} rows in this row group)"
            )
        empty = np.flatnonzero(lengths == 0)
        if empty.size:
            self.problem(f"row {row0 + int(empty[0])}: empty input_ids ({empty.size} rows)")
        nonempty = lengths > 0
        last = np.full(len(lengths), -1, dtype=np.int64)
        last[nonempty] = values[offsets[1:][nonempty] - 1]
        no_eot = np.flatnonzero(nonempty & (last != self.eot))
        if no_eot.size:
            r = int(no_eot[0])
            self.problem(
                f"row {row0 + r} ({doc_ids[r]}): does not end with EOT {self.eot} "
                f"({no_eot.size} rows); documents would run together in training"
            )
        eot_pos = np.flatnonzero(values == self.eot)
        inner = np.setdiff1d(eot_pos, offsets[1:] - 1)
        if inner.size:
            r = int(np.searchsorted(offsets, inner[0], side="right") - 1)
            self.problem(
                f"row {row0 + r} ({doc_ids[r]}): EOT inside the document "
                f"({inner.size} occurrences); special tokens must never be encoded from text"
            )
        if self.vocab is not None and values.size and int(values.max()) >= self.vocab:
            over = np.flatnonzero(values >= self.vocab)
            r = int(np.searchsorted(offsets, over[0], side="right") - 1)
            self.problem(
                f"row {row0 + r} ({doc_ids[r]}): token id {int(values[over[0]])} >= "
                f"vocab_size {self.vocab} ({over.size} tokens); wrong tokenizer or corrupt data"
            )


def _check_file(
    out_dir: str,
    entry: dict,
    manifest: dict,
    keep_text: bool,
    ids_seen: dict[str, str],
    result: VerifyResult,
) -> None:
    import pyarrow.parquet as pq

    rel = entry["path"]
    path = fs.join(out_dir, rel)
    problems = result.problems
    digest, size = _sha256(path)
    if size != entry["bytes"]:
        problems.append(
            f"{rel}: {size} bytes but the manifest says {entry['bytes']}; "
            "the file was truncated or replaced; rerun the job"
        )
    if digest != entry["sha256"]:
        problems.append(
            f"{rel}: sha256 {digest[:12]}… != manifest {str(entry['sha256'])[:12]}…; "
            "the file is corrupt or was modified after the run"
        )
    tok = manifest["tokenizer"]
    eot = int(tok["eot_id"])
    vocab = tok.get("vocab_size")
    with fs.open_input(path) as handle:
        try:
            pf = pq.ParquetFile(handle)
        except Exception as e:
            problems.append(f"{rel}: not a readable Parquet file ({e})")
            return
        schema = pf.schema_arrow
        legacy = not any(name in schema.names for name in ADDED_FIELDS)  # written before them
        expected = token_schema(keep_text, str(tok["name"]), eot, legacy=legacy)
        if not schema.equals(expected, check_metadata=False):
            problems.append(
                f"{rel}: schema differs from format v{FORMAT_VERSION}: got "
                f"{[f'{f.name}: {f.type}' for f in schema]}; expected "
                f"{[f'{f.name}: {f.type}' for f in expected]} (see docs/format.md)"
            )
            return
        meta = pf.metadata.metadata or {}
        want = {
            META_FORMAT_VERSION: str(FORMAT_VERSION).encode(),
            META_TOKENIZER: str(tok["name"]).encode(),
            META_EOT_ID: str(eot).encode(),
        }
        for key, value in want.items():
            if meta.get(key) != value:
                problems.append(
                    f"{rel}: Parquet metadata {key.decode()}={meta.get(key)!r}, "
                    f"expected {value.decode()!r}"
                )
        _check_dedup_result(rel, manifest, meta.get(META_DEDUP_RESULT), problems)
        checker = _DocChecker(rel, eot, int(vocab) if vocab is not None else None, problems)
        rg_counts: list[tuple[int, int]] = []
        for rg in range(pf.num_row_groups):
            t = pf.read_row_group(rg, columns=["id", "input_ids", "num_tokens"])
            doc_ids = t.column("id").to_pylist()
            row0, tokens0 = checker.rows, checker.tokens
            checker.check(
                t.column("input_ids").combine_chunks(),
                t.column("num_tokens").to_numpy(),
                doc_ids,
                row0,
            )
            for i, d in enumerate(doc_ids):
                other = ids_seen.get(d)
                if other is not None:
                    checker.problem(f"row {row0 + i}: id {d!r} also in {other}; duplicate document")
                else:
                    ids_seen[d] = rel
            rg_counts.append((checker.rows - row0, checker.tokens - tokens0))
    _check_row_group_counts(rel, entry, rg_counts, problems)
    if checker.rows != entry["rows"]:
        problems.append(f"{rel}: {checker.rows} rows but the manifest says {entry['rows']}")
    if checker.tokens != entry["tokens"]:
        problems.append(f"{rel}: {checker.tokens} tokens but the manifest says {entry['tokens']}")
    if checker.reported > MAX_PROBLEMS_PER_FILE:
        problems.append(f"{rel}: … {checker.reported - MAX_PROBLEMS_PER_FILE} more problems")


def _check_row_group_counts(
    rel: str, entry: dict, actual: list[tuple[int, int]], problems: list[str]
) -> None:
    """Manifest format 2: the per-row-group counts a training rank plans from are exact."""
    if "row_group_rows" not in entry and "row_group_tokens" not in entry:
        return  # format 1 manifest (checked by version in verify_output)
    rows, tokens = entry.get("row_group_rows", []), entry.get("row_group_tokens", [])
    if len(rows) != len(tokens):
        problems.append(f"{rel}: manifest row_group_rows and row_group_tokens differ in length")
        return
    listed = [(int(r), int(t)) for r, t in zip(rows, tokens, strict=True)]
    if listed != actual:
        bad = next(
            (i for i, (a, b) in enumerate(zip(listed, actual, strict=False)) if a != b),
            min(len(listed), len(actual)),
        )
        problems.append(
            f"{rel}: manifest per-row-group counts differ from the file (first at row group "
            f"{bad}: manifest {listed[bad] if bad < len(listed) else None}, file "
            f"{actual[bad] if bad < len(actual) else None}); a training loader would cut "
            "windows wrongly. Rewrite the entry with dataproc.io.manifest.token_file_info"
        )


def _check_dedup_result(
    rel: str, manifest: dict, written: bytes | None, problems: list[str]
) -> None:
    """The file was filtered against the dedup result the manifest names (or both say none).

    Manifests written before the field existed have no ``dedup_result`` key: nothing to check.
    """
    if "dedup_result" not in manifest:
        return
    want = manifest["dedup_result"]
    got = written.decode(errors="replace") if written is not None else None
    if got == want:
        return
    if want is None:
        problems.append(
            f"{rel}: written against dedup result {str(got)[:12]}… but the manifest names none; "
            "the file is from another run: rerun the job into a fresh folder"
        )
    elif got is None:
        problems.append(
            f"{rel}: records no dedup result but the manifest names {str(want)[:12]}…; the "
            "file was not written against this run's dedup (it may hold duplicates): rerun "
            "the job"
        )
    else:
        problems.append(
            f"{rel}: written against dedup result {got[:12]}… but the manifest names "
            f"{str(want)[:12]}…; it was filtered with another set of removals (it may hold "
            "duplicates): rerun the job"
        )


def _check_listing(out_dir: str, manifest: dict, result: VerifyResult) -> list[dict]:
    """Report unlisted and missing files; return the manifest entries that exist."""
    listed = {f["path"]: f for f in manifest["files"]}
    on_disk = {
        f"{TOKENS_DIR}/" + p.rstrip("/").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
        for p in fs.listdir(OutputLayout(out_dir).tokens_dir)
    }
    for extra in sorted(on_disk - set(listed)):
        result.problems.append(
            f"{extra}: in tokens/ but not in the manifest; a reader globbing tokens/*.parquet "
            "would train on it. Delete it (or rerun the job into a fresh folder)"
        )
    present = []
    for rel, entry in listed.items():
        if rel in on_disk:
            present.append(entry)
        else:
            result.problems.append(f"{rel}: listed in the manifest but missing; rerun the job")
    return present


def _check_tokenizer(manifest: dict, result: VerifyResult) -> Any:
    tok = manifest["tokenizer"]
    if tok.get("dtype") != "uint32":
        result.problems.append(f"manifest tokenizer.dtype={tok.get('dtype')!r}, expected 'uint32'")
    for key in ("vocab_size", "eot_id"):
        if not isinstance(tok.get(key), int):
            result.problems.append(f"manifest tokenizer.{key} missing or not an integer")
    info, encoding, why = _local_tokenizer(str(tok["name"]))
    if info is None:
        result.checked["tokenizer"] = f"not checked: {why}"
        return None
    mismatched = False
    for key in ("rank_file_sha256", "vocab_size", "eot_id"):
        if info.get(key) is not None and tok.get(key) != info.get(key):
            mismatched = True
            result.problems.append(
                f"tokenizer {tok['name']}: manifest {key}={tok.get(key)!r} but the local "
                f"tokenizer has {info.get(key)!r}; the output was made with different ranks, "
                "so decoding (and mixing with other data) would be wrong"
            )
    if mismatched:
        result.checked["tokenizer"] = "differs from the local rank file"
        return None  # decoding samples with the wrong ranks would only add noise
    result.checked["tokenizer"] = "matches local rank file"
    return encoding


def _sample_decode(
    out_dir: str, manifest: dict, encoding: Any, keep_text: bool, n: int, result: VerifyResult
) -> None:
    import pyarrow.parquet as pq

    if encoding is None or n <= 0 or not manifest["files"]:
        return
    eot = int(manifest["tokenizer"]["eot_id"])
    rng = np.random.default_rng(0)
    files = manifest["files"]
    samples = []
    for k in range(n):
        entry = files[int(rng.integers(len(files)))] if k else files[0]
        if entry["rows"] == 0:
            continue
        row = int(rng.integers(entry["rows"]))
        with fs.open_input(fs.join(out_dir, entry["path"])) as handle:
            cols = ["id", "input_ids"] + (["text"] if keep_text else [])
            t = pq.ParquetFile(handle).read(columns=cols).slice(row, 1)
        ids = t.column("input_ids")[0].as_py()
        body = ids[:-1] if ids and ids[-1] == eot else ids
        try:
            text = encoding.decode(body)
        except Exception as e:
            result.problems.append(f"{entry['path']} row {row}: does not decode ({e})")
            continue
        if keep_text and t.column("text")[0].as_py() not in (None, text):
            result.problems.append(
                f"{entry['path']} row {row}: decoded tokens differ from the text column; "
                "the tokens were made with another tokenizer"
            )
        samples.append({"file": entry["path"], "row": row, "text": text[:200]})
    result.checked["samples"] = samples


def verify_output(out_dir: str, *, sample_docs: int = 5) -> VerifyResult:
    """Check ``out_dir`` against its manifest; see the module docstring for the list."""
    result = VerifyResult()
    try:
        manifest = read_manifest(out_dir)
    except DataprocError as e:
        result.problems.append(str(e))
        return result
    if manifest.get("complete") is False:
        result.problems.append(
            "manifest says the run is incomplete (failures listed in it); "
            "rerun the job to finish it"
        )
    if manifest.get("format_version") == MANIFEST_VERSION:
        missing = [f["path"] for f in manifest["files"] if "row_group_tokens" not in f]
        if missing:
            result.problems.append(
                f"{missing[0]}: manifest format {MANIFEST_VERSION} entry without per-row-group "
                f"counts ({len(missing)} files)"
            )
    else:
        result.checked["row_group_counts"] = "not in this manifest (format 1)"
    keep_text = bool(manifest.get("config", {}).get("write", {}).get("keep_text", False))
    present = _check_listing(out_dir, manifest, result)
    encoding = _check_tokenizer(manifest, result)
    ids_seen: dict[str, str] = {}
    for entry in present:
        _check_file(out_dir, entry, manifest, keep_text, ids_seen, result)
    totals = manifest["totals"]
    files = manifest["files"]
    for key in ("rows", "tokens", "bytes"):
        if totals.get(key) != sum(f[key] for f in files):
            result.problems.append(f"manifest totals.{key}={totals.get(key)} != sum over files")
    if totals.get("files") != len(files):
        result.problems.append(f"manifest totals.files={totals.get('files')} != {len(files)}")
    if not files and totals.get("rows", 0) == 0:
        # Valid as a file format, but never what a training job wants: most often a broken
        # environment or a filter that dropped everything (see stats.json / rejects/).
        result.problems.append(
            "the output holds no documents; check stats.json and rejects/ for why every "
            "document was dropped"
        )
    result.checked.update(
        {
            "files": len(present),
            "rows": sum(f["rows"] for f in present),
            "tokens": sum(f["tokens"] for f in present),
            "unique_ids": len(ids_seen),
            "dedup_result": manifest.get("dedup_result", "not recorded"),
        }
    )
    _check_certificates(manifest, result)
    from dataproc.remove import pending_commits

    for stage in pending_commits(out_dir):
        result.problems.append(
            f"{stage}: a `dataproc remove` was committed but not finished (interrupted); "
            "run `dataproc remove` on this output again to finish it"
        )
    if not result.problems:
        _sample_decode(out_dir, manifest, encoding, keep_text, sample_docs, result)
    return result


def _check_certificates(manifest: dict, result: VerifyResult) -> None:
    """The decontamination certificate holds: every eval file is still what was checked."""
    lines: list[str] = []
    decon = manifest.get("decontamination")
    if decon:
        for s in decon["sets"]:
            lines.append(
                f"decontamination: {s['name']} ({s['source']}, {s['items']:,} items, "
                f"{decon['ngram']}-grams): {s['documents_removed']:,} documents removed, "
                f"{s['documents_cut']:,} cut"
            )
            if s.get("sha256") is None:
                continue  # a Hugging Face set: its revision is in `source`
            path = s["source"]
            if not fs.exists(path):
                result.problems.append(
                    f"decontamination set {s['name']!r}: {path} not found, so the certificate "
                    "cannot be checked; run verify where the eval files are"
                )
                continue
            digest = fs.sha256_file(path)
            if digest != s["sha256"]:
                result.problems.append(
                    f"decontamination set {s['name']!r}: {path} has sha256 {digest[:16]}…, "
                    f"the manifest certifies {s['sha256'][:16]}…: the eval file changed "
                    "since the run, so the output was not checked against it"
                )
    consent = manifest.get("consent")
    if consent:
        robots = consent.get("robots")
        where = (
            f"robots.txt of {robots['hosts']:,} hosts ({robots['hosts_naming_agents']:,} name "
            "an AI agent)"
            if robots
            else "no robots.txt (page signals only)"
        )
        dropped = sum(consent.get("dropped", {}).values())
        lines.append(f"consent: {where}; {dropped:,} documents dropped as opted out")
    result.checked["certificates"] = lines
