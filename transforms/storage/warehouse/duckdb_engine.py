"""The embedded warehouse: one DuckDB file, written on a copy published whole (docs/decisions/0007)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from transforms.config import Settings
from transforms.storage.warehouse.base import Warehouse
from transforms.storage.warehouse.lake_sync import _leaf_batches
from transforms.storage.warehouse.schema import WarehouseError


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
        from transforms.storage.warehouse.lake_sync import lake_write

        def stream(sql: str, fixed: dict) -> int:
            return lake_write(lake, _leaf_batches(self.con, sql, fixed=fixed), source_id, partitions)

        return self._read_partitions(source_id, partitions, stream, constants)
