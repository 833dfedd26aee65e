"""Consent filter: drop pages whose site opted out of AI training, as of the crawl.

Signals, each with its own drop reason (docs/consent.md):

- ``opt_out:robots:<agent>``: the host's robots.txt, as captured in the same crawl, disallows
  the page's path for one of ``consent.agents`` (needs a robots index: ``--robots`` / ``--crawl``);
- ``opt_out:no_robots``: no robots.txt was captured for the host and
  ``consent.missing_robots=drop``;
- ``opt_out:meta_noai`` / ``opt_out:header_noai``: a ``noai`` directive in
  ``<meta name="robots">`` (or ``name="<agent>"``) or in an ``X-Robots-Tag`` header;
  ``opt_out:meta_noimageai`` / ``opt_out:header_noimageai`` only with ``consent.noimageai``;
- ``opt_out:tdm_reservation``: TDMRep ``tdm-reservation: 1`` in a meta tag, an HTTP header, or a
  captured ``/.well-known/tdmrep.json`` rule matching the path.

The filter runs before extraction (it needs the raw HTML head and the HTTP headers, and every
page it drops saves a trafilatura call).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field

from dataproc.configbase import StrictModel
from dataproc.document import Document, Reject
from dataproc.stages.base import Stage

if TYPE_CHECKING:
    from dataproc.consent.robots_index import RobotsIndex

DEFAULT_AGENTS = (
    "GPTBot",
    "ChatGPT-User",
    "CCBot",
    "Google-Extended",
    "ClaudeBot",
    "anthropic-ai",
    "Applebot-Extended",
    "cohere-ai",
    "Meta-ExternalAgent",
    "PerplexityBot",
    "Bytespider",
    "Amazonbot",
)


class ConsentConfig(StrictModel):
    """Honour data-use opt-outs published by sites, as captured in the crawl."""

    enabled: bool = Field(True, description="Drop pages whose site opted out of AI training.")
    agents: list[str] = Field(
        default_factory=lambda: list(DEFAULT_AGENTS),
        min_length=1,
        description="AI user agents whose robots.txt rules are honoured (a page is dropped if "
        "any of them is disallowed).",
    )
    robots: list[str] = Field(
        default_factory=list,
        description="Robots.txt WARC files or folders of the crawl (`--robots`, or found by "
        "`--crawl`); the run builds its host index once into `robots_index`.",
    )
    crawl_robots: bool = Field(
        True,
        description="With `--crawl ID`: find the robots.txt files of the inputs' segments in "
        "the crawl's `robotstxt.paths.gz` (false: page-level signals only).",
    )
    robots_index: str | None = Field(
        None,
        description="Robots index folder: set by the run to OUT/_work/consent/robots when "
        "`robots` is given. None: robots.txt is not checked, only page-level signals.",
    )
    missing_robots: Literal["allow", "drop"] = Field(
        "allow",
        description="A page whose host has no captured robots.txt: `allow` (no opt-out was "
        "published as far as the crawl saw) or `drop`.",
    )
    meta_noai: bool = Field(True, description="Honour `noai` in robots meta tags.")
    header_noai: bool = Field(True, description="Honour `noai` in `X-Robots-Tag` headers.")
    noimageai: bool = Field(
        False,
        description="Also drop pages marked `noimageai` (it reserves images, not text: off).",
    )
    tdm_reservation: bool = Field(
        True, description="Honour TDMRep `tdm-reservation: 1` (meta, header, tdmrep.json)."
    )


def _reasons(agents: list[str]) -> tuple[str, ...]:
    return (
        *(f"opt_out:robots:{a}" for a in agents),
        "opt_out:no_robots",
        "opt_out:meta_noai",
        "opt_out:header_noai",
        "opt_out:meta_noimageai",
        "opt_out:header_noimageai",
        "opt_out:tdm_reservation",
    )


class ConsentFilter(Stage):
    """Drops pages whose site opted out of AI training (see the module docstring)."""

    name: ClassVar[str] = "consent"
    REASONS: ClassVar[tuple[str, ...]] = _reasons(list(DEFAULT_AGENTS))

    def __init__(self, config: ConsentConfig) -> None:
        self.config = config
        # The reasons name the configured agents; an instance may list other agents.
        self.__dict__["REASONS"] = _reasons(config.agents)
        self._index: RobotsIndex | None = None

    def setup(self) -> None:
        if self.config.robots_index:
            from dataproc.consent.robots_index import load_index

            self._index = load_index(self.config.robots_index)

    def process(self, doc: Document) -> Document | Reject:
        from dataproc.consent.signals import header_signals, meta_signals

        cfg = self.config
        headers = doc.metadata.get("http_headers") or {}
        if headers:
            h = header_signals(headers, cfg.agents)
            if cfg.header_noai and h.noai:
                return Reject("opt_out:header_noai", headers.get("x-robots-tag", "")[:200])
            if cfg.noimageai and h.noimageai:
                return Reject("opt_out:header_noimageai", headers.get("x-robots-tag", "")[:200])
            if cfg.tdm_reservation and h.tdm_reservation:
                return Reject("opt_out:tdm_reservation", "tdm-reservation header")
        m = meta_signals(doc.html, cfg.agents)
        if cfg.meta_noai and m.noai:
            return Reject("opt_out:meta_noai", "robots meta tag")
        if cfg.noimageai and m.noimageai:
            return Reject("opt_out:meta_noimageai", "robots meta tag")
        if cfg.tdm_reservation and m.tdm_reservation:
            return Reject("opt_out:tdm_reservation", "tdm-reservation meta tag")
        index = self._index
        if index is not None:
            host = (urlsplit(doc.url).hostname or "").lower()
            verdict = index.verdict(doc.url, host, cfg.agents)
            if verdict.disallowed_for is not None:
                return Reject(f"opt_out:robots:{verdict.disallowed_for}", f"robots.txt of {host}")
            if not verdict.captured and cfg.missing_robots == "drop":
                return Reject("opt_out:no_robots", f"no robots.txt captured for {host}")
            if cfg.tdm_reservation and index.tdm_reserved(doc.url, host):
                return Reject("opt_out:tdm_reservation", f"tdmrep.json of {host}")
        return doc
