"""The lake writer: leaves streamed from sorted batches, replaced whole, emptied partitions removed."""

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from transforms.lake import leaf_path, scan, write_partitions, write_sorted
from transforms.warehouse import fact_schema


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
    return pq.read_table(leaf_path(lake, reporter, year, month, "src"), columns=["value"])["value"].to_pylist()


def test_leaves_follow_the_batches_across_batch_boundaries(tmp_path):
    rows = [("COL", 2024, 1, 1.0), ("COL", 2024, 1, 2.0), ("COL", 2024, 2, 3.0), ("PAN", 2024, 1, 4.0)]
    table = facts(rows)
    batches = [table.slice(0, 1).to_batches()[0], table.slice(1, 2).to_batches()[0], table.slice(3).to_batches()[0]]
    parts = [("COL", 2024, 1), ("COL", 2024, 2), ("PAN", 2024, 1)]
    assert write_sorted(iter(batches), tmp_path, "src", parts) == 4
    assert leaf_values(tmp_path, "COL", 2024, 1) == [1.0, 2.0]
    assert leaf_values(tmp_path, "COL", 2024, 2) == [3.0]
    assert leaf_values(tmp_path, "PAN", 2024, 1) == [4.0]
    leaves, strays = scan(tmp_path)
    assert len(leaves) == 3 and not strays
    # The partition columns live in the path, not in the file.
    assert "reporter_iso3" not in pq.read_schema(leaf_path(tmp_path, "COL", 2024, 1, "src")).names


def test_a_partition_left_without_rows_loses_its_leaf(tmp_path):
    write_partitions(tmp_path, "src", facts([("COL", 2024, 1, 1.0), ("COL", 2024, 2, 2.0)]), [("COL", 2024, 1), ("COL", 2024, 2)])
    write_partitions(tmp_path, "src", facts([("COL", 2024, 1, 5.0)]), [("COL", 2024, 1), ("COL", 2024, 2)])
    assert leaf_values(tmp_path, "COL", 2024, 1) == [5.0]
    assert not leaf_path(tmp_path, "COL", 2024, 2, "src").exists()


def test_unsorted_rows_are_refused_and_leave_the_lake_as_it_was(tmp_path):
    write_partitions(tmp_path, "src", facts([("COL", 2024, 1, 1.0)]), [("COL", 2024, 1)])
    unsorted = facts([("COL", 2024, 1, 7.0), ("COL", 2024, 2, 8.0), ("COL", 2024, 1, 9.0)])
    with pytest.raises(ValueError, match="not sorted"):
        write_sorted(iter(unsorted.to_batches(max_chunksize=1)), tmp_path, "src", [("COL", 2024, 1), ("COL", 2024, 2)])
    assert leaf_values(tmp_path, "COL", 2024, 1) == [1.0]
    assert not leaf_path(tmp_path, "COL", 2024, 2, "src").exists()
    assert scan(tmp_path)[1] == []  # no temporary file left behind
