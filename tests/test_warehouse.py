"""The warehouse on both engines, with the real files: DuckDB (embedded) and PostgreSQL (COPY).

Real CBP and Darién files go through the whole pipeline (``ingest_file``) into a DuckDB file and
into a PostgreSQL schema of their own; the totals must be the sources' own and the same on both.
Reloading changes nothing; a revised file supersedes the earlier figures and the history keeps
both; ``omh verify`` agrees after loads and names the partition after a lake file is tampered with.

PostgreSQL: ``OMH_TEST_POSTGRES_URL`` (default postgresql://postgres@127.0.0.1:5432/test); each
test module works in a schema it creates and drops. An unreachable server skips these tests,
unless ``OMH_REQUIRE_POSTGRES=1`` (CI), where it fails them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from transforms.config import settings
from transforms.ingest.check import Checked
from transforms.ingest.pipeline import ingest_file
from transforms.storage.warehouse import (
    FACT_COLUMNS,
    SCHEMA_VERSION,
    FactSink,
    Warehouse,
    WarehouseError,
    migrations,
    split_statements,
    with_schema,
)

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "data" / "realdata" / "raw"
CBP = RAW / "usa_cbp_sbo-encounters-fy22-fy25-aug.csv"
DARIEN = RAW / "panama_darien_2019-2022_by_nationality_derived.csv"
PG_URL = os.environ.get("OMH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

CBP_ROWS, CBP_TOTAL = 1936, 7_421_677
DARIEN_ROWS, DARIEN_TOTAL = 28, 404_516


# ---------------------------------------------------------------------------- helpers


def require_postgres() -> None:
    """Skip when the server is unreachable, or fail when CI requires it (OMH_REQUIRE_POSTGRES=1)."""
    import psycopg

    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except Exception as exc:
        reason = f"PostgreSQL not reachable at {PG_URL}: {str(exc).strip().splitlines()[0]}"
        if os.environ.get("OMH_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (OMH_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)


@contextlib.contextmanager
def postgres_schema():
    """A fresh schema of the test database, dropped afterwards; yields its warehouse URL."""
    import psycopg
    from psycopg import sql

    require_postgres()
    name = f"omh_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_URL, autocommit=True) as con:
        con.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield with_schema(PG_URL, name)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as con:
            con.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


class Env:
    """One installation: OMH_HOME and warehouse URL, activated around pipeline calls."""

    def __init__(self, engine: str, home: Path, url: str | None):
        self.engine, self.home, self.url = engine, home, url

    @contextlib.contextmanager
    def active(self):
        mp = pytest.MonkeyPatch()
        mp.setenv("OMH_HOME", str(self.home))
        if self.url:
            mp.setenv("OMH_WAREHOUSE_URL", self.url)
        else:
            mp.delenv("OMH_WAREHOUSE_URL", raising=False)
        try:
            yield
        finally:
            mp.undo()

    def environ(self) -> dict:
        env = {**os.environ, "OMH_HOME": str(self.home)}
        env.pop("OMH_WAREHOUSE_URL", None)
        if self.url:
            env["OMH_WAREHOUSE_URL"] = self.url
        return env

    def ingest(self, path: Path, source_id: str):
        with self.active():
            return ingest_file(path, source_id)

    def sql(self, query: str, params=None) -> list[tuple]:
        with self.active(), Warehouse(settings(), read_only=True) as wh:
            return wh.query(query, params)[1]

    def omh(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "transforms.tools.cli", *args],
            capture_output=True,
            text=True,
            env=self.environ(),
            timeout=300,
        )


@contextlib.contextmanager
def installation(engine: str, home: Path):
    if engine == "postgres":
        with postgres_schema() as url:
            yield Env(engine, home, url)
    else:
        yield Env(engine, home, None)


def revised_darien(
    folder: Path, name: str = "panama_darien_revised.csv", old="Brasil,2022,3047", new="Brasil,2022,3050"
) -> Path:
    text = DARIEN.read_text(encoding="utf-8")
    assert old in text
    path = folder / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- fixtures

LOAD_SECONDS: dict[str, float] = {}


def _loaded(engine: str, tmp_path_factory):
    home = tmp_path_factory.mktemp(f"wh_{engine}")
    with installation(engine, home) as env:
        started = time.perf_counter()
        cbp = env.ingest(CBP, "usa_cbp_swb_encounters")
        LOAD_SECONDS[engine] = time.perf_counter() - started
        darien = env.ingest(DARIEN, "pan_darien_yearly")
        assert cbp.status == "loaded", cbp.reason
        assert darien.status == "loaded", darien.reason
        yield env


@pytest.fixture(scope="module")
def duck(tmp_path_factory):
    yield from _loaded("duckdb", tmp_path_factory)


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    require_postgres()
    yield from _loaded("postgres", tmp_path_factory)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def loaded(request):
    return request.getfixturevalue("duck" if request.param == "duckdb" else "pg")


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh(request, tmp_path):
    """An empty installation of each engine."""
    with installation(request.param, tmp_path / "home") as env:
        yield env


# ---------------------------------------------------------------------------- loads


def test_real_files_load_with_the_sources_own_totals(loaded):
    rows = dict(
        (s, (n, v))
        for s, n, v in loaded.sql("SELECT source_id, count(*), sum(value) FROM fact_flow GROUP BY source_id")
    )
    assert rows["usa_cbp_swb_encounters"] == (CBP_ROWS, CBP_TOTAL)
    assert rows["pan_darien_yearly"] == (DARIEN_ROWS, DARIEN_TOTAL)
    fy22 = loaded.sql(
        "SELECT sum(value) FROM fact_flow WHERE source_id = 'usa_cbp_swb_encounters' "
        "AND period_start BETWEEN DATE '2021-10-01' AND DATE '2022-09-30'"
    )
    assert fy22[0][0] == 2_378_944
    assert (
        loaded.sql("SELECT sum(value) FROM fact_flow WHERE source_id = 'pan_darien_yearly' AND year = 2022")[
            0
        ][0]
        == 248_284
    )
    # Every figure is also the first vintage in the history, open.
    hist = loaded.sql(
        "SELECT count(*), sum(value), min(change), max(change) FROM fact_flow_history WHERE valid_to IS NULL"
    )
    assert hist[0] == (CBP_ROWS + DARIEN_ROWS, CBP_TOTAL + DARIEN_TOTAL, "new", "new")
    assert loaded.sql("SELECT max(version) FROM schema_version")[0][0] == SCHEMA_VERSION


@pytest.mark.postgres
def test_duckdb_and_postgres_hold_the_same_figures(duck, pg):
    query = (
        "SELECT source_id, reporter_iso3, flow_type, unit, period_start, count(*), sum(value) FROM fact_flow "
        "GROUP BY source_id, reporter_iso3, flow_type, unit, period_start "
        "ORDER BY source_id, reporter_iso3, flow_type, unit, period_start"
    )
    a, b = duck.sql(query), pg.sql(query)
    assert len(a) > 100
    assert a == b
    view = "SELECT region, flow_type, unit, period_start, value FROM pub_regional_totals ORDER BY 1, 2, 3, 4"
    assert duck.sql(view) == pg.sql(view)
    print(
        f"\nCBP ingest (whole pipeline): duckdb {LOAD_SECONDS.get('duckdb', 0):.2f}s, "
        f"postgres {LOAD_SECONDS.get('postgres', 0):.2f}s"
    )


def test_loading_the_same_file_again_changes_nothing(loaded):
    counts = (
        "SELECT (SELECT count(*) FROM fact_flow), (SELECT count(*) FROM fact_flow_history), "
        "(SELECT count(*) FROM file_manifest), (SELECT count(*) FROM file_coverage)"
    )
    before = loaded.sql(counts)
    leaves = {p: p.stat().st_mtime_ns for p in (loaded.home / "lake").rglob("*.parquet")}
    again = loaded.ingest(CBP, "usa_cbp_swb_encounters")
    assert again.status == "skipped", again.reason
    # The same bytes under another name are the same file.
    copy = loaded.home / "cbp_copy_under_another_name.csv"
    shutil.copy(CBP, copy)
    assert loaded.ingest(copy, "usa_cbp_swb_encounters").status == "skipped"
    assert loaded.sql(counts) == before
    assert {p: p.stat().st_mtime_ns for p in (loaded.home / "lake").rglob("*.parquet")} == leaves


def test_every_pub_view_hides_counts_from_1_to_4(loaded):
    views = [
        r[0]
        for r in loaded.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'VIEW' AND table_name LIKE 'pub%' ORDER BY 1"
        )
    ]
    assert views == [
        "pub_corridor",
        "pub_flow_by_period",
        "pub_flow_monthly",
        "pub_flow_yoy",
        "pub_mirror",
        "pub_regional_totals",
    ]
    for view in views:
        assert loaded.sql(f"SELECT count(*) FROM {view}")[0][0] > 0, view
        # pub_mirror publishes two figures a row (the two sides of a mirror pair).
        for column in ("a_value", "b_value") if view == "pub_mirror" else ("value",):
            small = loaded.sql(f"SELECT count(*) FROM {view} WHERE {column} >= 1 AND {column} <= 4")
            assert small[0][0] == 0, (view, column)
    # The real Darién corridor has small cells (e.g. 2019): they are suppressed, with a partner.
    suppressed = loaded.sql(
        "SELECT count(*) FILTER (WHERE suppression = 'primary'), count(*) FILTER (WHERE suppression = 'secondary') "
        "FROM pub_corridor WHERE reporter_iso3 = 'PAN'"
    )[0]
    true_small = loaded.sql(
        "SELECT count(*) FROM v_corridor WHERE reporter_iso3 = 'PAN' AND value > 0 AND value < 5"
    )[0][0]
    assert suppressed[0] == true_small
    if true_small == 1:
        assert suppressed[1] >= 1


def test_disclosure_holds_on_the_real_files_at_any_threshold(loaded):
    from test_views import check_disclosure

    with loaded.active(), Warehouse(settings()) as wh:
        try:
            for k in (5, 100, 5000):
                wh.set_config("disclosure_threshold", k)
                check_disclosure(wh, k)
            assert wh.query("SELECT count(*) FROM pub_corridor WHERE suppression = 'secondary'")[1][0][0] > 0
        finally:
            wh.set_config("disclosure_threshold", 5)


def test_omh_verify_passes_then_names_a_tampered_partition(loaded):
    ok = loaded.omh("verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "agree" in ok.stdout
    leaf = sorted((loaded.home / "lake" / "reporter_iso3=USA").rglob("usa_cbp_swb_encounters.parquet"))[0]
    table = pq.read_table(leaf)
    values = table.column("value").to_pylist()
    values[0] = (values[0] or 0) + 1
    pq.write_table(
        table.set_column(table.column_names.index("value"), "value", pa.array(values, pa.float64())), leaf
    )
    bad = loaded.omh("verify")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    part = leaf.relative_to(loaded.home / "lake").as_posix()
    assert f"MISMATCH {part}" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr
    # A deleted leaf is named too; --repair rewrites both from the warehouse.
    other = sorted((loaded.home / "lake" / "reporter_iso3=PAN").rglob("*.parquet"))[0]
    other.unlink()
    bad = loaded.omh("verify")
    assert bad.returncode == 1 and other.relative_to(loaded.home / "lake").as_posix() in bad.stdout
    fixed = loaded.omh("verify", "--repair")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "repaired" in fixed.stdout
    assert loaded.omh("verify").returncode == 0


# ---------------------------------------------------------------------------- vintages


def test_a_revised_file_supersedes_and_the_history_keeps_both(fresh, tmp_path):
    assert fresh.ingest(DARIEN, "pan_darien_yearly").status == "loaded"
    first_loaded = fresh.sql("SELECT max(valid_from) FROM fact_flow_history")[0][0]
    time.sleep(0.01)
    revised = fresh.ingest(revised_darien(tmp_path), "pan_darien_yearly")
    assert revised.status == "loaded", revised.reason

    assert fresh.sql("SELECT sum(value) FROM fact_flow WHERE year = 2022")[0][0] == 248_284 + 3
    assert fresh.sql("SELECT count(*), sum(value) FROM fact_flow")[0] == (DARIEN_ROWS, DARIEN_TOTAL + 3)
    brazil = fresh.sql(
        "SELECT value, valid_to IS NULL, change, closed_as, source_file FROM fact_flow_history "
        "WHERE citizenship_iso3 = 'BRA' AND year = 2022 ORDER BY valid_from"
    )
    assert [(r[0], r[1], r[2], r[3]) for r in brazil] == [
        (3047, False, "new", "revised"),
        (3050, True, "revised", None),
    ]
    assert brazil[0][4] == DARIEN.name and brazil[1][4] == "panama_darien_revised.csv"
    # Unchanged observations keep their first vintage: one history row each.
    assert fresh.sql("SELECT count(*) FROM fact_flow_history")[0][0] == DARIEN_ROWS + 1

    revisions = fresh.sql(
        "SELECT citizenship_iso3, change, previous_value, value, difference, file FROM v_revisions"
    )
    assert revisions == [("BRA", "revised", 3047, 3050, 3, "panama_darien_revised.csv")]
    manifest = fresh.sql(
        "SELECT rows_new, rows_revised, rows_withdrawn, rows_unchanged FROM file_manifest "
        "WHERE file_name = 'panama_darien_revised.csv'"
    )
    assert manifest == [(0, 1, 0, DARIEN_ROWS - 1)]

    # "As published on date X" is a plain query on the history.
    as_of = (
        "SELECT sum(value) FROM fact_flow_history WHERE year = 2022 "
        "AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"
    )
    assert fresh.sql(as_of, [first_loaded, first_loaded])[0][0] == 248_284
    now = dt.datetime.now()
    assert fresh.sql(as_of, [now, now])[0][0] == 248_287
    # The lake follows the warehouse.
    verify = fresh.omh("verify")
    assert verify.returncode == 0, verify.stdout
    lake = duckdb.sql(
        f"SELECT sum(value) FROM read_parquet('{fresh.home.as_posix()}/lake/**/*.parquet', hive_partitioning = true) "
        "WHERE year = 2022"
    ).fetchall()
    assert lake[0][0] == 248_287


def test_a_resent_file_replaces_its_periods_only(fresh, tmp_path):
    """Figures of the covered periods missing from the resent file are withdrawn; other periods stay."""
    assert fresh.ingest(DARIEN, "pan_darien_yearly").status == "loaded"
    lines = DARIEN.read_text(encoding="utf-8").splitlines()
    only_2022 = [lines[0]] + [x for x in lines[1:] if ",2022," in x and not x.startswith("Cuba,")]
    resent = tmp_path / "panama_darien_2022_only.csv"
    resent.write_text("\n".join(only_2022) + "\n", encoding="utf-8")
    cuba = fresh.sql("SELECT value FROM fact_flow WHERE citizenship_iso3 = 'CUB' AND year = 2022")[0][0]
    result = fresh.ingest(resent, "pan_darien_yearly")
    assert result.status == "loaded", result.reason
    assert (
        fresh.sql("SELECT count(*) FROM fact_flow WHERE citizenship_iso3 = 'CUB' AND year = 2022")[0][0] == 0
    )
    assert fresh.sql("SELECT sum(value) FROM fact_flow WHERE year < 2022")[0][0] == DARIEN_TOTAL - 248_284
    assert fresh.sql("SELECT sum(value) FROM fact_flow WHERE year = 2022")[0][0] == 248_284 - cuba
    withdrawn = fresh.sql(
        "SELECT citizenship_iso3, previous_value, difference FROM v_revisions WHERE change = 'withdrawn'"
    )
    assert withdrawn == [("CUB", cuba, -cuba)]
    assert fresh.omh("verify").returncode == 0


def test_an_interrupted_lake_write_is_finished_by_the_next_run(fresh):
    """A crash after the warehouse commit but before the lake write: the rerun completes it."""
    assert fresh.ingest(DARIEN, "pan_darien_yearly").status == "loaded"
    with fresh.active(), Warehouse(settings()) as wh:
        wh.execute("UPDATE file_manifest SET lake_written_at = NULL")
    shutil.rmtree(fresh.home / "lake")
    assert fresh.omh("verify").returncode == 1
    again = fresh.ingest(DARIEN, "pan_darien_yearly")
    assert again.status == "loaded", again.reason
    assert fresh.sql("SELECT count(*), sum(value) FROM fact_flow")[0] == (DARIEN_ROWS, DARIEN_TOTAL)
    assert fresh.sql("SELECT count(*) FROM fact_flow_history")[0][0] == DARIEN_ROWS
    assert fresh.omh("verify").returncode == 0
    assert fresh.ingest(DARIEN, "pan_darien_yearly").status == "skipped"


def test_lake_leaves_written_with_a_loads_constants_equal_leaves_read_back_whole(loaded, tmp_path):
    """The lake writer adds the columns a load says are constant as Arrow constants instead of
    reading them back, once a scan shows every fact holds them: the leaves read back exactly as
    leaves written from every column, and a column the facts do not hold as said is read."""
    source = "usa_cbp_swb_encounters"
    with loaded.active(), Warehouse(settings()) as wh:
        parts = [
            (r, int(y), int(m))
            for r, y, m in wh.fetchall(
                "SELECT DISTINCT reporter_iso3, year, month FROM fact_flow WHERE source_id = ?", [source]
            )
        ]
        first = wh.fetchall(
            f"SELECT {', '.join(FACT_COLUMNS)} FROM v_fact WHERE source_id = ? LIMIT 1", [source]
        )
        constants = dict(zip(FACT_COLUMNS, first[0], strict=True))  # every column offered
        fixed = wh._read_partitions(source, parts, lambda sql, fixed: fixed, constants)
        assert {"source_id", "source_file", "source_sha256", "loaded_at", "vintage"} <= set(fixed)
        assert "value" not in fixed and "source_row" not in fixed  # these vary: read from the facts
        assert len(parts) > 1
        assert wh.write_lake(tmp_path / "with", source, parts, constants=constants) == wh.write_lake(
            tmp_path / "without", source, parts
        )
    leaves = sorted(p.relative_to(tmp_path / "without") for p in (tmp_path / "without").rglob("*.parquet"))
    assert leaves == sorted(p.relative_to(tmp_path / "with") for p in (tmp_path / "with").rglob("*.parquet"))
    for leaf in leaves:
        a, b = pq.read_table(tmp_path / "with" / leaf), pq.read_table(tmp_path / "without" / leaf)
        assert a.schema.equals(b.schema), leaf  # no dictionary type leaks into the leaf's schema
        key = [(c, "ascending") for c in ("source_row", "source_column", "detail", "sex", "citizenship_iso3")]
        assert a.sort_by(key).equals(b.sort_by(key)), leaf


# ---------------------------------------------------------------------------- schema versions


def test_a_version_1_warehouse_upgrades_in_place(duck, tmp_path):
    """A warehouse made before migrations existed (schema version 1) upgrades on the next run."""
    home = tmp_path / "old"
    home.mkdir()
    old = duckdb.connect(str(home / "warehouse.duckdb"))
    for stmt in split_statements((ROOT / "sql" / "migrations" / "0001_base.sql").read_text(), "duckdb"):
        old.execute(stmt)
    old.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    old.execute("INSERT INTO schema_version VALUES (1, now())")
    old.execute(f"ATTACH '{duck.home / 'warehouse.duckdb'}' AS cur (READ_ONLY)")
    cols = ", ".join(FACT_COLUMNS)
    old.execute(f"INSERT INTO fact_flow SELECT {cols} FROM cur.v_fact WHERE source_id = 'pan_darien_yearly'")
    old.execute(
        "INSERT INTO file_manifest SELECT source_id, sha256, file_name, landing_path, size_bytes, received_at, vintage, "
        "status, rows_loaded, warnings, reason, report_path, processed_at FROM cur.file_manifest "
        "WHERE source_id = 'pan_darien_yearly'"
    )
    old.execute("CREATE VIEW v_reporter_summary AS SELECT 1 AS x")  # an old view, replaced
    old.close()

    env = Env("duckdb", home, None)
    with env.active(), Warehouse(settings()) as wh:
        assert wh.schema_version() == 1
        wh.ensure_schema()
        assert wh.schema_version() == SCHEMA_VERSION
        sha = wh.fetchall("SELECT sha256 FROM file_manifest")[0][0]
        assert wh.is_loaded("pan_darien_yearly", sha)
    assert env.sql("SELECT count(*), sum(value) FROM fact_flow_history WHERE valid_to IS NULL")[0] == (
        DARIEN_ROWS,
        DARIEN_TOTAL,
    )
    assert env.sql("SELECT count(*) FROM file_coverage")[0][0] == 4
    assert env.sql("SELECT files FROM v_reporter_summary WHERE reporter_iso3 = 'PAN'")[0][0] == 1
    # Running it again is a no-op.
    with env.active(), Warehouse(settings()) as wh:
        assert wh.migrate() == []
        assert wh.install_views() is False


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_version_2_history_upgrades_to_the_same_states(engine, tmp_path):
    """Version 2 kept every state in a table (the current ones twice); version 3 keeps the ended
    ones in fact_flow_closed and shows fact_flow_history as a view. A version-2 warehouse holding
    a new, a revised and a withdrawn figure upgrades to the same history, revisions and current
    figures as the same two files loaded by this version."""
    import pandas as pd
    from test_views import load, obs

    from transforms.config import Settings

    first = [
        obs("tst_hist", "PAN", c, dt.date(2024, 1, 1), v) for c, v in (("VEN", 10), ("CUB", 20), ("HTI", 30))
    ]
    second = [dict(first[0]), dict(first[1], value=25)]  # VEN unchanged, CUB revised, HTI withdrawn
    order = "ORDER BY citizenship_iso3, valid_from"
    history = f"SELECT * FROM fact_flow_history {order}"
    revisions = "SELECT citizenship_iso3, change, previous_value, value, file FROM v_revisions ORDER BY 1"
    with installation(engine, tmp_path / "new") as env:
        (tmp_path / "new").mkdir()
        url = env.url or f"duckdb:///{tmp_path / 'new' / 'warehouse.duckdb'}"
        with Warehouse(Settings(home=tmp_path / "new", warehouse_url=url)) as wh:
            wh.ensure_schema()
            load(wh, first, "first.csv")
            time.sleep(0.01)
            load(wh, second, "second.csv")
            cols, want = wh.query(history)
            want_revisions = wh.fetchall(revisions)
            tables = {}
            for t in ("file_manifest", "file_coverage"):
                names, rows = wh.query(f"SELECT * FROM {t}")
                tables[t] = pd.DataFrame(rows, columns=names)
            current = pd.DataFrame(
                wh.fetchall(f"SELECT {', '.join(FACT_COLUMNS)} FROM v_fact"), columns=FACT_COLUMNS
            )
    assert [r[cols.index("closed_as")] for r in want] == ["revised", None, "withdrawn", None]
    assert [r[:3] for r in want_revisions] == [("CUB", "revised", 20), ("HTI", "withdrawn", 30)]

    with installation(engine, tmp_path / "old") as env:
        (tmp_path / "old").mkdir()
        url = env.url or f"duckdb:///{tmp_path / 'old' / 'warehouse.duckdb'}"
        with Warehouse(Settings(home=tmp_path / "old", warehouse_url=url)) as wh:
            with wh.transaction():  # a version-2 warehouse, with a view on the history table
                wh.execute(
                    "CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)"
                )
                for version, path in migrations()[:2]:
                    for stmt in split_statements(path.read_text(encoding="utf-8"), wh.engine):
                        wh.execute(stmt)
                    wh.execute("INSERT INTO schema_version VALUES (?, ?)", [version, dt.datetime.now()])
                wh.execute("CREATE VIEW v_states AS SELECT count(*) AS n FROM fact_flow_history")
                wh.copy_into("fact_flow", current)
                wh.copy_into("fact_flow_history", pd.DataFrame(want, columns=cols))
                for name, frame in tables.items():  # the columns a version-2 table has
                    old = set(wh.query(f"SELECT * FROM {name} LIMIT 0")[0])
                    wh.copy_into(name, frame[[c for c in frame.columns if c in old]])
            assert wh.schema_version() == 2
            wh.ensure_schema()
            assert wh.schema_version() == SCHEMA_VERSION
            assert wh.query(history) == (cols, want)
            assert wh.fetchall(revisions) == want_revisions
            assert wh.fetchall("SELECT citizenship_iso3, change FROM fact_flow ORDER BY 1") == [
                ("CUB", "revised"),
                ("VEN", "new"),
            ]
            assert wh.fetchall("SELECT count(*) FROM fact_flow_closed")[0][0] == 2


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_file_larger_than_a_row_group_loads_whole(engine, tmp_path):
    """More rows than a DuckDB row group (122,880), loaded then revised in full: nothing is lost."""
    import pandas as pd
    from test_views import load, obs

    from transforms.config import Settings

    base = obs("tst_big", "PAN", "VEN", dt.date(2024, 1, 1), 1)
    n = 130_000
    frame = pd.DataFrame([base] * n).assign(
        detail=[f"cell {i}" for i in range(n)], value=[float(i % 97) for i in range(n)]
    )
    with installation(engine, tmp_path / "home") as env:
        url = env.url or f"duckdb:///{tmp_path / 'home' / 'warehouse.duckdb'}"
        (tmp_path / "home").mkdir(exist_ok=True)
        with Warehouse(Settings(home=tmp_path / "home", warehouse_url=url)) as wh:
            wh.ensure_schema()
            first = load(wh, frame, "big.csv")
            assert (first.rows, first.new) == (n, n)
            total = float(frame["value"].sum())
            assert wh.fetchall("SELECT count(*), sum(value) FROM fact_flow")[0] == (n, total)
            revised = frame.assign(value=frame["value"] + 1)
            second = load(wh, revised, "big_revised.csv")
            assert (second.revised, second.unchanged) == (n, 0)
            assert wh.fetchall("SELECT count(*), sum(value) FROM fact_flow")[0] == (n, total + n)
            assert wh.fetchall("SELECT count(*) FROM fact_flow_history")[0][0] == 2 * n
            assert wh.fetchall("SELECT count(*) FROM fact_flow_history WHERE valid_to IS NULL")[0][0] == n
            assert wh.fetchall("SELECT count(*) FROM v_revisions")[0][0] == n


def spy_on_sink(monkeypatch) -> list[bool]:
    """Whether each call of a ``FactSink`` wrote the file's observations (True) or declined."""
    sunk: list[bool] = []
    sink = FactSink.__call__

    def spy(self, *args):
        relation = sink(self, *args)
        sunk.append(relation is not None)
        return relation

    monkeypatch.setattr(FactSink, "__call__", spy)
    return sunk


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_first_load_goes_straight_in_with_the_outcome_of_the_diff(engine, tmp_path, monkeypatch):
    """A file whose period span holds no figure yet is written straight into fact_flow (no
    staging copy, no diff): the facts, coverage, manifest counts and lake leaves are those of the
    diffing load, and a second file of other periods takes the straight path too."""
    taken: list[str] = []
    straight = Warehouse._load_first

    def spy(self, *args, **kwargs):
        taken.append(args[-1])
        return straight(self, *args, **kwargs)

    monkeypatch.setattr(Warehouse, "_load_first", spy)
    # The leaves of such a load come from the file's own DuckDB table (no read back).
    from_file: list[str] = []
    own_lake = Checked.write_lake

    def spy_lake(self, lake, source_id, partitions, file_name, *args):
        from_file.append(file_name)
        return own_lake(self, lake, source_id, partitions, file_name, *args)

    monkeypatch.setattr(Checked, "write_lake", spy_lake)
    # On DuckDB, harmonize writes such a file's observations into fact_flow itself (FactSink).
    sunk = spy_on_sink(monkeypatch)
    lineage = {"loaded_at"}  # the only column that differs between two loads of the same bytes
    columns = ", ".join(c for c in FACT_COLUMNS if c not in lineage)
    lines = DARIEN.read_text(encoding="utf-8").splitlines()
    older = tmp_path / "darien_before_2022.csv"
    older.write_text(
        "\n".join([lines[0], *(x for x in lines[1:] if ",2022," not in x)]) + "\n", encoding="utf-8"
    )
    recent = tmp_path / "darien_2022.csv"
    recent.write_text(
        "\n".join([lines[0], *(x for x in lines[1:] if ",2022," in x)]) + "\n", encoding="utf-8"
    )

    def outcome(env) -> tuple:
        for path in (CBP, older, recent):
            result = env.ingest(path, "usa_cbp_swb_encounters" if path == CBP else "pan_darien_yearly")
            assert result.status == "loaded", result.reason
        leaves = {
            p.relative_to(env.home / "lake"): pq.read_table(p).drop_columns(sorted(lineage)).to_pylist()
            for p in (env.home / "lake").rglob("*.parquet")
        }
        return (
            env.sql(f"SELECT {columns}, change FROM v_fact ORDER BY {columns}"),
            env.sql("SELECT * FROM file_coverage ORDER BY 1, 2, 3, 4, 5"),
            env.sql(
                "SELECT file_name, rows_loaded, rows_new, rows_revised, rows_withdrawn, rows_unchanged "
                "FROM file_manifest ORDER BY file_name"
            ),
            {
                k: sorted(v, key=lambda r: (r["source_row"], r["source_column"] or ""))
                for k, v in leaves.items()
            },
        )

    with installation(engine, tmp_path / "straight") as env:
        straight_outcome = outcome(env)
        assert env.omh("verify").returncode == 0
    assert taken == [CBP.name, older.name, recent.name]
    assert from_file == taken
    assert sunk == ([True] * 3 if engine == "duckdb" else [])
    monkeypatch.setattr(Warehouse, "_first_in_span", lambda self, scope, own=None: False)
    with installation(engine, tmp_path / "diffed") as env:
        diffed_outcome = outcome(env)
    assert len(taken) == 3  # the diffing installation never took the straight path
    assert len(from_file) == 3  # nor wrote the lake from the file
    # The sink wrote each file, found it was no first load after all, and rolled back.
    assert sunk == ([True] * 3 + [False] * 3 if engine == "duckdb" else [])
    facts, coverage, manifest, leaves = straight_outcome
    assert len(facts) == CBP_ROWS + DARIEN_ROWS and {r[-1] for r in facts} == {"new"}
    assert [r[2:] for r in manifest] == [(r[1], 0, 0, 0) for r in manifest]
    assert len(coverage) > 10 and len(leaves) > 10
    assert straight_outcome == diffed_outcome


def test_observations_a_sink_wrote_go_with_a_refusal_or_a_failed_load(tmp_path, monkeypatch):
    """DuckDB: harmonize writes a first load's observations into fact_flow in a transaction that
    stays open. A file refused after that (duplicated keys, found on the written rows), or a load
    that fails after it, leaves no observation, coverage or lake leaf behind; the refusal is
    recorded; the corrected file then loads as it would have; a resend is diffed (the sink
    declines a span that holds figures)."""
    sunk = spy_on_sink(monkeypatch)
    lines = DARIEN.read_text(encoding="utf-8").splitlines()
    twice = tmp_path / "darien_twice.csv"  # one row twice: two observations share every key
    twice.write_text("\n".join([*lines, lines[1]]) + "\n", encoding="utf-8")
    with installation("duckdb", tmp_path / "home") as env:

        def left() -> tuple:
            return (
                env.sql("SELECT count(*) FROM fact_flow")[0][0],
                env.sql("SELECT count(*) FROM file_coverage")[0][0],
                sorted(p.name for p in (env.home / "lake").rglob("*.parquet")),
            )

        refused = env.ingest(twice, "pan_darien_yearly")
        assert refused.status == "refused" and "share their key" in refused.reason, refused.reason
        assert sunk == [True]  # the rows were written before the key check found the duplicate
        assert left() == (0, 0, [])
        assert env.sql("SELECT file_name, status FROM file_manifest") == [(twice.name, "refused")]

        failing = Warehouse._manifest

        def crash(self, entry):
            if entry.get("status") == "loaded":
                raise RuntimeError("the disk is full")
            return failing(self, entry)

        monkeypatch.setattr(Warehouse, "_manifest", crash)
        with pytest.raises(RuntimeError, match="the disk is full"):
            env.ingest(DARIEN, "pan_darien_yearly")
        assert sunk == [True, True]
        assert left() == (0, 0, [])
        monkeypatch.setattr(Warehouse, "_manifest", failing)

        loaded = env.ingest(DARIEN, "pan_darien_yearly")
        assert loaded.status == "loaded" and loaded.rows == DARIEN_ROWS, loaded.reason
        assert sunk == [True, True, True]
        assert env.sql("SELECT count(*), sum(value) FROM fact_flow") == [(DARIEN_ROWS, DARIEN_TOTAL)]
        revised = env.ingest(revised_darien(tmp_path), "pan_darien_yearly")
        assert revised.status == "loaded", revised.reason
        assert sunk == [True, True, True, False]
        assert env.sql("SELECT rows_revised FROM file_manifest WHERE file_name = ?", [revised.file]) == [(1,)]
        assert env.sql("SELECT count(*), sum(value) FROM fact_flow") == [(DARIEN_ROWS, DARIEN_TOTAL + 3)]
        assert env.omh("verify").returncode == 0


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_first_load_that_disagrees_with_its_scope_writes_nothing(engine, tmp_path):
    """The straight path writes what the stream holds; a count other than the file's scope says
    fails the load by name and rolls it back whole (facts, coverage, manifest)."""
    import pandas as pd
    from test_views import obs, scope_of

    from transforms.config import Settings

    frame = pd.DataFrame(
        [obs("tst_scope", "PAN", c, dt.date(2024, m, 1), 10 + m) for c in ("VEN", "COL") for m in (1, 2)]
    ).assign(
        source_file="scope.csv", source_sha256="ab" * 32, source_row=range(2, 6), vintage=dt.date.today()
    )
    entry = {
        "source_id": "tst_scope",
        "sha256": "ab" * 32,
        "file_name": "scope.csv",
        "status": "loaded",
        "rows_loaded": len(frame),
        "received_at": dt.datetime.now(),
        "processed_at": dt.datetime.now(),
    }
    scope = scope_of(frame)
    state = (
        "SELECT (SELECT count(*) FROM fact_flow), (SELECT count(*) FROM file_coverage), "
        "(SELECT count(*) FROM file_manifest)"
    )
    with installation(engine, tmp_path / "home") as env:
        url = env.url or f"duckdb:///{tmp_path / 'home' / 'warehouse.duckdb'}"
        (tmp_path / "home").mkdir(exist_ok=True)
        with Warehouse(Settings(home=tmp_path / "home", warehouse_url=url)) as wh:
            wh.ensure_schema()
            wrong = [(*row[:-1], row[-1] + 1) if i == 0 else row for i, row in enumerate(scope)]
            with pytest.raises(
                WarehouseError, match=r"scope\.csv: 4 observations were written but the file holds 5"
            ):
                wh.load(entry, frame, [], scope=wrong)
            assert wh.fetchall(state)[0] == (0, 0, 0)
            result = wh.load(entry, frame, [], scope=scope)
            assert (result.rows, result.new, result.partitions) == (
                4,
                4,
                [("PAN", 2024, 1), ("PAN", 2024, 2)],
            )
            assert wh.fetchall(state)[0] == (4, 2, 1)
            assert wh.fetchall(
                "SELECT reporter_iso3, period_start, observations FROM file_coverage ORDER BY 2"
            ) == [
                ("PAN", dt.date(2024, 1, 1), 2),
                ("PAN", dt.date(2024, 2, 1), 2),
            ]


def test_a_diffing_load_on_duckdb_stores_its_figures_in_partition_order(tmp_path):
    """Rows of a file interleaving its months are stored month by month by the diffing load, so
    that the lake read after it finds each partition's rows together (no sort, which had taken a
    2 M-row resend over the memory budget) and reads back the same figures."""
    import pandas as pd
    from test_views import load, obs

    from transforms.config import Settings
    from transforms.storage.lake import scattered
    from transforms.storage.warehouse import _leaf_batches

    rows = [
        obs("tst_order", "PAN", c, dt.date(2024, m, 1), 10 * m + i)
        for i, c in enumerate(("VEN", "COL", "HTI", "CUB"))
        for m in (3, 1, 2)
    ]
    frame = pd.DataFrame(rows)
    assert scattered(pa.Table.from_pandas(frame[["reporter_iso3", "year", "month"]]).to_batches()[0])
    home = tmp_path / "home"
    home.mkdir()
    with Warehouse(Settings(home=home, warehouse_url=f"duckdb:///{home / 'warehouse.duckdb'}")) as wh:
        wh.ensure_schema()
        assert load(wh, frame, "interleaved.csv").new == len(rows)  # no scope: the diffing path
        stored = wh.fetchall("SELECT month FROM fact_flow ORDER BY rowid")
        assert [m for (m,) in stored] == sorted(m for (m,) in stored)
        revised = load(wh, frame.assign(value=frame["value"] + 1), "interleaved_revised.csv")
        assert revised.revised == len(rows)
        stored = wh.fetchall("SELECT month, value FROM fact_flow ORDER BY rowid")
        assert [m for m, _ in stored] == sorted(m for m, _ in stored)
        assert sum(v for _, v in stored) == float(frame["value"].sum()) + len(rows)
        batches = list(_leaf_batches(wh.con, f"SELECT {', '.join(FACT_COLUMNS)} FROM v_fact"))
        assert not scattered(batches[0])


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_load_failing_midway_leaves_nothing_behind(engine, tmp_path):
    """A revision whose last row breaks a NOT NULL constraint fails after the history rows were
    closed: the whole file rolls back, and the connection loads the next file."""
    from test_views import DISCLOSURE_CASE, load

    from transforms.config import Settings

    with installation(engine, tmp_path / "home") as env:
        url = env.url or f"duckdb:///{tmp_path / 'home' / 'warehouse.duckdb'}"
        (tmp_path / "home").mkdir(exist_ok=True)
        state = (
            "SELECT (SELECT count(*) FROM fact_flow), (SELECT sum(value) FROM fact_flow), "
            "(SELECT count(*) FROM fact_flow_history WHERE valid_to IS NULL), "
            "(SELECT count(*) FROM fact_flow_history), (SELECT count(*) FROM file_manifest), "
            "(SELECT count(*) FROM file_coverage)"
        )
        with Warehouse(Settings(home=tmp_path / "home", warehouse_url=url)) as wh:
            wh.ensure_schema()
            load(wh, DISCLOSURE_CASE[:4], "first.csv")
            before = wh.fetchall(state)
            revised = [dict(r, value=r["value"] + 100) for r in DISCLOSURE_CASE[:4]]
            broken = dict(DISCLOSURE_CASE[4], detail=None)
            with pytest.raises(Exception, match="(?i)null"):
                load(wh, [*revised, broken], "broken.csv")
            assert wh.fetchall(state) == before
            assert load(wh, revised, "fixed.csv").revised == 4
