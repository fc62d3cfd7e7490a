"""PostgreSQL only: roles, concurrent upgrades, read-only sessions, all-or-nothing loads.

Runs against ``OMH_TEST_POSTGRES_URL`` in a schema of its own (see tests/test_warehouse.py);
skipped when the server is unreachable unless ``OMH_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import psycopg
import pytest
from test_views import DISCLOSURE_CASE, load
from test_warehouse import PG_URL, postgres_schema

from transforms.config import Settings
from transforms.warehouse import SCHEMA_VERSION, Warehouse, WarehouseError

pytestmark = pytest.mark.postgres


@pytest.fixture()
def url():
    with postgres_schema() as u:
        yield u


def _wh(url: str, tmp_path: Path, read_only: bool = False) -> Warehouse:
    return Warehouse(Settings(home=tmp_path, warehouse_url=url), read_only=read_only)


def test_analyst_role_reads_views_and_nothing_else(url, tmp_path):
    with _wh(url, tmp_path) as wh:
        wh.ensure_schema()
        load(wh, DISCLOSURE_CASE, "disc.csv")
        views = {
            r[0]
            for r in wh.fetchall(
                "SELECT table_name FROM information_schema.views WHERE table_schema = current_schema()"
            )
        }
        tables = {
            r[0]
            for r in wh.fetchall(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                "AND table_type = 'BASE TABLE'"
            )
        }
    assert {"v_flow", "v_revisions", "pub_corridor"} <= views and {"fact_flow", "config"} <= tables
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("SET ROLE omh_analyst")
        for view in sorted(views):
            con.execute(f"SELECT * FROM {view} LIMIT 1").fetchall()
        for table in sorted(tables):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                con.execute(f"SELECT 1 FROM {table} LIMIT 1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            con.execute("UPDATE config SET value = '1'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            con.execute("CREATE TABLE mine (x int)")
        con.execute("RESET ROLE")
        con.execute("SET ROLE omh_public")
        assert con.execute("SELECT count(*) FROM pub_corridor").fetchone()[0] > 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            con.execute("SELECT 1 FROM v_flow LIMIT 1")


def test_concurrent_runs_upgrade_the_schema_once(url, tmp_path):
    errors = []

    def run():
        try:
            with _wh(url, tmp_path) as wh:
                wh.ensure_schema()
        except Exception as exc:  # collected: a thread's exception would be lost
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with _wh(url, tmp_path) as wh:
        versions = [r[0] for r in wh.fetchall("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_read_only_sessions_cannot_write(url, tmp_path):
    with _wh(url, tmp_path) as wh:
        wh.ensure_schema()
    with _wh(url, tmp_path, read_only=True) as ro:
        assert ro.query("SELECT value FROM config WHERE key = 'disclosure_threshold'")[1] == [("5",)]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            ro.query("DELETE FROM config")


def test_an_unreachable_server_is_one_clear_error(tmp_path):
    closed = PG_URL.rsplit("@", 1)[0] + "@127.0.0.1:1/test"
    with pytest.raises(WarehouseError, match="cannot connect to the PostgreSQL warehouse"):
        _wh(closed, tmp_path)


def test_loads_go_through_copy(url, tmp_path):
    """libpq's own protocol trace: a file's rows travel as COPY data, and the number of statements
    a load sends does not grow with its rows (no row inserts)."""
    from test_views import obs

    def traced_load(wh, rows, name) -> list[str]:
        trace = tmp_path / f"{name}.trace"
        with open(trace, "w") as fh:
            wh.con.pgconn.trace(fh.fileno())
            try:
                load(wh, rows, name)
            finally:
                wh.con.pgconn.untrace()
        sent = [ln.split("\t") for ln in trace.read_text(errors="replace").splitlines() if "\tF\t" in ln]
        # One Query (simple protocol) or one Bind (extended protocol) per statement executed.
        return [m[-1] for m in sent if len(m) > 4 and m[3] in ("Query", "Bind") and "DEALLOCATE" not in m[-1]]

    small = [obs("tst_a", "PAN", c, dt.date(2024, 1, 1), 10) for c in ("VEN", "HTI", "CUB")]
    big = [
        obs("tst_b", "PAN", c, dt.date(2024, m, 1), 10 + m)
        for m in range(1, 13)
        for c in ("VEN", "HTI", "CUB", "COL", "ECU", "PER", "CHL", "_O", "_U")
    ]
    with _wh(url, tmp_path) as wh:
        wh.ensure_schema()
        a = traced_load(wh, small, "small.csv")
        b = traced_load(wh, big, "big.csv")
    assert len(b) == len(a), (len(a), len(b))
    assert sum("COPY _new (" in s for s in b) == 1
    assert not any("INSERT INTO fact_flow " in s and "VALUES" in s for s in b)
    assert any("INSERT INTO fact_flow (" in s and "FROM _fresh" in s for s in b)
