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
from transforms.storage.warehouse import Warehouse, WarehouseError, migrations

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
    assert versions == [v for v, _ in migrations()]  # each once, in order (numbers may have gaps)


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

    def traced_load(wh, rows, name, scoped=False) -> list[str]:
        trace = tmp_path / f"{name}.trace"
        with open(trace, "w") as fh:
            wh.con.pgconn.trace(fh.fileno())
            try:
                load(wh, rows, name, scoped=scoped)
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
        # With its scope, a first load is one binary COPY straight into fact_flow: no staging.
        c = traced_load(wh, [dict(r, source_id="tst_c") for r in big], "big_scoped.csv", scoped=True)
        d = traced_load(wh, [dict(r, source_id="tst_d") for r in small], "small_scoped.csv", scoped=True)
    assert len(b) == len(a), (len(a), len(b))
    assert sum("COPY _new (" in s and "FORMAT binary" in s for s in b) == 1
    assert not any("INSERT INTO fact_flow " in s and "VALUES" in s for s in b)
    assert any("INSERT INTO fact_flow (" in s and "FROM _fresh" in s for s in b)
    assert len(c) == len(d) < len(b), (len(b), len(c), len(d))
    assert sum("COPY fact_flow (" in s and "FORMAT binary" in s for s in c) == 1
    assert not any("_new" in s or "INSERT INTO fact_flow" in s for s in c)


ATTACKS = {
    "server file": "SELECT pg_read_file('/etc/passwd')",
    "server file, binary": "SELECT pg_read_binary_file('/etc/passwd')",
    "server directory": "SELECT * FROM pg_ls_dir('/etc')",
    "large object import": "SELECT lo_import('/etc/passwd')",
    "program": "COPY (SELECT 1) TO PROGRAM 'touch {marker}'",
    "program, in": "COPY config FROM PROGRAM 'touch {marker}'",
    "role back to the login, then a file": (
        "SELECT set_config('role', session_user, true), "
        "query_to_xml('SELECT pg_read_file(''/etc/passwd'') AS x', true, false, '')"
    ),
    "role through dynamic SQL": (
        "SELECT query_to_xml('SELECT set_config(''role'', session_user, true)', true, false, ''), "
        "query_to_xml('SELECT pg_read_file(''/etc/passwd'') AS x', true, false, '')"
    ),
    "session authorization": "SELECT set_config('session_authorization', session_user, true)",
    "a table": "SELECT * FROM fact_flow",
    "a write": "DELETE FROM config",
    "a write returning rows": "DELETE FROM config RETURNING *",
    "a write through a CTE": "WITH d AS (DELETE FROM config RETURNING *) SELECT * FROM d",
    "DDL": "CREATE TABLE stolen (i int)",
    "two statements": "SELECT 1; SELECT pg_read_file('/etc/passwd')",
}


def test_omh_sql_runs_as_the_analyst_role_even_on_a_superuser_url(url, tmp_path, monkeypatch, capsys):
    """``omh sql`` with a superuser URL: the views answer as ``omh_analyst`` would see them; server
    files, programs, tables and writes are refused, including the ways back to the login role."""
    from transforms.tools.cli import main
    from transforms.tools.export import read_only_query

    with psycopg.connect(url, autocommit=True) as con:
        assert con.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (True,)
    with _wh(url, tmp_path) as wh:
        wh.ensure_schema()
        load(wh, DISCLOSURE_CASE, "disc.csv")
        expected = wh.fetchall(
            "SELECT reporter_iso3, sum(value) FROM v_flow GROUP BY reporter_iso3 ORDER BY reporter_iso3"
        )
    marker = tmp_path / "program_ran"
    with _wh(url, tmp_path, read_only=True) as ro:
        cols, rows = read_only_query(
            ro,
            "SELECT reporter_iso3, sum(value) AS total, min(period_start) AS first, current_user AS who "
            "FROM v_flow GROUP BY reporter_iso3 ORDER BY reporter_iso3",
        )
        assert cols == ["reporter_iso3", "total", "first", "who"]
        assert [(r[0], r[1]) for r in rows] == [(r, float(t)) for r, t in expected] and len(rows) >= 2
        assert {r[3] for r in rows} == {"omh_analyst"} and rows[0][2] == "2024-01-01"
        assert read_only_query(ro, "SELECT 1 AS a, 2 AS a WHERE false") == (["a", "a"], [])
        assert read_only_query(ro, "SELECT count(*) AS n FROM pub_corridor;")[1][0][0] > 0
        for what, attack in ATTACKS.items():
            with pytest.raises((psycopg.Error, ValueError)) as refused:
                read_only_query(ro, attack.format(marker=marker))
            assert "root:" not in str(refused.value), what
            # The connection is usable after each refusal (the transaction was rolled back).
            assert read_only_query(ro, "SELECT current_user AS u")[1] == [("omh_analyst",)], what
    assert not marker.exists()
    with psycopg.connect(url, autocommit=True) as con:
        assert con.execute("SELECT to_regclass('stolen')").fetchone() == (None,)
        assert con.execute("SELECT count(*) FROM config").fetchone()[0] > 0

    # The command itself: one line, no traceback, the file's content nowhere.
    monkeypatch.setenv("OMH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OMH_WAREHOUSE_URL", url)
    assert main(["sql", "SELECT pg_read_file('/etc/passwd')"]) == 1
    out = capsys.readouterr()
    assert "permission denied for function pg_read_file" in out.err and "root:" not in out.out + out.err
    assert len(out.err.strip().splitlines()) == 1 and "Traceback" not in out.err
    assert main(["sql", "SELECT reporter_iso3 FROM v_flow ORDER BY 1 LIMIT 1", "--csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["reporter_iso3", expected[0][0]]


def test_omh_sql_refuses_to_run_without_the_sandbox(url, tmp_path):
    """No ``omh_analyst_query`` (a warehouse user that could not install it): nothing runs."""
    from transforms.tools.export import SandboxError, read_only_query

    with _wh(url, tmp_path) as wh:
        wh.ensure_schema()
        wh.execute("DROP FUNCTION omh_analyst_query(text)")
    with _wh(url, tmp_path, read_only=True) as ro, pytest.raises(SandboxError, match="not run"):
        read_only_query(ro, "SELECT 1 AS one")
