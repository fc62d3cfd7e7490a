"""What the bulletin says, read from the warehouse: figures from the disclosure-controlled ``pub_*``
views only; from the rest, only what needs no disclosure control (lineage of the figures: sources,
vintages, provisional/estimated flags; which reporter and period was revised; which members have
not reported).

A published figure is a ``Figure``: its value (``None`` when ``pub_*`` suppresses it), its unit,
and the footnote of its sources and vintages. Nothing here reads ``fact_flow.value``,
``v_revisions``' values or ``v_disclosure``'s true values.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from transforms.publish.bulletin.errors import BulletinError  # noqa: F401 (raised here, re-exported)

TREND_MONTHS = 24
TOP_NATIONALITIES = 5
MIRROR_MONTHS = 12
# Codes that are not a nationality in a corridor's ranking (the total; not applicable).
NOT_A_NATIONALITY = ("_T", "_Z")
MIRROR_COLUMNS = (
    "pair_id, pair_label_es, pair_label_en, pair_label_pt, pair_label_fr, period_type, period_start, "
    "period_end, a_reporter_iso3, a_flow_type, a_unit, a_value, b_reporter_iso3, b_flow_type, b_unit, "
    "b_value, difference, asymmetry, tolerance, within_tolerance, note"
)


def parse_period(text: str) -> dt.date:
    """``YYYY-MM`` → the month's first day."""
    try:
        day = dt.datetime.strptime(text.strip(), "%Y-%m").date()
    except (ValueError, AttributeError) as exc:
        raise BulletinError(f"--period {text!r}: expected a month as YYYY-MM, e.g. 2025-06") from exc
    return day


def add_months(d: dt.date, n: int) -> dt.date:
    index = d.year * 12 + d.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def month_end(d: dt.date) -> dt.date:
    return add_months(d, 1) - dt.timedelta(days=1)


@dataclass(frozen=True)
class Figure:
    """One published number: ``value`` None = suppressed by ``pub_*`` (or by the source)."""

    value: float | None
    unit: str
    note: int | None = None  # footnote number (sources and vintages)
    flags: str = ""  # "p" provisional, "e" estimated (any observation behind it)
    ref: str = ""  # the view and cell it comes from: "pub_corridor|PAN|VEN|IRR_TRN|persons|2025-06-01"

    @property
    def suppressed(self) -> bool:
        return self.value is None


@dataclass
class Footnotes:
    """Numbered footnotes, one per distinct set of (source, vintage) behind a figure."""

    sources: dict[str, dict]
    notes: list[tuple[tuple[str, str], ...]] = field(default_factory=list)

    def number(self, lineage: frozenset) -> int | None:
        if not lineage:
            return None
        key = tuple(sorted(lineage))
        if key not in self.notes:
            self.notes.append(key)
        return self.notes.index(key) + 1

    def texts(self) -> list[list[dict]]:
        return [
            [
                {
                    "source_id": sid,
                    "title": (self.sources.get(sid) or {}).get("title") or sid,
                    "agency": (self.sources.get(sid) or {}).get("agency") or "",
                    "vintage": vintage,
                }
                for sid, vintage in note
            ]
            for note in self.notes
        ]


@dataclass
class BulletinData:
    period: dt.date
    lang: str
    generated_at: str
    headline: list[dict]  # per flow type and unit: label, ALL/CRM/CSM figures, same month last year
    trend: list[dict]  # month, flow type label, unit label, value (published only)
    corridors: list[dict]  # per reporter/flow/unit: top nationalities, suppressed cells count
    yoy: list[dict]  # per reporter/flow/unit: value, previous year, change %
    mirror: list[dict] | None  # None: no pub_mirror view in this warehouse
    revisions: list[dict]  # which reporter/source/period was revised since the last bulletin
    revisions_since: str | None
    not_reported: list[dict]  # members missing (or refused) for the month
    grid: dict  # months and per member status (the completeness grid)
    footnotes: Footnotes

    def notes(self) -> list[list[dict]]:
        return self.footnotes.texts()


# ---------------------------------------------------------------------------- reading


def _rows(wh, sql: str, params=None) -> list[dict]:
    cols, rows = wh.query(sql, params)
    return [dict(zip(cols, r, strict=True)) for r in rows]


def _num(value) -> float | None:
    return None if value is None else float(value)


def _has_view(wh, name: str) -> bool:
    rows = wh.fetchall(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE lower(table_name) = ? AND table_schema = current_schema()",  # not another schema's
        [name.lower()],
    )
    return bool(rows and rows[0][0])


class _Lineage:
    """Sources, vintages and flags behind each published cell (metadata only, no values)."""

    def __init__(self, wh, first: dt.date, last: dt.date):
        self.cells: dict[tuple, tuple[set, set]] = {}
        for r in _rows(
            wh,
            "SELECT f.reporter_iso3, f.citizenship_iso3, f.flow_type, f.unit, f.period_type, f.period_start, "
            "f.source_id, f.vintage, max(CASE WHEN f.obs_status = 'P' THEN 1 ELSE 0 END) AS p, "
            "max(CASE WHEN f.obs_status = 'E' THEN 1 ELSE 0 END) AS e, "
            "coalesce(c.is_member, false) AS is_member, c.conference "
            "FROM v_fact f LEFT JOIN dim_country c ON c.iso3 = f.reporter_iso3 "
            "WHERE f.period_start >= ? AND f.period_start <= ? "
            "GROUP BY f.reporter_iso3, f.citizenship_iso3, f.flow_type, f.unit, f.period_type, f.period_start, "
            "f.source_id, f.vintage, c.is_member, c.conference",
            [first, last],
        ):
            flags = {"p"} if r["p"] else set()
            flags |= {"e"} if r["e"] else set()
            base = (r["flow_type"], r["unit"], r["period_type"], r["period_start"])
            keys = [
                ("cit", r["reporter_iso3"], r["citizenship_iso3"], *base),
                ("rep", r["reporter_iso3"], *base),
            ]
            if r["is_member"]:
                keys += [("reg", "ALL", *base), ("reg", r["conference"], *base)]
            for key in keys:
                lineage, fl = self.cells.setdefault(key, (set(), set()))
                lineage.add((r["source_id"], str(r["vintage"] or "")))
                fl |= flags

    def of(self, *key) -> tuple[frozenset, str]:
        lineage, flags = self.cells.get(key, (set(), set()))
        return frozenset(lineage), "".join(sorted(flags))


_VIEWS = {"reg": "pub_regional_totals", "rep": "pub_flow_by_period", "cit": "pub_corridor"}


def _figure(value, unit: str, lineage: _Lineage, notes: Footnotes, *key) -> Figure:
    """A published value with its footnote, flags and reference; ``key`` as ``_Lineage`` keys it."""
    sources, flags = lineage.of(*key)
    level, *cell = key
    ref = "|".join([_VIEWS[level], *(str(k) for k in cell if k != "M")])
    return Figure(_num(value), unit, notes.number(sources), flags, ref)


def gather(wh, period: dt.date, lang: str, since: str | None = None) -> BulletinData:
    """Everything the bulletin shows for ``period`` (a month's first day), labels in ``lang``."""
    first = add_months(period, -(TREND_MONTHS - 1))
    last_year = add_months(period, -12)
    sources = {r["source_id"]: r for r in _rows(wh, "SELECT source_id, title, agency FROM dim_source")}
    notes = Footnotes(sources)
    lineage = _Lineage(wh, min(first, last_year), month_end(period))
    headline = _headline(wh, period, lang, lineage, notes)
    grid = _grid(wh, first, period, lang)
    return BulletinData(
        period=period,
        lang=lang,
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        headline=headline,
        trend=_trend(wh, first, period, lang),
        corridors=_corridors(wh, period, lang, lineage, notes),
        yoy=_yoy(wh, period, lang, lineage, notes),
        mirror=_mirror(wh, period, lang) if _has_view(wh, "pub_mirror") else None,
        revisions=_revisions(wh, since, lang),
        revisions_since=since,
        not_reported=_not_reported(grid, period),
        grid=grid,
        footnotes=notes,
    )


def _headline(wh, period, lang, lineage, notes) -> list[dict]:
    rows = _rows(
        wh,
        f"SELECT region, flow_type, flow_type_{lang} AS flow_label, unit, unit_{lang} AS unit_label, "
        "period_start, value FROM pub_regional_totals "
        "WHERE period_type = 'M' AND period_start IN (?, ?) ORDER BY flow_type, unit, region",
        [period, add_months(period, -12)],
    )
    out: dict[tuple, dict] = {}
    for r in rows:
        if r["period_start"] != period:
            continue
        key = (r["flow_type"], r["unit"])
        entry = out.setdefault(
            key,
            {
                "flow_type": r["flow_type"],
                "flow_label": r["flow_label"],
                "unit": r["unit"],
                "unit_label": r["unit_label"],
                "regions": {},
            },
        )
        entry["regions"][r["region"]] = _figure(
            r["value"], r["unit"], lineage, notes, "reg", r["region"], r["flow_type"], r["unit"], "M", period
        )
    before = {
        (r["flow_type"], r["unit"], r["region"]): r["value"] for r in rows if r["period_start"] != period
    }
    for (flow, unit), entry in out.items():
        now = entry["regions"].get("ALL")
        prev = before.get((flow, unit, "ALL"))
        entry["previous"] = (
            _figure(prev, unit, lineage, notes, "reg", "ALL", flow, unit, "M", add_months(period, -12))
            if (flow, unit, "ALL") in before
            else None
        )
        entry["change_pct"] = (
            100.0 * (now.value - float(prev)) / float(prev)
            if now is not None and now.value is not None and prev not in (None, 0)
            else None
        )
    return list(out.values())


def _trend(wh, first, period, lang) -> list[dict]:
    rows = _rows(
        wh,
        f"SELECT period_start, flow_type, flow_type_{lang} AS flow_label, unit, unit_{lang} AS unit_label, value "
        "FROM pub_regional_totals WHERE region = 'ALL' AND period_type = 'M' "
        "AND period_start >= ? AND period_start <= ? ORDER BY period_start, flow_type",
        [first, period],
    )
    return [{**r, "month": f"{r['period_start']:%Y-%m}", "value": _num(r["value"])} for r in rows]


def _corridors(wh, period, lang, lineage, notes) -> list[dict]:
    rows = _rows(
        wh,
        f"SELECT reporter_iso3, reporter_{lang} AS reporter_label, citizenship_iso3, "
        f"citizenship_{lang} AS citizenship_label, flow_type, flow_type_{lang} AS flow_label, unit, "
        f"unit_{lang} AS unit_label, value FROM pub_corridor "
        "WHERE period_type = 'M' AND period_start = ? ORDER BY reporter_iso3, flow_type, unit",
        [period],
    )
    groups: dict[tuple, dict] = {}
    for r in rows:
        if r["citizenship_iso3"] in NOT_A_NATIONALITY:
            continue
        g = groups.setdefault(
            (r["reporter_iso3"], r["flow_type"], r["unit"]),
            {
                k: r[k]
                for k in ("reporter_iso3", "reporter_label", "flow_type", "flow_label", "unit", "unit_label")
            }
            | {"cells": [], "suppressed": 0},
        )
        if r["value"] is None:
            g["suppressed"] += 1  # a suppressed cell is not ranked: its value is not published
            continue
        g["cells"].append(r)
    out = []
    for (rep, flow, unit), g in groups.items():
        top = sorted(g.pop("cells"), key=lambda c: (-float(c["value"]), c["citizenship_iso3"]))
        g["top"] = [
            {
                "citizenship_iso3": c["citizenship_iso3"],
                "citizenship_label": c["citizenship_label"] or c["citizenship_iso3"],
                "figure": _figure(
                    c["value"],
                    unit,
                    lineage,
                    notes,
                    "cit",
                    rep,
                    c["citizenship_iso3"],
                    flow,
                    unit,
                    "M",
                    period,
                ),
            }
            for c in top[:TOP_NATIONALITIES]
        ]
        if g["top"] or g["suppressed"]:
            out.append(g)
    return out


def _yoy(wh, period, lang, lineage, notes) -> list[dict]:
    rows = _rows(
        wh,
        f"SELECT reporter_iso3, reporter_{lang} AS reporter_label, flow_type, flow_type_{lang} AS flow_label, "
        f"unit, unit_{lang} AS unit_label, value, value_previous_year, change_pct FROM pub_flow_yoy "
        "WHERE period_type = 'M' AND period_start = ? ORDER BY reporter_iso3, flow_type, unit",
        [period],
    )
    previous = add_months(period, -12)
    out = []
    for r in rows:
        key = (r["reporter_iso3"], r["flow_type"], r["unit"])
        out.append(
            {
                **{
                    k: r[k]
                    for k in (
                        "reporter_iso3",
                        "reporter_label",
                        "flow_type",
                        "flow_label",
                        "unit",
                        "unit_label",
                    )
                },
                "figure": _figure(r["value"], r["unit"], lineage, notes, "rep", *key, "M", period),
                "previous": _figure(
                    r["value_previous_year"], r["unit"], lineage, notes, "rep", *key, "M", previous
                ),
                "change_pct": _num(r["change_pct"]),
            }
        )
    return out


def _mirror(wh, period, lang) -> list[dict]:
    rows = _rows(
        wh,
        f"SELECT {MIRROR_COLUMNS} FROM pub_mirror WHERE period_end >= ? AND period_start <= ? "
        "ORDER BY pair_id, period_start",
        [add_months(period, -(MIRROR_MONTHS - 1)), month_end(period)],
    )
    out = []
    for r in rows:
        out.append(
            {
                **r,
                "pair_label": r.get(f"pair_label_{lang}") or r.get("pair_label_en") or r["pair_id"],
                "a": Figure(
                    _num(r["a_value"]), r["a_unit"], ref=f"pub_mirror|{r['pair_id']}|{r['period_start']}|a"
                ),
                "b": Figure(
                    _num(r["b_value"]), r["b_unit"], ref=f"pub_mirror|{r['pair_id']}|{r['period_start']}|b"
                ),
                "difference": _num(r["difference"]),
                "asymmetry": _num(r["asymmetry"]),
                "tolerance": _num(r["tolerance"]),
            }
        )
    return out


def _revisions(wh, since: str | None, lang: str) -> list[dict]:
    """Which reporter, source and period changed (counts of observations, never a value)."""
    where, params = "", []
    if since:
        where, params = "WHERE revised_at > CAST(? AS TIMESTAMP)", [since]
    return _rows(
        wh,
        f"SELECT reporter_iso3, max(reporter_{lang}) AS reporter_label, source_id, period_start, period_end, "
        "change, count(*) AS observations, max(vintage) AS vintage, max(previous_vintage) AS previous_vintage, "
        f"max(revised_at) AS revised_at FROM v_revisions {where} "
        "GROUP BY reporter_iso3, source_id, period_start, period_end, change "
        "ORDER BY reporter_iso3, source_id, period_start, change",
        params,
    )


def _grid(wh, first, period, lang) -> dict:
    """Members x months, the worst delivery status of the month's sources; "partial" (as on the
    Observatory page) when some of a member's sources are in and another is missing."""
    from transforms.publish.bulletin.labels import text

    rows = _rows(
        wh,
        f"SELECT reporter_iso3, reporter_{lang} AS reporter_label, conference, month_start, status, validated, "
        "sources_expected FROM v_completeness_by_month "
        "WHERE month_start >= ? AND month_start <= ? ORDER BY conference, reporter_iso3, month_start",
        [first, period],
    )
    months = [f"{add_months(first, i):%Y-%m}" for i in range(TREND_MONTHS)]
    members: dict[str, dict] = {}
    labels = dict(wh.fetchall(f"SELECT code, label_{lang} FROM dim_delivery_status"))
    labels["partial"] = text("partial", lang)
    for r in rows:
        m = members.setdefault(
            r["reporter_iso3"],
            {
                "iso3": r["reporter_iso3"],
                "label": r["reporter_label"],
                "conference": r["conference"],
                "cells": {},
                "sources": {},
            },
        )
        month = f"{r['month_start']:%Y-%m}"
        status = r["status"]
        if status == "missing" and r["validated"]:
            status = "partial"
        m["cells"][month] = status
        m["sources"][month] = (int(r["validated"] or 0), int(r["sources_expected"] or 0))
    return {"months": months, "members": list(members.values()), "status_labels": labels}


def _not_reported(grid: dict, period: dt.date) -> list[dict]:
    """Members whose month is missing, refused or partial in the grid (statuses, no figure)."""
    month = f"{period:%Y-%m}"
    out = []
    for m in grid["members"]:
        if m["cells"].get(month) in ("missing", "refused", "partial"):
            sources_in, expected = m["sources"].get(month, (0, 0))
            out.append(
                {
                    "iso3": m["iso3"],
                    "label": m["label"],
                    "conference": m["conference"],
                    "status": m["cells"][month],
                    "sources_in": sources_in,
                    "sources_expected": expected,
                }
            )
    return out


# ---------------------------------------------------------------------------- the last bulletin


def last_bulletin_time(root: Path, lang: str, period: dt.date) -> str | None:
    """When the last bulletin in ``lang`` of a month before ``period`` was made (the newest
    ``bulletin.json`` under ``root``, ``$OMH_HOME/bulletins/<YYYY-MM>/<lang>/``): a bulletin made
    again for the same month lists the same revisions."""
    stamps = []
    for manifest in root.glob(f"*/{lang}/bulletin.json"):
        if manifest.parent.parent.name >= f"{period:%Y-%m}":
            continue
        try:
            stamps.append(json.loads(manifest.read_text(encoding="utf-8"))["generated_at"])
        except (OSError, ValueError, KeyError):
            continue
    return max(stamps) if stamps else None


def latest_month(wh) -> dt.date | None:
    """The latest month with published monthly regional figures."""
    rows = wh.fetchall("SELECT max(period_start) FROM pub_regional_totals WHERE period_type = 'M'")
    return rows[0][0] if rows and rows[0][0] else None
