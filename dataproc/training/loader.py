"""Packed, sharded, shuffled, resumable token sequences from a dataproc output (no PyTorch).

The contract (docs/training.md has the long form):

* **Blocks.** The unit of I/O is a *block* = one Parquet row group of one token file. At
  start-up the loader reads every file's footer and its ``num_tokens`` column to learn each
  block's token count (memory: a few integers per block, never the tokens).
* **The epoch stream.** For ``(seed, epoch)`` the blocks are put in a seeded random order and
  cut into *groups* of ``shuffle_blocks`` consecutive blocks; the documents of a group are
  permuted with a seeded permutation and concatenated (each ends with EOT). Concatenating the
  groups gives one global token stream of ``T`` tokens, identical on every rank, defined
  without reading any token. With ``shuffle=False`` blocks stay in manifest order and documents
  in file order.
* **Windows.** The stream is cut into non-overlapping windows of ``seq_len + 1`` tokens:
  window ``j`` is ``stream[j*(seq_len+1) : (j+1)*(seq_len+1)]``; a training step uses
  ``x = w[:-1]``, ``y = w[1:]``. Documents are packed across window boundaries (a long
  document spans several windows).
* **Ranks.** With ``drop_last=True`` every rank gets ``n = (T // (seq_len+1)) // world_size``
  windows, rank ``r`` the contiguous run ``[r*n, (r+1)*n)``. So ranks are disjoint, equal
  (no collective hangs on an uneven last step), and every token is used exactly once per
  epoch except the last ``T - world_size*n*(seq_len+1)`` tokens of the stream, which are
  dropped (they move to a different place in the next epoch's shuffle). With
  ``drop_last=False`` all ``ceil(T/(seq_len+1))`` windows are used, the last one may be
  shorter, and rank counts may differ by one.
* **Memory** is one group (``shuffle_blocks`` row groups) plus one window, whatever the size
  of the dataset. A rank reads only the groups overlapping its windows.
* **Resume.** ``state_dict()`` records the epoch and the number of windows already yielded;
  ``load_state_dict`` continues with the next window, so the concatenation of the two runs
  equals the uninterrupted stream.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataproc.errors import OutputError
from dataproc.io import fs
from dataproc.io.manifest import read_manifest
from dataproc.io.token_writer import TOKEN_LIST_TYPE

STATE_FORMAT = "dataproc.TokenLoader/1"
_SEED_TAG_BLOCKS = 0x5EED_B10C
_SEED_TAG_DOCS = 0xD0C5


@dataclass(frozen=True)
class Block:
    """One row group of one token file and how many documents/tokens it holds."""

    file: int  # index into the manifest's files
    row_group: int
    rows: int
    tokens: int


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


class _FileCache:
    """A few open ParquetFile handles (blocks come from random files; footers are reused)."""

    def __init__(self, out_dir: str, paths: list[str], size: int = 8) -> None:
        self.out_dir = out_dir
        self.paths = paths
        self.size = size
        self._open: OrderedDict[int, Any] = OrderedDict()

    def get(self, file: int) -> Any:
        import pyarrow.parquet as pq

        if file in self._open:
            self._open.move_to_end(file)
            return self._open[file]
        handle = fs.open_input(fs.join(self.out_dir, self.paths[file]))
        pf = pq.ParquetFile(handle)
        self._open[file] = (pf, handle)
        if len(self._open) > self.size:
            _, (_, old) = self._open.popitem(last=False)
            old.close()
        return self._open[file]

    def read_block(self, block: Block) -> tuple[np.ndarray, np.ndarray]:
        """(values uint32, offsets int64) of the block's input_ids column."""
        import pyarrow as pa

        pf, _ = self.get(block.file)
        table = pf.read_row_group(block.row_group, columns=["input_ids"])
        col = table.column("input_ids").combine_chunks()
        if isinstance(col, pa.ChunkedArray):  # pragma: no cover - combine_chunks on 0 chunks
            col = pa.concat_arrays(col.chunks) if col.chunks else pa.array([], TOKEN_LIST_TYPE)
        offsets = col.offsets.to_numpy().astype(np.int64)
        values = col.values.to_numpy(zero_copy_only=False)
        base = offsets[0]
        return values[base : offsets[-1]], offsets - base

    def close(self) -> None:
        for _, handle in self._open.values():
            handle.close()
        self._open.clear()


def index_blocks(out_dir: str, manifest: dict) -> list[Block]:
    """Every (file, row group) with its token count, checking each file's schema."""
    import pyarrow.parquet as pq

    blocks: list[Block] = []
    for fi, entry in enumerate(manifest["files"]):
        path = fs.join(out_dir, entry["path"])
        with fs.open_input(path) as handle:
            pf = pq.ParquetFile(handle)
            check_token_schema(pf.schema_arrow, path)
            for rg in range(pf.num_row_groups):
                n = pf.read_row_group(rg, columns=["num_tokens"]).column(0)
                tokens = int(np.asarray(n.to_numpy(), dtype=np.int64).sum())
                blocks.append(Block(fi, rg, pf.metadata.row_group(rg).num_rows, tokens))
    return blocks


class TokenLoader:
    """Iterate packed windows of ``seq_len + 1`` token ids (NumPy ``int64``) for one rank.

    Yields ``np.ndarray`` of shape ``(seq_len + 1,)``; with ``return_boundaries=True`` yields
    ``(window, eot_positions)`` where ``eot_positions`` (int64, ascending) are the indices in
    ``window`` holding the EOT token, i.e. the last token of each document (for intra-document
    attention masks). One pass over the iterator is one epoch; afterwards the loader moves to
    ``epoch + 1`` by itself. ``len(loader)`` is the number of windows this rank yields per epoch.
    """

    def __init__(
        self,
        out_dir: str,
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
    ) -> None:
        if seq_len < 1:
            raise OutputError(f"seq_len={seq_len}: must be >= 1")
        if world_size < 1 or not 0 <= rank < world_size:
            raise OutputError(f"rank={rank}, world_size={world_size}: need 0 <= rank < world_size")
        if shuffle_blocks < 1:
            raise OutputError(f"shuffle_blocks={shuffle_blocks}: must be >= 1")
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
        self.manifest = read_manifest(out_dir)
        tok = self.manifest["tokenizer"]
        if tok.get("dtype") != "uint32" or tok.get("vocab_size") is None:
            raise OutputError(
                f"{out_dir}: manifest tokenizer info lacks dtype uint32 / vocab_size; "
                "run `dataproc verify` on it"
            )
        self.eot_id = int(tok["eot_id"])
        self.vocab_size = int(tok["vocab_size"])
        self.blocks = index_blocks(out_dir, self.manifest)
        self.total_tokens = sum(b.tokens for b in self.blocks)
        self._position = 0  # windows of this rank already yielded in self.epoch
        self._files = _FileCache(out_dir, [f["path"] for f in self.manifest["files"]])

    # ----- the plan (pure functions of seed, epoch, rank; no token is read) -----
    @property
    def window(self) -> int:
        return self.seq_len + 1

    def _rank_range(self) -> tuple[int, int]:
        """[first, end) window indices of this rank in the epoch stream."""
        total = self.total_tokens
        if self.drop_last:
            n = (total // self.window) // self.world_size
            return self.rank * n, (self.rank + 1) * n
        num = -(-total // self.window)
        base, extra = divmod(num, self.world_size)
        first = self.rank * base + min(self.rank, extra)
        return first, first + base + (1 if self.rank < extra else 0)

    def __len__(self) -> int:
        first, end = self._rank_range()
        return end - first

    def _groups(self, epoch: int) -> list[list[Block]]:
        order = list(range(len(self.blocks)))
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch, _SEED_TAG_BLOCKS])
            order = [int(i) for i in rng.permutation(len(self.blocks))]
        k = self.shuffle_blocks
        return [[self.blocks[i] for i in order[s : s + k]] for s in range(0, len(order), k)]

    def _group_tokens(self, epoch: int, g: int, group: list[Block]) -> np.ndarray:
        """The group's documents, permuted (seeded by seed, epoch, group), concatenated."""
        pieces: list[np.ndarray] = []
        for block in group:
            values, offsets = self._files.read_block(block)
            pieces.extend(values[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1))
        if self.shuffle and len(pieces) > 1:
            rng = np.random.default_rng([self.seed, epoch, _SEED_TAG_DOCS, g])
            pieces = [pieces[int(i)] for i in rng.permutation(len(pieces))]
        if not pieces:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(pieces).astype(np.int64)

    # ----- iteration -----
    def __iter__(self) -> Iterator[Any]:
        epoch = self.epoch
        first, end = self._rank_range()
        start_w = first + self._position
        if start_w >= end:
            self._next_epoch()
            return
        groups = self._groups(epoch)
        sizes = np.array([sum(b.tokens for b in grp) for grp in groups], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        pos = start_w * self.window  # global token offset of the next window
        stop = min(end * self.window, self.total_tokens)
        g = int(np.searchsorted(starts, pos, side="right") - 1)
        buf = np.zeros(0, dtype=np.int64)
        buf_start = pos  # global stream offset of buf[0]
        while pos < stop:
            need_end = min(pos + self.window, stop)
            while buf_start + len(buf) < need_end:
                chunk = self._group_tokens(epoch, g, groups[g])
                if len(buf) == 0:
                    buf, buf_start = chunk, int(starts[g])
                else:
                    # groups are loaded in order, so chunk continues buf; keep only what is
                    # still needed: memory stays about one group plus one window
                    buf = np.concatenate([buf[pos - buf_start :], chunk])
                    buf_start = pos
                g += 1
            lo = pos - buf_start
            seq = buf[lo : lo + (need_end - pos)]
            pos = need_end
            self._position += 1
            if self.return_boundaries:
                yield seq, np.flatnonzero(seq == self.eot_id).astype(np.int64)
            else:
                yield seq
        self._next_epoch()

    def _next_epoch(self) -> None:
        self.epoch += 1
        self._position = 0

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its first window (call between epochs, like DistributedSampler)."""
        self.epoch = epoch
        self._position = 0

    # ----- checkpointing -----
    def state_dict(self) -> dict[str, Any]:
        """Where this rank is: enough to continue with the very next window after a restart."""
        return {
            "format": STATE_FORMAT,
            "epoch": self.epoch,
            "position": self._position,
            "seed": self.seed,
            "seq_len": self.seq_len,
            "rank": self.rank,
            "world_size": self.world_size,
            "shuffle": self.shuffle,
            "shuffle_blocks": self.shuffle_blocks,
            "drop_last": self.drop_last,
            "total_tokens": self.total_tokens,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``; refuse one from a loader that cuts the stream differently."""
        if state.get("format") != STATE_FORMAT:
            raise OutputError(f"loader state format {state.get('format')!r} != {STATE_FORMAT!r}")
        for key in (
            "seed",
            "seq_len",
            "rank",
            "world_size",
            "shuffle",
            "shuffle_blocks",
            "drop_last",
            "total_tokens",
        ):
            if state[key] != getattr(self, key):
                raise OutputError(
                    f"loader state has {key}={state[key]!r} but this loader has "
                    f"{getattr(self, key)!r}; resuming would repeat or skip tokens. Build the "
                    f"loader with the same arguments (and the same output folder)"
                )
        self.epoch = int(state["epoch"])
        self._position = int(state["position"])

    def close(self) -> None:
        """Close open file handles (also done when the loader is garbage-collected)."""
        self._files.close()
