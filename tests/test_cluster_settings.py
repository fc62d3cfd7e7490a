"""The cluster's settings file (deploy/cluster.env) as the launcher reads it, without servers."""

from __future__ import annotations

import pytest

from transforms.tools.cluster import CLUSTER_ENV, ClusterError, hostname, read_env_file, with_database


def test_the_settings_file_names_the_celery_executor_and_two_workers():
    env = read_env_file(CLUSTER_ENV)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["OMH_CELERY_WORKERS"] == "2"
    assert int(env["OMH_WAREHOUSE_POOL_SLOTS"]) > 1
    # Nothing that depends on where a component runs, and no secret. The lake's s3:// URL names
    # the shared table, the same from every machine (its endpoint and credentials are not here).
    urls = [k for k in env if k.endswith(("_CONN", "_URL", "SECRET_KEY", "JWT_SECRET", "FERNET_KEY"))]
    assert urls == ["OMH_LAKE_URL"] and env["OMH_LAKE_URL"].startswith("s3://")


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


def test_a_folder_lake_url_is_refused_rather_than_ignored(tmp_path):
    """A cluster's workers may run on several machines: its lake is in object storage (or, set
    empty, the folder lake of one machine), never a folder named by URL that only one machine has."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "OMH_HOME": str(tmp_path), "OMH_LAKE_URL": str(tmp_path / "lake")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "omh"), "cluster"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "a cluster's lake is s3://bucket/prefix" in done.stderr


def test_the_cluster_lake_is_the_settings_files_object_storage_unless_overridden(monkeypatch):
    from transforms.tools.cluster import lake_of, read_env_file

    shared = read_env_file()
    assert shared["OMH_LAKE_URL"].startswith("s3://")
    monkeypatch.delenv("OMH_LAKE_URL", raising=False)
    assert lake_of(shared) == shared["OMH_LAKE_URL"]
    monkeypatch.setenv("OMH_LAKE_URL", "s3://other/prefix")
    assert lake_of(shared) == "s3://other/prefix"
    monkeypatch.setenv("OMH_LAKE_URL", "")
    assert lake_of(shared) == ""  # the folder lake, one machine
