"""The working engine: a DuckDB connection where a file's cells are extracted and harmonized.

Heavy work runs in DuckDB (vectorized, multi-threaded, spilling to disk past its memory limit);
Python only sees distinct labels and small aggregates. Identifiers come from contracts and are
quoted; values from files or users only ever travel as bound parameters or registered tables.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

# Bounded memory whatever the file: DuckDB spills to its temp directory beyond this. 400MB: with
# ~400 MB of Python, pandas, Arrow and GX beside it, a 10 M-row ingest peaks at ~840 MB and a
# 2 M-row one at ~755 MB (500MB: ~930 / ~740 MB, the pool full only at 10 M), in the same time
# (docs/decisions/0006-throughput.md, session 7).
MEMORY_LIMIT = os.environ.get("OMH_DUCKDB_MEMORY", "400MB")
if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", MEMORY_LIMIT, flags=re.IGNORECASE):  # it goes into SQL
    raise ValueError(f"OMH_DUCKDB_MEMORY={MEMORY_LIMIT!r}: give a size such as 600MB or 2GB")


def ident(name: str) -> str:
    """A quoted SQL identifier (contract attribute names may hold any character)."""
    return '"' + str(name).replace('"', '""') + '"'


def connect(path: str | Path | None = None, temp_dir: str | Path | None = None):
    """A DuckDB connection (in memory by default) with bounded memory and a spill directory."""
    import duckdb

    con = duckdb.connect(str(path) if path else ":memory:")
    configure(con, temp_dir)
    return con


def configure(con, temp_dir: str | Path | None = None) -> None:
    from transforms.scratch import SPILL, process_dir

    # A spill folder of this process's own: the next run removes it if the process is killed.
    spill = process_dir(Path(temp_dir or tempfile.gettempdir()) / SPILL)
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute("SET temp_directory = '" + spill.as_posix().replace("'", "''") + "'")  # a path, quoted
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")


# A scratch database file beside the connection's own, for a file's intermediate tables: DuckDB
# compresses them like stored tables (a constant column costs nothing, repeated labels are
# dictionary-coded) and, having a file behind them, can evict them past its memory limit (an
# in-memory database cannot: a 10 M-row file ran out of memory). It lives in the connection's
# own spill folder (one per process, swept when the process is gone) and goes with release_work.
WORK_DB = "omh_work"


def work_schema(con) -> str:
    if not fetch_all(con, "SELECT 1 FROM duckdb_databases() WHERE database_name = ?", [WORK_DB]):
        folder = Path(fetch_value(con, "SELECT current_setting('temp_directory')"))
        folder.mkdir(parents=True, exist_ok=True)
        # One file per connection (a process may hold several connections).
        path = (folder / f"{temp_name('work')}.duckdb").as_posix().replace("'", "''")  # a path, quoted
        con.execute(f"ATTACH '{path}' AS {WORK_DB}")
    return f"{WORK_DB}.main"


def release_work(con) -> None:
    """Detach the scratch database and delete its file (tables of a file done with)."""
    try:
        rows = fetch_all(con, "SELECT path FROM duckdb_databases() WHERE database_name = ?", [WORK_DB])
    except Exception:  # the connection is closed already: its folder goes with the sweep
        return
    if not rows:
        return
    con.execute(f"DETACH {WORK_DB}")
    for suffix in ("", ".wal"):
        Path(rows[0][0] + suffix).unlink(missing_ok=True)


_DUPLICATES: dict[tuple[str, tuple[str, ...]], object] = {}


def duplicate_groups(con, relation: str, cols) -> object:
    """The keys ``cols`` that occur more than once in ``relation``, as a DataFrame: the key, ``_n``
    (occurrences), ``_row`` (first source row), ``_col`` (a source column, when the relation
    has one) and ``_rows`` (the first five source rows). Hashing the key first keeps the grouping
    to one integer per row. Remembered per relation: harmonize's key check and the canonical
    suite's uniqueness expectation ask the same question of the same table (relation names are
    unique in a process)."""
    key = (relation, tuple(cols))
    if key not in _DUPLICATES:
        keys = ", ".join(ident(c) for c in cols)
        have = set(columns_of(con, relation))
        located = ", min(source_row) AS _row, min(source_row, 5) AS _rows" if "source_row" in have else ""
        located += ", any_value(source_column) AS _col" if located and "source_column" in have else ""
        repeated = f"SELECT hash({keys}) FROM {relation} GROUP BY 1 HAVING count(*) > 1"
        # Usually no hash repeats: then the rows are not scanned again (0.4 s at 20 M rows), and
        # the same query over no row gives the frame its columns.
        where = f"hash({keys}) IN ({repeated})" if fetch_all(con, f"{repeated} LIMIT 1") else "false"
        frame = fetch_df(
            con,
            f"SELECT {keys}, count(*) AS _n{located} FROM {relation} WHERE {where} "
            f"GROUP BY {keys} HAVING count(*) > 1",
        )
        if "_rows" not in frame:
            frame["_rows"] = [[] for _ in range(len(frame))]
        while len(_DUPLICATES) >= 8:
            _DUPLICATES.pop(next(iter(_DUPLICATES)))
        _DUPLICATES[key] = frame
    return _DUPLICATES[key]


_counter = [0]


def temp_name(prefix: str) -> str:
    """A unique name for a temporary view or table in this process."""
    _counter[0] += 1
    return f"_omh_{prefix}_{os.getpid()}_{_counter[0]}"


def register_frame(con, frame, prefix: str) -> str:
    """Register a pandas/Arrow frame under a fresh name and return the name."""
    name = temp_name(prefix)
    con.register(name, frame)
    return name


def small_table(con, frame, prefix: str) -> str:
    """A small frame (a label map, the value columns) as a TEMP table: DuckDB then knows its size
    and builds its hash joins on it, never on the millions of rows it is joined to (a registered
    frame's size is a guess, and a wrong guess ran a 10 M-row file out of memory)."""
    name = temp_name(prefix)
    con.register(f"{name}_in", frame)
    try:
        con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {name}_in")
    finally:
        con.unregister(f"{name}_in")
    return name


def fetch_all(con, sql: str, params=None) -> list[tuple]:
    """Run a query and fetch every row (DuckDB 2 wants each result consumed)."""
    return con.execute(sql, params or []).fetchall()


def fetch_value(con, sql: str, params=None):
    """The first column of the first row, or None."""
    rows = fetch_all(con, sql, params)
    return rows[0][0] if rows else None


def fetch_df(con, sql: str, params=None):
    return con.execute(sql, params or []).df()


def columns_of(con, relation: str) -> list[str]:
    cur = con.execute(f"SELECT * FROM {relation} LIMIT 0")
    names = [d[0] for d in cur.description]
    cur.fetchall()
    return names
