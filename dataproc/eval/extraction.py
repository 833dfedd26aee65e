"""Extraction quality: bag-of-words precision/recall/F1 of extracted text against gold text.

Method (also in docs/quality.md):

* Tokens are ``\\w+`` runs of the lowercased text (Unicode-aware), counted as a multiset.
* Per page: ``overlap = Σ_t min(pred[t], gold[t])``; precision = overlap / |pred|,
  recall = overlap / |gold|, F1 their harmonic mean.
* An empty extraction (no tokens) scores P = R = F1 = 0 on that page and is counted in
  ``empty``; pages whose gold text has no tokens are skipped (counted in ``skipped_empty_gold``).
* Scores are macro-averaged over pages (every page weighs the same, whatever its length).

Gold sets: the scrapinghub article-extraction-benchmark layout (``html/<id>.html.gz`` +
``ground-truth.json`` = ``{id: {"articleBody": ...}}``) and the CleanEval / CleanPortalEval
layout (``input/<name>.html`` + ``GoldStandard/<name>.txt`` with a ``URL:`` first line and
``<p>``/``<h>``/``<l>`` block markers, which are removed), as a folder or a ``.tar.xz``.
"""

from __future__ import annotations

import gzip
import html as html_lib
import json
import os
import re
import tarfile
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from dataproc.errors import InputError

_WORD_RE = re.compile(r"\w+")
# CleanEval block markers at the start of a line: <p>, <h>, <l> (optionally closed).
_CLEANEVAL_MARKER_RE = re.compile(r"</?[phl]>", re.IGNORECASE)

SYSTEMS: tuple[str, ...] = ("dataproc", "trafilatura_default", "resiliparse")
"""Extraction settings that can be evaluated: ours (ExtractConfig defaults, FineWeb's
trafilatura settings), plain ``trafilatura.extract(html)``, and resiliparse (DCLM's)."""


@dataclass(frozen=True, slots=True)
class GoldPage:
    """One labelled page: its HTML (decoded) and the human gold text."""

    page_id: str
    html: str
    gold: str


def tokens(text: str) -> Counter[str]:
    """Bag of lowercased ``\\w+`` tokens."""
    return Counter(_WORD_RE.findall(text.lower()))


def page_scores(predicted: str, gold: str) -> dict[str, float]:
    """Bag-of-words precision, recall and F1 of one page (0 for an empty prediction)."""
    pred, ref = tokens(predicted), tokens(gold)
    n_pred, n_ref = sum(pred.values()), sum(ref.values())
    overlap = sum((pred & ref).values())
    precision = overlap / n_pred if n_pred else 0.0
    recall = overlap / n_ref if n_ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _decode(payload: bytes) -> str:
    from dataproc.readers.charset import decode_html

    return decode_html(payload, None)[0]


def load_scrapinghub(folder: str) -> list[GoldPage]:
    """Pages of the scrapinghub article-extraction-benchmark layout in ``folder``."""
    truth_path = os.path.join(folder, "ground-truth.json")
    if not os.path.isfile(truth_path):
        raise InputError(
            f"--scrapinghub {folder}: no ground-truth.json there; point it at the folder of "
            "the article-extraction-benchmark (ground-truth.json + html/<id>.html.gz)"
        )
    with open(truth_path, encoding="utf-8") as f:
        truth = json.load(f)
    pages = []
    for page_id in sorted(truth):
        path = os.path.join(folder, "html", f"{page_id}.html.gz")
        if not os.path.isfile(path):
            path = os.path.join(folder, "html", f"{page_id}.html")
            if not os.path.isfile(path):
                raise InputError(
                    f"--scrapinghub {folder}: page {page_id} has no html/{page_id}.html.gz"
                )
        with open(path, "rb") as fb:
            payload = fb.read()
        if payload[:2] == b"\x1f\x8b":
            payload = gzip.decompress(payload)
        pages.append(GoldPage(page_id, _decode(payload), truth[page_id].get("articleBody") or ""))
    return pages


def clean_cleaneval_gold(text: str) -> str:
    """CleanEval gold text without its ``URL:`` line, block markers and HTML entities."""
    lines = text.splitlines()
    if lines and lines[0].startswith("URL:"):
        lines = lines[1:]
    return html_lib.unescape(_CLEANEVAL_MARKER_RE.sub(" ", "\n".join(lines))).strip()


def _cleaneval_files(source: str) -> dict[str, bytes]:
    """``{relative path: bytes}`` of the input/ and GoldStandard/ files of a folder or tarball."""
    files: dict[str, bytes] = {}
    if os.path.isdir(source):
        for sub in ("input", "GoldStandard"):
            d = os.path.join(source, sub)
            if os.path.isdir(d):
                for name in os.listdir(d):
                    with open(os.path.join(d, name), "rb") as f:
                        files[f"{sub}/{name}"] = f.read()
        return files
    if not os.path.isfile(source):
        raise InputError(f"--cleaneval {source}: no such file or folder")
    try:
        with tarfile.open(source) as tar:
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                parts = member.name.split("/")
                # Accept an optional top folder: "X/input/a.html" or "input/a.html".
                rel = "/".join(parts[-2:])
                if parts[-2:-1] in (["input"], ["GoldStandard"]):
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        files[rel] = extracted.read()
    except tarfile.TarError as e:
        raise InputError(f"--cleaneval {source}: not a readable tar archive ({e})") from None
    return files


def load_cleaneval(source: str) -> list[GoldPage]:
    """Pages of a CleanEval-style gold set (folder or ``.tar.xz`` with input/ and GoldStandard/)."""
    files = _cleaneval_files(source)
    pages = []
    for rel in sorted(files):
        if not rel.startswith("GoldStandard/") or not rel.endswith(".txt"):
            continue
        name = rel[len("GoldStandard/") : -len(".txt")]
        payload = files.get(f"input/{name}.html") or files.get(f"input/{name}.htm")
        if payload is None:
            continue
        gold = clean_cleaneval_gold(_decode(files[rel]))
        pages.append(GoldPage(name, _decode(payload), gold))
    if not pages:
        raise InputError(
            f"--cleaneval {source}: found no pairs of input/<name>.html and "
            "GoldStandard/<name>.txt; point it at CleanPortalEval (folder or .tar.xz)"
        )
    return pages


def _extractor(system: str) -> Callable[[str], str]:
    if system == "dataproc":
        from dataproc.stages.extract import ExtractConfig, extract_text

        config = ExtractConfig()
        return lambda html: extract_text(html, config)
    if system == "resiliparse":
        from dataproc.stages.extract import ExtractConfig, extract_text

        config = ExtractConfig(extractor="resiliparse")
        return lambda html: extract_text(html, config)
    if system == "trafilatura_default":
        import trafilatura

        return lambda html: (trafilatura.extract(html) or "").strip()
    raise InputError(f"unknown extraction system {system!r}; choose from {', '.join(SYSTEMS)}")


def _extract_all(job: tuple[str, list[str]]) -> list[str]:
    system, htmls = job
    fn = _extractor(system)
    return [fn(h) for h in htmls]


def run_extractions(system: str, htmls: Sequence[str], workers: int = 1) -> list[str]:
    """Extract every page with ``system``, in ``workers`` processes (order preserved)."""
    htmls = list(htmls)
    if workers <= 1 or len(htmls) < 8:
        return _extract_all((system, htmls))
    chunks = [htmls[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(_extract_all, [(system, c) for c in chunks]))
    out = [""] * len(htmls)
    for i, part in enumerate(parts):
        out[i::workers] = part
    return out


def score_pages(pages: Sequence[GoldPage], predictions: Sequence[str]) -> dict[str, Any]:
    """Macro-averaged scores of ``predictions`` (one per page) against the pages' gold text."""
    per_page: list[dict[str, Any]] = []
    empty = skipped = 0
    for page, pred in zip(pages, predictions, strict=True):
        if not tokens(page.gold):
            skipped += 1
            continue
        if not tokens(pred):
            empty += 1
        per_page.append({"page": page.page_id, **page_scores(pred, page.gold)})
    n = len(per_page)

    def mean(key: str) -> float:
        return sum(p[key] for p in per_page) / n if n else 0.0

    nonempty = [p for p in per_page if p["precision"] > 0 or p["recall"] > 0]
    return {
        "pages": n,
        "precision": mean("precision"),
        "recall": mean("recall"),
        "f1": mean("f1"),
        "empty": empty,
        "empty_rate": empty / n if n else 0.0,
        "precision_nonempty": (
            sum(p["precision"] for p in nonempty) / len(nonempty) if nonempty else 0.0
        ),
        "skipped_empty_gold": skipped,
        "per_page": per_page,
    }


def evaluate_extraction(
    scrapinghub: str | None = None,
    cleaneval: str | None = None,
    systems: Sequence[str] = ("dataproc", "trafilatura_default"),
    workers: int = 1,
) -> dict[str, Any]:
    """Score each extraction ``system`` on each given gold set.

    Returns ``{"datasets": {name: {system: scores}}}`` where scores come from ``score_pages``.
    """
    for s in systems:
        if s not in SYSTEMS:
            raise InputError(f"unknown extraction system {s!r}; choose from {', '.join(SYSTEMS)}")
    datasets: dict[str, list[GoldPage]] = {}
    if scrapinghub:
        datasets["scrapinghub"] = load_scrapinghub(scrapinghub)
    if cleaneval:
        datasets["cleaneval"] = load_cleaneval(cleaneval)
    if not datasets:
        raise InputError("eval extraction: give --scrapinghub DIR and/or --cleaneval TARXZ_OR_DIR")
    out: dict[str, Any] = {}
    for name, pages in datasets.items():
        out[name] = {}
        for system in systems:
            preds = run_extractions(system, [p.html for p in pages], workers)
            out[name][system] = score_pages(pages, preds)
    return {"method": "bag-of-words over lowercased \\w+ tokens, macro over pages", "datasets": out}
