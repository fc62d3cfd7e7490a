"""Reading the current facts of the partitions a load touched, for the lake's leaves."""

from __future__ import annotations

import itertools
from pathlib import Path

from transforms.storage.warehouse.schema import FACT_COLUMNS, LINEAGE_COLUMNS, fact_schema


def _column(name: str) -> str:
    """A fact column in ``_read_partitions``' SELECT: the lineage from the facts' load (``l``)."""
    return f"{'l' if name in LINEAGE_COLUMNS else 'f'}.{name}"


class LakeSync:
    """The partitions' facts read for the lake (a mixin of ``Warehouse``)."""

    def _read_partitions(
        self, source_id: str, partitions: list[tuple[str, int, int]], read, constants: dict | None = None
    ):
        """``read(sql, fixed)`` of the current facts of ``source_id`` in ``partitions`` (a SELECT
        over a temporary table of the partitions, in one transaction). ``constants`` are fact
        columns that the caller expects to hold one value in all those facts (a first load's
        lineage and fixed codes): those that do, checked here, are left out of the SELECT and
        passed as ``fixed`` (column -> value) instead."""
        import pyarrow as pa

        parts = pa.table(
            {
                "source_id": pa.array([source_id] * len(partitions), pa.string()),
                "reporter_iso3": pa.array([p[0] for p in partitions], pa.string()),
                "year": pa.array([int(p[1]) for p in partitions], pa.int32()),
                "month": pa.array([int(p[2]) for p in partitions], pa.int32()),
            }
        )
        source = (
            "FROM fact_flow f JOIN _parts p ON p.source_id = f.source_id AND p.reporter_iso3 = f.reporter_iso3 "
            "AND p.year = f.year AND p.month = f.month JOIN dim_load l ON l.load_id = f.load_id"
        )
        with self.transaction():
            self.execute("DROP TABLE IF EXISTS _parts")
            self.execute(
                "CREATE TEMP TABLE _parts (source_id VARCHAR, reporter_iso3 VARCHAR, year INTEGER, month INTEGER)"
            )
            self.copy_into("_parts", parts)
            self._analyze("_parts")
            fixed = self._fixed_columns(source, constants or {})
            columns = [c for c in FACT_COLUMNS if c not in fixed]
            out = read(f"SELECT {', '.join(_column(c) for c in columns)} {source}", fixed)
            self.execute("DROP TABLE IF EXISTS _parts")
        return out

    def _fixed_columns(self, source: str, constants: dict) -> dict:
        """The ``constants`` (fact column -> value) that every row of ``source`` holds, in one scan
        (a column that holds one value compresses to a constant: the scan barely reads it). The
        lake's partition columns are always read (the writer cuts the rows by them)."""
        from transforms.storage.lake import PARTITION_COLUMNS

        candidates = [c for c in FACT_COLUMNS if c in constants and c not in PARTITION_COLUMNS]
        if not candidates:
            return {}
        counts = self.fetchall(
            "SELECT "
            + ", ".join(f"count(*) FILTER (WHERE {_column(c)} IS DISTINCT FROM ?)" for c in candidates)
            + f" {source}",
            [constants[c] for c in candidates],
        )[0]
        return {c: constants[c] for c, n in zip(candidates, counts, strict=True) if n == 0}

    def write_lake(
        self, lake, source_id: str, partitions: list[tuple[str, int, int]], constants: dict | None = None
    ) -> int:
        """Rewrite the lake leaves of ``source_id`` in ``partitions`` from the current facts
        (``_read_partitions``, streamed to the lake store ``lake``, or a folder lake's path:
        ``lake_write``); ``constants`` as there."""
        raise NotImplementedError

    def partition_totals(self) -> list[tuple]:
        """(source_id, reporter_iso3, year, month, rows, values, sum of value) of the current facts."""
        return self.fetchall(
            "SELECT source_id, reporter_iso3, year, month, count(*), count(value), sum(value) "
            "FROM fact_flow GROUP BY source_id, reporter_iso3, year, month"
        )


# Rows per Arrow batch read from DuckDB: larger batches made DuckDB hold ~370 MB more while a
# 4 M-row scan streamed out (measured: 122,880-row batches +370 MB, 32,768-row batches +70 MB).
ARROW_BATCH_ROWS = 32_768


def _leaf_batches(con, sql: str, batch_rows: int = ARROW_BATCH_ROWS, fixed: dict | None = None):
    """The facts of ``sql`` (run by DuckDB connection ``con``) as Arrow batches in the fact schema,
    for ``lake.write_leaves``: in the order DuckDB scans them, which is the order they were
    loaded in; when the first batch shows partitions interleaved (facts loaded from a file
    sorted by something else), DuckDB sorts them by partition instead, spilling past its memory
    limit, so that the writer gathers each leaf from a run or two of every batch.

    ``fixed`` columns (column -> value) are not in ``sql``: each batch gets them as constant
    arrays, text as a one-word dictionary (the leaf stores a dictionary page and run lengths,
    as it would have; reading ten million copies of a file name back out of DuckDB cost more
    than writing the leaf)."""
    import numpy as np
    import pyarrow as pa

    from transforms.storage.lake import PARTITION_COLUMNS, scattered

    schema = fact_schema()
    fixed = fixed or {}
    read = pa.schema([f for f in schema if f.name not in fixed])
    words = {c: pa.array([v], schema.field(c).type) for c, v in fixed.items() if v is not None}
    out = pa.schema(
        [
            pa.field(f.name, pa.dictionary(pa.int32(), f.type))
            if f.name in words and pa.types.is_string(f.type)
            else f
            for f in schema
        ]
    )
    zeros = pa.array(np.zeros(batch_rows, dtype=np.int32))

    def constant(name: str, rows: int):
        field = schema.field(name)
        if name not in words:
            return pa.nulls(rows, field.type)
        if pa.types.is_string(field.type):
            indices = zeros if rows == len(zeros) else pa.array(np.zeros(rows, dtype=np.int32))
            return pa.DictionaryArray.from_arrays(indices, words[name])
        return pa.repeat(words[name][0], rows)

    reader = con.sql(sql).to_arrow_reader(batch_rows)
    first = next(iter(reader), None)
    if first is not None and scattered(first):
        reader.close()  # DuckDB runs one result at a time
        reader = con.sql(f"{sql} ORDER BY {', '.join(PARTITION_COLUMNS)}").to_arrow_reader(batch_rows)
        first = None
    for batch in reader if first is None else itertools.chain([first], reader):
        if not fixed:
            yield batch.cast(schema)
            continue
        batch = batch.cast(read)
        yield pa.RecordBatch.from_arrays(
            [batch.column(f.name) if f.name not in fixed else constant(f.name, batch.num_rows) for f in out],
            schema=out,
        )


def lake_write(lake, batches, source_id: str, partitions) -> int:
    """``batches`` written by the lake store ``lake`` (``lakestore``), or by ``lake.write_leaves``
    when ``lake`` is a folder lake's path (not importing ``lakestore``, which imports the Iceberg
    store, which imports the warehouse's fact schema)."""
    if hasattr(lake, "write"):
        return lake.write(batches, source_id, partitions)
    from transforms.storage.lake import write_leaves

    return write_leaves(batches, Path(lake), source_id, partitions)
