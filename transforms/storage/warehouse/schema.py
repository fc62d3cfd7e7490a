"""The warehouse's schema as code: the fact and manifest columns, the Arrow schema of a fact
row, the SQL files (migrations, views) and how their statements are split per engine."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from transforms.config import SQL_DIR

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
# What a load gives every observation of its file: one row of ``dim_load`` in the warehouse, where
# the facts keep its ``load_id`` (schema version 9); the lake and every reader see them by name.
LINEAGE_COLUMNS = ("source_file", "source_sha256", "vintage", "loaded_at")
# The columns of ``fact_flow`` as stored (less ``change``): the fact columns with the lineage
# replaced by ``load_id``, in the table's order.
STORED_COLUMNS = [
    *(c for c in FACT_COLUMNS[: FACT_COLUMNS.index("source_file")]),
    "load_id",
    *(c for c in FACT_COLUMNS[FACT_COLUMNS.index("source_file") :] if c not in LINEAGE_COLUMNS),
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


def stored_schema():
    """The Arrow schema of a fact row as ``fact_flow`` stores it (``STORED_COLUMNS``)."""
    import pyarrow as pa

    fact = fact_schema()
    return pa.schema(
        [pa.field("load_id", pa.int32()) if c == "load_id" else fact.field(c) for c in STORED_COLUMNS]
    )


class WarehouseError(RuntimeError):
    pass


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
