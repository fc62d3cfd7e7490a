"""The lake as one Apache Iceberg table on S3-compatible object storage (``OMH_LAKE_URL=s3://...``).

* Table ``<namespace>.fact_flow`` in the fact schema of the folder lake (codes, not surrogate
  keys), partitioned by identity(reporter_iso3), identity(year), identity(month); its data and
  metadata files live under ``OMH_LAKE_URL``.
* Catalog: pyiceberg's SQL catalog in ``OMH_LAKE_CATALOG_URL`` (SQLAlchemy URL), by default the
  warehouse's own PostgreSQL database and schema; a SQLite file in ``$OMH_HOME`` when the warehouse
  is embedded DuckDB. The catalog commit is one conditional UPDATE of the table's metadata pointer:
  two writers racing, one wins and the other retries on the new snapshot.
* Object storage through pyarrow's ``S3FileSystem`` (pyiceberg's ``PyArrowFileIO``), endpoint and
  credentials from ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION`` (no DuckDB extension: DuckDB reads the table through
  pyiceberg's scan as Arrow).

A load is ONE snapshot of operation ``overwrite``: it removes the data files of the source in the
touched partitions and adds the new ones. Every data file holds one source's rows of one partition
(the table keeps full min/max statistics of ``source_id`` to tell), so a leaf is replaced by
whole files and no row is ever rewritten or deleted by position. A reader of any snapshot sees
one vintage of a leaf, never half; the previous snapshot stays readable (time travel) until it
is expired.
"""

from __future__ import annotations

import os
import time
import uuid

from transforms.storage.lake import PARTITION_COLUMNS, Leaf

TABLE = "fact_flow"
COMMIT_ATTEMPTS = 8
# Rows of a load gathered before their data files are written (one file per partition per chunk):
# a large load's memory stays bounded; a member's monthly file is one chunk.
CHUNK_ROWS = 500_000
# Data files ``omh verify`` reads at once.
SCAN_THREADS = 8
PROPERTIES = {
    # source_id bounds written whole (not truncated to 16 characters): a file's source is known
    # from the manifest alone, which the overwrite relies on to pick the files of one source.
    "write.metadata.metrics.column.source_id": "full",
    "write.parquet.compression-codec": "zstd",
    # A load's overwrite conflicts only with a concurrent change to the files it replaces (those of
    # its own source), not with another source's files added to the same partitions meanwhile.
    "write.update.isolation-level": "snapshot",
}


def _iceberg_type(arrow_type):
    import pyarrow as pa
    from pyiceberg import types as t

    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return t.StringType()
    known = {
        pa.date32(): t.DateType(),
        pa.float64(): t.DoubleType(),
        pa.int32(): t.IntegerType(),
        pa.int64(): t.LongType(),
        pa.timestamp("us"): t.TimestampType(),
    }
    if arrow_type not in known:
        raise TypeError(f"no Iceberg type for the fact column type {arrow_type}")
    return known[arrow_type]


def table_schema():
    """The Iceberg schema of the fact schema (field ids in column order, all optional)."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField

    from transforms.storage.warehouse import fact_schema

    return Schema(
        *(
            NestedField(i + 1, f.name, _iceberg_type(f.type), required=False)
            for i, f in enumerate(fact_schema())
        )
    )


def partition_spec(schema):
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import IdentityTransform

    return PartitionSpec(
        *(
            PartitionField(schema.find_field(c).field_id, 1000 + i, IdentityTransform(), c)
            for i, c in enumerate(PARTITION_COLUMNS)
        )
    )


def s3_properties() -> dict:
    """FileIO properties from the usual AWS variables."""
    env = os.environ
    props = {
        "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO",
        # A region given: pyiceberg does not ask AWS for the bucket's (no network beyond the endpoint).
        "s3.region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
    }
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        props["s3.endpoint"] = endpoint
    for var, key in (
        ("AWS_ACCESS_KEY_ID", "s3.access-key-id"),
        ("AWS_SECRET_ACCESS_KEY", "s3.secret-access-key"),
        ("AWS_SESSION_TOKEN", "s3.session-token"),
    ):
        if env.get(var):
            props[key] = env[var]
    return props


def catalog_url(cfg) -> str:
    """``OMH_LAKE_CATALOG_URL``, else the warehouse's PostgreSQL (same database and schema, through
    psycopg 3), else a SQLite file beside the embedded warehouse."""
    explicit = os.environ.get("OMH_LAKE_CATALOG_URL", "").strip()
    if explicit:
        return explicit
    url = cfg.warehouse_url
    if url.startswith(("postgresql", "postgres")):
        scheme, rest = url.split("://", 1)
        return f"postgresql+psycopg://{rest}"
    return f"sqlite:///{cfg.home / 'lake-catalog.db'}"


class IcebergLake:
    """The lake store (``lakestore.LakeStore``) over one Iceberg table."""

    def __init__(self, url: str, catalog_uri: str, catalog_name: str = "omh", namespace: str = "omh"):
        self.url = url.rstrip("/")
        self.catalog_uri, self.catalog_name, self.namespace = catalog_uri, catalog_name, namespace
        self._catalog = None

    @classmethod
    def from_settings(cls, cfg) -> IcebergLake:
        return cls(
            cfg.lake_url,
            catalog_url(cfg),
            os.environ.get("OMH_LAKE_CATALOG", "").strip() or "omh",
            os.environ.get("OMH_LAKE_NAMESPACE", "").strip() or "omh",
        )

    @property
    def identifier(self) -> str:
        return f"{self.namespace}.{TABLE}"

    def catalog(self):
        if self._catalog is None:
            from pyiceberg.catalog.sql import SqlCatalog

            self._catalog = SqlCatalog(
                self.catalog_name, uri=self.catalog_uri, warehouse=self.url, **s3_properties()
            )
        return self._catalog

    def table(self, create: bool = True):
        """The table, created (with its namespace) on first use."""
        from pyiceberg.exceptions import NoSuchTableError

        catalog = self.catalog()
        try:
            return catalog.load_table(self.identifier)
        except NoSuchTableError:
            if not create:
                return None
        catalog.create_namespace_if_not_exists(self.namespace)
        schema = table_schema()
        return catalog.create_table_if_not_exists(
            self.identifier,
            schema,
            location=f"{self.url}/{self.namespace}/{TABLE}",
            partition_spec=partition_spec(schema),
            properties=PROPERTIES,
        )

    # ------------------------------------------------------------------------------- writing

    def write(self, batches, source_id: str, partitions) -> int:
        """Replace the leaves of ``source_id`` in ``partitions`` in one snapshot.

        The new data files are written first (invisible until committed); then one overwrite
        snapshot drops the source's files of those partitions and adds the new ones. A commit that
        loses a race with another writer is retried on the newer snapshot (pyiceberg's own retry,
        then here with the source's files planned again when those it meant to drop are gone);
        the files written stay the same."""
        from pyiceberg.exceptions import CommitFailedException, ValidationException
        from pyiceberg.io.pyarrow import _dataframe_to_data_files

        wanted = {(p[0], int(p[1]), int(p[2])) for p in partitions}
        table = self.table()
        files, rows = [], 0
        for chunk in _chunks(batches, table.schema().as_arrow()):  # memory bounded by a chunk
            _check(chunk, source_id, wanted)
            files += _dataframe_to_data_files(table.metadata, chunk, table.io, write_uuid=uuid.uuid4())
            rows += chunk.num_rows
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                self._commit(table, source_id, wanted, files)
                return rows
            except (CommitFailedException, ValidationException):  # replanned on the newer snapshot
                if attempt == COMMIT_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * 2**attempt)
                table = self.table()
        return rows

    def _commit(self, table, source_id: str, wanted: set, files: list) -> None:
        old = self._files_of(table, source_id, wanted)
        if not old and not files:
            return
        props = {"omh.source_id": source_id, "omh.partitions": str(len(wanted))}
        with table.transaction() as tx:
            update = tx.update_snapshot(snapshot_properties=props)
            # Nothing of the source there yet: an append; else one overwrite (files out and in).
            with update.overwrite() if old else update.fast_append() as snapshot:
                for data_file in old:
                    snapshot.delete_data_file(data_file)
                for data_file in files:
                    snapshot.append_data_file(data_file)

    def _files_of(self, table, source_id: str, wanted: set) -> list:
        """The current data files of ``source_id`` in partitions ``wanted`` (from the manifests)."""
        from pyiceberg.expressions import And, EqualTo, In

        if table.current_snapshot() is None or not wanted:
            return []
        reporters = {p[0] for p in wanted}
        years = {p[1] for p in wanted}
        months = {p[2] for p in wanted}
        row_filter = And(
            EqualTo("source_id", source_id),
            And(In("reporter_iso3", reporters), And(In("year", years), In("month", months))),
        )
        found = []
        for task in table.scan(row_filter=row_filter).plan_files():
            data_file = task.file
            key = _partition_key(data_file)
            if key not in wanted:
                continue
            if _file_source(table, data_file) != source_id:
                raise RuntimeError(
                    f"lake table {self.identifier}: data file {data_file.file_path} holds rows of "
                    f"several sources; this writer only replaces whole files of one source"
                )
            found.append(data_file)
        return found

    # ------------------------------------------------------------------------------- reading

    def scan(self) -> tuple[list[Leaf], list[str]]:
        """Every leaf of the current snapshot, each data file read on its own (a file missing or
        damaged marks its leaf, not the whole scan), several at once (object storage answers each
        read after a round trip)."""
        from concurrent.futures import ThreadPoolExecutor

        table = self.table(create=False)
        if table is None or table.current_snapshot() is None:
            return [], []
        tasks = list(table.scan().plan_files())
        with ThreadPoolExecutor(SCAN_THREADS, thread_name_prefix="omh-lake-scan") as pool:
            figures = list(pool.map(lambda task: _figures(table, task), tasks))
        found: dict[tuple, Leaf] = {}
        for task, got in zip(tasks, figures, strict=True):
            data_file = task.file
            source_id = _file_source(table, data_file) or "?"
            key = (source_id, *_partition_key(data_file))
            leaf = found.setdefault(key, Leaf(*key, data_file.file_path, 0, 0, None))
            if leaf.error:
                continue
            if isinstance(got, str):
                leaf.error = got
                continue
            leaf.rows += got[0]
            leaf.values += got[1]
            if got[2] is not None:
                leaf.total = (leaf.total or 0.0) + got[2]
        return sorted(found.values(), key=lambda leaf: leaf.key), []

    def read(self, source_id: str, partition, snapshot_id: int | None = None):
        from pyiceberg.expressions import And, EqualTo

        reporter, year, month = partition
        row_filter = And(
            EqualTo("source_id", source_id),
            And(
                EqualTo("reporter_iso3", reporter),
                And(EqualTo("year", int(year)), EqualTo("month", int(month))),
            ),
        )
        return self.arrow(row_filter=row_filter, snapshot_id=snapshot_id)

    def arrow(self, row_filter=None, snapshot_id: int | None = None, columns: tuple[str, ...] = ("*",)):
        """The table (or a snapshot of it) as one Arrow table: what DuckDB queries."""
        from pyiceberg.expressions import AlwaysTrue

        table = self.table()
        return table.scan(
            row_filter=row_filter if row_filter is not None else AlwaysTrue(),
            selected_fields=columns,
            snapshot_id=snapshot_id,
        ).to_arrow()

    def remove_strays(self, strays: list[str]) -> None:
        """Nothing to do: files of an uncommitted write are referenced by no snapshot, hence unread
        (orphan-file cleanup is a maintenance job of the table)."""

    def leaf_dataset(self, source_id: str, partition) -> dict:
        reporter, year, month = partition
        return {
            "namespace": self.url.split("/", 3)[0] + "//" + self.url.split("/", 3)[2],
            "name": f"{self.identifier}/reporter_iso3={reporter}/year={int(year)}/month={int(month)}/source_id={source_id}",
        }


def _figures(table, task) -> tuple[int, int, float | None] | str:
    """(rows, non-null values, sum of value) of one data file, or what is wrong with it."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    data_file = task.file
    try:
        if task.delete_files:
            raise RuntimeError("delete files present (this writer never writes them)")
        scheme, netloc, path = table.io.parse_location(data_file.file_path)
        values = pq.read_table(path, filesystem=table.io.fs_by_scheme(scheme, netloc), columns=["value"])
        values = values.column("value")
        if len(values) != data_file.record_count:
            raise RuntimeError(f"{len(values)} rows in the file, {data_file.record_count} in the manifest")
        total = pc.sum(values).as_py()
        return len(values), len(values) - values.null_count, None if total is None else float(total)
    except Exception as exc:  # missing or damaged object
        first = str(exc).splitlines()[0] if str(exc) else ""
        return f"{data_file.file_path}: {exc.__class__.__name__}: {first}"


def _partition_key(data_file) -> tuple[str, int, int]:
    p = data_file.partition
    return (p[0], int(p[1]), int(p[2]))


def _file_source(table, data_file) -> str | None:
    """The one source a data file holds (min == max of its ``source_id`` statistics), else None."""
    from pyiceberg.conversions import from_bytes
    from pyiceberg.types import StringType

    field_id = table.schema().find_field("source_id").field_id
    low = (data_file.lower_bounds or {}).get(field_id)
    high = (data_file.upper_bounds or {}).get(field_id)
    if low is None or high is None:
        return None
    low, high = from_bytes(StringType(), low), from_bytes(StringType(), high)
    return low if low == high else None


def _chunks(batches, schema, rows: int | None = None):
    """The batches regrouped into Arrow tables of about ``rows`` rows, in the table's column order
    and types (dictionary columns, the writer's constants, decoded)."""
    import pyarrow as pa

    rows = rows or CHUNK_ROWS
    held, count = [], 0
    for batch in batches:
        if batch.num_rows:
            held.append(pa.Table.from_batches([batch]).select(schema.names).cast(schema))
            count += batch.num_rows
        if count >= rows:
            yield pa.concat_tables(held)
            held, count = [], 0
    if held:
        yield pa.concat_tables(held)


def _check(chunk, source_id: str, wanted: set) -> None:
    """Rows of ``source_id`` in partitions ``wanted`` only, else nothing is committed."""
    import pyarrow.compute as pc

    keys = chunk.select(list(PARTITION_COLUMNS)).group_by(list(PARTITION_COLUMNS)).aggregate([])
    found = zip(*(keys.column(c).to_pylist() for c in PARTITION_COLUMNS), strict=True)
    outside = {(r, int(y), int(m)) for r, y, m in found} - wanted
    if outside:
        raise ValueError(
            f"lake write of {source_id}: rows of {sorted(outside)[0]} are outside the partitions written"
        )
    if pc.any(pc.not_equal(chunk.column("source_id"), source_id)).as_py():
        raise ValueError(f"lake write of {source_id}: rows of another source")
