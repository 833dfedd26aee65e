"""A broken install must stop the run at start-up, not drop every page as an error."""

from __future__ import annotations

import pytest

from dataproc.errors import ExtractionError
from dataproc.stages.sandbox import Sandbox


def missing_dependency(html: str) -> str:
    raise ImportError("lxml.html.clean module is now a separate project lxml_html_clean")


def flaky_page(html: str) -> str:
    raise ValueError("this one page is bad")


def test_import_error_in_warmup_refuses_to_start():
    box = Sandbox(missing_dependency, timeout_seconds=5, warmup="<html></html>")
    with pytest.raises(ExtractionError, match=r"cannot run in this environment.*lxml_html_clean"):
        box.start()
    box.close()


def test_other_warmup_errors_are_left_to_real_pages():
    box = Sandbox(flaky_page, timeout_seconds=5, warmup="<html></html>")
    try:
        box.start()
        result = box.call("<p>x</p>")
        assert result.status == "error" and "this one page is bad" in result.value
    finally:
        box.close()
