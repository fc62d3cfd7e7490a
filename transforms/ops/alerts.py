"""Alerts for the data engineers: a country's file for a period not arrived, or not loaded, by its due date.

Every source DAG carries a ``DeadlineAlert`` (see ``dags/omh_sources.py`` and the plugin's
``DeliveryDueDate``): when the run of a period has not succeeded by the period's due date (plus a
grace), Airflow's triggerer awaits ``delivery_missed`` below. An alert is

* appended to ``$OMH_HOME/alerts.jsonl`` (one JSON object a line), which the Observatory page lists;
* logged (the triggerer's log), and noted by the source DAG's own tasks, which log the period's
  state ("waiting", "NOT LOADED ... was due on ...") in the task log;
* sent through an Airflow connection when one is configured: ``OMH_ALERT_CONN_ID`` (default
  ``omh_alerts``), of type ``smtp``/``email`` (e-mail: ``extra`` gives ``to`` and ``from``) or
  ``http``/``https``/``slackwebhook`` (a JSON ``{"text": ...}`` POST, e.g. a Slack incoming
  webhook). No connection is required: without one, the file and the log are the channels.

Standard library at module level: the triggerer imports this to run the callback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
from typing import Any

from transforms.storage.alert_log import ALERTS_FILE, alerts_path, read_alerts, write_alert  # noqa: F401 (re-exported)

log = logging.getLogger("omh.alerts")

DEFAULT_CONN_ID = "omh_alerts"
EMAIL_TYPES = {"smtp", "email"}
WEBHOOK_TYPES = {"http", "https", "slackwebhook", "slack_webhook", "webhook"}


def delivery_alert(
    *,
    source_id: str,
    reporter_iso3: str | None,
    dag_id: str,
    run_id: str | None,
    data_interval_start,
    data_interval_end,
    lag_months: int,
    due_day: int,
    frequency: str = "",
    deadline_time=None,
    now: dt.datetime | None = None,
) -> dict:
    """The alert record of a period whose file did not arrive, or did not load, by its due date."""
    from transforms.ops.delivery import Period

    now = now or dt.datetime.now(dt.UTC)
    period = Period.of_interval(data_interval_start, data_interval_end, frequency, lag_months, due_day)
    who = reporter_iso3 or "several member states"
    message = (
        f"{who}: the {frequency + ' ' if frequency else ''}file of {period.label} for source "
        f"{source_id} was due on {period.due} and is not loaded (DAG {dag_id}, run {run_id})."
    )
    return {
        "at": now.isoformat(timespec="seconds"),
        "kind": "delivery_missed",
        "source_id": source_id,
        "reporter_iso3": reporter_iso3,
        "dag_id": dag_id,
        "run_id": run_id,
        "period": period.label,
        "period_start": period.start.isoformat(),
        "period_end": period.end.isoformat(),
        "due_date": period.due.isoformat(),
        "deadline_time": str(deadline_time) if deadline_time is not None else None,
        "message": message,
    }


# ---------------------------------------------------------------------------- channels


def _extra(conn) -> dict:
    extra = getattr(conn, "extra_dejson", None)
    if isinstance(extra, dict):
        return extra
    raw = getattr(conn, "extra", None) or "{}"
    try:
        return json.loads(raw)
    except (TypeError, json.JSONDecodeError):
        return {}


def webhook_url(conn) -> str:
    """The URL of a webhook connection: a full URL in ``host`` or ``password`` (Slack keeps the
    token there), else built from scheme, host, port and ``schema`` (the path)."""
    for candidate in (conn.password, conn.host):
        if candidate and str(candidate).startswith(("http://", "https://")):
            return str(candidate)
    conn_type = (conn.conn_type or "").lower()
    if conn_type in ("slackwebhook", "slack_webhook"):
        return f"https://{conn.host or 'hooks.slack.com/services'}/{conn.password or ''}".rstrip("/")
    scheme = "http" if conn_type == "http" else "https"
    port = f":{conn.port}" if conn.port else ""
    path = f"/{conn.schema.lstrip('/')}" if conn.schema else ""
    return f"{scheme}://{conn.host}{port}{path}"


def send_alert(alert: dict, conn, timeout: float = 10.0) -> str:
    """Send one alert through a connection; returns what was done (for the alert's ``sent``)."""
    conn_type = (conn.conn_type or "").lower()
    text = alert["message"]
    if conn_type in WEBHOOK_TYPES:
        import urllib.request

        url = webhook_url(conn)
        body = json.dumps({"text": text, "alert": alert}, ensure_ascii=False, default=str).encode()
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return f"webhook {conn.conn_id}: HTTP {response.status}"
    if conn_type in EMAIL_TYPES:
        import smtplib
        from email.message import EmailMessage

        extra = _extra(conn)
        recipients = extra.get("to") or []
        if isinstance(recipients, str):
            recipients = [r.strip() for r in recipients.split(",") if r.strip()]
        if not recipients:
            raise ValueError(f"connection {conn.conn_id}: no recipients (extra 'to')")
        msg = EmailMessage()
        msg["Subject"] = (
            f"[OMH] {alert.get('reporter_iso3') or alert.get('source_id')} {alert.get('period')}: file not loaded"
        )
        msg["From"] = extra.get("from") or extra.get("from_email") or conn.login or "omh-airflow@localhost"
        msg["To"] = ", ".join(recipients)
        msg.set_content(text)
        port = int(conn.port or (465 if extra.get("ssl") else 25))
        smtp_cls = smtplib.SMTP_SSL if extra.get("ssl") else smtplib.SMTP
        with smtp_cls(conn.host or "localhost", port, timeout=timeout) as smtp:
            if extra.get("starttls"):
                smtp.starttls()
            if conn.login:
                smtp.login(conn.login, conn.password or "")
            smtp.send_message(msg)
        return f"e-mail {conn.conn_id}: {', '.join(recipients)}"
    raise ValueError(f"connection {conn.conn_id}: type {conn_type!r} is neither e-mail nor webhook")


async def _connection(conn_id: str):
    """The Airflow connection, or None when none is configured (or Airflow cannot be asked)."""
    try:
        from airflow.sdk import BaseHook

        return await BaseHook.aget_connection(conn_id)
    except Exception as exc:  # not found, or not inside Airflow
        log.info(
            "no alert connection %r (%s): alert kept in %s and the log",
            conn_id,
            exc.__class__.__name__,
            ALERTS_FILE,
        )
        return None


# ---------------------------------------------------------------------------- the Deadline callback


def _key(alert: dict) -> tuple:
    return (alert.get("kind"), alert.get("dag_id"), alert.get("run_id"), alert.get("period"))


async def delivery_missed(
    source_id: str,
    reporter_iso3: str | None = None,
    lag_months: int = 1,
    due_day: int = 15,
    frequency: str = "",
    context: dict[str, Any] | None = None,
    **_: Any,
) -> str:
    """Callback of every source DAG's ``DeadlineAlert`` (an ``AsyncCallback``, run by the triggerer).

    ``context`` is what Airflow passes: the run (``dag_run``: dag_id, run_id, data interval) and
    the deadline (``deadline``: deadline_time). Returns the alert's message: Airflow keeps the
    return value as the callback's output, a text column (a dict there breaks the triggerer).
    """
    context = context or {}
    run = context.get("dag_run") or {}
    alert = delivery_alert(
        source_id=source_id,
        reporter_iso3=reporter_iso3,
        dag_id=run.get("dag_id") or f"omh_{source_id}",
        run_id=run.get("run_id") or run.get("dag_run_id"),
        data_interval_start=run.get("data_interval_start"),
        data_interval_end=run.get("data_interval_end"),
        lag_months=lag_months,
        due_day=due_day,
        frequency=frequency,
        deadline_time=(context.get("deadline") or {}).get("deadline_time"),
    )
    # At least once: a triggerer restarted while running the callback runs it again.
    if any(_key(a) == _key(alert) for a in await asyncio.to_thread(read_alerts)):
        log.info("alert already given: %s", alert["message"])
        return f"already given: {alert['message']}"
    sent = [f"file {alerts_path()}"]
    conn = await _connection(os.environ.get("OMH_ALERT_CONN_ID", DEFAULT_CONN_ID))
    if conn is not None:
        try:
            sent.append(await asyncio.to_thread(send_alert, alert, conn))
        except Exception as exc:  # the alert is kept in the file whatever the channel does
            sent.append(f"sending through {conn.conn_id} failed: {exc}")
            log.warning("alert not sent through %s: %s", conn.conn_id, exc)
    alert["sent"] = sent
    await asyncio.to_thread(write_alert, alert)
    log.warning("DELIVERY ALERT %s", alert["message"])
    return f"{alert['message']} Sent: {'; '.join(sent)}"
