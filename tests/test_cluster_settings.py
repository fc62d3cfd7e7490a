"""The cluster's settings file (deploy/cluster.env) as the launcher reads it, without servers."""

from __future__ import annotations

import pytest

from transforms.tools.cluster import CLUSTER_ENV, ClusterError, hostname, read_env_file, with_database


def test_the_settings_file_names_the_celery_executor_and_two_workers():
    env = read_env_file(CLUSTER_ENV)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["OMH_CELERY_WORKERS"] == "2"
    assert int(env["OMH_WAREHOUSE_POOL_SLOTS"]) > 1
    # Nothing that depends on where a component runs, and no secret.
    assert not [k for k in env if k.endswith(("_CONN", "_URL", "SECRET_KEY", "JWT_SECRET", "FERNET_KEY"))]


def test_a_bad_line_is_refused_with_the_file_and_line(tmp_path):
    path = tmp_path / "cluster.env"
    path.write_text("# comment\nA=1\nnot a setting\n", encoding="utf-8")
    with pytest.raises(ClusterError, match=r"cluster\.env, line 3: expected KEY=VALUE"):
        read_env_file(path)


def test_a_worker_names_itself_in_its_hostname(monkeypatch):
    monkeypatch.setenv("OMH_WORKER_NAME", "worker-2")
    assert hostname().startswith("worker-2.")
    monkeypatch.delenv("OMH_WORKER_NAME")
    assert not hostname().startswith("worker-")


def test_databases_are_named_in_the_admin_url():
    url = with_database("postgresql://postgres@127.0.0.1:5432/postgres", "omh_cluster_wh")
    assert url == "postgresql://postgres@127.0.0.1:5432/omh_cluster_wh"


def test_an_object_storage_lake_is_refused_rather_than_ignored(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "OMH_HOME": str(tmp_path), "OMH_LAKE_URL": "s3://bucket/lake"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "omh"), "cluster"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert f"OMH_LAKE_URL is not supported yet; the lake is the folder {tmp_path / 'lake'}" in done.stderr
