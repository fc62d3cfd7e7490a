"""Property tests: extract + harmonize either keeps a file's grand total exactly or refuses the file.

Random small tables of counts are written the ways agencies write them (delimiters, encodings,
thousands separators, preambles, footnotes, "-" for zero, workbooks with merged year cells);
what must never happen is a silently different total or an unexpected exception.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms.contracts.model import Contract
from transforms.readers import ReadError
from transforms.stages.extract import ExtractError, extract
from transforms.stages.harmonize import harmonize

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The extra properties (wrong reader options, measure columns) run fewer examples to stay fast.
FEWER = settings(SETTINGS, max_examples=20)

BASE = {
    "source_id": "prop_source",
    "title": "Property test source",
    "agency": "Test agency",
    "reporter": "PAN",
    "landing": {"folder": "TST", "patterns": ["*"]},
}
FIELDS = {"flow_type": "IRR_TRN", "unit": "persons", "citizenship": {"column": "country"}}
COUNTRIES = ["Perú", "Haití", "México", "Panamá", "Colombia", "Brasil", "Chile", "Ecuador", "Bolivia", "Cuba"]
MONTHS = {
    "es": ["Enero", "Febrero", "Marzo", "Abril", "Mayo", "Junio"],
    "pt": ["Janeiro", "Fevereiro", "Março", "Abril", "Maio", "Junho"],
    "en": ["JAN", "FEB", "MAR", "APR", "MAY", "JUN"],
}
PREAMBLE = [
    "Cuadro 1. Tránsito irregular",
    "Fuente: Servicio Nacional de Migración",
    "Cifras preliminares; sujetas a revisión",
    "Nota: un título\nen dos líneas",
]
# Thousands separator -> decimal mark of the contract.
SEPARATORS = {None: ".", ",": ".", ".": ",", " ": ".", "\u00a0": "."}


def fmt(n: int, sep: str | None) -> str:
    text = f"{n:,}"
    return text if sep == "," else text.replace(",", sep or "")


def outcome(path: Path, c: Contract) -> float | None:
    """The total of the harmonized observations, or None when the file is refused."""
    try:
        ex = extract(path, c)
    except (ReadError, ExtractError):
        return None
    hz = harmonize(c, ex.table, ex.sheet)
    if hz.errors:
        return None
    assert hz.out_of_scope == 0
    return float(hz.frame["value"].sum())


counts = st.integers(min_value=0, max_value=2_000_000)


@st.composite
def tables(draw):
    n_rows = draw(st.integers(min_value=1, max_value=6))
    n_cols = draw(st.integers(min_value=1, max_value=6))
    countries = draw(st.lists(st.sampled_from(COUNTRIES), min_size=n_rows, max_size=n_rows, unique=True))
    values = [draw(st.lists(counts, min_size=n_cols, max_size=n_cols)) for _ in range(n_rows)]
    return countries, values


# ---------------------------------------------------------------------------- CSV


@SETTINGS
@given(
    table=tables(),
    delimiter=st.sampled_from([",", ";"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "cp850"]),
    sep=st.sampled_from(list(SEPARATORS)),
    lang=st.sampled_from(list(MONTHS)),
    preamble=st.lists(st.sampled_from(PREAMBLE), max_size=3),
    blank_after_preamble=st.booleans(),
    total_row=st.booleans(),
    total_col=st.booleans(),
    dash_zero=st.booleans(),
    footnote=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_csv_keeps_the_grand_total_or_is_refused(
    table,
    delimiter,
    encoding,
    sep,
    lang,
    preamble,
    blank_after_preamble,
    total_row,
    total_col,
    dash_zero,
    footnote,
    newline,
):
    countries, values = table
    months = MONTHS[lang][: len(values[0])]

    def cell(n: int) -> str:
        return "-" if dash_zero and n == 0 else fmt(n, sep)

    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
    for line in preamble:
        w.writerow([line])
    if preamble and blank_after_preamble:
        w.writerow([])
    w.writerow(["País", *months, *(["Total"] if total_col else [])])
    for country, row in zip(countries, values, strict=True):
        w.writerow([country, *map(cell, row), *([cell(sum(row))] if total_col else [])])
    if total_row:
        sums = [sum(col) for col in zip(*values, strict=True)]
        w.writerow(["Total", *map(cell, sums), *([cell(sum(sums))] if total_col else [])])
    if footnote:
        w.writerow([])
        w.writerow(["Nota: 1.234 personas sin nacionalidad", "99"])
    grand = sum(map(sum, values))

    c = Contract.model_validate(
        {
            **BASE,
            "reader": {
                "format": "csv",
                "encoding": "utf-8" if encoding == "utf-8-sig" else encoding,
                "delimiter": delimiter,
                "header_find": "^País$",
                "thousands": sep,
                "decimal": SEPARATORS[sep],
            },
            "ids": {"country": {"col": "A"}},
            "values": {
                "melt": {
                    "start_col": "B",
                    "names": ["month"],
                    "total": [{"column": "month", "equals": "Total"}],
                }
            },
            "rows": {"total": [{"column": "country", "equals": "Total"}]},
            "fields": FIELDS,
            "period": {"calendar": "monthly", "year": "2024", "month": {"column": "month"}},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.csv"
        path.write_bytes(buf.getvalue().encode(encoding))
        ex = extract(path, c)
        hz = harmonize(c, ex.table, ex.sheet)
    # Nothing in these files is wrong: each must be read, and read exactly.
    assert not hz.errors, [p.message for p in hz.errors]
    assert float(hz.frame["value"].sum()) == grand
    # Every observation points at the physical line of its row.
    lines = buf.getvalue().splitlines()
    assert {lines[r - 1].split(delimiter)[0] for r in hz.frame["source_row"]} <= set(countries)


@FEWER
@given(
    table=tables(),
    encoding=st.sampled_from(["utf-8", "latin-1", "cp850"]),
    written=st.sampled_from(["utf-8", "latin-1", "cp850", "utf-16"]),
    delimiter=st.sampled_from([",", ";"]),
    contract_delimiter=st.sampled_from([",", ";"]),
)
def test_csv_with_a_wrong_encoding_or_delimiter_is_exact_or_refused(
    table, encoding, written, delimiter, contract_delimiter
):
    countries, values = table
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(["País", *MONTHS["es"][: len(values[0])]])
    for country, row in zip(countries, values, strict=True):
        w.writerow([country, *row])
    c = Contract.model_validate(
        {
            **BASE,
            "reader": {"format": "csv", "encoding": encoding, "delimiter": contract_delimiter},
            "ids": {"country": {"col": "A"}},
            "values": {"melt": {"start_col": "B", "names": ["month"]}},
            "fields": FIELDS,
            "period": {"calendar": "monthly", "year": "2024", "month": {"column": "month"}},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.csv"
        path.write_bytes(buf.getvalue().encode(written))
        got = outcome(path, c)
    assert got is None or got == sum(map(sum, values))
    if written == encoding and delimiter == contract_delimiter:
        assert got == sum(map(sum, values))
    if delimiter != contract_delimiter:
        assert got is None


@FEWER
@given(
    parts=st.lists(st.tuples(counts, counts, st.one_of(st.none(), counts), counts), min_size=1, max_size=6),
    remainder=st.booleans(),
)
def test_measure_columns_with_a_total_keep_the_total_or_are_refused(parts, remainder):
    """Female, male, unstated (often empty) and a total of at least their sum."""
    lines = ["Mes,Nacionalidad,Femenino,Masculino,Indefinido,Total"]
    for i, (f, m, u, extra) in enumerate(parts):
        total = f + m + (u or 0) + extra
        lines.append(f"Enero,{COUNTRIES[i]},{f},{m},{'' if u is None else u},{total}")
    totals = sum(f + m + (u or 0) + extra for f, m, u, extra in parts)
    cells = sum(f + m + (u or 0) for f, m, u, _ in parts)
    c = Contract.model_validate(
        {
            **BASE,
            "reader": {"format": "csv"},
            "ids": {"month": "Mes", "country": "Nacionalidad"},
            "values": {
                "columns": [
                    {"header": "Femenino", "sex": "F"},
                    {"header": "Masculino", "sex": "M"},
                    {"header": "Indefinido", "sex": "_U"},
                    {"header": "Total", "role": "total"},
                ]
            },
            **({"remainder": {"sex": "_U", "obs_status": "E"}} if remainder else {}),
            "fields": FIELDS,
            "period": {"calendar": "monthly", "year": "2024", "month": {"column": "month"}},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sex.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        got = outcome(path, c)
    if remainder:
        assert got == totals
    elif totals == cells:
        assert got == cells
    else:
        assert got is None  # a total the cells do not reach, and no remainder declared


# ---------------------------------------------------------------------------- XLSX


@SETTINGS
@given(
    n_years=st.integers(min_value=1, max_value=3),
    n_months=st.integers(min_value=1, max_value=4),
    data=st.data(),
    lang=st.sampled_from(list(MONTHS)),
    title_rows=st.integers(min_value=0, max_value=3),
    as_text=st.booleans(),
    merge=st.booleans(),
    total_col=st.booleans(),
    total_row=st.booleans(),
    footnote=st.booleans(),
)
def test_wide_xlsx_keeps_the_grand_total_or_is_refused(
    n_years, n_months, data, lang, title_rows, as_text, merge, total_col, total_row, footnote
):
    n_rows = data.draw(st.integers(min_value=1, max_value=5), label="rows")
    countries = data.draw(st.lists(st.sampled_from(COUNTRIES), min_size=n_rows, max_size=n_rows, unique=True))
    years = data.draw(st.lists(st.integers(2015, 2025), min_size=n_years, max_size=n_years, unique=True))
    width = n_years * n_months
    values = [data.draw(st.lists(counts, min_size=width, max_size=width)) for _ in range(n_rows)]
    months = MONTHS[lang][:n_months]

    def cell(n: int):
        return f"{n:,}" if as_text else n

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Datos"
    for i in range(title_rows):
        ws.append([PREAMBLE[i]])
    year_row = ["País"]
    for y in years:
        year_row += [y] + [None] * (n_months - 1)
    ws.append(year_row + (["Total"] if total_col else []))
    ws.append([None] + months * n_years)
    head = title_rows + 1
    if merge:
        ws.merge_cells(start_row=head, start_column=1, end_row=head + 1, end_column=1)
        for k in range(n_years):
            if n_months > 1:
                ws.merge_cells(
                    start_row=head,
                    start_column=2 + k * n_months,
                    end_row=head,
                    end_column=1 + (k + 1) * n_months,
                )
        if total_col:
            ws.merge_cells(start_row=head, start_column=2 + width, end_row=head + 1, end_column=2 + width)
    for country, row in zip(countries, values, strict=True):
        ws.append([country, *map(cell, row), *([cell(sum(row))] if total_col else [])])
    if total_row:
        sums = [sum(col) for col in zip(*values, strict=True)]
        ws.append(["Total", *map(cell, sums), *([cell(sum(sums))] if total_col else [])])
    if footnote:
        ws.append([])
        ws.append(["(1) Cifras preliminares", 12345])

    c = Contract.model_validate(
        {
            **BASE,
            "landing": {"folder": "TST", "patterns": ["*.xlsx"]},
            "reader": {"format": "xlsx", "sheet": "Datos", "header_rows": [head, head + 1], "thousands": ","},
            "ids": {"country": {"col": "A"}},
            "values": {
                "melt": {
                    "start_col": "B",
                    "names": ["year", "month"],
                    "total": [{"column": "year", "equals": "Total"}],
                }
            },
            "rows": {"total": [{"column": "country", "equals": "Total"}]},
            "fields": FIELDS,
            "period": {"calendar": "monthly", "year": {"column": "year"}, "month": {"column": "month"}},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wide.xlsx"
        wb.save(path)
        ex = extract(path, c)
        hz = harmonize(c, ex.table, ex.sheet)
    assert not hz.errors, [p.message for p in hz.errors]
    assert float(hz.frame["value"].sum()) == sum(map(sum, values))
    assert len(hz.frame) == n_rows * width
    assert hz.frame["source_row"].between(head + 2, head + 1 + n_rows).all()
    assert {(p.year, p.month) for p in hz.frame["period_start"]} == {
        (y, m) for y in years for m in range(1, n_months + 1)
    }
