"""``make cluster`` (transforms/tools/cluster.py): the production shape on this machine, run for real.

One background job (tests/background.py, so that its minutes overlap the other tests): ``omh
cluster`` on a home whose landing zone holds the sample files of the 23 member states, with
databases of its own on the PostgreSQL server and a Celery queue of its own on Redis (other
engineers' clusters and tests are not disturbed). It triggers every source DAG at once through the
REST API, SIGKILLs the Celery worker that runs the first load it sees running, then SIGKILLs the
API server while task instances run on the other worker (the launcher starts it again on the same
port; the workers' Execution API calls retry meanwhile), waits for every run, then reads what the cluster wrote, loads the same files locally (embedded DuckDB, folder
lake) for comparison, and stops the cluster with SIGTERM. The tests below assert on what it saw.

Needs PostgreSQL and Redis: skipped when either is unreachable, a failure when
``OMH_REQUIRE_POSTGRES=1`` (CI).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from background import BACKGROUND, job
from omh_airflow_server import AirflowServer

from transforms.contracts.loading import load_contracts
from transforms.ops import airflow_env as afe

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/3"
PASSWORD = "omh-cluster-test-pw"
START_TIMEOUT = 420
RUNS_TIMEOUT = 900
RUN_ID = "cluster_all_at_once"

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _servers_missing() -> str | None:
    import psycopg
    import redis

    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    except Exception as exc:
        return f"PostgreSQL unreachable: {exc}"
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
    except Exception as exc:
        return f"Redis unreachable: {exc}"
    from transforms.tools import local_s3

    if not local_s3.available():  # the launcher's local S3 for the lake
        return f"{local_s3.server_command()} is missing (`make setup` creates .venv-moto)"
    return None


def _land(home: Path) -> list[tuple[str, Path]]:
    """The 2024 sample file of every member state in the landing zone: [(source_id, path)]."""
    from transforms.config import settings
    from transforms.contracts.loading import load_contracts
    from transforms.ingest.landing import source_files
    from transforms.tools.samples import YEAR, write_samples

    cfg = settings(home).ensure()
    write_samples(cfg.landing, YEAR)
    return [(c.source_id, p) for c in load_contracts().values() for p in source_files(c, cfg)]


def _figures(home: Path, warehouse_url: str | None, lake_env: dict | None = None) -> dict:
    """Per partition, the warehouse's (rows, values, sum) and the lake's (the cluster's: its Iceberg
    table, read through the table format), read in a child process (this one may have imported
    another home's settings)."""
    code = (
        "import json\n"
        "from transforms.config import settings\n"
        "from transforms.storage.lakestore import open_lake\n"
        "from transforms.storage.warehouse import open_for_reading\n"
        "cfg = settings()\n"
        "wh = open_for_reading(cfg)\n"
        "ware = {'/'.join(map(str, k[:4])): [int(k[4]), int(k[5]), float(k[6] or 0)] "
        "for k in wh.partition_totals()}\n"
        "lake = {'/'.join(map(str, l.key)): [l.rows, l.values, l.total] for l in open_lake(cfg).scan()[0]}\n"
        "print(json.dumps({'warehouse': ware, 'lake': lake}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OMH_LAKE_"))}
    env.update({"OMH_HOME": str(home), **(lake_env or {})})
    env.pop("OMH_WAREHOUSE_URL", None)
    if warehouse_url:
        env["OMH_WAREHOUSE_URL"] = warehouse_url
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def _local_run(home: Path) -> dict:
    """The same files loaded by `omh ingest` into an embedded home (DuckDB, folder lake)."""
    files = _land(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OMH_LAKE_"))}
    env["OMH_HOME"] = str(home)
    env.pop("OMH_WAREHOUSE_URL", None)
    omh = str(Path(sys.executable).parent / "omh")
    for source_id, path in files:
        done = subprocess.run([omh, "ingest", str(path), "--source", source_id], env=env, capture_output=True)
        assert done.returncode == 0, (path, done.stderr[-2000:])
    return _figures(home, None)


def _banner(cluster, timeout: float = 180) -> str:
    """The launcher's banner: printed once every component answers, which may come a moment after
    the API server lists the DAGs; read from the whole log (later lines may follow it)."""
    deadline = time.monotonic() + timeout
    while True:
        text = cluster.log_tail(10_000_000)
        at = text.find("OMH cluster is up")
        if at >= 0 or time.monotonic() > deadline:
            return text[max(at, 0) : max(at, 0) + 4000] if at >= 0 else text[-4000:]
        time.sleep(2)


def _drop_databases(*names: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_ADMIN, autocommit=True) as con:
        for name in names:
            con.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class Cluster(AirflowServer):
    """``omh cluster`` as the test starts it; HTTP helpers from the standalone server's class."""

    def token(self, username: str = "admin", password: str = PASSWORD) -> str:
        return super().token(username, password)

    def state(self) -> dict:
        return json.loads((self.home / "airflow-cluster" / "cluster.json").read_text(encoding="utf-8"))

    def stop(self) -> int | None:
        """SIGTERM to the launcher, as Ctrl-C; what it left running is killed by its component pids."""
        try:
            pids = list(self.state()["components"].values())
        except (OSError, ValueError):
            pids = []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
        left = [p for p in pids if _alive(p)]
        for pid in left:
            os.killpg(pid, signal.SIGKILL)
        return len(left)


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _poll(what: str, check, timeout: float, pause: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(pause)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def _start(root: Path, tag: str) -> Cluster:
    from omh_airflow_server import free_port_block

    home = root / "home"
    port = free_port_block(6)
    # The lake: cluster.env's, in object storage; no endpoint set, so the launcher starts moto.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_", "OMH_LAKE_"))}
    env.pop("OMH_WAREHOUSE_URL", None)
    env.update(
        {
            "OMH_HOME": str(home),
            "OMH_AIRFLOW_PORT": str(port),
            "OMH_AIRFLOW_PASSWORD": PASSWORD,
            "OMH_CLUSTER_POSTGRES": PG_ADMIN,
            "OMH_CLUSTER_REDIS_URL": REDIS,
            "OMH_CLUSTER_AIRFLOW_DB": f"{tag}_af",
            "OMH_CLUSTER_WAREHOUSE_DB": f"{tag}_wh",
            "OMH_CLUSTER_QUEUE": tag,
            # The retry of the killed load comes before the killed worker is back.
            "OMH_RETRY_DELAY_SECONDS": "5",
            "OMH_CLUSTER_RESTART_SECONDS": "600",
            # ... but the API server comes back at once (cluster.env's heartbeat timeout, 60 s, is
            # kept: a running task must outlive the API server's restart).
            "OMH_CLUSTER_RESTART_SECONDS_API_SERVER": "1",
            # Only the runs triggered here: unpausing would also start each DAG's run of its
            # latest period, and that run (one at a time per DAG) would load the files first.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }
    )
    log = root / "cluster.log"
    with log.open("wb") as fh:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "omh"), "cluster"],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_stop_with_parent,
        )
    return Cluster(home, port, process, log)


def _stop_with_parent() -> None:
    """In the launcher's child: SIGTERM (a Ctrl-C) when the background process dies, killed at the
    end of the session, so that no cluster outlives the tests."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _runs(cluster: Cluster, dags: list[str], token: str) -> dict[str, str]:
    states = {}
    for dag in dags:
        status, run = cluster.request("GET", f"/api/v2/dags/{dag}/dagRuns/{RUN_ID}", token=token)
        states[dag] = run["state"] if status == 200 else f"HTTP {status}"
    return states


def _kill_a_loading_worker(cluster: Cluster, token: str) -> dict:
    """SIGKILL the worker (its whole process group) that runs the first `ingest` seen running."""

    def running():
        status, body = cluster.request(
            "GET", "/api/v2/dags/~/dagRuns/~/taskInstances?state=running&limit=200", token=token
        )
        tis = body.get("task_instances", []) if status == 200 else []
        # A load of the runs triggered here (unpausing also starts each DAG's run of its latest
        # period, which may load a file first).
        loads = [t for t in tis if t["task_id"] == "ingest" and t["dag_run_id"] == RUN_ID]
        return next((t for t in loads if t.get("hostname")), None)

    ti = _poll("an ingest task running", running, RUNS_TIMEOUT, pause=0.5)
    worker = ti["hostname"].split(".", 1)[0]
    pid = cluster.state()["components"][worker]
    os.killpg(pid, signal.SIGKILL)
    return {
        "dag_id": ti["dag_id"],
        "map_index": ti["map_index"],
        "worker": worker,
        "hostname": ti["hostname"],
    }


def _running(cluster: Cluster, token: str) -> list[dict]:
    status, body = cluster.request(
        "GET", "/api/v2/dags/~/dagRuns/~/taskInstances?state=running&limit=200", token=token
    )
    return [t for t in body.get("task_instances", []) if t["dag_run_id"] == RUN_ID] if status == 200 else []


def _kill_the_api_server(cluster: Cluster, token: str, killed_worker: str) -> dict:
    """SIGKILL the API server while task instances run on a live worker (those of the killed one
    stay "running" until the scheduler notices); wait until the launcher has started it again and
    it answers on the same port."""

    def in_flight():
        tis = [t for t in _running(cluster, token) if t.get("hostname") and t["hostname"] != killed_worker]
        return tis if any(t["task_id"] == "ingest" for t in tis) else None

    tis = _poll("a load running on the live worker", in_flight, RUNS_TIMEOUT, pause=0.5)
    old = cluster.state()["components"]["api-server"]
    os.killpg(old, signal.SIGKILL)
    killed_at = time.monotonic()

    def back():
        try:
            new = cluster.state()["components"]["api-server"]
            status, _ = cluster.request("GET", "/api/v2/monitor/health", timeout=5)
        except (OSError, ValueError, KeyError):
            return None
        return new if new != old and status == 200 else None

    new = _poll("the API server back", back, 300, pause=0.5)
    return {
        "old_pid": old,
        "new_pid": new,
        "down_seconds": time.monotonic() - killed_at,
        "in_flight": [{k: t[k] for k in ("dag_id", "task_id", "map_index", "try_number")} for t in tis],
    }


def _all_task_instances(cluster: Cluster, token: str) -> list[dict]:
    """Every task instance, page by page (the API returns at most 100 at a time)."""
    out: list[dict] = []
    while True:
        status, page = cluster.request(
            "GET", f"/api/v2/dags/~/dagRuns/~/taskInstances?limit=100&offset={len(out)}", token=token
        )
        assert status == 200, (status, page)
        out += page["task_instances"]
        if not page["task_instances"] or len(out) >= page["total_entries"]:
            return out


@job("cluster_run")
def _cluster_work(published: Path, pycache: Path, root: Path) -> dict:
    missing = _servers_missing()
    if missing:
        return {"missing": missing}
    tag = f"omh_cltest_{uuid.uuid4().hex[:8]}"
    files = _land(root / "home")
    cluster = _start(root, tag)
    out: dict = {"files": len(files), "tag": tag}
    try:
        cluster.wait_ready(expected_dags=len(load_contracts()) + 1, timeout=START_TIMEOUT)
        token = cluster.token()
        out["banner"] = _banner(cluster)
        _, errors = cluster.request("GET", "/api/v2/importErrors", token=token)
        out["import_errors"] = errors["import_errors"]
        _, body = cluster.request("GET", "/api/v2/dags?limit=200", token=token)
        dags = sorted(d["dag_id"] for d in body["dags"] if d["dag_id"] != afe.REGIONAL_DAG_ID)
        out["dags"] = dags
        started = time.monotonic()
        for dag in dags:
            cluster.request("PATCH", f"/api/v2/dags/{dag}", {"is_paused": False}, token=token)
            status, run = cluster.request(
                "POST",
                f"/api/v2/dags/{dag}/dagRuns",
                {"dag_run_id": RUN_ID, "logical_date": None},
                token=token,
            )
            assert status == 200, (dag, status, run)
        out["killed"] = _kill_a_loading_worker(cluster, token)
        out["api_restart"] = _kill_the_api_server(cluster, token, out["killed"]["hostname"])

        def finished():
            states = _runs(cluster, dags, cluster.token())
            return states if all(s in ("success", "failed") for s in states.values()) else None

        out["runs"] = _poll("every run", finished, RUNS_TIMEOUT, pause=5)
        out["seconds"] = time.monotonic() - started
        token = cluster.token()
        out["task_instances"] = [t for t in _all_task_instances(cluster, token) if t["dag_run_id"] == RUN_ID]
        k = out["killed"]
        _, tries = cluster.request(
            "GET",
            f"/api/v2/dags/{k['dag_id']}/dagRuns/{RUN_ID}/taskInstances/ingest/{k['map_index']}/tries",
            token=token,
        )
        out["killed_tries"] = tries.get("task_instances", tries)
        out["state"] = cluster.state()
        out["launcher_log"] = cluster.log_tail(200_000)
        out["lake_env"] = json.loads(
            (cluster.home / "airflow-cluster" / "lake.json").read_text(encoding="utf-8")
        )
        out["cluster"] = _figures(
            cluster.home, f"postgresql://postgres@127.0.0.1:5432/{tag}_wh", out["lake_env"]
        )  # before the stop: the local moto server's objects go with it
    except BaseException:
        out["log"] = cluster.log_tail()
        raise
    finally:
        out["left_running"] = cluster.stop()
        out["launcher_exit"] = cluster.process.returncode
        _drop_databases(f"{tag}_af", f"{tag}_wh")
    out["local"] = _local_run(root / "local")
    return out


@pytest.fixture(scope="session")
def cluster_run(tmp_path_factory) -> dict:
    result = BACKGROUND.result("cluster_run", tmp_path_factory)
    if "missing" in result:
        if os.environ.get("OMH_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{result['missing']} (OMH_REQUIRE_POSTGRES=1)")
        pytest.skip(result["missing"])
    return result


def test_make_cluster_prints_the_ui_and_login_and_serves_every_dag_without_import_error(cluster_run):
    assert "OMH cluster is up: http://127.0.0.1:" in cluster_run["banner"]
    assert f"user admin   password {PASSWORD}" in cluster_run["banner"]
    assert cluster_run["import_errors"] == []
    # One DAG per contract (and the regional one, left out of the list).
    assert cluster_run["dags"] == sorted(afe.dag_id(s) for s in load_contracts())
    # Ctrl-C (SIGTERM) stopped every component it had started.
    assert cluster_run["launcher_exit"] == 0 and cluster_run["left_running"] == 0


def test_every_source_dag_triggered_at_once_succeeds_on_the_celery_workers(cluster_run):
    runs = cluster_run["runs"]
    assert set(runs.values()) == {"success"}, {d: s for d, s in runs.items() if s != "success"}
    ran = [t for t in cluster_run["task_instances"] if t["state"] == "success"]
    assert ran and {t["executor"] for t in ran} == {"CeleryExecutor"}
    workers = {t["hostname"].split(".", 1)[0] for t in ran}
    assert workers <= {"worker-1", "worker-2"} and len(workers) == 2, workers
    print(f"\n{len(runs)} DAG runs at once on the cluster: {cluster_run['seconds']:.0f} s")


def test_a_worker_killed_mid_load_is_retried_on_the_other_worker(cluster_run):
    killed = cluster_run["killed"]
    tries = sorted(cluster_run["killed_tries"], key=lambda t: t["try_number"])
    assert len(tries) >= 2, tries
    assert tries[0]["hostname"] == killed["hostname"] and tries[0]["state"] != "success"
    assert tries[-1]["state"] == "success" and tries[-1]["hostname"] != killed["hostname"]
    assert cluster_run["runs"][killed["dag_id"]] == "success"


def test_the_api_server_killed_under_running_dags_comes_back_and_the_running_tasks_finish(cluster_run):
    restart = cluster_run["api_restart"]
    # The launcher named it and started it again, once, on the same port (the health check above
    # answered on the cluster's URL).
    assert "api-server exited (killed by SIGKILL); restarting in 1 s" in cluster_run["launcher_log"]
    assert f"api-server restarted (pid {restart['new_pid']})" in cluster_run["launcher_log"]
    assert cluster_run["state"]["restarts"].get("api-server") == 1
    assert cluster_run["state"]["components"]["api-server"] == restart["new_pid"]
    # Every task instance running when it died finished in the same try: the workers waited for
    # the API server instead of failing (or being failed by the scheduler) and being retried.
    final = {(t["dag_id"], t["task_id"], t["map_index"]): t for t in cluster_run["task_instances"]}
    for ti in restart["in_flight"]:
        done = final[(ti["dag_id"], ti["task_id"], ti["map_index"])]
        assert (done["state"], done["try_number"]) == ("success", ti["try_number"]), (ti, done)
    assert set(cluster_run["runs"].values()) == {"success"}
    print(
        f"\nAPI server down {restart['down_seconds']:.0f} s, {len(restart['in_flight'])} task instances in flight"
    )


def test_the_cluster_holds_the_same_figures_as_a_local_run_of_the_same_files(cluster_run):
    cluster, local = cluster_run["cluster"], cluster_run["local"]
    assert cluster_run["files"] >= 23 and local["warehouse"]
    # Nothing lost, nothing doubled: the PostgreSQL warehouse written by concurrent loads on two
    # workers (one killed mid-load, the API server killed under them) and the local DuckDB warehouse agree partition by partition.
    for side in ("warehouse", "lake"):
        assert same_figures(cluster[side], local[side]), side
    assert cluster["lake"].keys() == cluster["warehouse"].keys()
    # The cluster's lake is the Iceberg table in object storage (local moto), the local run's a folder.
    assert (
        cluster_run["lake_env"]["OMH_LAKE_URL"].startswith("s3://")
        and cluster_run["lake_env"]["AWS_ENDPOINT_URL"]
    )


def same_figures(a: dict, b: dict) -> bool:
    """Same partitions, each with the same rows and values, and sums equal to the float's precision."""
    assert a.keys() == b.keys(), sorted(set(a) ^ set(b))[:10]
    for key, (rows, values, total) in a.items():
        other = b[key]
        assert (rows, values) == (other[0], other[1]), (key, a[key], other)
        assert total == pytest.approx(other[2], rel=1e-9, abs=1e-6), (key, a[key], other)
    return True
