"""The Airflow side of an installation: names shared by the DAG files, and the local Airflow home.

Standard library only at module level. The DAG files take their asset and pool names from here,
so the source DAGs and the regional DAG cannot drift apart; and ``transforms/`` does not import
Airflow at module level: only the functions that set Airflow up (``omh demo``, ``omh airflow``)
import it, after the environment below is in place (Airflow reads its configuration on import).

Embedded default: ``$OMH_HOME/airflow`` holds ``airflow.cfg``, the SQLite metadata database and
the task logs; the DAGs and plugins are the repository's own ``dags/`` and ``plugins/``.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from transforms.config import REPO_ROOT, settings

DAGS_DIR = REPO_ROOT / "dags"
PLUGINS_DIR = REPO_ROOT / "plugins"

OWNER = "omh-data-engineering"
# One writer per DuckDB file: every task that writes the warehouse takes the single slot.
POOL = "omh_warehouse"
POOL_SLOTS = 1
POOL_DESCRIPTION = "Serializes warehouse writes: DuckDB allows one writer process per file."
REGIONAL_DAG_ID = "omh_regional"
API_HOST = "127.0.0.1"
ADMIN_USER = "admin"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def dag_id(source_id: str) -> str:
    """The DAG of one source contract."""
    return f"omh_{source_id}"


def asset_name(source_id: str) -> str:
    """The Airflow Asset a source DAG updates when it has loaded new files."""
    return f"omh_{source_id}"


def asset_uri(source_id: str) -> str:
    return f"omh://warehouse/fact_flow/{source_id}"


def executor() -> str | None:
    """The executor the installation names (``AIRFLOW__CORE__EXECUTOR``); None: Airflow's default."""
    return os.environ.get("AIRFLOW__CORE__EXECUTOR") or None


def retry_delay():
    """First delay before a failed task is tried again: ``OMH_RETRY_DELAY_SECONDS``, default 2 min."""
    import datetime as dt

    return dt.timedelta(seconds=float(os.environ.get("OMH_RETRY_DELAY_SECONDS") or 120))


def airflow_home(home: str | os.PathLike | None = None) -> Path:
    return settings(home).home / "airflow"


def airflow_port() -> int:
    """The API server's (and UI's) port: ``OMH_AIRFLOW_PORT``, default 8080."""
    return int(os.environ.get("OMH_AIRFLOW_PORT") or 8080)


def log_server_ports(port: int | None = None) -> dict[str, str]:
    port = port or airflow_port()
    if port == 8080:
        return {}
    return {
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port + 1),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port + 2),
    }


def base_url(port: int | None = None) -> str:
    return f"http://{API_HOST}:{port or airflow_port()}"


def lineage_file(home: str | os.PathLike | None = None) -> Path:
    """Where the OpenLineage file transport writes its events (one JSON event a line)."""
    return settings(home).home / "lineage" / "openlineage.jsonl"


def passwords_file(home: str | os.PathLike | None = None) -> Path:
    return airflow_home(home) / "passwords.json"


def airflow_env(home: str | os.PathLike | None = None) -> dict[str, str]:
    """Environment of the embedded Airflow of an OMH home (SQLite, no examples, repo DAGs)."""
    cfg = settings(home)
    af_home = airflow_home(cfg.home)
    url = base_url()
    transport = os.environ.get("OMH_OPENLINEAGE_TRANSPORT") or json.dumps(
        {"type": "file", "log_file_path": str(lineage_file(cfg.home)), "append": True}
    )
    env = {
        "OMH_HOME": str(cfg.home),
        "AIRFLOW_HOME": str(af_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{af_home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(af_home / "logs"),
        # Parsing imports pydantic and the contracts: well under the default, but a cold cache
        # on a slow disk should not turn into a DAG import error.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        # LocalExecutor starts this many worker processes; warehouse tasks run one at a time
        # anyway (the pool), so a laptop needs no more.
        "AIRFLOW__CORE__PARALLELISM": os.environ.get("AIRFLOW__CORE__PARALLELISM", "4"),
        # The UI and REST API on the loopback interface only, one worker (a laptop, not a cluster);
        # tasks reach the Execution API there.
        "AIRFLOW__API__HOST": API_HOST,
        "AIRFLOW__API__PORT": str(airflow_port()),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        # The scheduler and the triggerer serve their task logs on two more ports (8793 and 8794
        # beside 8080); on another API port they follow it, so two installations do not collide.
        **log_server_ports(),
        # One user, admin, whose password `omh airflow` writes to the file below (OMH_AIRFLOW_PASSWORD).
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(cfg.home)),
        # Lineage: every load emits its landing file, lake leaves and warehouse tables (OpenLineage
        # provider) to a file by default; OMH_OPENLINEAGE_TRANSPORT (JSON) names another transport.
        "AIRFLOW__OPENLINEAGE__TRANSPORT": transport,
        "AIRFLOW__OPENLINEAGE__NAMESPACE": os.environ.get("OMH_OPENLINEAGE_NAMESPACE", "omh"),
        "GX_ANALYTICS_ENABLED": "False",
    }
    return env


def apply_env(home: str | os.PathLike | None = None) -> dict[str, str]:
    """Put the Airflow environment into ``os.environ``; call before the first ``import airflow``."""
    env = airflow_env(home)
    os.environ.update(env)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    # The OpenLineage file transport appends to its file but does not create its folder.
    lineage_file(env["OMH_HOME"]).parent.mkdir(parents=True, exist_ok=True)
    return env


def prepare_airflow(home: str | os.PathLike | None = None) -> dict[str, str]:
    """Migrate the metadata database and create the warehouse pool (idempotent).

    Imports Airflow, so the environment is applied first; if Airflow was already imported in this
    process with another configuration, that is an error rather than a silent mix of homes.
    """
    import sys

    env = apply_env(home)
    if "airflow.configuration" in sys.modules:
        from airflow.configuration import conf

        configured = conf.get("database", "sql_alchemy_conn")
        if configured != env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]:
            raise RuntimeError(f"Airflow is already configured for {configured}; run this in a fresh process")
    from airflow.utils import db

    db.upgradedb()
    ensure_pool()
    return env


def ensure_pool() -> None:
    """The one-slot pool of warehouse writes."""
    from airflow.models.pool import Pool

    Pool.create_or_update_pool(POOL, slots=POOL_SLOTS, description=POOL_DESCRIPTION, include_deferred=False)


def admin_password(home: str | os.PathLike | None = None) -> tuple[str, str]:
    """The admin password and where it came from: ``OMH_AIRFLOW_PASSWORD``, else the one kept in
    the passwords file from an earlier start, else a new random one. Written to the passwords
    file that SimpleAuthManager reads (``[core] simple_auth_manager_passwords_file``)."""
    path = passwords_file(home)
    given = os.environ.get("OMH_AIRFLOW_PASSWORD")
    kept = None
    if path.exists():
        try:
            kept = json.loads(path.read_text(encoding="utf-8")).get(ADMIN_USER)
        except (OSError, ValueError, AttributeError):
            kept = None
    if given:
        password, origin = given, "OMH_AIRFLOW_PASSWORD"
    elif kept:
        password, origin = kept, f"kept in {path}"
    else:
        password, origin = secrets.token_urlsafe(12), f"generated, kept in {path}"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({ADMIN_USER: password}) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return password, origin


def _announce_when_ready(url: str, password: str, stop) -> None:
    """Print the login once the API server answers (standalone's own banner carries no password)."""
    import time
    import urllib.request

    while not stop.is_set():
        try:
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2):
                break
        except Exception:
            time.sleep(2)
    else:
        return
    print(
        f"\n  Airflow is up: {url}   user {ADMIN_USER}   password {password}\n"
        f"  Observatory: {url}/plugin/observatory   (API: {url}/observatory/api/completeness)\n",
        flush=True,
    )


def run_standalone(home: str | os.PathLike | None = None) -> int:
    """``omh airflow``: ``airflow standalone`` (scheduler, DAG processor, triggerer, API server and
    UI) on this home, with the project's DAGs and plugin (``omh airflow`` lands the samples first
    in an empty landing zone: ``demo.seed_landing``)."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    cfg = settings(home).ensure()
    env = prepare_airflow(cfg.home)
    password, origin = admin_password(cfg.home)
    url = env["AIRFLOW__API__BASE_URL"]
    print(
        f"Airflow home {env['AIRFLOW_HOME']}, DAGs from {env['AIRFLOW__CORE__DAGS_FOLDER']}, "
        f"plugins from {env['AIRFLOW__CORE__PLUGINS_FOLDER']}.\n"
        f"UI and REST API: {url}   user: {ADMIN_USER}   password: {password} ({origin})\n"
        f"REST token: curl -X POST {url}/auth/token -H 'Content-Type: application/json' "
        f'-d \'{{"username": "{ADMIN_USER}", "password": "..."}}\'\n'
        f"New DAGs start paused. Lineage events: {lineage_file(cfg.home)}. Alerts: {cfg.home / 'alerts.jsonl'}.\n"
        "Ctrl-C stops it.",
        flush=True,
    )
    # standalone starts each component as an `airflow` command: the venv's bin must be on PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    # Its own process group, which this process stops: a Ctrl-C (or SIGTERM) here is passed on as
    # the SIGINT standalone stops on, and whatever is left of the group after it (a scheduler slow
    # to stop, LocalExecutor workers) is terminated, so no component outlives `omh airflow`.
    child = subprocess.Popen(
        [sys.executable, "-m", "airflow", "standalone"],
        env={**os.environ, **env, "PATH": path},
        start_new_session=True,
        # A shell's background job inherits SIGINT ignored, and standalone stops on SIGINT only.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    ready = threading.Event()
    threading.Thread(target=_announce_when_ready, args=(url, password, ready), daemon=True).start()
    stopping: list[float] = []

    def stop(*_) -> None:
        if not stopping:
            print("\nStopping Airflow (up to 30 s)...", flush=True)
        stopping.append(time.monotonic())
        if child.poll() is None:
            child.send_signal(signal.SIGINT)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                return child.wait(timeout=1)
            except subprocess.TimeoutExpired:
                if stopping and time.monotonic() - stopping[0] > STOP_SECONDS:
                    return 1
    finally:
        ready.set()
        _stop_group(child.pid)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


STOP_SECONDS = 30


def _stop_group(pgid: int, grace: float = 10.0) -> None:
    """Terminate what is left of a process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
    import signal
    import time

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
