"""The sandbox: a broken install stops the run at start-up; timeouts do not depend on load."""

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


def slow_but_working(html: str) -> str:
    """~10% of a core for ~2.5 s: what a page gets on an oversubscribed node."""
    import time

    for _ in range(50):
        end = time.process_time() + 0.005
        while time.process_time() < end:
            pass
        time.sleep(0.045)
    return "done"


def blocked(html: str) -> str:
    import time

    time.sleep(60)
    return "never"


def test_slow_progress_is_not_a_timeout_but_a_blocked_child_is():
    # The wall window (limit x wall_factor = 1 s) passes twice over, yet the child
    # computes steadily and stays under its 1 CPU-s budget: load must not change the result.
    box = Sandbox(slow_but_working, timeout_seconds=1.0, wall_factor=1.0)
    try:
        assert box.call("x").status == "ok"
    finally:
        box.close()
    box = Sandbox(blocked, timeout_seconds=1.0, wall_factor=1.0)
    try:
        assert box.call("x").status == "timeout"
    finally:
        box.close()


def spin_200ms(html: str) -> str:
    import time

    end = time.process_time() + 0.2
    while time.process_time() < end:
        pass
    return "done"


def test_call_cpu_seconds_count_the_childs_work_not_its_start():
    # The extract stage's CPU in stats.json comes from here: what the child spent on pages.
    box = Sandbox(spin_200ms, timeout_seconds=5.0)
    try:
        box.start()
        assert box.call_cpu_seconds == 0.0  # interpreter start-up is not a page's cost
        for _ in range(3):
            assert box.call("x").status == "ok"
        assert 0.55 <= box.call_cpu_seconds <= 0.8
    finally:
        box.close()
