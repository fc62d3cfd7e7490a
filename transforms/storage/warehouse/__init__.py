"""The warehouse: star schema, vintages, manifest and validation results, one transaction per file.

One job per module (docs/architecture.md):

* ``schema``: fact and manifest columns, the Arrow schema, migrations and views (``sql/``);
* ``base``: ``Warehouse``, what both engines share (migrations applied, views installed, manifest,
  DQ results, configuration), built from the mixins below;
* ``dimensions``: code lists, contracts and the delivery calendar seeded into the dimensions;
* ``merge``: the vintage merge of one file's observations (``Warehouse.load``);
* ``sink``: a first load written without a copy (``FactSink``, ``LocalFacts``);
* ``lake_sync``: the touched partitions' facts read for the lake's leaves;
* ``duckdb_engine`` and ``postgres_engine``: the two engines.

``Warehouse(settings)`` opens the engine ``settings.warehouse_url`` names.
"""

from transforms.storage.warehouse.base import Warehouse, open_for_reading
from transforms.storage.warehouse.dimensions import delivery_slots
from transforms.storage.warehouse.duckdb_engine import DuckDBWarehouse
from transforms.storage.warehouse.lake_sync import ARROW_BATCH_ROWS, _leaf_batches
from transforms.storage.warehouse.postgres_engine import PostgresWarehouse
from transforms.storage.warehouse.schema import (
    FACT_COLUMNS,
    GRANTS_SQL,
    LINEAGE_COLUMNS,
    MANIFEST_COLUMNS,
    MIGRATIONS_DIR,
    SCHEMA_VERSION,
    SQL_DIR,
    STATE_COLUMNS,
    STORED_COLUMNS,
    VIEWS_SQL,
    LoadResult,
    WarehouseError,
    _sql_type,
    engine_of,
    fact_schema,
    migrations,
    split_statements,
    stored_schema,
    view_names,
    with_schema,
)
from transforms.storage.warehouse.sink import FactSink, LocalFacts

__all__ = [
    "ARROW_BATCH_ROWS",
    "FACT_COLUMNS",
    "GRANTS_SQL",
    "LINEAGE_COLUMNS",
    "MANIFEST_COLUMNS",
    "MIGRATIONS_DIR",
    "SCHEMA_VERSION",
    "SQL_DIR",
    "STATE_COLUMNS",
    "STORED_COLUMNS",
    "VIEWS_SQL",
    "DuckDBWarehouse",
    "FactSink",
    "LoadResult",
    "LocalFacts",
    "PostgresWarehouse",
    "Warehouse",
    "WarehouseError",
    "_leaf_batches",
    "_sql_type",
    "delivery_slots",
    "engine_of",
    "fact_schema",
    "migrations",
    "open_for_reading",
    "split_statements",
    "stored_schema",
    "view_names",
    "with_schema",
]
