"""docs/configuration.md is generated from the config models and must match them exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from dataproc.config import PipelineConfig
from dataproc.configbase import StrictModel
from dataproc.docs_gen import DOC_PATH, generate, iter_options, main


def test_committed_configuration_md_is_up_to_date() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == generate(), (
        "docs/configuration.md is stale: run `python -m dataproc.docs_gen` and commit the result"
    )


def test_every_option_is_documented_with_a_description() -> None:
    text = generate()
    missing = [key for key, info in iter_options(PipelineConfig) if not info.description]
    assert not missing, f"options without Field(description=...): {missing}"
    for key, _ in iter_options(PipelineConfig):
        assert f"| `{key}` |" in text, key


class _Inner(StrictModel):
    """An inner section."""

    mode: Literal["a", "b"] = Field("a", description="Pick | one.")
    limit_bytes: int | None = Field(None, ge=1, description="A bound.")


class _Outer(StrictModel):
    tags: list[str] = Field(default_factory=lambda: ["x"], description="Tags.")
    inner: _Inner = Field(default_factory=_Inner)


def test_generate_renders_types_defaults_bounds_and_sections() -> None:
    text = generate(_Outer)
    assert '| `tags` | list of str | `["x"]` | Tags. |' in text
    assert "## `inner`\n\nAn inner section." in text
    assert '| `inner.mode` | one of `"a"`, `"b"` | `"a"` | Pick \\| one. |' in text
    assert "| `inner.limit_bytes` | int or null (≥ 1) | `null` | A bound. |" in text


def test_check_mode_detects_a_stale_file(tmp_path: Path) -> None:
    path = tmp_path / "configuration.md"
    assert main(["--path", str(path)]) == 0
    assert main(["--check", "--path", str(path)]) == 0
    path.write_text(path.read_text() + "edited by hand\n")
    assert main(["--check", "--path", str(path)]) == 1
