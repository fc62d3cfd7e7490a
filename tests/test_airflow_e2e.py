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
import time
from concurrent.futures import ThreadPoolExecutor

import duckdb
import pytest

from transforms.config import DATA_DIR
from transforms.contracts import codelists
from transforms.contracts.loading import get_contract, load_contracts
from transforms.ops import airflow_env as afe

pytestmark = pytest.mark.slow

SOURCE = "pan_darien_yearly"
REAL_FILE = DATA_DIR / "realdata" / "raw" / "panama_darien_2019-2022_by_nationality_derived.csv"

# Runs a source DAG with dag.test() on the DAG loaded through a DagBag, once per source id read
# from stdin (several runs in one process, as `omh demo` runs its DAGs); prints each run on a line.
RUN_DAG = textwrap.dedent(
    """
    import json, os, sys
    from transforms.ops import airflow_env as afe
    from transforms.config import settings

    cfg = settings()
    stdout, sys.stdout = sys.stdout, open(os.devnull, "w")  # Airflow's own logging goes to stderr
    afe.prepare_airflow(cfg.home)
    from airflow.dag_processing.dagbag import DagBag

    from transforms.tools.demo import for_dag_test

    while source_id := sys.stdin.readline().strip():
        bag = DagBag(dag_folder=str(afe.DAGS_DIR))
        dag = for_dag_test(bag.dags[afe.dag_id(source_id)])
        run = dag.test(logical_date=None)  # a run by hand: no delivery period
        tis = [
            {"task_id": t.task_id, "file": t.rendered_map_index, "state": str(getattr(t.state, "value", t.state)),
             "try_number": t.try_number, "max_tries": t.max_tries}
            for t in run.get_task_instances()
        ]
        out = {"state": str(getattr(run.state, "value", run.state)), "tis": tis, "airflow_home": os.environ["AIRFLOW_HOME"]}
        print(json.dumps(out), file=stdout, flush=True)
    """
)


class DagRunner:
    """One Python process that runs source DAGs with ``dag.test()`` when asked (Airflow imported and
    its metadata database migrated once); its environment (OMH_HOME, AIRFLOW_HOME under it) is in
    place before Airflow is imported."""

    def __init__(self, home, log_path):
        env = {**os.environ, "OMH_HOME": str(home)}
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", RUN_DAG], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=log, text=True,
            )  # fmt: skip

    def run(self, source_id: str, timeout: float = 150) -> dict:
        self.proc.stdin.write(source_id + "\n")
        self.proc.stdin.flush()
        with ThreadPoolExecutor(1) as pool:
            line = pool.submit(self.proc.stdout.readline)
            try:
                text = line.result(timeout)
            except TimeoutError:
                self.proc.kill()
                raise AssertionError(f"no run of {source_id} within {timeout} s\n{self.stderr()}") from None
        assert text.strip(), f"the DAG runner exited with {self.proc.wait()}\n{self.stderr()}"
        return json.loads(text)

    def stderr(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            assert self.proc.wait(60) == 0, self.stderr()
        finally:
            self.proc.kill()


def states(run: dict, task_id: str) -> dict:
    return {t["file"] or task_id: t["state"] for t in run["tis"] if t["task_id"] == task_id}


def sql(home, query: str):
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------------- under the real scheduler
# The tests below share one `omh airflow` (Airflow standalone: scheduler, DAG processor, triggerer,
# API server) started by the session fixture `airflow_server` (tests/omh_airflow_server.py).

RUN_TIMEOUT = 420
# The Observatory caches its answers this long (CACHE_SECONDS of plugins/omh_observatory/app.py):
# an answer asked for by an earlier test may still be served after a change, up to that age.
OBSERVATORY_CACHE_SECONDS = 15


def _poll(what, check, timeout: float, pause: float = 1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(pause)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last})")


def test_rest_api_lists_every_source_dag_and_the_regional_one_with_no_import_error(airflow_server):
    token = airflow_server.token()
    status, body = airflow_server.request("GET", "/api/v2/dags?limit=200", token=token)
    assert status == 200, body
    expected = {afe.dag_id(s) for s in load_contracts()} | {afe.REGIONAL_DAG_ID}
    assert {d["dag_id"] for d in body["dags"]} == expected
    status, errors = airflow_server.request("GET", "/api/v2/importErrors", token=token)
    assert status == 200 and errors["total_entries"] == 0, errors
    # The REST API refuses a request without a token.
    status, _ = airflow_server.request("GET", "/api/v2/dags")
    assert status == 401


def test_observatory_api_answers_only_to_airflow_users(airflow_server):
    path = "/observatory/api/completeness"
    assert airflow_server.request("GET", path)[0] == 401
    assert airflow_server.request("GET", path, token="not-a-jwt")[0] == 403
    status, body = airflow_server.request("GET", path, token=airflow_server.token())
    assert status == 200, body
    members = {m["iso3"] for m in codelists.members()}
    assert len(members) == 23
    assert {c["iso3"] for c in body["countries"]} == members
    assert all(c["name_es"] and len(c["cells"]) == len(body["months"]) for c in body["countries"])
    # The preloaded sample months of Costa Rica show as loaded (or loaded with warnings).
    cri = next(c for c in body["countries"] if c["iso3"] == "CRI")
    assert {cell["status"] for cell in cri["cells"]} & {"loaded", "warnings", "late"}
    # The refused file's unknown label is listed as open.
    status, unmapped = airflow_server.request(
        "GET", "/observatory/api/unmapped", token=airflow_server.token()
    )
    assert status == 200
    assert any(u["label"] == "Atlantis" and u["state"] == "open" for u in unmapped), unmapped


def test_validation_reports_are_served_to_airflow_users_only(airflow_server):
    token = airflow_server.token()
    status, validations = airflow_server.request("GET", "/observatory/api/validations", token=token)
    assert status == 200
    report = next(v["report"] for v in validations if v.get("report"))
    assert airflow_server.request("GET", f"/observatory/reports/{report}")[0] == 401
    status, page = airflow_server.request("GET", f"/observatory/reports/{report}", token=token)
    assert status == 200 and "<html" in page.lower()
    assert (
        airflow_server.request("GET", "/observatory/reports/../airflow/passwords.json", token=token)[0] == 404
    )


# The run of a period whose file never came (PAN 2018: the real file covers 2019-2022). Its
# run_after is just after the 2022 run's: with one active run per DAG, the scheduler takes queued
# runs in run_after order, so it starts once the 2022 run has loaded the real file.
MISSED_RUN_ID = "e2e_2018"


@pytest.fixture(scope="module")
def missed_delivery_run(airflow_server) -> str:
    """The missed period's run, created when the first test that needs it starts: the Deadline
    Alert is set at the run's creation (due date 2019-01-31, long past, so creation + the grace),
    and its grace runs down while the 2022 run of the test below runs, not after it."""
    run = {
        "dag_run_id": MISSED_RUN_ID,
        "logical_date": "2018-01-01T00:00:00Z",
        "data_interval_start": "2018-01-01T00:00:00Z",
        "data_interval_end": "2019-01-01T00:00:00Z",
        "run_after": "2023-01-01T00:00:01Z",
    }
    dag_id = afe.dag_id(SOURCE)
    status, created = airflow_server.request(
        "POST", f"/api/v2/dags/{dag_id}/dagRuns", run, token=airflow_server.token()
    )
    assert status == 200, created
    return MISSED_RUN_ID


@pytest.mark.usefixtures("missed_delivery_run")  # its deadline's grace overlaps with this test
def test_pan_dag_triggered_through_the_rest_api_runs_under_the_scheduler_and_loads_its_file(airflow_server):
    token = airflow_server.token()
    status, body = airflow_server.request("GET", "/api/v2/dags?tags=country:PAN&limit=50", token=token)
    assert status == 200
    pan = {d["dag_id"] for d in body["dags"]}
    dag_id = afe.dag_id(SOURCE)
    assert dag_id in pan and all("country:PAN" in {t["name"] for t in d["tags"]} for d in body["dags"])

    # The run of the period 2022 (the real file's last year): its data interval is the period.
    # run_after in the past puts it ahead of the scheduled run that unpausing creates.
    run = {
        "dag_run_id": "e2e_2022",
        "logical_date": "2022-01-01T00:00:00Z",
        "data_interval_start": "2022-01-01T00:00:00Z",
        "data_interval_end": "2023-01-01T00:00:00Z",
        "run_after": "2023-01-01T00:00:00Z",
        "note": "tests/test_airflow_e2e.py",
    }
    status, created = airflow_server.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", run, token=token)
    assert status == 200, created
    status, patched = airflow_server.request(
        "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}, token=token
    )
    assert status == 200 and patched["is_paused"] is False, patched

    def finished():
        status, r = airflow_server.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/e2e_2022", token=airflow_server.token()
        )
        return r if status == 200 and r["state"] in ("success", "failed") else None

    try:
        result = _poll("the e2e run", finished, RUN_TIMEOUT)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{airflow_server.log_tail()}") from exc
    _, tis = airflow_server.request(
        "GET", f"/api/v2/dags/{dag_id}/dagRuns/e2e_2022/taskInstances", token=token
    )
    states = {(t["task_id"], t["map_index"]): t["state"] for t in tis["task_instances"]}
    assert result["state"] == "success", (states, tis)
    assert states[("period_loaded", -1)] == "success", states

    # The file was loaded by a run of this DAG under the scheduler (this run, or the scheduled run of
    # the latest period if the scheduler started that one first), its mapped task named by the file.
    _, runs = airflow_server.request("GET", f"/api/v2/dags/{dag_id}/dagRuns", token=token)
    ingested = []
    for r in runs["dag_runs"]:
        _, tis = airflow_server.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{r['dag_run_id']}/taskInstances", token=token
        )
        ingested += [
            (t["rendered_map_index"], t["state"]) for t in tis["task_instances"] if t["task_id"] == "ingest"
        ]
    assert (REAL_FILE.name, "success") in ingested, ingested

    def last_validation() -> dict:
        _, validations = airflow_server.request("GET", "/observatory/api/validations", token=token)
        return next(v for v in validations if v["source_id"] == SOURCE)

    # The answer cached before the run (the refused file's validation) is served until it expires.
    deadline = time.monotonic() + OBSERVATORY_CACHE_SECONDS + 30
    while (last := last_validation())["file_name"] != REAL_FILE.name and time.monotonic() < deadline:
        time.sleep(1)
    assert (last["file_name"], last["status"]) in {(REAL_FILE.name, "loaded"), (REAL_FILE.name, "warnings")}
    assert last["rows_loaded"] == 28

    # Lineage: the load emitted OpenLineage events to the file transport: the landing file in,
    # the lake leaves and the warehouse table out.
    events = [json.loads(line) for line in afe.lineage_file(airflow_server.home).read_text().splitlines()]
    complete = [
        e
        for e in events
        if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith(".ingest") and e.get("outputs")
    ]
    assert complete, [(e["eventType"], e["job"]["name"]) for e in events]
    inputs = {d["name"] for e in complete for d in e["inputs"]}
    outputs = {(d["namespace"].split(":")[0], d["name"]) for e in complete for d in e["outputs"]}
    assert any(name.endswith(f"/landing/PAN/{REAL_FILE.name}") for name in inputs), inputs
    assert ("duckdb", "main.fact_flow") in outputs, outputs
    assert any(
        ns == "file" and "/lake/reporter_iso3=PAN/year=2022/" in name and name.endswith(f"/{SOURCE}.parquet")
        for ns, name in outputs
    ), outputs


# ---------------------------------------------------------------------------- dag.test(), no scheduler
# This test needs no shared Airflow: it runs among the tests that do, between the PAN run above and
# the Deadline Alert below (conftest.py), while that alert's grace runs down.


@pytest.fixture()
def dag_runner(omh_home, tmp_path):
    runner = DagRunner(omh_home, tmp_path / "dag_runner.log")
    yield runner
    runner.close()


@pytest.mark.while_airflow_waits
def test_real_file_through_airflow_then_skipped_and_a_refused_file_fails_without_retry(omh_home, dag_runner):
    landing = omh_home / "landing" / get_contract(SOURCE).landing.folder
    landing.mkdir(parents=True)
    shutil.copy2(REAL_FILE, landing / REAL_FILE.name)

    first = dag_runner.run(SOURCE)
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
    second = dag_runner.run(SOURCE)
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

    # The engineer's loop: the refused file is not tried again by the next run (same bytes, same
    # contract), so that run has nothing to do; the corrected file lands and the run after is
    # green, with only the corrected file ingested.
    third = dag_runner.run(SOURCE)
    assert third["state"] == "success", third
    assert states(third, "ingest") == {"ingest": "skipped"}  # no file to ingest
    (landing / "darien_2023_corrected.csv").write_text("toShow,year,total\nBrasil,2023,5\n", encoding="utf-8")
    fourth = dag_runner.run(SOURCE)
    assert fourth["state"] == "success", fourth
    assert states(fourth, "ingest") == {"darien_2023_corrected.csv": "success"}
    assert sql(omh_home, "SELECT file_name, status FROM file_manifest ORDER BY 1") == [
        ("darien_2023_bad.csv", "refused"),
        ("darien_2023_corrected.csv", "loaded"),
        (REAL_FILE.name, "loaded"),
    ]


def test_a_missed_delivery_fires_a_deadline_alert(airflow_server, missed_delivery_run):
    # The run of a period whose file never came (the real file covers 2019-2022): discover finds no
    # new file, the period is not loaded and its due date (2019-01-31) has passed, so the run fails;
    # its Deadline Alert (created with the run, due date or creation + grace) fires, and the
    # triggerer writes the alert where the Observatory reads it.
    from transforms.ops.alerts import read_alerts

    token = airflow_server.token()
    dag_id = afe.dag_id(SOURCE)
    assert missed_delivery_run == "e2e_2018"

    def alert():
        return [a for a in read_alerts(airflow_server.home) if a["run_id"] == "e2e_2018"]

    try:
        (fired,) = _poll("the Deadline Alert of PAN 2018", alert, timeout=240, pause=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{airflow_server.log_tail()}") from exc
    assert (fired["source_id"], fired["reporter_iso3"], fired["period"]) == (SOURCE, "PAN", "2018")
    assert fired["due_date"] == "2019-01-31"
    assert "was due on 2019-01-31 and is not loaded" in fired["message"]

    def shown_alerts() -> list:
        status, alerts = airflow_server.request(
            "GET", "/observatory/api/alerts", token=airflow_server.token()
        )
        assert status == 200, alerts
        return [a for a in alerts if a.get("run_id") == "e2e_2018"]

    # An answer cached before the alert fired is served until it expires.
    deadline = time.monotonic() + OBSERVATORY_CACHE_SECONDS + 30
    while not (shown := shown_alerts()) and time.monotonic() < deadline:
        time.sleep(1)
    assert shown and shown[0]["resolved"] is False
    # The callback's outcome was recorded and the triggerer that ran it is still healthy.
    status, health = airflow_server.request("GET", "/api/v2/monitor/health")
    assert status == 200 and health["triggerer"]["status"] == "healthy", health
    # The run itself fails: no file for its period.
    status, r = airflow_server.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/e2e_2018", token=token)
    assert status == 200 and r["state"] in ("queued", "running", "failed"), r
