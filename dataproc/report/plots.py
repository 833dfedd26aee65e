"""The report's charts: matplotlib (Agg) figures rendered to inline SVG strings.

Each function takes plain numbers and returns an ``<svg ...>`` element, or ``None`` when there
is nothing to plot. SVG ids are salted with the chart name so that several charts inlined in
one page never share a clip-path id, and the output is deterministic (no timestamp, fixed ids).
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Sequence
from typing import Any

PALETTE = {
    "kept": "#2f6db5",
    "dropped": "#d9534f",
    "bar": "#4c72b0",
    "accent": "#55a868",
    "muted": "#8c8c8c",
}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _label(text: str, max_chars: int = 48) -> str:
    """Make arbitrary data safe as a matplotlib label: no mathtext, bounded length."""
    text = text.replace("\n", " ").replace("$", r"\$")
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def _to_svg(fig: Any, name: str) -> str:
    plt = _plt()
    rc = {"svg.hashsalt": f"dataproc-{name}", "svg.fonttype": "none"}
    buf = io.StringIO()
    with plt.rc_context(rc):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = buf.getvalue()
    start = svg.find("<svg")
    # Inline SVG needs no XML prolog/doctype; give it a role and name for screen readers.
    return svg[start:].replace("<svg ", f'<svg role="img" aria-label="{name}" class="chart" ', 1)


def _style(ax: Any) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)


def funnel(
    stages: Sequence[str], kept: Sequence[float], dropped: Sequence[float], unit: str
) -> str | None:
    """Horizontal stacked bars: what each stage let through and what it dropped."""
    if not stages or (not any(kept) and not any(dropped)):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(stages) + 1.0))
    y = list(range(len(stages)))[::-1]
    ax.barh(y, kept, color=PALETTE["kept"], label="passed")
    ax.barh(y, dropped, left=kept, color=PALETTE["dropped"], label="dropped")
    ax.set_yticks(y, [_label(s) for s in stages])
    ax.set_xlabel(unit)
    top = max(k + d for k, d in zip(kept, dropped, strict=True)) or 1
    for yi, k, d in zip(y, kept, dropped, strict=True):
        total = k + d
        if total:
            ax.text(k + d + top * 0.01, yi, f"{k / total:.0%} kept", va="center", fontsize=8)
    ax.set_xlim(0, top * 1.18)
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    _style(ax)
    return _to_svg(fig, f"funnel-{unit}")


def hbar(
    labels: Sequence[str], values: Sequence[float], name: str, xlabel: str, color: str = "bar"
) -> str | None:
    """A ranked horizontal bar chart (largest on top)."""
    if not labels or not any(values):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 0.3 * len(labels) + 1.0))
    y = list(range(len(labels)))[::-1]
    ax.barh(y, values, color=PALETTE.get(color, color))
    ax.set_yticks(y, [_label(str(s)) for s in labels], fontsize=8)
    ax.set_xlabel(xlabel)
    top = max(values) or 1
    for yi, v in zip(y, values, strict=True):
        shown = f"{v:,.0f}" if float(v).is_integer() or v >= 100 else f"{v:,.2f}"
        ax.text(v + top * 0.01, yi, shown, va="center", fontsize=7)
    ax.set_xlim(0, top * 1.15)
    _style(ax)
    return _to_svg(fig, name)


def histogram(values: Sequence[int], name: str, xlabel: str, log_x: bool = True) -> str | None:
    """Distribution of positive integers (log-spaced bins when they span decades)."""
    vals = [v for v in values if v > 0]
    if not vals:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    lo, hi = min(vals), max(vals)
    edges: list[float] | int
    if log_x and hi / lo >= 20:
        n = 40
        edges = [
            10 ** (math.log10(lo) + i * (math.log10(hi) - math.log10(lo)) / n) for i in range(n + 1)
        ]
        edges[-1] = hi + 1
        ax.set_xscale("log")
    else:
        edges = min(40, max(1, hi - lo + 1))
    ax.hist(vals, bins=edges, color=PALETTE["bar"], edgecolor="white", linewidth=0.4)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("documents")
    med = sorted(vals)[len(vals) // 2]
    ax.axvline(med, color=PALETTE["dropped"], linewidth=1, linestyle="--")
    ax.text(
        med,
        ax.get_ylim()[1] * 0.95,
        f" median {med:,}",
        color=PALETTE["dropped"],
        fontsize=8,
        va="top",
    )
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    return _to_svg(fig, name)


def cluster_sizes(sizes: Sequence[tuple[str, int]]) -> str | None:
    """Duplicate clusters by size (log-scaled counts: a few huge clusters are the story)."""
    if not sizes or not any(n for _, n in sizes):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    pos = list(range(len(sizes)))
    ax.bar(pos, [n for _, n in sizes], color=PALETTE["bar"])
    ax.set_yscale("log")
    ax.set_xlabel("documents in cluster")
    ax.set_ylabel("clusters")
    step = max(1, len(sizes) // 20)
    ax.set_xticks(pos[::step], [_label(k) for k, _ in sizes][::step])
    for x, (_, n) in zip(pos, sizes, strict=True):
        ax.text(x, n, f"{n:,}", ha="center", va="bottom", fontsize=7)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    return _to_svg(fig, "dedup-clusters")


def timeline(series: list[dict[str, Any]]) -> str | None:
    """Documents/s, MB/s and tokens/s over the run, from the driver's progress snapshots."""
    points = [p for p in series if "t" in p]
    if len(points) < 2:
        return None
    t0 = points[0]["t"]
    ts: list[float] = []
    rates: dict[str, list[float]] = {"docs_read": [], "bytes_read": [], "tokens": []}
    for prev, cur in itertools.pairwise(points):
        dt = cur["t"] - prev["t"]
        if dt <= 0:
            continue
        ts.append((cur["t"] - t0) / 60)
        for key, values in rates.items():
            values.append(max(0, cur.get(key, 0) - prev.get(key, 0)) / dt)
    if not ts:
        return None
    panels = [
        ("documents/s", rates["docs_read"], 1.0, PALETTE["kept"]),
        ("MB/s (HTML)", rates["bytes_read"], 1e-6, PALETTE["accent"]),
        ("tokens/s", rates["tokens"], 1.0, PALETTE["dropped"]),
    ]
    panels = [p for p in panels if any(p[1])]
    if not panels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 1.3 * len(panels) + 0.6), sharex=True)
    axes = axes if len(panels) > 1 else [axes]
    for ax, (label, values, scale, color) in zip(axes, panels, strict=True):
        ax.plot(ts, [v * scale for v in values], color=color, linewidth=1.4)
        ax.set_ylabel(label, fontsize=8)
        ax.set_ylim(bottom=0)
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)
        ax.grid(axis="y", color="#e5e5e5", linewidth=0.8)
    axes[-1].set_xlabel("minutes since start")
    return _to_svg(fig, "timeline")
