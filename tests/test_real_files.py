"""Contract tests: each real agency file gives the totals its own checks state (data/realdata/SOURCES.md)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from transforms.contracts import load_contracts
from transforms.extract import extract
from transforms.harmonize import harmonize

RAW = Path(__file__).resolve().parent.parent / "data" / "realdata" / "raw"
FILES = {
    "usa_cbp_swb_encounters": "usa_cbp_sbo-encounters-fy22-fy25-aug.csv",
    "col_entradas_extranjeros": "colombia_entradas_de_extranjeros_a_colombia_20250803.csv",
    "can_ircc_asylum_gender": "canada_ircc_EN_ODP-Asylum-PT_Gender.xlsx",
    "unhcr_solutions": "unhcr_refugee_data_finder_solutions_extracted_2024-07-19.csv",
    "pan_darien_yearly": "panama_darien_2019-2022_by_nationality_derived.csv",
}


def _harmonized(source_id: str):
    contract = load_contracts()[source_id]
    ex = extract(RAW / FILES[source_id], contract)
    hz = harmonize(contract, ex.table, ex.sheet)
    assert not hz.errors, [p.message for p in hz.errors]
    return hz.frame


def test_cbp_fiscal_years_map_to_calendar_months():
    f = _harmonized("usa_cbp_swb_encounters")
    # FY N runs from October N-1 to September N.
    fiscal_year = f["period_start"].map(lambda d: d.year + (d.month >= 10))
    totals = f.groupby(fiscal_year)["value"].sum()
    assert totals[2022] == 2_378_944
    assert totals[2023] == 2_475_669
    october = f[f["source_row"] == 2].iloc[0]
    assert october["period_start"] == dt.date(2021, 10, 1) and october["period_end"] == dt.date(2021, 10, 31)
    assert set(f["flow_type"]) == {"IRR_ENC.APP", "IRR_ENC.INA", "IRR_ENC.EXP"}
    assert set(f["unit"]) == {"events"}
    assert set(f["citizenship_iso3"]) == {"SLV", "GTM", "HND", "MEX", "_O"}


def test_colombia_unstated_sex_kept_as_unknown():
    f = _harmonized("col_entradas_extranjeros")
    assert f["value"].sum() == 6_697_733
    by_sex = f.groupby("sex")["value"].sum()
    assert by_sex["F"] + by_sex["M"] == 6_697_549
    assert by_sex["_U"] == 184
    assert set(f["citizenship_iso3"]) == {"VEN"}
    assert (f.loc[f["sex"] == "_U", "obs_status"] == "E").all()


def test_canada_rounded_and_suppressed_cells_flagged():
    f = _harmonized("can_ircc_asylum_gender")
    assert f["value"].sum() == 734_415
    months = f["period_start"].nunique()
    assert months == 127
    suppressed = f[f["conf_status"] == "S"]
    assert len(suppressed) == 821 and suppressed["value"].isna().all()
    rounded = f[(f["conf_status"] == "F") & (f["value"] > 0) & (f["obs_status"] != "E")]
    assert (rounded["rounding_base"] == 5).all()
    assert (rounded["value"] % 5 == 0).all()
    # The leaves alone sum below the source's total; the remainder carries the difference.
    leaves = f[~f["detail"].str.contains("remainder")]["value"].sum()
    assert leaves == 732_745
    assert set(f["sex"]) == {"F", "M", "O", "_U"}


def test_unhcr_member_states_as_country_of_asylum():
    f = _harmonized("unhcr_solutions")
    by_flow = f.groupby("flow_type")["value"].sum()
    assert by_flow["RST_ARR"] == 654_270
    assert by_flow["NAT"] == 143_283
    returned = f[f["flow_type"] == "RET_REF"]
    # Returned refugees are reported by the country of origin; counterpart is the former asylum country.
    assert (returned["reporter_iso3"] == returned["citizenship_iso3"]).all()
    assert (returned["counterpart_iso3"] != "_Z").all()
    # The reporter's role follows the flow type: origin for returns, destination for the others.
    assert set(returned["reporter_role"]) == {"origin"}
    assert set(f.loc[f["flow_type"] != "RET_REF", "reporter_role"]) == {"destination"}


def test_darien_2022_total():
    f = _harmonized("pan_darien_yearly")
    assert f.loc[f["year"] == 2022, "value"].sum() == 248_284
    assert "_O" in set(f["citizenship_iso3"])
    assert set(f["period_type"]) == {"Y"}


@pytest.mark.parametrize("source_id", sorted(FILES))
def test_no_reporter_flow_type_mixes_units(source_id):
    f = _harmonized(source_id)
    units = f.groupby(["reporter_iso3", "flow_type"])["unit"].nunique()
    assert (units == 1).all()


@pytest.mark.parametrize("source_id", sorted(FILES))
def test_every_value_traces_to_a_source_cell(source_id):
    f = _harmonized(source_id)
    assert f["source_row"].notna().all() and (f["source_row"] >= 1).all()
    assert f["source_column"].notna().all()
