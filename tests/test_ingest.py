"""The whole pipeline for one file: warehouse, lake, manifest, quarantine, and the omh command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest

from transforms.ingest.pipeline import ingest_file

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "data" / "realdata" / "raw"
CBP = RAW / "usa_cbp_sbo-encounters-fy22-fy25-aug.csv"
DARIEN = RAW / "panama_darien_2019-2022_by_nationality_derived.csv"
CANADA = RAW / "canada_ircc_EN_ODP-Asylum-PT_Gender.xlsx"


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("OMH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OMH_WAREHOUSE_URL", raising=False)
    return tmp_path / "home"


def _sql(home: Path, query: str):
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def test_ingest_loads_warehouse_and_lake_and_skips_a_loaded_file(home):
    first = ingest_file(CBP, "usa_cbp_swb_encounters")
    assert first.status == "loaded", first.reason
    assert first.rows == 1936
    total = _sql(
        home, "SELECT sum(value) FROM fact_flow WHERE period_start BETWEEN '2021-10-01' AND '2022-09-30'"
    )
    assert total[0][0] == 2_378_944
    lake = ds.dataset(home / "lake", format="parquet", partitioning="hive").to_table()
    assert set(lake.column("reporter_iso3").to_pylist()) == {"USA"}
    assert sum(v for v in lake.column("value").to_pylist() if v is not None) == 7_421_677
    leaf = next((home / "lake").rglob("*.parquet"))
    assert leaf.parent.name.startswith("month=") and leaf.parent.parent.name.startswith("year=")

    again = ingest_file(CBP, "usa_cbp_swb_encounters")
    assert again.status == "skipped"
    assert _sql(home, "SELECT count(*) FROM fact_flow")[0][0] == 1936
    assert _sql(home, "SELECT status, rows_loaded FROM file_manifest") == [("loaded", 1936)]
    assert Path(first.report).exists()


def test_refused_file_is_quarantined_and_changes_nothing(home, tmp_path):
    assert ingest_file(DARIEN, "pan_darien_yearly").status == "loaded"
    before = _sql(home, "SELECT count(*), sum(value) FROM fact_flow")
    bad = tmp_path / "darien_2023_negative.csv"
    text = DARIEN.read_text(encoding="utf-8").replace("Brasil,2022,3047", "Brasil,2022,-3047")
    bad.write_text(text, encoding="utf-8")
    result = ingest_file(bad, "pan_darien_yearly")
    assert result.status == "refused"
    assert "darien_2023_negative.csv" in result.reason and "-3047" in result.reason
    assert _sql(home, "SELECT count(*), sum(value) FROM fact_flow") == before
    quarantined = list((home / "quarantine" / "pan_darien_yearly").glob("*darien_2023_negative.csv"))
    assert len(quarantined) == 1
    assert bad.exists(), "the landing file stays"
    assert Path(result.report).read_text(encoding="utf-8").count("expect_column_values_to_be_between") >= 1
    assert _sql(home, "SELECT status FROM file_manifest WHERE file_name = 'darien_2023_negative.csv'") == [
        ("refused",)
    ]


def test_the_raw_suite_refuses_first_though_harmonize_starts_beside_it(home, tmp_path, monkeypatch):
    """GX evaluates the raw suite in a thread while harmonize reads the file's labels; a file that
    fails both is refused by the raw suite, as when they ran one after the other, and harmonize
    writes no observation before that verdict (the warehouse's sink is never reached)."""
    from transforms.storage.warehouse import FactSink

    reached: list[str] = []
    monkeypatch.setattr(FactSink, "__call__", lambda self, *args: reached.append(self.sha) or None)
    bad = tmp_path / "darien_both.csv"
    text = DARIEN.read_text(encoding="utf-8")
    for old, new in (("Cuba,2022", "Atlantida,2022"), ("Brasil,2022,3047", "Brasil,2022,lots")):
        assert old in text
        text = text.replace(old, new)
    bad.write_text(text, encoding="utf-8")
    result = ingest_file(bad, "pan_darien_yearly")
    assert result.status == "refused"
    assert "'lots'" in result.reason and "Atlantida" not in result.reason, result.reason
    assert not [p for p in result.problems if "Atlantida" in p]
    report = Path(result.report).read_text(encoding="utf-8")
    assert "expect_column_values_to_match_regex" in report and "Atlantida" not in report
    assert reached == []
    assert _sql(home, "SELECT count(*) FROM fact_flow") == [(0,)]
    # Only the label wrong: harmonize's refusal, after the raw suite passed.
    bad.write_text(
        DARIEN.read_text(encoding="utf-8").replace("Cuba,2022", "Atlantida,2022"), encoding="utf-8"
    )
    result = ingest_file(bad, "pan_darien_yearly")
    assert result.status == "refused" and "'Atlantida'" in result.reason, result.reason
    assert _sql(home, "SELECT count(*) FROM fact_flow") == [(0,)]


def test_unknown_label_names_file_column_and_label(home, tmp_path):
    bad = tmp_path / "darien_unknown.csv"
    bad.write_text(
        DARIEN.read_text(encoding="utf-8").replace("Cuba,2022", "Atlantida,2022"), encoding="utf-8"
    )
    result = ingest_file(bad, "pan_darien_yearly")
    assert result.status == "refused"
    assert "darien_unknown.csv" in result.reason
    assert "'Atlantida'" in result.reason and "'toShow'" in result.reason


def test_renamed_column_is_reported_by_name(home, tmp_path):
    bad = tmp_path / "darien_renamed.csv"
    bad.write_text(
        DARIEN.read_text(encoding="utf-8").replace("toShow,year,total", "toShow,year,count"), "utf-8"
    )
    result = ingest_file(bad, "pan_darien_yearly")
    assert result.status == "refused"
    assert "'total'" in result.reason and "missing" in result.reason


def _start(*args, env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "transforms.tools.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _done(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _omh(*args, env):
    return _done(_start(*args, env=env))


@pytest.mark.slow
def test_omh_command_exit_codes(home, tmp_path):
    env = {**os.environ, "OMH_HOME": str(home)}
    env.pop("OMH_WAREHOUSE_URL", None)
    binary = tmp_path / "darien_binary.csv"
    binary.write_bytes(b"\x00\x01\x02PK garbage" * 100)
    shutil.copy(DARIEN, tmp_path / "darien.csv")
    # Four commands that do not depend on each other run at the same time (a check stores nothing).
    started = [
        _start("sources", env=env),
        _start("check", str(CANADA), "--source", "can_ircc_asylum_gender", env=env),
        _start("check", str(binary), "--source", "pan_darien_yearly", env=env),
        _start("ingest", str(tmp_path / "darien.csv"), "--source", "pan_darien_yearly", env=env),
    ]
    sources, ok, unreadable, loaded = [_done(p) for p in started]

    assert sources.returncode == 0
    assert "pan_darien_yearly" in [line.split("\t")[0] for line in sources.stdout.splitlines()]

    assert ok.returncode == 0, ok.stdout + ok.stderr

    assert unreadable.returncode == 2
    assert (
        "darien_binary.csv" in unreadable.stdout and "Traceback" not in unreadable.stdout + unreadable.stderr
    )

    assert loaded.returncode == 0, loaded.stderr
    query = _omh("sql", "SELECT sum(value) AS v FROM fact_flow WHERE year = 2022", "--csv", env=env)
    assert query.returncode == 0
    assert query.stdout.splitlines() == ["v", "248284"]  # a count is written as a whole number
