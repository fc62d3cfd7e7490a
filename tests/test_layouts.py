"""Layout features as contract mechanisms (issue 18): each test builds a file that has the layout
(xlsx with openpyxl, xls with xlwt, csv as text), reads it by a contract alone and asserts the
figures loaded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import openpyxl
import pytest
import xlwt
import yaml
from openpyxl.styles import Alignment, Font

import transforms.contracts.loading as contracts_module
from transforms.contracts.loading import bind_to_file
from transforms.contracts.model import Contract, ContractError
from transforms.readers import ReadError
from transforms.stages.extract import extract
from transforms.stages.harmonize import harmonize

BASE = {
    "source_id": "layout_test",
    "title": "Layout test",
    "agency": "Test agency",
    "reporter": "PAN",
    "landing": {"folder": "PAN", "patterns": ["*.xlsx"]},
}
FIELDS = {"flow_type": "ENT_REG", "unit": "persons"}


def contract(**kw) -> Contract:
    data = {**BASE, **kw}
    data["fields"] = {**FIELDS, **kw.get("fields", {})}
    return Contract.model_validate(data)


def write_xlsx(path: Path, sheets: dict[str, list[list]], styles=None) -> Path:
    """A workbook of ``sheets`` (name -> rows); ``styles`` maps (sheet, row, col) -> cell styles."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    for (sheet, r, c), style in (styles or {}).items():
        for attr, value in style.items():
            setattr(wb[sheet].cell(r, c), attr, value)
    wb.save(path)
    return path


def write_xls(path: Path, sheets: dict[str, list[list]]) -> Path:
    book = xlwt.Workbook()
    for name, rows in sheets.items():
        ws = book.add_sheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is not None:
                    ws.write(r, c, value)
    book.save(str(path))
    return path


def load(path: Path, c: Contract):
    """The file as the pipeline reads it: the contract bound to the file's name, extracted, harmonized."""
    bound = bind_to_file(c, path.name)
    ex = extract(path, bound)
    return ex, harmonize(bound, ex)


def figures(hz, *cols: str) -> dict:
    f = hz.frame
    return {tuple(r[c] for c in cols): r["value"] for _, r in f.iterrows()}


# ---------------------------------------------------------------------------- blocks


def blocks_sheet() -> list[list]:
    return [
        ["Servicio Nacional de Migración"],
        ["Entradas por todos los puntos, 2024"],
        ["Nacionalidad", "Enero", "Febrero"],
        ["Venezuela", 30, 40],
        ["Colombia", 3, 4],
        [],
        ["Entradas por Aeropuerto de Tocumen, 2024"],
        ["Nacionalidad", "Enero", "Febrero"],
        ["Venezuela", 10, 15],
        ["Colombia", 1, 2],
        [],
        ["Nota: cifras preliminares"],
        ["Entradas por Paso Canoas, 2024"],
        ["Nacionalidad", "Enero", "Febrero"],
        ["Venezuela", 20, 25],
        ["Colombia", 2, 2],
        ["Fuente: SNM"],
    ]


def blocks_contract(**reader) -> Contract:
    return contract(
        reader={
            "format": "xlsx",
            "blocks": {"title": r"^Entradas por "},
            "captures": {"punto": r"^Entradas por (.+), \d{4}$", "anio": r"(\d{4})$"},
            "stop_at": "^Fuente",
            **reader,
        },
        ids={"nationality": "Nacionalidad"},
        values={"melt": {"start_col": "B", "names": ["month"]}},
        rows={"skip": [{"column": "punto", "equals": "todos los puntos"}]},
        fields={"citizenship": {"column": "nationality"}},
        period={"calendar": "monthly", "year": {"column": "anio"}, "month": {"column": "month"}},
        detail=["punto"],
    )


def test_blocks_stacked_on_a_sheet_each_with_its_title_as_an_attribute(tmp_path):
    path = write_xlsx(tmp_path / "entradas.xlsx", {"Hoja1": blocks_sheet()})
    ex, hz = load(path, blocks_contract())
    assert not hz.errors, hz.errors
    got = figures(hz, "detail", "citizenship_iso3", "month")
    assert got == {
        ("punto=Aeropuerto de Tocumen", "VEN", 1): 10,
        ("punto=Aeropuerto de Tocumen", "VEN", 2): 15,
        ("punto=Aeropuerto de Tocumen", "COL", 1): 1,
        ("punto=Aeropuerto de Tocumen", "COL", 2): 2,
        ("punto=Paso Canoas", "VEN", 1): 20,
        ("punto=Paso Canoas", "VEN", 2): 25,
        ("punto=Paso Canoas", "COL", 1): 2,
        ("punto=Paso Canoas", "COL", 2): 2,
    }
    f = hz.frame
    # Each figure keeps its physical row; the total block (skipped), notes and source are not data.
    assert sorted(set(f["source_row"])) == [9, 10, 15, 16]
    assert set(f["period_start"]) == {dt.date(2024, 1, 1), dt.date(2024, 2, 1)}
    assert ex.rows_skipped == 2


def test_each_block_total_row_is_checked_against_its_own_block(tmp_path):
    rows = blocks_sheet()
    rows.insert(5, ["Total", 33, 44])  # the total table's total row
    rows.insert(11, ["Total", 11, 17])  # Tocumen's
    rows.insert(18, ["Total", 22, 27])  # Paso Canoas's
    path = write_xlsx(tmp_path / "entradas.xlsx", {"Hoja1": rows})
    c = blocks_contract().model_dump(by_alias=True)
    # The total table is left out whole (its total row too) by its title.
    c["reader"]["blocks"]["skip"] = "todos los puntos"
    c["rows"] = {"total": [{"column": "nationality", "equals": "Total"}]}
    c = Contract.model_validate(c)
    _, hz = load(path, c)
    assert not hz.errors, hz.errors
    assert len(hz.controls) == 4 and (hz.controls["remainder"] == 0).all()
    assert hz.frame["value"].sum() == 77
    rows[18] = ["Total", 22, 28]  # a wrong total in the second block only
    _, hz = load(write_xlsx(tmp_path / "bad.xlsx", {"Hoja1": rows}), c)
    (problem,) = hz.errors
    assert problem.check == "total_matches" and problem.rows == [19] and "27" in problem.message


def test_the_total_table_above_the_blocks_is_their_control(tmp_path):
    c = blocks_contract().model_dump(by_alias=True)
    c["reader"]["blocks"]["totals"] = "todos los puntos"
    c["rows"] = {}
    c = Contract.model_validate(c)
    _, hz = load(write_xlsx(tmp_path / "entradas.xlsx", {"Hoja1": blocks_sheet()}), c)
    assert not hz.errors, hz.errors
    assert hz.frame["value"].sum() == 77 and "punto=todos los puntos" not in set(hz.frame["detail"])
    rows = blocks_sheet()
    rows[15] = ["Colombia", 2, 3]  # Paso Canoas's February: the total table says 4, the blocks 5
    _, hz = load(write_xlsx(tmp_path / "bad.xlsx", {"Hoja1": rows}), c)
    (problem,) = hz.errors
    assert problem.check == "total_matches" and problem.rows == [5] and problem.column == "Febrero"
    assert "says 4 for Colombia" in problem.message and "sum to 5" in problem.message


def test_blocks_found_by_their_header_take_the_rows_above_as_title(tmp_path):
    rows = [r for r in blocks_sheet() if r != ["Nota: cifras preliminares"]]
    path = write_xlsx(tmp_path / "entradas.xlsx", {"Hoja1": rows})
    c = blocks_contract(blocks={"header": "^Nacionalidad$"})
    _, hz = load(path, c)
    assert not hz.errors, hz.errors
    f = hz.frame
    assert f.groupby("detail")["value"].sum().to_dict() == {
        "punto=Aeropuerto de Tocumen": 28,
        "punto=Paso Canoas": 49,
    }


def test_a_block_header_under_a_blank_row_and_a_stray_cell_far_right(tmp_path):
    rows = blocks_sheet()
    rows.insert(7, [])  # a blank row between Tocumen's title and its header
    rows[3] = ["Venezuela", 30, 40, None, None, None, "revisado"]  # a note far right of the total block
    path = write_xlsx(tmp_path / "entradas.xlsx", {"Hoja1": rows})
    _, hz = load(path, blocks_contract())
    assert not hz.errors, hz.errors
    assert hz.frame["value"].sum() == 77 and sorted(set(hz.frame["source_row"])) == [10, 11, 16, 17]


def test_a_block_whose_title_lacks_the_capture_is_refused_naming_rows(tmp_path):
    rows = blocks_sheet()
    rows[12] = ["Entradas por Paso Canoas"]  # no year in this title
    path = write_xlsx(tmp_path / "entradas.xlsx", {"Hoja1": rows})
    with pytest.raises(
        ReadError,
        match=r"entradas.xlsx: the title rows 12-13 .* header is row 14: no text matches .* 'punto'",
    ):
        load(path, blocks_contract())


def test_blocks_with_other_columns_are_matched_by_header_text(tmp_path):
    rows = blocks_sheet()
    rows[13] = ["Nacionalidad", "Enero", "Marzo", "Febrero"]  # Paso Canoas: one more month, another order
    rows[14] = ["Venezuela", 20, 30, 25]
    rows[15] = ["Colombia", 2, 3, 2]
    path = write_xlsx(tmp_path / "entradas.xlsx", {"Hoja1": rows})
    _, hz = load(path, blocks_contract())
    assert not hz.errors, hz.errors
    got = figures(hz, "detail", "citizenship_iso3", "month")
    assert got[("punto=Paso Canoas", "VEN", 2)] == 25 and got[("punto=Paso Canoas", "VEN", 3)] == 30
    assert got[("punto=Aeropuerto de Tocumen", "COL", 2)] == 2
    assert not any(k[0] == "punto=Aeropuerto de Tocumen" and k[2] == 3 for k in got)  # no March there
    assert len(got) == 10


# ---------------------------------------------------------------------------- parent rows


def parents_contract(fmt: str, **parents) -> Contract:
    return contract(
        reader={"format": fmt, "parents": {"column": "Nacionalidad", "attribute": "residencia", **parents}},
        ids={"nationality": "Nacionalidad"},
        values={"columns": [{"header": "Salidas"}]},
        fields={"citizenship": {"column": "nationality"}},
        period={"calendar": "yearly", "year": "2024"},
        detail=["residencia"],
    )


RESIDENCE = [
    ["Nacionalidad", "Salidas"],
    ["Residentes", 150],
    ["Venezuela", 100],
    ["Colombia", 50],
    ["No residentes", 70],
    ["Venezuela", 60],
    ["Colombia", 10],
]


def test_parent_rows_by_xlsx_indentation_become_detail(tmp_path):
    indented = {("Datos", r, 1): {"alignment": Alignment(indent=1)} for r in (3, 4, 6, 7)}
    path = write_xlsx(tmp_path / "salidas.xlsx", {"Datos": RESIDENCE}, indented)
    _, hz = load(path, parents_contract("xlsx", by="indent"))
    assert not hz.errors, hz.errors  # no duplicate keys: the parent tells Venezuela from Venezuela
    assert figures(hz, "detail", "citizenship_iso3") == {
        ("residencia=Residentes", "VEN"): 100,
        ("residencia=Residentes", "COL"): 50,
        ("residencia=No residentes", "VEN"): 60,
        ("residencia=No residentes", "COL"): 10,
    }


def test_parent_rows_by_bold_type(tmp_path):
    bold = {("Datos", r, 1): {"font": Font(bold=True)} for r in (2, 5)}
    path = write_xlsx(tmp_path / "salidas.xlsx", {"Datos": RESIDENCE}, bold)
    _, hz = load(path, parents_contract("xlsx", by="bold"))
    assert not hz.errors, hz.errors
    assert hz.frame["value"].sum() == 220 and len(hz.frame) == 4


def test_parent_rows_by_bold_type_in_xls(tmp_path):
    book = xlwt.Workbook()
    ws = book.add_sheet("Datos")
    bold = xlwt.easyxf("font: bold on")
    for r, (label, value) in enumerate(RESIDENCE):
        style = bold if label in ("Residentes", "No residentes") else xlwt.easyxf("")
        ws.write(r, 0, label, style)
        ws.write(r, 1, value)
    book.save(str(tmp_path / "salidas.xls"))
    _, hz = load(tmp_path / "salidas.xls", parents_contract("xls", by="bold"))
    assert not hz.errors, hz.errors
    assert figures(hz, "detail", "citizenship_iso3")[("residencia=Residentes", "COL")] == 50


def test_parent_rows_by_leading_spaces_in_xls_nest_two_levels(tmp_path):
    rows = [
        ["Nacionalidad", "Salidas"],
        ["América", 37],
        ["  Sudamérica", 30],
        ["    Venezuela", 20],
        ["    Otros", 10],
        ["  Centroamérica", 7],
        ["    Otros", 7],
        ["Europa", 5],
        ["  Otros", 5],
        ["Total", 42],
    ]
    path = write_xls(tmp_path / "salidas.xls", {"Datos": rows})
    c = parents_contract("xls", by="indent").model_dump(by_alias=True)
    c["rows"] = {"skip": [{"column": "nationality", "equals": "Total"}]}
    _, hz = load(path, Contract.model_validate(c))
    assert not hz.errors, hz.errors
    assert figures(hz, "detail", "citizenship_iso3") == {
        ("residencia=Sudamérica", "VEN"): 20,
        ("residencia=Sudamérica", "_O"): 10,
        ("residencia=Centroamérica", "_O"): 7,
        ("residencia=Europa", "_O"): 5,
    }


def test_parent_rows_by_label_pattern_in_csv(tmp_path):
    text = "Nacionalidad,Salidas\n" + "\n".join(f"{a},{b}" for a, b in RESIDENCE[1:]) + "\n"
    path = tmp_path / "salidas.csv"
    path.write_text(text, encoding="utf-8")
    _, hz = load(path, parents_contract("csv", by="pattern", pattern="^(No )?[Rr]esidentes$"))
    assert not hz.errors, hz.errors
    assert figures(hz, "detail", "citizenship_iso3")[("residencia=No residentes", "VEN")] == 60
    assert len(hz.frame) == 4


# ---------------------------------------------------------------------------- ranges and stop patterns


def test_stop_pattern_and_row_range(tmp_path):
    text = (
        "Informe anual\nNacionalidad,Entradas\nVenezuela,5\nColombia,7\nCuba,9\n"
        "Total general,21\nFuente: DGM\n"
    )
    path = tmp_path / "entradas.csv"
    path.write_text(text, encoding="utf-8")
    base = {
        "ids": {"nationality": "Nacionalidad"},
        "values": {"columns": [{"header": "Entradas"}]},
        "fields": {"citizenship": {"column": "nationality"}},
        "period": {"calendar": "yearly", "year": "2024"},
    }
    c = contract(reader={"format": "csv", "header_row": 2, "stop_at": "^Total general"}, **base)
    _, hz = load(path, c)
    assert not hz.errors, hz.errors
    assert figures(hz, "citizenship_iso3") == {("VEN",): 5, ("COL",): 7, ("CUB",): 9}
    ranged = contract(reader={"format": "csv", "header_row": 2, "first_row": 4, "last_row": 5}, **base)
    _, hz = load(path, ranged)
    assert figures(hz, "citizenship_iso3") == {("COL",): 7, ("CUB",): 9}
    assert sorted(hz.frame["source_row"]) == [4, 5]


# ---------------------------------------------------------------------------- several sheets


def test_several_sheets_in_one_contract_with_the_sheet_name_as_period(tmp_path):
    sheet = [["Nacionalidad", "Entradas"], ["Venezuela", 5], ["Colombia", 7]]
    later = [["Nacionalidad", "Entradas"], ["Venezuela", 6], ["Colombia", 8]]
    sheets = {"Notas": [["Fuente"]], "2023": sheet, "2024": later, "2025": []}  # 2025: not yet published
    path = write_xls(tmp_path / "entradas.xls", sheets)
    c = contract(
        reader={"format": "xls", "sheets": r"^20\d\d$", "sheet_attribute": "hoja"},
        ids={"nationality": "Nacionalidad"},
        values={"columns": [{"header": "Entradas"}]},
        fields={"citizenship": {"column": "nationality"}},
        period={"calendar": "yearly", "year": {"column": "hoja"}},
    )
    ex, hz = load(path, c)
    assert not hz.errors, hz.errors
    assert figures(hz, "year", "citizenship_iso3") == {
        (2023, "VEN"): 5,
        (2023, "COL"): 7,
        (2024, "VEN"): 6,
        (2024, "COL"): 8,
    }
    f = hz.frame
    # Rows of the n-th sheet read are numbered n * 1,000,000 + row: one number per data row.
    assert sorted(f["source_row"]) == [2, 3, 1_000_002, 1_000_003]
    assert set(f["source_sheet"]) == {"2023, 2024"}


def test_each_sheet_total_row_covers_its_own_sheet(tmp_path):
    first = [["Nacionalidad", "Entradas"], ["Venezuela", 5], ["Colombia", 7], ["Total", 12]]
    second = [["Nacionalidad", "Entradas"], ["Venezuela", 6], ["Colombia", 8], ["Total", 14]]
    path = write_xlsx(tmp_path / "entradas.xlsx", {"2023": first, "2024": second})
    c = contract(
        reader={"format": "xlsx", "sheets": r"^20\d\d$"},
        ids={"nationality": "Nacionalidad"},
        values={"columns": [{"header": "Entradas"}]},
        rows={"total": [{"column": "nationality", "equals": "Total"}]},
        fields={"citizenship": {"column": "nationality"}},
        period={"calendar": "yearly", "year": {"column": "sheet"}},
    )
    _, hz = load(path, c)
    assert not hz.errors, hz.errors
    assert sorted(hz.controls["total"]) == [12, 14] and (hz.controls["remainder"] == 0).all()
    assert figures(hz, "year", "citizenship_iso3")[(2024, "COL")] == 8


def test_each_sheet_total_row_covers_its_own_sheet_in_a_long_table_given_as_a_frame(tmp_path):
    # harmonize() of the extracted DataFrame (not the Extracted): the total rows are still checked
    # sheet by sheet through the column _table, not against the cells of every sheet.
    first = [["Nacionalidad", "Entradas"], ["Venezuela", 5], ["Colombia", 7], ["Total", 12]]
    second = [["Nacionalidad", "Entradas"], ["Venezuela", 6], ["Colombia", 8], ["Total", 14]]
    path = write_xlsx(tmp_path / "entradas.xlsx", {"2023": first, "2024": second})
    c = contract(
        reader={"format": "xlsx", "sheets": r"^20\d\d$"},
        ids={"nationality": "Nacionalidad"},
        values={"columns": [{"header": "Entradas"}]},
        rows={"total": [{"column": "nationality", "equals": "Total"}]},
        fields={"citizenship": {"column": "nationality"}},
        period={"calendar": "yearly", "year": {"column": "sheet"}},
    )
    bound = bind_to_file(c, path.name)
    ex = extract(path, bound)
    hz = harmonize(bound, ex.table, ex.sheet)
    assert not hz.errors, [p.message for p in hz.errors]
    assert sorted(hz.controls["total"]) == [12, 14] and (hz.controls["remainder"] == 0).all()


def test_sheets_with_columns_in_another_order_are_matched_by_header_text(tmp_path):
    path = write_xlsx(
        tmp_path / "e.xlsx",
        {
            "2023": [["Nacionalidad", "Entradas"], ["Cuba", 1]],
            "2024": [["Entradas", "Salidas", "Nacionalidad"], [2, 9, "Cuba"]],
        },
    )
    c = contract(
        reader={"format": "xlsx", "sheets": r"^20\d\d$"},
        ids={"nationality": "Nacionalidad"},
        values={"columns": [{"header": "Entradas"}]},
        fields={"citizenship": {"column": "nationality"}},
        period={"calendar": "yearly", "year": {"column": "sheet"}},
    )
    ex, hz = load(path, c)
    assert not hz.errors, hz.errors
    assert figures(hz, "year", "citizenship_iso3") == {(2023, "CUB"): 1, (2024, "CUB"): 2}
    assert ex.header == ["Nacionalidad", "Entradas", "Salidas", "sheet", "_table"]


# ---------------------------------------------------------------------------- periods outside the table


def one_table(title: str) -> list[list]:
    return [[title], [], ["Nacionalidad", "Entradas"], ["Venezuela", 11], ["Cuba", 4]]


def period_contract(period: dict, captures: dict | None = None, fmt: str = "xlsx") -> Contract:
    return contract(
        reader={"format": fmt, "header_row": 3, **({"captures": captures} if captures else {})},
        ids={"nationality": "Nacionalidad"},
        values={"columns": [{"header": "Entradas"}]},
        fields={"citizenship": {"column": "nationality"}},
        period=period,
    )


def test_period_from_a_title_cell(tmp_path):
    path = write_xlsx(
        tmp_path / "e.xlsx", {"H": one_table("Entradas de extranjeros, enero-diciembre de 2025")}
    )
    c = period_contract(
        {"calendar": "yearly", "year": {"column": "titulo", "pattern": r"(\d{4})$"}}, {"titulo": ".+"}
    )
    _, hz = load(path, c)
    assert not hz.errors, hz.errors
    f = hz.frame
    assert set(f["period_start"]) == {dt.date(2025, 1, 1)} and set(f["period_end"]) == {dt.date(2025, 12, 31)}
    assert f["value"].sum() == 15
    # The same year read from a fixed cell: "- 2024" in A1.
    path = write_xlsx(tmp_path / "f.xlsx", {"H": one_table("Entradas de extranjeros - 2024")})
    c = period_contract(
        {"calendar": "yearly", "year": {"column": "anio"}}, {"anio": {"cell": "A1", "pattern": r"- (\d{4})"}}
    )
    _, hz = load(path, c)
    assert set(hz.frame["year"]) == {2024} and hz.frame["value"].sum() == 15


def test_period_from_the_file_name_and_from_a_constant(tmp_path):
    path = write_xlsx(tmp_path / "entradas_2022_pan.xlsx", {"H": one_table("Entradas")})
    c = period_contract({"calendar": "yearly", "year": {"file_name": r"_(\d{4})_"}})
    _, hz = load(path, c)
    assert set(hz.frame["period_start"]) == {dt.date(2022, 1, 1)} and hz.frame["value"].sum() == 15
    with pytest.raises(ContractError, match="entradas.xlsx: period.year is read from the file name"):
        load(write_xlsx(tmp_path / "entradas.xlsx", {"H": one_table("Entradas")}), c)
    constant = period_contract({"calendar": "monthly", "year": "2021", "month": "Marzo"})
    _, hz = load(path, constant)
    assert set(hz.frame["period_start"]) == {dt.date(2021, 3, 1)}
    assert set(hz.frame["period_end"]) == {dt.date(2021, 3, 31)}


def test_year_to_date_table_is_stored_with_its_true_span(tmp_path):
    path = write_xlsx(tmp_path / "e.xlsx", {"H": one_table("Entradas acumuladas enero-agosto de 2025")})
    c = period_contract(
        {"calendar": "yearly", "year": {"column": "anio"}, "last_month": {"column": "hasta"}},
        {"anio": r"(\d{4})$", "hasta": r"-(\w+) de"},
    )
    _, hz = load(path, c)
    assert not hz.errors, hz.errors
    f = hz.frame
    assert set(f["period_type"]) == {"Y"}
    assert set(f["period_start"]) == {dt.date(2025, 1, 1)}
    assert set(f["period_end"]) == {dt.date(2025, 8, 31)}
    assert figures(hz, "citizenship_iso3") == {("VEN",): 11, ("CUB",): 4}


def test_partial_fiscal_year_is_not_stored_as_a_whole_year(tmp_path):
    path = write_xlsx(tmp_path / "e.xlsx", {"H": one_table("Encounters FY2026 (October-November)")})
    c = period_contract(
        {
            "calendar": "us_fiscal_yearly",
            "year": {"column": "fy"},
            "first_month": {"column": "meses", "pattern": r"^(\w+)-"},
            "last_month": {"column": "meses", "pattern": r"-(\w+)$"},
        },
        {"fy": r"FY(\d{4})", "meses": r"\((\w+-\w+)\)"},
    )
    _, hz = load(path, c)
    assert not hz.errors, hz.errors
    f = hz.frame
    assert set(f["period_start"]) == {dt.date(2025, 10, 1)}
    assert set(f["period_end"]) == {dt.date(2025, 11, 30)}
    assert f["value"].sum() == 15
    # A whole fiscal year, for comparison: October to September.
    whole = period_contract({"calendar": "us_fiscal_yearly", "year": {"column": "fy"}}, {"fy": r"FY(\d{4})"})
    _, hz = load(path, whole)
    assert set(hz.frame["period_end"]) == {dt.date(2026, 9, 30)}


def test_a_span_that_ends_before_it_starts_is_refused(tmp_path):
    path = write_xlsx(tmp_path / "e.xlsx", {"H": one_table("Entradas 2025")})
    c = period_contract({"calendar": "yearly", "year": "2025", "first_month": "9", "last_month": "3"})
    _, hz = load(path, c)
    assert "period_valid" in [p.check for p in hz.errors]
    assert hz.count() == 0


# ---------------------------------------------------------------------------- month labels


def test_months_written_with_a_day_and_months_read_through_a_map(tmp_path):
    rows = [["Nacionalidad", "01 October", "01 November", "01 December"], ["Venezuela", 1, 2, 3]]
    path = write_xlsx(tmp_path / "e.xlsx", {"H": rows})
    c = contract(
        reader={"format": "xlsx"},
        ids={"nationality": "Nacionalidad"},
        values={"melt": {"start_col": "B", "names": ["mes"]}},
        fields={"citizenship": {"column": "nationality"}},
        period={"calendar": "monthly", "year": "2024", "month": {"column": "mes"}},
    )
    _, hz = load(path, c)
    assert not hz.errors, hz.errors
    assert figures(hz, "month") == {(10,): 1, (11,): 2, (12,): 3}
    # The same header as date cells shown "01 October" (read as 2024-10-01), the year from them too.
    dates = [["Nacionalidad", *(dt.datetime(2023, m, 1) for m in (10, 11, 12))], ["Venezuela", 1, 2, 3]]
    path = write_xlsx(tmp_path / "d.xlsx", {"H": dates})
    dated = c.model_dump(by_alias=True)
    dated["period"]["year"] = {"column": "mes"}
    _, hz = load(path, Contract.model_validate(dated))
    assert not hz.errors, hz.errors
    assert figures(hz, "year", "month") == {(2023, 10): 1, (2023, 11): 2, (2023, 12): 3}
    rows = [["Nacionalidad", "M-A", "M-B"], ["Venezuela", 5, 6]]
    path = write_xlsx(tmp_path / "m.xlsx", {"H": rows})
    mapped = c.model_dump(by_alias=True)
    mapped["period"]["month"] = {"column": "mes", "pattern": r"M-(\w)", "map": {"A": "7", "B": "8"}}
    _, hz = load(path, Contract.model_validate(mapped))
    assert not hz.errors, hz.errors
    assert figures(hz, "month") == {(7,): 5, (8,): 6}
    # A label neither the readers nor the map read is refused, named.
    mapped["period"]["month"]["map"] = {"A": "7"}
    _, hz = load(path, Contract.model_validate(mapped))
    assert any(p.check == "period_valid" and p.label == "B" for p in hz.errors)


# ---------------------------------------------------------------------------- totals on another sheet


def totals_workbook(path: Path, march_total: int) -> Path:
    data = [["Mes", "Nacionalidad", "Entradas"], ["Enero", "Cuba", 3], ["Enero", "Haití", 4]]
    data += [["Febrero", "Cuba", 5], ["Febrero", "Haití", 6]]
    summary = [["Resumen"], ["Mes", "Total"], ["Enero", 7], ["Febrero", march_total]]
    return write_xlsx(path, {"Datos": data, "Resumen": summary})


TOTALS_CONTRACT = {
    **BASE,
    "source_id": "layout_totals",
    "landing": {"folder": "PAN", "patterns": ["*.xlsx"]},
    "reader": {"format": "xlsx", "sheet": "Datos"},
    "ids": {"mes": "Mes", "nationality": "Nacionalidad"},
    "values": {"columns": [{"header": "Entradas"}]},
    "fields": {**FIELDS, "citizenship": {"column": "nationality"}},
    "period": {"calendar": "monthly", "year": "2024", "month": {"column": "mes"}},
    "sheet_totals": [{"sheet": "Resumen", "header_row": 2, "value": "Total", "match": {"mes": "Mes"}}],
}


def test_totals_on_another_sheet_are_checked(tmp_path):
    c = Contract.model_validate(TOTALS_CONTRACT)
    _, hz = load(totals_workbook(tmp_path / "ok.xlsx", 11), c)
    assert not hz.errors, hz.errors
    assert hz.frame["value"].sum() == 18
    _, hz = load(totals_workbook(tmp_path / "bad.xlsx", 12), c)
    (problem,) = hz.errors
    assert problem.check == "total_matches" and problem.rows == [4]
    assert (
        "sheet 'Resumen'" in problem.message
        and "mes='Febrero'" in problem.message
        and "+1" in problem.message
    )


def test_a_grand_total_on_another_sheet_picked_by_a_predicate(tmp_path):
    data = [["Mes", "Nacionalidad", "Entradas"], ["Enero", "Cuba", 3], ["Febrero", "Haití", 6]]
    summary = [["Mes", "Total"], ["Enero", 3], ["Febrero", 6], ["Total", 9]]
    path = write_xlsx(tmp_path / "e.xlsx", {"Datos": data, "Resumen": summary})
    spec = {
        **TOTALS_CONTRACT,
        "sheet_totals": [
            {"sheet": "Resumen", "value": "Total", "where": [{"column": "Mes", "equals": "Total"}]}
        ],
    }
    _, hz = load(path, Contract.model_validate(spec))
    assert not hz.errors, hz.errors
    summary[3] = ["Total", 10]
    _, hz = load(
        write_xlsx(tmp_path / "f.xlsx", {"Datos": data, "Resumen": summary}), Contract.model_validate(spec)
    )
    (problem,) = hz.errors
    assert "the whole file" in problem.message and problem.rows == [4]


def test_a_wrong_file_is_refused_by_the_pipeline_and_a_right_one_loads(tmp_path, monkeypatch):
    """By contract alone: a YAML file in the contracts folder, then ``ingest_file``."""
    folder = tmp_path / "contracts"
    folder.mkdir()
    (folder / "layout_totals.yaml").write_text(
        yaml.safe_dump(TOTALS_CONTRACT, allow_unicode=True), encoding="utf-8"
    )
    monkeypatch.setattr(contracts_module, "CONTRACTS_DIR", folder)
    home = tmp_path / "home"
    monkeypatch.setenv("OMH_HOME", str(home))
    monkeypatch.delenv("OMH_WAREHOUSE_URL", raising=False)
    from transforms.ingest.pipeline import ingest_file

    landing = home / "landing" / "PAN"
    landing.mkdir(parents=True)
    bad = ingest_file(totals_workbook(landing / "entradas_bad.xlsx", 12), "layout_totals")
    assert bad.status == "refused" and "sheet 'Resumen'" in bad.reason, bad.reason
    good = ingest_file(totals_workbook(landing / "entradas_ok.xlsx", 11), "layout_totals")
    assert good.status == "loaded", good.reason
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        got = con.execute(
            "SELECT month, sum(value) FROM fact_flow WHERE source_id = 'layout_totals' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    assert got == [(1, 7.0), (2, 11.0)]


def test_a_parent_label_maps_to_a_field_and_a_ytd_month_comes_from_the_file_name(tmp_path):
    rows = [
        ["Nacionalidad", "Personas"],
        ["Entradas", 9],
        ["Cuba", 4],
        ["Haití", 5],
        ["Salidas", 3],
        ["Cuba", 3],
    ]
    path = write_xlsx(tmp_path / "flujos_agosto_2025.xlsx", {"H": rows})
    c = contract(
        reader={
            "format": "xlsx",
            "parents": {
                "column": "Nacionalidad",
                "by": "pattern",
                "pattern": "^(Entradas|Salidas)$",
                "attribute": "flujo",
            },
        },
        ids={"nationality": "Nacionalidad"},
        values={"columns": [{"header": "Personas"}]},
        fields={
            "citizenship": {"column": "nationality"},
            "flow_type": {"column": "flujo", "map": {"Entradas": "ENT_REG", "Salidas": "EXT_REG"}},
        },
        period={
            "calendar": "yearly",
            "year": {"file_name": r"_(\d{4})\."},
            "last_month": {"file_name": r"_([a-z]+)_\d{4}"},
        },
    )
    _, hz = load(path, c)
    assert not hz.errors, hz.errors
    assert figures(hz, "flow_type", "citizenship_iso3") == {
        ("ENT_REG", "CUB"): 4,
        ("ENT_REG", "HTI"): 5,
        ("EXT_REG", "CUB"): 3,
    }
    assert set(hz.frame["period_end"]) == {dt.date(2025, 8, 31)}


def test_two_contracts_loading_the_same_flow_of_a_sheet_are_warned_about(tmp_path, monkeypatch):
    copy = {**TOTALS_CONTRACT, "source_id": "layout_totals_copy"}
    other_sheet = {**TOTALS_CONTRACT, "source_id": "layout_other_sheet"}
    other_sheet["reader"] = {**TOTALS_CONTRACT["reader"], "sheet": "Resumen"}
    contracts = {d["source_id"]: Contract.model_validate(d) for d in (TOTALS_CONTRACT, copy, other_sheet)}
    (warning,) = contracts_module.shared_flows(contracts["layout_totals"], "entradas.xlsx", contracts)
    assert "'layout_totals_copy'" in warning and "ENT_REG" in warning
    assert contracts_module.shared_flows(contracts["layout_totals"], "entradas.csv", contracts) == []
    folder = tmp_path / "contracts"
    folder.mkdir()
    for data in (TOTALS_CONTRACT, copy):
        (folder / f"{data['source_id']}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setattr(contracts_module, "CONTRACTS_DIR", folder)
    monkeypatch.setenv("OMH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OMH_WAREHOUSE_URL", raising=False)
    from transforms.ingest.pipeline import ingest_file

    landing = tmp_path / "home" / "landing" / "PAN"
    landing.mkdir(parents=True)
    result = ingest_file(totals_workbook(landing / "entradas.xlsx", 11), "layout_totals")
    assert result.status == "loaded", result.reason
    assert any("'layout_totals_copy' also reads this file's sheet" in w for w in result.warnings)
