"""Contract tests: each real agency file gives the totals its own checks state (data/realdata/SOURCES.md)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from transforms.contracts.loading import load_contracts
from transforms.stages.extract import extract
from transforms.stages.harmonize import harmonize

RAW = Path(__file__).resolve().parent.parent / "data" / "realdata" / "raw"
FILES = {
    "usa_cbp_swb_encounters": "usa_cbp_sbo-encounters-fy22-fy25-aug.csv",
    "col_entradas_extranjeros": "colombia_entradas_de_extranjeros_a_colombia_20250803.csv",
    "can_ircc_asylum_gender": "canada_ircc_EN_ODP-Asylum-PT_Gender.xlsx",
    "unhcr_solutions": "unhcr_refugee_data_finder_solutions_extracted_2024-07-19.csv",
    "pan_darien_yearly": "panama_darien_2019-2022_by_nationality_derived.csv",
    # Issue 18: five more agencies' layouts, each loaded by its contract alone.
    "can_ircc_pr_citizenship": "canada_ircc_EN_ODP-PR-Citz.xlsx",
    "can_ircc_work_hc_citizenship": "canada_ircc_EN_ODP-TR-Work-HC_citizenship_sign.xlsx",
    "usa_dhs_refugee_arrivals_yearbook": "usa_dhs_ohss_yearbook_refugees_fy2023.xlsx",
    "usa_dhs_affirmative_asylum_yearbook": "usa_dhs_ohss_yearbook_asylees_fy2023.xlsx",
    "usa_ohss_usbp_encounters_citizenship": "usa_ohss_KHSM_Encounters_USBP_fy25m11.xlsx",
    "bra_obmigra_refugio_em_numeros": "brasil_obmigra_refugio_em_numeros_10e_plano_tabular.xlsx",
    "usa_state_prm_refugee_admissions": "usa_state_prm_refugee_admissions_report_2024-12-31.xlsx",
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


# ---------------------------------------------------------------------------- issue 18's files
# Each file's own check figures are read from the file itself (its total row, or the sheet that
# states them), not copied here; SOURCES.md records them.


def _sheet(source_id: str, sheet=0) -> list[tuple]:
    book = openpyxl.load_workbook(RAW / FILES[source_id], read_only=True, data_only=True)
    ws = book.worksheets[sheet] if isinstance(sheet, int) else book[sheet]
    return list(ws.iter_rows(values_only=True))


def _number(cell) -> int:
    return int(str(cell).replace(",", ""))


def _ircc_month_totals(source_id: str) -> dict[tuple[int, int], int]:
    """The "Total" row of an IRCC citizenship table, month by month (quarter and year totals out)."""
    rows = _sheet(source_id)
    years, months, total = rows[2], rows[4], next(r for r in rows if r and r[0] == "Total")
    out, year = {}, None
    for i, month in enumerate(months):
        year = int(years[i]) if i and years[i] else year
        if i and isinstance(month, str) and len(month) == 3:
            out[(year, dt.datetime.strptime(month, "%b").month)] = _number(total[i])
    return out


@pytest.mark.parametrize(
    ("source_id", "months", "grand_total"),
    [("can_ircc_pr_citizenship", 121, 3_534_540), ("can_ircc_work_hc_citizenship", 127, 799_165)],
)
def test_ircc_citizenship_tables_give_their_total_row_month_by_month(source_id, months, grand_total):
    f = _harmonized(source_id)
    want = _ircc_month_totals(source_id)
    got = f.groupby(f["period_start"].map(lambda d: (d.year, d.month)))["value"].sum()
    assert len(want) == months and got.to_dict() == want
    assert f["value"].sum() == sum(want.values()) == grand_total
    # Cells of 0-5 are suppressed and the rest rounded to 5: the remainder is of unknown citizenship.
    assert (f.loc[f["conf_status"] == "S", "value"].isna()).all()
    assert set(f.loc[f["detail"].str.contains("remainder"), "citizenship_iso3"]) == {"_U"}
    assert {"CAN"} == set(f["reporter_iso3"]) and f["citizenship_iso3"].nunique() > 190


@pytest.mark.parametrize(
    ("source_id", "fy2023", "cells_fy2023"),
    [
        ("usa_dhs_refugee_arrivals_yearbook", 60_050, 60_110),
        ("usa_dhs_affirmative_asylum_yearbook", 22_300, 22_320),
    ],
)
def test_dhs_yearbook_country_block_against_its_total_row(source_id, fy2023, cells_fy2023):
    f = _harmonized(source_id)
    rows = _sheet(source_id, load_contracts()[source_id].reader.sheet)
    header = rows[5]
    totals = [r for r in rows if r and r[0] == "Total"]
    assert len(totals) == 2 and totals[0] == totals[1]  # the REGION and COUNTRY blocks agree
    fiscal_year = f["period_end"].map(lambda d: d.year)
    got = f.groupby(fiscal_year)["value"].sum()
    cells = f.groupby(fiscal_year).size()
    for i, year in enumerate(header[1:], start=1):
        # Cells are rounded to ten: their sum is within half a unit per cell of the total row.
        assert abs(got[year] - totals[0][i]) <= 5 * cells[year], (year, got[year], totals[0][i])
    assert (totals[0][header.index(2023)], got[2023]) == (fy2023, cells_fy2023)
    assert set(f["period_type"]) == {"Y"} and f["period_start"].min() == dt.date(2013, 10, 1)
    assert "_O" in set(f["citizenship_iso3"]) and "_U" in set(f["citizenship_iso3"])


def test_usbp_encounters_against_the_workbooks_own_counts():
    f = _harmonized("usa_ohss_usbp_encounters_citizenship")
    annual = {y: q for y, q in _sheet("usa_ohss_usbp_encounters_citizenship", "Annual Count")[1:]}
    monthly = {
        (y, int(m.split()[0])): q
        for y, m, q in _sheet("usa_ohss_usbp_encounters_citizenship", "Monthly Count")[1:]
    }
    fiscal_year = f["period_start"].map(lambda d: d.year + (d.month >= 10))
    fiscal_month = f["period_start"].map(lambda d: (d.month - 10) % 12 + 1)
    by_year, cells = f.groupby(fiscal_year)["value"].sum(), f.groupby(fiscal_year).size()
    by_month = f.groupby([fiscal_year, fiscal_month])["value"].sum()
    assert set(by_year.index) == set(annual) and set(by_month.index) == set(monthly)
    for year, quantity in annual.items():  # counts rounded to ten, small cells left out
        assert abs(by_year[year] - quantity) <= 5 * cells[year], (year, by_year[year], quantity)
    assert (annual[2023], by_year[2023]) == (2_063_690, 2_063_700)
    # "01 October" is October of the year before the fiscal year's number.
    assert f["period_start"].min() == dt.date(1999, 10, 1) and f["period_end"].max() == dt.date(2024, 11, 30)
    assert set(f["flow_type"]) == {"IRR_ENC"} and set(f["unit"]) == {"events"}


def test_refugio_em_numeros_applicants_by_sex_add_up_to_the_applications_by_nationality():
    f = _harmonized("bra_obmigra_refugio_em_numeros")
    by_nationality = _sheet("bra_obmigra_refugio_em_numeros", "Mapa 2.1.1")
    check = sum(r[1] for r in by_nationality[2:] if isinstance(r[1], (int, float)))
    assert f["value"].sum() == check == 454_165
    by_year = f.groupby("year")["value"].sum()
    assert list(by_year.index) == list(range(2015, 2025)) and by_year[2024] == 68_159
    # Columns Homens, Mulheres, Não Especificado.
    assert f.groupby("sex")["value"].sum().to_dict() == {"F": 187_980, "M": 265_544, "_U": 641}


def test_prm_refugee_admissions_give_each_fiscal_years_grand_totals_and_region_totals():
    f = _harmonized("usa_state_prm_refugee_admissions")
    fiscal_year = f["period_start"].map(lambda d: d.year + (d.month >= 10))
    fiscal_month = f["period_start"].map(lambda d: (d.month - 10) % 12)  # OCT = 0
    region = f["detail"].str.extract(r"region=([^;]+)")[0]
    by_year = f.groupby(fiscal_year)["value"].sum()
    by_month = f.groupby([fiscal_year, fiscal_month])["value"].sum()
    by_region = f.groupby([fiscal_year, region])["value"].sum()
    # FY2001-FY2024 are read; FY2025 (in progress on 31 December 2024) is not: see SOURCES.md.
    assert list(by_year.index) == list(range(2001, 2025))
    assert f["period_end"].max() == dt.date(2024, 9, 30)
    for year in by_year.index:
        rows = _sheet("usa_state_prm_refugee_admissions", str(year))
        grand = next(r for r in rows if r[1] == "Grand Totals")
        assert by_year[year] == grand[3], (year, by_year[year], grand[3])  # 'FY Total Admitted'
        for m in range(12):  # OCT..SEP; an empty total is a month of none (OCT of FY2020)
            assert by_month[(year, m)] == (grand[4 + m] or 0), (year, m)
        for r in rows:  # 'Total Africa' .. : the countries under each region row
            if isinstance(r[1], str) and r[1].startswith("Total ") and r[3] is not None:
                assert by_region[(year, r[1][len("Total ") :])] == r[3], (year, r[1])
    assert by_year[2023] == 60_014 and by_year[2024] == 100_034 and by_year[2001] == 69_886
    assert by_region[(2023, "Africa")] == 24_481 and by_region[(2023, "Near East/South Asia")] == 20_194
    drc = f[(f["citizenship_iso3"] == "COD") & (fiscal_year == 2023)]
    assert drc["value"].sum() == 18_145
    assert drc.loc[drc["period_start"] == dt.date(2022, 10, 1), "value"].tolist() == [618]  # OCT FY2023
    # FY2012 lists "Palestine" (141) and "Gaza Strip" (7): both PSE, kept apart by their label.
    pse = f[(f["citizenship_iso3"] == "PSE") & (fiscal_year == 2012)]
    assert pse["value"].sum() == 148 and pse["detail"].nunique() == 2
    assert set(f["flow_type"]) == {"RST_ARR"} and set(f["unit"]) == {"persons"}
