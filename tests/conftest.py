"""Shared test setup: no test writes to ``~/airflow``, the demo's ``var/`` or the user's homes."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from background import BACKGROUND, waits

_AIRFLOW_TMP: str | None = None


def pytest_configure(config):
    # Airflow reads its configuration on first import: point it at a throwaway home before any
    # test imports it (`make test` exports AIRFLOW_HOME=var/airflow, the demo's).
    global _AIRFLOW_TMP
    from transforms.ops.airflow_env import airflow_env

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
    first child compiles Great Expectations and the rest into it, once for the whole session
    (the background work's children included: tests/background.py)."""
    return BACKGROUND.pycache(tmp_path_factory)


@pytest.fixture(scope="session")
def published(tmp_path_factory) -> Path:
    """A warehouse and lake that publish the real Darién and CBP figures, loaded by ``omh ingest``
    (hostile_corpus.publish) in the background process, whose work uses only copies of it (the
    hostile corpus and the SIGKILL points: tests/background.py)."""
    return BACKGROUND.published_home(tmp_path_factory)


@pytest.fixture(autouse=True)
def _background_work(request, tmp_path_factory):
    """Starts the background work (tests/background.py) with the first test that does not measure time."""
    if not request.node.get_closest_marker("before_background"):
        BACKGROUND.start(tmp_path_factory)


def pytest_sessionfinish(session, exitstatus):
    BACKGROUND.stop()  # only if the session ended before the background work did


# ---------------------------------------------------------------------------- one real Airflow


@pytest.fixture(scope="session")
def airflow_server(tmp_path_factory):
    """``omh airflow`` (Airflow standalone) on a small OMH_HOME, shared by the slow tests that
    need the real scheduler, API server and UI (tests/omh_airflow_server.py); stopped after the
    last of them (pytest_runtest_teardown), and at the end in any case."""
    from omh_airflow_server import prepare_home, start

    from transforms.contracts.loading import load_contracts
    from transforms.ops import airflow_env as afe

    home = tmp_path_factory.mktemp("airflow_server") / "omh_home"
    prepare_home(home)
    server = start(home, expected_dags=len(load_contracts()) + 1)
    assert server.url == afe.base_url(server.port)
    _AIRFLOW_SERVERS.append(server)
    yield server
    server.stop()


_AIRFLOW_SERVERS: list = []  # the shared Airflow, once started
_LAST_ON_AIRFLOW: list = []  # the last test that needs it


def pytest_runtest_teardown(item, nextitem):
    # Stopped as soon as no test needs it any more: the tests that wait for the background work
    # run after it, and an idle Airflow would take CPU from that work (stop() may run twice).
    if item in _LAST_ON_AIRFLOW:
        for server in _AIRFLOW_SERVERS:
            server.stop()


def pytest_collection_modifyitems(config, items):
    # In this order:
    # * the tests that measure time (marked ``before_background``), on a machine that the
    #   background work (tests/background.py) does not load yet;
    # * the tests that need neither the shared Airflow nor the background work;
    # * the tests on the shared Airflow, together, so that it is started late and stopped at once
    #   (after the last of them); a test marked ``while_airflow_waits`` runs among them, in its
    #   file's order (it fills a wait). Mostly waits themselves, they run beside the background work;
    # * last, the tests that use a fixture whose work runs in the background (background.waits),
    #   which has had the whole session to run in by then; in their files' order.

    def with_the_shared_airflow(item) -> bool:
        return "airflow_server" in getattr(item, "fixturenames", ()) or bool(
            item.get_closest_marker("while_airflow_waits")
        )

    def order(item) -> tuple[bool, bool, bool]:
        return (
            waits(item),
            with_the_shared_airflow(item),
            not item.get_closest_marker("before_background"),
        )

    items.sort(key=order)
    BACKGROUND.select(items)
    on_airflow = [item for item in items if "airflow_server" in getattr(item, "fixturenames", ())]
    _LAST_ON_AIRFLOW[:] = on_airflow[-1:]


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def wh(request, tmp_path):
    """An empty warehouse with its schema, once on DuckDB and once on the real PostgreSQL."""
    import contextlib

    from test_warehouse import postgres_schema

    from transforms.config import Settings
    from transforms.storage.warehouse import Warehouse

    with contextlib.ExitStack() as stack:
        if request.param == "postgres":
            url = stack.enter_context(postgres_schema())
        else:
            url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
        w = stack.enter_context(Warehouse(Settings(home=Path(tmp_path), warehouse_url=url)))
        w.ensure_schema()
        yield w
