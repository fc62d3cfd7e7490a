"""The lake: hive-partitioned Parquet per (reporter, year, month), one file per source.

A partition leaf is written to a temporary name and renamed over the old one, so a reader
sees the old file or the new one, never half of either. Leaves are written from the
warehouse's current figures, so the lake can always be rebuilt from it.
"""

from __future__ import annotations

import os
from pathlib import Path

PARTITION_COLUMNS = ("reporter_iso3", "year", "month")


def leaf_path(lake: Path, reporter: str, year: int, month: int, source_id: str) -> Path:
    return lake / f"reporter_iso3={reporter}" / f"year={int(year)}" / f"month={int(month)}" / f"{source_id}.parquet"


def write_partitions(lake: Path, source_id: str, table, partitions: list[tuple[str, int, int]]) -> int:
    """Replace the leaves of ``source_id`` in ``partitions`` with the rows of ``table`` (Arrow)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    written = 0
    keep = [c for c in table.column_names if c not in PARTITION_COLUMNS]
    for reporter, year, month in partitions:
        mask = pc.and_(
            pc.and_(pc.equal(table["reporter_iso3"], reporter), pc.equal(table["year"], int(year))),
            pc.equal(table["month"], int(month)),
        )
        part = table.filter(mask).select(keep)
        path = leaf_path(lake, reporter, year, month, source_id)
        if part.num_rows == 0:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        pq.write_table(part, tmp, compression="zstd")
        os.replace(tmp, path)
        written += part.num_rows
    return written
