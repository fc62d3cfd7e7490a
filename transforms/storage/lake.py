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


# Rows of one leaf gathered before they are written as a row group, and rows held in all (the
# record batches that gathered rows point into count whole).
LEAF_GROUP_ROWS = 125_000
BUFFER_ROWS = 250_000
WRITE_THREADS = 2
# Columns whose row-group statistics readers prune on; statistics of the others (constant per
# file, or lineage) and a dictionary of source_row (unique) cost time and bytes: without them a
# leaf is written 25% faster and is 25% smaller (measured on a month of the bench's facts).
STATISTICS_COLUMNS = ("flow_type", "citizenship_iso3", "counterpart_iso3", "period_start", "sex", "value")


def leaf_options(schema) -> dict:
    """ParquetWriter options of a leaf with columns ``schema``."""
    return {
        "compression": "zstd",
        "use_dictionary": [n for n in schema.names if n != "source_row"],
        "write_statistics": [n for n in schema.names if n in STATISTICS_COLUMNS],
        # The Arrow schema is not stored: a column that came as a dictionary (a constant of the
        # load) reads back as plain text, like the same column of any other leaf.
        "store_schema": False,
    }


def write_partitions(lake: Path, source_id: str, table, partitions: list[tuple[str, int, int]]) -> int:
    """Replace the leaves of ``source_id`` in ``partitions`` with the rows of ``table`` (an Arrow
    table in the fact schema)."""
    return write_leaves(table.to_batches(max_chunksize=200_000), lake, source_id, partitions)


def _codes(table):
    """One int64 code per row for its partition (reporter's index in ``names``, year, month)."""
    import numpy as np
    import pyarrow.compute as pc

    reporters = pc.dictionary_encode(table.column("reporter_iso3")).combine_chunks()
    code = (
        reporters.indices.to_numpy(zero_copy_only=False).astype(np.int64) * 1_000_000
        + table.column("year").to_numpy().astype(np.int64) * 100
        + table.column("month").to_numpy()
    )
    return code, reporters.dictionary.to_pylist()


def _runs(code):
    """Start offsets of the runs of equal codes, with the end appended."""
    import numpy as np

    return [0, *(np.flatnonzero(code[1:] != code[:-1]) + 1).tolist(), len(code)]


def scattered(batch) -> bool:
    """Rows of many partitions interleaved in ``batch`` (more than one change of partition per
    1,024 rows): the caller had better ask its database for rows ordered by partition."""
    if batch.num_rows < 2:
        return False
    import pyarrow as pa

    code, _ = _codes(pa.Table.from_batches([batch]))
    return len(_runs(code)) - 2 > max(8, batch.num_rows // 1024)


class _Leaves:
    """The leaves of one write: rows gathered per partition as slices of the batches they came
    in (no copy), each leaf's gathering written as a row group by a small pool of threads."""

    def __init__(self, lake: Path, source_id: str, group_rows: int, buffer_rows: int):
        from concurrent.futures import ThreadPoolExecutor

        self.lake, self.source_id = lake, source_id
        self.group_rows, self.buffer_rows = group_rows, buffer_rows
        self.pending: dict[tuple[str, int, int], list] = {}  # key -> [(batch number, slice)]
        self.counts: dict[tuple[str, int, int], int] = {}
        self.refs: dict[int, int] = {}  # batch number -> slices pending from it
        self.sizes: dict[int, int] = {}  # batch number -> its rows (counted while referenced)
        self.held = 0
        self.writers: dict = {}
        self.temps: dict[tuple[str, int, int], Path] = {}
        self.pool = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="omh-lake")
        self.last: dict[tuple[str, int, int], object] = {}  # key -> its latest write (in order)
        self.inflight: list = []

    def add(self, number: int, rows: int, key: tuple[str, int, int], piece) -> None:
        if number not in self.refs:
            self.refs[number], self.sizes[number] = 0, rows
            self.held += rows
        self.refs[number] += 1
        self.pending.setdefault(key, []).append((number, piece))
        self.counts[key] = self.counts.get(key, 0) + piece.num_rows
        if self.counts[key] >= self.group_rows:
            self.flush(key)

    def relieve(self) -> None:
        """Past the buffer, write the gatherings that hold the oldest batches first."""
        while self.held > self.buffer_rows and self.pending:
            self.flush(min(self.pending, key=lambda k: self.pending[k][0][0]))

    def flush(self, key: tuple[str, int, int]) -> None:
        import pyarrow as pa

        pieces = self.pending.pop(key)
        self.counts.pop(key)
        table = pa.concat_tables([p for _, p in pieces])  # written as one row group
        for number, _ in pieces:
            self.refs[number] -= 1
            if not self.refs[number]:
                del self.refs[number]
                self.held -= self.sizes.pop(number)
        self._submit(key, table)

    def _submit(self, key: tuple[str, int, int], table) -> None:
        import pyarrow.parquet as pq

        if key not in self.writers:
            path = leaf_path(self.lake, *key, self.source_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.temps[key] = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            self.writers[key] = pq.ParquetWriter(self.temps[key], table.schema, **leaf_options(table.schema))
        writer, before = self.writers[key], self.last.get(key)

        def write() -> None:
            if before is not None:  # row groups of a leaf in the order they were gathered
                before.result()
            writer.write_table(table, row_group_size=max(table.num_rows, 1))

        self.last[key] = future = self.pool.submit(write)
        self.inflight.append(future)
        while len(self.inflight) > WRITE_THREADS:  # bounded: a table waits in memory for a thread
            self.inflight.pop(0).result()

    def close(self) -> None:
        for key in list(self.pending):
            self.flush(key)
        for future in self.inflight:
            future.result()
        self.inflight.clear()
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()

    def discard(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
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

    The rows stream through. Each batch is cut into runs of one partition (a batch whose
    partitions are interleaved is first put in partition order); the runs are gathered per leaf
    and a leaf's gathering is written as a row group once it reaches ``group_rows``, or, when
    the batches still referenced hold more than ``buffer_rows`` rows, oldest first: memory stays
    bounded whatever the order of the rows. Rows keep their order within a leaf as they come.
    Leaves are written to temporary names in their folders; once all are complete, each is
    flushed to disk and renamed over the old one, so a reader sees the old file or the new one,
    never half of either. Rows outside ``partitions`` are an error and leave the lake as it was.
    """
    import numpy as np
    import pyarrow as pa

    wanted = {(p[0], int(p[1]), int(p[2])) for p in partitions}
    leaves = _Leaves(lake, source_id, group_rows, buffer_rows)
    rows = 0
    try:
        for number, batch in enumerate(batches):
            if not batch.num_rows:
                continue
            table = pa.Table.from_batches([batch])
            code, names = _codes(table)
            cuts = _runs(code)
            if len(cuts) - 2 > max(8, len(code) // 1024):  # interleaved: one copy in partition order
                order = np.argsort(code, kind="stable")
                code, table = code[order], table.take(pa.array(order))
                cuts = _runs(code)
            table = table.drop_columns(list(PARTITION_COLUMNS))
            for a, b in zip(cuts[:-1], cuts[1:], strict=True):
                c = int(code[a])
                key = (names[c // 1_000_000], c % 1_000_000 // 100, c % 100)
                if key not in wanted:
                    raise ValueError(
                        f"lake write of {source_id}: rows of {key} are outside the partitions written"
                    )
                leaves.add(number, table.num_rows, key, table.slice(a, b - a))
                rows += b - a
            leaves.relieve()
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
