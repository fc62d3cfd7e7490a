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


def write_partitions(lake: Path, source_id: str, table, partitions: list[tuple[str, int, int]]) -> int:
    """Replace the leaves of ``source_id`` in ``partitions`` with the rows of ``table`` (Arrow);
    a partition with no rows left loses its leaf."""
    from transforms.engine import connect, register_frame

    con = connect()
    try:
        return copy_partitions(con, f"SELECT * FROM {register_frame(con, table, 'lake')}", lake, source_id, partitions)
    finally:
        con.close()


def copy_partitions(con, relation: str, lake: Path, source_id: str, partitions: list[tuple[str, int, int]]) -> int:
    """Replace the leaves of ``source_id`` in ``partitions`` with the rows of ``relation`` (a
    SELECT in the fact schema, run on the DuckDB connection ``con``).

    One partitioned COPY writes every leaf to a scratch folder beside the lake (DuckDB sorts and
    writes in parallel, spilling past its memory limit); then each leaf is flushed to disk and
    renamed over the old one, so a reader sees the old file or the new one, never half of either.
    A partition with no rows left loses its leaf.
    """
    import shutil

    from transforms.engine import fetch_all, ident

    lake.mkdir(parents=True, exist_ok=True)
    for stale in lake.glob(f".write-{source_id}-*"):  # left by a writer that was killed
        if stale_scratch(stale):
            shutil.rmtree(stale, ignore_errors=True)
    scratch = lake / f".write-{source_id}-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    order = ", ".join(ident(c) for c in (*PARTITION_COLUMNS, *LEAF_ORDER))
    written = 0
    try:
        # The leaves are written in order; DuckDB keeps it within each file only when asked to.
        keep = fetch_all(con, "SELECT current_setting('preserve_insertion_order')")[0][0]
        con.execute("SET preserve_insertion_order = true")
        try:
            con.execute(
                f"COPY (SELECT * FROM ({relation}) ORDER BY {order}) TO '{_quoted(scratch)}' "
                f"(FORMAT parquet, COMPRESSION zstd, PARTITION_BY ({', '.join(PARTITION_COLUMNS)}), "
                "FILENAME_PATTERN 'leaf_{i}', WRITE_PARTITION_COLUMNS false)"
            )
        finally:
            con.execute(f"SET preserve_insertion_order = {'true' if keep else 'false'}")
        for reporter, year, month in partitions:
            path = leaf_path(lake, reporter, year, month, source_id)
            folder = scratch / f"reporter_iso3={reporter}" / f"year={int(year)}" / f"month={int(month)}"
            files = sorted(folder.glob("leaf_*.parquet")) if folder.is_dir() else []
            if not files:
                path.unlink(missing_ok=True)
                continue
            if len(files) > 1:  # DuckDB split a large leaf: one file per leaf, as readers expect
                _merge_files(con, files, folder / "merged.parquet")
                files = [folder / "merged.parquet"]
            written += _publish(files[0], path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return written


def stale_scratch(folder: Path) -> bool:
    """A ``.write-<source>-<pid>`` scratch folder whose writer process is gone."""
    pid = folder.name.rsplit("-", 1)[-1]
    return folder.name.startswith(".write-") and pid.isdigit() and not _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _quoted(path: Path) -> str:
    return path.as_posix().replace("'", "''")


def _merge_files(con, files: list[Path], out: Path) -> None:
    listed = ", ".join(f"'{_quoted(f)}'" for f in files)
    con.execute(f"COPY (SELECT * FROM read_parquet([{listed}])) TO '{_quoted(out)}' (FORMAT parquet, COMPRESSION zstd)")


def _publish(src: Path, path: Path) -> int:
    """Move a written leaf into place atomically (flushed first); returns its row count."""
    import pyarrow.parquet as pq

    rows = pq.ParquetFile(src).metadata.num_rows
    with open(src, "rb+") as fh:
        os.fsync(fh.fileno())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        os.replace(src, tmp)  # same file system: the lake's own folder
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
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
