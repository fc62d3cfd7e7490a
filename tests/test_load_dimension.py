"""A warehouse of the version before the load dimension (schema version 8) migrates in place.

The old warehouse is a real one: made by the previous version's own code (the commit before
migration 0009 was added, taken out of git with ``git archive``), run in a subprocess with
``omh ingest`` on real files, a resend among them (figures revised and withdrawn: closed states).
The current code then opens it: migration 0009 moves the file lineage into ``dim_load`` and the
facts keep ``load_id``. Every figure, vintage, closed state, manifest and DQ row is kept, the
views give the same answers before and after, ``omh verify`` (lake against warehouse) passes, and
the next load merges with the migrated figures. On a DuckDB file and on a PostgreSQL schema.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from test_warehouse import CBP, DARIEN, postgres_schema

from transforms.config import Settings
from transforms.storage.warehouse import SCHEMA_VERSION, Warehouse

ROOT = Path(__file__).resolve().parents[1]
MIGRATION = "sql/migrations/0009_load_dimension.sql"
# Views an analyst reads whose answers do not depend on the clock.
VIEWS = (
    "fact_flow_history",
    "v_revisions",
    "v_flow_all_sources",
    "v_flow_by_period",
    "v_reporter_summary",
    "v_corridor",
    "pub_flow_by_period",
)
TABLES = ("file_manifest", "dq_result", "file_coverage")


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def previous_version(tmp_path_factory) -> Path:
    """The code of the version before migration 0009, from git (the parent of the commit that added
    the migration; HEAD while it is not committed yet)."""
    added = _git("log", "--diff-filter=A", "--format=%H", "--", MIGRATION).split()
    rev = f"{added[-1]}^" if added else "HEAD"
    assert MIGRATION not in _git("ls-tree", "-r", "--name-only", rev), f"{rev} has migration 0009"
    out = tmp_path_factory.mktemp("previous")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "transforms", "sql", "data", "contracts", "expectations"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def _old_omh(code: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    """``omh`` of the previous version (its ``transforms`` first on the path)."""
    run = f"import sys; sys.path.insert(0, {str(code)!r}); from transforms.tools.cli import main; sys.exit(main())"
    proc = subprocess.run(
        [sys.executable, "-c", run, *args], cwd=code, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _files(tmp: Path) -> list[tuple[Path, str]]:
    """Darién's file, then a resend of it with one figure revised and one withdrawn; CBP's."""
    lines = DARIEN.read_text(encoding="utf-8").splitlines()
    first = tmp / "panama_darien_2023-01-15.csv"
    first.write_text("\n".join(lines) + "\n", encoding="utf-8")
    resend = [x.replace("Brasil,2021,8370", "Brasil,2021,8400") for x in lines if x != "Brasil,2022,3047"]
    assert resend != lines and len(resend) == len(lines) - 1
    second = tmp / "panama_darien_2023-06-30.csv"
    second.write_text("\n".join(resend) + "\n", encoding="utf-8")
    return [(first, "pan_darien_yearly"), (second, "pan_darien_yearly"), (CBP, "usa_cbp_swb_encounters")]


def _rows(con, sql: str) -> tuple[list[str], list[tuple]]:
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    return cols, sorted(cur.fetchall(), key=repr)


def _connect(engine: str, url: str):
    """A plain connection (no project code) to the warehouse, for the snapshots."""
    if engine == "duckdb":
        return duckdb.connect(url.removeprefix("duckdb:///"), read_only=True)
    import psycopg

    return psycopg.connect(url, autocommit=True)


def _snapshot(engine: str, url: str, facts: str, closed: str) -> dict:
    con = _connect(engine, url)
    try:
        out = {name: _rows(con, f"SELECT * FROM {name}") for name in (*VIEWS, *TABLES)}
        out["facts"] = _rows(con, facts)
        out["closed"] = _rows(con, closed)
        out["version"] = con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    finally:
        con.close()
    return out


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_version_8_warehouse_made_by_the_previous_code_migrates_in_place(
    engine, previous_version, tmp_path, monkeypatch
):
    home = tmp_path / "home"
    home.mkdir()
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_schema()) if engine == "postgres" else None
        _migrates_in_place(
            url or f"duckdb:///{home / 'warehouse.duckdb'}",
            engine,
            home,
            previous_version,
            tmp_path,
            monkeypatch,
        )


def _migrates_in_place(
    url: str, engine: str, home: Path, previous_version: Path, tmp_path: Path, monkeypatch
) -> None:
    """The old warehouse built at ``url`` by the previous version, migrated, compared."""
    env = {**os.environ, "OMH_HOME": str(home), "OMH_WAREHOUSE_URL": url}
    for path, source in _files(tmp_path):
        _old_omh(previous_version, env, "ingest", str(path), "--source", source)
    # The previous fact tables hold the lineage on every row.
    before = _snapshot(engine, url, "SELECT * FROM fact_flow", "SELECT * FROM fact_flow_closed")
    assert before["version"] == 8
    assert len(before["closed"][1]) == 2  # one figure revised, one withdrawn

    settings = Settings(home=home, warehouse_url=url)
    with Warehouse(settings) as wh:
        assert wh.migrate() == [9]
        wh.install_views()
        loads = wh.fetchall("SELECT source_file, vintage FROM dim_load ORDER BY load_id")
    columns = before["facts"][0]
    closed_columns = [c for c in before["closed"][0] if c != "closed_by_sha256"]
    after = _snapshot(
        engine,
        url,
        f"SELECT {', '.join(columns)} FROM v_fact",
        f"SELECT {', '.join(closed_columns)}, closed_by_sha256 FROM fact_flow_history WHERE valid_to IS NOT NULL",
    )
    assert after["version"] == SCHEMA_VERSION
    # One row per load, in load order, with the vintage each file was loaded with.
    assert [name for name, _ in loads] == [p.name for p, _ in _files(tmp_path)]
    assert loads[0][1] == dt.date(2023, 1, 15) and loads[1][1] == dt.date(2023, 6, 30)
    assert after["facts"] == before["facts"]  # every figure and its lineage
    assert after["closed"][1] == before["closed"][1]  # every closed state, and what closed it
    for name in (*VIEWS, *TABLES):
        assert after[name] == before[name], name

    # The lake was written by the previous version: it matches the migrated warehouse.
    from transforms.storage.verify import verify

    monkeypatch.setenv("OMH_WAREHOUSE_URL", url)
    report = verify(home)
    assert not report.mismatches and not report.problems, (report.mismatches, report.problems)
    # The next load merges with the migrated figures: Darién's first file again, one more
    # figure changed, adds back what the resend withdrew and revises what it changed.
    from transforms.ingest.pipeline import ingest_file

    again = tmp_path / "panama_darien_2023-12-31.csv"
    text = DARIEN.read_text(encoding="utf-8")
    assert "Brasil,2020,262\n" in text
    again.write_text(text.replace("Brasil,2020,262\n", "Brasil,2020,263\n"), encoding="utf-8")
    result = ingest_file(again, "pan_darien_yearly", home)
    assert result.status == "loaded", result.reason
    with Warehouse(settings, read_only=True) as wh:
        counts = wh.fetchall(
            "SELECT rows_new, rows_revised, rows_withdrawn FROM file_manifest WHERE file_name = ?",
            [again.name],
        )
        closed_by = wh.fetchall(
            "SELECT DISTINCT closed_by_sha256 FROM fact_flow_history WHERE valid_to IS NOT NULL "
            "AND valid_to > (SELECT max(loaded_at) FROM dim_load WHERE source_file = ?)",
            [_files(tmp_path)[1][0].name],
        )
    assert counts == [(1, 2, 0)]  # Brasil 2022 is back (added), Brasil 2021 and 2020 revised
    assert len(closed_by) == 1
