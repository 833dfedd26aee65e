"""Packed, sharded, shuffled, resumable token sequences from dataproc outputs (no PyTorch).

The contract (docs/training.md has the long form):

* **The epoch stream** is defined in ``dataproc.training.plan`` from the manifests alone
  (per-row-group token counts, manifest format 2): seeded block order, groups of
  ``shuffle_blocks`` row groups whose documents are permuted, and for several outputs
  (a *mixture*) exact per-source token quotas whose pieces are interleaved. Identical on
  every rank; no token is read to define it.
* **Windows.** The part of the stream still to be used in this epoch (a list of *segments*,
  the whole stream at the start of an epoch) is cut into non-overlapping windows of
  ``seq_len + 1`` tokens; a training step uses ``x = w[:-1]``, ``y = w[1:]``.
* **Ranks.** With ``drop_last=True`` every rank gets ``n = (R // (seq_len+1)) // world_size``
  windows of the ``R`` remaining tokens, rank ``r`` the run ``[r*n, (r+1)*n)``: disjoint and
  equal. The last ``R - world_size*n*(seq_len+1)`` tokens are the remainder, not used in this
  epoch. With ``drop_last=False`` every token is used, the last window may be shorter and rank
  counts may differ by one. A rank that would get no window of a whole epoch is refused at
  construction.
* **Resume, also elastic.** ``state_dict()`` records the segments and the windows this rank
  yielded; every rank's state is the same apart from ``rank``. Loading it under the same
  ``world_size`` and ``rank`` continues with the next window. Under another ``world_size``
  (or rank assignment) the windows all ranks consumed are removed from the segments and the
  rest is cut afresh for the new world: no token twice, none skipped except the new cut's
  remainder. (Assumes all ranks yielded the same number of windows, as synchronous training
  with ``drop_last=True`` does.)
* **Accounting.** Per source, exact to the token: what this rank yielded, and (arithmetic on
  the plan) what all ranks together consumed since epoch 0 — in ``state_dict()`` and
  ``summary()``.
* **Memory** is one group (``shuffle_blocks`` row groups) plus one window plus a few integers
  per row group of the index. **I/O**: the manifests are read once; a rank opens only the
  files holding its windows.
"""

from __future__ import annotations

import copy
import itertools
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from dataproc.errors import OutputError
from dataproc.io import fs
from dataproc.training.plan import (
    EpochPlan,
    Segments,
    Source,
    check_same_tokenizer,
    check_token_schema,
    load_source,
    merge_ranges,
    quotas,
)

STATE_FORMAT = "dataproc.TokenLoader/2"
_OLD_STATE_FORMAT = "dataproc.TokenLoader/1"  # single output, same stream; no segments

__all__ = ["STATE_FORMAT", "TokenLoader", "check_token_schema"]


class _FileCache:
    """A few open ParquetFile handles of one source (the schema is checked on first open)."""

    def __init__(self, source: Source, size: int = 16) -> None:
        self.source = source
        self.size = size
        self._open: OrderedDict[int, Any] = OrderedDict()

    def get(self, file: int) -> Any:
        import pyarrow.parquet as pq

        if file in self._open:
            self._open.move_to_end(file)
            return self._open[file][0]
        path = fs.join(self.source.out_dir, self.source.paths[file])
        handle = fs.open_input(path)
        try:
            pf = pq.ParquetFile(handle)
            check_token_schema(pf.schema_arrow, path)
        except BaseException:
            handle.close()
            raise
        self._open[file] = (pf, handle)
        if len(self._open) > self.size:
            _, (_, old) = self._open.popitem(last=False)
            old.close()
        return pf

    def read_block(self, file: int, row_group: int) -> tuple[np.ndarray, np.ndarray]:
        """(values uint32, offsets int64) of one row group's input_ids column."""
        col = self.get(file).read_row_group(row_group, columns=["input_ids"]).column(0)
        col = col.combine_chunks()
        # Straight from the Arrow buffers: Array.to_numpy imports pandas (1+ s at start-up).
        offsets = np.frombuffer(
            col.buffers()[1], dtype=np.int32, count=len(col) + 1, offset=col.offset * 4
        ).astype(np.int64)
        child = col.values
        values = np.frombuffer(
            child.buffers()[1], dtype=np.uint32, count=len(child), offset=child.offset * 4
        )
        base = offsets[0]
        return values[base : offsets[-1]], offsets - base

    def close(self) -> None:
        for _, handle in self._open.values():
            handle.close()
        self._open.clear()


def _named_sources(
    out_dir: str | Sequence[str] | Mapping[str, str],
    weights: Sequence[float] | Mapping[str, float] | None,
) -> tuple[list[tuple[str, str]], list[float] | None]:
    if isinstance(out_dir, str):
        named = [(out_dir, out_dir)]
    elif isinstance(out_dir, Mapping):
        named = [(str(k), str(v)) for k, v in out_dir.items()]
    else:
        named = [(str(p), str(p)) for p in out_dir]
    if not named:
        raise OutputError("no output folder given")
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise OutputError(f"source names must be unique: {names}")
    if weights is None:
        return named, None
    if isinstance(weights, Mapping):
        unknown = set(weights) - set(names)
        if unknown or set(names) - set(weights):
            raise OutputError(f"weights name {sorted(weights)} but the sources are {names}")
        return named, [float(weights[n]) for n in names]
    return named, [float(w) for w in weights]


class TokenLoader:
    """Iterate packed windows of ``seq_len + 1`` token ids (NumPy ``int64``) for one rank.

    ``out_dir`` is one output folder, a list of them, or ``{name: folder}``; with several,
    ``weights`` (by tokens; list or ``{name: weight}``) set each source's share of an epoch of
    ``epoch_tokens`` tokens (default: all sources' tokens). Yields ``np.ndarray`` of shape
    ``(seq_len + 1,)``; with ``return_boundaries=True`` yields ``(window, eot_positions)``
    (indices in ``window`` holding EOT, i.e. the last token of each document). One pass over
    the iterator is one epoch; afterwards the loader moves to ``epoch + 1`` by itself.
    ``len(loader)`` is the number of windows this rank yields in the current cut.
    """

    def __init__(
        self,
        out_dir: str | Sequence[str] | Mapping[str, str],
        seq_len: int,
        *,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        epoch: int = 0,
        return_boundaries: bool = False,
        shuffle: bool = True,
        drop_last: bool = True,
        shuffle_blocks: int = 4,
        weights: Sequence[float] | Mapping[str, float] | None = None,
        epoch_tokens: int | None = None,
    ) -> None:
        if seq_len < 1:
            raise OutputError(f"seq_len={seq_len}: must be >= 1")
        if world_size < 1 or not 0 <= rank < world_size:
            raise OutputError(f"rank={rank}, world_size={world_size}: need 0 <= rank < world_size")
        if shuffle_blocks < 1:
            raise OutputError(f"shuffle_blocks={shuffle_blocks}: must be >= 1")
        named, weight_list = _named_sources(out_dir, weights)
        self.out_dir = out_dir
        self.seq_len = seq_len
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.epoch = epoch
        self.return_boundaries = return_boundaries
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.shuffle_blocks = shuffle_blocks if shuffle else 1
        self.sources = [load_source(name, path) for name, path in named]
        check_same_tokenizer(self.sources)
        self.tokenizer = self.sources[0].tokenizer
        tok = self.tokenizer
        self.eot_id = int(tok["eot_id"])
        self.vocab_size = int(tok["vocab_size"])
        self.natural_tokens = [s.tokens for s in self.sources]
        self.weights = weight_list
        self.quotas = quotas(self.natural_tokens, weight_list, epoch_tokens)
        self.total_tokens = sum(self.quotas)  # the epoch stream's length
        self._segments = Segments([(0, self.total_tokens)])
        self._position = 0  # windows of this rank already yielded in the current cut
        self._consumed_before = np.zeros(len(self.sources), dtype=np.int64)  # all ranks
        self._rank_tokens = np.zeros(len(self.sources), dtype=np.int64)  # this rank
        self._plan: EpochPlan | None = None
        self._files = [_FileCache(s) for s in self.sources]
        if len(self) == 0:
            w = self.window
            raise OutputError(
                f"rank {rank} of world_size {world_size} would get no window: the epoch has "
                f"{self.total_tokens:,} tokens = {self.total_tokens // w:,} windows of "
                f"seq_len + 1 = {w} tokens, fewer than world_size. Use a smaller seq_len "
                f"(at most {max(0, self.total_tokens // world_size - 1):,}), fewer ranks, "
                "or more data"
            )
        self._open_first_file()

    # ----- the cut (pure functions of the segments, world_size, rank) -----
    @property
    def window(self) -> int:
        return self.seq_len + 1

    def _remaining(self) -> int:
        return self._segments.total

    def _rank_windows(self, rank: int | None = None) -> tuple[int, int]:
        """[first, end) window indices of ``rank`` (default: this one) in the current cut."""
        r = self.rank if rank is None else rank
        total = self._remaining()
        if self.drop_last:
            n = (total // self.window) // self.world_size
            return r * n, (r + 1) * n
        num = -(-total // self.window)
        base, extra = divmod(num, self.world_size)
        first = r * base + min(r, extra)
        return first, first + base + (1 if r < extra else 0)

    def __len__(self) -> int:
        first, end = self._rank_windows()
        return end - first

    @property
    def position(self) -> int:
        """Windows this rank has yielded in the current cut (``len(self)`` at its end)."""
        return self._position

    def _ranges(self, first: int, end: int) -> list[tuple[int, int]]:
        """Stream ranges of windows ``[first, end)`` of the current cut."""
        stop = min(end * self.window, self._remaining())
        return self._segments.map(first * self.window, stop)

    def plan(self) -> EpochPlan:
        """The current epoch's plan (computed once per epoch)."""
        if self._plan is None or self._plan.epoch != self.epoch:
            self._plan = EpochPlan(
                self.sources,
                self.quotas,
                seed=self.seed,
                epoch=self.epoch,
                shuffle=self.shuffle,
                shuffle_blocks=self.shuffle_blocks,
            )
        return self._plan

    def _open_first_file(self) -> None:
        """Open (and schema-check) the first file this rank reads; it stays in the cache."""
        first, end = self._rank_windows()
        ranges = self._ranges(first + self._position, end)
        if ranges:
            plan = self.plan()
            i = plan.piece_at(ranges[0][0])
            file, _ = plan.piece_blocks(i)[0]
            self._files[int(plan.src[i])].get(file)

    # ----- reading -----
    def _piece_tokens(self, plan: EpochPlan, i: int) -> np.ndarray:
        """Piece ``i`` (uint32): its group's documents, permuted, concatenated, cut to length.

        Documents are slices of the decoded row groups, so the group is held about twice
        (decoded + concatenated, 4 bytes per token each); windows are widened to int64 one at
        a time.
        """
        docs: list[np.ndarray] = []
        cache = self._files[int(plan.src[i])]
        for file, rg in plan.piece_blocks(i):
            values, offsets = cache.read_block(file, rg)
            bounds = offsets.tolist()
            docs.extend(values[a:b] for a, b in itertools.pairwise(bounds))
        perm = plan.doc_permutation(i, len(docs))
        if perm is not None:
            docs = [docs[j] for j in perm.tolist()]
        if not docs:
            return np.zeros(0, dtype=np.uint32)
        return np.concatenate(docs)[: int(plan.length[i])]

    def _chunks(self, ranges: list[tuple[int, int]]) -> Iterator[tuple[int, np.ndarray]]:
        """(source, tokens) covering ``ranges`` in order; one piece in memory at a time."""
        plan = self.plan()
        cached, tokens = -1, np.zeros(0, dtype=np.uint32)
        for a, b in ranges:
            pos = a
            i = plan.piece_at(pos)
            while pos < b:
                if i != cached:
                    cached, tokens = -1, np.zeros(0, dtype=np.uint32)  # free the old one first
                    tokens, cached = self._piece_tokens(plan, i), i
                p0 = int(plan.starts[i])
                hi = min(b, p0 + int(plan.length[i]))
                yield int(plan.src[i]), tokens[pos - p0 : hi - p0]
                pos = hi
                i += 1

    # ----- iteration -----
    def __iter__(self) -> Iterator[Any]:
        first, end = self._rank_windows()
        if first + self._position >= end:
            self._next_epoch()
            return
        w = self.window
        pending: list[np.ndarray] = []
        counts = np.zeros(len(self.sources), dtype=np.int64)
        have = 0
        for src, chunk in self._chunks(self._ranges(first + self._position, end)):
            while len(chunk):
                take = min(len(chunk), w - have)
                pending.append(chunk[:take])
                counts[src] += take
                chunk = chunk[take:]
                have += take
                if have == w:
                    yield self._emit(pending, counts)
                    pending, have = [], 0
                    counts = np.zeros(len(self.sources), dtype=np.int64)
        if pending:  # drop_last=False: the stream's last, shorter window
            yield self._emit(pending, counts)
        self._next_epoch()

    def _emit(self, pending: list[np.ndarray], counts: np.ndarray) -> Any:
        seq = np.concatenate(pending, dtype=np.int64)
        self._position += 1
        self._rank_tokens += counts
        if self.return_boundaries:
            return seq, np.flatnonzero(seq == self.eot_id).astype(np.int64)
        return seq

    def _consumed_in_cut(self, position: int) -> np.ndarray:
        """Tokens per source all ranks consumed in the current cut at ``position`` windows."""
        ranges = []
        for r in range(self.world_size):
            first, end = self._rank_windows(r)
            ranges += self._ranges(first, min(end, first + position))
        return self.plan().tokens_by_source(ranges)

    def _next_epoch(self) -> None:
        first, end = self._rank_windows()
        self._consumed_before += self._consumed_in_cut(end - first)
        self.epoch += 1
        self._position = 0
        self._segments = Segments([(0, self.total_tokens)])

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its first window (call between epochs, like DistributedSampler)."""
        self.epoch = epoch
        self._position = 0
        self._segments = Segments([(0, self.total_tokens)])

    # ----- accounting -----
    def _source_dict(self, values: np.ndarray) -> dict[str, int]:
        return {s.name: int(v) for s, v in zip(self.sources, values, strict=True)}

    def summary(self) -> dict[str, Any]:
        """Per-source accounting for a training log (JSON-able; exact to the token).

        ``consumed_tokens``: all ranks together since epoch 0 (this loader's history and the
        states it resumed from); ``rank_tokens``: what this rank's loader yielded.
        """
        consumed = self._consumed_before + self._consumed_in_cut(self._position)
        total = max(1, int(consumed.sum()))
        sources = {}
        for i, s in enumerate(self.sources):
            natural, quota = self.natural_tokens[i], self.quotas[i]
            sources[s.name] = {
                "path": s.out_dir,
                "weight": None if self.weights is None else self.weights[i] / sum(self.weights),
                "natural_tokens": natural,
                "epoch_tokens": quota,
                "repeats_per_epoch": round(quota / natural, 6) if natural else 0.0,
                "consumed_tokens": int(consumed[i]),
                "consumed_share": round(int(consumed[i]) / total, 6),
                "rank_tokens": int(self._rank_tokens[i]),
            }
        return {
            "epoch": self.epoch,
            "position": self._position,
            "windows_this_cut": len(self),
            "rank": self.rank,
            "world_size": self.world_size,
            "epoch_tokens": self.total_tokens,
            "sources": sources,
        }

    # ----- checkpointing -----
    def state_dict(self, position: int | None = None) -> dict[str, Any]:
        """Where training is: enough to continue with the very next window after a restart,
        under the same or another ``world_size``. ``position`` overrides the windows yielded
        (the torch adapter's batches-consumed view)."""
        pos = self._position if position is None else position
        return {
            "format": STATE_FORMAT,
            "epoch": self.epoch,
            "position": pos,
            "seed": self.seed,
            "seq_len": self.seq_len,
            "rank": self.rank,
            "world_size": self.world_size,
            "shuffle": self.shuffle,
            "shuffle_blocks": self.shuffle_blocks,
            "drop_last": self.drop_last,
            "total_tokens": self.total_tokens,
            "sources": [
                {"name": s.name, "tokens": n, "epoch_tokens": q}
                for s, n, q in zip(self.sources, self.natural_tokens, self.quotas, strict=True)
            ],
            "segments": [[a, b] for a, b in self._segments.ranges],
            "consumed_tokens": self._source_dict(
                self._consumed_before + self._consumed_in_cut(pos)
            ),
            "rank_tokens": self._source_dict(self._rank_tokens),
        }

    def _check_state(self, state: dict[str, Any]) -> None:
        fmt = state.get("format")
        if fmt not in (STATE_FORMAT, _OLD_STATE_FORMAT):
            raise OutputError(f"loader state format {fmt!r} != {STATE_FORMAT!r}")
        if fmt == _OLD_STATE_FORMAT and (len(self.sources) > 1 or self.weights is not None):
            raise OutputError("a single-output loader state cannot resume a mixture")
        keys = ["seed", "seq_len", "shuffle", "shuffle_blocks", "drop_last", "total_tokens"]
        if fmt == _OLD_STATE_FORMAT or not self.drop_last:
            keys += ["rank", "world_size"]  # exact resume only
        for key in keys:
            if state[key] != getattr(self, key):
                raise OutputError(
                    f"loader state has {key}={state[key]!r} but this loader has "
                    f"{getattr(self, key)!r}; resuming would repeat or skip tokens. Build the "
                    f"loader with the same arguments (and the same output folders)"
                    + (
                        "; a new world_size needs drop_last=True"
                        if key in ("rank", "world_size")
                        else ""
                    )
                )
        if fmt == STATE_FORMAT:
            mine = self.state_dict(0)["sources"]
            if state["sources"] != mine:
                raise OutputError(
                    f"loader state is for sources {state['sources']} but this loader reads "
                    f"{mine}; resuming would repeat or skip tokens"
                )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (any rank's); refuse one that cuts the stream differently.

        Same ``world_size`` and ``rank``: the next window of that rank. Another world size or
        rank assignment (``drop_last=True``): what all ranks consumed is taken out and the rest
        of the epoch is cut for this world (docs/training.md, "Elastic resume").
        """
        self._check_state(state)
        self.epoch = int(state["epoch"])
        segments = Segments(state.get("segments", [[0, self.total_tokens]]))
        position = int(state["position"])
        names = [s.name for s in self.sources]
        before = state.get("consumed_tokens")
        self._segments = segments
        if state["world_size"] == self.world_size and state["rank"] == self.rank:
            self._position = position
            self._consumed_before = np.zeros(len(names), dtype=np.int64)
            if before is not None:
                self._consumed_before = np.array([before[n] for n in names], np.int64)
                self._consumed_before -= self._consumed_in_cut(position)
                self._rank_tokens = np.array(
                    [state.get("rank_tokens", {}).get(n, 0) for n in names], np.int64
                )
            return
        # Elastic: cut what the old world consumed out of the segments.
        old = (self.world_size, self.rank)
        self.world_size, self.rank = int(state["world_size"]), int(state["rank"])
        try:
            kept, cursor = [], 0
            for r in range(self.world_size):
                first, end = self._rank_windows(r)
                kept.append((cursor, first * self.window))  # rank r-1's unused windows
                cursor = min(end, first + position) * self.window
            kept.append((cursor, self._remaining()))  # the last rank's, and the remainder
        finally:
            self.world_size, self.rank = old
        # the state's consumed_tokens already count the old world's windows (new cut: none)
        self._consumed_before = np.array([(before or {})[n] for n in names], np.int64)
        self._segments = Segments(merge_ranges([g for a, b in kept for g in segments.map(a, b)]))
        self._position = 0
        self._rank_tokens = np.zeros(len(names), dtype=np.int64)

    def fresh_copy(self) -> TokenLoader:
        """This loader (index, plan, position, accounting) with its own file handles: what a
        DataLoader worker iterates, without reading the manifest again."""
        new = copy.copy(self)
        new._files = [_FileCache(s) for s in self.sources]
        new._consumed_before = self._consumed_before.copy()
        new._rank_tokens = self._rank_tokens.copy()
        return new

    def close(self) -> None:
        """Close open file handles (also done when the loader is garbage-collected)."""
        for cache in self._files:
            cache.close()
