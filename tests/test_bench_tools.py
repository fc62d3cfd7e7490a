"""The benchmark's own tools: bench/storage.py (the cost of writing the observations, column by
column) runs and reports every column of fact_flow, and bench/run.py reads each step's time from
the pipeline's log. Timings are measured there, never asserted here."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from transforms.pipeline import log as pipeline_log
from transforms.pipeline import timed
from transforms.warehouse import FACT_COLUMNS

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
