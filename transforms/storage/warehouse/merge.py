"""The vintage merge: one file's observations become the current figures of ``fact_flow``; a
figure that changed or went missing closes into ``fact_flow_closed`` (docs/decisions/0002).
A mixin of ``Warehouse``: its SQL runs on both engines."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from transforms.stages.harmonize import KEY_COLUMNS
from transforms.storage.warehouse.dimensions import _add_months
from transforms.storage.warehouse.schema import (
    LINEAGE_COLUMNS,
    STATE_COLUMNS,
    STORED_COLUMNS,
    LoadResult,
    WarehouseError,
    fact_schema,
    stored_schema,
)
from transforms.storage.warehouse.sink import FactSink, LocalFacts

log = logging.getLogger("omh.warehouse")

# A statement's bound on one source's period span ({t}: the table's alias); bound to
# [source_id, first period_start, last period_end].
_SPAN = "{t}.source_id = ? AND {t}.period_start >= ? AND {t}.period_end <= ?"


def _key_eq(a: str, b: str) -> str:
    return " AND ".join(f"{a}.{k} = {b}.{k}" for k in KEY_COLUMNS)


def _state_eq(a: str, b: str) -> str:
    return " AND ".join(f"{a}.{k} IS NOT DISTINCT FROM {b}.{k}" for k in STATE_COLUMNS)


def _lean(table, load_id: int):
    """A file's observations in the fact schema (Arrow, a stream of batches, ``LocalFacts``) as
    ``fact_flow`` stores them: the lineage columns replaced by ``load_id`` (its ``dim_load`` row)."""
    import pyarrow as pa

    if isinstance(table, LocalFacts):
        cols = ", ".join(
            f"CAST({load_id} AS INTEGER) AS load_id" if c == "load_id" else c for c in STORED_COLUMNS
        )
        return LocalFacts(f"SELECT {cols} FROM ({table.sql}) f")
    schema = stored_schema()

    def lean(batch):
        return pa.RecordBatch.from_arrays(
            [
                pa.repeat(pa.scalar(load_id, pa.int32()), batch.num_rows)
                if c == "load_id"
                else batch.column(c)
                for c in STORED_COLUMNS
            ],
            schema=schema,
        )

    if isinstance(table, pa.Table):
        return pa.Table.from_batches([lean(b) for b in table.to_batches()], schema=schema)
    return pa.RecordBatchReader.from_batches(schema, (lean(b) for b in table))


def _lineage_of(entry: dict, facts, stamp) -> dict:
    """The file's row of ``dim_load``: from the observations when they are a frame that names
    it (every row names the same load), else from the manifest entry."""
    lineage = {
        "source_file": entry.get("file_name") or entry["sha256"],
        "source_sha256": entry["sha256"],
        "vintage": entry.get("vintage"),
        "loaded_at": stamp,
    }
    if isinstance(facts, pd.DataFrame) and len(facts):
        first = facts.iloc[0]
        lineage.update({c: first[c] for c in LINEAGE_COLUMNS if c in facts.columns and c != "loaded_at"})
    return lineage


class VintageMerge:
    """``load`` and its steps (a mixin of ``Warehouse``: needs its primitives)."""

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
        lineage = _lineage_of(entry, facts, stamp)
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
                gone = self._partitions_of_file(sha)
                parts = sorted(set(own or []) | {(r, int(y), int(m)) for r, y, m in gone})
                return LoadResult(rows=rows, unchanged=rows, partitions=parts, already_loaded=True)
            if preloaded:  # the sink wrote the file's load row with its observations
                load_id = table.load_id
            else:
                load_id = self._load_row(source_id, *(lineage[c] for c in LINEAGE_COLUMNS))
                table = _lean(table, load_id)
            if scope and self._first_in_span(scope, own=load_id if preloaded else None):
                result = self._load_first(table, load_id, sha, scope, entry.get("file_name") or sha)
            elif preloaded:  # the sink checked this very span in this transaction
                raise WarehouseError(
                    f"{entry.get('file_name') or sha}: its observations were written but it is not a first load"
                )
            elif getattr(table, "num_rows", rows):
                result = self._merge(table, load_id, stamp)
                self.execute(
                    "INSERT INTO file_coverage (source_id, sha256, reporter_iso3, period_start, period_end, "
                    "observations) SELECT source_id, ?, reporter_iso3, period_start, period_end, count(*) "
                    "FROM _new GROUP BY source_id, reporter_iso3, period_start, period_end",
                    [sha],
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

    def _partitions_of_file(self, sha: str) -> list[tuple]:
        """(reporter_iso3, year, month) of the figures a loaded file wrote or closed."""
        loads = ", ".join(
            str(int(r[0]))
            for r in self.fetchall("SELECT load_id FROM dim_load WHERE source_sha256 = ?", [sha])
        )
        if not loads:
            return []
        return self.fetchall(
            "SELECT DISTINCT reporter_iso3, year, month FROM fact_flow_closed "
            f"WHERE closed_by_load_id IN ({loads}) OR load_id IN ({loads}) "
            f"UNION SELECT DISTINCT reporter_iso3, year, month FROM fact_flow WHERE load_id IN ({loads})"
        )

    def _first_in_span(self, scope: list, own: int | None = None) -> bool:
        """Whether the source's period span of ``scope`` holds no current figure (but those of
        load ``own``) and was covered by no earlier file (two index probes): then every
        observation of the file is new."""
        sources = {row[0] for row in scope}
        if len(sources) != 1 or any(v is None for row in scope for v in row):
            return False  # not one source, or a key missing (the constraint says so in the diff)
        return self._span_empty(
            [sources.pop(), min(row[2] for row in scope), max(row[3] for row in scope)], own
        )

    def _span_empty(self, bounds: list, own: int | None = None) -> bool:
        """Whether the span ``bounds`` (source_id, first period start, last period end) holds no
        current figure, other than those of load ``own`` (a ``FactSink`` wrote them), and was
        covered by no earlier file."""
        mine, args = (" AND c.load_id <> ?", [*bounds, own]) if own is not None else ("", bounds)
        return not (
            self.fetchall(f"SELECT 1 FROM fact_flow c WHERE {_SPAN.format(t='c')}{mine} LIMIT 1", args)
            or self.fetchall(f"SELECT 1 FROM file_coverage c WHERE {_SPAN.format(t='c')} LIMIT 1", bounds)
        )

    def _load_first(self, table, load_id: int, sha: str, scope: list, name: str) -> LoadResult:
        """Inside the load's transaction: a first load (``_first_in_span``) written straight
        into ``fact_flow``, its coverage and partitions taken from ``scope``."""
        import pyarrow as pa

        expected = sum(int(row[6]) for row in scope)
        parts = sorted({(row[1], int(row[4]), int(row[5])) for row in scope})
        first, last = min((p[1], p[2]) for p in parts), max((p[1], p[2]) for p in parts)
        months = [dt.date(*first, 1), _add_months(dt.date(*last, 1), 1)]
        sole = not self.fetchall(
            "SELECT 1 FROM fact_flow WHERE source_id = ? AND period_start >= ? AND period_start < ? "
            "AND load_id <> ? LIMIT 1",
            [scope[0][0], *months, load_id],
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
        """Append ``table`` (as stored, ``_lean``: Arrow, a stream of batches, or ``LocalFacts``) to
        ``fact_flow`` with ``change`` 'new'; the number of rows written (a ``FactSink`` wrote
        its rows already)."""
        import pyarrow as pa

        if isinstance(table, FactSink):  # written already, in this transaction
            return int(table.rows)
        if isinstance(table, LocalFacts):  # DuckDB: the harmonized table is in this connection
            cols = ", ".join(STORED_COLUMNS)
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

    def _merge(self, table, load_id: int, stamp: dt.datetime) -> LoadResult:
        """Inside the load's transaction: diff the staged file against the current figures.

        Plain joins only (no correlated subqueries, which PostgreSQL would run once per row), and
        every statement on the big tables is bounded by the file's source and period span, so it
        reads the covered periods through the (source, period) index, whatever the table's size.
        """
        cols = ", ".join(STORED_COLUMNS)
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
        return self._counts_after(load_id, stamp, cols, span, bounds)

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

    def _counts_after(
        self, load_id: int, stamp: dt.datetime, cols: str, span: str, bounds: list
    ) -> LoadResult:
        """Apply ``_gone`` and ``_fresh`` to the facts and their history; count what changed.

        A current figure that ends moves to ``fact_flow_closed`` (with when, how and by which
        load; ``valid_from`` is the instant of the load that wrote it); the file's fresh figures go
        to ``fact_flow`` with how they arrived. The current
        state is written once: ``fact_flow_history`` is the view of both tables."""
        gone = int(self._scalar("SELECT count(*) FROM _gone"))
        if gone:
            self.execute(
                f"INSERT INTO fact_flow_closed ({cols}, valid_from, valid_to, change, closed_as, closed_by_load_id) "
                f"SELECT {', '.join('c.' + c for c in STORED_COLUMNS)}, l.loaded_at, ?, coalesce(c.change, 'new'), "
                "CASE WHEN g.revised THEN 'revised' ELSE 'withdrawn' END, ? "
                f"FROM (SELECT * FROM fact_flow c WHERE {span.format(t='c')}) c JOIN _gone g ON {_key_eq('c', 'g')} "
                "JOIN dim_load l ON l.load_id = c.load_id",
                [stamp, load_id, *bounds],
            )
            self.execute(
                f"DELETE FROM fact_flow USING _gone g WHERE {span.format(t='fact_flow')} "
                f"AND {_key_eq('fact_flow', 'g')}",
                bounds,
            )
        fresh_cols = ", ".join("f." + c for c in STORED_COLUMNS)
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
