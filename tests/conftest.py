"""Shared test setup: no test writes to ``~/airflow``, the demo's ``var/`` or the user's homes."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_AIRFLOW_TMP: str | None = None


def pytest_configure(config):
    # Airflow reads its configuration on first import: point it at a throwaway home before any
    # test imports it (`make test` exports AIRFLOW_HOME=var/airflow, the demo's).
    global _AIRFLOW_TMP
    from transforms.airflow_env import airflow_env

    _AIRFLOW_TMP = tempfile.mkdtemp(prefix="omh-tests-")
    env = airflow_env(_AIRFLOW_TMP)
    os.environ.update({k: v for k, v in env.items() if k.startswith("AIRFLOW")})


def pytest_unconfigure(config):
    if _AIRFLOW_TMP:
        shutil.rmtree(_AIRFLOW_TMP, ignore_errors=True)


@pytest.fixture()
def omh_home(tmp_path, monkeypatch) -> Path:
    """An empty OMH_HOME for one test (landing, lake, warehouse, reports all under it)."""
    home = tmp_path / "omh_home"
    monkeypatch.setenv("OMH_HOME", str(home))
    return home


# ---------------------------------------------------------------------------- omh as a child process


@pytest.fixture(scope="session")
def pycache(tmp_path_factory) -> Path:
    """One bytecode cache for every ``omh`` child of the session (hostile_corpus.omh_env): the
    first child compiles Great Expectations and the rest into it, once for the whole session."""
    return tmp_path_factory.mktemp("pycache")


@pytest.fixture(scope="session")
def published(tmp_path_factory, pycache) -> Path:
    """A warehouse and lake that publish the real Darién and CBP figures, loaded by ``omh ingest``.
    Shared by the hostile corpus and the fault tests, which only ever work on copies of it."""
    import hostile_corpus as hc

    home = tmp_path_factory.mktemp("published") / "home"
    for path, source in ((hc.DARIEN, "pan_darien_yearly"), (hc.CBP, "usa_cbp_swb_encounters")):
        run = hc.run_omh(["ingest", str(path), "--source", source], hc.omh_env(home, pycache), home.parent / "w")
        assert run.rc == 0, run.output
    (total, per) = hc.figures(home)
    assert dict((s, (n, v)) for s, n, v in per) == {
        "pan_darien_yearly": (28, 404_516),
        "usa_cbp_swb_encounters": (1936, 7_421_677),
    }
    return home


# ---------------------------------------------------------------------------- one real Airflow


@pytest.fixture(scope="session")
def airflow_server(tmp_path_factory):
    """``omh airflow`` (Airflow standalone) on a small OMH_HOME, shared by the slow tests that
    need the real scheduler, API server and UI (tests/omh_airflow_server.py); stopped at the end."""
    from omh_airflow_server import prepare_home, start

    from transforms import airflow_env as afe
    from transforms.contracts import load_contracts

    home = tmp_path_factory.mktemp("airflow_server") / "omh_home"
    prepare_home(home)
    server = start(home, expected_dags=len(load_contracts()) + 1)
    assert server.url == afe.base_url(server.port)
    yield server
    server.stop()


def pytest_collection_modifyitems(config, items):
    # The tests on the shared Airflow run last, so that it is started late and stopped at once; a
    # test marked ``while_airflow_waits`` runs among them, in its file's order (it fills a wait).
    def with_the_shared_airflow(item) -> bool:
        return "airflow_server" in getattr(item, "fixturenames", ()) or bool(
            item.get_closest_marker("while_airflow_waits")
        )

    items.sort(key=with_the_shared_airflow)
