"""The data behind the Observatory page (the Airflow plugin in ``plugins/omh_observatory``).

* ``completeness``: the 23 member states x recent months, from the warehouse's reporting
  completeness view ``v_completeness_by_month`` (the contracts' delivery calendars), with the
  status an engineer acts on: loaded, loaded with warnings, late, refused, missing (or not due yet,
  no source);
* ``validations``: the last file validated per source, with its HTML report;
* ``unmapped``: labels a file used that its contract does not map (from each file's last validation);
* ``alerts``: the Deadline Alerts written to ``$OMH_HOME/alerts.jsonl``, each marked resolved once
  its period's figures are loaded;
* ``bulletins``: the newest monthly bulletin per language (``$OMH_HOME/bulletins``, written by the
  regional DAG or ``omh bulletin``), as paths the app serves under ``bulletins/``.

Read-only: one read-only warehouse connection per ``overview``, closed at once. A load does not
hold it up (it writes a copy of the DuckDB file and publishes it whole, decision 0007); a file that
cannot be opened all the same (a publication in the very instant, a server away) raises
``WarehouseBusy`` and the caller serves its last answer (the app caches; the regional DAG also
writes ``$OMH_HOME/reports/observatory.json``). The same functions work on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

from transforms.config import Settings, settings, today
from transforms.contracts import codelists

SNAPSHOT = "observatory.json"
DEFAULT_MONTHS = 24

# Grid statuses, worst first, with what an engineer reads in the legend.
STATUSES = {
    "missing": ("Missing", "due date passed, no figures loaded"),
    "partial": ("Partial", "some of the member state's sources are in (k of n), another is missing"),
    "refused": ("Refused", "the file came and was refused: see its report"),
    "late": ("Late", "loaded, but received after its due date"),
    "warnings": ("Loaded with warnings", "loaded; the validation report lists warnings"),
    "loaded": ("Loaded", "loaded on time"),
    "not_due": ("Not due yet", "the period's file is not due yet"),
    "no_source": ("No source", "no contract covers this month"),
    "unknown": ("Unknown", "no warehouse yet: run a DAG (or make demo)"),
}


class WarehouseBusy(RuntimeError):
    """The DuckDB file is held by a writer (a running load); try again in a moment."""


def _month_start(d: dt.date, back: int) -> dt.date:
    index = d.year * 12 + d.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _members() -> list[dict]:
    return codelists.members()


# ---------------------------------------------------------------------------- queries


def _completeness(wh, months: int) -> dict:
    cols, rows = wh.query(
        "SELECT reporter_iso3, month_start, status, sources_expected, validated, refused, late, missing, "
        "not_due FROM v_completeness_by_month ORDER BY month_start"
    )
    cells = [dict(zip(cols, r, strict=True)) for r in rows]
    all_months = sorted({c["month_start"] for c in cells})
    shown = all_months[-months:] if months else all_months
    first = shown[0] if shown else None

    # The sources behind each cell (for the tooltip): one row per source and delivery period.
    cols, rows = wh.query(
        "SELECT reporter_iso3, source_id, period_start, period_end, due_date, status, files_loaded, "
        "files_refused FROM v_completeness WHERE period_end >= ?",
        [first or dt.date(1900, 1, 1)],
    )
    periods = [dict(zip(cols, r, strict=True)) for r in rows]
    # Loaded with warnings: a loaded file covering the month carried warnings.
    cols, rows = wh.query(
        "SELECT DISTINCT c.reporter_iso3, c.source_id, c.period_start, c.period_end "
        "FROM file_coverage c JOIN file_manifest m ON m.source_id = c.source_id AND m.sha256 = c.sha256 "
        "WHERE m.status = 'loaded' AND m.warnings > 0 AND c.period_end >= ?",
        [first or dt.date(1900, 1, 1)],
    )
    warned = [dict(zip(cols, r, strict=True)) for r in rows]

    by_key = {(c["reporter_iso3"], c["month_start"]): c for c in cells}
    countries = []
    for m in _members():
        row_cells = []
        for month in shown:
            c = by_key.get((m["iso3"], month)) or {"status": "no_source"}
            month_end = _month_start(month, -1) - dt.timedelta(days=1)
            status = c["status"]
            if status == "missing" and c.get("validated"):
                status = "partial"  # k of n sources in: not the same as nothing at all
            if status == "on_time":
                status = "loaded"
                if any(
                    w["reporter_iso3"] == m["iso3"]
                    and w["period_start"] <= month_end
                    and w["period_end"] >= month
                    for w in warned
                ):
                    status = "warnings"
            sources = [
                {
                    "source_id": p["source_id"],
                    "status": p["status"],
                    "period_start": _iso(p["period_start"]),
                    "period_end": _iso(p["period_end"]),
                    "due_date": _iso(p["due_date"]),
                }
                for p in periods
                if p["reporter_iso3"] == m["iso3"]
                and p["period_start"] <= month_end
                and p["period_end"] >= month
            ]
            cell = {"month": f"{month:%Y-%m}", "status": status, "sources": sources}
            if c.get("sources_expected"):
                cell["sources_in"], cell["sources_expected"] = int(c["validated"]), int(c["sources_expected"])
            row_cells.append(cell)
        countries.append({**_country(m), "cells": row_cells})
    return {"months": [f"{m:%Y-%m}" for m in shown], "countries": countries}


def _country(m: dict) -> dict:
    return {
        "iso3": m["iso3"],
        "name_es": m.get("name_es"),
        "name_en": m.get("name_en"),
        "conference": m.get("conference"),
    }


def _empty_completeness(months: int, day: dt.date | None = None) -> dict:
    day = day or today()
    shown = [_month_start(day, back) for back in range(max(1, months) - 1, -1, -1)]
    return {
        "months": [f"{m:%Y-%m}" for m in shown],
        "countries": [
            {
                **_country(m),
                "cells": [{"month": f"{s:%Y-%m}", "status": "unknown", "sources": []} for s in shown],
            }
            for m in _members()
        ],
    }


def report_url(report_path: str | None, cfg: Settings) -> str | None:
    """The report's path under ``$OMH_HOME/reports`` (the app serves it at ``reports/<that>``)."""
    if not report_path:
        return None
    try:
        rel = Path(report_path).resolve().relative_to(cfg.reports.resolve())
    except ValueError:
        return None
    return rel.as_posix()


def _validations(wh, cfg: Settings) -> list[dict]:
    from transforms.contracts.loading import load_contracts

    cols, rows = wh.query(
        """
        WITH ranked AS (
            SELECT m.source_id, m.sha256, m.file_name, m.status, m.warnings, m.rows_loaded, m.reason,
                   m.report_path, m.processed_at, m.received_at,
                   row_number() OVER (PARTITION BY m.source_id ORDER BY m.processed_at DESC) AS rn
            FROM file_manifest m
        )
        SELECT r.source_id, r.sha256, r.file_name, r.status, r.warnings, r.rows_loaded, r.reason,
               r.report_path, r.processed_at, r.received_at,
               (SELECT count(*) FROM dq_result q
                 WHERE q.source_id = r.source_id AND q.sha256 = r.sha256 AND NOT q.success) AS failed_checks
        FROM ranked r WHERE r.rn = 1
        """
    )
    last = {r[0]: dict(zip(cols, r, strict=True)) for r in rows}
    out = []
    for source_id, contract in sorted(load_contracts().items()):
        v = last.get(source_id)
        entry = {
            "source_id": source_id,
            "reporter_iso3": contract.reporter,
            "title": contract.title,
            "dag_id": f"omh_{source_id}",
            "file_name": None,
            "status": "no_file",
        }
        if v:
            entry.update(
                {
                    "file_name": v["file_name"],
                    "status": "warnings"
                    if v["status"] == "loaded" and (v["warnings"] or 0) > 0
                    else v["status"],
                    "warnings": int(v["warnings"] or 0),
                    "rows_loaded": int(v["rows_loaded"] or 0),
                    "failed_checks": int(v["failed_checks"] or 0),
                    "reason": v["reason"] or "",
                    "processed_at": _iso(v["processed_at"]),
                    "report": report_url(v["report_path"], cfg),
                }
            )
        out.append(entry)
    return out


def _mapped_labels(contract) -> set[str]:
    """Every label some ``map`` of the contract maps (fields, value columns, period parts)."""
    labels: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "map" and isinstance(value, dict):
                    labels.update(str(k).strip() for k in value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(contract.model_dump())
    return labels


def _unmapped(wh) -> list[dict]:
    from transforms.contracts.loading import load_contracts

    # dq_result holds each file's last validation (a rerun replaces it): a label is open while a
    # file's last validation found it unknown. Labels the contract maps since are shown as such.
    cols, rows = wh.query(
        """
        SELECT q.source_id, m.file_name, m.status, m.processed_at, q.column_name, q.severity,
               q.unexpected_count, q.examples
        FROM dq_result q
        JOIN file_manifest m ON m.source_id = q.source_id AND m.sha256 = q.sha256
        WHERE q.suite = 'harmonize' AND q.expectation = 'label_known' AND NOT q.success
        ORDER BY q.source_id, m.processed_at DESC, q.column_name
        """
    )
    contracts = load_contracts()
    out = []
    for r in rows:
        d = dict(zip(cols, r, strict=True))
        try:
            examples = json.loads(d["examples"] or "[]")
        except (TypeError, json.JSONDecodeError):
            examples = []
        label = examples[0].get("value") if examples else None
        contract = contracts.get(d["source_id"])
        fixed = contract is not None and label is not None and str(label).strip() in _mapped_labels(contract)
        out.append(
            {
                "source_id": d["source_id"],
                "reporter_iso3": contract.reporter if contract else None,
                "file_name": d["file_name"],
                "file_status": d["status"],
                "column": d["column_name"],
                "label": label,
                "cells": int(d["unexpected_count"] or 0),
                "rows": [e.get("row") for e in examples if e.get("row") is not None],
                "message": examples[0].get("message") if examples else "",
                "severity": d["severity"],
                "seen_at": _iso(d["processed_at"]),
                "state": "mapped in the contract since: rerun the file" if fixed else "open",
            }
        )
    return out


def _alerts(wh, cfg: Settings, limit: int = 100) -> list[dict]:
    from transforms.ops.alerts import read_alerts

    alerts = read_alerts(cfg.home, limit)
    if not alerts or wh is None:
        return alerts
    try:
        covered = wh.fetchall(
            "SELECT c.source_id, c.period_start, c.period_end FROM file_coverage c "
            "JOIN file_manifest m ON m.source_id = c.source_id AND m.sha256 = c.sha256 WHERE m.status = 'loaded'"
        )
    except Exception:
        return alerts
    for a in alerts:
        start, end = a.get("period_start"), a.get("period_end")
        a["resolved"] = any(
            s == a.get("source_id") and start and end and _iso(ps) <= end and _iso(pe) >= start
            for s, ps, pe in covered
        )
    return alerts


# ---------------------------------------------------------------------------- entry points


def _open(cfg: Settings, attempts: int = 3, pause: float = 0.3):
    from transforms.storage.warehouse import open_for_reading

    for attempt in range(attempts):
        try:
            return open_for_reading(cfg)
        except Exception as exc:
            if "lock" not in str(exc).lower() or attempt == attempts - 1:
                if "lock" in str(exc).lower():
                    raise WarehouseBusy(str(exc)) from exc
                raise
            time.sleep(pause)
    raise WarehouseBusy("warehouse busy")  # pragma: no cover


def overview(home=None, months: int = DEFAULT_MONTHS) -> dict:
    """Everything the Observatory page shows, from one read-only look at the warehouse."""
    cfg = settings(home)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    from transforms.publish.bulletin import latest as latest_bulletins

    base = {
        "generated_at": now,
        "statuses": {k: {"label": v[0], "meaning": v[1]} for k, v in STATUSES.items()},
        "warehouse": cfg.duckdb_path.name if cfg.duckdb_path else "postgresql",
        "bulletins": latest_bulletins(cfg.home),
    }
    if cfg.duckdb_path is not None and not cfg.duckdb_path.exists():
        return {
            **base,
            "warehouse_ready": False,
            "completeness": _empty_completeness(months),
            "validations": [],
            "unmapped": [],
            "alerts": _alerts(None, cfg),
        }
    wh = _open(cfg)
    try:
        try:
            completeness = _completeness(wh, months)
        except Exception as exc:  # schema not created yet (a warehouse file with no load)
            if "does not exist" not in str(exc) and "not found" not in str(exc).lower():
                raise
            return {
                **base,
                "warehouse_ready": False,
                "completeness": _empty_completeness(months),
                "validations": [],
                "unmapped": [],
                "alerts": _alerts(None, cfg),
            }
        return {
            **base,
            "warehouse_ready": True,
            "completeness": completeness,
            "validations": _validations(wh, cfg),
            "unmapped": _unmapped(wh),
            "alerts": _alerts(wh, cfg),
        }
    finally:
        wh.close()


def completeness(home=None, months: int = DEFAULT_MONTHS) -> dict:
    """The grid alone: ``{"generated_at", "months", "countries": [{iso3, name_es, cells}], ...}``."""
    data = overview(home, months)
    return {"generated_at": data["generated_at"], "statuses": data["statuses"], **data["completeness"]}


def write_snapshot(home=None, months: int = DEFAULT_MONTHS) -> Path:
    """``$OMH_HOME/reports/observatory.json``: the page's data, for when the warehouse is busy."""
    cfg = settings(home)
    data = overview(cfg.home, months)
    target = cfg.reports / SNAPSHOT
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(target)
    return target


def read_snapshot(home=None) -> dict | None:
    path = settings(home).reports / SNAPSHOT
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
