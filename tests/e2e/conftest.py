"""Fixtures of the end-to-end suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from _crawl_fixtures import write_shards


@pytest.fixture
def warcs(tmp_path: Path) -> list[Path]:
    """Three small WARC shards under ``tmp_path/in``."""
    return write_shards(tmp_path / "in", 3)
