"""DAG integrity: the DAGs parse, one per contract plus the regional one, and keep the house rules.

The DagBag is built once from the repository's `dags/`, as the scheduler's DAG processor does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from transforms import airflow_env as afe
from transforms.contracts import load_contracts

CONTRACTS = load_contracts()
SOURCE_DAG_IDS = sorted(afe.dag_id(s) for s in CONTRACTS)
ALL_DAG_IDS = [*SOURCE_DAG_IDS, afe.REGIONAL_DAG_ID]
DAG_FILES = sorted(afe.DAGS_DIR.glob("*.py"))
HEAVY = ("pandas", "duckdb", "great_expectations", "pyarrow", "numpy", "openpyxl")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(afe.DAGS_DIR))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_one_dag_per_contract_and_the_regional_dag(dagbag):
    assert sorted(dagbag.dag_ids) == sorted(ALL_DAG_IDS)


@pytest.mark.parametrize("dag_id", ALL_DAG_IDS)
def test_policy(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert any(t.startswith("country:") for t in dag.tags), dag.tags
    assert any(t.startswith(("conference:", "scope:")) for t in dag.tags), dag.tags
    assert dag.doc_md and len(dag.doc_md) > 200
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    for task in dag.tasks:
        assert task.owner == afe.OWNER, task.task_id
        assert task.retries >= 2, task.task_id
        assert task.retry_exponential_backoff > 1, task.task_id


@pytest.mark.parametrize("source_id", sorted(CONTRACTS))
def test_source_dag_follows_its_contract(dagbag, source_id):
    contract = CONTRACTS[source_id]
    dag = dagbag.dags[afe.dag_id(source_id)]
    tags = set(dag.tags)
    assert f"source:{source_id}" in tags
    if contract.reporter:
        assert f"country:{contract.reporter}" in tags
        assert f"conference:{contract.conference}" in tags
    else:
        assert {"country:multi", "scope:regional", "conference:CRM", "conference:CSM"} <= tags
    expected = contract.delivery.schedule or f"@{contract.delivery.frequency}"
    assert dag.schedule == expected

    assert {t.task_id for t in dag.tasks} == {"discover", "ingest", "publish", "all_files_loaded"}
    ingest = dag.get_task("ingest")
    assert ingest.is_mapped
    assert "file" in ingest.map_index_template
    # Every task that opens the DuckDB file is serialized by the one-slot pool.
    for task_id in ("discover", "ingest", "publish"):
        assert dag.get_task(task_id).pool == afe.POOL
    outlets = dag.get_task("publish").outlets
    assert [(a.name, a.uri) for a in outlets] == [(afe.asset_name(source_id), afe.asset_uri(source_id))]
    # The run fails when a file is refused, after the other files are published.
    assert dag.get_task("all_files_loaded").upstream_task_ids == {"ingest", "publish"}


def test_regional_dag_is_scheduled_on_every_source_asset(dagbag):
    from airflow.sdk import AssetAny
    from airflow.sdk.definitions.timetables.assets import AssetTriggeredTimetable

    dag = dagbag.dags[afe.REGIONAL_DAG_ID]
    assert isinstance(dag.timetable, AssetTriggeredTimetable)
    condition = dag.timetable.asset_condition
    assert isinstance(condition, AssetAny)
    names = {asset.name for asset in condition.objects}
    assert names == {afe.asset_name(s) for s in CONTRACTS}
    assert {t.task_id for t in dag.tasks} == {"refresh_views", "country_summary"}
    assert all(t.pool == afe.POOL for t in dag.tasks)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_nothing_heavy_and_parses_fast(path):
    # A fresh interpreter: this test process may have imported pandas already.
    code = textwrap.dedent(
        f"""
        import json, runpy, sys, time
        import airflow.sdk
        start = time.process_time()  # CPU time: a busy machine does not make the file slower
        runpy.run_path({str(path)!r}, run_name="dag_file")
        seconds = time.process_time() - start
        print(json.dumps({{"seconds": seconds, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    # The design asks for well under a second; the margin absorbs a slow CI machine.
    assert result["seconds"] < 2.0, result


# ---------------------------------------------------------------------------- the demo's landing


def test_demo_lands_each_real_file_in_its_contracts_folder_once(tmp_path):
    from transforms.demo import REAL_DIR, land_real_files

    landed = land_real_files(tmp_path)
    real = sorted(p.name for p in REAL_DIR.iterdir() if p.is_file())
    assert sorted(p.name for p, note in landed if note == "landed") == real
    for path, _ in landed:
        # The landing folder is the one of a contract whose patterns take the file.
        assert any(
            c.landing.folder == path.parent.name and any(path.match(p) for p in c.landing.patterns)
            for c in CONTRACTS.values()
        ), path
    again = land_real_files(tmp_path)
    assert {note for _, note in again} == {"already landed"}
