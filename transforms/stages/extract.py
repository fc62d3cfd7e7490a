"""Extract: a landing file + its contract -> a tidy long table of text cells, in DuckDB.

One record per value cell: the row's id attributes, the value column's header (or header levels
of a wide layout), the raw text of the cell, whether the cell is a value or one of the source's
own totals, and its location (sheet, physical row, column as the file names it).
Hierarchy rows and columns (subtotals) are left out; grand totals are kept as controls.

The file becomes a *grid* relation (c0..cN text, source_row): a registered frame from the plain
readers, or a staging Parquet file written by Arrow for large delimited files. The long table is a
DuckDB view over it, so a file of millions of rows is never held in Python.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from transforms.contracts.model import Column, Contract, Predicate
from transforms.engine import connect, fetch_df, fetch_value, ident, register_frame, small_table, temp_name
from transforms.readers import ReadError, read_grid
from transforms.readers.grid import col_letter

# Delimited files at least this large take the Arrow staging path (OMH_FAST_CSV_BYTES overrides).
FAST_CSV_BYTES = 32 * 1024 * 1024
# ... and so do smaller files of about this many cells: the plain reader holds a Python string per
# cell, and 30 MB of tiny cells is millions of them (over 1.5 GB).
FAST_CSV_CELLS = 2_000_000


def _many_cells(path: Path, delimiter: str) -> bool:
    """Whether the file has at least FAST_CSV_CELLS line breaks and delimiters (cheap upper bound)."""
    count, delim = 0, delimiter.encode("utf-8")[:1] or b","
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            count += chunk.count(b"\n") + chunk.count(delim)
            if count >= FAST_CSV_CELLS:
                return True
    return False


class ExtractError(ValueError):
    """The file does not fit its contract (drift); the message names the file and columns."""


@dataclass
class Extracted:
    """The long table of one file: a view in ``con`` plus what was learnt reading it."""

    con: object
    view: str
    sheet: str | None
    header: list[str]
    drift: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_skipped: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    version: int | None = None
    attrs: list[str] = field(default_factory=list)
    staged: str | None = None  # the staging table of a large delimited file (trimmed cells)
    rows_view: str | None = None
    row_attrs: list[str] = field(default_factory=list)
    # SELECT of the long table over a relation of the rows view's columns (plus ``extra`` ones
    # carried along): harmonize joins row-level labels on the rows before they become cells.
    long_over: Callable[[str, list[str]], str] | None = None
    measures: pd.DataFrame | None = None
    work_dir: Path | None = None
    temp_files: list[Path] = field(default_factory=list)
    # The totals of ``Contract.sheet_totals``, read from their sheets (``readers.sheet_totals``).
    sheet_totals: list[pd.DataFrame] = field(default_factory=list)
    # The long table of the total table of the other blocks (``blocks.totals``): controls.
    block_totals: Extracted | None = None

    @property
    def table(self) -> pd.DataFrame:
        """The long table materialized as a DataFrame (small files and tests)."""
        return fetch_df(self.con, f"SELECT * FROM {self.view} ORDER BY source_row, source_col")

    def cleanup(self) -> None:
        from transforms.engine import release_work

        release_work(self.con)  # the harmonized tables of this file, if any were made
        for path in self.temp_files:
            path.unlink(missing_ok=True)

    def temp_file(self, prefix: str, suffix: str = ".parquet") -> Path:
        """A scratch file next to the staging data, removed by ``cleanup``."""
        folder = Path(self.work_dir or tempfile.gettempdir())
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{temp_name(prefix)}{suffix}"
        self.temp_files.append(path)
        return path


class Params:
    """Literal values for SQL, passed through a one-row registered table, never formatted in."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def add(self, value) -> str:
        key = f"p{len(self.values)}"
        self.values[key] = value
        return f"prm.{key}"

    def register(self, con) -> str:
        frame = pd.DataFrame({k: [v] for k, v in self.values.items()} or {"p": [None]})
        return register_frame(con, frame, "prm")


def _norm(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def _locate(col: Column, header: list[str], name: str, what: str) -> tuple[int, str | None]:
    """Index of a column in the file, and the alias used if it is not the contract's own name."""
    if col.index() is not None:
        idx = col.index()
        if idx >= len(header):
            raise ExtractError(
                f"{name}: {what} is column {col_letter(idx)}, but the file has {len(header)} columns"
            )
        return idx, None
    wanted = [col.header, *col.aliases]
    normalized = [_norm(h) for h in header]
    for candidate in wanted:
        if _norm(candidate) in normalized:
            alias = None if candidate == col.header else candidate
            return normalized.index(_norm(candidate)), alias
    raise ExtractError(
        f"{name}: column {col.header!r} ({what}) is missing; the file has columns {[h for h in header if h]}"
    )


def _predicate_sql(pred: Predicate, prm: Params) -> str:
    col = ident(pred.column)
    parts = []
    if pred.empty is not None:
        parts.append(f"({col} = '')" if pred.empty else f"({col} <> '')")
    if pred.equals is not None:
        parts.append(f"({col} = {prm.add(pred.equals)})")
    if pred.isin is not None:
        parts.append(f"list_contains({prm.add(list(pred.isin))}, {col})")
    if pred.matches is not None:
        parts.append(f"regexp_matches({col}, {prm.add(pred.matches)})")
    return "(" + " AND ".join(parts or ["TRUE"]) + ")"


def _any(preds: list[Predicate], prm: Params) -> str:
    return "(" + " OR ".join(_predicate_sql(p, prm) for p in preds) + ")" if preds else "FALSE"


def extract(path: str | Path, contract: Contract, con=None, work_dir: str | Path | None = None) -> Extracted:
    """Read ``path`` with the contract format version it fits (the contract's own first).

    ``con`` is the DuckDB connection to build the long view in (a new in-memory one by default);
    ``work_dir`` receives scratch files (a transcoded copy of a large UTF-16 file, the
    canonical Parquet when asked for).
    """
    con = con if con is not None else connect()
    grid = _load_grid(Path(path), contract, con, work_dir)
    grids = [grid]  # staging files of every grid read, removed unless the result keeps them
    variants = contract.variants()
    first_error: ExtractError | None = None
    for variant in variants:
        if variant.reader != contract.reader:
            grid = _load_grid(Path(path), variant, con, work_dir)
            grids.append(grid)
        try:
            out = _extract(Path(path), variant, con, grid)
        except ExtractError as exc:
            first_error = first_error or exc
            continue
        if variant is not contract:
            note = next((v.note for v in contract.versions if v.version == variant.version and v.note), None)
            out.drift.insert(
                0, f"matched format version {variant.version} of the contract{f' ({note})' if note else ''}"
            )
        out.version = variant.version
        out.work_dir = Path(work_dir) if work_dir else None
        if grid.totals is not None:  # the total table's cells, as a long view of their own
            out.block_totals = _extract(Path(path), variant, con, grid.totals)
        if contract.sheet_totals:
            from transforms.readers.sheet_totals import read_sheet_totals

            out.sheet_totals = [read_sheet_totals(Path(path), spec) for spec in contract.sheet_totals]
        _drop_staged(con, grids, keep=grid)
        return out
    _drop_staged(con, grids)
    error = first_error
    if len(variants) > 1:
        tried = ", ".join(str(v.version) for v in variants)
        error = ExtractError(f"{first_error} (format versions tried: {tried})")
    error.header = grid.header  # the caller's guards read the file's own column names
    raise error


def _drop_staged(con, grids: list[_Grid], keep: _Grid | None = None) -> None:
    for g in grids:
        if g.staged is not None and g is not keep and (keep is None or g.staged != keep.staged):
            con.execute(f"DROP VIEW IF EXISTS {g.view}")
            con.execute(f"DROP TABLE IF EXISTS {g.staged}")


@dataclass
class _Grid:
    view: str
    header_levels: list[list[str]]
    width: int
    sheet: str | None
    rows: int
    staged: str | None = None  # staging table: its cells are trimmed already
    attributes: list[str] = field(default_factory=list)  # the layout step's columns, at the end
    totals: _Grid | None = None  # the total table of the other blocks (``blocks.totals``)

    @property
    def header(self) -> list[str]:
        out = []
        for i in range(self.width):
            parts = [lvl[i] for lvl in self.header_levels if lvl[i]]
            out.append(" / ".join(p for j, p in enumerate(parts) if j == 0 or p != parts[j - 1]))
        return out


def _load_grid(path: Path, contract: Contract, con, work_dir) -> _Grid:
    """The file as a grid relation in ``con``: staged by Arrow when large, else the plain reader."""
    spec = contract.reader
    if not path.is_file():
        raise ReadError(f"{path.name}: no such file")
    threshold = int(os.environ.get("OMH_FAST_CSV_BYTES", FAST_CSV_BYTES))
    fast = spec.format == "csv" and not spec.has_layout()  # the layout step reads rows in Python
    if fast and (path.stat().st_size >= threshold or _many_cells(path, spec.delimiter)):
        from transforms.engine import work_schema
        from transforms.readers.staging import stage_csv

        table = f"{work_schema(con)}.{temp_name('stage')}"
        try:
            staged = stage_csv(path, spec, con, table, scratch=work_dir)
        except ReadError as exc:
            if "plain reader" not in str(exc):
                raise
        else:
            view = temp_name("grid")
            # Rows after the first all-empty row are footnotes; all-empty rows are no data. The
            # first empty row is a literal (stage_csv looked it up): a subquery in the view would
            # leave the planner guessing a handful of rows, and it would then hash millions of them
            # in memory.
            stop = staged.first_blank
            before = f" AND source_row < {int(stop)}" if stop is not None else ""
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * EXCLUDE (_blank) FROM {table} WHERE NOT _blank{before}"
            )
            return _Grid(view, staged.header_levels, staged.width, None, staged.rows, table)
    return _register(read_grid(path, spec), con)


def _register(grid, con) -> _Grid:
    """A plain reader's grid as a registered frame of ``con``, its total table's too."""
    width = len(grid.header_levels[0]) if grid.header_levels else 0
    frame = pd.DataFrame(
        {
            f"c{i}": (grid.data[i].astype(str) if len(grid.data) else pd.Series([], dtype=str))
            for i in range(width)
        }
    )
    frame["source_row"] = pd.Series(grid.row_numbers, dtype="int64")
    name = register_frame(con, frame, "grid")
    out = _Grid(name, grid.header_levels, width, grid.sheet, len(frame), attributes=list(grid.attributes))
    if grid.totals is not None:
        out.totals = _register(grid.totals, con)
    return out


def _extract(path: Path, contract: Contract, con, grid: _Grid) -> Extracted:
    """Build the long view of ``grid`` as ``contract`` says (see module doc): the id columns, the
    value columns (listed or melted), then the rows view and the long view over it."""
    name = path.name
    ids = _id_columns(contract, grid, name)
    columns, level_names = _value_columns(contract, grid, name, ids)
    measures = _measures_frame(columns, level_names)
    rows_view, long_over = _views(con, contract, grid, ids.sql, measures, level_names)
    long_view = temp_name("long")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {long_view} AS {long_over(rows_view, [])}")
    skipped = fetch_value(con, f"SELECT count(*) FILTER (WHERE _skip AND NOT _is_total) FROM {rows_view}")
    return Extracted(
        con=con,
        view=long_view,
        sheet=grid.sheet,
        header=grid.header,
        drift=ids.drift,
        rows_read=grid.rows,
        rows_skipped=int(skipped),
        headers=ids.headers,
        attrs=[*ids.sql, *level_names],
        staged=grid.staged,
        rows_view=rows_view,
        row_attrs=list(ids.sql),
        long_over=long_over,
        measures=measures,
    )


@dataclass
class _Ids:
    """The id columns of a file: each attribute's SQL over the grid, its header as the file names
    it, the grid columns used, and the drift found (renamed columns)."""

    sql: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)
    drift: list[str] = field(default_factory=list)


def _id_columns(contract: Contract, grid: _Grid, name: str) -> _Ids:
    found = _Ids()
    header = grid.header
    # The layout step's attributes (captures, parent labels, sheet names) are ids of every row.
    ids = {**{a: Column(header=a) for a in grid.attributes}, **contract.ids}
    for attr, col in ids.items():
        idx, alias = _locate(col, header, name, f"id '{attr}'")
        if alias:
            found.drift.append(f"column {col.header!r} is named {alias!r} in this file")
        found.used.add(idx)
        found.headers[attr] = header[idx]
        expr = f"c{idx}" if grid.staged else f"trim(coalesce(c{idx}, ''))"  # staged cells are trimmed
        if attr in contract.reader.fill_down:
            expr = (
                f"coalesce(last_value(nullif({expr}, '') IGNORE NULLS) OVER (ORDER BY source_row "
                "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), '')"
            )
        elif attr in contract.reader.fill_up:
            expr = (
                f"coalesce(first_value(nullif({expr}, '') IGNORE NULLS) OVER (ORDER BY source_row "
                "ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING), '')"
            )
        found.sql[attr] = expr
    return found


# A value column: (index, header text, measure index, role, level attributes).
_ValueColumn = tuple[int, str, int, str, dict[str, str]]


def _value_columns(
    contract: Contract, grid: _Grid, name: str, ids: _Ids
) -> tuple[list[_ValueColumn], list[str]]:
    """The value columns: those the contract lists by header, or every column under the header
    levels a ``melt`` names (its skip and total patterns applied); and the level names."""
    columns: list[_ValueColumn] = []
    header = grid.header
    if contract.values.columns:
        for m_idx, measure in enumerate(contract.values.columns):
            col = Column(header=measure.header, aliases=measure.aliases)
            idx, alias = _locate(col, header, name, "value column")
            if alias:
                ids.drift.append(f"column {measure.header!r} is named {alias!r} in this file")
            ids.used.add(idx)
            columns.append((idx, header[idx], m_idx, measure.role, {}))
        extra = [h for i, h in enumerate(header) if i not in ids.used and h]
        if extra:
            ids.drift.append(f"columns not in the contract (ignored): {extra}")
        level_names: list[str] = []
    else:
        melt = contract.values.melt
        levels = grid.header_levels
        level_names = list(melt.names)
        if len(melt.names) != len(levels):
            raise ExtractError(
                f"{name}: the contract names {len(melt.names)} header levels, the file has {len(levels)}"
            )
        for idx in range(melt.start_index(), len(header) - len(grid.attributes)):
            level_attrs = {n: levels[i][idx] for i, n in enumerate(melt.names)}
            if not any(level_attrs.values()):
                continue
            if any(p.test(level_attrs[p.column]) for p in melt.skip):
                continue
            role = "total" if any(p.test(level_attrs[p.column]) for p in melt.total) else "value"
            ids.used.add(idx)
            columns.append((idx, header[idx], -1, role, level_attrs))
    if not columns:
        raise ExtractError(f"{name}: no value column of the contract is in the file")
    return columns, level_names


def _measures_frame(columns: list[_ValueColumn], level_names: list[str]) -> pd.DataFrame:
    """The value columns as a small table: one row per column, joined to every data row."""
    return pd.DataFrame(
        {
            "col_index": [c[0] for c in columns],
            "measure": [c[1] for c in columns],
            "measure_index": [c[2] for c in columns],
            "role": [c[3] for c in columns],
            "source_col": [col_letter(c[0]) for c in columns],
            **{n: [c[4].get(n, "") for c in columns] for n in level_names},
        }
    )


def _views(
    con, contract: Contract, grid: _Grid, attr_sql: dict[str, str], measures: pd.DataFrame, level_names
):
    """The rows view (ids, value columns, whether a row is a total or skipped) and ``long_over``,
    the SQL of the long table (one row per value cell) over a rows view."""
    prm = Params()
    mname = small_table(con, measures, "measures")
    rows_view = temp_name("rows")
    total_sql = _any(contract.rows.total, prm)
    skip_sql = _any(contract.rows.skip, prm)
    prm_name = prm.register(con)
    attr_list = ", ".join(f"{expr} AS {ident(a)}" for a, expr in attr_sql.items())
    value_cols = sorted({int(i) for i in measures["col_index"]})
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {rows_view} AS
        WITH a AS (SELECT source_row{", " if attr_list else ""}{attr_list},
                          {", ".join(f"c{i}" for i in value_cols)} FROM {grid.view})
        SELECT a.*, {total_sql} AS _is_total, {skip_sql} AS _skip FROM a CROSS JOIN {prm_name} AS prm"""
    )
    value_case = "CASE m.col_index " + " ".join(f"WHEN {i} THEN r.c{i}" for i in value_cols) + " END"
    # Staged cells are trimmed already (a value column's cells pass here once per row).
    value_sql = f"coalesce({value_case}, '')" if grid.staged else f"trim(coalesce({value_case}, ''))"
    attrs_out = ", ".join(f"r.{ident(a)}" for a in attr_sql)
    levels_out = ", ".join(f"m.{ident(n)}" for n in level_names)

    def long_over(rows: str, extra: list[str]) -> str:
        carried = "".join(f", r.{ident(c)}" for c in extra)
        return f"""SELECT {attrs_out}{", " if attrs_out else ""}{levels_out}{", " if levels_out else ""}
               m.measure, m.measure_index, {value_sql} AS value_raw,
               r.source_row, m.measure AS source_column, m.source_col,
               CASE WHEN r._is_total THEN (CASE WHEN m.role = 'total' THEN 'grand_total' ELSE 'total_row' END)
                    ELSE m.role END AS cell_role{carried}
        FROM (SELECT * FROM {rows} WHERE _is_total OR NOT _skip) r CROSS JOIN {mname} m"""

    return rows_view, long_over


__all__ = ["ExtractError", "Extracted", "ReadError", "extract"]
