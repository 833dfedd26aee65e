"""Other readers load the shards as they are, with input_ids as uint32 token lists."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
from _output_fixtures import EOT, all_docs, make_output

SIZES = [25, 0, 18]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    d = tmp_path_factory.mktemp("readers")
    make_output(str(d), SIZES)
    return str(d)


def _expected() -> list[list[int]]:
    return [d.tolist() for d in all_docs(SIZES)]


def test_pyarrow_dataset(out):
    import pyarrow as pa
    import pyarrow.dataset as ds

    t = ds.dataset(os.path.join(out, "tokens"), format="parquet").to_table()
    assert t.schema.field("input_ids").type.value_type == pa.uint32()
    assert t.column("input_ids").to_pylist() == _expected()


def test_huggingface_datasets(out, tmp_path):
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    datasets = pytest.importorskip("datasets")
    files = sorted(glob.glob(os.path.join(out, "tokens", "*.parquet")))
    ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path))
    assert ds.features["input_ids"].feature.dtype == "uint32"
    assert ds["input_ids"] == _expected()
    arr = ds.with_format("numpy")[0]["input_ids"]
    assert arr[-1] == EOT


def test_duckdb(out):
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    pattern = os.path.join(out, "tokens", "*.parquet")
    rows = con.execute(
        f"SELECT count(*), sum(num_tokens), max(list_max(input_ids)), "
        f"bool_and(input_ids[-1] = {EOT}), typeof(any_value(input_ids)) FROM read_parquet('{pattern}')"
    ).fetchone()
    exp = _expected()
    assert rows[0] == len(exp) and rows[1] == sum(len(d) for d in exp)
    assert rows[2] == max(max(d) for d in exp) and rows[2] > 65535
    assert rows[3] is True and rows[4] == "UINTEGER[]"


@pytest.mark.ray
def test_ray_data(out, ray_cluster):
    import ray

    ds = ray.data.read_parquet(os.path.join(out, "tokens"))
    got = sorted((r["id"], list(map(int, r["input_ids"]))) for r in ds.take_all())
    exp = sorted(
        zip(
            [f"doc-{i}-{j}" for i, n in enumerate(SIZES) for j in range(n)],
            _expected(),
            strict=True,
        )
    )
    assert got == exp
    batch = ds.take_batch(4, batch_format="pyarrow")
    assert str(batch.schema.field("input_ids").type.value_type) == "uint32"
    assert np.all([r[-1] == EOT for r in batch.column("input_ids").to_pylist()])
