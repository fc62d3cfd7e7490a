"""The benchmark's own tools: bench/storage.py (the cost of writing the observations, column by
column) runs and reports every column of fact_flow, and bench/run.py reads each step's time from
the pipeline's log. Timings are measured there, never asserted here."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from transforms.ingest.pipeline import log as pipeline_log
from transforms.ingest.results import timed
from transforms.storage.warehouse import FACT_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import run as bench_run  # noqa: E402  (bench/run.py, on the path just above)


def test_storage_bench_writes_every_column_and_the_alternatives(tmp_path):
    out = tmp_path / "storage.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "storage.py"), "--rows", "30000", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["rows"] == 30000
    assert result["citizenships"] > 200  # the bench's spread of nationalities, not one
    assert set(result["per_column_s"]) == {*FACT_COLUMNS, "change"}
    assert result["text_columns"] == 18
    for key in ("insert_s", "insert_enum_s", "insert_int_keys_s", "text_columns_s", "other_columns_s"):
        assert result[key] > 0, key


def test_the_bench_reads_each_step_from_the_pipelines_own_log_lines(tmp_path):
    log_file = tmp_path / "omh.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    pipeline_log.addHandler(handler)
    level = pipeline_log.level
    pipeline_log.setLevel(logging.INFO)
    try:
        for step in ("extract", "raw suite projections", "extract"):  # a step logged twice: the last wins
            with timed(step, "file: with colons.csv"):
                pass
    finally:
        pipeline_log.removeHandler(handler)
        pipeline_log.setLevel(level)
        handler.close()
    steps = bench_run.step_times(log_file)
    assert list(steps) == ["extract", "raw suite projections"]
    for found in steps.values():
        assert found["s"] >= 0 and found["peak_mb"] >= found["rss_mb"] > 0
    assert bench_run.step_times(tmp_path / "missing.log") == {}


def _rows_missing_from(con, a: str, b: str) -> int:
    """Rows of ``a`` (with their multiplicity) that ``b`` lacks, every column but the load's clock
    (the lake's rows and the load dimension hold it; the facts name their load instead)."""
    names = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {a}").fetchall()}
    cols = "* EXCLUDE (loaded_at)" if "loaded_at" in names else "*"
    return con.execute(
        f"SELECT count(*) FROM (SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b})"
    ).fetchone()[0]


def test_the_same_output_script_writes_exactly_the_pipelines_rows_and_lake(tmp_path):
    """The same-output floor is only a floor if its output is the pipeline's: every fact row
    (remainders and lineage included) and every lake row, column for column, and the same table
    schema. A change of the pipeline's output or schema must be made in bench/same_output*.sql too."""
    import duckdb
    import same_output

    from transforms.ingest.landing import vintage_of

    csv, meta = bench_run.generate.ensure(6_000, seed=13, folder=tmp_path / "data")
    home = tmp_path / "home"
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("omh")), "ingest", str(csv), "--source", bench_run.SOURCE_ID],
        env={**os.environ, "OMH_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    made = same_output.run(csv, tmp_path / "same", vintage_of(csv).isoformat(), "2026-01-01 00:00:00")
    assert made["rows"] == made["lake_rows"] == meta["observations_expected"]

    con = duckdb.connect(made["db"])
    con.execute(f"ATTACH '{home / 'warehouse.duckdb'}' AS pipe (READ_ONLY)")
    assert (
        con.execute("SELECT count(*) FROM fact_flow WHERE obs_status = 'E'").fetchone()[0] > 0
    )  # remainders
    assert _rows_missing_from(con, "fact_flow", "pipe.fact_flow") == 0
    assert _rows_missing_from(con, "pipe.fact_flow", "fact_flow") == 0
    assert _rows_missing_from(con, "dim_load", "pipe.dim_load") == 0  # the file's one load row
    assert _rows_missing_from(con, "pipe.dim_load", "dim_load") == 0
    schema = "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = 'fact_flow' AND table_catalog = '{}' ORDER BY ordinal_position"
    assert (
        con.execute(schema.format("pipe")).fetchall() == con.execute(schema.format("same_output")).fetchall()
    )

    def lake(root: Path) -> str:
        return f"read_parquet('{root}/**/*.parquet', hive_partitioning = true)"

    ours, theirs = lake(tmp_path / "same" / "lake"), lake(home / "lake")
    assert (
        con.execute(f"DESCRIBE SELECT * FROM {ours}").fetchall()
        == con.execute(f"DESCRIBE SELECT * FROM {theirs}").fetchall()
    )
    assert _rows_missing_from(con, ours, theirs) == 0
    assert _rows_missing_from(con, theirs, ours) == 0
    partitions = {p.parent.relative_to(home / "lake") for p in (home / "lake").rglob("*.parquet")}
    assert partitions == {
        p.parent.relative_to(tmp_path / "same" / "lake")
        for p in (tmp_path / "same" / "lake").rglob("*.parquet")
    }
