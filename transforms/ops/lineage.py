"""OpenLineage datasets of one load: the landing file in, the lake partitions and warehouse tables out.

The source DAGs' ``ingest`` operator returns these through its OpenLineage methods, so the
OpenLineage provider (configured by ``transforms.ops.airflow_env``: a file transport under
``$OMH_HOME/lineage/`` by default) emits, for every file, events whose inputs and outputs are:

* input: the landing file (namespace ``file``, name its absolute path);
* outputs: each lake leaf the file's figures live in
  (``lake/reporter_iso3=XXX/year=YYYY/month=M/<source_id>.parquet``, namespace ``file`` or the
  object store's), and the warehouse tables it wrote (``fact_flow``, ``file_manifest``,
  ``dq_result``; namespace ``duckdb://<file>`` or ``postgres://host:port``).

Plain dictionaries here (``namespace``, ``name``, optional ``facets``): the DAG turns them into
OpenLineage objects, so this module imports neither Airflow nor OpenLineage.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from transforms.config import Settings, settings

WAREHOUSE_TABLES = ("fact_flow", "file_manifest", "dq_result")


def file_dataset(path: str | os.PathLike) -> dict:
    return {"namespace": "file", "name": str(Path(path).resolve())}


def warehouse_namespace(cfg: Settings) -> tuple[str, str]:
    """(namespace, table name prefix) of the warehouse, after OpenLineage's naming conventions."""
    if cfg.duckdb_path is not None:
        return f"duckdb://{cfg.duckdb_path.resolve()}", "main."
    url = urlsplit(cfg.warehouse_url)
    database = url.path.lstrip("/") or "postgres"
    return f"postgres://{url.hostname or 'localhost'}:{url.port or 5432}", f"{database}.public."


def lake_partitions(source_id: str, sha256: str, cfg: Settings) -> list[tuple[str, int, int]]:
    """(reporter, year, month) leaves holding the current figures of one loaded file (read-only)."""
    from transforms.storage.warehouse import open_for_reading

    if cfg.duckdb_path is not None and not cfg.duckdb_path.exists():
        return []
    with open_for_reading(cfg) as wh:
        rows = wh.fetchall(
            "SELECT DISTINCT f.reporter_iso3, f.year, f.month FROM fact_flow f "
            "JOIN dim_load l ON l.load_id = f.load_id "
            "WHERE l.source_id = ? AND l.source_sha256 = ? ORDER BY 1, 2, 3",
            [source_id, sha256],
        )
    return [(r, int(y), int(m)) for r, y, m in rows]


def load_datasets(source_id: str, landing_path: str, result, home=None) -> dict:
    """``{"inputs": [...], "outputs": [...]}`` of one ingest (``result``: an ``IngestResult``).

    A refused file has its landing file as input and, as outputs, only the manifest and the
    validation results it was recorded in: nothing was published.
    """
    from transforms.storage.lakestore import open_lake

    cfg = settings(home)
    namespace, prefix = warehouse_namespace(cfg)
    inputs = [file_dataset(landing_path)]
    if getattr(result, "status", "") != "loaded":
        tables = (
            ("file_manifest", "dq_result")
            if getattr(result, "status", "") in ("refused", "unreadable")
            else ()
        )
        return {"inputs": inputs, "outputs": [{"namespace": namespace, "name": prefix + t} for t in tables]}
    outputs = [
        {
            "namespace": namespace,
            "name": prefix + table,
            **({"rows": int(result.rows)} if table == "fact_flow" else {}),
        }
        for table in WAREHOUSE_TABLES
    ]
    lake = open_lake(cfg)
    for partition in lake_partitions(source_id, result.sha256, cfg):
        outputs.append(lake.leaf_dataset(source_id, partition))
    return {"inputs": inputs, "outputs": outputs}
