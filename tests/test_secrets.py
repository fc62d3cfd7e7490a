"""Secrets: a connection's password never reaches the screen, the log or an Airflow task log.

No mocks: ``omh`` runs in-process (``transforms.tools.cli.main``) with a warehouse URL whose password a
library error quotes in full (libpq echoes a malformed URI), and the log file is read back.
"""

from __future__ import annotations

import logging

import pytest

from transforms.config import mask_secrets, url_password

SECRET = "S3cr-t%40x"  # percent-encoded "@" inside: a password with URL-special characters


@pytest.mark.parametrize(
    "text,leak",
    [
        (f"postgresql://omh:{SECRET}@db:5432/omh", SECRET),
        (f"postgresql+psycopg://airflow:{'p@ss/w0rd'}@postgres/airflow", "w0rd"),
        ("redis://:r3dis@redis:6379/0", "r3dis"),
        ("host=db user=omh password=kv-S3cret dbname=omh", "kv-S3cret"),
        ("options: password='quoted S3cret' port=5432", "quoted S3cret"),
    ],
)
def test_mask_secrets_hides_passwords(text, leak):
    masked = mask_secrets(text)
    assert leak not in masked and "<masked>" in masked
    assert mask_secrets("postgresql://omh@db/omh duckdb:///var/w.duckdb") == (
        "postgresql://omh@db/omh duckdb:///var/w.duckdb"
    )


def test_a_password_in_a_library_error_reaches_neither_screen_nor_log(tmp_path, monkeypatch, capsys):
    from transforms.tools.cli import main

    home = tmp_path / "home"
    url = f"postgresql://omh:{SECRET}@[db/omh"  # libpq quotes this whole URI in its error
    monkeypatch.setenv("OMH_HOME", str(home))
    monkeypatch.setenv("OMH_WAREHOUSE_URL", url)
    assert main(["sql", "SELECT 1"]) == 1
    err = capsys.readouterr().err
    assert "cannot connect to the PostgreSQL warehouse" in err and "omh:<masked>@" in err
    # A line the code itself logs with the URL, and a traceback quoting it.
    log = logging.getLogger("omh.test")
    log.error("connecting to %s", url)
    try:
        raise RuntimeError(f"failed on {url}")
    except RuntimeError:
        log.exception("with a trace")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = (home / "logs" / "omh.log").read_text(encoding="utf-8")
    assert (
        "connecting to postgresql://omh:<masked>@" in text and "failed on postgresql://omh:<masked>@" in text
    )
    assert SECRET not in text and SECRET not in err
    assert "cannot connect to the PostgreSQL warehouse" in text  # the failure itself is logged


def test_airflow_task_logs_redact_the_warehouse_password(monkeypatch):
    from airflow.sdk._shared.secrets_masker import redact

    from transforms.config import mask_in_airflow

    monkeypatch.setenv("OMH_WAREHOUSE_URL", f"postgresql://omh:{SECRET}@db:5432/omh")
    assert url_password(f"postgresql://omh:{SECRET}@db/omh") == "S3cr-t@x"
    mask_in_airflow()
    line = "psycopg said: password S3cr-t@x rejected"
    assert "S3cr-t@x" not in redact(line)
