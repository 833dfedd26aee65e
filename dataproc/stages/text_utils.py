"""Word splitting and small text helpers shared by the rule stages (no third-party imports).

``split_words`` is our stand-in for NLTK's ``word_tokenize`` (which FineWeb's reference code
uses): runs of word characters are words, every other non-space character is its own token.
Scripts written without spaces between words (Chinese, Japanese, Thai, Lao, Khmer, Myanmar,
Tibetan) are split one character per word, so word counts on such text are roughly a count of
morphemes instead of one giant "word" per sentence. All regexes here are single character
classes with one quantifier, so they run in linear time.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dataproc.document import Document

# Blocks of scripts that do not separate words with spaces. Hangul is left out: Korean does.
_SPACELESS_RANGES = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u0f00-\u0fff"  # Tibetan
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u2e80-\u2fdf"  # CJK radicals
    "\u3005-\u3007"  # CJK iteration marks, ideographic zero
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3100-\u312f"  # Bopomofo
    "\u31f0-\u31ff"  # Katakana extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0002fa1f"  # CJK extensions B..F, compatibility supplement
)

_TOKEN_RE = re.compile(rf"[{_SPACELESS_RANGES}]|[^\W{_SPACELESS_RANGES}]+|[^\w\s]")
_WORD_TOKEN_RE = re.compile(rf"[{_SPACELESS_RANGES}]|[^\W{_SPACELESS_RANGES}]+")
# On ASCII text the pattern above is exactly runs of [A-Za-z0-9_], which matches ~2x faster.
_ASCII_WORD_RE = re.compile(r"[A-Za-z0-9_]+")
_WORD_CHAR_RE = re.compile(r"\w")

SPACELESS_LANGUAGES: frozenset[str] = frozenset(
    {"zh", "ja", "th", "lo", "km", "my", "bo", "yue", "wuu"}
)
"""ISO 639 codes of languages written without spaces between words (word-length rules skip them)."""


def split_tokens(text: str) -> list[str]:
    """Split text into word tokens and single-character punctuation/symbol tokens."""
    return _TOKEN_RE.findall(text)


def is_word(token: str) -> bool:
    """True for tokens holding at least one word character (letters, digits, ideographs)."""
    return _WORD_CHAR_RE.search(token) is not None


def split_words(text: str) -> list[str]:
    """Words of ``text``: tokens with a word character; punctuation and symbols left out."""
    if text.isascii():
        return _ASCII_WORD_RE.findall(text)
    return _WORD_TOKEN_RE.findall(text)


def doc_words(doc: Document) -> tuple[str, ...]:
    """``split_words(doc.text)`` as a tuple, kept on the document while its text is unchanged.

    The Gopher repetition and Gopher quality filters run one after the other on the same text
    and both need its words, so they split it once (~0.15 ms per document saved). FineWeb uses
    it too, unless C4 rewrote the text in between (a new string: split again). The cache is
    the document's own (``Document.word_cache``), compared by identity with its text: nothing
    is shared between documents, threads or processes.
    """
    text = doc.text
    cached = doc.word_cache
    if cached is not None and cached[0] is text:
        return cached[1]
    words = tuple(split_words(text))
    doc.word_cache = (text, words)
    return words


def base_language(language: str | None) -> str | None:
    """``"zh-Hans"`` / ``"pt_BR"`` / ``"__label__en"`` → ``"zh"`` / ``"pt"`` / ``"en"``."""
    if not language:
        return None
    lang = language.removeprefix("__label__").lower()
    return re.split(r"[-_]", lang, maxsplit=1)[0] or None
