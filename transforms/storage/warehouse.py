"""The warehouse: star schema, vintages, manifest and validation results, one transaction per file.

Two engines, one schema (docs/decisions/0003-warehouse.md):

* DuckDB through its native API, the embedded default (``duckdb:///path/warehouse.duckdb``);
* PostgreSQL through psycopg 3 when ``OMH_WAREHOUSE_URL`` is ``postgresql://user@host:port/db``
  (libpq options such as ``?options=-csearch_path%3Dmy_schema`` pick the schema). Loads use
  ``COPY ... FROM STDIN``, never row inserts.

The DDL lives in ``sql/``: ``sql/migrations/NNNN_*.sql`` are applied once each, in order, and
recorded in ``schema_version`` (an existing warehouse upgrades on its next run); ``sql/views.sql``
is recreated whenever it changes; ``sql/grants.sql`` sets the PostgreSQL roles. A statement marked
``-- @postgres`` or ``-- @duckdb`` runs on that engine only; everything else is the same text.
The SQL in this module is written once with ``?`` placeholders and runs on both engines.

Storage knows nothing of countries: it takes canonical frames and code lists and keeps them.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import hashlib
import io
import itertools
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from transforms.config import SQL_DIR, Settings, mask_secrets, pinned_today, today
from transforms.contracts import codelists
from transforms.contracts.mirror_pairs import pair_frame
from transforms.stages.harmonize import KEY_COLUMNS
from transforms.storage.manifest import LOADED_SQL

log = logging.getLogger("omh.warehouse")

MIGRATIONS_DIR = SQL_DIR / "migrations"
VIEWS_SQL = SQL_DIR / "views.sql"
GRANTS_SQL = SQL_DIR / "grants.sql"

FACT_COLUMNS = [
    "source_id",
    "reporter_iso3",
    "reporter_role",
    "flow_type",
    "citizenship_iso3",
    "counterpart_iso3",
    "period_start",
    "period_end",
    "period_type",
    "sex",
    "age_band",
    "unit",
    "detail",
    "value",
    "obs_status",
    "conf_status",
    "rounding_base",
    "source_file",
    "source_sha256",
    "source_sheet",
    "source_row",
    "source_column",
    "vintage",
    "loaded_at",
    "year",
    "month",
]
# What makes a figure different from the one already published (the key being equal).
STATE_COLUMNS = ["value", "obs_status", "conf_status", "rounding_base"]
MANIFEST_COLUMNS = [
    "source_id",
    "sha256",
    "file_name",
    "landing_path",
    "size_bytes",
    "received_at",
    "vintage",
    "status",
    "rows_loaded",
    "warnings",
    "reason",
    "report_path",
    "processed_at",
    "rows_new",
    "rows_revised",
    "rows_withdrawn",
    "rows_unchanged",
    "lake_written_at",
    "rules_sha256",
]
_STAGE_TABLES = ("_new", "_scope", "_gone", "_fresh")


def fact_schema():
    """The Arrow schema of a fact row, the same whichever engine produced it (and in the lake)."""
    import pyarrow as pa

    types = {
        "period_start": pa.date32(),
        "period_end": pa.date32(),
        "vintage": pa.date32(),
        "value": pa.float64(),
        "rounding_base": pa.int32(),
        "source_row": pa.int64(),
        "loaded_at": pa.timestamp("us"),
        "year": pa.int32(),
        "month": pa.int32(),
    }
    return pa.schema([(c, types.get(c, pa.string())) for c in FACT_COLUMNS])


@dataclass
class LocalFacts:
    """A file's observations already in the warehouse's own DuckDB connection: a SELECT in the
    fact schema over the harmonized table, loaded with no copy through Python or Arrow."""

    sql: str


class WarehouseError(RuntimeError):
    pass


class FactSink:
    """A first load's observations written once, where they are published (DuckDB warehouse).

    Harmonize hands its canonical SELECT to the sink instead of storing it in a scratch table
    (``harmonize(sink=...)``). When the source holds no current figure and no earlier file's
    coverage in the file's period span, the sink opens a transaction on the warehouse and
    inserts the observations into ``fact_flow`` with their lineage, as the load would write
    them; every later check of the file reads them there (each of 20 M observations written
    once instead of twice). The transaction stays open: ``Warehouse.load`` of the same file
    joins it and finds the rows written, ``commit`` ends it, and ``abandon`` (a refusal, any
    failure) rolls it back, so a refused file leaves nothing. Otherwise the sink declines and
    the file takes the staged path.
    """

    def __init__(self, wh: DuckDBWarehouse, source_id: str, file_name: str, sha: str, vintage, stamp):
        self.wh, self.source_id, self.sha, self.stamp = wh, source_id, sha, stamp
        self.lineage = {
            "source_file": file_name,
            "source_sha256": sha,
            "vintage": vintage,
            "loaded_at": stamp,
        }
        self.rows: int | None = None  # the observations written, once written
        # ... and their scope, as ``Checked.fact_scope`` counts it (the load needs no second
        # aggregate over the rows the sink has just counted).
        self.scope: list | None = None
        self.open = False

    def __call__(self, source: str, stored: dict, constants: dict, span: tuple) -> str | None:
        from transforms.engine import ident

        wh, fixed = self.wh, {**constants, **self.lineage}
        if self.rows is not None or not wh._span_empty([self.source_id, *span]):
            return None
        cols, params = [], []
        for f in fact_schema():
            if f.name in stored:
                cols.append(f"CAST({ident(f.name)} AS {_sql_type(f.type)})")
            elif f.name in fixed:
                cols.append(f"CAST(? AS {_sql_type(f.type)})")
                params.append(fixed[f.name])
            else:
                return None  # a column the canonical SELECT does not give
        # The file's rows: its hash (hexadecimal) and this load's instant, as literals (DuckDB
        # skips the row groups of other loads by their statistics).
        where = f"source_sha256 = '{self.sha}' AND loaded_at = TIMESTAMP '{self.stamp.isoformat(sep=' ')}'"
        own = ", ".join(f"CAST({ident(a)} AS {t}) AS {ident(a)}" for a, t in stored.items())
        wh.con.execute("BEGIN")
        wh._depth += 1
        self.open = True
        try:
            self.rows = int(
                wh.con.execute(
                    f"INSERT INTO fact_flow ({', '.join(FACT_COLUMNS)}, change) "
                    f"SELECT {', '.join(cols)}, 'new' FROM ({source}) s",
                    params,
                ).fetchone()[0]
            )
            keys = "source_id, reporter_iso3, period_start, period_end, year, month"
            scope = wh.fetchall(f"SELECT {keys}, count(*) FROM fact_flow WHERE {where} GROUP BY {keys}")
            if not wh._first_in_span(scope, own=self.sha):  # the load would diff it after all
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
            self.open, self.rows, self.scope = False, None, None
            self.wh._depth -= 1
            self.wh.con.execute("ROLLBACK")


@dataclass
class LoadResult:
    """What one file's load changed in the warehouse."""

    rows: int
    new: int = 0
    added: int = 0
    revised: int = 0
    withdrawn: int = 0
    unchanged: int = 0
    partitions: list[tuple[str, int, int]] = field(default_factory=list)
    already_loaded: bool = False
    # A first load whose partitions held no figure of its source before: their facts are the
    # file's observations, nothing else (the lake can be written from the file's own engine).
    sole: bool = False

    def __int__(self) -> int:
        return self.rows


# ---------------------------------------------------------------------------- SQL files


def engine_of(url: str) -> str:
    """``postgres`` for a PostgreSQL URL, else ``duckdb``."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme.startswith(("postgresql", "postgres")):
        return "postgres"
    if scheme in ("", "duckdb"):
        return "duckdb"
    raise WarehouseError(f"unsupported warehouse URL scheme {scheme!r}: use duckdb:/// or postgresql://")


def with_schema(url: str, schema: str) -> str:
    """A PostgreSQL URL whose sessions work in ``schema`` (libpq ``options=-csearch_path=...``)."""
    from urllib.parse import quote

    return f"{url}{'&' if '?' in url else '?'}options={quote('-csearch_path=' + schema)}"


_ENGINE_TAG = re.compile(r"^\s*--\s*@(duckdb|postgres)\b", re.MULTILINE)


def split_statements(text: str, engine: str) -> list[str]:
    """Statements of a SQL file for ``engine``: split on ``;`` outside quotes, dollar quotes and
    comments; a statement tagged ``-- @postgres`` / ``-- @duckdb`` is kept for that engine only."""
    chunks, buf, i, n = [], [], 0, len(text)
    while i < n:
        ch = text[i]
        if text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j + 1
            buf.append(text[i:j])
            i = j
        elif ch == "'":
            j = i + 1
            while j < n:
                if text[j] == "'" and text.startswith("''", j):
                    j += 2
                    continue
                if text[j] == "'":
                    break
                j += 1
            buf.append(text[i : j + 1])
            i = j + 1
        elif ch == "$" and (m := re.match(r"\$[A-Za-z_]*\$", text[i:])):
            tag = m.group(0)
            j = text.find(tag, i + len(tag))
            j = n if j < 0 else j + len(tag)
            buf.append(text[i:j])
            i = j
        elif ch == ";":
            chunks.append("".join(buf))
            buf = []
            i += 1
        else:
            buf.append(ch)
            i += 1
    chunks.append("".join(buf))
    out = []
    for chunk in chunks:
        tags = set(_ENGINE_TAG.findall(chunk))
        body = "\n".join(line for line in chunk.splitlines() if not line.strip().startswith("--")).strip()
        if not body or (tags and engine not in tags):
            continue
        out.append(body)
    return out


def migrations() -> list[tuple[int, Path]]:
    """(version, file) of every migration, in order."""
    out = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        m = re.match(r"(\d+)_", path.name)
        if m:
            out.append((int(m.group(1)), path))
    versions = [v for v, _ in out]
    if len(set(versions)) != len(versions):
        raise WarehouseError(f"two migrations share a version number in {MIGRATIONS_DIR}")
    return out


SCHEMA_VERSION = max(v for v, _ in migrations())


def view_names(text: str) -> list[str]:
    return re.findall(
        r"^\s*CREATE\s+VIEW\s+([A-Za-z_][A-Za-z0-9_]*)", text, flags=re.MULTILINE | re.IGNORECASE
    )


def _sql_type(arrow_type) -> str:
    import pyarrow as pa

    for test, name in (
        (pa.types.is_string, "VARCHAR"),
        (pa.types.is_large_string, "VARCHAR"),
        (pa.types.is_date32, "DATE"),
        (pa.types.is_timestamp, "TIMESTAMP"),
        (pa.types.is_float64, "DOUBLE PRECISION"),
        (pa.types.is_int32, "INTEGER"),
        (pa.types.is_int64, "BIGINT"),
        (pa.types.is_boolean, "BOOLEAN"),
    ):
        if test(arrow_type):
            return name
    raise WarehouseError(f"no SQL type for {arrow_type}")


# A statement's bound on one source's period span ({t}: the table's alias); bound to
# [source_id, first period_start, last period_end].
_SPAN = "{t}.source_id = ? AND {t}.period_start >= ? AND {t}.period_end <= ?"


def _key_eq(a: str, b: str) -> str:
    return " AND ".join(f"{a}.{k} = {b}.{k}" for k in KEY_COLUMNS)


def _state_eq(a: str, b: str) -> str:
    return " AND ".join(f"{a}.{k} IS NOT DISTINCT FROM {b}.{k}" for k in STATE_COLUMNS)


def _add_months(d: dt.date, months: int) -> dt.date:
    idx = d.year * 12 + d.month - 1 + months
    return dt.date(idx // 12, idx % 12 + 1, 1)


def _month_end(d: dt.date) -> dt.date:
    return dt.date(d.year, d.month, calendar.monthrange(d.year, d.month)[1])


def delivery_slots(sources: list[dict], today: dt.date, months_back: int) -> tuple[list[dict], list[dict]]:
    """The delivery calendar of each source from ``months_back`` months ago to the current period,
    and the calendar months of that span.

    A period's file is due on ``due_day`` (or the month's last day) of the month ``lag_months``
    after the period ends (contracts' ``delivery``). Monthly, quarterly (calendar quarters) and
    yearly (calendar years) periods.
    """
    this_month = today.replace(day=1)
    start = _add_months(this_month, -max(0, months_back))
    months = []
    m = start
    while m <= this_month:
        months.append({"month_start": m, "month_end": _month_end(m), "year": m.year, "month": m.month})
        m = _add_months(m, 1)
    slots = []
    for s in sources:
        step = {"monthly": 1, "quarterly": 3, "yearly": 12}.get(s.get("delivery_frequency") or "monthly", 1)
        lag = int(s.get("lag_months") if s.get("lag_months") is not None else 1)
        due_day = int(s.get("due_day") or 15)
        first = dt.date(start.year, ((start.month - 1) // step) * step + 1, 1)
        periods = []
        p = first
        while p <= this_month:
            end = _month_end(_add_months(p, step - 1))
            due_month = _add_months(end.replace(day=1), lag)
            due = due_month.replace(day=min(due_day, calendar.monthrange(due_month.year, due_month.month)[1]))
            periods.append((p, end, due))
            p = _add_months(p, step)
        for i, (p, end, due) in enumerate(periods):
            window_end = (
                periods[i + 1][1] if i + 1 < len(periods) else _month_end(_add_months(p, 2 * step - 1))
            )
            slots.append(
                {
                    "source_id": s["source_id"],
                    "period_start": p,
                    "period_end": end,
                    "due_date": due,
                    "window_end": window_end,
                }
            )
    return slots, months


def _absent_as_null(frame: pd.DataFrame) -> pd.DataFrame:
    """An empty cell of a code list (``''`` or blanks only) is an absent value: NULL in the
    warehouse, never ``''``. Migration 0006 does the same to warehouses seeded before.

    (``''`` as a flow type's parent made every grouping on the root flow type merge the top-level
    types: entries and exits added together.)
    """
    text = frame.select_dtypes(include=["object", "string"]).columns
    if not len(text):
        return frame
    out = frame.copy()
    for column in text:
        values = out[column]
        blank = values.map(lambda v: isinstance(v, str) and not v.strip())
        out[column] = values.astype(object).where(~blank, None)
    return out


def _overlap_frame(contracts) -> pd.DataFrame:
    """``dim_source_overlap`` from the contracts' ``overlaps`` (transforms/contracts/model.py)."""
    from transforms.contracts.model import overlap_rules

    columns = [
        "source_id",
        "preferred_source_id",
        "flow_type",
        "period_from",
        "period_to",
        "declared_by",
        "note",
    ]
    return pd.DataFrame(overlap_rules(contracts), columns=columns)


def _month_names() -> pd.DataFrame:
    months = pd.DataFrame(codelists.load("month_names"))
    months["month"] = months["month"].astype(int)
    return months[["month", "label_es", "label_en", "label_pt", "label_fr"]]


# ---------------------------------------------------------------------------- the warehouse


class Warehouse:
    """A connection to the warehouse of one installation: ``Warehouse(settings)`` opens the
    DuckDB or the PostgreSQL backend as ``settings.warehouse_url`` says."""

    engine = "?"
    ANALYZE_AFTER_ROWS = 10_000
    # Appended to the diffing load's INSERT of fresh figures (an ORDER BY, or nothing): on
    # PostgreSQL the sort cost 4 % of a 2 M-row resend and the lake read gained nothing from it.
    FRESH_ORDER = ""

    def __new__(cls, settings: Settings, read_only: bool = False, purpose: str | None = None):
        if cls is Warehouse:
            cls = PostgresWarehouse if engine_of(settings.warehouse_url) == "postgres" else DuckDBWarehouse
        return super().__new__(cls)

    def __init__(self, settings: Settings, read_only: bool = False, purpose: str | None = None):
        """``purpose``: what a writer is about to do, in words (``"the load of cbp.csv"``): another
        writer waiting for the embedded warehouse shows it."""
        self.settings = settings
        self.read_only = read_only

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- backend primitives ------------------------------------------------------------------

    def close(self) -> None:
        raise NotImplementedError

    def execute(self, sql: str, params=None) -> None:
        raise NotImplementedError

    def fetchall(self, sql: str, params=None) -> list[tuple]:
        return self.query(sql, params)[1]

    def query(self, sql: str, params=None) -> tuple[list[str], list[tuple]]:
        raise NotImplementedError

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        raise NotImplementedError
        yield

    def copy_into(self, table: str, data, binary: bool = False) -> int:
        """Append an Arrow table, stream of batches or pandas frame to ``table`` (columns by
        name); the number of rows written. ``binary``: the data's Arrow types are exactly the
        table's column types (the fact schema), so an engine may use a typed wire format."""
        raise NotImplementedError

    def to_arrow(self, sql: str, schema):
        """The result of a parameterless query as an Arrow table of ``schema``."""
        raise NotImplementedError

    def _lock(self, name: str) -> None:
        """Serialize writers on ``name`` until the end of the transaction."""

    def _analyze(self, table: str, columns: tuple[str, ...] = ()) -> None:
        """Give the planner statistics of a freshly staged or much changed table."""

    def _bulk_joins(self) -> None:
        """Until the end of the transaction, join big sets by hashing (not row by row)."""

    def _view_names_installed(self) -> set[str]:
        rows = self.fetchall(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'VIEW'"
        )
        return {r[0] for r in rows}

    # -- helpers ---------------------------------------------------------------------------

    def _stage(self, name: str, data) -> None:
        """A temporary table holding ``data`` (Arrow, fact schema), for the rest of the transaction.

        Created with explicit column types, not ``CREATE TABLE … AS SELECT … WHERE 1 = 0``: on
        DuckDB 2.0 a table created empty by CREATE … AS inside a transaction, then given a row group
        or more (122,880 rows), reads back as empty in a later CREATE … AS (tested by
        test_a_file_larger_than_a_row_group_loads_whole)."""
        self.execute(f"DROP TABLE IF EXISTS {name}")
        if isinstance(data, LocalFacts):
            self._view(name, data.sql)
            return
        columns = ", ".join(f"{f.name} {_sql_type(f.type)}" for f in data.schema)
        self.execute(f"CREATE TEMP TABLE {name} ({columns})")
        self.copy_into(name, data, binary=True)  # columns of the data's own types
        self._analyze(name, ("source_id", "reporter_iso3", "period_start", "period_end", "year", "month"))

    def _view(self, name: str, sql: str) -> None:
        """A temporary view standing for a staging table (dropped by ``_drop_stages``)."""
        self.execute(f"CREATE TEMP VIEW {name} AS {sql}")
        self._stage_views = {*getattr(self, "_stage_views", set()), name}

    def _drop_stages(self) -> None:
        views = getattr(self, "_stage_views", set())
        for name in reversed(_STAGE_TABLES):  # views first: they depend on the tables
            self.execute(f"DROP {'VIEW' if name in views else 'TABLE'} IF EXISTS {name}")
        self._stage_views = set()

    def _scalar(self, sql: str, params=None):
        rows = self.fetchall(sql, params)
        return rows[0][0] if rows else None

    @staticmethod
    def _arrow(frame: pd.DataFrame, schema=None):
        import pyarrow as pa

        if isinstance(frame, pa.RecordBatchReader):
            return frame
        if isinstance(frame, pa.Table):
            return frame if schema is None else frame.select(schema.names).cast(schema)
        if schema is not None:
            return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
        return pa.Table.from_pandas(frame, preserve_index=False)

    # ------------------------------------------------------------------ schema

    def schema_version(self) -> int:
        try:
            v = self._scalar("SELECT max(version) FROM schema_version")
        except Exception:
            return 0
        return int(v or 0)

    def migrate(self) -> list[int]:
        """Apply the migrations this warehouse has not had, each in its own transaction."""
        with self.transaction():
            self._lock("omh:migrate")
            self.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)"
            )
        applied = []
        for version, path in migrations():
            if version <= self.schema_version():
                continue
            with self.transaction():
                self._lock("omh:migrate")
                if version <= self.schema_version():  # another process did it meanwhile
                    continue
                for stmt in split_statements(path.read_text(encoding="utf-8"), self.engine):
                    self.execute(stmt)
                self.execute("INSERT INTO schema_version VALUES (?, ?)", [version, dt.datetime.now()])
            log.info("warehouse schema migrated to version %d (%s)", version, path.name)
            applied.append(version)
        return applied

    def ensure_schema(self, contracts=None) -> None:
        """Migrate the schema, seed the dimensions and the delivery calendar, install the views."""
        self.migrate()
        self._seed_dimensions(contracts)
        self.install_views()

    def install_views(self, force: bool = False) -> bool:
        """(Re)create every view of sql/views.sql when the file changed or a view is missing."""
        text = VIEWS_SQL.read_text(encoding="utf-8")
        grants = GRANTS_SQL.read_text(encoding="utf-8") if GRANTS_SQL.exists() else ""
        digest = hashlib.sha256((self.engine + "\0" + text + "\0" + grants).encode()).hexdigest()
        names = view_names(text)

        def up_to_date() -> bool:
            current = self._scalar("SELECT value FROM schema_meta WHERE key = 'views_sha256'")
            return not force and current == digest and set(names) <= self._view_names_installed()

        if up_to_date():
            return False
        with self.transaction():
            self._lock("omh:views")
            if up_to_date():  # another process installed them meanwhile
                return False
            installed = self._view_names_installed()
            old = self._scalar("SELECT value FROM schema_meta WHERE key = 'views'")
            old_names = [n for n in (old or "").split(",") if n]
            for name in reversed([*names, *(n for n in old_names if n not in names)]):
                if name in installed or name in old_names:
                    self.execute(f"DROP VIEW IF EXISTS {name} CASCADE")
            for stmt in split_statements(text, self.engine):
                self.execute(stmt)
            for stmt in split_statements(grants, self.engine):
                self.execute(stmt)
            self.execute("DELETE FROM schema_meta WHERE key IN ('views_sha256', 'views')")
            self.execute(
                "INSERT INTO schema_meta VALUES ('views_sha256', ?), ('views', ?)", [digest, ",".join(names)]
            )
        log.info("warehouse views installed: %s", ", ".join(names))
        return True

    def _replace(self, table: str, frame: pd.DataFrame) -> None:
        self.execute(f"DELETE FROM {table}")
        if len(frame):
            self.copy_into(table, _absent_as_null(frame))

    def _seed_dimensions(self, contracts) -> None:
        labels = ["code", "label_es", "label_en", "label_pt", "label_fr"]
        countries = pd.DataFrame(codelists.load("countries"))
        countries["is_member"] = countries["member"].astype(str).str.lower().isin(["true", "1", "yes"])
        countries = countries[
            ["iso3", "iso2", "m49", "name_es", "name_en", "name_pt", "name_fr", "is_member", "conference"]
        ]
        if "_T" not in set(countries["iso3"]):  # SDMX total: the source gives no citizenship breakdown
            total = {
                "iso3": "_T",
                "iso2": None,
                "m49": None,
                "name_es": "Todas las nacionalidades",
                "name_en": "All citizenships",
                "name_pt": "Todas as nacionalidades",
                "name_fr": "Toutes nationalités",
                "is_member": False,
                "conference": None,
            }
            countries = pd.concat([countries, pd.DataFrame([total])], ignore_index=True)
        flows = pd.DataFrame(codelists.load("flow_types"))
        conferences = pd.DataFrame(codelists.load("conferences"))[labels]
        everyone = {
            "code": "ALL",
            "label_es": "Todos los Estados miembros",
            "label_en": "All member states",
            "label_pt": "Todos os Estados membros",
            "label_fr": "Tous les États membres",
        }
        conferences = pd.concat([conferences, pd.DataFrame([everyone])], ignore_index=True)
        with self.transaction():
            self._lock("omh:dimensions")
            self._replace("dim_country", countries)
            self._replace(
                "dim_flow_type",
                flows[[*labels[:1], "parent", "reporter_role", "default_unit", *labels[1:], "definition_en"]],
            )
            for name, table in (
                ("sex", "dim_sex"),
                ("age_bands", "dim_age_band"),
                ("units", "dim_unit"),
                ("obs_status", "dim_obs_status"),
            ):
                self._replace(table, pd.DataFrame(codelists.load(name))[labels])
            self._replace("dim_month_name", _month_names())
            self._replace("dim_conference", conferences)
            self._replace("dim_mirror_pair", pair_frame())
            if contracts:
                rows = [
                    {
                        "source_id": c.source_id,
                        "reporter_iso3": c.reporter,
                        "conference": c.conference,
                        "title": c.title,
                        "agency": c.agency,
                        "language": c.language,
                        "file_format": c.reader.format,
                        "contract_version": c.version,
                        "synthetic": c.synthetic,
                        "delivery_frequency": c.delivery.frequency,
                        "due_day": c.delivery.due_day,
                        "lag_months": c.delivery.lag_months,
                        "calendar": c.period.calendar,
                        "on_calendar": c.delivery.calendar,
                    }
                    for c in contracts.values()
                ]
                self._replace("dim_source", pd.DataFrame(rows))
                self._replace("dim_source_overlap", _overlap_frame(contracts))
            cols, rows = self.query(
                "SELECT source_id, delivery_frequency, due_day, lag_months FROM dim_source "
                "WHERE on_calendar IS NULL OR on_calendar"
            )
            months_back = self._scalar("SELECT value FROM config WHERE key = 'completeness_months'")
            slots, months = delivery_slots(
                [dict(zip(cols, r, strict=True)) for r in rows], today(), int(months_back or 24)
            )
            self._pin_clock(pinned_today())
            self._replace(
                "delivery_slot",
                pd.DataFrame(
                    slots, columns=["source_id", "period_start", "period_end", "due_date", "window_end"]
                ),
            )
            self._replace(
                "dim_month", pd.DataFrame(months, columns=["month_start", "month_end", "year", "month"])
            )

    def _pin_clock(self, pinned: dt.date | None) -> None:
        """Store the date OMH_TODAY pins (the views' missing / not-due follow it), or forget it."""
        self.execute("DELETE FROM config WHERE key = 'clock_today'")
        if pinned:
            self.execute("INSERT INTO config (key, value) VALUES ('clock_today', ?)", [pinned.isoformat()])

    # ------------------------------------------------------------------ configuration

    def get_config(self, key: str) -> str | None:
        return self._scalar("SELECT value FROM config WHERE key = ?", [key])

    def set_config(self, key: str, value) -> None:
        with self.transaction():
            self.execute("DELETE FROM config WHERE key = ?", [key])
            self.execute("INSERT INTO config (key, value) VALUES (?, ?)", [key, str(value)])

    # ------------------------------------------------------------------ manifest

    def is_loaded(self, source_id: str, sha256: str) -> bool:
        """The file's figures are committed and its lake leaves written (a load interrupted between
        the warehouse commit and the lake write is finished by the next run)."""
        try:
            row = self.fetchall(LOADED_SQL, [source_id, sha256])
        except Exception:  # no schema yet (or a version-1 schema): let the run migrate and decide
            return False
        return bool(row)

    def lake_written(self, source_id: str, sha256: str) -> None:
        """Record that the lake leaves of a loaded file are written."""
        self.execute(
            "UPDATE file_manifest SET lake_written_at = ? WHERE source_id = ? AND sha256 = ?",
            [dt.datetime.now(), source_id, sha256],
        )

    def _manifest(self, entry: dict) -> None:
        self.execute(
            "DELETE FROM file_manifest WHERE source_id = ? AND sha256 = ?",
            [entry["source_id"], entry["sha256"]],
        )
        self.execute(
            f"INSERT INTO file_manifest ({', '.join(MANIFEST_COLUMNS)}) VALUES ({', '.join('?' * len(MANIFEST_COLUMNS))})",
            [entry.get(c) for c in MANIFEST_COLUMNS],
        )

    def _dq(self, entry: dict, outcomes: list) -> None:
        if not outcomes:
            return
        self.execute(
            "DELETE FROM dq_result WHERE source_id = ? AND sha256 = ?", [entry["source_id"], entry["sha256"]]
        )
        now = dt.datetime.now()
        frame = pd.DataFrame(
            [
                {
                    "source_id": entry["source_id"],
                    "sha256": entry["sha256"],
                    "file_name": entry["file_name"],
                    "suite": o.suite,
                    "expectation": o.expectation,
                    "column_name": o.column,
                    "severity": o.severity,
                    "success": bool(o.success),
                    "unexpected_count": o.unexpected_count,
                    "examples": json.dumps(o.examples[:5], ensure_ascii=False, default=str),
                    "run_at": now,
                }
                for o in outcomes
            ]
        )
        frame["unexpected_count"] = frame["unexpected_count"].astype("Int64")
        self.copy_into("dq_result", frame)

    def record_refusal(self, entry: dict, outcomes: list) -> None:
        with self.transaction():
            self._lock(f"omh:source:{entry['source_id']}")
            loaded = self.fetchall(
                "SELECT 1 FROM file_manifest WHERE source_id = ? AND sha256 = ? AND status = 'loaded'",
                [entry["source_id"], entry["sha256"]],
            )
            if loaded:  # its figures are published: a later refusal must not hide that
                log.warning("%s was loaded before; its refusal now is not recorded", entry["file_name"])
                return
            self._manifest(entry)
            self._dq(entry, outcomes)

    def settled_refusals(self, source_id: str, rules_sha256: str) -> dict[str, str]:
        """Refused files of a source that a run should not try again, by sha256, with why: judged
        under the same rules (same fingerprint), or dismissed by an engineer."""
        try:
            rows = self.fetchall(
                "SELECT sha256, rules_sha256, dismissed_at, dismissed_by, dismiss_reason FROM file_manifest "
                "WHERE source_id = ? AND status IN ('refused', 'unreadable')",
                [source_id],
            )
        except Exception:  # a warehouse before migration 5: every refused file is tried again
            return {}
        settled = {}
        for sha, rules, dismissed_at, who, why in rows:
            if dismissed_at is not None:
                settled[sha] = f"dismissed by {who} on {dismissed_at:%Y-%m-%d}: {why}"
            elif rules == rules_sha256:
                settled[sha] = "refused under the same contract, suites and code lists"
        return settled

    def dismiss(self, source_id: str, sha256: str, who: str, reason: str) -> str:
        """Set a refused file aside: later runs do not try it again; who, when and why are kept.
        Returns the file's name; a file that is not refused cannot be dismissed."""
        with self.transaction():
            rows = self.fetchall(
                "SELECT file_name, status FROM file_manifest WHERE source_id = ? AND sha256 = ?",
                [source_id, sha256],
            )
            if not rows:
                raise WarehouseError(f"no file with this content was ever processed for {source_id}")
            name, status = rows[0]
            if status not in ("refused", "unreadable"):
                raise WarehouseError(f"{name} is {status}, not refused: only a refused file is dismissed")
            self.execute(
                "UPDATE file_manifest SET dismissed_at = ?, dismissed_by = ?, dismiss_reason = ? "
                "WHERE source_id = ? AND sha256 = ?",
                [dt.datetime.now(), who, reason, source_id, sha256],
            )
        return name

    # ------------------------------------------------------------------ facts

    def units_in_use(self) -> pd.DataFrame:
        cols, rows = self.query("SELECT DISTINCT reporter_iso3, flow_type, unit, source_id FROM fact_flow")
        return pd.DataFrame(rows, columns=cols)

    def load(self, entry: dict, facts: pd.DataFrame, outcomes: list, scope: list | None = None) -> LoadResult:
        """Publish one file's observations, in one transaction.

        The file replaces its source's figures for the periods it covers: an observation whose
        figure changed is revised, one absent from the file is withdrawn, a new one is added, an
        unchanged one stays as it is (with the lineage of the file that first published it).
        ``fact_flow_history`` shows every state with ``valid_from`` / ``valid_to``; the manifest
        row and the validation results are written in the same transaction. A file already loaded
        changes nothing (its partitions are returned so that the lake can be rewritten).

        ``scope``: the file's observations counted by (source_id, reporter_iso3, period_start,
        period_end, year, month), from the engine that holds them (``Checked.fact_scope``). When
        no current figure and no earlier file lies in its period span (a first load), the
        observations go straight into ``fact_flow``, read once, with no staging copy and no diff;
        the count written must equal the scope's, or the load fails and nothing is written.
        """
        # A streamed file carries its own ``loaded_at``: the caller passes the same instant here.
        stamp = entry.get("loaded_at") or dt.datetime.now()
        schema = fact_schema()
        # A factory of the stream (called again when a load is retried); a sink is no factory.
        if callable(facts) and not isinstance(facts, FactSink):
            facts = facts()
        source_id, sha = entry["source_id"], entry["sha256"]
        if isinstance(facts, pd.DataFrame):
            facts = facts.assign(loaded_at=stamp)
            table = self._arrow(facts, schema)
            own = sorted(
                {
                    (r, int(y), int(m))
                    for r, y, m in facts[["reporter_iso3", "year", "month"]].itertuples(index=False)
                }
            )
            rows = len(facts)
        else:
            # A stream of Arrow batches in the fact schema (``loaded_at`` set by the caller): a file
            # of any size is staged batch by batch, never held whole in memory.
            table, own, rows = facts, None, int(entry.get("rows_loaded") or 0)
        with self.transaction():
            self._lock(f"omh:source:{source_id}")
            done = self.fetchall(
                "SELECT 1 FROM file_manifest WHERE source_id = ? AND sha256 = ? AND status = 'loaded'",
                [source_id, sha],
            )
            preloaded = isinstance(table, FactSink)
            if done and preloaded:  # cannot be: the sink holds the only writer's transaction
                raise WarehouseError(f"{entry.get('file_name') or sha}: loaded meanwhile; nothing was loaded")
            if done:
                gone = self.fetchall(
                    "SELECT DISTINCT reporter_iso3, year, month FROM fact_flow_closed "
                    "WHERE closed_by_sha256 = ? OR source_sha256 = ? "
                    "UNION SELECT DISTINCT reporter_iso3, year, month FROM fact_flow WHERE source_sha256 = ?",
                    [sha, sha, sha],
                )
                parts = sorted(set(own or []) | {(r, int(y), int(m)) for r, y, m in gone})
                return LoadResult(rows=rows, unchanged=rows, partitions=parts, already_loaded=True)
            if scope and self._first_in_span(scope, own=sha if preloaded else None):
                result = self._load_first(table, sha, scope, entry.get("file_name") or sha)
            elif preloaded:  # the sink checked this very span in this transaction
                raise WarehouseError(
                    f"{entry.get('file_name') or sha}: its observations were written but it is not a first load"
                )
            elif getattr(table, "num_rows", rows):
                result = self._merge(table, sha, stamp)
                self.execute(
                    "INSERT INTO file_coverage (source_id, sha256, reporter_iso3, period_start, period_end, "
                    "observations) SELECT source_id, source_sha256, reporter_iso3, period_start, period_end, count(*) "
                    "FROM _new GROUP BY source_id, source_sha256, reporter_iso3, period_start, period_end"
                )
                self._drop_stages()
            else:  # a file without observations covers no period: it changes nothing
                result = LoadResult(rows=0)
            self._manifest(
                {
                    **entry,
                    "rows_new": result.new + result.added,
                    "rows_revised": result.revised,
                    "rows_withdrawn": result.withdrawn,
                    "rows_unchanged": result.unchanged,
                    "lake_written_at": None,
                }
            )
            self._dq(entry, outcomes)
        if result.new + result.added + result.revised + result.withdrawn >= self.ANALYZE_AFTER_ROWS:
            # Fresh statistics, or the planner takes a big table for an empty one (nested loops).
            self._analyze(
                "fact_flow", ("source_id", "reporter_iso3", "period_start", "period_end", "year", "month")
            )
        if result.revised + result.withdrawn >= self.ANALYZE_AFTER_ROWS:
            self._analyze("fact_flow_closed", ("source_id", "period_start", "period_end", "valid_to"))
        log.info(
            "%s: %d new, %d added, %d revised, %d withdrawn, %d unchanged",
            entry.get("file_name"),
            result.new,
            result.added,
            result.revised,
            result.withdrawn,
            result.unchanged,
        )
        return result

    def _first_in_span(self, scope: list, own: str | None = None) -> bool:
        """Whether the source's period span of ``scope`` holds no current figure (but those of
        file ``own``) and was covered by no earlier file (two index probes): then every
        observation of the file is new."""
        sources = {row[0] for row in scope}
        if len(sources) != 1 or any(v is None for row in scope for v in row):
            return False  # not one source, or a key missing (the constraint says so in the diff)
        return self._span_empty(
            [sources.pop(), min(row[2] for row in scope), max(row[3] for row in scope)], own
        )

    def _span_empty(self, bounds: list, own: str | None = None) -> bool:
        """Whether the span ``bounds`` (source_id, first period start, last period end) holds no
        current figure, other than those of file ``own`` (a ``FactSink`` wrote them), and was
        covered by no earlier file."""
        mine, args = (" AND c.source_sha256 <> ?", [*bounds, own]) if own else ("", bounds)
        return not (
            self.fetchall(f"SELECT 1 FROM fact_flow c WHERE {_SPAN.format(t='c')}{mine} LIMIT 1", args)
            or self.fetchall(f"SELECT 1 FROM file_coverage c WHERE {_SPAN.format(t='c')} LIMIT 1", bounds)
        )

    def _load_first(self, table, sha: str, scope: list, name: str) -> LoadResult:
        """Inside the load's transaction: a first load (``_first_in_span``) written straight
        into ``fact_flow``, its coverage and partitions taken from ``scope``."""
        import pyarrow as pa

        expected = sum(int(row[6]) for row in scope)
        parts = sorted({(row[1], int(row[4]), int(row[5])) for row in scope})
        first, last = min((p[1], p[2]) for p in parts), max((p[1], p[2]) for p in parts)
        months = [dt.date(*first, 1), _add_months(dt.date(*last, 1), 1)]
        sole = not self.fetchall(
            "SELECT 1 FROM fact_flow WHERE source_id = ? AND period_start >= ? AND period_start < ? "
            "AND source_sha256 <> ? LIMIT 1",
            [scope[0][0], *months, sha],
        )
        written = self._insert_new(table)
        if written != expected:
            raise WarehouseError(
                f"{name}: {written} observations were written but the file holds {expected}; nothing was loaded"
            )
        coverage: dict[tuple, int] = {}
        for source_id, reporter, start, end, _year, _month, n in scope:
            key = (source_id, reporter, start, end)
            coverage[key] = coverage.get(key, 0) + int(n)
        keys = list(coverage)
        self.copy_into(
            "file_coverage",
            pa.table(
                {
                    "source_id": pa.array([k[0] for k in keys], pa.string()),
                    "sha256": pa.array([sha] * len(keys), pa.string()),
                    "reporter_iso3": pa.array([k[1] for k in keys], pa.string()),
                    "period_start": pa.array([k[2] for k in keys], pa.date32()),
                    "period_end": pa.array([k[3] for k in keys], pa.date32()),
                    "observations": pa.array(list(coverage.values()), pa.int64()),
                }
            ),
        )
        return LoadResult(rows=written, new=written, partitions=parts, sole=sole)

    def _insert_new(self, table) -> int:
        """Append ``table`` (fact schema: Arrow, a stream of batches, or ``LocalFacts``) to
        ``fact_flow`` with ``change`` 'new'; the number of rows written (a ``FactSink`` wrote
        its rows already)."""
        import pyarrow as pa

        if isinstance(table, FactSink):  # written already, in this transaction
            return int(table.rows)
        if isinstance(table, LocalFacts):  # DuckDB: the harmonized table is in this connection
            cols = ", ".join(FACT_COLUMNS)
            sql = f"INSERT INTO fact_flow ({cols}, change) SELECT {cols}, 'new' FROM ({table.sql}) f"
            return int(self._scalar(sql))  # DuckDB's INSERT returns its count
        source = self._arrow(table)
        schema = source.schema.append(pa.field("change", pa.string()))

        def with_change():
            for batch in source.to_batches() if isinstance(source, pa.Table) else source:
                yield pa.RecordBatch.from_arrays(
                    [*batch.columns, pa.repeat(pa.scalar("new"), batch.num_rows)], schema=schema
                )

        return self.copy_into(
            "fact_flow", pa.RecordBatchReader.from_batches(schema, with_change()), binary=True
        )

    def _merge(self, table, sha: str, stamp: dt.datetime) -> LoadResult:
        """Inside the load's transaction: diff the staged file against the current figures.

        Plain joins only (no correlated subqueries, which PostgreSQL would run once per row), and
        every statement on the big tables is bounded by the file's source and period span, so it
        reads the covered periods through the (source, period) index, whatever the table's size.
        """
        cols = ", ".join(FACT_COLUMNS)
        self._drop_stages()
        self._bulk_joins()
        self._stage("_new", table)
        # Bounds from the staged rows: ``table`` may be a stream, read once by the staging.
        source, lo, hi = self.fetchall("SELECT min(source_id), min(period_start), max(period_end) FROM _new")[
            0
        ]
        span = _SPAN
        bounds = [source, lo, hi]
        # The (source, period) pairs the file covers; "seen": an earlier file covered them too.
        self.execute(
            "CREATE TEMP TABLE _scope AS "
            "SELECT s.source_id, s.period_start, s.period_end, (c.source_id IS NOT NULL) AS seen "
            "FROM (SELECT DISTINCT source_id, period_start, period_end FROM _new) s "
            "LEFT JOIN (SELECT DISTINCT source_id, period_start, period_end FROM file_coverage "
            f"WHERE {span.format(t='file_coverage')}) c "
            "ON c.source_id = s.source_id AND c.period_start = s.period_start AND c.period_end = s.period_end",
            bounds,
        )
        keys = ", ".join(f"c.{k}" for k in KEY_COLUMNS)
        current = self.fetchall(f"SELECT 1 FROM fact_flow c WHERE {span.format(t='c')} LIMIT 1", bounds)
        if not current:
            # No current figures in the span (a first load, new periods): nothing is revised or
            # withdrawn and every observation is fresh, with no anti-join and no copy of the file.
            self.execute(
                f"CREATE TEMP TABLE _gone AS SELECT {keys}, c.year, c.month, FALSE AS revised "
                "FROM fact_flow c WHERE FALSE"
            )
            self._view("_fresh", "SELECT n.*, FALSE AS revised FROM _new n")
        else:
            self._diff(keys, span, bounds)
        return self._counts_after(sha, stamp, cols, span, bounds)

    def _diff(self, keys: str, span: str, bounds: list) -> None:
        """``_gone`` and ``_fresh`` of a file against the current figures of its span."""
        # Current figures of the covered periods that the file does not restate unchanged:
        # revised (the file has the key with another figure) or withdrawn (the file lacks the key).
        self.execute(
            f"CREATE TEMP TABLE _gone AS SELECT {keys}, c.year, c.month, (n.source_id IS NOT NULL) AS revised "
            f"FROM (SELECT * FROM fact_flow c WHERE {span.format(t='c')}) c "
            "JOIN _scope s ON s.source_id = c.source_id "
            "AND s.period_start = c.period_start AND s.period_end = c.period_end "
            f"LEFT JOIN _new n ON {_key_eq('n', 'c')} "
            f"WHERE n.source_id IS NULL OR NOT ({_state_eq('n', 'c')})",
            bounds,
        )
        # The file's observations that are not already published as they are.
        self.execute(
            "CREATE TEMP TABLE _fresh AS SELECT n.*, (c.source_id IS NOT NULL) AS revised "
            f"FROM _new n LEFT JOIN (SELECT * FROM fact_flow c WHERE {span.format(t='c')}) c "
            f"ON {_key_eq('c', 'n')} "
            f"WHERE c.source_id IS NULL OR NOT ({_state_eq('c', 'n')})",
            bounds,
        )
        self._analyze("_gone")
        self._analyze("_fresh", ("source_id", "period_start", "period_end"))

    def _counts_after(self, sha: str, stamp: dt.datetime, cols: str, span: str, bounds: list) -> LoadResult:
        """Apply ``_gone`` and ``_fresh`` to the facts and their history; count what changed.

        A current figure that ends moves to ``fact_flow_closed`` (with when, how and by which
        file); the file's fresh figures go to ``fact_flow`` with how they arrived. The current
        state is written once: ``fact_flow_history`` is the view of both tables."""
        gone = int(self._scalar("SELECT count(*) FROM _gone"))
        if gone:
            self.execute(
                f"INSERT INTO fact_flow_closed ({cols}, valid_from, valid_to, change, closed_as, closed_by_sha256) "
                f"SELECT {', '.join('c.' + c for c in FACT_COLUMNS)}, c.loaded_at, ?, coalesce(c.change, 'new'), "
                "CASE WHEN g.revised THEN 'revised' ELSE 'withdrawn' END, ? "
                f"FROM (SELECT * FROM fact_flow c WHERE {span.format(t='c')}) c JOIN _gone g ON {_key_eq('c', 'g')}",
                [stamp, sha, *bounds],
            )
            self.execute(
                f"DELETE FROM fact_flow USING _gone g WHERE {span.format(t='fact_flow')} "
                f"AND {_key_eq('fact_flow', 'g')}",
                bounds,
            )
        fresh_cols = ", ".join("f." + c for c in FACT_COLUMNS)
        if self._scalar("SELECT count(*) FROM _scope WHERE seen"):
            # Some periods were covered by an earlier file: a figure new to them was "added".
            self.execute(
                f"INSERT INTO fact_flow ({cols}, change) SELECT {fresh_cols}, "
                "CASE WHEN f.revised THEN 'revised' WHEN s.seen THEN 'added' ELSE 'new' END "
                "FROM _fresh f JOIN _scope s ON s.source_id = f.source_id "
                "AND s.period_start = f.period_start AND s.period_end = f.period_end" + self.FRESH_ORDER
            )
            new = self._scalar(
                "SELECT count(*) FROM _fresh f JOIN _scope s ON s.source_id = f.source_id "
                "AND s.period_start = f.period_start AND s.period_end = f.period_end "
                "WHERE NOT f.revised AND NOT s.seen"
            )
        else:  # periods no file covered before (a first load): no join of the file's rows
            self.execute(
                f"INSERT INTO fact_flow ({cols}, change) SELECT {fresh_cols}, "
                "CASE WHEN f.revised THEN 'revised' ELSE 'new' END FROM _fresh f" + self.FRESH_ORDER
            )
            new = None
        total, fresh_plain, revised = (
            int(x)
            for x in self.fetchall(
                "SELECT (SELECT count(*) FROM _new), (SELECT count(*) FROM _fresh WHERE NOT revised), "
                "(SELECT count(*) FROM _fresh WHERE revised)"
            )[0]
        )
        new = fresh_plain if new is None else int(new)
        withdrawn = int(self._scalar("SELECT count(*) FROM _gone WHERE NOT revised")) if gone else 0
        parts = self.fetchall(
            "SELECT DISTINCT reporter_iso3, year, month FROM _fresh "
            "UNION SELECT DISTINCT reporter_iso3, year, month FROM _gone"
        )
        return LoadResult(
            rows=total,
            new=new,
            added=fresh_plain - new,
            revised=revised,
            withdrawn=withdrawn,
            unchanged=total - fresh_plain - revised,
            partitions=sorted((r, int(y), int(m)) for r, y, m in parts),
        )

    def _read_partitions(
        self, source_id: str, partitions: list[tuple[str, int, int]], read, constants: dict | None = None
    ):
        """``read(sql, fixed)`` of the current facts of ``source_id`` in ``partitions`` (a SELECT
        over a temporary table of the partitions, in one transaction). ``constants`` are fact
        columns that the caller expects to hold one value in all those facts (a first load's
        lineage and fixed codes): those that do, checked here, are left out of the SELECT and
        passed as ``fixed`` (column -> value) instead."""
        import pyarrow as pa

        parts = pa.table(
            {
                "source_id": pa.array([source_id] * len(partitions), pa.string()),
                "reporter_iso3": pa.array([p[0] for p in partitions], pa.string()),
                "year": pa.array([int(p[1]) for p in partitions], pa.int32()),
                "month": pa.array([int(p[2]) for p in partitions], pa.int32()),
            }
        )
        source = (
            "FROM fact_flow f JOIN _parts p ON p.source_id = f.source_id AND p.reporter_iso3 = f.reporter_iso3 "
            "AND p.year = f.year AND p.month = f.month"
        )
        with self.transaction():
            self.execute("DROP TABLE IF EXISTS _parts")
            self.execute(
                "CREATE TEMP TABLE _parts (source_id VARCHAR, reporter_iso3 VARCHAR, year INTEGER, month INTEGER)"
            )
            self.copy_into("_parts", parts)
            self._analyze("_parts")
            fixed = self._fixed_columns(source, constants or {})
            columns = [c for c in FACT_COLUMNS if c not in fixed]
            out = read(f"SELECT {', '.join('f.' + c for c in columns)} {source}", fixed)
            self.execute("DROP TABLE IF EXISTS _parts")
        return out

    def _fixed_columns(self, source: str, constants: dict) -> dict:
        """The ``constants`` (fact column -> value) that every row of ``source`` holds, in one scan
        (a column that holds one value compresses to a constant: the scan barely reads it). The
        lake's partition columns are always read (the writer cuts the rows by them)."""
        from transforms.storage.lake import PARTITION_COLUMNS

        candidates = [c for c in FACT_COLUMNS if c in constants and c not in PARTITION_COLUMNS]
        if not candidates:
            return {}
        counts = self.fetchall(
            "SELECT "
            + ", ".join(f"count(*) FILTER (WHERE f.{c} IS DISTINCT FROM ?)" for c in candidates)
            + f" {source}",
            [constants[c] for c in candidates],
        )[0]
        return {c: constants[c] for c, n in zip(candidates, counts, strict=True) if n == 0}

    def write_lake(
        self, lake, source_id: str, partitions: list[tuple[str, int, int]], constants: dict | None = None
    ) -> int:
        """Rewrite the lake leaves of ``source_id`` in ``partitions`` from the current facts
        (``_read_partitions``, streamed to the lake store ``lake``, or a folder lake's path:
        ``_lake_write``); ``constants`` as there."""
        raise NotImplementedError

    def partition_totals(self) -> list[tuple]:
        """(source_id, reporter_iso3, year, month, rows, values, sum of value) of the current facts."""
        return self.fetchall(
            "SELECT source_id, reporter_iso3, year, month, count(*), count(value), sum(value) "
            "FROM fact_flow GROUP BY source_id, reporter_iso3, year, month"
        )


def _lake_write(lake, batches, source_id: str, partitions) -> int:
    """``batches`` written by the lake store ``lake`` (``lakestore``), or by ``lake.write_leaves``
    when ``lake`` is a folder lake's path (not importing ``lakestore``, which imports the Iceberg
    store, which imports this module's fact schema)."""
    if hasattr(lake, "write"):
        return lake.write(batches, source_id, partitions)
    from transforms.storage.lake import write_leaves

    return write_leaves(batches, Path(lake), source_id, partitions)


# Rows per Arrow batch read from DuckDB: larger batches made DuckDB hold ~370 MB more while a
# 4 M-row scan streamed out (measured: 122,880-row batches +370 MB, 32,768-row batches +70 MB).
ARROW_BATCH_ROWS = 32_768


def _leaf_batches(con, sql: str, batch_rows: int = ARROW_BATCH_ROWS, fixed: dict | None = None):
    """The facts of ``sql`` (run by DuckDB connection ``con``) as Arrow batches in the fact schema,
    for ``lake.write_leaves``: in the order DuckDB scans them, which is the order they were
    loaded in; when the first batch shows partitions interleaved (facts loaded from a file
    sorted by something else), DuckDB sorts them by partition instead, spilling past its memory
    limit, so that the writer gathers each leaf from a run or two of every batch.

    ``fixed`` columns (column -> value) are not in ``sql``: each batch gets them as constant
    arrays, text as a one-word dictionary (the leaf stores a dictionary page and run lengths,
    as it would have; reading ten million copies of a file name back out of DuckDB cost more
    than writing the leaf)."""
    import numpy as np
    import pyarrow as pa

    from transforms.storage.lake import PARTITION_COLUMNS, scattered

    schema = fact_schema()
    fixed = fixed or {}
    read = pa.schema([f for f in schema if f.name not in fixed])
    words = {c: pa.array([v], schema.field(c).type) for c, v in fixed.items() if v is not None}
    out = pa.schema(
        [
            pa.field(f.name, pa.dictionary(pa.int32(), f.type))
            if f.name in words and pa.types.is_string(f.type)
            else f
            for f in schema
        ]
    )
    zeros = pa.array(np.zeros(batch_rows, dtype=np.int32))

    def constant(name: str, rows: int):
        field = schema.field(name)
        if name not in words:
            return pa.nulls(rows, field.type)
        if pa.types.is_string(field.type):
            indices = zeros if rows == len(zeros) else pa.array(np.zeros(rows, dtype=np.int32))
            return pa.DictionaryArray.from_arrays(indices, words[name])
        return pa.repeat(words[name][0], rows)

    reader = con.sql(sql).to_arrow_reader(batch_rows)
    first = next(iter(reader), None)
    if first is not None and scattered(first):
        reader.close()  # DuckDB runs one result at a time
        reader = con.sql(f"{sql} ORDER BY {', '.join(PARTITION_COLUMNS)}").to_arrow_reader(batch_rows)
        first = None
    for batch in reader if first is None else itertools.chain([first], reader):
        if not fixed:
            yield batch.cast(schema)
            continue
        batch = batch.cast(read)
        yield pa.RecordBatch.from_arrays(
            [batch.column(f.name) if f.name not in fixed else constant(f.name, batch.num_rows) for f in out],
            schema=out,
        )


def open_for_reading(settings: Settings) -> Warehouse:
    """The warehouse opened for reading: its last committed state, at once, even while a load
    runs (DuckDB: the published file, which no writer holds; PostgreSQL: read-only transactions).
    Every reader (``omh sql``/``export``, the Observatory, the bulletin) opens it this way."""
    return Warehouse(settings, read_only=True)


# ---------------------------------------------------------------------------- DuckDB


class DuckDBWarehouse(Warehouse):
    """The embedded warehouse: one DuckDB file. Writers take turns, each on a copy published
    whole when it closes; readers open the published file and never wait (``writelock``)."""

    engine = "duckdb"
    # A diffing load inserts its fresh figures in partition order, not in the hash joins' order:
    # the lake read that follows then finds each partition's rows together and needs no sort (a
    # 2 M-row resend peaked at 1,079 MB in that sort, 952 MB with this; its load took 31-33 s
    # instead of 29 s, its lake write 1.5 s instead of 2.3 s).
    FRESH_ORDER = " ORDER BY f.reporter_iso3, f.year, f.month"

    def __init__(self, settings: Settings, read_only: bool = False, purpose: str | None = None):
        import duckdb

        from transforms.storage import writelock

        super().__init__(settings, read_only)
        path = settings.duckdb_path
        if path is None:
            raise WarehouseError(f"unsupported warehouse URL {settings.warehouse_url!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._depth = 0
        self._writing: Path | None = None
        if read_only:
            # The published file: a writer never holds it (it works on a copy), so a reader
            # opens it at once and sees the last finished write (transforms/storage/writelock.py).
            if not path.exists():
                raise WarehouseError(f"no warehouse at {path}; run `make demo` or `omh ingest` first")
            self.con = duckdb.connect(str(path), read_only=True)
            return
        # A writer waits its turn, then works on its own copy, published when it closes.
        shadow = writelock.begin(path, purpose)
        self._writing = path
        try:
            self.con = duckdb.connect(str(shadow))
            from transforms.engine import configure

            # Bounded memory for loads too: DuckDB spills to the home's tmp/ past the limit.
            configure(self.con, settings.home / "tmp")
        except BaseException:
            self._writing = None
            writelock.end(path)
            raise

    def close(self) -> None:
        """Close the connection; a writer's copy becomes the published warehouse when the last
        writer of this process closes (whatever it committed, as in place)."""
        from transforms.storage import writelock

        path, self._writing = self._writing, None
        if path is None:
            self.con.close()
            return
        try:
            if writelock.outermost(path) and not self._depth:
                # The data into the file now, on this connection: closing leaves no log behind.
                with contextlib.suppress(Exception):
                    self.con.execute("CHECKPOINT")
            self.con.close()
        finally:
            writelock.end(path)

    def execute(self, sql: str, params=None) -> None:
        self.con.execute(sql, params or [])

    def query(self, sql: str, params=None) -> tuple[list[str], list[tuple]]:
        cur = self.con.execute(sql, params or [])
        cols = [d[0] for d in cur.description] if cur.description else []
        return cols, (cur.fetchall() if cur.description else [])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if self._depth:  # already inside one: join it
            yield
            return
        self.con.execute("BEGIN")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            self.con.execute("ROLLBACK")
            raise
        self._depth -= 1
        self.con.execute("COMMIT")

    def copy_into(self, table: str, data, binary: bool = False) -> int:
        """Append ``data`` (Arrow or a stream of batches); the number of rows written (``binary``:
        PostgreSQL's wire format, nothing to do here)."""
        arrow = self._arrow(data)
        self.con.register("_omh_in", arrow)
        try:
            cols = ", ".join(arrow.schema.names)
            return int(
                self.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _omh_in").fetchone()[0]
            )
        finally:
            self.con.unregister("_omh_in")

    def to_arrow(self, sql: str, schema):
        return self.con.sql(sql).to_arrow_table().cast(schema)

    def write_lake(
        self, lake, source_id: str, partitions: list[tuple[str, int, int]], constants: dict | None = None
    ) -> int:
        """The leaves streamed from ``fact_flow`` as DuckDB scans it (no sort of the facts, no
        copy of them in Python: ``lake.write_leaves`` gathers each leaf's rows). Columns with one
        value in all the facts written are not read back: Arrow adds them to each batch."""

        def stream(sql: str, fixed: dict) -> int:
            return _lake_write(lake, _leaf_batches(self.con, sql, fixed=fixed), source_id, partitions)

        return self._read_partitions(source_id, partitions, stream, constants)


# ---------------------------------------------------------------------------- PostgreSQL


class PostgresWarehouse(Warehouse):
    """The production warehouse: PostgreSQL through psycopg 3, loads with COPY."""

    engine = "postgres"
    COPY_BATCH_ROWS = 100_000
    WORK_MEM = "128MB"

    # A dropped connection (server restart, failover, pg_terminate_backend, network) is retried:
    # reconnect, then rerun the statement (outside a transaction) or the file's whole load.
    RETRY_ATTEMPTS = 3
    RETRY_BACKOFF_S = 0.5  # doubled at each attempt

    def __init__(self, settings: Settings, read_only: bool = False, purpose: str | None = None):
        super().__init__(settings, read_only)
        self._url = re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", settings.warehouse_url)
        self._depth = 0
        self.con = self._connect()

    def _connect(self):
        """A new session with this warehouse's settings (read-only, or the loads' work_mem)."""
        import psycopg

        try:
            con = psycopg.connect(self._url, autocommit=True, application_name="omh")
        except psycopg.Error as exc:
            raise WarehouseError(
                "cannot connect to the PostgreSQL warehouse: "
                + mask_secrets((str(exc).strip().splitlines() or [""])[0])
            ) from exc
        if self.read_only:
            con.execute("SET default_transaction_read_only = on")
        else:  # the loads' joins and the lake's sorts stay in memory
            con.execute(f"SET work_mem = '{self.WORK_MEM}'")
        return con

    def close(self) -> None:
        self.con.close()

    def _lost(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the connection dropping, not an error of the SQL or the data
        (a constraint, a bad value, a lock timeout are not retried)."""
        import psycopg

        if isinstance(exc, WarehouseError):  # a reconnection that failed
            return exc.__cause__ is not None and isinstance(exc.__cause__, psycopg.OperationalError)
        if not isinstance(exc, psycopg.OperationalError):
            return False
        state = getattr(exc, "sqlstate", None) or ""
        lost_states = ("57P01", "57P02", "57P03")  # admin shutdown, crash shutdown, cannot connect now
        return self.con.closed or self.con.broken or state.startswith("08") or state in lost_states

    def _retrying(self, what: str, run, replayable=lambda: True):
        """``run()``, reconnecting and running it again when the connection drops, at most
        ``RETRY_ATTEMPTS`` times with a doubling pause. Inside a transaction nothing is retried
        here: the transaction died with the connection, its owner (``load``) reruns it whole."""
        delay = self.RETRY_BACKOFF_S
        for attempt in range(1, self.RETRY_ATTEMPTS + 1):
            try:
                if self.con.closed and not self._depth:  # never inside a transaction: it died
                    self.con = self._connect()
                return run()
            except Exception as exc:
                if self._depth or attempt == self.RETRY_ATTEMPTS or not self._lost(exc) or not replayable():
                    raise
                first = (str(exc).strip().splitlines() or [""])[0]
                reason = mask_secrets(f"{exc.__class__.__name__}: {first}")
                log.warning(
                    "PostgreSQL connection lost during %s (%s); reconnecting in %.1f s (attempt %d of %d)",
                    what,
                    reason,
                    delay,
                    attempt + 1,
                    self.RETRY_ATTEMPTS,
                )
                with contextlib.suppress(Exception):
                    self.con.close()
                time.sleep(delay)
                delay *= 2

    def load(self, entry: dict, facts, outcomes: list, scope: list | None = None) -> LoadResult:
        """``Warehouse.load``, rerun whole on a new connection when the connection drops during it.

        The file's transaction died with the connection, so a rerun is a first load (and a load
        whose commit reached the server before the drop finds the file loaded: nothing twice).
        The observations must then be read again: ``facts`` may be a DataFrame or Arrow table
        (read again as is), a callable returning a fresh stream (``ingest_file`` passes one), or a
        one-shot RecordBatchReader, retried only while the failed attempt had not started reading
        it (docs/decisions/0005-hostile-input-faults-and-secrets.md)."""
        import pyarrow as pa

        read = [False]
        if isinstance(facts, pa.RecordBatchReader):
            stream = facts

            def batches():
                read[0] = True
                yield from stream

            facts = pa.RecordBatchReader.from_batches(stream.schema, batches())
        return self._retrying(
            f"the load of {entry.get('file_name') or entry.get('sha256')}",
            lambda: super(PostgresWarehouse, self).load(entry, facts, outcomes, scope),
            replayable=lambda: not read[0],
        )

    def write_lake(
        self, lake, source_id: str, partitions: list[tuple[str, int, int]], constants: dict | None = None
    ) -> int:
        """The touched partitions spooled by COPY to a scratch CSV file, then read back by DuckDB
        and streamed into leaves: bounded memory, however many facts the partitions hold (holding
        them as one Arrow table took 14 GB for a 20 M-observation source). The ``constants`` every
        fact of the partitions holds are not spooled: Arrow adds them to each batch."""
        from transforms.engine import connect, temp_name
        from transforms.scratch import process_dir

        spool = process_dir(self.settings.home / "tmp") / f"{temp_name('lake')}.csv"

        def to_file(sql: str, fixed: dict) -> dict:
            """Spool ``sql``; the constants it leaves out."""
            with open(spool, "wb") as fh, self.con.cursor() as cur:
                with cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:
                    for chunk in copy:
                        fh.write(chunk)
            return fixed

        try:
            spooled = self._retrying(
                "the read of the touched partitions",
                lambda: self._read_partitions(source_id, partitions, to_file, constants),
            )
            if spool.stat().st_size == 0:
                return _lake_write(lake, iter(()), source_id, partitions)
            columns = ", ".join(
                f"'{f.name}': '{_sql_type(f.type)}'" for f in fact_schema() if f.name not in spooled
            )
            path = spool.as_posix().replace("'", "''")  # a path, quoted
            con = connect(temp_dir=self.settings.home / "tmp")
            try:
                sql = (
                    f"SELECT * FROM read_csv('{path}', header = false, columns = {{{columns}}}, "
                    "allow_quoted_nulls = false)"
                )
                return _lake_write(lake, _leaf_batches(con, sql, fixed=spooled), source_id, partitions)
            finally:
                con.close()
        finally:
            spool.unlink(missing_ok=True)

    @staticmethod
    def _sql(sql: str, params) -> str:
        # The module's SQL uses "?" placeholders; psycopg wants "%s" (and "%" doubled).
        return sql.replace("%", "%%").replace("?", "%s") if params else sql

    def execute(self, sql: str, params=None) -> None:
        def run() -> None:
            with self.con.cursor() as cur:
                cur.execute(self._sql(sql, params), params or None)

        self._retrying("a statement", run)

    def query(self, sql: str, params=None) -> tuple[list[str], list[tuple]]:
        def run():
            with self.con.cursor() as cur:
                cur.execute(self._sql(sql, params), params or None)
                if cur.description is None:
                    return [], []
                return [d.name for d in cur.description], cur.fetchall()

        return self._retrying("a query", run)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if self._depth:
            yield
            return

        def begin():
            tx = self.con.transaction()
            tx.__enter__()  # BEGIN: retried on a new connection if the old one is gone
            return tx

        with contextlib.ExitStack() as stack:
            stack.push(self._retrying("the start of a transaction", begin))
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1

    def _lock(self, name: str) -> None:
        self.execute("SELECT pg_advisory_xact_lock(hashtext(?))", [name])

    def _analyze(self, table: str, columns: tuple[str, ...] = ()) -> None:
        self.execute(f"ANALYZE {table}" + (f" ({', '.join(columns)})" if columns else ""))

    def _bulk_joins(self) -> None:
        # The load joins on the 11-column observation key; the planner, multiplying the columns'
        # selectivities, expects one match per row and picks nested loops that then run for
        # minutes on large files. Hash joins are right for every statement of a load.
        self.execute("SET LOCAL enable_nestloop = off")
        self.execute("SET LOCAL enable_mergejoin = off")

    def copy_into(self, table: str, data, binary: bool = False) -> int:
        """COPY ... FROM STDIN, written in batches (no row inserts): in CSV by Arrow, or with
        ``binary`` (Arrow types that are exactly the table's: the fact schema) in PostgreSQL's
        binary format, encoded by pgpq, which the server reads ~40 % faster (no text to parse:
        4 M fact rows in 17 s instead of 27.5 s on this machine)."""
        arrow = self._arrow(data)
        cols = ", ".join(arrow.schema.names)
        batches = (
            arrow.to_batches(max_chunksize=self.COPY_BATCH_ROWS) if hasattr(arrow, "to_batches") else arrow
        )
        if binary:
            import pgpq

            encoder = pgpq.ArrowToPostgresBinaryEncoder(arrow.schema)
            encode, fmt, head, tail = encoder.write_batch, "binary", encoder.write_header(), encoder.finish
        else:
            import pyarrow.csv as pacsv

            options = pacsv.WriteOptions(include_header=False)

            def encode(batch):
                buf = io.BytesIO()
                pacsv.write_csv(batch, buf, options)
                return buf.getbuffer()

            fmt, head, tail = "csv", b"", lambda: b""
        rows = 0
        with self.con.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT {fmt})") as copy:
            copy.write(head)
            for batch in batches:
                copy.write(encode(batch))
                rows += batch.num_rows
            copy.write(tail())
        return rows if cur.rowcount < 0 else cur.rowcount  # the server's count when it gives one

    def to_arrow(self, sql: str, schema):
        """COPY (query) TO STDOUT as CSV, read by Arrow with the types of ``schema``."""
        import pyarrow.csv as pacsv

        buf = io.BytesIO()
        with self.con.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:
            for chunk in copy:
                buf.write(chunk)
        if buf.tell() == 0:
            return schema.empty_table()
        buf.seek(0)
        return pacsv.read_csv(
            buf,
            read_options=pacsv.ReadOptions(column_names=schema.names),
            convert_options=pacsv.ConvertOptions(
                column_types={f.name: f.type for f in schema},
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                true_values=["t"],
                false_values=["f"],
            ),
        ).cast(schema)
