"""The run report: ``OUT/report.html``, one self-contained page with plots (no network).

``build_report(out_dir)`` is called at the end of every run and by ``dataproc report OUT``.
"""

from __future__ import annotations

from dataproc.io import fs
from dataproc.io.layout import OutputLayout


def build_report(out_dir: str, path: str | None = None) -> str:
    """Write the HTML report for the run in ``out_dir`` and return the file's path.

    ``path`` defaults to ``OUT/report.html``. An interrupted run is reported from the work it
    finished. Raises ``OutputError`` if ``out_dir`` holds no run at all.
    """
    from dataproc.report.data import load_report_data
    from dataproc.report.render import render_html

    data = load_report_data(out_dir)
    target = path or OutputLayout(out_dir).report
    fs.write_bytes_atomic(target, render_html(data).encode("utf-8"))
    return target


def build_report_or_warn(out_dir: str) -> str | None:
    """``build_report`` for the end of a run: a report problem is logged, never raised.

    The run's data and manifest are already written when this is called; a failure to draw a
    chart must not turn a good run into a failed one (``dataproc report OUT`` retries it).
    """
    import logging

    try:
        return build_report(out_dir)
    except Exception as e:
        logging.getLogger("dataproc").warning(
            "could not write the report (%s: %s); rerun `dataproc report %s`",
            type(e).__name__,
            e,
            out_dir,
        )
        return None


__all__ = ["build_report", "build_report_or_warn"]
