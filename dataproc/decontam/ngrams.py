"""Normalized, hashed word n-grams: the one definition shared by eval items and documents.

Normalization: Unicode NFKC, lower case, words = maximal runs of letters and digits (``_`` and
punctuation separate words). An n-gram's key is a 64-bit polynomial hash of its word hashes,
salted with ``n`` so grams of different lengths never collide by construction.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np
from numpy.typing import NDArray

_WORD = re.compile(r"[^\W_]+")
_BASE = np.uint64(0x100000001B3)  # FNV-64 prime: odd, so multiplication is invertible mod 2^64
_LENGTH_SALT = np.uint64(0x9E3779B97F4A7C15)
_WORD_CACHE: dict[str, int] = {}
_WORD_CACHE_MAX = 1 << 20


def words_with_spans(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Normalized words of ``text`` and their character spans in ``text``.

    A word is lower-cased, then NFKC-normalized on its own (only when not ASCII), so spans
    always refer to the original text.
    """
    spans = [m.span() for m in _WORD.finditer(text)]
    low = text.lower()
    if len(low) == len(text):  # lower() kept every position (ASCII and most scripts)
        words = [low[a:b] for a, b in spans]
    else:
        words = [text[a:b].lower() for a, b in spans]
    if not text.isascii():
        words = [w if w.isascii() else unicodedata.normalize("NFKC", w) for w in words]
    return words, spans


def normalized_words(text: str) -> list[str]:
    """Normalized words of ``text``: exactly ``words_with_spans(text)[0]``, faster."""
    low = text.lower()
    if len(low) != len(text):
        return words_with_spans(text)[0]
    words = _WORD.findall(low)
    if not text.isascii():
        words = [w if w.isascii() else unicodedata.normalize("NFKC", w) for w in words]
    return words


def word_hashes(words: list[str]) -> NDArray[np.uint64]:
    """64-bit hashes of words (BLAKE2b; cached, since web vocabularies are Zipfian)."""
    out = np.empty(len(words), dtype=np.uint64)
    cache = _WORD_CACHE
    for i, w in enumerate(words):
        h = cache.get(w)
        if h is None:
            h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
            if len(cache) >= _WORD_CACHE_MAX:
                cache.clear()
            cache[w] = h
        out[i] = h
    return out


def gram_hashes(wh: NDArray[np.uint64], n: int) -> NDArray[np.uint64]:
    """Hashes of every window of ``n`` consecutive word hashes (empty if fewer words)."""
    count = wh.size - n + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        acc = np.zeros(count, dtype=np.uint64)
        for j in range(n):  # Horner: acc = acc * B + w[i + j]; n vector ops per document
            acc = acc * _BASE + wh[j : j + count]
        return acc ^ (np.uint64(n) * _LENGTH_SALT)
