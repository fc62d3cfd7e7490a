"""Mirror checks: the pairs of ``data/mirror_pairs.yaml`` out of tolerance in recent periods.

``v_mirror`` (sql/views.sql) puts both sides of each pair side by side with the asymmetry index
(A - B) / ((A + B) / 2). ``check_mirror`` lists the pairs whose asymmetry left their tolerance in
the last months the pair has both sides for, and gives each as a warning, the way
``transforms.ops.alerts`` gives a missed delivery: a WARNING in the log, a line of
``$OMH_HOME/alerts.jsonl`` (the Observatory page lists it; one per pair and period), and a report
``$OMH_HOME/reports/mirror.json``. A warning, never a failure: the regional DAG's task stays green.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from transforms.ops.alerts import read_alerts, write_alert

log = logging.getLogger("omh.mirror")

KIND = "mirror_out_of_tolerance"
RECENT_MONTHS = 12
REPORT = "mirror.json"
_COLUMNS = (
    "pair_id, pair_label_en, period_type, period_start, period_end, a_reporter_iso3, a_flow_type, a_unit, "
    "a_value, b_reporter_iso3, b_flow_type, b_unit, b_value, difference, asymmetry, tolerance, within_tolerance"
)


def recent_comparisons(wh, months: int = RECENT_MONTHS, view: str = "v_mirror") -> list[dict]:
    """Every row of ``view`` with both sides, in the last ``months`` months up to the latest period
    each pair has both sides for (pairs in their declared order, periods in order)."""
    if view not in ("v_mirror", "pub_mirror"):
        raise ValueError(f"not a mirror view: {view!r}")
    months = int(months)
    if months < 1:
        raise ValueError("months must be at least 1")
    sql = f"""
        WITH m AS (
            SELECT v.*, max(v.period_start) OVER (PARTITION BY v.pair_id) AS latest
            FROM {view} v
            WHERE v.a_value IS NOT NULL AND v.b_value IS NOT NULL
        )
        SELECT {", ".join("m." + c.strip() for c in _COLUMNS.split(","))}
        FROM m
        JOIN dim_mirror_pair p ON p.pair_id = m.pair_id
        WHERE m.period_start > CAST(m.latest - INTERVAL '{months} months' AS DATE)
        ORDER BY p.sort_order, m.period_type, m.period_start
    """
    cols, rows = wh.query(sql)
    return [dict(zip(cols, r, strict=True)) for r in rows]


def out_of_tolerance(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["within_tolerance"] is False]


def warning_of(row: dict, now: dt.datetime | None = None) -> dict:
    """The alert record of one pair out of tolerance in one period."""
    period = row["period_start"].strftime("%Y-%m") if row["period_type"] == "M" else str(row["period_start"])
    message = (
        f"mirror pair {row['pair_id']} out of tolerance in {period}: "
        f"{row['a_reporter_iso3']} {row['a_flow_type']} {row['a_value']:,.0f} {row['a_unit']} vs "
        f"{row['b_reporter_iso3']} {row['b_flow_type']} {row['b_value']:,.0f} {row['b_unit']}, "
        f"asymmetry {row['asymmetry']:+.3f} outside ±{row['tolerance']:.3f} ({row['pair_label_en']})"
    )
    return {
        "at": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "kind": KIND,
        "pair_id": row["pair_id"],
        "source_id": f"mirror:{row['pair_id']}",
        "reporter_iso3": f"{row['a_reporter_iso3']}/{row['b_reporter_iso3']}",
        "period": period,
        "period_start": row["period_start"].isoformat(),
        "period_end": row["period_end"].isoformat(),
        "a_value": row["a_value"],
        "b_value": row["b_value"],
        "asymmetry": round(row["asymmetry"], 6),
        "tolerance": row["tolerance"],
        "message": message,
    }


def check_mirror(home=None, months: int = RECENT_MONTHS, wh=None) -> dict:
    """Warn about every pair out of tolerance in recent periods: log, alerts file, report JSON.
    Returns the report (``out_of_tolerance``: the warnings, ``compared``: the rows looked at).
    ``wh``: an open warehouse to read (default: the installation's, opened for reading)."""
    from transforms.config import settings
    from transforms.storage.warehouse import open_for_reading

    cfg = settings(home).ensure()
    if wh is None:
        with open_for_reading(cfg) as reader:
            rows = recent_comparisons(reader, months)
    else:
        rows = recent_comparisons(wh, months)
    given = {(a.get("pair_id"), a.get("period"), a.get("asymmetry")) for a in read_alerts(cfg.home, 10_000)}
    warnings = []
    for row in out_of_tolerance(rows):
        alert = warning_of(row)
        log.warning("MIRROR WARNING %s", alert["message"])
        if (alert["pair_id"], alert["period"], alert["asymmetry"]) not in given:
            write_alert(alert, cfg.home)
        warnings.append(alert)
    report = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "recent_months": months,
        "pairs": sorted({r["pair_id"] for r in rows}),
        "compared": len(rows),
        "out_of_tolerance": warnings,
    }
    target = cfg.reports / REPORT
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(target)
    log.info(
        "mirror checks: %d comparisons of %d pairs, %d out of tolerance; report %s",
        len(rows),
        len(report["pairs"]),
        len(warnings),
        target,
    )
    return report
