"""Extraction: real trafilatura/resiliparse on hand-written pages, and the timeout sandbox."""

from __future__ import annotations

import importlib.util
import os
import time

import psutil
import pytest

from dataproc.document import Document, Reject
from dataproc.errors import ExtractionError
from dataproc.stages.extract import ExtractConfig, Extractor, extract_text
from dataproc.stages.sandbox import Sandbox

ARTICLE_SENTENCES = [
    "The river town of Millbrook has restored its nineteenth-century stone bridge after a "
    "three-year campaign led by local volunteers and the county historical society.",
    "Engineers replaced the crumbling mortar with a lime-based mix that matches the original, "
    "and every one of the four hundred arch stones was catalogued before work began.",
    "Residents gathered on Saturday morning to walk across the bridge together, and the mayor "
    "thanked the hundreds of people who donated money, time and old photographs.",
]
NAV_TEXT = "Home Subscribe Login Weather Sports Classifieds"
FOOTER_TEXT = "Copyright 2024 Millbrook Gazette Media Group. All rights reserved. Privacy policy."

ARTICLE_PAGE = f"""<!DOCTYPE html>
<html><head><title>Millbrook bridge restored</title></head>
<body>
<nav><ul>{"".join(f'<li><a href="/{w.lower()}">{w}</a></li>' for w in NAV_TEXT.split())}</ul></nav>
<div class="sidebar"><h3>Most read</h3><ul><li><a href="/a">Council meets</a></li></ul></div>
<main><article>
<h1>Millbrook bridge restored</h1>
{"".join(f"<p>{s}</p>" for s in ARTICLE_SENTENCES)}
</article></main>
<footer><p>{FOOTER_TEXT}</p></footer>
</body></html>"""

TINY_PAGE = "<html><body><article><p>Short note here.</p></article></body></html>"


def _doc(html: str, i: int = 0) -> Document:
    return Document(id=f"d{i}", url=f"https://example.com/{i}", source="test", html=html)


# ---- work functions run in the sandbox child (module level so the child can import them) ----

_HOARD: list[bytes] = []


def _misbehave(html: str) -> str | None:
    """Act out the marker in ``html`` (hang, spin, raise, crash, hog memory), if any."""
    if "SLEEP_FOREVER" in html:
        time.sleep(3600)
    if "SPIN_BRIEFLY" in html:  # ~0.6 s of wall time, mostly sleeping: little CPU
        for _ in range(30):
            time.sleep(0.02)
        return "slept " * 20
    if "SPIN_FOREVER" in html:
        while True:  # pure-Python busy loop: only a kill stops it
            pass
    if "RAISE_ERROR" in html:
        raise ValueError("parser exploded")
    if "HARD_CRASH" in html:
        os._exit(3)
    if "HOG_MEMORY" in html:
        _HOARD.append(b"x" * (80 << 20))  # touched pages, so RSS really grows
        return "hog " * 20
    return None


def misbehaving_work(html: str) -> str:
    """Real trafilatura extraction, except for marker pages."""
    acted = _misbehave(html)
    return acted if acted is not None else extract_text(html, ExtractConfig())


def misbehaving_echo(html: str) -> str:
    """Echo (no trafilatura import, so children start fast), except for marker pages."""
    acted = _misbehave(html)
    return acted if acted is not None else html


def echo_work(html: str) -> str:
    """Cheap work function (no trafilatura import) for tests that restart children a lot."""
    return html


def _sandbox_children() -> set[int]:
    """Pids of live (non-zombie) extraction children of this process."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "dataproc.stages.sandbox" in " ".join(
                child.cmdline()
            ):
                found.add(child.pid)
        except psutil.Error:
            continue
    return found


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(scope="module")
def extractor():
    stage = Extractor(ExtractConfig())
    stage.setup()
    yield stage
    stage.close()


# ---- trafilatura on hand-written pages ----


def test_article_kept_and_boilerplate_dropped(extractor):
    doc = extractor.process(_doc(ARTICLE_PAGE))
    assert isinstance(doc, Document)
    for sentence in ARTICLE_SENTENCES:
        assert sentence in doc.text
    assert "Subscribe" not in doc.text
    assert "All rights reserved" not in doc.text
    assert "Most read" not in doc.text
    assert doc.html == ""  # freed once extracted


def test_in_process_extract_text_matches_stage(extractor):
    doc = extractor.process(_doc(ARTICLE_PAGE))
    assert isinstance(doc, Document)
    assert extract_text(ARTICLE_PAGE, ExtractConfig()) == doc.text


def test_empty_pages_rejected_as_empty(extractor):
    for html in (
        "",
        "   \n",
        "<html><body></body></html>",
        "<html><body><script>x=1</script></body></html>",
    ):
        result = extractor.process(_doc(html))
        assert isinstance(result, Reject), html
        assert result.reason == "empty"


def test_tiny_page_rejected_as_too_short(extractor):
    result = extractor.process(_doc(TINY_PAGE))
    assert result == Reject("too_short", result.detail)
    assert "< 50" in result.detail
    # The same page passes when the minimum is lowered: the reject is the threshold's doing.
    lenient = Extractor(ExtractConfig(min_chars=5, isolate=False))
    kept = lenient.process(_doc(TINY_PAGE))
    assert isinstance(kept, Document) and kept.text == "Short note here."


def test_non_ascii_and_lone_surrogates_survive_the_pipe(extractor):
    text = "Grüße aus Köln — 日本語の文章も正しく抽出されるべきです。" * 3
    page = f"<html><body><article><p>{text}</p><p>bad \udcff byte</p></article></body></html>"
    doc = extractor.process(_doc(page))
    assert isinstance(doc, Document)
    assert text in doc.text


def test_stage_bytes_are_html_in_and_text_out(extractor):
    doc = _doc(ARTICLE_PAGE)
    assert extractor.text_bytes(doc) == len(ARTICLE_PAGE.encode())
    out = extractor.process(doc)
    assert isinstance(out, Document)
    assert extractor.text_bytes(out) == len(out.text.encode())


def test_resiliparse_extractor():
    pytest.importorskip("resiliparse")
    before = _sandbox_children()
    stage = Extractor(ExtractConfig(extractor="resiliparse"))
    try:
        doc = stage.process(_doc(ARTICLE_PAGE))
        assert isinstance(doc, Document)
        for sentence in ARTICLE_SENTENCES:
            assert sentence in doc.text
        assert "All rights reserved" not in doc.text
        assert doc.text.count("\n") >= 2  # paragraphs stay on their own lines
    finally:
        stage.close()
    assert _sandbox_children() <= before


def test_missing_resiliparse_names_the_install_command(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object):
        return None if name == "resiliparse" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ExtractionError, match=r"pip install dataproc\[resiliparse\]"):
        Extractor(ExtractConfig(extractor="resiliparse")).setup()


# ---- the sandbox: timeouts that really stop the work, recovery, no leaked processes ----


@pytest.mark.parametrize("marker", ["SLEEP_FOREVER", "SPIN_FOREVER"])
def test_timeout_kills_child_and_next_pages_still_extract(marker):
    before = _sandbox_children()
    stage = Extractor(
        ExtractConfig(timeout_seconds=0.5, timeout_seconds_per_mib=0, timeout_wall_multiplier=3),
        work_fn=misbehaving_work,
    )
    stage.setup()
    try:
        first_pid = stage.child_pid
        assert first_pid is not None
        start = time.monotonic()
        result = stage.process(_doc(f"<html><body>{marker}</body></html>"))
        elapsed = time.monotonic() - start
        assert result == Reject("timeout", result.detail)
        # Spinning burns the 0.5 CPU-second budget; sleeping uses none and meets the wall cap
        # (3 x 0.5 s). Either way the page is cut, not waited out.
        assert 0.5 <= elapsed < 1.5 + 2.0
        if marker == "SLEEP_FOREVER":
            assert elapsed >= 1.5
        assert _gone(first_pid)  # killed and reaped, not left running in the background
        assert stage.restarts["timeout"] == 1
        assert stage.counters == {"child_restarts:timeout": 1}  # stats.json, the report
        # A fresh child extracts the following pages.
        for i in range(2):
            doc = stage.process(_doc(ARTICLE_PAGE, i))
            assert isinstance(doc, Document)
            assert ARTICLE_SENTENCES[0] in doc.text
        assert stage.child_pid not in (None, first_pid)
    finally:
        stage.close()
    assert _sandbox_children() <= before


def test_limit_counts_cpu_time_not_wall_time():
    """A page that waits (no CPU) longer than the limit, but under the wall cap, is kept."""
    sandbox = Sandbox(misbehaving_echo, timeout_seconds=0.3, wall_factor=10)
    try:
        assert sandbox.call("SPIN_BRIEFLY").status == "ok"
        assert sandbox.restarts["timeout"] == 0
        assert sandbox.call("SPIN_FOREVER").status == "timeout"
    finally:
        sandbox.close()


def test_exception_in_extractor_is_extraction_error_and_child_survives():
    stage = Extractor(ExtractConfig(), work_fn=misbehaving_work)
    try:
        stage.setup()
        pid = stage.child_pid
        result = stage.process(_doc("<html>RAISE_ERROR</html>"))
        assert result.reason == "extraction_error"
        assert "ValueError: parser exploded" in result.detail
        assert stage.child_pid == pid  # an exception is not a reason to restart
    finally:
        stage.close()


def test_crashed_child_is_replaced():
    before = _sandbox_children()
    stage = Extractor(ExtractConfig(), work_fn=misbehaving_echo)
    try:
        result = stage.process(_doc("<html>HARD_CRASH</html>"))
        assert result.reason == "extraction_error"
        assert "exit code 3" in result.detail
        assert stage.restarts["crashed"] == 1
        doc = stage.process(_doc(ARTICLE_PAGE))
        assert isinstance(doc, Document) and doc.text == ARTICLE_PAGE.strip()
    finally:
        stage.close()
    assert _sandbox_children() <= before


def test_child_recycled_after_max_pages():
    before = _sandbox_children()
    sandbox = Sandbox(echo_work, timeout_seconds=10, max_calls_per_child=2)
    try:
        pids = []
        for i in range(5):
            assert sandbox.call(f"page {i}").value == f"page {i}"
            pids.append(sandbox.pid)
        # Calls 2 and 4 retire their child, so the next call starts a new one.
        assert sandbox.restarts["max_calls"] == 2
        assert pids[1] is None and pids[3] is None
        assert len({p for p in pids if p is not None}) == 3
    finally:
        sandbox.close()
    assert _sandbox_children() <= before


def test_child_recycled_when_rss_exceeds_limit():
    sandbox = Sandbox(misbehaving_echo, timeout_seconds=30, max_rss_bytes=64 << 20)
    try:
        sandbox.start()
        first = sandbox.pid
        assert 0 < sandbox.child_rss_bytes() < 64 << 20
        for _ in range(16):  # RSS is read every 16 calls
            sandbox.call("HOG_MEMORY")
        assert sandbox.restarts["rss"] == 1
        assert sandbox.pid is None and _gone(first)  # type: ignore[arg-type]
        assert sandbox.call(ARTICLE_PAGE).value == ARTICLE_PAGE
    finally:
        sandbox.close()


def test_close_leaves_no_child_and_is_idempotent():
    before = _sandbox_children()
    stage = Extractor(ExtractConfig(), work_fn=echo_work)
    stage.setup()
    pid = stage.child_pid
    assert pid is not None and psutil.pid_exists(pid)
    stage.close()
    stage.close()
    assert _gone(pid)
    assert _sandbox_children() <= before


def test_unpicklable_work_function_is_a_clear_error():
    stage = Extractor(ExtractConfig(), work_fn=lambda html: html)
    with pytest.raises(ExtractionError, match="cannot be pickled"):
        stage.setup()


def test_in_process_mode_has_no_child():
    stage = Extractor(ExtractConfig(isolate=False))
    stage.setup()
    assert stage.child_pid is None
    doc = stage.process(_doc(ARTICLE_PAGE))
    assert isinstance(doc, Document) and ARTICLE_SENTENCES[1] in doc.text


def _extract_in_ray_worker() -> tuple[list[str], int]:
    stage = Extractor(
        ExtractConfig(timeout_seconds=0.5, timeout_seconds_per_mib=0, timeout_wall_multiplier=2),
        work_fn=misbehaving_work,
    )
    stage.setup()
    try:
        pages = [ARTICLE_PAGE, "<html>SLEEP_FOREVER</html>", ARTICLE_PAGE]
        results = [stage.process(_doc(p, i)) for i, p in enumerate(pages)]
        return [r.reason if isinstance(r, Reject) else "ok" for r in results], len(
            _sandbox_children()
        )
    finally:
        stage.close()


@pytest.mark.ray
def test_sandbox_works_inside_a_ray_worker(ray_cluster):
    # The worker (and the sandbox child it starts) must import this test module by name.
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    task = ray_cluster.remote(runtime_env={"env_vars": {"PYTHONPATH": tests_dir}})(
        _extract_in_ray_worker
    )
    outcomes, children_before_close = ray_cluster.get(task.remote(), timeout=120)
    assert outcomes == ["ok", "timeout", "ok"]
    assert children_before_close == 1


_ORPHAN_SCRIPT = """
import sys, time
sys.path.insert(0, {tests_dir!r})
from dataproc.stages.sandbox import Sandbox
from test_extract import misbehaving_echo
sb = Sandbox(misbehaving_echo, timeout_seconds=3600)
sb.start()
print(sb.pid, flush=True)
sb.call("SPIN_FOREVER")
"""


def test_child_dies_with_its_parent_even_mid_page():
    """A killed parent (e.g. a Ray worker) must not leave a child spinning on a page."""
    import subprocess
    import sys

    tests_dir = os.path.dirname(os.path.abspath(__file__))
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT.format(tests_dir=tests_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        child_pid = int(parent.stdout.readline())
        time.sleep(0.3)  # the child is now busy in the endless loop
        assert psutil.Process(child_pid).status() != psutil.STATUS_ZOMBIE
    finally:
        parent.kill()
        parent.wait(10)
        parent.stdout.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _gone(child_pid):
        time.sleep(0.05)
    assert _gone(child_pid)


def test_table_rows_lose_their_markdown_frame():
    from dataproc.stages.extract import flatten_table_rows

    text = "| Web \\| Texts \\| Audio |\n|---|:---:|\n| The rocket flew. | It landed. |\n|  |  |\nplain"
    assert flatten_table_rows(text) == "Web | Texts | Audio\nThe rocket flew. | It landed.\nplain"
    assert flatten_table_rows("no tables here.\nnone") == "no tables here.\nnone"


def test_article_laid_out_in_a_table_keeps_sentence_ends():
    from dataproc.stages.extract import ExtractConfig, extract_text

    sentences = " ".join(
        f"Sentence number {i} of this long table article is here." for i in range(40)
    )
    html = (
        "<html><body><table><tr><td><p>" + sentences + "</p></td></tr>"
        "<tr><td><p>"
        + sentences.replace("Sentence", "Line")
        + "</p></td></tr></table></body></html>"
    )
    text = extract_text(html, ExtractConfig())
    assert text, "nothing extracted"
    assert not any(
        line.strip().startswith("|") or line.strip().endswith("|") for line in text.splitlines()
    )


def test_fallback_when_short_runs_the_comparison_only_below_the_threshold() -> None:
    import trafilatura

    from dataproc.stages.extract import ExtractConfig, extract_text

    html = (
        "<html><body><nav>Home About</nav><div><p>"
        + " ".join(f"Sentence number {i} of a reasonably long article body." for i in range(40))
        + "</p></div><footer>Contact</footer></body></html>"
    )
    always = extract_text(html, ExtractConfig(fallback="always"))
    # Below any threshold: the full comparison runs, so the result is the default one.
    assert (
        extract_text(html, ExtractConfig(fallback="when_short", fallback_min_chars=10**9)) == always
    )
    # Threshold 0: the fast pass alone decides.
    fast = trafilatura.extract(
        html, favor_precision=True, include_comments=False, include_tables=True, fast=True
    )
    got = extract_text(html, ExtractConfig(fallback="when_short", fallback_min_chars=0))
    assert got == (fast or "")
