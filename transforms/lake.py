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
_LEAF = re.compile(r"reporter_iso3=([^/]+)/year=(\d+)/month=(\d+)/([a-z][a-z0-9_]*)\.parquet$")


def leaf_path(lake: Path, reporter: str, year: int, month: int, source_id: str) -> Path:
    return (
        lake
        / f"reporter_iso3={reporter}"
        / f"year={int(year)}"
        / f"month={int(month)}"
        / f"{source_id}.parquet"
    )


def _write_atomic(part, path: Path) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(part, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_partitions(lake: Path, source_id: str, table, partitions: list[tuple[str, int, int]]) -> int:
    """Replace the leaves of ``source_id`` in ``partitions`` with the rows of ``table`` (Arrow);
    a partition with no rows left loses its leaf."""
    import pyarrow.compute as pc

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
        _write_atomic(part, path)
        written += part.num_rows
    return written


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
