"""A first load's observations handed to the warehouse without a copy: ``LocalFacts`` (a SELECT
in the warehouse's own DuckDB connection) and ``FactSink`` (harmonize writes them straight into
``fact_flow``)."""

from __future__ import annotations

from dataclasses import dataclass

from transforms.storage.warehouse.schema import STORED_COLUMNS, _sql_type, stored_schema


@dataclass
class LocalFacts:
    """A file's observations already in the warehouse's own DuckDB connection: a SELECT in the
    fact schema over the harmonized table, loaded with no copy through Python or Arrow."""

    sql: str


class FactSink:
    """A first load's observations written once, where they are published (``wh``: a
    ``DuckDBWarehouse``).

    Harmonize hands its canonical SELECT to the sink instead of storing it in a scratch table
    (``harmonize(sink=...)``). When the source holds no current figure and no earlier file's
    coverage in the file's period span, the sink opens a transaction on the warehouse and
    inserts the observations into ``fact_flow`` with their load (a ``dim_load`` row), as the
    load would write them; every later check of the file reads them there (each of 20 M observations written
    once instead of twice). The transaction stays open: ``Warehouse.load`` of the same file
    joins it and finds the rows written, ``commit`` ends it, and ``abandon`` (a refusal, any
    failure) rolls it back, so a refused file leaves nothing. Otherwise the sink declines and
    the file takes the staged path.
    """

    def __init__(self, wh, source_id: str, file_name: str, sha: str, vintage, stamp):
        self.wh, self.source_id, self.sha, self.stamp = wh, source_id, sha, stamp
        self.file_name, self.vintage = file_name, vintage
        self.load_id: int | None = None  # the file's row of dim_load, once written
        self.rows: int | None = None  # the observations written, once written
        # ... and their scope, as ``Checked.fact_scope`` counts it (the load needs no second
        # aggregate over the rows the sink has just counted).
        self.scope: list | None = None
        self.open = False

    def __call__(self, source: str, stored: dict, constants: dict, span: tuple) -> str | None:
        from transforms.engine import ident

        wh = self.wh
        if self.rows is not None or not wh._span_empty([self.source_id, *span]):
            return None
        if any(c not in stored and c not in constants for c in STORED_COLUMNS if c != "load_id"):
            return None  # a column the canonical SELECT does not give
        wh.con.execute("BEGIN")
        wh._depth += 1
        self.open = True
        try:
            self.load_id = wh._load_row(self.source_id, self.file_name, self.sha, self.vintage, self.stamp)
            cols, params = [], []
            for f in stored_schema():
                if f.name == "load_id":  # a literal: DuckDB skips other loads' row groups by it
                    cols.append(f"CAST({self.load_id} AS INTEGER)")
                elif f.name in stored:
                    cols.append(f"CAST({ident(f.name)} AS {_sql_type(f.type)})")
                else:
                    cols.append(f"CAST(? AS {_sql_type(f.type)})")
                    params.append(constants[f.name])
            where = f"load_id = {self.load_id}"
            own = ", ".join(f"CAST({ident(a)} AS {t}) AS {ident(a)}" for a, t in stored.items())
            self.rows = int(
                wh.con.execute(
                    f"INSERT INTO fact_flow ({', '.join(STORED_COLUMNS)}, change) "
                    f"SELECT {', '.join(cols)}, 'new' FROM ({source}) s",
                    params,
                ).fetchone()[0]
            )
            keys = "source_id, reporter_iso3, period_start, period_end, year, month"
            scope = wh.fetchall(f"SELECT {keys}, count(*) FROM fact_flow WHERE {where} GROUP BY {keys}")
            if not wh._first_in_span(scope, own=self.load_id):  # the load would diff it after all
                self.abandon()
                return None
            self.scope = scope
        except BaseException:
            self.abandon()
            raise
        return f"(SELECT {own} FROM fact_flow WHERE {where})"

    def commit(self) -> None:
        if self.open:
            self.open = False
            self.wh._depth -= 1
            self.wh.con.execute("COMMIT")

    def abandon(self) -> None:
        """Roll the written observations back (nothing of the file stays); idempotent."""
        if self.open:
            self.open, self.rows, self.scope, self.load_id = False, None, None, None
            self.wh._depth -= 1
            self.wh.con.execute("ROLLBACK")
