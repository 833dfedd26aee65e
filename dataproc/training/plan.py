"""The epoch plan of ``TokenLoader``: which tokens form the global stream, without reading one.

A *source* is one output folder. Its *blocks* (one Parquet row group of one token file each)
and their token counts come from the manifest (format 2); a format-1 manifest has no
per-row-group counts, so then every file's footer and ``num_tokens`` column are read once.

For ``(seed, epoch)`` each source's blocks are put in a seeded order (pass ``k`` of a source
that is repeated gets its own order) and cut into *groups* of ``shuffle_blocks`` blocks; the
documents of a group are permuted (seeded by seed, epoch, source, pass, group) and
concatenated. A source contributes exactly ``quota`` tokens to the epoch: whole groups of
pass 0, 1, ... and a prefix of one last group. These *pieces* of all sources are interleaved
by where they fall in their source's quota (piece midpoint / quota, ties by source order), so
every source is spread evenly over the epoch. The concatenated pieces are the epoch stream.

Everything here is a pure function of the manifests and the arguments: every rank computes
the same plan, and the per-source token count of any stretch of the stream is arithmetic.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataproc.errors import OutputError
from dataproc.io import fs
from dataproc.io.manifest import read_manifest_index
from dataproc.io.token_writer import TOKEN_LIST_TYPE

_SEED_TAG_BLOCKS = 0x5EED_B10C
_SEED_TAG_DOCS = 0xD0C5
TOKENIZER_IDENTITY = ("name", "eot_id", "vocab_size", "rank_file_sha256", "dtype")


def check_token_schema(schema: Any, path: str) -> None:
    """Refuse a file whose token columns are not exactly list<uint32> / int32."""
    names = schema.names
    if "input_ids" not in names or "num_tokens" not in names:
        raise OutputError(f"{path}: no input_ids/num_tokens columns; not a dataproc token file")
    got = schema.field("input_ids").type
    if not got.equals(TOKEN_LIST_TYPE, check_metadata=False) and str(got.value_type) != "uint32":
        raise OutputError(
            f"{path}: input_ids is {got}, expected list<uint32>; the file was not written by "
            "dataproc (or was rewritten with a narrower dtype) and would corrupt token ids"
        )
    if str(schema.field("num_tokens").type) != "int32":
        raise OutputError(
            f"{path}: num_tokens is {schema.field('num_tokens').type}, expected int32"
        )


@dataclass
class Source:
    """One output folder: its tokenizer, file paths and, per block, file, row group, tokens.

    The parsed manifest itself is not kept (for 100k files it is ~100x the size of this).
    """

    name: str
    out_dir: str
    tokenizer: dict
    paths: list[str]
    block_file: np.ndarray  # int64, index into paths
    block_rg: np.ndarray  # int64, row group within that file
    block_tokens: np.ndarray  # int64

    @property
    def tokens(self) -> int:
        return int(self.block_tokens.sum())


def load_source(name: str, out_dir: str) -> Source:
    """Read ``out_dir``'s manifest (once) and index its blocks; opens no token file unless the
    manifest is format 1."""
    manifest, paths, sizes, tokens = read_manifest_index(out_dir)
    tok = manifest["tokenizer"]
    if tok.get("dtype") != "uint32" or tok.get("vocab_size") is None:
        raise OutputError(
            f"{out_dir}: manifest tokenizer info lacks dtype uint32 / vocab_size; "
            "run `dataproc verify` on it"
        )
    if sizes is None:  # manifest format 1: read the counts from the files themselves
        per_file = list(_footer_counts(out_dir, paths))
        sizes = np.fromiter(map(len, per_file), dtype=np.int64, count=len(per_file))
        tokens = np.fromiter(
            (c for counts in per_file for c in counts), dtype=np.int64, count=int(sizes.sum())
        )
    files = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    first = np.cumsum(sizes) - sizes
    rgs = np.arange(len(tokens), dtype=np.int64) - np.repeat(first, sizes)
    return Source(name, out_dir, tok, paths, files, rgs, np.asarray(tokens, dtype=np.int64))


def _footer_counts(out_dir: str, paths: list[str]) -> Iterator[list[int]]:
    """Tokens per row group of every file (manifest format 1: opens every file once)."""
    import pyarrow.parquet as pq

    for rel in paths:
        path = fs.join(out_dir, rel)
        with fs.open_input(path) as handle:
            pf = pq.ParquetFile(handle)
            check_token_schema(pf.schema_arrow, path)
            yield [
                int(np.asarray(pf.read_row_group(rg, columns=["num_tokens"]).column(0)).sum())
                for rg in range(pf.num_row_groups)
            ]


def check_same_tokenizer(sources: list[Source]) -> None:
    """Refuse to mix outputs made with different tokenizers (same ids, different meaning)."""
    ref = sources[0].tokenizer
    for src in sources[1:]:
        tok = src.tokenizer
        for key in TOKENIZER_IDENTITY:
            a, b = ref.get(key), tok.get(key)
            if key == "rank_file_sha256" and (a is None or b is None):
                continue  # not recorded by one of them; name/eot/vocab still must match
            if a != b:
                raise OutputError(
                    f"source {src.name!r} was tokenized with {tok.get('name')} ({key}={b!r}) but "
                    f"source {sources[0].name!r} with {ref.get('name')} ({key}={a!r}); token ids "
                    "of different tokenizers mean different text and cannot be mixed. "
                    "Re-run one of them with the other's tokenizer"
                )


def quotas(natural: list[int], weights: list[float] | None, epoch_tokens: int | None) -> list[int]:
    """Tokens each source contributes to one epoch (sums to the epoch length exactly).

    No weights: every source once (its natural size). With weights (by tokens): the epoch has
    ``epoch_tokens`` (default: the sum of the sources) and source ``i`` gets
    ``weights[i] / sum(weights)`` of it, rounded by largest remainder.
    """
    if weights is None:
        if epoch_tokens is not None:
            raise OutputError("epoch_tokens needs weights (which share of it each source gets)")
        return list(natural)
    if len(weights) != len(natural):
        raise OutputError(f"{len(weights)} weights for {len(natural)} sources")
    if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise OutputError(f"weights {weights}: need finite weights >= 0 with a positive sum")
    total = sum(natural) if epoch_tokens is None else int(epoch_tokens)
    if total < 0:
        raise OutputError(f"epoch_tokens={epoch_tokens}: must be >= 0")
    wsum = float(sum(weights))
    raw = [w / wsum * total for w in weights]
    out = [int(np.floor(r)) for r in raw]
    short = total - sum(out)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[:short]:
        out[i] += 1
    for i, (q, n) in enumerate(zip(out, natural, strict=True)):
        if q > 0 and n == 0:
            raise OutputError(
                f"source {i} has no tokens but weight {weights[i]}; drop it or give it weight 0"
            )
    return out


class EpochPlan:
    """The pieces of one epoch's stream (see the module docstring), as parallel arrays."""

    def __init__(
        self,
        sources: list[Source],
        quota: list[int],
        *,
        seed: int,
        epoch: int,
        shuffle: bool,
        shuffle_blocks: int,
    ) -> None:
        self.sources, self.seed, self.epoch = sources, seed, epoch
        self.shuffle, self.k = shuffle, shuffle_blocks
        self._orders: dict[tuple[int, int], np.ndarray] = {}
        cols: list[list[np.ndarray]] = [[], [], [], [], []]  # source, pass, group, length, key
        for s, q in enumerate(quota):
            done, k = 0, 0
            while done < q:
                group_tokens = self._group_tokens(s, k)
                cum = np.cumsum(group_tokens)
                take = int(np.searchsorted(cum, q - done, side="left")) + 1
                take = min(take, len(group_tokens))
                lengths = group_tokens[:take].copy()
                lengths[-1] -= max(0, int(cum[take - 1]) - (q - done))
                starts = done + np.concatenate([[0], np.cumsum(lengths)[:-1]])
                for col, val in zip(
                    cols,
                    (
                        np.full(take, s),
                        np.full(take, k),
                        np.arange(take),
                        lengths,
                        (starts + lengths / 2) / q,
                    ),
                    strict=True,
                ):
                    col.append(np.asarray(val))
                done += int(lengths.sum())
                k += 1
        if cols[0]:
            src, pss, grp, length, key = (np.concatenate(c) for c in cols)
        else:
            src = pss = grp = length = np.zeros(0, dtype=np.int64)
            key = np.zeros(0)
        order = np.lexsort((src, key))  # by position within the source's quota, then source
        self.src = src[order].astype(np.int64)
        self.pass_ = pss[order].astype(np.int64)
        self.group = grp[order].astype(np.int64)
        self.length = length[order].astype(np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.length)]).astype(np.int64)
        self.total = int(self.starts[-1])
        # tokens of each source in pieces [0, i): exact per-source accounting of any range
        onehot = np.zeros((len(self.src), len(sources)), dtype=np.int64)
        onehot[np.arange(len(self.src)), self.src] = self.length
        self._src_cum = np.vstack([np.zeros((1, len(sources)), np.int64), np.cumsum(onehot, 0)])

    def _rng(self, tag: int, s: int, k: int, *extra: int) -> np.random.Generator:
        # Source 0, pass 0 keeps the seeds of the single-output loader (its states resume).
        ident = [] if (s, k) == (0, 0) else [s, k]
        return np.random.default_rng([self.seed, self.epoch, tag, *extra, *ident])

    def block_order(self, s: int, k: int) -> np.ndarray:
        """Block indices of source ``s`` in pass ``k``'s order."""
        key = (s, k)
        if key not in self._orders:
            n = len(self.sources[s].block_tokens)
            if self.shuffle:
                self._orders[key] = self._rng(_SEED_TAG_BLOCKS, s, k).permutation(n)
            else:
                self._orders[key] = np.arange(n)
        return self._orders[key]

    def _group_tokens(self, s: int, k: int) -> np.ndarray:
        tokens = self.sources[s].block_tokens[self.block_order(s, k)]
        pad = (-len(tokens)) % self.k
        return (
            np.add.reduceat(
                np.concatenate([tokens, np.zeros(pad, np.int64)]),
                np.arange(0, len(tokens) + pad, self.k),
            )
            if len(tokens)
            else np.zeros(0, np.int64)
        )

    def piece_blocks(self, i: int) -> list[tuple[int, int]]:
        """(file, row group) of the blocks of piece ``i``, in group order."""
        s, k, g = int(self.src[i]), int(self.pass_[i]), int(self.group[i])
        blocks = self.block_order(s, k)[g * self.k : (g + 1) * self.k]
        source = self.sources[s]
        return [(int(source.block_file[b]), int(source.block_rg[b])) for b in blocks]

    def doc_permutation(self, i: int, n_docs: int) -> np.ndarray | None:
        """Order of the documents of piece ``i``'s group (None: keep file order)."""
        if not self.shuffle or n_docs < 2:
            return None
        s, k, g = int(self.src[i]), int(self.pass_[i]), int(self.group[i])
        return self._rng(_SEED_TAG_DOCS, s, k, g).permutation(n_docs)

    def piece_at(self, pos: int) -> int:
        """Index of the piece holding stream position ``pos`` (0 <= pos < total)."""
        return int(np.searchsorted(self.starts, pos, side="right") - 1)

    def tokens_by_source(self, ranges: list[tuple[int, int]]) -> np.ndarray:
        """Tokens of each source in the union of disjoint stream ranges ``[a, b)``."""
        out = np.zeros(len(self.sources), dtype=np.int64)
        for a, b in ranges:
            out += self._cum_at(b) - self._cum_at(a)
        return out

    def _cum_at(self, x: int) -> np.ndarray:
        if x >= self.total:
            return np.asarray(self._src_cum[-1]).copy()
        i = self.piece_at(x)
        row = np.asarray(self._src_cum[i]).copy()
        row[self.src[i]] += x - self.starts[i]
        return row


class Segments:
    """Ordered, disjoint stream ranges ``[a, b)``: the part of an epoch still to be cut.

    A *virtual* position is an offset into their concatenation; ``map`` turns a virtual range
    into the stream ranges behind it (binary search: a state after many elastic restarts of
    1,000 ranks holds thousands of segments, and every rank's range is mapped).
    """

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self.ranges = [(int(a), int(b)) for a, b in ranges if b > a]
        self.offsets = [0, *itertools.accumulate(b - a for a, b in self.ranges)]

    @property
    def total(self) -> int:
        return self.offsets[-1]

    def map(self, a: int, b: int) -> list[tuple[int, int]]:
        """The stream ranges behind virtual ``[a, b)``, in order."""
        out: list[tuple[int, int]] = []
        i = max(0, bisect.bisect_right(self.offsets, a) - 1)
        while i < len(self.ranges) and self.offsets[i] < b:
            s0 = self.ranges[i][0]
            lo, hi = max(a, self.offsets[i]), min(b, self.offsets[i + 1])
            if lo < hi:
                out.append((s0 + lo - self.offsets[i], s0 + hi - self.offsets[i]))
            i += 1
        return out


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop empty ranges and join touching ones (order kept)."""
    out: list[tuple[int, int]] = []
    for a, b in ranges:
        if a >= b:
            continue
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out
