"""The run's robots.txt host index: built once from the crawl's robots.txt captures.

Common Crawl stores the robots.txt responses it fetched in ``robotstxt/*.warc.gz`` files per
segment. ``build_robots_index`` streams such WARC files once and writes a compact index folder:

- ``hosts.npy``: sorted 64-bit hashes of every host with a captured robots.txt (any status), so
  "no robots.txt was captured" can be told from "captured, and it says nothing about AI";
- ``rules.parquet``: for the hosts whose robots.txt names at least one of the configured agents,
  the capture's status and body (zstd per row, the first ``MAX_ROBOTS_BYTES`` as RFC 9309
  allows). Only those hosts can opt a listed agent out: when no listed agent is named, every
  listed agent follows the ``*`` group exactly as CCBot did when it fetched the page;
- ``tdmrep.parquet``: captured ``/.well-known/tdmrep.json`` policies (TDMRep) per host;
- ``meta.json``: the agents, the files read, counters, and checksums of the files above.

Workers load the index once per process (``RobotsIndex.load`` is cached by path) and look hosts
up by binary search; the robots.txt of a host is parsed with ``protego`` on first use.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from dataproc.errors import InputError
from dataproc.io import fs

MAX_ROBOTS_BYTES = 500 * 1024  # RFC 9309, 2.5: crawlers must parse at least 500 KiB
INDEX_VERSION = 1
TDMREP_PATH = "/.well-known/tdmrep.json"


def host_hash(host: str) -> int:
    """Stable 64-bit hash of a lower-case host name (the index key)."""
    return int.from_bytes(hashlib.blake2b(host.encode("utf-8"), digest_size=8).digest(), "little")


def _agent_pattern(agents: Iterable[str]) -> re.Pattern[str]:
    names = "|".join(re.escape(a.lower()) for a in agents)
    return re.compile(rf"^\s*user-agent\s*:\s*[^\n]*?({names})", re.IGNORECASE | re.MULTILINE)


@dataclass(slots=True)
class _Capture:
    host: str
    status: int
    body: bytes
    order: int  # input order, for a deterministic choice between captures of one host
    https: bool


@dataclass
class IndexStats:
    """What building the index read and kept (written to meta.json)."""

    files: int = 0
    records: int = 0
    counters: Counter[str] = field(default_factory=Counter)


def _iter_captures(path: str, order_base: int, stats: IndexStats) -> Iterator[tuple[str, _Capture]]:
    """Yield ``(kind, capture)`` for robots.txt and tdmrep.json responses of one WARC file.

    Damaged files are read as far as they go and counted; they never stop the build.
    """
    from warcio.archiveiterator import ArchiveIterator

    n = 0
    end = 0  # where the last complete record ended: the rest of the file was not readable
    try:
        with fs.open_input(path) as stream:
            it = ArchiveIterator(stream, arc2warc=True)
            for record in it:
                if record.rec_type != "response":
                    continue
                stats.records += 1
                uri = record.rec_headers.get_header("WARC-Target-URI") or ""
                parts = urlsplit(uri.strip("<>"))
                host = (parts.hostname or "").lower()
                if not host:
                    stats.counters["no_host"] += 1
                    continue
                kind = (
                    "robots"
                    if parts.path == "/robots.txt"
                    else "tdmrep"
                    if parts.path == TDMREP_PATH
                    else None
                )
                if kind is None:
                    stats.counters["other_url"] += 1
                    continue
                http = record.http_headers
                status = 0
                if http is not None:
                    try:
                        status = int((http.get_statuscode() or "0")[:3])
                    except ValueError:
                        status = 0
                body = record.content_stream().read(MAX_ROBOTS_BYTES + 1)
                if len(body) > MAX_ROBOTS_BYTES:
                    stats.counters["robots_truncated"] += 1
                    body = body[:MAX_ROBOTS_BYTES]
                if kind == "robots" and 300 <= status < 400 and http is not None:
                    # Keep the redirect target's host: resolved against captures at the end.
                    target = urlsplit(http.get_header("Location") or "").hostname or ""
                    body = target.lower().encode()
                n += 1
                yield kind, _Capture(host, status, body, order_base + n, parts.scheme == "https")
            end = it.offset
    except Exception as e:  # a damaged robots file is counted, never fatal
        stats.counters[f"damaged_file:{type(e).__name__}"] += 1
        return
    total = fs.size(path)
    if end < total:
        # warcio stops quietly at bytes it cannot parse: count them, never lose them silently.
        stats.counters["damaged_file:unread_tail"] += 1
        stats.counters["unread_bytes"] += total - end


def _better(a: _Capture, b: _Capture) -> bool:
    """Whether capture ``a`` should represent its host rather than ``b`` (deterministic)."""
    key_a = (a.status != 200, not a.https, a.order)
    key_b = (b.status != 200, not b.https, b.order)
    return key_a < key_b


def list_robots_files(paths: Iterable[str]) -> list[str]:
    """Robots WARC files from files and folders (folders: ``*.warc.gz`` / ``*.warc``, sorted)."""
    out: list[str] = []
    for p in paths:
        if _isdir(p):
            found = sorted(f for f in fs.listdir(p) if f.endswith((".warc.gz", ".warc", ".arc.gz")))
            if not found:
                raise InputError(f"--robots {p}: folder holds no .warc.gz / .warc files")
            out.extend(found)
        elif fs.exists(p):
            out.append(p)
        else:
            raise InputError(f"--robots {p}: no such file or folder")
    return out


def _isdir(path: str) -> bool:
    filesystem, inner = fs.get_fs(path)
    return bool(filesystem.isdir(inner))


def build_robots_index(paths: list[str], agents: list[str], out_dir: str) -> dict[str, Any]:
    """Read robots.txt WARC files once and write the index folder ``out_dir``; return meta."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = list_robots_files(paths)
    pattern = _agent_pattern(agents)
    stats = IndexStats()
    best: dict[str, _Capture] = {}
    relevant: set[str] = set()
    tdmrep: dict[str, _Capture] = {}
    hashes: list[np.ndarray] = []
    batch: list[int] = []
    for i, path in enumerate(files):
        stats.files += 1
        for kind, cap in _iter_captures(path, i << 32, stats):
            if kind == "tdmrep":
                if cap.status == 200 and (cap.host not in tdmrep or _better(cap, tdmrep[cap.host])):
                    tdmrep[cap.host] = cap
                continue
            batch.append(host_hash(cap.host))
            if len(batch) >= 1 << 20:
                hashes.append(np.unique(np.asarray(batch, dtype=np.uint64)))
                batch = []
            text = cap.body.decode("utf-8", "replace") if cap.status == 200 else ""
            names_agent = cap.status == 200 and pattern.search(text) is not None
            redirect = 300 <= cap.status < 400
            if names_agent or redirect or cap.host in relevant:
                # Keep only hosts that can matter; memory grows with them, not all hosts.
                if cap.host not in best or _better(cap, best[cap.host]):
                    best[cap.host] = cap
                if names_agent:
                    relevant.add(cap.host)
    hashes.append(np.asarray(batch, dtype=np.uint64))
    all_hosts = np.unique(np.concatenate(hashes)) if hashes else np.zeros(0, dtype=np.uint64)

    # One redirect hop: a host whose robots.txt redirected takes its target's rules.
    rules: dict[str, _Capture] = {}
    for host, cap in best.items():
        if 300 <= cap.status < 400:
            target = best.get(cap.body.decode())
            stats.counters["robots_redirect"] += 1
            if target is not None and target.status == 200 and target.host in relevant:
                rules[host] = _Capture(host, 200, target.body, cap.order, cap.https)
        elif host in relevant and cap.status == 200:
            rules[host] = cap
    stats.counters["hosts_naming_agents"] = len(rules)

    fs.makedirs(out_dir)
    rows = sorted(rules.values(), key=lambda c: host_hash(c.host))
    rules_table = pa.table(
        {
            "host_hash": pa.array([host_hash(c.host) for c in rows], type=pa.uint64()),
            "host": pa.array([c.host for c in rows], type=pa.string()),
            "robots": pa.array(
                [pa.compress(c.body, codec="zstd", asbytes=True) for c in rows],
                type=pa.binary(),
            ),
            "raw_size": pa.array([len(c.body) for c in rows], type=pa.int32()),
        }
    )
    tdm_rows = sorted(tdmrep.values(), key=lambda c: host_hash(c.host))
    tdm_table = pa.table(
        {
            "host_hash": pa.array([host_hash(c.host) for c in tdm_rows], type=pa.uint64()),
            "host": pa.array([c.host for c in tdm_rows], type=pa.string()),
            "policy": pa.array(
                [c.body.decode("utf-8", "replace") for c in tdm_rows], type=pa.string()
            ),
        }
    )
    checksums: dict[str, str] = {}
    for name, table in (("rules.parquet", rules_table), ("tdmrep.parquet", tdm_table)):
        path = fs.join(out_dir, name)
        with fs.atomic_write(path) as f:
            pq.write_table(table, f, compression="none")
        checksums[name] = fs.sha256_file(path)
    hosts_path = fs.join(out_dir, "hosts.npy")
    with fs.atomic_write(hosts_path) as f:
        np.save(f, all_hosts, allow_pickle=False)
    checksums["hosts.npy"] = fs.sha256_file(hosts_path)
    meta = {
        "version": INDEX_VERSION,
        "agents": list(agents),
        "files": files,
        "records": stats.records,
        "hosts": int(all_hosts.size),
        "hosts_naming_agents": len(rules),
        "tdmrep_hosts": len(tdm_rows),
        "counters": dict(sorted(stats.counters.items())),
        "checksums": checksums,
    }
    fs.write_json_atomic(fs.join(out_dir, "meta.json"), meta)
    return meta


@dataclass(frozen=True, slots=True)
class RobotsVerdict:
    """``captured``: the crawl holds a robots.txt for the host; ``disallowed_for``: the first
    listed agent (in config order) whose access to the URL it disallows, if any."""

    captured: bool
    disallowed_for: str | None = None


class RobotsIndex:
    """Read side of the index: ``verdict(url, agents)`` per page."""

    def __init__(self, index_dir: str) -> None:
        import pyarrow.parquet as pq

        meta_path = fs.join(index_dir, "meta.json")
        if not fs.exists(meta_path):
            raise InputError(f"{index_dir}: not a robots index (no meta.json); build it again")
        self.meta = fs.read_json(meta_path)
        if self.meta.get("version") != INDEX_VERSION:
            raise InputError(f"{index_dir}: robots index version {self.meta.get('version')}")
        hosts_path = fs.join(index_dir, "hosts.npy")
        if fs.is_remote(hosts_path):
            with fs.open_input(hosts_path) as f:
                self.hosts = np.load(f, allow_pickle=False)
        else:
            # Memory-mapped: the workers of a node share one copy in the page cache
            # (8 bytes per host: ~400 MB for a whole crawl's ~50 M hosts).
            self.hosts = np.load(hosts_path, mmap_mode="r", allow_pickle=False)
        with fs.open_input(fs.join(index_dir, "rules.parquet")) as f:
            self.rules = pq.read_table(f)
        with fs.open_input(fs.join(index_dir, "tdmrep.parquet")) as f:
            self.tdm = pq.read_table(f)
        self._rule_keys = self.rules.column("host_hash").to_numpy()
        self._tdm_keys = self.tdm.column("host_hash").to_numpy()
        self._lock = threading.Lock()
        self._parsed = lru_cache(maxsize=4096)(self._parse)
        self.parse_errors = 0

    @staticmethod
    def _find(keys: np.ndarray, h: int) -> int | None:
        i = int(np.searchsorted(keys, np.uint64(h)))
        return i if i < keys.size and int(keys[i]) == h else None

    def captured(self, host: str) -> bool:
        return self._find(self.hosts, host_hash(host)) is not None

    def _parse(self, row: int) -> Any:
        import pyarrow as pa
        from protego import Protego

        blob = self.rules.column("robots")[row].as_py()
        size = self.rules.column("raw_size")[row].as_py()
        text = pa.decompress(blob, decompressed_size=size, codec="zstd", asbytes=True)
        try:
            return Protego.parse(text.decode("utf-8", "replace"))
        except Exception:  # lenient: an unparseable robots.txt allows everything
            self.parse_errors += 1
            return None

    def verdict(self, url: str, host: str, agents: Iterable[str]) -> RobotsVerdict:
        h = host_hash(host)
        if self._find(self.hosts, h) is None:
            return RobotsVerdict(captured=False)
        row = self._find(self._rule_keys, h)
        if row is None:
            return RobotsVerdict(captured=True)
        with self._lock:
            parser = self._parsed(row)
        if parser is None:
            return RobotsVerdict(captured=True)
        for agent in agents:
            try:
                allowed = parser.can_fetch(url, agent)
            except Exception:
                allowed = True
            if not allowed:
                return RobotsVerdict(captured=True, disallowed_for=agent)
        return RobotsVerdict(captured=True)

    def tdm_reserved(self, url: str, host: str) -> bool:
        """Whether a captured ``tdmrep.json`` of the host reserves TDM rights for ``url``."""
        row = self._find(self._tdm_keys, host_hash(host))
        if row is None:
            return False
        policy = self.tdm.column("policy")[row].as_py()
        return tdmrep_reserves(policy, urlsplit(url).path or "/")


def tdmrep_reserves(policy_json: str, path: str) -> bool:
    """TDMRep (W3C CG report): the first rule whose ``location`` matches ``path`` decides."""
    try:
        rules = json.loads(policy_json)
    except ValueError:
        return False
    if not isinstance(rules, list):
        return False
    for rule in rules:
        if not isinstance(rule, dict):
            continue
        loc = str(rule.get("location", ""))
        if _location_matches(loc, path):
            return str(rule.get("tdm-reservation", "0")).strip() == "1"
    return False


def _location_matches(pattern: str, path: str) -> bool:
    if not pattern:
        return False
    regex = "".join(".*" if ch == "*" else re.escape(ch) for ch in pattern.rstrip("$"))
    anchored = regex + ("$" if pattern.endswith("$") else "")
    return re.match(anchored, path) is not None


_LOADED: dict[str, RobotsIndex] = {}
_LOAD_LOCK = threading.Lock()


def load_index(index_dir: str) -> RobotsIndex:
    """The index at ``index_dir``, loaded once per process (shared by its tasks)."""
    with _LOAD_LOCK:
        if index_dir not in _LOADED:
            _LOADED[index_dir] = RobotsIndex(index_dir)
        return _LOADED[index_dir]
