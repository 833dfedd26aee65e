"""OUT/README.md makes `datasets.load_dataset(OUT)` (offline) read only the token files."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from _output_fixtures import make_output

from dataproc.io.card import card_text, write_card


def _output_with_run_records(out: Path) -> dict:
    manifest = make_output(str(out), docs_per_input=[7, 5])
    # What a run leaves beside tokens/: Parquet files with other schemas.
    (out / "rejects").mkdir()
    pq.write_table(pa.table({"id": ["x"], "reason": ["empty"]}), out / "rejects" / "0-f.parquet")
    (out / "_work" / "docs").mkdir(parents=True)
    pq.write_table(pa.table({"text": ["t"]}), out / "_work" / "docs" / "000000.parquet")
    return manifest


def test_card_front_matter_points_at_the_token_files() -> None:
    text = card_text(
        {
            "pipeline": "en: 'quoted' ---",
            "tokenizer": {"name": "cl100k_base", "vocab_size": 100277, "eot_id": 100257},
            "totals": {"rows": 12, "tokens": 3400, "files": 2},
        }
    )
    assert text.startswith("---\n")
    header = yaml.safe_load(text.split("---\n", 2)[1])
    assert header["configs"] == [{"config_name": "default", "data_files": "tokens/*.parquet"}]
    assert "cl100k_base" in text and "documents: 12" in text and "tokens: 3,400" in text


def test_load_dataset_reads_only_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    out = tmp_path / "out"
    manifest = _output_with_run_records(out)
    write_card(str(out), manifest)
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    train = ds["train"]
    assert train.num_rows == 12 == manifest["totals"]["rows"]
    assert {"input_ids", "num_tokens", "url"} <= set(train.column_names)
    assert sum(train["num_tokens"]) == manifest["totals"]["tokens"]
