"""``omh cluster`` (``make cluster``): the production shape on one machine, without Docker.

Airflow with the CeleryExecutor: Redis as broker, a PostgreSQL database for the metadata, the API
server (UI and REST API), the scheduler, the DAG processor, the triggerer and ``OMH_CELERY_WORKERS``
Celery workers; the warehouse on PostgreSQL. The components' settings come from
``deploy/cluster.env``, which docker-compose.yml reads too (one source of truth); this module adds
only what depends on where they run: the database and broker URLs, the ports, the secrets.

Each component is a process in a session of its own, supervised here (``Supervisor``): one that
exits is started again after ``OMH_CLUSTER_RESTART_SECONDS`` (5; ``..._<NAME>`` for one component),
doubled for each further death soon after its start; ``OMH_CLUSTER_MAX_RESTARTS`` (5) such deaths
in a row stop the cluster (exit code 3) with a message naming the component. A killed worker comes
back (its task was retried meanwhile); a killed API server comes back on the same port while the
workers' Execution API calls retry (``deploy/cluster.env``). Ctrl-C or SIGTERM stops every
component (SIGTERM, then SIGKILL after a grace).
``$AIRFLOW_HOME/cluster.json`` names the running components and their process ids.

Where (environment, each with a default for one machine):
* ``OMH_CLUSTER_POSTGRES``: a PostgreSQL URL with the right to create databases
  (postgresql://postgres@127.0.0.1:5432/postgres); the launcher creates ``OMH_CLUSTER_AIRFLOW_DB``
  (omh_cluster_airflow) for the metadata and, unless ``OMH_WAREHOUSE_URL`` names one,
  ``OMH_CLUSTER_WAREHOUSE_DB`` (omh_cluster_wh) for the warehouse;
* ``OMH_CLUSTER_REDIS_URL``: the broker, redis://127.0.0.1:6379/3 (its own Redis DB number);
  ``OMH_CLUSTER_QUEUE`` (cluster.env's default queue, omh): the Celery queue the workers listen to;
* ``OMH_AIRFLOW_PORT``: the API server's port, 8080 when free, else a free one;
* ``OMH_LAKE_URL`` (cluster.env: s3://omh-lake/lake): the lake, an Iceberg table in object storage
  (``storage.iceberg_lake``) whose catalog is in the warehouse's database; endpoint and credentials
  from the AWS variables. With no ``AWS_ENDPOINT_URL`` set, the launcher starts a local moto server
  (``tools.local_s3``) and stops it with the rest; its objects live in memory, for a demo.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from transforms.config import REPO_ROOT, settings
from transforms.ops import airflow_env as afe

CLUSTER_ENV = REPO_ROOT / "deploy" / "cluster.env"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/3"
STOP_GRACE = 30.0
POOL_DESCRIPTION = "warehouse loads at once (PostgreSQL warehouse)"


class ClusterError(RuntimeError):
    """A prerequisite of the cluster is missing (a server down, a bad setting)."""


def read_env_file(path: Path = CLUSTER_ENV) -> dict[str, str]:
    """``KEY=VALUE`` lines of ``path`` (comments and blank lines skipped), as docker compose reads them."""
    out = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ClusterError(f"{path}, line {number}: expected KEY=VALUE, got {line!r}")
        out[key.strip()] = value.strip()
    return out


def hostname() -> str:
    """``[core] hostname_callable`` of the workers: the worker's name on this host, so that a task
    instance says which of the workers of one machine ran it."""
    host = socket.getfqdn()
    name = os.environ.get("OMH_WORKER_NAME")
    return f"{name}.{host}" if name else host


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def ensure_database(admin_url: str, database: str) -> None:
    """CREATE DATABASE ``database`` unless it exists."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as con:
            if not con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
                con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    except psycopg.OperationalError as exc:
        raise ClusterError(f"PostgreSQL at {_safe(admin_url)} is not reachable: {exc}") from exc


def check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except Exception as exc:
        raise ClusterError(f"Redis at {_safe(url)} is not reachable: {exc}") from exc


def _safe(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{parts.hostname}:{parts.port}")
    return urlunsplit(parts)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((afe.API_HOST, port))
        except OSError:
            return False
    return True


def free_port_block(width: int, preferred: int | None = None) -> int:
    """A port p with p .. p+width-1 free on the loopback interface, ``preferred`` if it is."""
    if preferred and all(_port_free(p) for p in range(preferred, preferred + width)):
        return preferred
    for _ in range(100):
        with socket.socket() as s:
            s.bind((afe.API_HOST, 0))
            port = s.getsockname()[1]
        if port + width <= 65535 and all(_port_free(p) for p in range(port, port + width)):
            return port
    raise ClusterError("no free block of ports on 127.0.0.1")


def _secret(kept: dict, name: str, env_name: str, make) -> str:
    value = os.environ.get(env_name) or kept.get(name)
    if not value:
        value = make()
    kept[name] = value
    return value


def cluster_secrets(af_home: Path) -> dict[str, str]:
    """The secrets every component shares (from the environment, else generated once and kept)."""
    path = af_home / "cluster-secrets.json"
    kept = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    from cryptography.fernet import Fernet

    out = {
        "AIRFLOW__API_AUTH__JWT_SECRET": _secret(kept, "jwt", "AIRFLOW_JWT_SECRET", secrets.token_urlsafe),
        "AIRFLOW__API__SECRET_KEY": _secret(kept, "api", "AIRFLOW_API_SECRET_KEY", secrets.token_urlsafe),
        "AIRFLOW__CORE__FERNET_KEY": _secret(
            kept, "fernet", "AIRFLOW_FERNET_KEY", lambda: Fernet.generate_key().decode()
        ),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(kept), encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return out


@dataclass
class Plan:
    """What the launcher starts, and with which environment."""

    env: dict[str, str]
    url: str
    workers: int
    queue: str
    port: int
    warehouse_url: str
    pool_slots: int
    components: dict[str, list[str]] = field(default_factory=dict)
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    lake_url: str = ""

    @property
    def af_home(self) -> Path:
        return Path(self.env["AIRFLOW_HOME"])

    @property
    def state_file(self) -> Path:
        return self.af_home / "cluster.json"


def plan(home: str | os.PathLike | None = None) -> Plan:
    """The cluster's environment and components; creates its databases (idempotent)."""
    cfg = settings(home).ensure()
    shared = read_env_file()
    lake_url = lake_of(shared)
    af_home = cfg.home / "airflow-cluster"
    admin = os.environ.get("OMH_CLUSTER_POSTGRES") or DEFAULT_POSTGRES
    redis_url = os.environ.get("OMH_CLUSTER_REDIS_URL") or DEFAULT_REDIS
    check_redis(redis_url)
    meta_db = os.environ.get("OMH_CLUSTER_AIRFLOW_DB") or "omh_cluster_airflow"
    ensure_database(admin, meta_db)
    warehouse = os.environ.get("OMH_WAREHOUSE_URL")
    if not warehouse:
        wh_db = os.environ.get("OMH_CLUSTER_WAREHOUSE_DB") or "omh_cluster_wh"
        ensure_database(admin, wh_db)
        warehouse = with_database(admin, wh_db)
    meta = with_database(admin, meta_db).replace("postgresql://", "postgresql+psycopg://", 1)
    workers = int(os.environ.get("OMH_CELERY_WORKERS") or shared.get("OMH_CELERY_WORKERS", 2))
    wanted = int(os.environ["OMH_AIRFLOW_PORT"]) if os.environ.get("OMH_AIRFLOW_PORT") else 8080
    port = free_port_block(2 + workers, wanted)
    url = afe.base_url(port)
    queue = os.environ.get("OMH_CLUSTER_QUEUE") or shared.get("AIRFLOW__OPERATORS__DEFAULT_QUEUE", "omh")
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k != "AIRFLOW_HOME"}
    env = {
        **base,
        **shared,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "OMH_HOME": str(cfg.home),
        "OMH_WAREHOUSE_URL": warehouse,
        "OMH_AIRFLOW_PORT": str(port),
        "AIRFLOW_HOME": str(af_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(afe.DAGS_DIR),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(afe.PLUGINS_DIR),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta,
        # psycopg's own async driver (Airflow's default for PostgreSQL would be asyncpg).
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": meta.replace("+psycopg://", "+psycopg_async://", 1),
        "AIRFLOW__CELERY__BROKER_URL": redis_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{meta}",
        "AIRFLOW__API__HOST": afe.API_HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(af_home / "logs"),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port + 1),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(afe.passwords_file(cfg.home)),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": os.environ.get("OMH_OPENLINEAGE_TRANSPORT")
        or json.dumps({"type": "file", "log_file_path": str(afe.lineage_file(cfg.home)), "append": True}),
        **cluster_secrets(af_home),
        # The environment overrides the file, as docker compose's `environment` does its env_file.
        **{k: os.environ[k] for k in shared if k in os.environ},
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
    }
    # The OpenLineage file transport appends to its file but does not create its folder.
    afe.lineage_file(cfg.home).parent.mkdir(parents=True, exist_ok=True)
    p = Plan(env, url, workers, queue, port, warehouse, int(shared.get("OMH_WAREHOUSE_POOL_SLOTS", 4)))
    p.lake_url = env["OMH_LAKE_URL"] = lake_url
    airflow = [sys.executable, "-m", "airflow"]
    p.components = {
        "api-server": [*airflow, "api-server", "--host", afe.API_HOST, "--port", str(port)],
        "scheduler": [*airflow, "scheduler"],
        "dag-processor": [*airflow, "dag-processor"],
        "triggerer": [*airflow, "triggerer"],
    }
    for i in range(1, workers + 1):
        name = f"worker-{i}"
        p.components[name] = [
            *airflow,
            "celery",
            "worker",
            "--queues",
            queue,
            "--celery-hostname",
            f"{name}@%h",
        ]
        p.extra_env[name] = {
            "OMH_WORKER_NAME": name,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "transforms.tools.cluster.hostname",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port + 1 + i),
        }
    return p


def prepare(p: Plan, log) -> None:
    """Metadata schema and the warehouse pool, in child processes with the cluster's environment."""
    steps = [
        ["db", "migrate"],
        ["pools", "set", afe.POOL, str(p.pool_slots), POOL_DESCRIPTION],
    ]
    for args in steps:
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args], env=p.env, stdout=log, stderr=subprocess.STDOUT
        )
        if done.returncode:
            raise ClusterError(f"`airflow {' '.join(args)}` failed (exit {done.returncode}): see {log.name}")


def lake_of(shared: dict[str, str]) -> str:
    """The cluster's lake: ``OMH_LAKE_URL`` of the environment or of cluster.env, in object storage
    (every worker, on any machine, writes the same table); empty (set so) keeps the folder lake of
    OMH_HOME, for one machine only."""
    url = os.environ.get("OMH_LAKE_URL", shared.get("OMH_LAKE_URL", "")).strip()
    if url and not url.startswith("s3://"):
        raise ClusterError(
            f"OMH_LAKE_URL {url!r}: a cluster's lake is s3://bucket/prefix (or empty: the folder lake)"
        )
    return url


def start_lake(p: Plan, log_dir: Path):
    """With the lake in object storage and no endpoint set (AWS_ENDPOINT_URL[_S3]), a local moto
    server for the demo, its bucket created, its address and credentials given to every component;
    then the table, created once here rather than raced for by the workers' first loads. Returns the
    server (stopped with the cluster) or None."""
    from transforms.tools.local_s3 import LocalS3, LocalS3Error, bucket_of

    if not p.lake_url:
        return None
    server = None
    if not (p.env.get("AWS_ENDPOINT_URL") or p.env.get("AWS_ENDPOINT_URL_S3")):
        try:
            server = LocalS3(log=log_dir / "moto.log").start()
        except LocalS3Error as exc:
            raise ClusterError(f"no S3 endpoint set and no local one: {exc}") from exc
        server.create_bucket(bucket_of(p.lake_url))
        p.env.update(server.env)
    code = "from transforms.config import settings; from transforms.storage.lakestore import open_lake; open_lake(settings()).table()"
    done = subprocess.run([sys.executable, "-c", code], env=p.env, capture_output=True, text=True)
    if done.returncode:
        if server:
            server.stop()
        raise ClusterError(
            f"the lake table at {p.lake_url} could not be opened: {done.stderr.strip()[-500:]}"
        )
    # Where the lake is, for `omh` commands run beside the cluster (credentials only of a local server).
    keys = ["OMH_LAKE_URL", "AWS_ENDPOINT_URL", "AWS_REGION"] + (list(server.env) if server else [])
    (p.af_home / "lake.json").write_text(
        json.dumps({k: p.env[k] for k in keys if k in p.env}), encoding="utf-8"
    )
    return server


class CrashLoop(ClusterError):
    """A component keeps dying soon after each start: restarting it again would only hide that."""


# A component that ran this long before it exited was not crash-looping: its next restart comes
# after the base delay again.
STABLE_SECONDS = 60.0
RESTART_SECONDS = 5.0
# Back-off ceiling, unless a component's base delay is longer (the test's "never in this run").
BACKOFF_CAP = 300.0


def restart_delays(names, environ=os.environ) -> dict[str, float]:
    """Each component's base restart delay: ``OMH_CLUSTER_RESTART_SECONDS`` (5), or for one component
    ``OMH_CLUSTER_RESTART_SECONDS_<NAME>`` (``..._API_SERVER``, ``..._WORKER_1``)."""
    base = float(environ.get("OMH_CLUSTER_RESTART_SECONDS") or RESTART_SECONDS)
    own = {n: environ.get("OMH_CLUSTER_RESTART_SECONDS_" + n.upper().replace("-", "_")) for n in names}
    return {n: float(v) if v else base for n, v in own.items()}


def _exit_words(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class Supervisor:
    """The components as processes, each in a session of its own; one that exits is started again.

    A component that dies is restarted after its delay (``restart_delays``), doubled for each
    further death within ``STABLE_SECONDS`` of its start (up to ``BACKOFF_CAP``); after
    ``max_restarts`` such quick deaths in a row, ``watch`` raises ``CrashLoop`` and the launcher
    stops the cluster: a component that cannot stay up is a configuration or environment problem
    for an operator, not something to retry forever."""

    def __init__(
        self,
        p: Plan,
        restart_seconds: float | dict[str, float],
        max_restarts: int = 5,
        stable_seconds: float = STABLE_SECONDS,
    ):
        self.plan = p
        if not isinstance(restart_seconds, dict):
            restart_seconds = dict.fromkeys(p.components, float(restart_seconds))
        self.delays = restart_seconds
        self.max_restarts, self.stable_seconds = max_restarts, stable_seconds
        self.logs = p.af_home / "logs" / "cluster"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self.started_at: dict[str, float] = {}
        self.restart_at: dict[str, float] = {}  # components down, and when they start again
        self.quick_deaths: dict[str, int] = {}  # deaths in a row, each soon after its start
        self.restarts: dict[str, int] = {}

    def start(self, name: str) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                self.plan.components[name],
                env={**self.plan.env, **self.plan.extra_env.get(name, {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.started_at[name] = time.monotonic()
        self.save()

    def save(self) -> None:
        state = {
            "url": self.plan.url,
            "launcher": os.getpid(),
            "components": {n: p.pid for n, p in self.procs.items()},
            "restarts": self.restarts,
            "logs": str(self.logs),
        }
        tmp = self.plan.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
        tmp.replace(self.plan.state_file)

    def watch(self) -> None:
        """Note the components that exited, and start again those whose delay has passed."""
        now = time.monotonic()
        for name, proc in self.procs.items():
            if name not in self.restart_at and proc.poll() is not None:
                self._down(name, proc.returncode, now)
        for name, when in list(self.restart_at.items()):
            if now >= when:
                del self.restart_at[name]
                self.restarts[name] = self.restarts.get(name, 0) + 1
                self.start(name)
                print(f"  {name} restarted (pid {self.procs[name].pid})", flush=True)

    def _down(self, name: str, returncode: int, now: float) -> None:
        # Its process group may hold children of the dead leader (a uvicorn or Celery child):
        # they would keep the port or the queue, so they go too.
        _signal_group(self.procs[name].pid, signal.SIGKILL)
        quick = now - self.started_at[name] < self.stable_seconds
        deaths = self.quick_deaths[name] = self.quick_deaths.get(name, 0) + 1 if quick else 0
        log = self.logs / f"{name}.log"
        if deaths >= self.max_restarts:
            raise CrashLoop(
                f"{name} died {deaths} times in a row, each within {self.stable_seconds:g} s of its "
                f"start (last: {_exit_words(returncode)}); stopping the cluster. Its log: {log}"
            )
        base = self.delays.get(name, RESTART_SECONDS)  # a component added after the plan: the default
        delay = min(base * 2 ** max(deaths - 1, 0), max(BACKOFF_CAP, base))
        self.restart_at[name] = now + delay
        print(
            f"  {name} exited ({_exit_words(returncode)}); restarting in {delay:g} s (log: {log})", flush=True
        )

    def stop(self) -> None:
        for proc in self.procs.values():
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline and any(_alive(p) for p in self.procs.values()):
            time.sleep(0.3)
        for proc in self.procs.values():
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        self.plan.state_file.unlink(missing_ok=True)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _alive(proc: subprocess.Popen) -> bool:
    """The component, or a process it left in its group, still runs (a leader that exited is reaped
    first: a zombie would keep its group "alive")."""
    proc.poll()
    return _group_alive(proc.pid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _healthy(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=3) as resp:
            return resp.status == 200
    except Exception:
        return False


def run(home: str | os.PathLike | None = None) -> int:
    """Start the cluster and keep it running until Ctrl-C or SIGTERM."""
    cfg = settings(home).ensure()
    try:
        p = plan(cfg.home)
    except ClusterError as exc:
        print(f"omh cluster: {exc}", file=sys.stderr)
        return 2
    from transforms.tools.demo import seed_landing

    print(seed_landing(cfg.home), flush=True)
    password, origin = afe.admin_password(cfg.home)
    sup = Supervisor(p, restart_delays(p.components), int(os.environ.get("OMH_CLUSTER_MAX_RESTARTS") or 5))
    stopping: list[int] = []

    def stop(signum, _frame) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    s3 = None
    try:
        s3 = start_lake(p, sup.logs)
        with (sup.logs / "prepare.log").open("ab") as log:
            print(f"Preparing the metadata database (log: {log.name})...", flush=True)
            prepare(p, log)
        for name in p.components:
            if stopping:
                break
            sup.start(name)
        announced = False
        while not stopping:
            sup.watch()
            if not announced and _healthy(p.url):
                announced = True
                _announce(p, password, origin, sup)
            time.sleep(1)
        print("\nStopping the cluster (up to 30 s)...", flush=True)
        return 0
    except CrashLoop as exc:
        print(f"omh cluster: {exc}", file=sys.stderr, flush=True)
        return 3
    except ClusterError as exc:
        print(f"omh cluster: {exc}", file=sys.stderr)
        return 2
    finally:
        sup.stop()
        if s3 is not None:  # after the workers: a load finishing its commit still reaches it
            s3.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _announce(p: Plan, password: str, origin: str, sup: Supervisor) -> None:
    names = ", ".join(p.components)
    print(
        f"\n  OMH cluster is up: {p.url}   user {afe.ADMIN_USER}   password {password} ({origin})\n"
        f"  Observatory: {p.url}/plugin/observatory\n"
        f"  Components: {names} (CeleryExecutor, queue {p.queue!r} on {_safe(p.env['AIRFLOW__CELERY__BROKER_URL'])})\n"
        f"  Metadata: {_safe(p.env['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN'])}   warehouse: {_safe(p.warehouse_url)}\n"
        f"  Lake: {_lake_line(p)}\n"
        f"  Logs: {sup.logs}   state: {p.state_file}\n"
        "  New DAGs start paused. Ctrl-C stops everything.\n",
        flush=True,
    )


def _lake_line(p: Plan) -> str:
    if not p.lake_url:
        return f"the folder {Path(p.env['OMH_HOME']) / 'lake'} (this machine only)"
    endpoint = p.env.get("AWS_ENDPOINT_URL_S3") or p.env.get("AWS_ENDPOINT_URL") or "AWS S3"
    return f"Iceberg table at {p.lake_url} (endpoint {endpoint}; catalog in the warehouse's PostgreSQL)"
