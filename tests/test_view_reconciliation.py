"""Every reporting view reconciles with fact_flow, on both engines.

The views are discovered from the database catalog and their grains read from
``sql/view_grains.yaml``: a view added without a declared grain fails here. For each view that adds
up the facts, its sums per grain (reporter or region, flow type, unit, period, and whatever else the
view keys its rows by) equal the facts'. Two flow types or two units added into one row, a flow type
lost to a blank code, a fact counted twice or dropped: each shows as a key or a sum that differs.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import yaml
from test_views import JAN, load, obs, rows_of  # `wh`: conftest's warehouse on both engines

from transforms.warehouse import SQL_DIR

GRAINS = yaml.safe_load((SQL_DIR / "view_grains.yaml").read_text(encoding="utf-8"))
FEB = dt.date(2024, 2, 1)


def _facts_case() -> list[dict]:
    """Observations with every trap a view can fall into: two top-level flow types of one reporter
    and month (entries and exits), children of a flow type beside each other, two units, a yearly
    period beside monthly ones, a non-member reporter, a cell the source suppressed, small counts
    that pub_* hides, and a US fiscal-year source."""
    rows = [
        obs("tst_rec_col", "COL", "VEN", JAN, 42_506, flow="ENT_REG", unit="events"),
        obs("tst_rec_col", "COL", "VEN", JAN, 426_963, flow="EXT_REG", unit="events"),
        obs("tst_rec_col", "COL", "USA", JAN, 3, flow="ENT_REG", unit="events"),
        obs("tst_rec_col", "COL", "VEN", FEB, 40_001, flow="ENT_REG", unit="events"),
        obs("tst_rec_col", "COL", "VEN", FEB, 400_000, flow="EXT_REG", unit="events"),
        obs("tst_rec_mex", "MEX", "HND", JAN, 9_000, flow="IRR_ENC.APP", unit="events"),
        obs("tst_rec_mex", "MEX", "HND", JAN, 1_200, flow="IRR_ENC.INA", unit="events"),
        obs("tst_rec_mex", "MEX", "GTM", JAN, 2, flow="IRR_ENC.EXP", unit="events"),
        obs("tst_rec_mex", "MEX", "HND", JAN, 800, flow="RET_REM", unit="persons"),
        obs("tst_rec_mex", "MEX", "HND", JAN, 75, flow="RET_REM", unit="events"),
        obs("tst_rec_mex", "MEX", "GTM", JAN, None, flow="RET_REM", unit="persons"),
        obs("tst_rec_pan", "PAN", "VEN", JAN, 20_000, flow="IRR_TRN"),
        obs("tst_rec_pan", "PAN", "HTI", JAN, 4, flow="IRR_TRN"),
        obs("tst_rec_pan", "PAN", "VEN", dt.date(2023, 1, 1), 250_000, flow="IRR_TRN", ptype="A"),
        obs("tst_rec_pan", "PAN", "VEN", dt.date(2023, 1, 1), 1_000, flow="IRR_TRN"),
        obs("tst_rec_esp", "ESP", "VEN", JAN, 5_000, flow="ASY_APP"),
        obs("tst_rec_esp", "ESP", "COL", JAN, 1, flow="ASY_APP"),
    ]
    # Two sexes of the same cell: a view keyed without sex must add them, not pick one.
    rows += [
        obs("tst_rec_bra", "BRA", "VEN", JAN, 700, flow="ASY_APP", sex="M"),
        obs("tst_rec_bra", "BRA", "VEN", JAN, 650, flow="ASY_APP", sex="F"),
    ]
    return rows


def _load_case(wh) -> pd.DataFrame:
    frame = pd.DataFrame(_facts_case())
    for source_id, part in frame.groupby("source_id"):
        load(wh, part.reset_index(drop=True), f"{source_id}.csv")
    return pd.DataFrame(rows_of(wh, "SELECT * FROM fact_flow"))


def _roots(wh) -> dict[str, str]:
    return {code: parent or code for code, parent in wh.query("SELECT code, parent FROM dim_flow_type")[1]}


def _regions(wh) -> dict[str, str]:
    return dict(wh.query("SELECT iso3, conference FROM dim_country WHERE is_member")[1])


def _expected(wh, facts: pd.DataFrame, spec: dict) -> pd.Series:
    """fact_flow summed to the view's grain (rows of sources' suppressed cells count as NULL)."""
    f = facts
    if spec.get("facts_where"):
        keep = {
            r[0]
            for r in wh.query(f"SELECT DISTINCT period_type FROM fact_flow WHERE {spec['facts_where']}")[1]
        }
        f = f[f["period_type"].isin(keep)]
    f = f.copy()
    if spec.get("root"):
        f["flow_type"] = f["flow_type"].map(_roots(wh))
    if spec.get("region"):
        regions = _regions(wh)
        members = f[f["reporter_iso3"].isin(regions)]
        f = pd.concat(
            [
                members.assign(region=members["reporter_iso3"].map(regions)),
                members.assign(region="ALL"),
            ]
        )
    return f.groupby(spec["grain"], dropna=False)["value"].sum(min_count=1)


def _actual(wh, view: str, spec: dict) -> pd.DataFrame:
    where = f" WHERE {spec['view_where']}" if spec.get("view_where") else ""
    got = pd.DataFrame(rows_of(wh, f"SELECT * FROM {view}{where}"))
    assert not got.empty, view
    for column in ("flow_type", "unit"):
        assert got[column].notna().all() and (got[column] != "").all(), (view, column)
    return got


def _key(values) -> tuple:
    return tuple(v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v for v in values)


def _reconcile(wh, view: str, spec: dict, facts: pd.DataFrame) -> None:
    expected = {_key(k): v for k, v in _expected(wh, facts, spec).items()}
    got = _actual(wh, view, spec)
    grouped = got.groupby(spec["grain"], dropna=False)
    assert grouped.ngroups == len(got), f"{view}: one row per grain"
    actual = {_key(k): v for k, v in grouped["value"].sum(min_count=1).items()}
    assert set(actual) == set(expected), f"{view}: keys differ: {set(actual) ^ set(expected)}"
    hidden = (
        {_key(k) for k, s in grouped["suppressed"].any().items() if s} if spec.get("published") else set()
    )
    for key, value in actual.items():
        want = expected[key]
        if key in hidden or pd.isna(want):
            assert pd.isna(value), (view, key, value)
        else:
            assert value == pytest.approx(want), (view, key, value, want)
    if spec.get("published"):
        assert hidden, f"{view}: the case has small counts that must be suppressed"


def test_every_view_has_a_declared_grain(wh):
    installed = {v for v in wh._view_names_installed() if v.startswith(("v_", "pub_", "fact_"))}
    declared = set(GRAINS["views"]) | set(GRAINS["not_facts"])
    assert installed - declared == set(), "declare the grain of these views in sql/view_grains.yaml"
    assert declared - installed == set(), "sql/view_grains.yaml names views that do not exist"


def test_every_view_reconciles_with_the_facts(wh):
    facts = _load_case(wh)
    for view, spec in GRAINS["views"].items():
        _reconcile(wh, view, spec, facts)


def test_entries_and_exits_stay_on_separate_rows(wh):
    _load_case(wh)
    rows = rows_of(
        wh,
        "SELECT flow_type, unit, value FROM v_flow_by_period "
        "WHERE reporter_iso3 = 'COL' AND period_start = ? AND period_type = 'M' ORDER BY flow_type",
        [JAN],
    )
    assert [(r["flow_type"], r["value"]) for r in rows] == [("ENT_REG", 42_509), ("EXT_REG", 426_963)]
    roots = rows_of(wh, "SELECT DISTINCT flow_type_root FROM v_flow WHERE reporter_iso3 = 'MEX'")
    assert {r["flow_type_root"] for r in roots} == {"IRR_ENC", "RET_REM"}


def test_absent_values_are_null_in_every_dimension(wh):
    for table in ("dim_flow_type", "dim_country", "dim_sex", "dim_age_band", "dim_unit", "dim_source"):
        cols, rows = wh.query(f"SELECT * FROM {table}")
        for row in rows:
            assert "" not in row, (table, dict(zip(cols, row, strict=True)))
    top = {r[0] for r in wh.query("SELECT code FROM dim_flow_type WHERE parent IS NULL")[1]}
    assert {"ENT_REG", "EXT_REG", "IRR_ENC"} <= top and "IRR_ENC.APP" not in top


def test_month_names_and_the_us_fiscal_year_are_columns(wh):
    oct_ = dt.date(2023, 10, 1)
    load(
        wh,
        [obs("usa_cbp_swb_encounters", "USA", "MEX", oct_, 1_000, flow="IRR_ENC.APP", unit="events")],
        "fy.csv",
    )
    load(wh, [obs("tst_rec_cal", "CRI", "NIC", oct_, 500, flow="ENT_REG", unit="events")], "cal.csv")
    wh.execute(
        "INSERT INTO dim_source (source_id, calendar) "
        "VALUES ('tst_rec_cal', 'monthly'), ('usa_cbp_swb_encounters', 'us_fiscal_monthly')"
    )
    got = {
        r["reporter_iso3"]: r
        for r in rows_of(wh, "SELECT * FROM v_flow_monthly WHERE period_start = ?", [oct_])
    }
    usa, cri = got["USA"], got["CRI"]
    assert (usa["month_es"], usa["month_en"], usa["month_pt"], usa["month_fr"]) == (
        "octubre",
        "October",
        "outubro",
        "octobre",
    )
    assert usa["us_fiscal_year"] == 2024  # October 2023 opens fiscal year 2024
    assert cri["us_fiscal_year"] is None  # a calendar-year source has no fiscal year
    pub = rows_of(wh, "SELECT month_pt FROM pub_flow_monthly WHERE reporter_iso3 = 'CRI'")
    assert [r["month_pt"] for r in pub] == ["outubro"]
