"""The lake store interface: ``OMH_LAKE_URL`` picks the store; the folder store is the folder lake."""

from __future__ import annotations

import pyarrow as pa
import pytest

from transforms.config import settings
from transforms.storage.iceberg_lake import IcebergLake, catalog_url
from transforms.storage.lakestore import FolderLake, open_lake
from transforms.storage.warehouse import fact_schema


def test_the_url_picks_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("OMH_HOME", str(tmp_path))
    monkeypatch.delenv("OMH_LAKE_URL", raising=False)
    monkeypatch.delenv("OMH_WAREHOUSE_URL", raising=False)
    monkeypatch.delenv("OMH_LAKE_CATALOG_URL", raising=False)
    lake = open_lake(settings())
    assert isinstance(lake, FolderLake) and lake.root == tmp_path / "lake"
    monkeypatch.setenv("OMH_LAKE_URL", str(tmp_path / "elsewhere"))
    assert open_lake(settings()).root == tmp_path / "elsewhere" == settings().lake
    monkeypatch.setenv("OMH_LAKE_URL", "s3://bucket/prefix/")
    lake = open_lake(settings())
    assert isinstance(lake, IcebergLake) and lake.url == "s3://bucket/prefix"
    # The catalog: beside an embedded warehouse a SQLite file; else the warehouse's PostgreSQL.
    assert lake.catalog_uri == f"sqlite:///{tmp_path / 'lake-catalog.db'}"
    monkeypatch.setenv("OMH_WAREHOUSE_URL", "postgresql://omh@db:5432/omh?options=-csearch_path%3Dx")
    assert catalog_url(settings()) == "postgresql+psycopg://omh@db:5432/omh?options=-csearch_path%3Dx"
    monkeypatch.setenv("OMH_LAKE_URL", "gs://bucket/prefix")
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        open_lake(settings())


def test_the_folder_store_writes_scans_and_reads_a_leaf(tmp_path):
    lake = FolderLake(tmp_path / "lake")
    schema = fact_schema()
    row = {f.name: None for f in schema} | {
        "source_id": "src",
        "reporter_iso3": "PAN",
        "year": 2024,
        "month": 3,
        "value": 5.0,
    }
    table = pa.Table.from_pylist([row, row | {"value": 7.0}], schema=schema)
    assert lake.write(table.to_batches(), "src", [("PAN", 2024, 3)]) == 2
    (leaf,), strays = lake.scan()
    assert (leaf.key, leaf.rows, leaf.total, strays) == (("src", "PAN", 2024, 3), 2, 12.0, [])
    back = lake.read("src", ("PAN", 2024, 3))
    assert back.column("value").to_pylist() == [5.0, 7.0] and set(back.column("year").to_pylist()) == {2024}
    assert lake.leaf_dataset("src", ("PAN", 2024, 3))["name"].endswith(
        "reporter_iso3=PAN/year=2024/month=3/src.parquet"
    )
    assert lake.write(iter(()), "src", [("PAN", 2024, 3)]) == 0  # no rows left: the leaf goes
    assert lake.scan() == ([], [])
