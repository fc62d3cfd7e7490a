"""Extract (file + contract -> long table) and harmonize (long table -> observations), on small contracts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from transforms.contracts.model import Contract
from transforms.stages.extract import ExtractError, extract
from transforms.stages.harmonize import harmonize

BASE = {
    "source_id": "test_source",
    "title": "Test source",
    "agency": "Test agency",
    "landing": {"folder": "TST", "patterns": ["*.csv"]},
}


def contract(**kw) -> Contract:
    data = {**BASE, "reporter": "PAN", **kw}
    data["fields"] = {"flow_type": "IRR_TRN", "unit": "persons", **kw.get("fields", {})}
    return Contract.model_validate(data)


def csv_reader(**kw) -> dict:
    return {"format": "csv", **kw}


def run(tmp_path: Path, text: str, c: Contract, name: str = "file.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    ex = extract(path, c)
    return ex, harmonize(c, ex.table, ex.sheet)


def checks(hz) -> list[str]:
    return [p.check for p in hz.errors]


YEAR_2024 = {"calendar": "monthly", "year": "2024", "month": {"column": "month"}}


# ---------------------------------------------------------------------------- wide layouts

WIDE = "País,Ene,Feb,Mar,Total\nVenezuela,1,2,3,6\nHaití,4,5,6,15\nTotal,5,7,9,21\n"


def wide_contract(**kw) -> Contract:
    spec = {
        "reader": csv_reader(),
        "ids": {"country": {"col": "A"}},
        "values": {
            "melt": {"start_col": "B", "names": ["month"], "skip": [{"column": "month", "equals": "Total"}]}
        },
        "rows": {"total": [{"column": "country", "equals": "Total"}]},
        "fields": {"citizenship": {"column": "country"}},
        "period": YEAR_2024,
    }
    spec.update(kw)
    return contract(**spec)


def test_wide_months_as_columns(tmp_path):
    ex, hz = run(tmp_path, WIDE, wide_contract())
    assert not hz.errors
    f = hz.frame
    # The total column is skipped, the total row is a control: 6 leaves.
    assert len(f) == 6
    assert f["value"].sum() == 21
    assert set(f["citizenship_iso3"]) == {"VEN", "HTI"}
    assert "Total" not in set(f["source_column"])
    march_haiti = f[(f["citizenship_iso3"] == "HTI") & (f["month"] == 3)].iloc[0]
    assert march_haiti["value"] == 6
    assert march_haiti["period_start"] == dt.date(2024, 3, 1)
    assert march_haiti["period_end"] == dt.date(2024, 3, 31)
    assert march_haiti["source_row"] == 3 and march_haiti["source_column"] == "Mar"
    assert march_haiti["reporter_iso3"] == "PAN" and march_haiti["reporter_role"] == "transit"
    assert set(f["sex"]) == {"_T"} and set(f["obs_status"]) == {"A"}
    # The total row: one control per month column, each matching the leaves.
    controls = hz.controls
    assert list(controls["scope"]) == ["column"] * 3
    assert list(controls["total"]) == [5, 7, 9]
    assert list(controls["remainder"]) == [0, 0, 0]
    assert (ex.table["cell_role"] == "total_row").sum() == 3


def test_wide_total_row_that_does_not_match_is_visible_in_controls(tmp_path):
    text = WIDE.replace("Total,5,7,9,21", "Total,5,70,9,84")
    _, hz = run(tmp_path, text, wide_contract())
    feb = hz.controls[hz.controls["source_column"] == "Feb"].iloc[0]
    assert feb["total"] == 70 and feb["parts"] == 7 and feb["remainder"] == 63


def test_wide_total_column_kept_as_control(tmp_path):
    melt = {"start_col": "B", "names": ["month"], "total": [{"column": "month", "equals": "Total"}]}
    _, hz = run(tmp_path, WIDE, wide_contract(values={"melt": melt}))
    assert not hz.errors
    assert hz.frame["value"].sum() == 21
    rows = hz.controls[hz.controls["scope"] == "row"]
    assert list(rows["total"]) == [6, 15] and list(rows["remainder"]) == [0, 0]


def test_wide_header_levels_must_match_the_contract(tmp_path):
    melt = {"start_col": "B", "names": ["year", "month"]}
    with pytest.raises(ExtractError, match="names 2 header levels, the file has 1"):
        run(tmp_path, WIDE, wide_contract(values={"melt": melt}))


def test_hierarchy_rows_are_skipped(tmp_path):
    text = "País,Ene,Feb\nAmérica del Sur,5,7\nVenezuela,1,2\nPerú,4,5\nRegión Caribe,10,0\nHaití,10,0\n"
    rows = {"skip": [{"column": "country", "matches": "^(América|Región)"}]}
    ex, hz = run(tmp_path, text, wide_contract(rows=rows))
    assert not hz.errors
    assert ex.rows_read == 5 and ex.rows_skipped == 2
    assert hz.frame["value"].sum() == 22
    assert sorted(set(hz.frame["source_row"])) == [3, 4, 6]


def test_fill_down(tmp_path):
    text = "Año,Mes,Valor\n2023,Noviembre,1\n,Diciembre,2\n2024,Enero,3\n,Febrero,4\n"
    c = contract(
        reader=csv_reader(fill_down=["year"]),
        ids={"year": "Año", "month": "Mes"},
        values={"columns": [{"header": "Valor"}]},
        period={"calendar": "monthly", "year": {"column": "year"}, "month": {"column": "month"}},
    )
    _, hz = run(tmp_path, text, c)
    assert not hz.errors
    starts = list(hz.frame.sort_values("source_row")["period_start"])
    assert starts == [dt.date(2023, 11, 1), dt.date(2023, 12, 1), dt.date(2024, 1, 1), dt.date(2024, 2, 1)]


def test_fill_up(tmp_path):
    # The group label sits on the last row of its group, as in IRCC workbooks.
    text = "Provincia,Sexo,Ene\n,Female,1\nQuebec,Male,2\n,Female,3\nOntario,Male,4\n"
    sex = {"column": "gender", "map": {"Female": "F", "Male": "M"}}
    c = contract(
        reader=csv_reader(fill_up=["province"]),
        ids={"province": "Provincia", "gender": "Sexo"},
        values={"melt": {"start_col": "C", "names": ["month"]}},
        fields={"sex": sex},
        period=YEAR_2024,
        detail=["province"],
    )
    _, hz = run(tmp_path, text, c)
    assert not hz.errors
    f = hz.frame.sort_values("source_row")
    assert list(f["detail"]) == ["province=Quebec", "province=Quebec", "province=Ontario", "province=Ontario"]
    assert list(f["sex"]) == ["F", "M", "F", "M"]


# ---------------------------------------------------------------------------- explicit measures and totals


def sex_contract(**kw) -> Contract:
    spec = {
        "reader": csv_reader(),
        "ids": {"month": "Mes", "nationality": "Nacionalidad"},
        "values": {
            "columns": [
                {"header": "Femenino", "sex": "F"},
                {"header": "Masculino", "sex": "M"},
                {"header": "Total", "role": "total"},
            ]
        },
        "fields": {"citizenship": {"column": "nationality"}},
        "period": YEAR_2024,
    }
    spec.update(kw)
    return contract(**spec)


SEX = "Mes,Nacionalidad,Femenino,Masculino,Total\nEnero,Venezuela,10,20,35\nEnero,Perú,1,2,3\nFebrero,Haití,,4,9\n"


def test_measure_columns_carry_their_fields(tmp_path):
    text = SEX.replace("35", "30").replace(",9", ",4")
    _, hz = run(tmp_path, text, sex_contract())
    f = hz.frame
    assert not hz.errors
    assert set(zip(f["citizenship_iso3"], f["sex"], f["value"], strict=True)) == {
        ("VEN", "F", 10), ("VEN", "M", 20), ("PER", "F", 1), ("PER", "M", 2), ("HTI", "M", 4),
    }  # fmt: skip
    # Without 'remainder', the total column is a control only.
    assert f["value"].sum() == 37
    assert list(hz.controls["scope"]) == ["row"] * 3
    assert list(hz.controls["remainder"]) == [0, 0, 0]


def test_total_above_its_parts_without_remainder_is_an_error(tmp_path):
    _, hz = run(tmp_path, SEX, sex_contract())
    errors = [p for p in hz.errors if p.check == "total_matches"]
    assert [p.rows for p in errors] == [[2], [4]]
    assert hz.frame["value"].sum() == 37  # nothing invented


def test_remainder_of_a_total_goes_to_unknown_sex(tmp_path):
    _, hz = run(tmp_path, SEX, sex_contract(remainder={"sex": "_U"}))
    assert not hz.errors
    f = hz.frame
    assert f["value"].sum() == 35 + 3 + 9  # the totals of the file, exactly
    rest = f[f["sex"] == "_U"].sort_values("source_row")
    assert list(rest["value"]) == [5, 5]
    assert list(rest["citizenship_iso3"]) == ["VEN", "HTI"]
    assert set(rest["obs_status"]) == {"E"} and set(rest["detail"]) == {"remainder"}
    assert list(rest["source_column"]) == ["Total", "Total"]


def test_parts_exceeding_the_total_is_an_error(tmp_path):
    text = SEX.replace("Perú,1,2,3", "Perú,1,2,2")
    _, hz = run(tmp_path, text, sex_contract(remainder={"sex": "_U"}))
    errors = [p for p in hz.errors if p.check == "total_matches"]
    assert len(errors) == 1
    assert errors[0].rows == [3] and errors[0].column == "Total"
    assert "sum to 3" in errors[0].message and "total 2" in errors[0].message


def test_rounding_tolerance_accepts_small_excess(tmp_path):
    text = SEX.replace("Perú,1,2,3", "Perú,1,2,2")
    _, hz = run(tmp_path, text, sex_contract(remainder={"sex": "_U"}, rounding=5))
    assert "total_matches" not in checks(hz)


# ---------------------------------------------------------------------------- values


def value_contract(**kw) -> Contract:
    spec = {
        "reader": csv_reader(),
        "ids": {"month": "Mes", "nationality": "Nacionalidad"},
        "values": {"columns": [{"header": "Valor"}]},
        "fields": {"citizenship": {"column": "nationality"}},
        "period": YEAR_2024,
    }
    spec.update(kw)
    return contract(**spec)


def test_markers(tmp_path):
    text = "Mes,Nacionalidad,Valor\nEnero,Venezuela,-\nEnero,Perú,--\nEnero,Haití,\nEnero,Chile,..\nEnero,Cuba,7\n"
    _, hz = run(tmp_path, text, value_contract())
    assert not hz.errors
    f = hz.frame.set_index("citizenship_iso3")
    # Missing cells ("" and "..") are not observations.
    assert sorted(f.index) == ["CUB", "PER", "VEN"]
    assert f.loc["VEN", "value"] == 0 and f.loc["VEN", "conf_status"] == "F"
    assert np.isnan(f.loc["PER", "value"]) and f.loc["PER", "conf_status"] == "S"
    assert f.loc["CUB", "value"] == 7 and f.loc["CUB", "conf_status"] == "F"


def test_contract_markers_override_the_defaults(tmp_path):
    text = "Mes,Nacionalidad,Valor\nEnero,Venezuela,-\nEnero,Perú,x\nEnero,Cuba,7\n"
    _, hz = run(tmp_path, text, value_contract(markers={"-": "missing", "x": "suppressed"}))
    assert not hz.errors
    assert sorted(hz.frame["citizenship_iso3"]) == ["CUB", "PER"]


def test_thousands_dot_and_decimal_comma(tmp_path):
    text = 'Mes;Nacionalidad;Valor\nEnero;Venezuela;1.234,5\nEnero;Perú;"12.000"\nEnero;Cuba;7\n'
    c = value_contract(reader=csv_reader(delimiter=";", thousands=".", decimal=","))
    _, hz = run(tmp_path, text, c)
    assert not hz.errors
    f = hz.frame.set_index("citizenship_iso3")["value"]
    assert f["VEN"] == 1234.5 and f["PER"] == 12000 and f["CUB"] == 7


def test_thousands_comma(tmp_path):
    text = 'Mes,Nacionalidad,Valor\nEnero,Venezuela,"1,165"\nEnero,Perú,"1,234,567"\n'
    _, hz = run(tmp_path, text, value_contract(reader=csv_reader(thousands=",")))
    assert not hz.errors
    assert sorted(hz.frame["value"]) == [1165, 1234567]


def test_non_numeric_value_names_the_row(tmp_path):
    text = "Mes,Nacionalidad,Valor\nEnero,Venezuela,5\nEnero,Perú,n/d\nEnero,Cuba,7\nFebrero,Cuba,n/d\n"
    _, hz = run(tmp_path, text, value_contract())
    [p] = hz.errors
    assert p.check == "value_is_number" and p.label == "n/d"
    assert p.count == 2 and p.rows == [3, 5]
    assert "'n/d'" in p.message
    assert p.one_line("file.csv").startswith("file.csv: row 3")


@pytest.mark.parametrize("text", ["inf", "nan", "-inf", "1e400"])
def test_non_finite_numbers_are_refused(tmp_path, text):
    _, hz = run(tmp_path, f"Mes,Nacionalidad,Valor\nEnero,Cuba,{text}\n", value_contract())
    assert checks(hz) == ["value_is_number"]


# ---------------------------------------------------------------------------- labels

LABELS = (
    "Mes,Nacionalidad,Valor\n"
    "Enero,Venezuela,1\n"
    "Enero,Tierra Media,2\n"
    "Febrero,Venezuela,3\n"
    "Febrero,Tierra Media,4\n"
    "Marzo,Tierra Media,5\n"
)


def test_unknown_citizenship_label(tmp_path):
    _, hz = run(tmp_path, LABELS, value_contract())
    [p] = hz.errors
    assert p.check == "label_known"
    assert "'Tierra Media'" in p.message and "citizenship" in p.message
    assert p.label == "Tierra Media" and p.count == 3 and p.rows == [3, 5, 6]
    assert p.column == "nationality"


def test_label_added_to_the_map_resolves(tmp_path):
    fields = {"citizenship": {"column": "nationality", "map": {"Tierra Media": "_O"}}}
    _, hz = run(tmp_path, LABELS, value_contract(fields=fields))
    assert not hz.errors
    f = hz.frame
    assert f.loc[f["citizenship_iso3"] == "_O", "value"].sum() == 11
    assert f["value"].sum() == 15


def test_map_to_a_code_outside_the_code_list(tmp_path):
    fields = {"citizenship": {"column": "nationality", "map": {"Tierra Media": "XXX"}}}
    with pytest.raises(ValueError, match="XXX"):
        # The country resolver refuses a contract alias to an unknown code.
        run(tmp_path, LABELS, value_contract(fields=fields))


def test_unknown_sex_label_is_a_problem(tmp_path):
    text = "Mes,Sexo,Valor\nEnero,Mujer,1\nEnero,Hombre,2\nEnero,Alien,3\n"
    sex = {"column": "gender", "map": {"Mujer": "F", "Hombre": "M"}}
    c = value_contract(ids={"month": "Mes", "gender": "Sexo"}, fields={"sex": sex})
    _, hz = run(tmp_path, text, c)
    [p] = hz.errors
    assert p.check == "label_known" and p.label == "Alien" and p.rows == [4]


# ---------------------------------------------------------------------------- periods


def period_run(tmp_path, rows: list[tuple[str, str]], period: dict):
    text = "A,B,Valor\n" + "".join(f"{a},{b},{i + 1}\n" for i, (a, b) in enumerate(rows))
    c = contract(
        reader=csv_reader(),
        ids={"a": "A", "b": "B"},
        values={"columns": [{"header": "Valor"}]},
        period=period,
    )
    _, hz = run(tmp_path, text, c)
    f = hz.frame.sort_values("source_row")
    return hz, list(zip(f["period_start"], f["period_end"], f["period_type"], strict=True))


def d(y, m, day):
    return dt.date(y, m, day)


MONTHLY = {"calendar": "monthly", "year": {"column": "a"}, "month": {"column": "b"}}


def test_monthly_spanish_and_portuguese_month_names(tmp_path):
    rows = [("2024", "Enero"), ("2024", "Fevereiro"), ("2024", "Março"), ("2024", "Setiembre"),
            ("2024", "Diciembre"), ("2023", "12"), ("Año 2022", "dez.")]  # fmt: skip
    hz, got = period_run(tmp_path, rows, MONTHLY)
    assert not hz.errors
    assert got == [
        (d(2024, 1, 1), d(2024, 1, 31), "M"),
        (d(2024, 2, 1), d(2024, 2, 29), "M"),
        (d(2024, 3, 1), d(2024, 3, 31), "M"),
        (d(2024, 9, 1), d(2024, 9, 30), "M"),
        (d(2024, 12, 1), d(2024, 12, 31), "M"),
        (d(2023, 12, 1), d(2023, 12, 31), "M"),
        (d(2022, 12, 1), d(2022, 12, 31), "M"),
    ]


def test_unreadable_month_and_year_are_problems(tmp_path):
    hz, _ = period_run(tmp_path, [("2024", "Enero"), ("2024", "Mes 13"), ("s.f.", "Enero")], MONTHLY)
    problems = {p.label: p for p in hz.errors if p.check == "period_valid"}
    assert set(problems) == {"Mes 13", "s.f."}
    assert problems["Mes 13"].check == "period_valid" and problems["Mes 13"].rows == [3]
    assert problems["s.f."].rows == [4]


def test_quarterly(tmp_path):
    period = {"calendar": "quarterly", "year": {"column": "a"}, "quarter": {"column": "b"}}
    rows = [
        ("2024", "T2"),
        ("2024", "Q3"),
        ("2023", "II"),
        ("2024", "IV"),
        ("2023", "1"),
        ("2022", "Trimestre III"),
    ]
    hz, got = period_run(tmp_path, rows, period)
    assert not hz.errors
    assert got == [
        (d(2024, 4, 1), d(2024, 6, 30), "Q"),
        (d(2024, 7, 1), d(2024, 9, 30), "Q"),
        (d(2023, 4, 1), d(2023, 6, 30), "Q"),
        (d(2024, 10, 1), d(2024, 12, 31), "Q"),
        (d(2023, 1, 1), d(2023, 3, 31), "Q"),
        (d(2022, 7, 1), d(2022, 9, 30), "Q"),
    ]


def test_quarter_and_year_in_one_label(tmp_path):
    # The year's digits are not the quarter: "2023-Q3" is the third quarter, not the second.
    period = {"calendar": "quarterly", "year": {"column": "a"}, "quarter": {"column": "a"}}
    rows = [
        ("2023-Q3", "x"),
        ("2023T4", "x"),
        ("Q1 2024", "x"),
        ("2º trimestre 2021", "x"),
        ("2022 Q02", "x"),
    ]
    hz, got = period_run(tmp_path, rows, period)
    assert not hz.errors
    assert [start for start, _, _ in got] == [
        d(2023, 7, 1),
        d(2023, 10, 1),
        d(2024, 1, 1),
        d(2021, 4, 1),
        d(2022, 4, 1),
    ]


def test_unreadable_quarter_is_a_problem(tmp_path):
    period = {"calendar": "quarterly", "year": {"column": "a"}, "quarter": {"column": "b"}}
    hz, _ = period_run(tmp_path, [("2024", "Q5"), ("2024", "semestre")], period)
    assert sorted(p.label for p in hz.errors if p.check == "period_valid") == ["Q5", "semestre"]


def test_yearly(tmp_path):
    period = {"calendar": "yearly", "year": {"column": "a"}}
    hz, got = period_run(tmp_path, [("2019", "x"), ("2024", "y")], period)
    assert not hz.errors
    assert got == [(d(2019, 1, 1), d(2019, 12, 31), "Y"), (d(2024, 1, 1), d(2024, 12, 31), "Y")]


def test_us_fiscal_monthly(tmp_path):
    period = {"calendar": "us_fiscal_monthly", "year": {"column": "a"}, "month": {"column": "b"}}
    rows = [
        ("FY2023", "OCT"),
        ("FY2023", "DEC"),
        ("FY2023", "JAN"),
        ("FY2023", "SEP"),
        ("2024 (FYTD)", "NOV"),
    ]
    hz, got = period_run(tmp_path, rows, period)
    assert not hz.errors
    assert got == [
        (d(2022, 10, 1), d(2022, 10, 31), "M"),
        (d(2022, 12, 1), d(2022, 12, 31), "M"),
        (d(2023, 1, 1), d(2023, 1, 31), "M"),
        (d(2023, 9, 1), d(2023, 9, 30), "M"),
        (d(2023, 11, 1), d(2023, 11, 30), "M"),
    ]


def test_us_fiscal_yearly(tmp_path):
    hz, got = period_run(
        tmp_path, [("FY2023", "x")], {"calendar": "us_fiscal_yearly", "year": {"column": "a"}}
    )
    assert not hz.errors
    assert got == [(d(2022, 10, 1), d(2023, 9, 30), "Y")]


def test_date_calendar(tmp_path):
    period = {"calendar": "date", "date": {"column": "a"}}
    hz, got = period_run(tmp_path, [("2024-03", "x"), ("2024-02-15", "y")], period)
    assert not hz.errors
    assert got == [(d(2024, 3, 1), d(2024, 3, 31), "M"), (d(2024, 2, 1), d(2024, 2, 29), "M")]
    hz, _ = period_run(tmp_path, [("2024-03", "x"), ("not a date", "y")], period)
    assert [(p.check, p.label, p.rows) for p in hz.errors] == [("period_valid", "not a date", [3])]


# ---------------------------------------------------------------------------- keys, scope, drift


def test_duplicate_observation_keys(tmp_path):
    text = "Mes,Nacionalidad,Valor\nEnero,Venezuela,1\nEnero,Perú,2\nEnero,venezuela,3\n"
    _, hz = run(tmp_path, text, value_contract())
    [p] = hz.errors
    assert p.check == "key_unique" and p.count == 2 and p.rows == [2, 4]


def test_detail_keeps_a_breakdown_apart(tmp_path):
    text = "Mes,Punto,Nacionalidad,Valor\nEnero,Norte,Venezuela,1\nEnero,Sur,Venezuela,3\n"
    c = value_contract(
        ids={"month": "Mes", "point": "Punto", "nationality": "Nacionalidad"}, detail=["point"]
    )
    _, hz = run(tmp_path, text, c)
    assert not hz.errors
    assert sorted(hz.frame["detail"]) == ["point=Norte", "point=Sur"]


def test_reporter_scope_members(tmp_path):
    text = "Mes,Reporta,Valor\nEnero,PAN,1\nEnero,FRA,2\nFebrero,Francia,4\nEnero,COL,8\n"
    spec = {
        "reader": csv_reader(),
        "ids": {"month": "Mes", "rep": "Reporta"},
        "values": {"columns": [{"header": "Valor"}]},
        "fields": {"reporter": {"column": "rep"}},
        "period": YEAR_2024,
    }
    c = Contract.model_validate(
        {**BASE, **spec, "fields": {"flow_type": "ASY_APP", "unit": "persons", "reporter": {"column": "rep"}}}
    )
    _, hz = run(tmp_path, text, c)
    assert not hz.errors
    assert hz.out_of_scope == 2
    assert sorted(hz.frame["reporter_iso3"]) == ["COL", "PAN"]
    assert hz.frame["value"].sum() == 9
    c_any = Contract.model_validate(
        {**c.model_dump(by_alias=True, exclude_none=True), "reporter_scope": "any"}
    )
    _, hz = run(tmp_path, text, c_any)
    assert hz.out_of_scope == 0 and len(hz.frame) == 4


def test_missing_column_is_an_extract_error(tmp_path):
    text = "Mes,Pais,Valor\nEnero,Perú,1\n"
    with pytest.raises(ExtractError) as err:
        run(tmp_path, text, value_contract(), name="entradas.csv")
    message = str(err.value)
    assert "entradas.csv" in message and "'Nacionalidad'" in message
    assert "['Mes', 'Pais', 'Valor']" in message


def test_missing_value_column_is_an_extract_error(tmp_path):
    text = "Mes,Nacionalidad,Cantidad\nEnero,Perú,1\n"
    with pytest.raises(ExtractError, match=r"'Valor' \(value column\) is missing.*'Cantidad'"):
        run(tmp_path, text, value_contract())


def test_column_by_position_past_the_end(tmp_path):
    with pytest.raises(ExtractError, match="column F"):
        run(tmp_path, WIDE, wide_contract(ids={"country": {"col": "F"}}))


def test_alias_is_reported_as_drift(tmp_path):
    text = "MES,Código ISO 3166,Valor, Extra \nenero,VEN,1,\n"
    c = value_contract(
        ids={
            "month": "Mes",
            "iso": {"header": "Codigo Iso 3166", "aliases": ["Codigo M49", "Código ISO 3166"]},
        },
        fields={"citizenship": {"column": "iso"}},
    )
    ex, hz = run(tmp_path, text, c)
    assert not hz.errors
    assert hz.frame["citizenship_iso3"].tolist() == ["VEN"]
    assert "column 'Codigo Iso 3166' is named 'Código ISO 3166' in this file" in ex.drift
    # Header case and spacing are not drift; an unknown column is.
    assert not any("'Mes'" in x for x in ex.drift)
    assert any("Extra" in x and "not in the contract" in x for x in ex.drift)


def test_empty_file_is_a_problem(tmp_path):
    _, hz = run(tmp_path, "Mes,Nacionalidad,Valor\n", value_contract())
    assert checks(hz) == ["not_empty"]


def test_latin1_contract_end_to_end(tmp_path):
    text = "Mes;Nacionalidad;Valor\nMarço;Haití;1.165\nMarço;Perú;2\n"
    c = value_contract(reader=csv_reader(encoding="latin-1", delimiter=";", thousands="."))
    _, hz = run(tmp_path, text, c, encoding="latin-1")
    assert not hz.errors
    assert hz.frame.set_index("citizenship_iso3")["value"].to_dict() == {"HTI": 1165, "PER": 2}


def test_label_groups_over_rows_equal_those_over_cells(tmp_path):
    """The grouping of labels, raw values, periods and contexts that harmonize takes on a file's
    rows (record-level files) equals the cell-level GROUPING SETS query, for every real file and
    sample whose labels are labels of its rows (sample files cover total rows and columns)."""
    from transforms.config import Settings
    from transforms.contracts.loading import load_contracts
    from transforms.engine import fetch_df, ident
    from transforms.ingest.landing import source_files
    from transforms.stages.harmonize import grouping as hz_module
    from transforms.tools.samples import write_samples

    write_samples(tmp_path / "landing")
    contracts = load_contracts()
    cfg = Settings(home=tmp_path, warehouse_url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    files = [(p, c) for c in contracts.values() for p in source_files(c, cfg)]
    raw = Path(__file__).resolve().parent.parent / "data" / "realdata" / "raw"
    real = {
        "usa_cbp_swb_encounters": "usa_cbp_sbo-encounters-fy22-fy25-aug.csv",
        "col_entradas_extranjeros": "colombia_entradas_de_extranjeros_a_colombia_20250803.csv",
        "unhcr_solutions": "unhcr_refugee_data_finder_solutions_extracted_2024-07-19.csv",
        "pan_darien_yearly": "panama_darien_2019-2022_by_nationality_derived.csv",
    }
    files += [(raw / name, contracts[sid]) for sid, name in real.items()]
    compared = 0
    for path, contract in files:
        ex = extract(path, contract)
        try:
            labels = hz_module.label_columns(contract)
            if ex.rows_view is None or not set(labels) <= set(ex.row_attrs):
                continue
            periods = list(
                dict.fromkeys(
                    getattr(contract.period, p).column
                    for p in ("year", "month", "quarter", "date")
                    if getattr(contract.period, p) is not None and getattr(contract.period, p).column
                )
            )
            group_cols = [*labels, "value_raw", "measure_index", "cell_role"]
            sets = [f"({ident(c)}, measure_index, cell_role)" for c in labels] + ["(value_raw)"]
            if periods:
                sets.append("(" + ", ".join(ident(c) for c in periods) + ", cell_role)")
            sets.append("(measure_index, cell_role)")
            cols = ", ".join(ident(c) for c in group_cols)
            cells = fetch_df(
                ex.con,
                f"SELECT {cols}, count(*) AS _n, min(source_row) AS source_row, min(source_row, 5) AS _rows, "
                f"GROUPING({cols}) AS _gid FROM {ex.view} GROUP BY GROUPING SETS ({', '.join(sets)})",
            )
            rows = hz_module.grouped_over_rows(ex.con, ex, labels, periods, group_cols)

            assert _groups(rows, group_cols) == _groups(cells, group_cols), path.name
            compared += 1
        finally:
            ex.cleanup()
    assert compared >= 10, compared


def _groups(frame, group_cols: list[str]) -> list[tuple]:
    """A grouping frame as sorted tuples (labels as text, counts, first rows as a set)."""
    import pandas as pd

    return sorted(
        tuple("\x00null" if pd.isna(v) else str(v) for v in r[: len(group_cols)])
        + (int(r[-4]), int(r[-3]), tuple(sorted(int(x) for x in r[-2])), int(r[-1]))
        for r in frame[[*group_cols, "_n", "source_row", "_rows", "_gid"]].itertuples(index=False)
    )
