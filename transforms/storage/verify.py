"""``omh verify``: do the lake and the warehouse hold the same figures, partition by partition?

For every (source, reporter, year, month) the lake's leaf and the warehouse's current facts must
have the same number of rows, of non-null values and the same sum of ``value``. The warehouse is
also checked against itself: every ended state (``fact_flow_closed``) ended after it began, by a
loaded file; every current figure says how it arrived; no observation key appears twice; and
every loaded file had its lake leaves written.

The warehouse is the source of truth: ``--repair`` rewrites the differing leaves from it (and
removes leftovers of interrupted writes), then verifies again.
Exit status: 0 when everything agrees, 1 otherwise (each differing partition is named).
"""

from __future__ import annotations

import contextlib
import math
import sys
from dataclasses import dataclass, field

from transforms.config import Settings
from transforms.config import settings as get_settings
from transforms.stages.harmonize import KEY_COLUMNS


@dataclass
class Mismatch:
    partition: str
    source_id: str
    reporter_iso3: str
    year: int
    month: int
    lake: tuple | None  # (rows, values, sum) or None when the leaf is missing
    warehouse: tuple | None
    error: str | None = None

    def message(self) -> str:
        def side(name, t):
            if t is None:
                return f"{name}: no data"
            return f"{name}: {t[0]} rows, {t[1]} values, sum {_num(t[2])}"

        if self.error:
            return f"MISMATCH {self.partition}: lake file unreadable ({self.error}); {side('warehouse', self.warehouse)}"
        return f"MISMATCH {self.partition}: {side('lake', self.lake)}; {side('warehouse', self.warehouse)}"


@dataclass
class VerifyReport:
    partitions: int = 0
    rows: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.problems


def _num(v) -> str:
    if v is None:
        return "NULL"
    return f"{int(v)}" if float(v).is_integer() else f"{v:.6g}"


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def _partition(source_id: str, reporter: str, year: int, month: int) -> str:
    return f"reporter_iso3={reporter}/year={year}/month={month}/{source_id}.parquet"


def _compare(cfg: Settings, wh, lake_store) -> VerifyReport:
    report = VerifyReport()
    ware = {}
    for source_id, reporter, year, month, rows, values, total in wh.partition_totals():
        ware[(source_id, reporter, int(year), int(month))] = (int(rows), int(values), total)
    leaves, strays = lake_store.scan()
    lake = {leaf.key: leaf for leaf in leaves}
    report.strays = strays
    report.partitions = len(set(ware) | set(lake))
    report.rows = sum(t[0] for t in ware.values())
    for key in sorted(set(ware) | set(lake)):
        w = ware.get(key)
        leaf = lake.get(key)
        name = _partition(*key)
        if leaf is not None and leaf.error:
            report.mismatches.append(Mismatch(name, *key, None, w, leaf.error))
            continue
        lk = (leaf.rows, leaf.values, leaf.total) if leaf is not None else None
        if lk is None or w is None or lk[0] != w[0] or lk[1] != w[1] or not _same(lk[2], w[2]):
            report.mismatches.append(Mismatch(name, *key, lk, w))

    from transforms.storage.warehouse import SCHEMA_VERSION

    version = wh.schema_version()
    if version < SCHEMA_VERSION:  # read-only: not migrated here (``--repair`` and ingest migrate)
        report.problems.append(
            f"WAREHOUSE: schema version {version}, this omh writes version {SCHEMA_VERSION}; "
            "run `omh verify --repair` (or any `omh ingest`) to migrate it"
        )
        return report
    # The warehouse against itself: every ended state ended after it began, by a file that was
    # loaded; every current figure says how it arrived.
    for source_id, n in wh.fetchall(
        "SELECT c.source_id, count(*) FROM fact_flow_closed c "
        "LEFT JOIN dim_load b ON b.load_id = c.closed_by_load_id "
        "LEFT JOIN file_manifest m ON m.source_id = c.source_id AND m.sha256 = b.source_sha256 "
        "AND m.status = 'loaded' WHERE c.valid_to < c.valid_from OR m.sha256 IS NULL GROUP BY c.source_id"
    ):
        report.problems.append(
            f"WAREHOUSE {source_id}: {n} ended states of fact_flow_closed end before they begin "
            "or were ended by a file the manifest does not hold as loaded"
        )
    for table in ("fact_flow", "fact_flow_closed"):  # every figure names a load of its own source
        for source_id, n in wh.fetchall(
            f"SELECT f.source_id, count(*) FROM {table} f LEFT JOIN dim_load l ON l.load_id = f.load_id "
            "WHERE l.load_id IS NULL OR l.source_id <> f.source_id GROUP BY f.source_id"
        ):
            report.problems.append(
                f"WAREHOUSE {source_id}: {n} figures of {table} name no load of their source"
            )
    for source_id, n in wh.fetchall(
        "SELECT source_id, count(*) FROM fact_flow WHERE change IS NULL GROUP BY source_id"
    ):
        report.problems.append(
            f"WAREHOUSE {source_id}: {n} current figures of fact_flow do not say how they arrived"
        )
    keys = ", ".join(KEY_COLUMNS)
    dupes = wh.fetchall(
        f"SELECT source_id, count(*) FROM (SELECT {keys} FROM fact_flow GROUP BY {keys} HAVING count(*) > 1) d "
        "GROUP BY source_id"
    )
    for source_id, n in dupes:
        report.problems.append(
            f"WAREHOUSE {source_id}: {n} observation keys appear more than once in fact_flow"
        )
    for source_id, file_name in wh.fetchall(
        "SELECT source_id, file_name FROM file_manifest WHERE status = 'loaded' AND lake_written_at IS NULL"
    ):
        report.notes.append(f"{source_id}: {file_name} is loaded but its lake write did not finish")
    overlaps = wh.fetchall(
        "SELECT reporter_iso3, flow_type, unit, count(DISTINCT source_id) FROM fact_flow "
        "GROUP BY reporter_iso3, flow_type, unit, period_start, period_end HAVING count(DISTINCT source_id) > 1"
    )
    for reporter, flow_type, unit, n in sorted(set(overlaps))[:20]:
        report.notes.append(f"{reporter} {flow_type} ({unit}) is reported by {n} sources for the same period")
    return report


def verify(home=None, repair: bool = False) -> VerifyReport:
    """Compare lake and warehouse; with ``repair``, rewrite what differs from the warehouse first."""
    from transforms.storage import writelock
    from transforms.storage.lakestore import open_lake
    from transforms.storage.warehouse import Warehouse

    cfg = get_settings(home)
    lake = open_lake(cfg)
    # No load may change the lake or the warehouse while they are compared: the check waits for
    # the writer of the moment, like a writer (the embedded warehouse; PostgreSQL's loads commit
    # before they write the lake too, but have no such lock).
    quiet = cfg.duckdb_path is not None and not repair
    turn = writelock.quiet(cfg.duckdb_path, "omh verify") if quiet else contextlib.nullcontext()
    with turn, Warehouse(cfg, read_only=not repair, purpose="omh verify --repair") as wh:
        if repair:  # an older warehouse is migrated (and its views reinstalled) first
            wh.ensure_schema()
        report = _compare(cfg, wh, lake)
        if not repair or (report.ok and not report.strays and not report.notes):
            return report
        by_source: dict[str, list[tuple[str, int, int]]] = {}
        for m in report.mismatches:
            by_source.setdefault(m.source_id, []).append((m.reporter_iso3, m.year, m.month))
        for source_id, parts in sorted(by_source.items()):
            wh.write_lake(lake, source_id, parts)  # one commit per source on the Iceberg lake
        lake.remove_strays(report.strays)
        repaired = [m.partition for m in report.mismatches]
        again = _compare(cfg, wh, lake)
        if again.ok:
            for source_id, sha in wh.fetchall(
                "SELECT source_id, sha256 FROM file_manifest WHERE status = 'loaded' AND lake_written_at IS NULL"
            ):
                wh.lake_written(source_id, sha)
            again.notes = [n for n in again.notes if "lake write did not finish" not in n]
        again.repaired = repaired
        return again


def main(repair: bool = False, home=None, out=None) -> int:
    out = out or sys.stdout
    report = verify(home, repair=repair)
    for name in report.repaired:
        print(f"repaired {name}", file=out)
    for m in report.mismatches:
        print(m.message(), file=out)
    for p in report.problems:
        print(p, file=out)
    for s in report.strays:
        print(f"note: not a lake leaf: {s}", file=out)
    for n in report.notes:
        print(f"note: {n}", file=out)
    if report.ok:
        print(
            f"omh verify: {report.partitions} partitions, {report.rows} rows: lake and warehouse agree",
            file=out,
        )
        return 0
    print(
        f"omh verify: {len(report.mismatches)} of {report.partitions} partitions differ, "
        f"{len(report.problems)} warehouse problem(s)"
        + ("" if repair else "; `omh verify --repair` rewrites the lake from the warehouse"),
        file=out,
    )
    return 1
