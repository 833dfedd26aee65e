"""Run-wide indexes built once by the driver before phase 1: the robots.txt host index and
the decontamination n-gram index.

They live under ``OUT/_work/consent/`` and ``OUT/_work/decontam/`` and are reused by a rerun
when their ``meta.json`` says they were built from the same files (and those are intact).
Their summaries go to the manifest (``consent``, ``decontamination``): an audit trail of what
was honoured and checked, which ``dataproc verify`` checks against the files.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from dataproc.errors import ConfigError
from dataproc.io import fs
from dataproc.io.layout import OutputLayout

if TYPE_CHECKING:
    from dataproc.config import PipelineConfig

log = logging.getLogger(__name__)


def resolve_index_paths(config: PipelineConfig) -> PipelineConfig:
    """The config with the stages pointed at the run's own index folders and every eval set's
    sha256 filled in (before the fingerprint is taken; the config is frozen, so a copy)."""
    if config.output is None:
        return config
    layout = OutputLayout(config.output)
    consent = config.consent
    if consent.enabled and consent.robots and not consent.robots_index:
        consent = consent.model_copy(update={"robots_index": layout.robots_index_dir})
    dc = config.decontaminate
    if dc.enabled and dc.sets:
        from dataproc.errors import InputError

        sets = []
        for spec in dc.sets:
            if spec.path is None:
                sets.append(spec)
                continue
            if not fs.exists(spec.path):
                raise InputError(f"decontaminate set {spec.name!r}: no such file {spec.path}")
            digest = fs.sha256_file(spec.path)
            if spec.sha256 is not None and spec.sha256 != digest:
                raise InputError(
                    f"decontaminate set {spec.name!r}: {spec.path} has sha256 {digest}, "
                    f"the config says {spec.sha256}"
                )
            sets.append(spec.model_copy(update={"sha256": digest}))
        index = dc.index if dc.index is not None else layout.decontam_index_dir
        dc = dc.model_copy(update={"index": index, "sets": sets})
    return config.model_copy(update={"consent": consent, "decontaminate": dc})


def apply_consent_args(args: argparse.Namespace, config: PipelineConfig) -> PipelineConfig:
    """``--robots PATH...`` (or ``--crawl ID``): the run builds a robots index into OUT."""
    robots = list(getattr(args, "robots", None) or [])
    crawl = getattr(args, "crawl", None)
    if not config.consent.enabled:
        return config
    if (
        not robots
        and crawl
        and config.consent.crawl_robots
        and not config.consent.robots
        and not config.consent.robots_index
    ):
        from dataproc.io.crawl import robots_for_inputs

        robots = robots_for_inputs(
            crawl, list(config.inputs), getattr(args, "crawl_base_url", None)
        )
    if robots:
        from dataproc.consent.robots_index import list_robots_files

        list_robots_files(robots)  # a missing robots path is an error before anything runs
        consent = config.consent.model_copy(update={"robots": robots})
        return config.model_copy(update={"consent": consent})
    return config


def _index_is_current(index_dir: str, files: list[str]) -> bool:

    meta_path = fs.join(index_dir, "meta.json")
    if not fs.exists(meta_path):
        return False
    meta = fs.read_json(meta_path)
    if meta.get("files") != files:
        return False
    for name, digest in meta.get("checksums", {}).items():
        path = fs.join(index_dir, name)
        if not fs.exists(path) or fs.sha256_file(path) != digest:
            return False  # resume trusts files: a damaged index is rebuilt
    return True


def prepare_run_indexes(config: Any) -> None:
    """Build the indexes the config asks for (or reuse intact ones from an earlier run)."""
    _prepare_robots(config)
    _prepare_decontam(config)


def _prepare_decontam(config: Any) -> None:
    dc = config.decontaminate
    if not dc.enabled or not dc.sets:
        return
    from dataproc.decontam.index import build_index

    meta_path = fs.join(dc.index, "meta.json")
    if fs.exists(meta_path):
        meta = fs.read_json(meta_path)
        same = meta.get("n") == dc.ngram and [s["name"] for s in meta["sets"]] == [
            s.name for s in dc.sets
        ]
        intact = fs.exists(fs.join(dc.index, "index.npz")) and meta.get(
            "index_sha256"
        ) == fs.sha256_file(fs.join(dc.index, "index.npz"))
        unchanged = all(
            s.path is None or (fs.exists(s.path) and fs.sha256_file(s.path) == m["sha256"])
            for s, m in zip(dc.sets, meta["sets"], strict=False)
        )
        if same and intact and unchanged:
            log.info("decontamination index reused: %s (%d keys)", dc.index, meta["keys"])
            return
    meta = build_index(dc, dc.index)
    log.info(
        "decontamination index built: %d n-gram keys from %d set(s)", meta["keys"], len(dc.sets)
    )


def _prepare_robots(config: Any) -> None:
    consent = config.consent
    if not consent.enabled or not consent.robots:
        return
    from dataproc.consent.robots_index import build_robots_index, list_robots_files

    index_dir = consent.robots_index
    if index_dir is None:
        raise ConfigError(
            "consent.robots needs consent.robots_index: give the run an output folder "
            "(the index is built there), or set consent.robots_index"
        )
    files = list_robots_files(consent.robots)
    if _index_is_current(index_dir, files):
        meta = fs.read_json(fs.join(index_dir, "meta.json"))
        log.info("robots index reused: %s (%d hosts)", index_dir, meta.get("hosts", 0))
    else:
        meta = build_robots_index(files, list(consent.agents), index_dir)
        log.info(
            "robots index built from %d file(s): %d hosts, %d name an AI agent",
            len(files),
            meta["hosts"],
            meta["hosts_naming_agents"],
        )


def certificates(config: Any, stats: Any) -> dict[str, Any]:
    """The manifest's ``consent`` and ``decontamination`` sections (counts from ``stats``)."""
    out: dict[str, Any] = {}
    consent = config.consent
    if consent.enabled:
        drops = dict(stats.get("consent").dropped) if "consent" in stats else {}
        section: dict[str, Any] = {
            "agents": list(consent.agents),
            "page_signals": {
                "meta_noai": consent.meta_noai,
                "header_noai": consent.header_noai,
                "noimageai": consent.noimageai,
                "tdm_reservation": consent.tdm_reservation,
            },
            "missing_robots": consent.missing_robots,
            "robots": None,
            "dropped": dict(sorted(drops.items())),
        }
        if consent.robots_index:
            meta = fs.read_json(fs.join(consent.robots_index, "meta.json"))
            section["robots"] = {
                "files": len(meta["files"]),
                "hosts": meta["hosts"],
                "hosts_naming_agents": meta["hosts_naming_agents"],
                "tdmrep_hosts": meta["tdmrep_hosts"],
                "index_checksums": meta["checksums"],
            }
        out["consent"] = section
    dc = config.decontaminate
    if dc.enabled and dc.sets and dc.index:
        meta = fs.read_json(fs.join(dc.index, "meta.json"))
        st = stats.get("decontaminate") if "decontaminate" in stats else None
        sets = []
        for m in meta["sets"]:
            entry = dict(m)
            entry["documents_removed"] = (
                st.dropped.get(f"contamination:{m['name']}", 0) if st else 0
            )
            entry["documents_cut"] = st.counters.get(f"cut:{m['name']}", 0) if st else 0
            sets.append(entry)
        out["decontamination"] = {
            "ngram": dc.ngram,
            "min_item_words": dc.min_item_words,
            "mode": dc.mode,
            "index_keys": meta["keys"],
            "index_sha256": meta["index_sha256"],
            "documents_checked": st.docs_in if st else 0,
            "sets": sets,
        }
    return out
