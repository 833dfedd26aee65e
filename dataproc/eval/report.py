"""Plain-text tables for evaluation results, and JSON output."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from dataproc.errors import OutputError


def fmt(value: Any, digits: int = 3) -> str:
    """A cell: floats rounded to ``digits`` places, None as ``-``, everything else ``str``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    """A Markdown-compatible pipe table (readable in a terminal, pasteable into docs)."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(widths[i]) for i, v in enumerate(values)) + " |"

    out = [f"### {title}", ""] if title else []
    out.append(line(list(headers)))
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out.extend(line(row) for row in cells)
    return "\n".join(out) + "\n"


def write_json(result: dict[str, Any], path: str) -> None:
    """Write ``result`` as indented JSON to ``path`` (creating its folder)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, sort_keys=False, ensure_ascii=False)
            f.write("\n")
    except OSError as e:
        raise OutputError(f"--json {path}: cannot write the result ({e}); choose a writable path") from None
