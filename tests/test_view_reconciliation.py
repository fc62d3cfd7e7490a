"""Every reporting view reconciles with fact_flow, on both engines.

The views are discovered from the database catalog and their grains read from
``sql/view_grains.yaml``: a view added without a declared grain fails here. For each view that adds
up the facts, its sums per grain (reporter or region, flow type, unit, period, and whatever else the
view keys its rows by) equal the facts', and so do its sums per the columns analysts group on
instead (root flow type, month name, US fiscal year). Two flow types or two units added into one
row, a flow type lost to a blank code, a fact counted twice or dropped: each shows as a key or a
sum that differs. The expected figures come from fact_flow and the CSV code lists, never from the
dimensions the views join (a blank there is what the test must catch).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_views import JAN, load, obs, rows_of  # `wh`: conftest's warehouse on both engines

from transforms.config import Settings
from transforms.contracts import codelists
from transforms.contracts.loading import load_contracts
from transforms.storage.warehouse import FACT_COLUMNS, SQL_DIR, Warehouse, migrations, split_statements

GRAINS = yaml.safe_load((SQL_DIR / "view_grains.yaml").read_text(encoding="utf-8"))
FEB = dt.date(2024, 2, 1)
LANGS = ("es", "en", "pt", "fr")
# What every grain holds, so that no row adds two flow types, units or periods together.
REQUIRED = ("flow_type", "unit", "period_start", "period_end")
OPTIONS = {"grain", "root", "facts_where", "view_where", "region", "published", "all_sources"}
# Columns analysts group on instead of a grain's own: each replaces these grain columns.
DERIVED = {
    "flow_type_root": ("flow_type",),
    "us_fiscal_year": ("period_start", "period_end"),
    **{f"month_{lang}": ("period_start", "period_end") for lang in LANGS},
}
# fact_flow's "no detail" in the observation key is '' (a key column is never NULL); the views
# that show the facts' own columns carry it as it is.
KEY_BLANKS = {"detail"}
PAN_YEARLY, PAN_MONTHLY = "pan_darien_yearly", "pan_snm_transito_irregular_mensual"


def _facts_case() -> list[dict]:
    """Observations with every trap a view can fall into: two top-level flow types of one reporter
    and month (entries and exits), children of a flow type beside each other, two units, a yearly
    period beside monthly ones, a non-member reporter, a cell the source suppressed, small counts
    that pub_* hides, and a US fiscal-year source across the turn of its year."""
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
    # Two sources of the same crossings (pan_snm_transito_irregular_mensual declares it and is
    # preferred): 2022, its twelve months cover the yearly figure, which yields; 2021, one month
    # does not cover the year, so the yearly figure is used and that month yields.
    rows += [obs(PAN_YEARLY, "PAN", "VEN", dt.date(2022, 1, 1), 120_000, ptype="A")]
    rows += [obs(PAN_MONTHLY, "PAN", "VEN", dt.date(2022, m, 1), 10_000 + m) for m in range(1, 13)]
    rows += [obs(PAN_YEARLY, "PAN", "VEN", dt.date(2021, 1, 1), 50_000, ptype="A")]
    rows += [obs(PAN_MONTHLY, "PAN", "VEN", dt.date(2021, 3, 1), 4_000)]
    # A source counting by the US fiscal year (its contract says so): September 2023 closes fiscal
    # year 2023, October and November 2023 open 2024.
    rows += [
        obs("usa_cbp_swb_encounters", "USA", "MEX", dt.date(2023, m, 1), v, flow=f, unit="events")
        for m, v, f in ((9, 1_500, "IRR_ENC.APP"), (10, 1_000, "IRR_ENC.APP"), (11, 900, "IRR_ENC.INA"))
    ]
    return rows


def _load_case(wh) -> None:
    wh.ensure_schema(load_contracts())  # dim_source from the contracts (each source's calendar)
    frame = pd.DataFrame(_facts_case())
    for source_id, part in frame.groupby("source_id"):
        load(wh, part.reset_index(drop=True), f"{source_id}.csv")


def _catalog_views(wh) -> set[str]:
    """Every view of the warehouse's schema as the database lists it, whoever installed it."""
    rows = wh.fetchall(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_type = 'VIEW'"
    )
    return {r[0] for r in rows}


def _undeclared(wh) -> set[str]:
    return _catalog_views(wh) - set(GRAINS["views"]) - set(GRAINS["not_facts"])


# ---------------------------------------------------------------------------- expected figures


def _roots() -> dict[str, str]:
    """Each flow type's root, from the code list: a blank parent is a top-level type."""
    return {r["code"]: (r["parent"] or "").strip() or r["code"] for r in codelists.load("flow_types")}


def _regions() -> dict[str, str]:
    """Member states' conferences, from the code list."""
    return {
        r["iso3"]: r["conference"]
        for r in codelists.load("countries")
        if r["member"].strip().lower() in ("true", "1", "yes")
    }


def _derive(wh, facts: pd.DataFrame) -> pd.DataFrame:
    """The facts with the columns of DERIVED, computed here from the code lists and contracts."""
    out = facts.copy()
    out["flow_type_root"] = out["flow_type"].map(lambda c: _roots().get(c, c))
    monthly = out["period_type"] == "M"
    for row in codelists.load("month_names"):
        for lang in LANGS:
            hit = monthly & (out["month"] == int(row["month"]))
            out.loc[hit, f"month_{lang}"] = row[f"label_{lang}"]
    calendars = {s: c.period.calendar for s, c in load_contracts().items()}
    fiscal = out["source_id"].map(lambda s: str(calendars.get(s, "")).startswith("us_fiscal"))
    out["us_fiscal_year"] = (
        (out["year"] + (out["month"] >= 10).astype(int)).astype(object).where(fiscal, None)
    )
    return out


def _used(wh, facts: pd.DataFrame) -> pd.DataFrame:
    """The facts a sum uses: of two overlapping sources (dim_source_overlap, seeded from the
    contracts), per reporter, root flow type, unit and period, the preferred one where its periods
    cover the other's whole, else the other (docs: sql/views.sql, v_fact_precedence)."""
    rules = rows_of(wh, "SELECT * FROM dim_source_overlap")
    if not rules or facts.empty:
        return facts
    roots = _roots()
    spans: dict[tuple, set] = {}
    for r in facts.itertuples(index=False):
        key = (r.source_id, r.reporter_iso3, roots.get(r.flow_type, r.flow_type), r.unit)
        spans.setdefault(key, set()).add((r.period_start, r.period_end))
    out: set[tuple] = set()
    for rule in rules:
        since, until = rule["period_from"], rule["period_to"]
        for (src, rep, root, unit), mine in spans.items():
            if src != rule["source_id"] or rule["flow_type"] not in (None, root):
                continue
            theirs = spans.get((rule["preferred_source_id"], rep, root, unit), set())
            for s, e in mine:
                if (since and e < since) or (until and s > until):
                    continue
                hit = [(a, b) for a, b in theirs if a <= e and b >= s]
                if not hit:
                    continue
                inside = sum((b - a).days + 1 for a, b in hit if a >= s and b <= e)
                if any(a <= s and b >= e for a, b in hit) or inside >= (e - s).days + 1:
                    out.add((src, rep, root, unit, s, e))
                else:
                    out |= {(rule["preferred_source_id"], rep, root, unit, a, b) for a, b in hit}
    keys = zip(
        facts["source_id"],
        facts["reporter_iso3"],
        facts["flow_type"].map(lambda c: roots.get(c, c)),
        facts["unit"],
        facts["period_start"],
        facts["period_end"],
        strict=True,
    )
    return facts[[k not in out for k in keys]]


def _expected(facts: pd.DataFrame, spec: dict, grain: list[str]) -> pd.Series:
    """fact_flow summed to ``grain`` (the sources' suppressed cells count as NULL)."""
    f = facts.copy()
    if spec.get("root"):
        f["flow_type"] = f["flow_type"].map(lambda c: _roots().get(c, c))
    if spec.get("region"):
        regions = _regions()
        members = f[f["reporter_iso3"].isin(regions)]
        f = pd.concat(
            [members.assign(region=members["reporter_iso3"].map(regions)), members.assign(region="ALL")]
        )
    return f.groupby(grain, dropna=False)["value"].sum(min_count=1)


def _key(values) -> tuple:
    values = values if isinstance(values, tuple) else (values,)
    return tuple(
        None
        if v is None or (not isinstance(v, str) and pd.isna(v))
        else v.isoformat()
        if isinstance(v, (dt.date, dt.datetime))
        else v
        for v in values
    )


def _grains(spec: dict, columns) -> list[tuple[str, list[str]]]:
    """The view's own grain, and one per derived column it has (the columns it replaces out)."""
    out = [("grain", list(spec["grain"]))]
    for column, replaces in DERIVED.items():
        if column in columns:
            out.append((column, [c for c in spec["grain"] if c not in replaces] + [column]))
    return out


def _compare(view: str, name: str, grouped, expected: pd.Series, hidden: set) -> None:
    actual = {_key(k): v for k, v in grouped["value"].sum(min_count=1).items()}
    want = {_key(k): v for k, v in expected.items()}
    assert set(actual) == set(want), f"{view} by {name}: keys differ: {set(actual) ^ set(want)}"
    for key, value in actual.items():
        if key in hidden:
            continue
        if pd.isna(want[key]):
            assert pd.isna(value), (view, name, key, value)
        else:
            assert value == pytest.approx(want[key]), (view, name, key, value, want[key])


def _reconcile(wh, view: str, spec: dict) -> None:
    """The view's sums per grain (and per derived column) equal fact_flow's; in a pub_* view a
    suppressed row has no value and is the only row allowed to differ."""
    # The precedence is decided on every fact (a yearly figure decides for the months inside it),
    # then the view's own facts are kept.
    covers = spec.get("facts_where") or "true"
    facts = pd.DataFrame(
        rows_of(wh, f"SELECT *, CASE WHEN {covers} THEN 1 ELSE 0 END AS _covered FROM fact_flow")
    )
    facts = facts if spec.get("all_sources") else _used(wh, facts)
    facts = _derive(wh, facts[facts["_covered"] == 1].drop(columns="_covered"))
    view_where = f" WHERE {spec['view_where']}" if spec.get("view_where") else ""
    got = pd.DataFrame(rows_of(wh, f"SELECT * FROM {view}{view_where}"))
    assert not got.empty, view
    for column in ("flow_type", "unit"):
        assert got[column].notna().all() and (got[column].str.strip() != "").all(), (view, column)
    if spec.get("published"):
        assert got.loc[got["suppressed"], "value"].isna().all(), f"{view}: a suppressed row shows a value"
    for name, grain in _grains(spec, got.columns):
        grouped = got.groupby(grain, dropna=False)
        if name == "grain":
            assert grouped.ngroups == len(got), f"{view}: one row per grain"
        hidden = set()
        if spec.get("published"):  # a sum over a suppressed row is not the facts' (by design)
            hidden = {_key(k) for k, s in grouped["suppressed"].any().items() if s}
        _compare(view, name, grouped, _expected(facts, spec, grain), hidden)


# ---------------------------------------------------------------------------- the registry


def test_every_declared_grain_keeps_flow_types_units_and_periods_apart():
    for view, spec in GRAINS["views"].items():
        assert set(spec) <= OPTIONS, f"{view}: unknown options {set(spec) - OPTIONS} in view_grains.yaml"
        missing = {*REQUIRED, "region" if spec.get("region") else "reporter_iso3"} - set(spec["grain"])
        assert not missing, f"{view}: its grain in sql/view_grains.yaml lacks {sorted(missing)}"
        assert view.startswith("pub_") == bool(spec.get("published")), f"{view}: published iff pub_*"
    assert not set(GRAINS["views"]) & set(GRAINS["not_facts"])


def test_every_view_in_the_catalog_is_declared(wh):
    undeclared = _undeclared(wh)
    assert not undeclared, f"declare the grain of {sorted(undeclared)} in sql/view_grains.yaml"
    stale = set(GRAINS["views"]) | set(GRAINS["not_facts"])
    assert stale - _catalog_views(wh) == set(), "sql/view_grains.yaml names views that do not exist"


def test_a_view_added_later_fails_until_its_grain_is_declared(wh):
    """The views come from the catalog: one another module installs is found like the others."""
    wh.execute("CREATE VIEW v_mirror_probe AS SELECT reporter_iso3, flow_type FROM fact_flow")
    assert _undeclared(wh) == {"v_mirror_probe"}


# ---------------------------------------------------------------------------- the views


def test_every_view_reconciles_with_the_facts(wh):
    _load_case(wh)
    views = _catalog_views(wh)
    assert not _undeclared(wh)
    summed = sorted(views & set(GRAINS["views"]))
    assert summed == sorted(GRAINS["views"])
    for view in summed:
        _reconcile(wh, view, GRAINS["views"][view])
        if view.startswith("pub_"):  # the case's small counts are hidden: the check above saw them
            hidden = wh.fetchall(f"SELECT count(*) FROM {view} WHERE suppressed AND value IS NULL")
            assert hidden[0][0] > 0, f"{view}: the case has small counts that must be suppressed"


def test_a_blank_parent_is_caught_by_the_reconciliation(wh):
    """The issue's bug, put back by hand: v_flow_by_period adds ENT_REG and EXT_REG together, and
    the reconciliation says so."""
    _load_case(wh)
    wh.execute("UPDATE dim_flow_type SET parent = '' WHERE parent IS NULL")
    with pytest.raises(AssertionError, match="v_flow_by_period"):
        _reconcile(wh, "v_flow_by_period", GRAINS["views"]["v_flow_by_period"])


def test_entries_and_exits_stay_on_separate_rows(wh):
    _load_case(wh)
    rows = rows_of(
        wh,
        "SELECT flow_type, unit, value, month_en FROM v_flow_by_period "
        "WHERE reporter_iso3 = 'COL' AND period_start = ? AND period_type = 'M' ORDER BY flow_type",
        [JAN],
    )
    assert [(r["flow_type"], r["value"], r["month_en"]) for r in rows] == [
        ("ENT_REG", 42_509, "January"),
        ("EXT_REG", 426_963, "January"),
    ]
    roots = rows_of(
        wh, "SELECT flow_type_root, sum(value) AS v FROM v_flow WHERE reporter_iso3 = 'MEX' GROUP BY 1"
    )
    assert {r["flow_type_root"]: r["v"] for r in roots} == {"IRR_ENC": 10_202, "RET_REM": 875}


def _text_columns(wh, kind: str) -> dict[str, list[str]]:
    """The text columns of every table (``BASE TABLE``) or view of the schema, from the catalog."""
    rows = wh.fetchall(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t "
        "  ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE c.table_schema = current_schema() AND t.table_type = ? "
        "  AND lower(c.data_type) IN ('varchar', 'character varying', 'text')",
        [kind],
    )
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def _blanks(wh, table: str, columns: list[str]) -> dict[str, int]:
    if not columns:
        return {}
    counts = wh.fetchall(
        "SELECT " + ", ".join(f"count(*) FILTER (WHERE trim({c}) = '')" for c in columns) + f" FROM {table}"
    )[0]
    return {c: n for c, n in zip(columns, counts, strict=True) if n}


def test_absent_values_are_null_in_every_dimension_and_view(wh):
    _load_case(wh)
    dims = {t: c for t, c in _text_columns(wh, "BASE TABLE").items() if t.startswith("dim_")}
    assert {"dim_flow_type", "dim_country", "dim_source", "dim_month_name"} <= set(dims)
    for table, columns in dims.items():
        assert _blanks(wh, table, columns) == {}, table
    top = {r[0] for r in wh.fetchall("SELECT code FROM dim_flow_type WHERE parent IS NULL")}
    assert {"ENT_REG", "EXT_REG", "IRR_ENC"} <= top and "IRR_ENC.APP" not in top
    views = _text_columns(wh, "VIEW")
    assert set(views) == _catalog_views(wh)
    for view, columns in views.items():
        assert _blanks(wh, view, [c for c in columns if c not in KEY_BLANKS]) == {}, view


def test_month_names_and_the_us_fiscal_year_are_columns(wh):
    _load_case(wh)
    got = {
        (r["reporter_iso3"], r["period_start"]): r
        for r in rows_of(wh, "SELECT * FROM v_flow_monthly WHERE reporter_iso3 IN ('USA', 'COL')")
    }
    october = got[("USA", dt.date(2023, 10, 1))]
    assert tuple(october[f"month_{lang}"] for lang in LANGS) == ("octubre", "October", "outubro", "octobre")
    assert october["us_fiscal_year"] == 2024  # October 2023 opens fiscal year 2024
    assert got[("USA", dt.date(2023, 9, 1))]["us_fiscal_year"] == 2023
    assert got[("COL", JAN)]["us_fiscal_year"] is None  # a calendar-year source has no fiscal year
    by_fy = rows_of(
        wh,
        "SELECT us_fiscal_year, sum(value) AS v FROM v_flow WHERE reporter_iso3 = 'USA' GROUP BY 1 ORDER BY 1",
    )
    assert [(r["us_fiscal_year"], r["v"]) for r in by_fy] == [(2023, 1_500), (2024, 1_900)]
    pub = rows_of(
        wh, "SELECT month_pt FROM pub_flow_monthly WHERE reporter_iso3 = 'COL' ORDER BY period_start"
    )
    assert {r["month_pt"] for r in pub} == {"janeiro", "fevereiro"}


# ---------------------------------------------------------------------------- an existing warehouse


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_url(request, tmp_path):
    """The URL of an empty warehouse on each engine."""
    with contextlib.ExitStack() as stack:
        if request.param == "postgres":
            from test_warehouse import postgres_schema

            yield stack.enter_context(postgres_schema())
        else:
            yield f"duckdb:///{tmp_path / 'warehouse.duckdb'}"


def _seed_as_before(wh) -> None:
    """A version-3 warehouse as main seeded it before the fix: '' for every empty code-list cell,
    and facts (entries and exits of Colombia in January 2024) loaded."""
    with wh.transaction():
        wh.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)")
        for version, path in migrations()[:3]:
            for stmt in split_statements(path.read_text(encoding="utf-8"), wh.engine):
                wh.execute(stmt)
            wh.execute("INSERT INTO schema_version VALUES (?, ?)", [version, dt.datetime.now()])
        flows = pd.DataFrame(codelists.load("flow_types"))
        wh.copy_into("dim_flow_type", flows)
        countries = pd.DataFrame(codelists.load("countries"))
        countries["is_member"] = countries["member"] == "true"
        wh.copy_into(
            "dim_country", countries[["iso3", "iso2", "m49", "name_es", "name_en", "is_member", "conference"]]
        )
        wh.copy_into(
            "dim_source",
            pd.DataFrame(
                [{"source_id": "tst_rec_col", "reporter_iso3": "COL", "conference": "", "agency": " "}]
            ),
        )
        facts = pd.DataFrame(_facts_case()[:2]).assign(
            source_file="old.csv",
            source_sha256="0" * 64,
            source_row=[2, 3],
            vintage=dt.date(2024, 2, 15),
            loaded_at=dt.datetime(2024, 2, 15, 12),
            change="new",
        )
        wh.copy_into("fact_flow", facts[[*FACT_COLUMNS, "change"]])


def test_an_existing_warehouse_gets_the_fix_when_opened(old_url, tmp_path):
    """A warehouse seeded with '' (before schema version 6) is fixed in place by the next writer
    that opens it (`omh verify` seeds without contracts: dim_source is fixed too); nothing lost."""
    settings = Settings(home=Path(tmp_path), warehouse_url=old_url)
    with Warehouse(settings) as wh:
        _seed_as_before(wh)
        assert wh.fetchall("SELECT count(*) FROM dim_flow_type WHERE parent = ''")[0][0] > 10
        facts = wh.fetchall("SELECT count(*), sum(value) FROM fact_flow")
    with Warehouse(settings) as wh:
        applied = wh.migrate()
        assert applied and applied[-1] == migrations()[-1][0]
        for table, columns in _text_columns(wh, "BASE TABLE").items():
            if table.startswith("dim_"):
                assert _blanks(wh, table, columns) == {}, table  # by the migration, before any seeding
        assert wh.fetchall("SELECT conference, agency FROM dim_source") == [(None, None)]
        wh.ensure_schema()
        assert wh.fetchall("SELECT count(*), sum(value) FROM fact_flow") == facts
        rows = wh.fetchall(
            "SELECT flow_type, value FROM v_flow_by_period WHERE reporter_iso3 = 'COL' ORDER BY 1"
        )
        assert rows == [("ENT_REG", 42_506), ("EXT_REG", 426_963)]
