"""Replay every input kept in tests/regressions/ through the fuzz harnesses' checks.

``warc/`` holds WARC files and ``html/`` HTML payloads that once crashed or misled the reader
or the HTML path (found by the atheris harnesses in ``fuzz/`` or by hand). Each must pass the
harness's promises (no exception, accounting adds up, no NUL/surrogates, no PII left) and,
when ``expected.json`` lists it, give exactly the recorded outcome.
"""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path
from types import ModuleType

import pytest

from dataproc.readers.config import ReaderConfig
from dataproc.readers.warc import read_warc
from dataproc.stats import StageStats

HERE = Path(__file__).resolve().parent
FUZZ = HERE.parent.parent / "fuzz"
EXPECTED: dict[str, dict[str, object]] = json.loads((HERE / "expected.json").read_text())


def _harness(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_fuzz_{name}", FUZZ / f"{name}.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(FUZZ / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(kind: str) -> list[Path]:
    return sorted(p for p in (HERE / kind).glob("*") if p.is_file())


@pytest.mark.parametrize("path", _files("warc"), ids=lambda p: p.name)
def test_warc_regression(path: Path) -> None:
    data = path.read_bytes()
    _harness("fuzz_warc").check_warc(data)
    want = EXPECTED.get(f"warc/{path.name}")
    if want is None:
        return
    stats = StageStats("read")
    docs = list(
        read_warc(
            io.BytesIO(data),
            source=path.name,
            input_index=0,
            config=ReaderConfig(),
            stats=stats,
            reject=lambda d, s, r: None,
        )
    )
    assert [d.url for d in docs] == want["urls"]
    assert dict(stats.dropped) == want["dropped"]


@pytest.mark.parametrize("path", _files("html"), ids=lambda p: p.name)
def test_html_regression(path: Path) -> None:
    _harness("fuzz_html").check_html(path.read_bytes())
