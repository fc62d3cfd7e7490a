"""Exports for analysts and the bulletin: a warehouse view or query to CSV or XLSX.

Every export reads the warehouse on a read-only connection (``read_only_query``) and writes through
``transforms.guard``: a text cell that starts with ``=``, ``+``, ``-`` or ``@`` gets a ``'`` prefix,
so no figure, label or header can run as a formula in an analyst's spreadsheet.
"""

from __future__ import annotations

from pathlib import Path

FORMATS = (".csv", ".xlsx")


class ExportError(ValueError):
    """The export cannot be made as asked (unknown view, unknown format)."""


def read_only_query(wh, query: str, params=None) -> tuple[list[str], list[tuple]]:
    """Run an analyst's query so that it cannot change anything, whatever it says.

    DuckDB: the file is opened read-only, and external access (COPY TO, ATTACH, read_csv of any
    file, INSTALL) is switched off and the configuration locked before the query runs.
    PostgreSQL: one statement only (the extended protocol refuses "COMMIT; ..."), in a READ ONLY
    transaction that is rolled back whatever happens.
    """
    if wh.engine == "postgres":
        with wh.con.transaction(force_rollback=True), wh.con.cursor() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            cur.execute(query.replace("?", "%s") if params else query, params, prepare=True)
            if cur.description is None:
                return [], []
            return [d.name for d in cur.description], cur.fetchall()
    wh.execute("SET enable_external_access = false")
    wh.execute("SET lock_configuration = true")
    return wh.query(query, params)


def export(out: str | Path, view: str | None = None, query: str | None = None, home=None) -> int:
    """Write a view (by name) or a query's result to ``out`` (.csv or .xlsx); returns the row count."""
    from transforms import guard
    from transforms.config import settings
    from transforms.engine import ident
    from transforms.warehouse import VIEWS_SQL, Warehouse, view_names

    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ExportError(f"{out.name}: exports are {' or '.join(FORMATS)}")
    if (view is None) == (query is None):
        raise ExportError("give a view or a query (one of them)")
    with Warehouse(settings(home), read_only=True) as wh:
        if view is not None:
            views = set(view_names(VIEWS_SQL.read_text(encoding="utf-8")))  # the project's own views
            if view not in views:
                raise ExportError(f"no view {view!r}; the views are {', '.join(sorted(views))}")
            query = f"SELECT * FROM {ident(view)}"
        cols, rows = read_only_query(wh, query)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if out.suffix.lower() == ".csv":
            with tmp.open("w", encoding="utf-8", newline="") as fh:
                n = guard.write_csv(fh, cols, rows)
        else:
            n = guard.write_xlsx(tmp, cols, rows, sheet=view or "query")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return n


__all__ = ["ExportError", "export", "read_only_query"]
