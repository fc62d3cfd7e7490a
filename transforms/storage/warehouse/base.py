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

import contextlib
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator

import pandas as pd

from transforms.config import Settings
from transforms.storage.manifest import LOADED_SQL
from transforms.storage.warehouse.dimensions import Dimensions
from transforms.storage.warehouse.lake_sync import LakeSync
from transforms.storage.warehouse.merge import VintageMerge
from transforms.storage.warehouse.schema import (
    GRANTS_SQL,
    MANIFEST_COLUMNS,
    VIEWS_SQL,
    WarehouseError,
    _sql_type,
    engine_of,
    migrations,
    split_statements,
    view_names,
)
from transforms.storage.warehouse.sink import LocalFacts

log = logging.getLogger("omh.warehouse")
_STAGE_TABLES = ("_new", "_scope", "_gone", "_fresh")


class Warehouse(VintageMerge, LakeSync, Dimensions):
    """A connection to the warehouse of one installation: ``Warehouse(settings)`` opens the
    DuckDB or the PostgreSQL backend as ``settings.warehouse_url`` says."""

    engine = "?"
    ANALYZE_AFTER_ROWS = 10_000
    # Appended to the diffing load's INSERT of fresh figures (an ORDER BY, or nothing): on
    # PostgreSQL the sort cost 4 % of a 2 M-row resend and the lake read gained nothing from it.
    FRESH_ORDER = ""
    # engine name -> its class. Each engine's module registers its class when it is defined (the
    # package imports both), so this module needs no import of the engines (no import circle).
    _engines: dict[str, type[Warehouse]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Warehouse._engines.setdefault(cls.engine, cls)

    def __new__(cls, settings: Settings, read_only: bool = False, purpose: str | None = None):
        if cls is Warehouse:
            cls = Warehouse._engines[engine_of(settings.warehouse_url)]
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

    # The next load's number (DuckDB: one writer at a time; PostgreSQL: a sequence, as loads of
    # different sources run at once).
    NEXT_LOAD_ID = "SELECT coalesce(max(load_id), 0) + 1 FROM dim_load"

    def _load_row(self, source_id: str, source_file: str, sha: str, vintage, loaded_at) -> int:
        """The ``load_id`` of a file's load, inside the load's transaction: its ``dim_load`` row,
        written now, or found when a ``FactSink`` wrote it earlier in the same transaction."""
        found = self._scalar(
            "SELECT max(load_id) FROM dim_load WHERE source_id = ? AND source_sha256 = ? AND loaded_at = ?",
            [source_id, sha, loaded_at],
        )
        if found is not None:
            return int(found)
        load_id = int(self._scalar(self.NEXT_LOAD_ID))
        self.execute(
            "INSERT INTO dim_load (load_id, source_id, source_file, source_sha256, vintage, loaded_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [load_id, source_id, source_file, sha, vintage, loaded_at],
        )
        return load_id

    def units_in_use(self) -> pd.DataFrame:
        cols, rows = self.query("SELECT DISTINCT reporter_iso3, flow_type, unit, source_id FROM fact_flow")
        return pd.DataFrame(rows, columns=cols)


def open_for_reading(settings: Settings) -> Warehouse:
    """The warehouse opened for reading: its last committed state, at once, even while a load
    runs (DuckDB: the published file, which no writer holds; PostgreSQL: read-only transactions).
    Every reader (``omh sql``/``export``, the Observatory, the bulletin) opens it this way."""
    return Warehouse(settings, read_only=True)
