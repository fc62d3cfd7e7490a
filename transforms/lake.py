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


# Row order inside a leaf: the same rows give the same order whichever engine wrote them (a leaf
# of up to LEAF_GROUP_ROWS rows is one row group in this order; a larger one, several).
LEAF_ORDER = ("flow_type", "citizenship_iso3", "period_start", "source_row", "detail")
# Rows of one leaf gathered before they are written as a row group, and rows held in all.
LEAF_GROUP_ROWS = 250_000
BUFFER_ROWS = 1_000_000


def write_partitions(lake: Path, source_id: str, table, partitions: list[tuple[str, int, int]]) -> int:
    """Replace the leaves of ``source_id`` in ``partitions`` with the rows of ``table`` (an Arrow
    table in the fact schema)."""
    return write_leaves(table.to_batches(max_chunksize=200_000), lake, source_id, partitions)


class _Leaves:
    """Open leaves of one write: rows gathered per partition, written as row groups in leaf order."""

    def __init__(self, lake: Path, source_id: str, group_rows: int, buffer_rows: int):
        self.lake, self.source_id = lake, source_id
        self.group_rows, self.buffer_rows = group_rows, buffer_rows
        self.pending: dict[tuple[str, int, int], list] = {}
        self.counts: dict[tuple[str, int, int], int] = {}
        self.held = 0
        self.writers: dict = {}
        self.temps: dict[tuple[str, int, int], Path] = {}

    def add(self, key: tuple[str, int, int], table) -> None:
        self.pending.setdefault(key, []).append(table)
        self.counts[key] = self.counts.get(key, 0) + table.num_rows
        self.held += table.num_rows
        if self.counts[key] >= self.group_rows:
            self.flush(key)
        while self.held > self.buffer_rows:  # many leaves at once: the largest goes first
            self.flush(max(self.counts, key=self.counts.__getitem__))

    def flush(self, key: tuple[str, int, int]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.concat_tables(self.pending.pop(key))
        self.held -= self.counts.pop(key)
        table = table.sort_by([(c, "ascending") for c in LEAF_ORDER])
        if key not in self.writers:
            path = leaf_path(self.lake, *key, self.source_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.temps[key] = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            self.writers[key] = pq.ParquetWriter(self.temps[key], table.schema, compression="zstd")
        self.writers[key].write_table(table, row_group_size=max(table.num_rows, 1))

    def close(self) -> None:
        for key in list(self.pending):
            self.flush(key)
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()

    def discard(self) -> None:
        for writer in self.writers.values():
            try:
                writer.close()
            except Exception:  # already failing: the temporary files go anyway
                pass
        for tmp in self.temps.values():
            tmp.unlink(missing_ok=True)


def write_leaves(
    batches,
    lake: Path,
    source_id: str,
    partitions: list[tuple[str, int, int]],
    group_rows: int = LEAF_GROUP_ROWS,
    buffer_rows: int = BUFFER_ROWS,
) -> int:
    """Replace the leaves of ``source_id`` in ``partitions`` with the rows of ``batches`` (Arrow
    record batches in the fact schema, in any order); a partition with no rows left loses its leaf.

    The rows stream through: each batch is split by partition and gathered per leaf; a leaf's
    rows are written as a row group (in LEAF_ORDER) once they reach ``group_rows``, and the
    largest gathering is written whenever more than ``buffer_rows`` are held, so memory stays
    bounded whatever the order of the rows and the number of partitions. Leaves are written to
    temporary names in their folders; once all are complete, each is flushed to disk and renamed
    over the old one, so a reader sees the old file or the new one, never half of either. Rows
    outside ``partitions`` are an error and leave the lake as it was.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    wanted = {(p[0], int(p[1]), int(p[2])) for p in partitions}
    leaves = _Leaves(lake, source_id, group_rows, buffer_rows)
    rows = 0
    try:
        for batch in batches:
            if not batch.num_rows:
                continue
            table = pa.Table.from_batches([batch])
            # One code per partition of the batch: its reporters' dictionary index, year and month.
            reporters = pc.dictionary_encode(table.column("reporter_iso3")).combine_chunks()
            names = reporters.dictionary.to_pylist()
            code = (
                reporters.indices.to_numpy(zero_copy_only=False).astype(np.int64) * 1_000_000
                + table.column("year").to_numpy().astype(np.int64) * 100
                + table.column("month").to_numpy()
            )
            order = np.argsort(code, kind="stable")
            code = code[order]
            table = table.take(pa.array(order)).drop_columns(list(PARTITION_COLUMNS))
            cuts = [0, *(np.flatnonzero(np.diff(code)) + 1).tolist(), len(code)]
            for a, b in zip(cuts[:-1], cuts[1:], strict=True):
                c = int(code[a])
                key = (names[c // 1_000_000], c % 1_000_000 // 100, c % 100)
                if key not in wanted:
                    raise ValueError(
                        f"lake write of {source_id}: rows of {key} are outside the partitions written"
                    )
                leaves.add(key, table.slice(a, b - a))
                rows += b - a
        leaves.close()
        for key in sorted(wanted):
            path = leaf_path(lake, *key, source_id)
            if key not in leaves.temps:
                path.unlink(missing_ok=True)
                continue
            with open(leaves.temps[key], "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(leaves.temps.pop(key), path)
    finally:
        leaves.discard()  # an error midway: the temporary files go, the old leaves stay
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
