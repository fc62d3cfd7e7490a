"""The warehouse: star schema, manifest and validation results, one transaction per file.

DuckDB through its native API (the embedded default). Storage knows nothing of countries:
it takes canonical frames and code lists and keeps them.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from transforms import codelists
from transforms.config import SQL_DIR, Settings
from transforms.harmonize import KEY_COLUMNS

SCHEMA_VERSION = 1
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


class WarehouseError(RuntimeError):
    pass


def _statements(path: Path) -> list[str]:
    text = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


class Warehouse:
    """A connection to the DuckDB warehouse of one OMH_HOME."""

    def __init__(self, settings: Settings, read_only: bool = False):
        import duckdb

        self.settings = settings
        path = settings.duckdb_path
        if path is None:
            raise WarehouseError(f"unsupported warehouse URL {settings.warehouse_url!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if read_only and not path.exists():
            raise WarehouseError(f"no warehouse at {path}; run `make demo` or `omh ingest` first")
        self.con = duckdb.connect(str(path), read_only=read_only)
        self.read_only = read_only

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ schema

    def ensure_schema(self, contracts=None) -> None:
        """Create tables and views, seed the dimensions from the code lists and contracts."""
        for stmt in _statements(SQL_DIR / "schema.sql"):
            self.con.execute(stmt)
        row = self.con.execute("SELECT max(version) FROM schema_version").fetchone()
        if row[0] is None or row[0] < SCHEMA_VERSION:
            self.con.execute("INSERT INTO schema_version VALUES (?, ?)", [SCHEMA_VERSION, dt.datetime.now()])
        self._seed_dimensions(contracts)
        for stmt in _statements(SQL_DIR / "views.sql"):
            self.con.execute(stmt)

    def _replace(self, table: str, frame: pd.DataFrame) -> None:
        self.con.register("_seed", frame)
        try:
            cols = ", ".join(frame.columns)
            self.con.execute(f"DELETE FROM {table}")
            self.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _seed")
        finally:
            self.con.unregister("_seed")

    def _seed_dimensions(self, contracts) -> None:
        labels = ["code", "label_es", "label_en", "label_pt", "label_fr"]
        self.con.execute("BEGIN")
        try:
            countries = pd.DataFrame(codelists.load("countries"))
            countries["is_member"] = countries["member"].astype(str).str.lower().isin(["true", "1", "yes"])
            countries["conference"] = countries["conference"].replace("", None)
            self._replace(
                "dim_country",
                countries[["iso3", "iso2", "m49", "name_es", "name_en", "name_pt", "name_fr", "is_member", "conference"]],
            )
            flows = pd.DataFrame(codelists.load("flow_types"))
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
                    }
                    for c in contracts.values()
                ]
                self._replace("dim_source", pd.DataFrame(rows))
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ manifest

    def is_loaded(self, source_id: str, sha256: str) -> bool:
        try:
            row = self.con.execute(
                "SELECT 1 FROM file_manifest WHERE source_id = ? AND sha256 = ? AND status = 'loaded'",
                [source_id, sha256],
            ).fetchone()
        except Exception:  # no schema yet: nothing is loaded
            return False
        return row is not None

    def _manifest(self, entry: dict) -> None:
        self.con.execute(
            "DELETE FROM file_manifest WHERE source_id = ? AND sha256 = ?", [entry["source_id"], entry["sha256"]]
        )
        cols = [
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
        ]
        self.con.execute(
            f"INSERT INTO file_manifest ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [entry.get(c) for c in cols],
        )

    def _dq(self, entry: dict, outcomes: list) -> None:
        if not outcomes:
            return
        self.con.execute(
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
                    "success": o.success,
                    "unexpected_count": o.unexpected_count,
                    "examples": json.dumps(o.examples[:5], ensure_ascii=False, default=str),
                    "run_at": now,
                }
                for o in outcomes
            ]
        )
        self.con.register("_dq", frame)
        try:
            self.con.execute(f"INSERT INTO dq_result ({', '.join(frame.columns)}) SELECT * FROM _dq")
        finally:
            self.con.unregister("_dq")

    def record_refusal(self, entry: dict, outcomes: list) -> None:
        self.con.execute("BEGIN")
        try:
            self._manifest(entry)
            self._dq(entry, outcomes)
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ facts

    def units_in_use(self) -> pd.DataFrame:
        return self.con.execute(
            "SELECT DISTINCT reporter_iso3, flow_type, unit, source_id FROM fact_flow"
        ).df()

    def load(self, entry: dict, facts: pd.DataFrame, outcomes: list) -> int:
        """Supersede earlier figures of the same observations and insert these, in one transaction."""
        facts = facts[FACT_COLUMNS]
        keys = " AND ".join(f"f.{k} = n.{k}" for k in KEY_COLUMNS)
        self.con.register("_new", facts)
        self.con.execute("BEGIN")
        try:
            self.con.execute(f"DELETE FROM fact_flow f USING _new n WHERE {keys}")
            self.con.execute(f"INSERT INTO fact_flow ({', '.join(FACT_COLUMNS)}) SELECT * FROM _new")
            self._manifest(entry)
            self._dq(entry, outcomes)
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        finally:
            self.con.unregister("_new")
        return len(facts)

    def partition_facts(self, source_id: str, partitions: list[tuple[str, int, int]]):
        """Current facts of ``source_id`` in the given (reporter, year, month) partitions, as Arrow."""
        frame = pd.DataFrame(partitions, columns=["reporter_iso3", "year", "month"])
        self.con.register("_parts", frame)
        try:
            return self.con.sql(
                """
                SELECT f.* FROM fact_flow f
                JOIN _parts p USING (reporter_iso3, year, month)
                WHERE f.source_id = ?
                ORDER BY reporter_iso3, year, month, flow_type, citizenship_iso3, period_start, source_row
                """,
                params=[source_id],
            ).to_arrow_table()
        finally:
            self.con.unregister("_parts")

    def query(self, sql: str, params=None) -> tuple[list[str], list[tuple]]:
        cur = self.con.execute(sql, params or [])
        cols = [d[0] for d in cur.description] if cur.description else []
        return cols, cur.fetchall()
