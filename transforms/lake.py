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
    written = 0
    keep = [c for c in table.column_names if c not in PARTITION_COLUMNS]
    table, slices = _partition_slices(table)
    for reporter, year, month in partitions:
        start, stop = slices.get((reporter, int(year), int(month)), (0, 0))
        part = table.slice(start, stop - start).select(keep)
        path = leaf_path(lake, reporter, year, month, source_id)
        if part.num_rows == 0:
            path.unlink(missing_ok=True)
            continue
        _write_atomic(part, path)
        written += part.num_rows
    return written


def _partition_slices(table):
    """``table`` sorted by partition, and {(reporter, year, month): (start, stop)} into it: one
    sort whatever the number of partitions, instead of one filter of every row per partition."""
    import numpy as np
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return table, {}
    order = pc.sort_indices(table, sort_keys=[(c, "ascending") for c in PARTITION_COLUMNS])
    table_sorted = table.take(order)
    reporters = pc.dictionary_encode(table_sorted["reporter_iso3"]).combine_chunks()
    codes = reporters.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    years = table_sorted["year"].to_numpy().astype(np.int64)
    months = table_sorted["month"].to_numpy().astype(np.int64)
    key = (codes * 10_000 + years) * 100 + months
    starts = np.concatenate([[0], np.flatnonzero(np.diff(key)) + 1])
    stops = np.concatenate([starts[1:], [len(key)]])
    names = reporters.dictionary.to_pylist()
    out = {}
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        out[(names[codes[a]], int(years[a]), int(months[a]))] = (a, b)
    return table_sorted, out


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
