"""Sources that count the same events: the warning a load raises when its figures overlap another's.

Two sources overlap when they hold figures of the same reporter, root flow type and unit for
periods that intersect (a monthly release and a yearbook of the same border crossings). A contract
declares it (``overlaps``, transforms/contracts/model.py) and says which source a sum uses; the
reporting views then use one source per overlap (sql/views.sql, ``v_fact_precedence``) and keep
the other in ``v_flow_all_sources``. Whether declared or not, a load whose figures overlap another
source's is flagged: a warning in the load's record (``IngestResult.warnings``, the log) and an
alert of kind ``source_overlap`` in ``$OMH_HOME/alerts.jsonl``. An undeclared overlap is the one a
sum counts twice.
"""

from __future__ import annotations

import datetime as dt

# The file's own periods: the rows it published (its hash in their lineage) and the coverage a
# resent file records (its unchanged rows keep the lineage of the file that first published them).
_OVERLAPS_SQL = """
WITH spans AS (
    SELECT DISTINCT x.reporter_iso3, x.period_start, x.period_end FROM fact_flow x
    JOIN dim_load l ON l.load_id = x.load_id
    WHERE l.source_id = ? AND l.source_sha256 = ?
    UNION
    SELECT DISTINCT reporter_iso3, period_start, period_end FROM file_coverage
    WHERE source_id = ? AND sha256 = ?
),
f AS (
    SELECT x.source_id, x.reporter_iso3, coalesce(ft.parent, x.flow_type) AS flow_root, x.unit,
           x.period_start, x.period_end, x.value
    FROM fact_flow x
    LEFT JOIN dim_flow_type ft ON ft.code = x.flow_type
),
mine AS (
    SELECT DISTINCT f.reporter_iso3, f.flow_root, f.unit, f.period_start, f.period_end
    FROM f
    JOIN spans s
      ON s.reporter_iso3 = f.reporter_iso3 AND s.period_start = f.period_start AND s.period_end = f.period_end
    WHERE f.source_id = ?
)
SELECT o.source_id, o.reporter_iso3, o.flow_root, o.unit,
       min(o.period_start) AS first_period, max(o.period_end) AS last_period,
       count(*) AS observations
FROM f o
WHERE o.source_id <> ?
  AND EXISTS (
      SELECT 1 FROM mine m
      WHERE m.reporter_iso3 = o.reporter_iso3 AND m.flow_root = o.flow_root AND m.unit = o.unit
        AND m.period_start <= o.period_end AND m.period_end >= o.period_start
  )
GROUP BY o.source_id, o.reporter_iso3, o.flow_root, o.unit
ORDER BY o.source_id, o.reporter_iso3, o.flow_root, o.unit
"""


def _rule(wh, source_id: str, other: str, flow_root: str) -> tuple | None:
    """The declared rule of a pair of sources for a root flow type: (preferred source, contract)."""
    rows = wh.fetchall(
        "SELECT preferred_source_id, declared_by FROM dim_source_overlap "
        "WHERE ((source_id = ? AND preferred_source_id = ?) OR (source_id = ? AND preferred_source_id = ?)) "
        "AND (flow_type IS NULL OR flow_type = ?) ORDER BY flow_type NULLS LAST",
        [source_id, other, other, source_id, flow_root],
    )
    return tuple(rows[0]) if rows else None


def find(wh, source_id: str, sha256: str) -> list[dict]:
    """Each other source whose current figures overlap those of one loaded file, per reporter,
    root flow type and unit, with the declared rule (``declared``, ``preferred_source_id``)."""
    rows = wh.fetchall(_OVERLAPS_SQL, [source_id, sha256, source_id, sha256, source_id, source_id])
    out = []
    for other, reporter, flow_root, unit, first, last, observations in rows:
        rule = _rule(wh, source_id, other, flow_root)
        out.append(
            {
                "source_id": source_id,
                "other_source_id": other,
                "reporter_iso3": reporter,
                "flow_type": flow_root,
                "unit": unit,
                "first_period": first,
                "last_period": last,
                "other_observations": int(observations),
                "declared": rule is not None,
                "preferred_source_id": rule[0] if rule else None,
                "declared_by": rule[1] if rule else None,
            }
        )
    return out


def message(o: dict, file_name: str) -> str:
    head = (
        f"{file_name}: its {o['flow_type']} figures of {o['reporter_iso3']} ({o['unit']}) overlap those of "
        f"source {o['other_source_id']} ({o['other_observations']} observations, "
        f"{o['first_period']} to {o['last_period']})"
    )
    if o["declared"]:
        return (
            f"{head}; declared in contract {o['declared_by']}: the reporting views use "
            f"{o['preferred_source_id']} where it covers the period, the other stays in v_flow_all_sources"
        )
    return (
        f"{head}; NOT declared: a sum over {o['reporter_iso3']} counts both. Declare it with `overlaps` "
        f"in contract {o['source_id']} or {o['other_source_id']}"
    )


def alert(o: dict, file_name: str, now: dt.datetime | None = None) -> dict:
    """The alert record of one overlap found by a load (``alerts.write_alert`` appends it)."""
    now = now or dt.datetime.now(dt.UTC)
    return {
        "at": now.isoformat(timespec="seconds"),
        "kind": "source_overlap",
        "file": file_name,
        **{k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in o.items()},
        "period": f"{o['first_period']} to {o['last_period']}",  # as the Observatory's alert list shows it
        "message": message(o, file_name),
    }
