"""Coverage-guided fuzzing of the HTML path (atheris / libFuzzer).

Each input is an HTML payload: it is decoded (charset), its main text extracted with
trafilatura in-process, then run through the URL filter (the payload's first line as a URL),
the quality rules and PII scrubbing. A finding is any exception, decoded text holding NUL or
lone surrogates, or PII scrubbing that leaves something its own detectors still find. Run it
for minutes outside CI::

    /work/venv/bin/python fuzz/fuzz_html.py -max_total_time=600 -timeout=20 -rss_limit_mb=2048

``-timeout`` matters: a page trafilatura spends seconds on is not a crash here (the pipeline
runs extraction in a killable child with a time limit), but libFuzzer reports it as one.
``check_html`` is also what ``tests/regressions`` replays.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

# The first input byte picks the HTTP charset label (None, real, superset, bogus, dangerous).
_HTTP_CHARSETS = (None, "utf-8", "iso-8859-1", "shift_jis", "utf-16", "utf-7", "base64", "x-junk")

_STAGES: list[Any] = []


class FuzzFinding(Exception):
    """An input broke one of the HTML path's promises."""


def _stages() -> list[Any]:
    if not _STAGES:
        from dataproc.stages.quality import QualityConfig, quality_stages
        from dataproc.stages.url_filter import UrlFilter

        url_filter = UrlFilter()
        url_filter.setup()
        _STAGES.append(url_filter)
        _STAGES.extend(quality_stages(QualityConfig()))
    return _STAGES


def check_html(data: bytes) -> None:
    """Run ``data`` through decode → extract → URL filter → quality → PII; raise on a finding."""
    from dataproc.document import Document
    from dataproc.readers.charset import decode_html_detailed
    from dataproc.stages.extract import ExtractConfig, extract_text
    from dataproc.stages.pii import find_pii, scrub

    label = _HTTP_CHARSETS[data[0] % len(_HTTP_CHARSETS)] if data else None
    decoded = decode_html_detailed(data[1:], label)
    if "\x00" in decoded.text:
        raise FuzzFinding("NUL in decoded text")
    decoded.text.encode("utf-8")  # raises on a lone surrogate

    text = extract_text(decoded.text, ExtractConfig(isolate=False))
    first_line = decoded.text.split("\n", 1)[0][:2000]
    doc = Document(id="fuzz", url=first_line, source="fuzz", html="", text=text or decoded.text)
    for stage in _stages():
        out = stage.process(doc)
        if not isinstance(out, Document):
            break
    scrubbed, _counts = scrub(doc.text)
    left = find_pii(scrubbed)
    if left:
        raise FuzzFinding(f"PII left after scrubbing: {left[:3]} in {scrubbed[:200]!r}")


def main() -> None:
    import atheris
    from _seeds import html_seeds, write_seeds

    args = list(sys.argv)
    if not any(not a.startswith("-") for a in args[1:]):
        corpus = HERE / "corpus" / "html"
        write_seeds(corpus, html_seeds())
        args.append(str(corpus))
    atheris.Setup(args, check_html)
    atheris.Fuzz()


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    import atheris

    with atheris.instrument_imports(include=["dataproc"]):
        import dataproc.readers.charset
        import dataproc.stages.pii
        import dataproc.stages.quality
        import dataproc.stages.url_filter  # noqa: F401
    main()
