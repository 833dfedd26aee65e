"""Page-level opt-out signals: ``noai`` robots directives and TDM reservations.

Only the ``<head>`` (the first ``HEAD_BYTES`` characters) is searched: meta tags in the body are
invalid HTML and are not honoured by crawlers either. Matching is by regular expressions with
bounded repetition, so hostile pages stay linear.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

HEAD_BYTES = 65536

# <meta name="robots" content="noindex, noai"> with attributes in either order.
_META = re.compile(r"<meta\b[^>]{0,2000}>", re.IGNORECASE)
_ATTR = re.compile(
    r"""\b(name|content|http-equiv)\s*=\s*(?:"([^"]{0,1000})"|'([^']{0,1000})'|([^\s>"']{1,200}))""",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"[a-z0-9-]+")


@dataclass(frozen=True, slots=True)
class PageSignals:
    """What a page says about itself: robots directives (per agent or ``*``) and TDM."""

    noai: bool = False
    noimageai: bool = False
    tdm_reservation: bool = False


def _directives(value: str) -> set[str]:
    return set(_TOKEN.findall(value.lower()))


def _applies(name: str, agents: Iterable[str]) -> bool:
    """``<meta name="robots">`` applies to every agent; ``name="GPTBot"`` to that agent."""
    name = name.strip().lower()
    return name == "robots" or name in {a.lower() for a in agents}


def meta_signals(html: str, agents: Iterable[str]) -> PageSignals:
    """Opt-outs in the page's meta tags (``robots``/agent ``noai``, ``tdm-reservation``)."""
    head = html[:HEAD_BYTES]
    lower = head.lower()
    if "noai" not in lower and "noimageai" not in lower and "tdm-reservation" not in lower:
        return PageSignals()  # cheap necessary condition: most pages stop here
    agents = list(agents)
    noai = noimageai = tdm = False
    for m in _META.finditer(head):
        attrs: dict[str, str] = {}
        for a in _ATTR.finditer(m.group(0)):
            attrs[a.group(1).lower()] = a.group(2) or a.group(3) or a.group(4) or ""
        name = attrs.get("name") or attrs.get("http-equiv") or ""
        content = attrs.get("content", "")
        if name.strip().lower() == "tdm-reservation":
            tdm = tdm or content.strip() == "1"
        elif name.strip().lower() == "x-robots-tag" or _applies(name, agents):
            d = _directives(content)
            noai = noai or "noai" in d
            noimageai = noimageai or "noimageai" in d
    return PageSignals(noai=noai, noimageai=noimageai, tdm_reservation=tdm)


def header_signals(headers: Mapping[str, str], agents: Iterable[str]) -> PageSignals:
    """Opt-outs in HTTP headers: ``X-Robots-Tag: noai`` (optionally ``agent: noai``), and
    ``tdm-reservation: 1``. ``headers`` has lower-case names; repeated headers joined by ``\\n``.
    """
    noai = noimageai = False
    wanted = {a.lower() for a in agents}
    for line in headers.get("x-robots-tag", "").split("\n"):
        value = line.strip()
        # "GPTBot: noai" applies to that agent only; "noai" or "noindex, noai" to all.
        head, sep, rest = value.partition(":")
        if (
            sep
            and _TOKEN.fullmatch(head.strip().lower() or "-")
            and head.strip().lower() not in {"unavailable_after"}
        ):
            if head.strip().lower() not in wanted:
                continue
            value = rest
        d = _directives(value)
        noai = noai or "noai" in d
        noimageai = noimageai or "noimageai" in d
    tdm = headers.get("tdm-reservation", "").strip().split("\n")[0].strip() == "1"
    return PageSignals(noai=noai, noimageai=noimageai, tdm_reservation=tdm)
