"""Is a file already loaded? Asked before any heavy import, so that a file already in the
warehouse costs its hash and one indexed query (``omh ingest`` of a loaded file, every rerun of a
DAG), not seconds of pandas, Arrow and Great Expectations imports.
"""

from __future__ import annotations

import logging
import re

from transforms.config import Settings

log = logging.getLogger("omh.manifest")

# The figures are committed and the lake leaves written (a load interrupted between the two is
# finished by the next run, so it does not count as loaded).
LOADED_SQL = (
    "SELECT 1 FROM file_manifest WHERE source_id = ? AND sha256 = ? AND status = 'loaded' "
    "AND lake_written_at IS NOT NULL"
)


def postgres_dsn(url: str) -> str:
    """A SQLAlchemy-style PostgreSQL URL as libpq takes it."""
    return re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)


def already_loaded(cfg: Settings, source_id: str, sha256: str) -> bool:
    """True when the warehouse says so; False when it does not, or cannot be asked cheaply (no
    warehouse yet, another process writing the DuckDB file, a server down): the full path then
    opens the warehouse properly and decides."""
    try:
        if cfg.duckdb_path is not None:
            if not cfg.duckdb_path.exists():
                return False
            import duckdb

            con = duckdb.connect(str(cfg.duckdb_path), read_only=True)
            try:
                return bool(con.execute(LOADED_SQL, [source_id, sha256]).fetchall())
            finally:
                con.close()
        import psycopg

        with psycopg.connect(postgres_dsn(cfg.warehouse_url), connect_timeout=5) as con:
            return bool(con.execute(LOADED_SQL.replace("?", "%s"), [source_id, sha256]).fetchall())
    except Exception as exc:  # no schema yet, a lock held by a writer, a server away
        log.debug("manifest lookup before the load failed (%s); the load path decides", exc)
        return False


def rules_fingerprint(source_id: str) -> str:
    """The sha256 of everything that judges a file of ``source_id``: its contract (as loaded), its
    raw suite, the canonical suite and the code lists. A refused file is tried again only when
    its bytes or this fingerprint changed (``Warehouse.settled_refusals``)."""
    import hashlib

    from transforms.config import DATA_DIR, EXPECTATIONS_DIR
    from transforms.contracts.loading import get_contract

    digest = hashlib.sha256(get_contract(source_id).model_dump_json().encode())
    files = [EXPECTATIONS_DIR / f"raw_{source_id}.json", EXPECTATIONS_DIR / "canonical.json"]
    files += sorted((DATA_DIR / "codelists").glob("*.csv"))
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"-")
    return digest.hexdigest()
