"""Generic readers (transforms/readers): encodings, delimiters, headers, row numbers, workbooks."""

from __future__ import annotations

import codecs
import zipfile
from pathlib import Path

import openpyxl
import pytest
import xlwt

from transforms.contracts.model import ReaderSpec
from transforms.readers import ReadError, read_grid
from transforms.readers.excel_reader import cell_text


def csv_spec(**kw) -> ReaderSpec:
    return ReaderSpec(format="csv", **kw)


def write(path: Path, text: str, encoding: str = "utf-8", bom: bytes = b"") -> Path:
    path.write_bytes(bom + text.encode(encoding))
    return path


def rows(grid) -> list[list[str]]:
    return grid.data.values.tolist()


# ---------------------------------------------------------------------------- CSV: encodings

TABLE = "Punto,Flujo,Valor\nDarién,Tránsito,1165\nPaso Canoas,Entrada,12\n"


@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8], ids=["no-bom", "bom"])
def test_utf8_with_and_without_bom(tmp_path, bom):
    grid = read_grid(write(tmp_path / "a.csv", TABLE, bom=bom), csv_spec())
    # The BOM must not stick to the first header cell.
    assert grid.header == ["Punto", "Flujo", "Valor"]
    assert rows(grid) == [["Darién", "Tránsito", "1165"], ["Paso Canoas", "Entrada", "12"]]
    assert grid.row_numbers == [2, 3]


@pytest.mark.parametrize("encoding", ["latin-1", "cp850"])
def test_single_byte_encodings(tmp_path, encoding):
    path = write(tmp_path / "a.csv", TABLE, encoding=encoding)
    grid = read_grid(path, csv_spec(encoding=encoding))
    assert rows(grid)[0] == ["Darién", "Tránsito", "1165"]


def test_cp850_bytes_read_back_as_accented_text(tmp_path):
    raw = b"Tipo,Valor\r\nTr\xa0nsito,5\r\n"  # 0xA0 is "a acute" in CP850 (a non-breaking space in Latin-1)
    assert raw.decode("cp850") == "Tipo,Valor\r\nTránsito,5\r\n"
    (tmp_path / "a.csv").write_bytes(raw)
    grid = read_grid(tmp_path / "a.csv", csv_spec(encoding="cp850"))
    assert rows(grid) == [["Tránsito", "5"]]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom_overrides_the_contract_encoding(tmp_path, codec):
    bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
    path = write(tmp_path / "a.csv", TABLE, encoding=codec, bom=bom)
    grid = read_grid(path, csv_spec(encoding="utf-8"))
    assert grid.header == ["Punto", "Flujo", "Valor"]
    assert rows(grid)[0] == ["Darién", "Tránsito", "1165"]


def test_semicolon_delimiter_and_quoted_fields(tmp_path):
    text = 'País;Valor\n"Haití; Rep.";"1.234,5"\nPerú;7\n'
    grid = read_grid(write(tmp_path / "a.csv", text), csv_spec(delimiter=";"))
    assert grid.header == ["País", "Valor"]
    assert rows(grid) == [["Haití; Rep.", "1.234,5"], ["Perú", "7"]]


# ---------------------------------------------------------------------------- CSV: headers and rows


PREAMBLE = (
    'Extracted:,"UNHCR"\n'
    '"Date extracted:","19/07/2024"\n'
    "\n"
    '"Note","Year of the data, see below"\n'
    "Year,Origin,Value\n"
    "2015,AFG,54\n"
    "\n"
    "\n"
    "2016,SYR,7\n"
)


def test_header_find_skips_a_multi_line_preamble_and_numbers_physical_lines(tmp_path):
    path = write(tmp_path / "a.csv", PREAMBLE)
    grid = read_grid(path, csv_spec(header_find="^Year$", stop_at_blank_row=False))
    assert grid.header == ["Year", "Origin", "Value"]
    assert rows(grid) == [["2015", "AFG", "54"], ["2016", "SYR", "7"]]
    # Lines of the file: header on line 5, data on lines 6 and 9 (blank lines 7-8).
    assert grid.row_numbers == [6, 9]
    lines = path.read_text().splitlines()
    for number, row in zip(grid.row_numbers, rows(grid), strict=True):
        assert lines[number - 1].split(",") == row


def test_header_find_without_a_match_is_a_read_error(tmp_path):
    path = write(tmp_path / "nohead.csv", PREAMBLE)
    with pytest.raises(ReadError, match=r"nohead\.csv.*no header row matching"):
        read_grid(path, csv_spec(header_find="^Año$"))


def test_fixed_header_row(tmp_path):
    text = "Cuadro 3. Entradas\nFuente: Migración\nPaís,Valor\nPerú,3\nChile,4\n"
    grid = read_grid(write(tmp_path / "a.csv", text), csv_spec(header_row=3))
    assert grid.header == ["País", "Valor"]
    assert rows(grid) == [["Perú", "3"], ["Chile", "4"]]
    assert grid.row_numbers == [4, 5]


def test_footnotes_after_a_blank_row_are_ignored(tmp_path):
    text = "País,Valor\nPerú,3\nChile,4\n\nNota: cifras preliminares,\n(1) Incluye 5 casos,99\n"
    grid = read_grid(write(tmp_path / "a.csv", text), csv_spec())
    assert rows(grid) == [["Perú", "3"], ["Chile", "4"]]
    assert grid.row_numbers == [2, 3]


def test_blank_lines_between_header_and_data_are_not_a_stop(tmp_path):
    text = "País,Valor\n\n,\nPerú,3\n\nNota,1\n"
    grid = read_grid(write(tmp_path / "a.csv", text), csv_spec())
    assert rows(grid) == [["Perú", "3"]]
    assert grid.row_numbers == [4]


def test_crlf_line_endings_keep_physical_numbers(tmp_path):
    text = "Titulo\r\n\r\nPaís,Valor\r\nPerú,3\r\nChile,4\r\n"
    grid = read_grid(write(tmp_path / "a.csv", text), csv_spec(header_row=3))
    assert rows(grid) == [["Perú", "3"], ["Chile", "4"]]
    assert grid.row_numbers == [4, 5]


def test_quoted_fields_spanning_lines_keep_physical_numbers(tmp_path):
    # A title cell and a note cell that span two lines each: rows are numbered by their first line.
    text = '"Cuadro 1.\nTránsito irregular",\nAño,Valor\n2023,5\n"nota\nlarga",7\n2024,6\n'
    path = write(tmp_path / "a.csv", text)
    grid = read_grid(path, csv_spec(header_find="^Año$"))
    assert rows(grid) == [["2023", "5"], ["nota\nlarga", "7"], ["2024", "6"]]
    assert grid.row_numbers == [4, 5, 7]
    lines = path.read_text().splitlines()
    assert lines[3].startswith("2023") and lines[6].startswith("2024")


def test_one_column_header_names_its_physical_line(tmp_path):
    path = write(tmp_path / "a.csv", '"Cuadro\n1"\nPaís;Valor\nPerú;3\n')
    with pytest.raises(ReadError, match=r"a\.csv: line 3: the header has one column"):
        read_grid(path, csv_spec(header_find="^País"))


def test_short_rows_are_refused_and_empty_rows_skipped(tmp_path):
    """A row cut short would be padded into a withdrawn or shifted figure: refused, naming the
    physical line and the field counts (the Arrow fast path says the same: test_fast_path.py)."""
    with pytest.raises(
        ReadError, match=r"^a\.csv: line 3: 2 fields where the header has 3; the row is cut short"
    ):
        read_grid(write(tmp_path / "a.csv", "A,B,C\n4,5,6\n1,2\n"), csv_spec())
    grid = read_grid(write(tmp_path / "b.csv", "A,B,C\n,,\n1,2,3\n4,5,6,\n"), csv_spec())
    assert rows(grid) == [["1", "2", "3", ""], ["4", "5", "6", ""]]


# ---------------------------------------------------------------------------- CSV: refusals


def test_wrong_encoding_names_file_and_line(tmp_path):
    path = tmp_path / "entradas.csv"
    path.write_bytes("País,Valor\nChile,4\nPerú,3\n".encode("latin-1"))
    with pytest.raises(ReadError) as err:
        read_grid(path, csv_spec(encoding="utf-8"))
    message = str(err.value)
    # "País" on line 1 holds the first non-UTF-8 byte.
    assert "entradas.csv" in message and "line 1" in message and "encoding" in message

    path.write_bytes(b"Pais,Valor\nChile,4\nPer\xfa,3\n")
    with pytest.raises(ReadError, match=r"entradas\.csv: line 3"):
        read_grid(path, csv_spec(encoding="utf-8"))


def test_unknown_encoding_is_a_read_error(tmp_path):
    path = write(tmp_path / "a.csv", TABLE)
    with pytest.raises(ReadError, match="unknown encoding"):
        read_grid(path, csv_spec(encoding="klingon-8"))


def test_nul_bytes_in_a_utf8_file_are_a_read_error(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"A,B\n1,2\n3,\x004\n")
    with pytest.raises(ReadError, match=r"binary\.csv: line 3: NUL byte"):
        read_grid(path, csv_spec())


def test_one_column_header_means_a_wrong_delimiter(tmp_path):
    path = write(tmp_path / "semi.csv", "País;Valor\nPerú;3\n")
    with pytest.raises(ReadError, match=r"semi\.csv: line 1: the header has one column.*delimiter"):
        read_grid(path, csv_spec(delimiter=","))


def test_missing_file_is_a_read_error(tmp_path):
    with pytest.raises(ReadError, match="no such file"):
        read_grid(tmp_path / "absent.csv", csv_spec())


def test_header_row_past_the_end_is_a_read_error(tmp_path):
    with pytest.raises(ReadError, match="no header row"):
        read_grid(write(tmp_path / "a.csv", "A,B\n1,2\n"), csv_spec(header_row=9))


def test_empty_file_is_a_read_error(tmp_path):
    with pytest.raises(ReadError):
        read_grid(write(tmp_path / "a.csv", ""), csv_spec())


# ---------------------------------------------------------------------------- workbooks

MONTHS = ["Ene", "Feb", "Mar"]
# Two title rows, a blank row, the year row (merged over its months), the month row, data, a footnote.
SHEET = [
    ["Cuadro 1. Tránsito irregular por Darién", None, None, None, None, None, None],
    ["Fuente: Servicio Nacional de Migración", None, None, None, None, None, None],
    [None] * 7,
    ["País", 2023, None, None, 2024, None, None],
    [None, *MONTHS, *MONTHS],
    ["Venezuela", 1165, 12.5, "1,165", 0, None, 3],
    ["Haití", 7, 8, 9, 10, 11, 12],
    [None] * 7,
    ["(1) Cifras preliminares", None, None, None, None, None, None],
]
EXPECTED_ROWS = [
    ["Venezuela", "1165", "12.5", "1,165", "0", "", "3"],
    ["Haití", "7", "8", "9", "10", "11", "12"],
]
EXPECTED_HEADER = ["País"] + [f"{y} / {m}" for y in (2023, 2024) for m in MONTHS]


def write_xlsx(path: Path, sheets: dict[str, list[list]], merge: bool = True) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, table in sheets.items():
        ws = wb.create_sheet(name)
        for r in table:
            ws.append(r)
        if merge and table is SHEET:
            ws.merge_cells("A4:A5")
            ws.merge_cells("B4:D4")
            ws.merge_cells("E4:G4")
    wb.save(path)
    return path


def write_xls(path: Path, sheets: dict[str, list[list]]) -> Path:
    wb = xlwt.Workbook()
    for name, table in sheets.items():
        ws = wb.add_sheet(name)
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                if value is not None:
                    ws.write(r, c, value)
        if table is SHEET:
            ws.merge(3, 3, 1, 3)  # the merge is a format; the value stays in the first cell
            ws.merge(3, 3, 4, 6)
    wb.save(str(path))
    return path


def xl_spec(fmt: str = "xlsx", **kw) -> ReaderSpec:
    return ReaderSpec(format=fmt, **kw)


OTHER = [["A", "B"], ["x", 1]]


@pytest.fixture(params=["xlsx", "xls"])
def workbook(request, tmp_path):
    fmt = request.param
    sheets = {"Notas": OTHER, "Darién": SHEET}
    path = tmp_path / f"darien.{fmt}"
    (write_xlsx if fmt == "xlsx" else write_xls)(path, sheets)
    return fmt, path


def test_workbook_two_row_header_with_merged_years_filled_right(workbook):
    fmt, path = workbook
    grid = read_grid(path, xl_spec(fmt, sheet="Darién", header_rows=[4, 5]))
    assert grid.sheet == "Darién"
    assert grid.header_levels[0] == ["País", "2023", "2023", "2023", "2024", "2024", "2024"]
    # Cells are filled to the right, not down: "País" (merged A4:A5) is named by the first level.
    assert grid.header_levels[1] == ["", *MONTHS, *MONTHS]
    assert grid.header == EXPECTED_HEADER
    assert rows(grid) == EXPECTED_ROWS
    # Rows are spreadsheet rows; the footnote after the blank row is left out.
    assert grid.row_numbers == [6, 7]


def test_workbook_sheet_by_index(workbook):
    fmt, path = workbook
    grid = read_grid(path, xl_spec(fmt, sheet=1, header_rows=[4, 5]))
    assert grid.sheet == "Darién" and rows(grid) == EXPECTED_ROWS
    first = read_grid(path, xl_spec(fmt, sheet=0))
    assert first.sheet == "Notas" and first.header == ["A", "B"] and rows(first) == [["x", "1"]]


def test_workbook_header_find_skips_title_rows(workbook):
    fmt, path = workbook
    grid = read_grid(path, xl_spec(fmt, sheet="Darién", header_find="^País$"))
    assert grid.header[0] == "País"
    # One header level: the months row is the first data row.
    assert grid.row_numbers == [5, 6, 7]


def test_workbook_missing_sheet(workbook):
    fmt, path = workbook
    with pytest.raises(ReadError, match=r"no sheet named 'Hoja9'.*Darién"):
        read_grid(path, xl_spec(fmt, sheet="Hoja9"))
    with pytest.raises(ReadError, match="has 2 sheet"):
        read_grid(path, xl_spec(fmt, sheet=5))


def test_xls_reads_back_like_xlsx(tmp_path):
    sheets = {"Darién": SHEET}
    a = read_grid(write_xlsx(tmp_path / "a.xlsx", sheets), xl_spec("xlsx", header_rows=[4, 5]))
    b = read_grid(write_xls(tmp_path / "a.xls", sheets), xl_spec("xls", header_rows=[4, 5]))
    assert a.header_levels == b.header_levels
    assert rows(a) == rows(b)
    assert a.row_numbers == b.row_numbers


def test_xls_error_and_boolean_cells_are_not_numbers(tmp_path):
    # xlrd gives an error cell's code as its value: #N/A is 42, #DIV/0! is 7; TRUE is 1.
    wb = xlwt.Workbook()
    ws = wb.add_sheet("S")
    for c, head in enumerate(["País", "Valor"]):
        ws.write(0, c, head)
    for r, name in enumerate(["Perú", "Chile", "Cuba"], start=1):
        ws.write(r, 0, name)
    ws.row(1).set_cell_error(1, 0x2A)
    ws.row(2).set_cell_error(1, "#DIV/0!")
    ws.row(3).set_cell_boolean(1, True)
    wb.save(str(tmp_path / "e.xls"))
    assert rows(read_grid(tmp_path / "e.xls", xl_spec("xls"))) == [
        ["Perú", "#N/A"],
        ["Chile", "#DIV/0!"],
        ["Cuba", "True"],
    ]
    xlsx = openpyxl.Workbook()
    xlsx.active.append(["País", "Valor"])
    xlsx.active.append(["Cuba", True])
    xlsx.save(tmp_path / "e.xlsx")
    assert rows(read_grid(tmp_path / "e.xlsx", xl_spec())) == [["Cuba", "True"]]


def test_xlsx_dates_are_iso_text(tmp_path):
    import datetime as dt

    path = write_xlsx(tmp_path / "d.xlsx", {"S": [["Fecha", "Valor"], [dt.datetime(2024, 3, 1), 5]]})
    assert rows(read_grid(path, xl_spec())) == [["2024-03-01", "5"]]


def test_csv_renamed_xlsx_is_not_a_workbook(tmp_path):
    path = write(tmp_path / "fake.xlsx", "A,B\n1,2\n")
    with pytest.raises(ReadError, match=r"fake\.xlsx: .*not a workbook"):
        read_grid(path, xl_spec("xlsx"))
    with pytest.raises(ReadError, match=r"fake\.xlsx: .*not a workbook"):
        read_grid(path, xl_spec("xls"))


def test_format_mismatch_between_xls_and_xlsx(tmp_path):
    xls = write_xls(tmp_path / "a.xls", {"S": OTHER})
    with pytest.raises(ReadError, match="legacy XLS"):
        read_grid(xls, xl_spec("xlsx"))
    xlsx = write_xlsx(tmp_path / "a.xlsx", {"S": OTHER})
    with pytest.raises(ReadError, match="an XLSX"):
        read_grid(xlsx, xl_spec("xls"))


def test_broken_zip_is_a_read_error(tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"\x00garbage" * 50)
    with pytest.raises(ReadError, match=r"broken\.xlsx"):
        read_grid(path, xl_spec())


def test_truncated_xlsx_is_a_read_error(tmp_path):
    good = write_xlsx(tmp_path / "good.xlsx", {"S": OTHER}).read_bytes()
    path = tmp_path / "cut.xlsx"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ReadError, match=r"cut\.xlsx"):
        read_grid(path, xl_spec())


def test_zip_that_is_not_a_workbook_is_a_read_error(tmp_path):
    path = tmp_path / "other.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hello.txt", "not a workbook")
    with pytest.raises(ReadError, match=r"other\.xlsx: broken XLSX workbook"):
        read_grid(path, xl_spec())


def test_broken_xls_is_a_read_error(tmp_path):
    path = tmp_path / "broken.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0" + b"\x00" * 100)
    with pytest.raises(ReadError, match=r"broken\.xls: broken XLS"):
        read_grid(path, xl_spec("xls"))


@pytest.mark.parametrize(
    "value,text",
    [
        (1165.0, "1165"),
        (12.5, "12.5"),
        (1165, "1165"),
        (None, ""),
        ("1,165", "1,165"),
        (-0.0, "0"),
        (True, "True"),
    ],
)
def test_cell_text(value, text):
    assert cell_text(value) == text
