"""MinHash signatures, LSH band keys and exact-text keys for one document.

Signatures are exactly datasketch's: ``MinHash(num_perm, seed)`` after ``update_batch`` of the
document's word shingles (datasketch 2.x default scheme ``affine32``: SHA-1 → MurmurHash3
finalizer → ``a*h + b mod 2**32``). We call datasketch itself rather than re-implementing it,
so signatures can be compared with any other datasketch user's.

Band keys and exact keys are 64-bit BLAKE2b digests of explicit little-endian bytes: unlike
Python's ``hash()`` they are the same in every process, on every platform, in every run.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dataproc.dedup.config import DedupConfig
from dataproc.errors import DedupError

if TYPE_CHECKING:
    from numpy.typing import NDArray

# Shingles are fed to datasketch in chunks so that a huge document needs
# O(chunk * num_perm) memory, not O(shingles * num_perm); min is associative, so the
# signature is the same as one big update_batch.
_CHUNK_SHINGLES = 4096

# Runs of decimal digits (any script; \d is Unicode-aware) become one "0": numbers that
# differ (prices, dates, counters) should not make near-identical pages look different.
# A single character class with one quantifier: linear time.
_DIGITS = re.compile(r"\d+")

_PUNCT_TABLE: dict[int, str] | None = None


def _punctuation_table() -> dict[int, str]:
    """str.translate table mapping every Unicode punctuation (P*) and symbol (S*) to a space."""
    global _PUNCT_TABLE
    if _PUNCT_TABLE is None:
        table: dict[int, str] = {}
        # Planes 2-16 (ideograph extensions, tags, private use) hold no P*/S* characters
        # (checked for the Unicode version of this Python): scanning only planes 0-1 makes
        # building the table 8x faster.
        for cp in range(0x20000):
            if unicodedata.category(chr(cp))[0] in "PS":
                table[cp] = " "
        _PUNCT_TABLE = table
    return _PUNCT_TABLE


def normalize_for_dedup(text: str) -> str:
    """Canonical form of ``text`` for dedup (after datatrove's ``simplify_text``).

    Steps, and why:
    1. NFKC: folds compatibility variants (full-width letters, ligatures, superscripts) that
       render the same but hash differently.
    2. ``str.lower``: case differences are not content differences.
    3. Unicode punctuation and symbols (categories P*, S*) → space: boilerplate
       punctuation/emoji changes should not break shingles; replacing with a space (not
       deleting) keeps ``word,word`` as two words.
    4. Each run of digits → ``0`` (datatrove ``norm_numbers``).
    5. Whitespace runs → one space, stripped.

    Unlike datatrove we do not strip diacritics: removing combining marks would also erase
    vowel signs of Indic and Southeast-Asian scripts and merge unrelated words.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.translate(_punctuation_table())
    text = _DIGITS.sub("0", text)
    return " ".join(text.split())


def word_shingles(text: str, n: int) -> list[bytes]:
    """Word ``n``-grams of the normalized ``text`` as UTF-8 bytes (words joined by a space).

    A text of fewer than ``n`` words (but at least one) gives one shingle of all its words;
    a text with no words gives no shingles (its signature is then datasketch's empty one,
    shared by every word-less document, so such documents dedup against each other).
    """
    words = normalize_for_dedup(text).split(" ")
    return _shingles_of_words(words, n)


def _shingles_of_words(words: list[str], n: int) -> list[bytes]:
    if not words or words == [""]:
        return []
    if len(words) <= n:
        return [" ".join(words).encode("utf-8", "surrogatepass")]
    # Encode each word once and join bytes with C-level map/zip (3x faster than joining and
    # encoding per shingle); UTF-8 of a space-joined string is the space-joined UTF-8.
    encoded = [w.encode("utf-8", "surrogatepass") for w in words]
    return list(map(b" ".join, zip(*(encoded[i:] for i in range(n)), strict=False)))


def _digest64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


class MinHasher:
    """Computes signatures, band keys and exact keys for one dedup configuration.

    Build once per worker and reuse: the permutation parameters are generated once and shared
    with every per-document ``datasketch.MinHash``.
    """

    def __init__(self, config: DedupConfig) -> None:
        from datasketch import MinHash

        self.config = config
        self._minhash_cls = MinHash
        template = MinHash(num_perm=config.num_perm, seed=config.seed)
        self._scheme: str = template.scheme
        self._permutations: Any = template.permutations
        # Band prefixes make the same row values in two different bands give different keys.
        self._band_prefix = [b.to_bytes(2, "little") for b in range(config.bands)]
        # phase 1 calls signature(text) then exact_key(text): normalize once for both.
        self._last_text: str | None = None
        self._last_norm = ""

    def _normalized(self, text: str) -> str:
        if text is not self._last_text:
            self._last_norm = normalize_for_dedup(text)
            self._last_text = text
        return self._last_norm

    def shingles(self, text: str) -> list[bytes]:
        """The shingles of ``text`` (same as ``word_shingles(text, config.ngram)``)."""
        return _shingles_of_words(self._normalized(text).split(" "), self.config.ngram)

    def signature_of_shingles(self, shingles: Sequence[bytes]) -> NDArray[np.uint64]:
        """MinHash of a shingle list: ``MinHash(num_perm, seed).update_batch(shingles)``."""
        m = self._minhash_cls(
            num_perm=self.config.num_perm,
            seed=self.config.seed,
            permutations=self._permutations,
            scheme=self._scheme,
        )
        for start in range(0, len(shingles), _CHUNK_SHINGLES):
            m.update_batch(shingles[start : start + _CHUNK_SHINGLES])
        return np.asarray(m.hashvalues, dtype=np.uint64)

    def signature(self, text: str) -> NDArray[np.uint64]:
        """MinHash signature of ``text``: ``(num_perm,)`` uint64, equal to datasketch's."""
        return self.signature_of_shingles(self.shingles(text))

    def band_keys(self, sig: NDArray[np.uint64]) -> NDArray[np.uint64]:
        """One 64-bit key per band: BLAKE2b-64 of (band id, the band's ``rows`` values).

        Values are serialized as little-endian uint64 so keys agree across platforms.
        """
        cfg = self.config
        if sig.shape != (cfg.num_perm,):
            raise DedupError(
                f"band_keys: signature has shape {sig.shape}, expected ({cfg.num_perm},); "
                "pass the output of MinHasher.signature with the same config"
            )
        raw = np.ascontiguousarray(sig, dtype="<u8").tobytes()
        width = cfg.rows * 8
        keys = np.empty(cfg.bands, dtype=np.uint64)
        for b in range(cfg.bands):
            keys[b] = _digest64(self._band_prefix[b] + raw[b * width : (b + 1) * width])
        return keys

    def exact_key(self, text: str) -> int:
        """64-bit BLAKE2b key of the normalized text (equal keys ⇒ same text after normalizing)."""
        return _digest64(b"exact\x00" + self._normalized(text).encode("utf-8", "surrogatepass"))
