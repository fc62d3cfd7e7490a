"""Exports for analysts and the bulletin: a warehouse view or query to CSV or XLSX.

Every export reads the warehouse on a read-only connection (``read_only_query``) and writes through
``transforms.stages.guard``: a text cell that starts with ``=``, ``+``, ``-`` or ``@`` gets a ``'`` prefix,
so no figure, label or header can run as a formula in an analyst's spreadsheet.
"""

from __future__ import annotations

from pathlib import Path

FORMATS = (".csv", ".xlsx", ".parquet")


class ExportError(ValueError):
    """The export cannot be made as asked (unknown view, unknown format)."""


def read_only_query(wh, query: str, params=None) -> tuple[list[str], list[tuple]]:
    """Run an analyst's query so that it cannot change anything, whatever it says.

    DuckDB: the file is opened read-only; the query must be one statement that reads (a COPY,
    ATTACH, SET or INSTALL is refused); external access is switched off except for reading the
    lake's folder (``read_parquet('var/lake/**/*.parquet', hive_partitioning = true)``), and the
    configuration is locked before the query runs.
    PostgreSQL (``_postgres_query``): one statement, in a READ ONLY transaction rolled back
    whatever happens, as the ``omh_analyst`` role inside its security-definer sandbox: the views
    answer; tables, writes, server files and programs are refused, whatever the login role.
    """
    if wh.engine == "postgres":
        return _postgres_query(wh, query, params)
    _one_select(wh, query)
    lake = str(wh.settings.lake.resolve()).replace("'", "''")
    wh.execute(f"SET allowed_directories = ['{lake}/']")  # the lake reads; nothing else does
    wh.execute("SET enable_external_access = false")
    wh.execute("SET lock_configuration = true")
    return wh.query(query, params)


# What an analyst's DuckDB query may be: a SELECT (with DESCRIBE, SHOW, SUMMARIZE, VALUES, FROM ...)
# or an EXPLAIN of one. The lake's folder is readable, so a COPY ... TO there must not run.
_READING = ("SELECT", "EXPLAIN")


def _one_select(wh, query: str) -> None:
    import duckdb

    statements = wh.con.extract_statements(query)
    kinds = [s.type.name for s in statements]
    if len(kinds) != 1 or kinds[0] not in _READING:
        raise duckdb.PermissionException(
            "the warehouse is read-only here: one query that reads (SELECT, WITH, DESCRIBE, SHOW, "
            "EXPLAIN) runs, nothing else; "
            f"this was: {', '.join(kinds) or 'nothing'}"
        )


ANALYST_ROLE = "omh_analyst"
SANDBOX = "omh_analyst_query"


class SandboxError(RuntimeError):
    """The PostgreSQL warehouse has no sandbox for analysts' queries (roles not installed)."""


def _postgres_query(wh, query: str, params=None) -> tuple[list[str], list[tuple]]:
    """The query alone, as ``omh_analyst``, in ``omh_analyst_query`` (sql/grants.sql).

    ``SET ROLE`` alone would not do when the login is a superuser: the query could set the role
    back. Inside a security-definer function PostgreSQL refuses that. The column names come from
    a describe of the query (parse and analysis only, nothing runs), the rows as JSON text, read
    back in column order. Parameters (``?``) are not supported here: the query is the analyst's.
    """
    import json

    import psycopg
    from psycopg import sql

    if params:
        raise ValueError("analysts' queries on PostgreSQL take no parameters")
    text = query.strip().rstrip(";").strip()
    con = wh.con
    with con.transaction(force_rollback=True), con.cursor() as cur:
        cur.execute("SET TRANSACTION READ ONLY")
        schema, owner = cur.execute(
            "SELECT current_schema(), (SELECT pg_get_userbyid(p.proowner) FROM pg_proc p "
            "WHERE p.proname = %s AND p.pronamespace = current_schema()::regnamespace)",
            [SANDBOX],
        ).fetchone()
        if owner != ANALYST_ROLE:
            raise SandboxError(
                f"the warehouse has no {SANDBOX} owned by {ANALYST_ROLE} (sql/grants.sql): run a load "
                "with a superuser warehouse URL once, or ask an operator; the query was not run"
            )
        try:
            cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ANALYST_ROLE)))
        except psycopg.errors.InsufficientPrivilege as exc:
            raise SandboxError(
                f"this login cannot act as {ANALYST_ROLE}: GRANT {ANALYST_ROLE} TO it; the query was not run"
            ) from exc
        # Parse and analysis only (a describe runs nothing): the column names, in order.
        pgconn = con.pgconn
        encoding = con.info.encoding
        res = pgconn.prepare(b"", text.encode(encoding))
        if res.status != psycopg.pq.ExecStatus.COMMAND_OK:
            raise psycopg.errors.error_from_result(res, encoding)
        desc = pgconn.describe_prepared(b"")
        if desc.status != psycopg.pq.ExecStatus.COMMAND_OK:
            raise psycopg.errors.error_from_result(desc, encoding)
        cols = [(desc.fname(i) or b"").decode(encoding) for i in range(desc.nfields)]
        if not cols:
            raise ValueError("only queries that return rows run here (SELECT, VALUES, WITH ...)")
        cur.execute(sql.SQL("SELECT {}(%s)").format(sql.Identifier(schema, SANDBOX)), [text])
        # Objects as pairs: a row keeps its column order (and twice-used names).
        rows = [
            tuple(_plain(v) for _, v in json.loads(r[0], object_pairs_hook=_Pairs)) for r in cur.fetchall()
        ]
    return cols, rows


class _Pairs(list):
    """A JSON object as its (key, value) pairs, in order."""


def _plain(value):
    if isinstance(value, _Pairs):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def export(out: str | Path, view: str | None = None, query: str | None = None, home=None) -> int:
    """Write a view (by name) or a query's result to ``out`` (.csv, .xlsx or .parquet); returns the
    row count. Whole numbers are written as integers."""
    from transforms.config import settings
    from transforms.engine import ident
    from transforms.stages import guard
    from transforms.storage.warehouse import VIEWS_SQL, open_for_reading, view_names

    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ExportError(f"{out.name}: exports are {' or '.join(FORMATS)}")
    if (view is None) == (query is None):
        raise ExportError("give a view or a query (one of them)")
    with open_for_reading(settings(home)) as wh:
        if view is not None:
            views = set(view_names(VIEWS_SQL.read_text(encoding="utf-8")))  # the project's own views
            if view not in views:
                raise ExportError(f"no view {view!r}; the views are {', '.join(sorted(views))}")
            query = f"SELECT * FROM {ident(view)}"
        cols, rows = read_only_query(wh, query)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        suffix = out.suffix.lower()
        if suffix == ".csv":
            with tmp.open("w", encoding="utf-8", newline="") as fh:
                n = guard.write_csv(fh, cols, whole_numbers(rows))
        elif suffix == ".xlsx":
            n = guard.write_xlsx(tmp, cols, whole_numbers(rows), sheet=view or "query")
        else:
            n = _write_parquet(tmp, cols, rows)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def whole_numbers(rows):
    """The rows with every whole float as an int: counts are stored as DOUBLE (a source may round
    or estimate), but 339 persons are written ``339``, not ``339.0``."""
    for row in rows:
        yield [int(v) if isinstance(v, float) and v.is_integer() else v for v in row]


def _write_parquet(path: Path, cols: list[str], rows: list) -> int:
    """A Parquet file with the query's columns; a float column that holds only whole numbers
    (and NULLs) is written as a 64-bit integer column."""
    import pandas as pd

    if len(set(cols)) != len(cols):
        raise ExportError("Parquet needs distinct column names: name each column (AS ...)")
    frame = pd.DataFrame.from_records(rows, columns=cols)
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_float_dtype(column) and (column.dropna() % 1 == 0).all():
            frame[name] = column.astype("Int64")
    frame.to_parquet(path, index=False)
    return len(frame)


__all__ = ["ExportError", "export", "read_only_query", "whole_numbers"]
