"""The lake writer: leaves streamed from batches in any order, replaced whole, emptied partitions removed."""

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from transforms.storage.lake import leaf_path, scan, scattered, write_leaves, write_partitions
from transforms.storage.warehouse import fact_schema


def facts(rows: list[tuple[str, int, int, float]]) -> pa.Table:
    """Fact-schema rows for (reporter, year, month, value); the other columns are filled in."""
    schema = fact_schema()
    n = len(rows)
    data = {}
    for f in schema:
        if f.name == "reporter_iso3":
            data[f.name] = [r[0] for r in rows]
        elif f.name in ("year", "month"):
            data[f.name] = [r[1] if f.name == "year" else r[2] for r in rows]
        elif f.name == "value":
            data[f.name] = [r[3] for r in rows]
        elif f.name in ("period_start", "period_end", "vintage"):
            data[f.name] = [dt.date(r[1], r[2], 1) for r in rows]
        elif f.name == "loaded_at":
            data[f.name] = [dt.datetime(2026, 1, 1)] * n
        elif f.name == "source_row":
            data[f.name] = list(range(n))
        elif pa.types.is_string(f.type):
            data[f.name] = ["src" if f.name == "source_id" else "x"] * n
        else:
            data[f.name] = [None] * n
    return pa.table({k: pa.array(v) for k, v in data.items()}).cast(schema)


def leaf_values(lake, reporter, year, month):
    return pq.read_table(leaf_path(lake, reporter, year, month, "src"), columns=["value"])[
        "value"
    ].to_pylist()


def test_leaves_follow_the_batches_across_batch_boundaries(tmp_path):
    rows = [("COL", 2024, 1, 1.0), ("COL", 2024, 1, 2.0), ("COL", 2024, 2, 3.0), ("PAN", 2024, 1, 4.0)]
    table = facts(rows)
    batches = [
        table.slice(0, 1).to_batches()[0],
        table.slice(1, 2).to_batches()[0],
        table.slice(3).to_batches()[0],
    ]
    parts = [("COL", 2024, 1), ("COL", 2024, 2), ("PAN", 2024, 1)]
    assert write_leaves(iter(batches), tmp_path, "src", parts) == 4
    assert leaf_values(tmp_path, "COL", 2024, 1) == [1.0, 2.0]
    assert leaf_values(tmp_path, "COL", 2024, 2) == [3.0]
    assert leaf_values(tmp_path, "PAN", 2024, 1) == [4.0]
    leaves, strays = scan(tmp_path)
    assert len(leaves) == 3 and not strays
    # The partition columns live in the path, not in the file.
    assert "reporter_iso3" not in pq.read_schema(leaf_path(tmp_path, "COL", 2024, 1, "src")).names


def test_a_partition_left_without_rows_loses_its_leaf(tmp_path):
    write_partitions(
        tmp_path,
        "src",
        facts([("COL", 2024, 1, 1.0), ("COL", 2024, 2, 2.0)]),
        [("COL", 2024, 1), ("COL", 2024, 2)],
    )
    write_partitions(tmp_path, "src", facts([("COL", 2024, 1, 5.0)]), [("COL", 2024, 1), ("COL", 2024, 2)])
    assert leaf_values(tmp_path, "COL", 2024, 1) == [5.0]
    assert not leaf_path(tmp_path, "COL", 2024, 2, "src").exists()


def test_rows_in_any_order_land_in_their_leaves_in_their_order(tmp_path):
    """Rows of 3 partitions interleaved, one per batch and then many per batch, with tiny limits:
    every leaf gets all its rows, in the order they came, as several row groups."""
    import random

    keys = [("COL", 2024, 1), ("COL", 2024, 2), ("PAN", 2023, 12)]
    rows = [(*keys[i % 3], float(i)) for i in range(600)]
    random.Random(3).shuffle(rows)
    table = facts(rows)
    assert scattered(table.to_batches()[0]) and not scattered(facts(sorted(rows)).to_batches()[0])
    for chunk in (1, 7, 600):
        written = write_leaves(
            iter(table.to_batches(max_chunksize=chunk)), tmp_path, "src", keys, group_rows=50, buffer_rows=30
        )
        assert written == 600
        for key in keys:
            assert leaf_values(tmp_path, *key) == [r[3] for r in rows if r[:3] == key], (chunk, key)
        groups = pq.ParquetFile(leaf_path(tmp_path, *keys[0], "src")).metadata.num_row_groups
        assert groups > 1 if chunk < 50 else groups == 1, (chunk, groups)
    leaves, strays = scan(tmp_path)
    assert len(leaves) == 3 and not strays


def test_rows_outside_the_partitions_are_refused_and_leave_the_lake_as_it_was(tmp_path):
    write_partitions(tmp_path, "src", facts([("COL", 2024, 1, 1.0)]), [("COL", 2024, 1)])
    stray = facts([("COL", 2024, 1, 7.0), ("COL", 2024, 2, 8.0), ("COL", 2024, 3, 9.0)])
    with pytest.raises(ValueError, match="outside the partitions"):
        write_leaves(
            iter(stray.to_batches(max_chunksize=1)), tmp_path, "src", [("COL", 2024, 1), ("COL", 2024, 2)]
        )
    assert leaf_values(tmp_path, "COL", 2024, 1) == [1.0]
    assert not leaf_path(tmp_path, "COL", 2024, 2, "src").exists()
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.name.startswith(".")]
