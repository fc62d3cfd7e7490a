"""The lake: hive-partitioned Parquet per (reporter, year, month), one file per source.

A partition leaf is written to a temporary name in its folder, flushed to disk and renamed over
the old one, so a reader sees the old file or the new one, never half of either. Leaves are
written from the warehouse's current figures, so the lake can always be rebuilt from it
(``omh verify --repair``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PARTITION_COLUMNS = ("reporter_iso3", "year", "month")
_LEAF = re.compile(r"^reporter_iso3=([^/]+)/year=(\d+)/month=(\d+)/([a-z][a-z0-9_]*)\.parquet$")


def leaf_path(lake: Path, reporter: str, year: int, month: int, source_id: str) -> Path:
    return (
        lake
        / f"reporter_iso3={reporter}"
        / f"year={int(year)}"
        / f"month={int(month)}"
        / f"{source_id}.parquet"
    )


# Row order inside a leaf: the same rows give the same order whichever engine wrote them.
LEAF_ORDER = ("flow_type", "citizenship_iso3", "period_start", "source_row", "detail")


def leaf_order_sql() -> str:
    """ORDER BY list of the rows as the leaves hold them (DuckDB sorts text by its bytes)."""
    return ", ".join(f'"{c}"' for c in (*PARTITION_COLUMNS, *LEAF_ORDER))


def write_partitions(lake: Path, source_id: str, table, partitions: list[tuple[str, int, int]]) -> int:
    """Replace the leaves of ``source_id`` in ``partitions`` with the rows of ``table`` (an Arrow
    table in the fact schema), sorted here into leaf order."""
    keys = [(c, "ascending") for c in (*PARTITION_COLUMNS, *LEAF_ORDER)]
    return write_sorted(table.sort_by(keys).to_batches(max_chunksize=200_000), lake, source_id, partitions)


def write_sorted(batches, lake: Path, source_id: str, partitions: list[tuple[str, int, int]]) -> int:
    """Replace the leaves of ``source_id`` in ``partitions`` with the rows of ``batches`` (Arrow
    record batches in the fact schema, sorted by partition, then LEAF_ORDER); a partition with
    no rows left loses its leaf.

    The rows stream through: each leaf is written while its rows pass (memory stays one batch),
    to a temporary name in its folder; once all are written, each is flushed to disk and renamed
    over the old one, so a reader sees the old file or the new one, never half of either.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    written: dict[tuple[str, int, int], Path] = {}
    writer, current, rows = None, None, 0
    try:
        for batch in batches:
            if not batch.num_rows:
                continue
            reporter = batch.column("reporter_iso3")
            ym = batch.column("year").to_numpy().astype(np.int64) * 100 + batch.column("month").to_numpy()
            change = np.diff(ym) != 0
            if len(ym) > 1:
                change |= pc.not_equal(reporter.slice(1), reporter.slice(0, len(reporter) - 1)).to_numpy(
                    zero_copy_only=False
                )
            cuts = [0, *(np.flatnonzero(change) + 1).tolist(), len(ym)]
            table = pa.Table.from_batches([batch]).drop_columns(list(PARTITION_COLUMNS))
            for a, b in zip(cuts[:-1], cuts[1:], strict=True):
                key = (reporter[a].as_py(), int(ym[a] // 100), int(ym[a] % 100))
                if key != current:
                    if key in written:
                        raise ValueError(f"lake write of {source_id}: rows are not sorted by partition")
                    if writer is not None:
                        writer.close()
                    current = key
                    path = leaf_path(lake, *key, source_id)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    written[key] = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                    writer = pq.ParquetWriter(written[key], table.schema, compression="zstd")
                writer.write_table(table.slice(a, b - a))
                rows += b - a
        if writer is not None:
            writer.close()
            writer = None
        for key in partitions:
            key = (key[0], int(key[1]), int(key[2]))
            path = leaf_path(lake, *key, source_id)
            if key not in written:
                path.unlink(missing_ok=True)
                continue
            with open(written[key], "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(written.pop(key), path)
    finally:
        if writer is not None:
            writer.close()
        for tmp in written.values():  # an error midway (or rows outside ``partitions``)
            tmp.unlink(missing_ok=True)
    return rows


@dataclass
class Leaf:
    """One lake file and what it holds."""

    source_id: str
    reporter_iso3: str
    year: int
    month: int
    path: Path
    rows: int | None = None
    values: int | None = None
    total: float | None = None
    error: str | None = None

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.source_id, self.reporter_iso3, self.year, self.month)

    @property
    def name(self) -> str:
        return (
            f"reporter_iso3={self.reporter_iso3}/year={self.year}/month={self.month}/{self.source_id}.parquet"
        )


def scan(lake: Path) -> tuple[list[Leaf], list[Path]]:
    """Every leaf of the lake with its row count, non-null values and sum of ``value``; and the
    files that are not leaves (temporary files left by an interrupted write, strays)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    leaves, strays = [], []
    if not lake.is_dir():
        return leaves, strays
    for path in sorted(p for p in lake.rglob("*") if p.is_file()):
        rel = path.relative_to(lake).as_posix()
        m = _LEAF.search(rel)
        if not m or path.name.startswith("."):
            strays.append(path)
            continue
        leaf = Leaf(m.group(4), m.group(1), int(m.group(2)), int(m.group(3)), path)
        try:
            values = pq.read_table(path, columns=["value"]).column("value")
            leaf.rows = len(values)
            leaf.values = len(values) - values.null_count
            total = pc.sum(values).as_py()
            leaf.total = float(total) if total is not None else None
        except Exception as exc:  # unreadable or tampered beyond Parquet
            leaf.error = f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        leaves.append(leaf)
    return leaves, strays
