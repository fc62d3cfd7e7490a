"""Reporting views and disclosure control, on both engines, with small hand-made observations.

The figures are loaded through ``Warehouse.load`` (the real engines, no mock) so that each case is
exact: small counts to suppress, a delivery calendar with on-time, late, refused and missing
periods, two years for the year-over-year change, two units that must never be added.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd

from transforms.storage.warehouse import Warehouse, delivery_slots

LANGS = ("es", "en", "pt", "fr")


def _month_end(d: dt.date) -> dt.date:
    nxt = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def _add_months(d: dt.date, n: int) -> dt.date:
    i = d.year * 12 + d.month - 1 + n
    return dt.date(i // 12, i % 12 + 1, 1)


def obs(source, reporter, citizenship, start, value, flow="IRR_TRN", unit="persons", ptype="M", sex="_T"):
    end = _month_end(start) if ptype == "M" else dt.date(start.year, 12, 31)
    return {
        "source_id": source,
        "reporter_iso3": reporter,
        "reporter_role": "transit",
        "flow_type": flow,
        "citizenship_iso3": citizenship,
        "counterpart_iso3": "_Z",
        "period_start": start,
        "period_end": end,
        "period_type": ptype,
        "sex": sex,
        "age_band": "_T",
        "unit": unit,
        "detail": "",
        "value": value,
        "obs_status": "A",
        "conf_status": "F" if value is not None else "S",
        "rounding_base": None,
        "source_sheet": None,
        "source_column": "value",
        "year": start.year,
        "month": start.month,
    }


def load(wh: Warehouse, rows, name: str, received_at: dt.datetime | None = None, scoped: bool = False):
    """Load observations (a list of ``obs`` rows or a DataFrame of them) as one file; ``scoped``:
    with the file's scope, as the pipeline passes it (a first load then goes straight in)."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    sha = hashlib.sha256(f"{name}{len(rows)}".encode()).hexdigest()
    frame = frame.assign(
        source_file=name,
        source_sha256=sha,
        source_row=range(2, len(frame) + 2),
        vintage=dt.date.today(),
        loaded_at=dt.datetime.now(),
    )
    entry = {
        "source_id": frame["source_id"].iloc[0],
        "sha256": sha,
        "file_name": name,
        "status": "loaded",
        "rows_loaded": len(rows),
        "received_at": received_at or dt.datetime.now(),
        "processed_at": dt.datetime.now(),
    }
    return wh.load(entry, frame, [], scope=scope_of(frame) if scoped else None)


def scope_of(frame: pd.DataFrame) -> list[tuple]:
    """A frame's observations counted as ``Checked.fact_scope`` counts a file's."""
    keys = ["source_id", "reporter_iso3", "period_start", "period_end", "year", "month"]
    return [(*k, n) for k, n in frame.groupby(keys).size().items()]


def rows_of(wh, sql, params=None) -> list[dict]:
    cols, rows = wh.query(sql, params)
    return [dict(zip(cols, r, strict=True)) for r in rows]


# ---------------------------------------------------------------------------- disclosure

JAN = dt.date(2024, 1, 1)
DISCLOSURE_CASE = [
    # CRM: PAN is 3 in all (primary); CRI is the only sibling, so it is suppressed too (secondary),
    # and then one of CRI's citizenship cells (its parent is hidden).
    obs("tst_disc", "PAN", "VEN", JAN, 2),
    obs("tst_disc", "PAN", "HTI", JAN, 1),
    obs("tst_disc", "CRI", "VEN", JAN, 60),
    obs("tst_disc", "CRI", "HTI", JAN, 40),
    # CSM: COL has one small cell (HTI 3): its only sibling goes too. ECU's two small cells sum to
    # 3 < 5, so the smallest other cell (VEN 10) joins them; HTI 20 stays published.
    obs("tst_disc", "COL", "VEN", JAN, 47),
    obs("tst_disc", "COL", "HTI", JAN, 3),
    obs("tst_disc", "ECU", "VEN", JAN, 10),
    obs("tst_disc", "ECU", "HTI", JAN, 20),
    obs("tst_disc", "ECU", "CUB", JAN, 2),
    obs("tst_disc", "ECU", "PER", JAN, 1),
    obs("tst_disc", "ECU", "CHL", JAN, 0),
    # A non-member reporter stands alone: only its own small cells are hidden, with a partner.
    obs("tst_disc", "ESP", "VEN", JAN, 4),
    obs("tst_disc", "ESP", "COL", JAN, 900),
    # Another flow type: CSM is 2 in all, so CRM (its only sibling) is hidden as well.
    obs("tst_disc", "PAN", "VEN", JAN, 98, flow="RET_REM"),
    obs("tst_disc", "PAN", "HTI", JAN, 2, flow="RET_REM"),
    obs("tst_disc", "COL", "VEN", JAN, 2, flow="RET_REM"),
    # Cells suppressed by the source stay NULL (flag "source").
    obs("tst_disc", "CRI", "NIC", JAN, None),
]


def check_disclosure(wh, k: float) -> None:
    """The published tables cannot give back a count from 1 to k-1, alone or by differences."""
    d = pd.DataFrame(rows_of(wh, "SELECT * FROM v_disclosure"))
    assert not d.empty
    published = d[~d["suppressed"]]
    assert not ((published["value"] >= 1) & (published["value"] < k)).any()
    assert (d["suppressed"] == d["value"].isna()).all()
    keys = ["flow_type", "unit", "period_type", "period_start", "period_end"]
    parents = {
        "conference": ("all", keys),
        "reporter": ("conference", ["region", *keys]),
        "citizenship": ("reporter", ["reporter_iso3", *keys]),
    }
    for level, (up, on) in parents.items():
        kids = d[d["level"] == level]
        if level == "reporter":
            kids = kids[kids["region"].notna()]
        par = d[d["level"] == up].copy()
        if up == "all":
            par = par.drop(columns=["region"])
        for _, group in kids.groupby(on, dropna=False):
            first = group.iloc[0]
            mask = pd.Series(True, index=par.index)
            for c in on:
                if c == "region" and up == "all":
                    continue
                mask &= par[c] == first[c]
            parent = par[mask]
            assert len(parent) == 1, (level, first.to_dict())
            parent = parent.iloc[0]
            hidden = group[group["suppressed"] & group["true_value"].notna() & (group["true_value"] > 0)]
            nonzero = group[group["true_value"].fillna(0) > 0]
            if parent["suppressed"]:
                if len(nonzero):
                    assert len(hidden) >= 1, (level, first.to_dict())
            elif len(hidden):
                assert len(hidden) >= 2 and hidden["true_value"].sum() >= k, (level, group.to_dict("records"))


def test_disclosure_primary_and_secondary_suppression(wh):
    load(wh, DISCLOSURE_CASE, "disc.csv")
    check_disclosure(wh, 5)
    pub = {
        (r["reporter_iso3"], r["citizenship_iso3"], r["flow_type"]): (r["value"], r["suppression"])
        for r in rows_of(wh, "SELECT * FROM pub_corridor")
    }
    assert pub[("PAN", "VEN", "IRR_TRN")] == (None, "primary")
    assert pub[("PAN", "HTI", "IRR_TRN")] == (None, "primary")
    assert pub[("CRI", "HTI", "IRR_TRN")] == (None, "secondary")
    assert pub[("CRI", "VEN", "IRR_TRN")] == (60, None)
    assert pub[("CRI", "NIC", "IRR_TRN")] == (None, "source")
    assert pub[("COL", "HTI", "IRR_TRN")] == (None, "primary")
    assert pub[("COL", "VEN", "IRR_TRN")] == (None, "secondary")
    assert [pub[("ECU", c, "IRR_TRN")][1] for c in ("PER", "CUB", "VEN", "HTI", "CHL")] == [
        "primary",
        "primary",
        "secondary",
        None,
        None,
    ]
    assert pub[("ECU", "CHL", "IRR_TRN")] == (0, None)
    assert pub[("ESP", "VEN", "IRR_TRN")] == (None, "primary")
    assert pub[("ESP", "COL", "IRR_TRN")] == (None, "secondary")
    reporters = {
        (r["reporter_iso3"], r["flow_type"]): (r["value"], r["suppression"])
        for r in rows_of(wh, "SELECT * FROM pub_flow_monthly")
    }
    assert reporters[("PAN", "IRR_TRN")] == (None, "primary")
    assert reporters[("CRI", "IRR_TRN")] == (None, "secondary")
    assert reporters[("COL", "IRR_TRN")] == (50, None)
    assert reporters[("ESP", "IRR_TRN")] == (904, None)
    regions = {
        (r["region"], r["flow_type"]): (r["value"], r["suppression"])
        for r in rows_of(wh, "SELECT * FROM pub_regional_totals")
    }
    assert regions[("CRM", "IRR_TRN")] == (103, None)
    assert regions[("ALL", "IRR_TRN")] == (103 + 83, None)
    assert regions[("CSM", "RET_REM")] == (None, "primary")
    assert regions[("CRM", "RET_REM")] == (None, "secondary")
    assert regions[("ALL", "RET_REM")] == (102, None)
    assert reporters[("PAN", "RET_REM")][1] == "secondary"  # the only child of a hidden CRM
    for view in (
        "pub_corridor",
        "pub_flow_by_period",
        "pub_flow_monthly",
        "pub_regional_totals",
        "pub_flow_yoy",
    ):
        assert wh.query(f"SELECT count(*) FROM {view} WHERE value >= 1 AND value <= 4")[1][0][0] == 0


def test_disclosure_threshold_is_configuration(wh):
    load(wh, DISCLOSURE_CASE, "disc.csv")
    wh.set_config("disclosure_threshold", 50)
    check_disclosure(wh, 50)
    hidden = wh.query("SELECT count(*) FROM pub_corridor WHERE value > 0 AND value < 50")[1][0][0]
    assert hidden == 0
    cri = dict(
        wh.query("SELECT citizenship_iso3, suppression FROM pub_corridor WHERE reporter_iso3 = 'CRI'")[1]
    )
    assert cri == {"HTI": "primary", "VEN": None, "NIC": "source"}  # 40 < 50 now
    wh.set_config("disclosure_threshold", 5)
    check_disclosure(wh, 5)


def test_disclosure_holds_for_many_random_tables(wh):
    import random

    rnd = random.Random(7)
    reporters = ["PAN", "CRI", "GTM", "HND", "COL", "ECU", "PER", "CHL", "ESP"]
    citizenships = ["VEN", "HTI", "CUB", "COL", "ECU", "_O", "_U"]
    rows = []
    for m in range(1, 13):
        for r in reporters:
            for c in citizenships:
                if rnd.random() < 0.7:
                    v = rnd.choice([0, 1, 2, 3, 4, 5, 6, 9, 15, 40, 300])
                    rows.append(obs("tst_rand", r, c, dt.date(2023, m, 1), v))
    load(wh, rows, "rand.csv")
    for k in (3, 5, 10, 100):
        wh.set_config("disclosure_threshold", k)
        check_disclosure(wh, k)


# ---------------------------------------------------------------------------- reporting views


def test_views_never_add_units_and_carry_four_languages(wh):
    rows = [
        obs("tst_units", "PAN", "VEN", JAN, 100, flow="ASY_APP", unit="persons"),
        obs("tst_units", "PAN", "HTI", JAN, 50, flow="ASY_APP", unit="persons"),
        obs("tst_units", "PAN", "VEN", JAN, 7, flow="ENT_REG", unit="events"),
        obs("tst_units", "COL", "VEN", JAN, 1000, flow="ENT_REG", unit="events"),
    ]
    load(wh, rows, "units.csv")
    truth = {
        (r[0], r[1]): r[2]
        for r in wh.query("SELECT flow_type, unit, sum(value) FROM fact_flow GROUP BY flow_type, unit")[1]
    }
    for view in ("v_flow_monthly", "v_regional_totals", "v_corridor", "v_flow_yoy", "pub_flow_monthly"):
        where = " WHERE region = 'ALL'" if view == "v_regional_totals" else ""
        got = {
            (r[0], r[1]): r[2]
            for r in wh.query(
                f"SELECT flow_type, unit, sum(value) FROM {view}{where} GROUP BY flow_type, unit"
            )[1]
        }
        if view.startswith("pub"):
            assert got == truth  # nothing small here: nothing hidden
        else:
            assert got == truth, view
    for view, prefixes in {
        "v_flow_monthly": ("reporter", "flow_type", "unit"),
        "v_corridor": ("citizenship", "reporter", "flow_type", "unit"),
        "v_regional_totals": ("region", "flow_type", "unit"),
        "v_flow_yoy": ("reporter", "flow_type", "unit"),
        "v_completeness": ("reporter", "status"),
        "v_completeness_by_month": ("reporter", "status"),
        "pub_flow_monthly": ("reporter", "flow_type", "unit"),
        "pub_corridor": ("citizenship", "reporter", "flow_type", "unit"),
        "pub_regional_totals": ("region", "flow_type", "unit"),
        "pub_flow_yoy": ("reporter", "flow_type", "unit"),
    }.items():
        cols, data = wh.query(f"SELECT * FROM {view}")
        for prefix in prefixes:
            for lang in LANGS:
                assert f"{prefix}_{lang}" in cols, (view, prefix, lang)
        if view != "v_completeness":
            assert data, view
    labels = rows_of(wh, "SELECT * FROM v_regional_totals WHERE region = 'CRM' AND flow_type = 'ASY_APP'")[0]
    assert labels["region_es"] == "Conferencia Regional sobre Migración"
    assert labels["region_fr"] == "Conférence régionale sur la migration"
    assert labels["unit_pt"] == "Pessoas"
    assert labels["reporters"] == 1 and labels["member_states"] == 11
    corridor = rows_of(wh, "SELECT * FROM v_corridor WHERE reporter_iso3 = 'COL'")[0]
    assert (corridor["citizenship_en"], corridor["reporter_es"]) == ("Venezuela", "Colombia")


def test_year_over_year_change(wh):
    rows = [
        obs("tst_yoy", "PAN", "VEN", dt.date(2023, 3, 1), 200),
        obs("tst_yoy", "PAN", "VEN", dt.date(2024, 3, 1), 250),
        obs("tst_yoy", "PAN", "VEN", dt.date(2024, 4, 1), 90),
        obs("tst_yoy", "PAN", "VEN", dt.date(2022, 1, 1), 1000, ptype="Y", flow="IRR_TRN"),
        obs("tst_yoy", "PAN", "VEN", dt.date(2023, 1, 1), 800, ptype="Y", flow="IRR_TRN"),
    ]
    load(wh, rows, "yoy.csv")
    yoy = {
        (r["period_type"], r["period_start"]): (
            r["value"],
            r["value_previous_year"],
            r["change"],
            r["change_pct"],
        )
        for r in rows_of(wh, "SELECT * FROM v_flow_yoy")
    }
    assert yoy[("M", dt.date(2024, 3, 1))] == (250, 200, 50, 25.0)
    assert yoy[("M", dt.date(2024, 4, 1))] == (90, None, None, None)
    assert yoy[("Y", dt.date(2023, 1, 1))] == (800, 1000, -200, -20.0)
    pub = rows_of(wh, "SELECT * FROM pub_flow_yoy WHERE period_start = DATE '2024-03-01'")
    assert (pub[0]["value"], pub[0]["change"]) == (250, 50)


def test_completeness_from_the_delivery_calendar(wh):
    today = dt.date.today()
    this = today.replace(day=1)
    m = {i: _add_months(this, i) for i in range(-6, 1)}
    wh.copy_into(
        "dim_source",
        pd.DataFrame(
            [
                {
                    "source_id": "tst_cal",
                    "reporter_iso3": "CRI",
                    "conference": "CRM",
                    "title": "t",
                    "agency": "a",
                    "language": "es",
                    "file_format": "csv",
                    "contract_version": 1,
                    "synthetic": True,
                    "delivery_frequency": "monthly",
                    "due_day": 15,
                    "lag_months": 1,
                }
            ]
        ),
    )
    wh.ensure_schema()  # rebuilds the calendar from dim_source

    def due(month: dt.date) -> dt.datetime:
        d = _add_months(month, 1)
        return dt.datetime(d.year, d.month, 15, 12, 0)

    load(
        wh, [obs("tst_cal", "CRI", "VEN", m[-4], 10)], "m4.csv", received_at=due(m[-4]) - dt.timedelta(days=3)
    )
    load(
        wh, [obs("tst_cal", "CRI", "VEN", m[-3], 10)], "m3.csv", received_at=due(m[-3]) + dt.timedelta(days=6)
    )
    refused_at = dt.datetime.combine(m[-1], dt.time(9))  # after m[-2] ended: counts for m[-2]
    wh.record_refusal(
        {
            "source_id": "tst_cal",
            "sha256": "f" * 64,
            "file_name": "bad.csv",
            "status": "refused",
            "received_at": refused_at,
            "processed_at": refused_at,
            "reason": "negative count",
        },
        [],
    )
    got = {
        r["period_start"]: r for r in rows_of(wh, "SELECT * FROM v_completeness WHERE source_id = 'tst_cal'")
    }
    assert got[m[-4]]["status"] == "on_time" and got[m[-4]]["validated"] and not got[m[-4]]["late"]
    assert got[m[-3]]["status"] == "late" and got[m[-3]]["late"] and got[m[-3]]["received"]
    assert got[m[-2]]["status"] == "refused" and got[m[-2]]["refused"] and got[m[-2]]["missing"]
    assert got[m[-5]]["status"] == "missing" and not got[m[-5]]["received"]
    assert got[m[0]]["status"] == "not_due" and not got[m[0]]["missing"]
    assert got[m[-3]]["status_es"] == "Recibido con retraso" and got[m[-3]]["status_fr"] == "Reçu en retard"
    assert got[m[-4]]["due_date"] == due(m[-4]).date()
    grid = {
        r["month_start"]: r["status"]
        for r in rows_of(wh, "SELECT * FROM v_completeness_by_month WHERE reporter_iso3 = 'CRI'")
    }
    assert grid[m[-4]] == "on_time" and grid[m[-3]] == "late" and grid[m[-5]] == "missing"
    members = wh.query("SELECT count(DISTINCT reporter_iso3) FROM v_completeness_by_month")[1][0][0]
    assert members == 23
    assert wh.query("SELECT DISTINCT status FROM v_completeness_by_month WHERE reporter_iso3 = 'URY'")[1] == [
        ("no_source",)
    ]


def test_delivery_calendar_of_each_frequency():
    sources = [
        {"source_id": "m", "delivery_frequency": "monthly", "due_day": 31, "lag_months": 1},
        {"source_id": "q", "delivery_frequency": "quarterly", "due_day": 10, "lag_months": 2},
        {"source_id": "y", "delivery_frequency": "yearly", "due_day": 31, "lag_months": 1},
    ]
    slots, months = delivery_slots(sources, dt.date(2025, 5, 20), 5)
    assert months[0]["month_start"] == dt.date(2024, 12, 1) and months[-1]["month_start"] == dt.date(
        2025, 5, 1
    )
    by = {(s["source_id"], s["period_start"]): s for s in slots}
    jan = by[("m", dt.date(2025, 1, 1))]
    assert (jan["period_end"], jan["due_date"], jan["window_end"]) == (
        dt.date(2025, 1, 31),
        dt.date(2025, 2, 28),
        dt.date(2025, 2, 28),
    )
    q1 = by[("q", dt.date(2025, 1, 1))]
    assert (q1["period_end"], q1["due_date"]) == (dt.date(2025, 3, 31), dt.date(2025, 5, 10))
    assert ("q", dt.date(2024, 10, 1)) in by
    y = by[("y", dt.date(2024, 1, 1))]
    assert (y["period_end"], y["due_date"]) == (dt.date(2024, 12, 31), dt.date(2025, 1, 31))
    assert ("y", dt.date(2025, 1, 1)) in by and ("y", dt.date(2023, 1, 1)) not in by
