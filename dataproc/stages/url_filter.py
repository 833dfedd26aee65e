"""URL filter: drop pages by block-listed domain / URL and by banned words in the URL.

The word rules follow FineWeb's URL filter (datatrove ``URLFilter``): the URL is lower-cased and
split on every run of non-alphanumeric characters into tokens; a *hard-banned* token drops the
page, ``soft_word_threshold`` distinct *soft-banned* tokens drop it, and a *banned sub-word*
anywhere in the URL with all non-alphanumerics removed drops it. Word lists are our own
(``dataproc/data/url_filter/``), extendable from the config.

Block lists: plain ``domains`` / ``urls`` files, or UT1 blacklist directories (one directory per
category, each with a ``domains`` and a ``urls`` file). A domain entry blocks the domain and
every subdomain; a URL entry blocks that URL and everything below it (``host/path`` prefix at a
``/`` boundary, scheme and ``www.`` ignored). Matching costs O(len(url)): a handful of set
lookups over the host's label suffixes and the path's ``/`` prefixes, plus one regex pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field

from dataproc.configbase import StrictModel
from dataproc.document import Document, Reject
from dataproc.errors import ConfigError
from dataproc.stages.base import Stage

DEFAULT_LIST_DIR = Path(__file__).resolve().parent.parent / "data" / "url_filter"

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


class UrlFilterConfig(StrictModel):
    """Drop pages whose URL is block-listed or contains banned words (FineWeb's URL filter)."""

    enabled: bool = Field(True, description="Run the URL filter.")
    use_default_word_lists: bool = Field(
        True,
        description="Load the bundled hard-banned, soft-banned and banned sub-word lists "
        "(dataproc/data/url_filter/). The extra_* lists are added on top.",
    )
    extra_banned_words: list[str] = Field(
        default_factory=list,
        description="More hard-banned words: a URL with one of them as a token is dropped.",
    )
    extra_soft_banned_words: list[str] = Field(
        default_factory=list,
        description="More soft-banned words: a URL with soft_word_threshold of them is dropped.",
    )
    extra_banned_subwords: list[str] = Field(
        default_factory=list,
        description="More banned sub-words: dropped if found anywhere in the URL with "
        "non-alphanumerics removed. Keep them long enough not to hit ordinary words.",
    )
    blocklist_dirs: list[str] = Field(
        default_factory=list,
        description="UT1-style blacklist directories (one sub-directory per category holding "
        "`domains` and `urls` files), e.g. an unpacked `blacklists/` folder.",
    )
    blocklist_categories: list[str] = Field(
        default_factory=lambda: ["adult"],
        description="Categories (sub-directories) of each blocklist_dirs entry to load.",
    )
    domain_files: list[str] = Field(
        default_factory=list,
        description="Files with one domain per line; each blocks the domain and its subdomains.",
    )
    url_files: list[str] = Field(
        default_factory=list,
        description="Files with one URL per line (scheme optional); each blocks that URL and "
        "the paths below it.",
    )
    allowed_domains: list[str] = Field(
        default_factory=list,
        description="Domains (and their subdomains) exempt from every URL rule.",
    )
    soft_word_threshold: int = Field(
        2, ge=1, description="Drop a URL holding at least this many distinct soft-banned words."
    )


def normalize_word(word: str) -> str:
    """A list entry as matched: lower case with every non-alphanumeric removed (FineWeb)."""
    return _NON_ALNUM.sub("", word.lower())


def url_tokens(url: str) -> set[str]:
    """Distinct lower-case alphanumeric tokens of a URL."""
    return {t for t in _NON_ALNUM.split(url.lower()) if t}


def _read_lines(path: Path) -> Iterable[str]:
    """Non-empty, non-comment lines of a list file; a missing file is a ConfigError."""
    if not path.is_file():
        raise ConfigError(
            f"url_filter: list file {str(path)!r} does not exist; fix the path in the url_filter "
            "section or remove it"
        )
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                yield line


def _clean_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def _clean_url_entry(entry: str) -> str:
    """``http://www.Site.com/a/b/`` → ``site.com/a/b`` (the form URLs are matched in)."""
    entry = entry.strip()
    if "://" in entry:
        entry = entry.split("://", 1)[1]
    host, sep, rest = entry.partition("/")
    out = _clean_host(host) + sep + rest
    return out.rstrip("/")


_Trie = dict[str, "_Trie"]  # one node per character; "" marks the end of a word


def _trie_regex(words: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for a set of literal words, factored as a prefix trie.

    Python's ``re`` tries alternatives one by one; sharing prefixes makes each position cost
    O(longest word) instead of O(number of words). No quantifiers, so no backtracking blow-up.
    """
    trie: _Trie = {}
    for w in words:
        if not w:
            continue
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}
    if not trie:
        return None

    def build(node: _Trie) -> str:
        alts = []
        end = "" in node
        for ch in sorted(k for k in node if k):
            alts.append(re.escape(ch) + build(node[ch]))
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        # A word ending here: the longer continuations are optional.
        return f"(?:{body})?" if end else body

    return re.compile(build(trie))


class UrlFilter(Stage):
    """Drop documents by URL block lists and banned URL words. ``detail`` names the rule hit."""

    name: ClassVar[str] = "url_filter"
    REASONS: ClassVar[tuple[str, ...]] = (
        "invalid_url",
        "blocked_domain",
        "blocked_subdomain",
        "blocked_url",
        "hard_banned_word",
        "soft_banned_words",
        "banned_subword",
    )

    def __init__(self, config: UrlFilterConfig | None = None) -> None:
        self.config = config or UrlFilterConfig()
        self._ready = False
        self.domains: set[str] = set()
        self.urls: set[str] = set()
        self.allowed: set[str] = set()
        self.banned_words: set[str] = set()
        self.soft_banned_words: set[str] = set()
        self._subword_re: re.Pattern[str] | None = None
        self._max_url_len = 0

    def setup(self) -> None:
        """Load every list once; raises ConfigError naming a missing file or directory."""
        if self._ready:
            return
        cfg = self.config
        banned: set[str] = set()
        soft: set[str] = set()
        subwords: set[str] = set()
        if cfg.use_default_word_lists:
            banned.update(_read_lines(DEFAULT_LIST_DIR / "banned_words.txt"))
            soft.update(_read_lines(DEFAULT_LIST_DIR / "soft_banned_words.txt"))
            subwords.update(_read_lines(DEFAULT_LIST_DIR / "banned_subwords.txt"))
        banned.update(cfg.extra_banned_words)
        soft.update(cfg.extra_soft_banned_words)
        subwords.update(cfg.extra_banned_subwords)
        self.banned_words = {n for n in map(normalize_word, banned) if n}
        self.soft_banned_words = {n for n in map(normalize_word, soft) if n}
        self._subword_re = _trie_regex({n for n in map(normalize_word, subwords) if n})

        domain_files = [Path(p) for p in cfg.domain_files]
        url_files = [Path(p) for p in cfg.url_files]
        for d in cfg.blocklist_dirs:
            root = Path(d)
            if not root.is_dir():
                raise ConfigError(
                    f"url_filter.blocklist_dirs: {d!r} is not a directory; point it at an "
                    "unpacked UT1 `blacklists/` folder"
                )
            for cat in cfg.blocklist_categories:
                cat_dir = root / cat
                if not cat_dir.is_dir():
                    raise ConfigError(
                        f"url_filter.blocklist_categories: {str(cat_dir)!r} does not exist; "
                        f"choose categories present in {d!r}"
                    )
                # UT1 categories normally have both files; tolerate one missing but not both.
                found = False
                for fname, bucket in (("domains", domain_files), ("urls", url_files)):
                    if (cat_dir / fname).is_file():
                        bucket.append(cat_dir / fname)
                        found = True
                if not found:
                    raise ConfigError(
                        f"url_filter: {str(cat_dir)!r} holds neither a `domains` nor a `urls` file"
                    )
        self.domains = {_clean_host(h) for p in domain_files for h in _read_lines(p)}
        self.domains.discard("")
        self.urls = {_clean_url_entry(u) for p in url_files for u in _read_lines(p)}
        self.urls.discard("")
        self._max_url_len = max(map(len, self.urls), default=0)
        self.allowed = {_clean_host(h) for h in cfg.allowed_domains if h.strip()}
        self._ready = True

    @staticmethod
    def _suffixes(host: str) -> list[str]:
        """``a.b.example.com`` → ``[a.b.example.com, b.example.com, example.com, com]``."""
        out = [host]
        i = host.find(".")
        while i != -1:
            out.append(host[i + 1 :])
            i = host.find(".", i + 1)
        return out

    def check(self, url: str) -> Reject | None:
        """The Reject for ``url``, or None if it passes every rule."""
        if not self._ready:
            self.setup()
        try:
            parts = urlsplit(url.strip())
            host = parts.hostname
        except ValueError as e:
            return Reject("invalid_url", f"invalid_url:{e}")
        if not host:
            return Reject("invalid_url", "invalid_url:no host")
        if len(host) > 253:
            # DNS caps names at 253 characters; also keeps the suffix lookups O(len(url)).
            return Reject("invalid_url", "invalid_url:host longer than 253 characters")
        host = _clean_host(host)
        suffixes = self._suffixes(host)
        if self.allowed and any(s in self.allowed for s in suffixes):
            return None

        if self.domains:
            for i, s in enumerate(suffixes):
                if s in self.domains:
                    return (
                        Reject("blocked_domain", f"domain:{s}")
                        if i == 0
                        else Reject("blocked_subdomain", f"subdomain:{s}")
                    )

        if self.urls:
            # Entries are at most _max_url_len long, so longer prefixes cannot match.
            path = parts.path[: self._max_url_len].rstrip("/")
            full = host + path
            # host, host/a, host/a/b, ... : a URL entry blocks everything below it.
            cut = len(host)
            while True:
                if full[:cut] in self.urls:
                    return Reject("blocked_url", f"url:{full[:cut]}")
                if cut >= len(full):
                    break
                nxt = full.find("/", cut + 1)
                cut = len(full) if nxt == -1 else nxt
            if (
                parts.query
                and len(full) + len(parts.query) < self._max_url_len
                and (f"{full}?{parts.query}" in self.urls)
            ):
                return Reject("blocked_url", f"url:{full}?{parts.query}")

        tokens = url_tokens(url)
        hard_hits = tokens & self.banned_words
        if hard_hits:
            return Reject("hard_banned_word", f"word:{min(hard_hits)}")
        soft_hits = tokens & self.soft_banned_words
        if len(soft_hits) >= self.config.soft_word_threshold:
            return Reject("soft_banned_words", "soft_words:" + ",".join(sorted(soft_hits)))
        if self._subword_re is not None:
            m = self._subword_re.search(_NON_ALNUM.sub("", url.lower()))
            if m:
                return Reject("banned_subword", f"subword:{m.group(0)}")
        return None

    def process(self, doc: Document) -> Document | Reject:
        rejected = self.check(doc.url)
        return doc if rejected is None else rejected
