"""End to end through Airflow: a real agency file landed, its DAG run by Airflow, the warehouse checked.

Airflow runs in a subprocess so that its environment (AIRFLOW_HOME under a temporary OMH_HOME,
SQLite metadata) is in place before it is imported, as in `omh demo`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import duckdb
import pytest

from transforms.config import DATA_DIR
from transforms.contracts import get_contract

pytestmark = pytest.mark.slow

SOURCE = "pan_darien_yearly"
REAL_FILE = DATA_DIR / "realdata" / "raw" / "panama_darien_2019-2022_by_nationality_derived.csv"

# Runs the source DAG once with dag.test() on the DAG loaded through a DagBag; prints its run.
RUN_DAG = textwrap.dedent(
    """
    import json, os, sys
    from transforms import airflow_env as afe
    from transforms.config import settings

    cfg = settings()
    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet  # Airflow's own logging goes to the captured stderr
        afe.prepare_airflow(cfg.home)
        from airflow.dag_processing.dagbag import DagBag

        from transforms.demo import _shorten_retries

        bag = DagBag(dag_folder=str(afe.DAGS_DIR))
        dag = bag.dags[afe.dag_id(sys.argv[1])]
        _shorten_retries(dag)
        run = dag.test()
        tis = [
            {"task_id": t.task_id, "file": t.rendered_map_index, "state": str(getattr(t.state, "value", t.state)),
             "try_number": t.try_number, "max_tries": t.max_tries}
            for t in run.get_task_instances()
        ]
        sys.stdout = stdout
    print(json.dumps({"state": str(getattr(run.state, "value", run.state)), "tis": tis, "airflow_home": os.environ["AIRFLOW_HOME"]}))
    """
)


def run_source_dag(home, source_id: str) -> dict:
    env = {**os.environ, "OMH_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-c", RUN_DAG, source_id], env=env, capture_output=True, text=True, timeout=150
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def states(run: dict, task_id: str) -> dict:
    return {t["file"] or task_id: t["state"] for t in run["tis"] if t["task_id"] == task_id}


def sql(home, query: str):
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def test_real_file_through_airflow_then_skipped_and_a_refused_file_fails_without_retry(omh_home):
    landing = omh_home / "landing" / get_contract(SOURCE).landing.folder
    landing.mkdir(parents=True)
    shutil.copy2(REAL_FILE, landing / REAL_FILE.name)

    first = run_source_dag(omh_home, SOURCE)
    assert first["airflow_home"] == str(omh_home / "airflow")
    assert first["state"] == "success", first
    assert states(first, "ingest") == {REAL_FILE.name: "success"}
    assert states(first, "publish") == {"publish": "success"}
    assert sql(omh_home, "SELECT sum(value) FROM fact_flow WHERE reporter_iso3='PAN' AND year=2022") == [
        (248284,)
    ]
    rows = sql(omh_home, "SELECT count(*) FROM fact_flow")

    # Second run, with a bad file landed beside the loaded one (one run less keeps this test short):
    # the loaded file is skipped, the bad one fails its own task on the first try (a refusal does
    # not retry), fails the run, and changes nothing.
    (landing / "darien_2023_bad.csv").write_text("toShow,year,total\nAtlantis,2023,5\n", encoding="utf-8")
    second = run_source_dag(omh_home, SOURCE)
    assert second["state"] == "failed", second
    (bad,) = [t for t in second["tis"] if t["task_id"] == "ingest"]  # the loaded file is not ingested
    assert (bad["file"], bad["state"], bad["try_number"]) == ("darien_2023_bad.csv", "failed", 1)
    assert bad["max_tries"] >= 2  # retries are configured, and were not used
    assert states(second, "publish") == {"publish": "skipped"}  # nothing new loaded: no asset event
    assert states(second, "all_files_loaded") == {"all_files_loaded": "upstream_failed"}
    assert sql(omh_home, "SELECT count(*) FROM fact_flow") == rows
    assert sql(omh_home, "SELECT file_name, status FROM file_manifest ORDER BY 1") == [
        ("darien_2023_bad.csv", "refused"),
        (REAL_FILE.name, "loaded"),
    ]
