"""The lake as an Iceberg table on object storage (``OMH_LAKE_URL=s3://...``): a real moto server
process (``.venv-moto``) and the SQL catalog in PostgreSQL, a schema, catalog name, namespace and
bucket of each test's own.

Loads hold the warehouse's rows; a second vintage replaces its partitions in one snapshot (the old
one still readable by time travel, a reader never sees a mix); ``omh verify`` finds a deleted or
overwritten data file and ``--repair`` rewrites the partition in one commit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_warehouse import CBP, CBP_ROWS, CBP_TOTAL, DARIEN, DARIEN_ROWS, DARIEN_TOTAL, postgres_schema

from transforms.config import settings
from transforms.ingest.pipeline import ingest_file
from transforms.storage.lakestore import open_lake
from transforms.storage.warehouse import FACT_COLUMNS, Warehouse, fact_schema
from transforms.tools import local_s3

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    if not local_s3.available():
        reason = f"{local_s3.server_command()} is missing (`make setup` creates .venv-moto)"
        if os.environ.get("OMH_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (OMH_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    with local_s3.LocalS3(log=tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@pytest.fixture()
def lake_home(s3, tmp_path, monkeypatch):
    """An embedded warehouse whose lake is an Iceberg table in a bucket of its own, cataloged in a
    PostgreSQL schema of its own."""
    tag = uuid.uuid4().hex[:10]
    bucket = f"omh-test-{tag}"
    s3.create_bucket(bucket)
    with postgres_schema() as url:
        env = {
            **s3.env,
            "OMH_HOME": str(tmp_path / "home"),
            "OMH_LAKE_URL": f"s3://{bucket}/lake",
            "OMH_LAKE_CATALOG_URL": url.replace("postgresql://", "postgresql+psycopg://", 1),
            "OMH_LAKE_CATALOG": f"omh_{tag}",
            "OMH_LAKE_NAMESPACE": f"ns_{tag}",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("OMH_WAREHOUSE_URL", raising=False)
        yield tmp_path / "home"


def _lake():
    return open_lake(settings())


def _omh(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "transforms.tools.cli", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )


def _q(arrow: pa.Table, sql: str) -> list[tuple]:
    """``sql`` run by DuckDB over ``arrow`` (registered as ``lake``)."""
    con = duckdb.connect()
    try:
        con.register("lake", arrow)
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _rows(table: pa.Table) -> list[tuple]:
    table = table.select(FACT_COLUMNS).cast(fact_schema())
    return sorted(tuple(r.values()) for r in table.to_pylist())


def _per_partition(arrow: pa.Table) -> dict:
    got = _q(
        arrow,
        "SELECT source_id, reporter_iso3, year, month, count(*), count(value), sum(value) FROM lake GROUP BY ALL",
    )
    return {tuple(r[:4]): (r[4], r[5], r[6]) for r in got}


def test_a_load_puts_the_warehouse_rows_in_the_table_one_snapshot_each(lake_home):
    assert ingest_file(CBP, "usa_cbp_swb_encounters").status == "loaded"
    assert ingest_file(DARIEN, "pan_darien_yearly").status == "loaded"

    lake = _lake()
    arrow = lake.arrow()  # what DuckDB reads: pyiceberg's scan as Arrow
    assert _q(arrow, "SELECT count(*), sum(value) FROM lake")[0] == (
        CBP_ROWS + DARIEN_ROWS,
        CBP_TOTAL + DARIEN_TOTAL,
    )
    with Warehouse(settings(), read_only=True) as wh:
        totals = {tuple(r[:4]): (r[4], r[5], r[6]) for r in wh.partition_totals()}
        facts = wh.con.sql(f"SELECT {', '.join(FACT_COLUMNS)} FROM v_fact").to_arrow_table()
    assert _per_partition(arrow) == totals
    assert _rows(arrow) == _rows(facts)  # every row, column for column

    table = lake.table()
    assert [s.summary.operation.value for s in table.snapshots()] == ["append", "append"]
    assert [s.summary["omh.source_id"] for s in table.snapshots()] == [
        "usa_cbp_swb_encounters",
        "pan_darien_yearly",
    ]
    assert [f.name for f in table.spec().fields] == ["reporter_iso3", "year", "month"]
    verify = _omh("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"{CBP_ROWS + DARIEN_ROWS} rows: lake and warehouse agree" in verify.stdout


def _revised_darien(folder: Path) -> tuple[Path, int]:
    """Darien with Brazil's figure of every year raised by 1000: four partitions change."""
    lines = DARIEN.read_text(encoding="utf-8").splitlines()
    out, changed = [], 0
    for line in lines:
        name, year, total = line.split(",")
        if name == "Brasil":
            total, changed = str(int(total) + 1000), changed + 1
        out.append(",".join((name, year, total)))
    path = folder / "panama_darien_revised.csv"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path, changed


def test_a_second_vintage_replaces_its_partitions_in_one_snapshot(lake_home, tmp_path):
    assert ingest_file(DARIEN, "pan_darien_yearly").status == "loaded"
    lake = _lake()
    first = lake.table().current_snapshot().snapshot_id
    revised, changed = _revised_darien(tmp_path)
    assert changed == 4

    # A reader scanning the current snapshot over and over while the new vintage is committed.
    seen: list[float] = []
    stop = threading.Event()

    def reader() -> None:
        other = open_lake(settings())  # its own catalog connection, as another machine would
        while not stop.is_set():
            seen.append(float(pa.compute.sum(other.arrow(columns=("value",)).column("value")).as_py()))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert ingest_file(revised, "pan_darien_yearly").status == "loaded"
    finally:
        stop.set()
        thread.join(60)
    new_total = DARIEN_TOTAL + 4 * 1000
    assert seen and set(seen) <= {float(DARIEN_TOTAL), float(new_total)}, sorted(set(seen))

    table = lake.table()
    snapshots = table.snapshots()
    assert len(snapshots) == 2
    second = snapshots[-1]
    assert second.parent_snapshot_id == first  # one commit: nothing in between
    assert second.summary.operation.value == "overwrite"
    # Whole files of the source replaced, one per changed partition; the others untouched.
    assert second.summary["deleted-data-files"] == second.summary["added-data-files"] == "4"

    def total(snapshot_id=None) -> float:
        return _q(lake.arrow(snapshot_id=snapshot_id), "SELECT sum(value) FROM lake")[0][0]

    assert total(first) == DARIEN_TOTAL  # time travel: the old vintage whole
    assert total() == new_total
    brazil_then = lake.arrow(snapshot_id=first).filter(
        pa.compute.equal(pa.compute.field("citizenship_iso3"), "BRA")
    )
    assert sorted(brazil_then.column("value").to_pylist()) == [262, 339, 3047, 8370]
    verify = _omh("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_write_with_rows_outside_its_partitions_changes_nothing(lake_home):
    assert ingest_file(DARIEN, "pan_darien_yearly").status == "loaded"
    lake = _lake()
    before = lake.table().current_snapshot().snapshot_id
    rows = lake.arrow()
    wanted = sorted(
        {
            (r, y, m)
            for r, y, m in zip(
                *(rows.column(c).to_pylist() for c in ("reporter_iso3", "year", "month")), strict=True
            )
        }
    )
    with pytest.raises(ValueError, match="outside the partitions written"):
        lake.write(rows.to_batches(), "pan_darien_yearly", wanted[:1])
    assert lake.table().current_snapshot().snapshot_id == before


def _facts(source_id: str, n: int, value: float) -> pa.Table:
    """``n`` rows of ``source_id`` in partitions (PAN, 2024, 1) and (PAN, 2024, 2)."""
    base = {f.name: None for f in fact_schema()} | {
        "source_id": source_id,
        "reporter_iso3": "PAN",
        "year": 2024,
    }
    rows = [base | {"month": 1 + i % 2, "source_row": i, "value": value} for i in range(n)]
    return pa.Table.from_pylist(rows, schema=fact_schema())


def test_a_writer_that_loses_the_commit_race_retries_on_the_newer_snapshot(lake_home, monkeypatch):
    """Two machines' loads of two sources at once: the one whose snapshot went stale retries and
    both are kept; a large load's several data files per partition are all replaced by the next."""
    import transforms.storage.iceberg_lake as iceberg_lake

    monkeypatch.setattr(iceberg_lake, "CHUNK_ROWS", 10)  # 25 rows: three data files per partition
    parts = [("PAN", 2024, 1), ("PAN", 2024, 2)]
    one, other = _lake(), _lake()
    assert one.write(_facts("a", 25, 1.0).to_batches(max_chunksize=5), "a", parts) == 25
    stale = other.table()  # read before the commit below
    assert one.write(_facts("b", 25, 2.0).to_batches(), "b", parts) == 25
    fresh = other.table
    handed = iter([stale])
    monkeypatch.setattr(other, "table", lambda create=True: next(handed, None) or fresh(create))
    assert other.write(_facts("a", 4, 5.0).to_batches(), "a", parts) == 4  # first commit refused, retried

    table = one.table()
    snapshots = table.snapshots()
    assert [s.parent_snapshot_id for s in snapshots[1:]] == [s.snapshot_id for s in snapshots[:-1]]
    assert (
        snapshots[-1].summary["deleted-data-files"] == "6"
        and snapshots[-1].summary["added-data-files"] == "2"
    )
    got = _q(one.arrow(), "SELECT source_id, count(*), sum(value) FROM lake GROUP BY ALL ORDER BY ALL")
    assert got == [("a", 4, 20.0), ("b", 25, 50.0)]


def _data_files(lake) -> dict[tuple, str]:
    """(source, reporter, year, month) -> its data file's path."""
    return {leaf.key: leaf.path for leaf in lake.scan()[0]}


def test_verify_names_a_deleted_and_an_overwritten_data_file_and_repair_rewrites_them(lake_home):
    assert ingest_file(CBP, "usa_cbp_swb_encounters").status == "loaded"
    assert _omh("verify").returncode == 0
    lake = _lake()
    table = lake.table()
    files = _data_files(lake)
    (gone_key, gone), (bad_key, bad) = sorted(files.items())[:2]
    fs = table.io.fs_by_scheme("s3", gone.split("/")[2])
    fs.delete_file(gone[len("s3://") :])
    # The other partition's object replaced by a file of the same rows with wrong values.
    wrong = pq.read_table(bad[len("s3://") :], filesystem=fs)
    wrong = wrong.set_column(
        wrong.schema.get_field_index("value"), "value", pa.compute.multiply(wrong.column("value"), 2)
    )
    pq.write_table(wrong, bad[len("s3://") :], filesystem=fs)

    check = _omh("verify")
    assert check.returncode == 1, check.stdout
    for key in (gone_key, bad_key):
        source, reporter, year, month = key
        assert f"MISMATCH reporter_iso3={reporter}/year={year}/month={month}/{source}.parquet" in check.stdout
    snapshots = len(lake.table().snapshots())

    repair = _omh("verify", "--repair")
    assert repair.returncode == 0, repair.stdout + repair.stderr
    assert repair.stdout.count("repaired ") == 2
    assert len(lake.table().snapshots()) == snapshots + 1  # both partitions in one commit
    again = _omh("verify")
    assert again.returncode == 0, again.stdout
    arrow = lake.arrow()
    assert _q(arrow, "SELECT count(*), sum(value) FROM lake")[0] == (CBP_ROWS, CBP_TOTAL)
