"""The Airflow side of an installation: names shared by the DAG files, and the local Airflow home.

Standard library only at module level. The DAG files take their asset and pool names from here,
so the source DAGs and the regional DAG cannot drift apart; and ``transforms/`` does not import
Airflow at module level: only the functions that set Airflow up (``omh demo``, ``omh airflow``)
import it, after the environment below is in place (Airflow reads its configuration on import).

Embedded default: ``$OMH_HOME/airflow`` holds ``airflow.cfg``, the SQLite metadata database and
the task logs; the DAGs and plugins are the repository's own ``dags/`` and ``plugins/``.
"""

from __future__ import annotations

import os
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


def dag_id(source_id: str) -> str:
    """The DAG of one source contract."""
    return f"omh_{source_id}"


def asset_name(source_id: str) -> str:
    """The Airflow Asset a source DAG updates when it has loaded new files."""
    return f"omh_{source_id}"


def asset_uri(source_id: str) -> str:
    return f"omh://warehouse/fact_flow/{source_id}"


def airflow_home(home: str | os.PathLike | None = None) -> Path:
    return settings(home).home / "airflow"


def airflow_env(home: str | os.PathLike | None = None) -> dict[str, str]:
    """Environment of the embedded Airflow of an OMH home (SQLite, no examples, repo DAGs)."""
    cfg = settings(home)
    af_home = airflow_home(cfg.home)
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
        "GX_ANALYTICS_ENABLED": "False",
    }
    return env


def apply_env(home: str | os.PathLike | None = None) -> dict[str, str]:
    """Put the Airflow environment into ``os.environ``; call before the first ``import airflow``."""
    env = airflow_env(home)
    os.environ.update(env)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
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


def run_standalone(home: str | os.PathLike | None = None) -> int:
    """``airflow standalone`` (scheduler, DAG processor, triggerer, API server and UI) on this home."""
    import signal
    import subprocess
    import sys

    env = prepare_airflow(home)
    print(
        f"Airflow home {env['AIRFLOW_HOME']}, DAGs from {env['AIRFLOW__CORE__DAGS_FOLDER']}.\n"
        "The UI is at http://localhost:8080; the admin password is printed below and kept in "
        f"{env['AIRFLOW_HOME']}/simple_auth_manager_passwords.json.generated. Ctrl-C stops it.",
        flush=True,
    )
    # standalone starts each component as an `airflow` command: the venv's bin must be on PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    child = subprocess.Popen(
        [sys.executable, "-m", "airflow", "standalone"],
        env={**os.environ, **env, "PATH": path},
        # A shell's background job inherits SIGINT ignored, and standalone stops on SIGINT only.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # standalone stops its components cleanly on SIGINT only; on SIGTERM it would leave them
    # running, so a SIGTERM to this process is passed on as SIGINT.
    previous = signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGINT))
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue  # Ctrl-C reached the child too: wait for its shutdown
    finally:
        signal.signal(signal.SIGTERM, previous)
