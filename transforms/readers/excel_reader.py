"""Spreadsheets: XLSX (openpyxl, streaming) and legacy XLS (xlrd), any sheet, any header rows."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

from transforms.readers.grid import Grid, ReadError, build_grid, find_header

PREAMBLE_SCAN = 200
# Uncompressed size above which an XLSX is refused before parsing (a zip bomb stays a zip). The
# sizes the zip declares are enforced by zipfile (it stops there and fails the CRC). openpyxl
# parses a whole sheet that has no <dimension> before the first row: 100 MB takes seconds, and
# holds more than the MAX_SHEET_CELLS the reader takes anyway.
MAX_XLSX_UNCOMPRESSED = 100 * 1024 * 1024
# openpyxl reads the whole shared-string table at open, even in read-only mode.
MAX_XLSX_SHARED_STRINGS = 64 * 1024 * 1024
# Cells read from one sheet (each is a Python string): a bomb of tiny cells stops here.
MAX_SHEET_CELLS = 2_000_000
# A cell this long is not a statistic nor a label (the CSV reader's field limit).
MAX_CELL_CHARS = 100_000


def _long_cell(row: list[str]) -> int | None:
    """The 0-based column of the first cell longer than MAX_CELL_CHARS, else None."""
    return next((i for i, c in enumerate(row) if len(c) > MAX_CELL_CHARS), None)


def cell_text(value) -> str:
    """A cell as the text an agency meant: 1165.0 -> '1165', dates -> ISO, None -> ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()[:10] if isinstance(value, dt.datetime) else value.isoformat()
    return str(value)


def _xlsx_rows(path: Path, sheet, styles: list | None = None) -> tuple[str, list[list[str]]]:
    import openpyxl

    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except Exception as exc:  # BadZipFile, and NotImplementedError for an unknown zip version
        raise ReadError(f"{path.name}: not an XLSX workbook (not a readable zip container)") from exc
    size = sum(info.file_size for info in infos)
    if size > MAX_XLSX_UNCOMPRESSED:
        raise ReadError(f"{path.name}: workbook expands to {size / 2**20:.0f} MB; refused as a zip bomb")
    strings = sum(info.file_size for info in infos if info.filename.lower().endswith("sharedstrings.xml"))
    if strings > MAX_XLSX_SHARED_STRINGS:
        raise ReadError(
            f"{path.name}: the workbook's shared strings expand to {strings / 2**20:.0f} MB; refused as a zip bomb"
        )
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken workbooks
        raise ReadError(f"{path.name}: broken XLSX workbook: {exc.__class__.__name__}: {exc}") from exc
    try:
        ws = _pick_sheet(wb.sheetnames, sheet, path.name, lambda n: wb[n])
        rows, cells = [], 0
        for row in ws.iter_rows(values_only=styles is None):
            if styles is not None:  # the layout step's parent rows read indentation and bold type
                styles.append([_style_of(c) for c in row])
                row = [getattr(c, "value", None) for c in row]
            cells += len(row)
            if cells > MAX_SHEET_CELLS:
                raise ReadError(
                    f"{path.name}: sheet {ws.title!r} has more than {MAX_SHEET_CELLS:,} cells "
                    f"(row {len(rows) + 1}); send a table this large as CSV"
                )
            rows.append([cell_text(v) for v in row])
            if (col := _long_cell(rows[-1])) is not None:
                raise ReadError(
                    f"{path.name}: sheet {ws.title!r}, row {len(rows)}, column {col + 1}: a cell of "
                    f"{len(rows[-1][col]):,} characters (at most {MAX_CELL_CHARS:,})"
                )
        return ws.title, rows
    except ReadError:
        raise
    except Exception as exc:  # broken sheet XML, bad CRC of a member whose sizes lie
        raise ReadError(f"{path.name}: broken XLSX workbook: {exc.__class__.__name__}: {exc}") from exc
    finally:
        wb.close()


def _style_of(cell) -> tuple[int, bool]:
    """(alignment indent, bold) of an XLSX cell; (0, False) for an empty or unstyled one."""
    try:
        return int(cell.alignment.indent or 0), bool(cell.font.b)
    except AttributeError:  # an EmptyCell has no style
        return 0, False


def _xls_style(book, ws, r: int, c: int) -> tuple[int, bool]:
    """(indent level, bold) of an XLS cell, from its format record."""
    try:
        xf = book.xf_list[ws.cell_xf_index(r, c)]
        return int(xf.alignment.indent_level or 0), bool(book.font_list[xf.font_index].bold)
    except (AttributeError, IndexError):
        return 0, False


def sheet_names(path: Path) -> list[str]:
    """The sheet names of a workbook (XLSX or XLS), in order."""
    if path.read_bytes()[:4].startswith(b"PK"):
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True)
        except Exception as exc:
            raise ReadError(f"{path.name}: broken XLSX workbook: {exc.__class__.__name__}: {exc}") from exc
        try:
            return list(wb.sheetnames)
        finally:
            wb.close()
    import xlrd

    try:
        book = xlrd.open_workbook(str(path), on_demand=True)
    except Exception as exc:
        raise ReadError(f"{path.name}: broken XLS workbook: {exc}") from exc
    try:
        return list(book.sheet_names())
    finally:
        book.release_resources()


def sheet_rows(path: Path, sheet) -> tuple[str, list[list[str]]]:
    """One sheet of a workbook as text cells (for controls read from another sheet)."""
    is_zip = path.read_bytes()[:4].startswith(b"PK")
    return (_xlsx_rows if is_zip else _xls_rows)(path, sheet)


def _xls_rows(path: Path, sheet, styles: list | None = None) -> tuple[str, list[list[str]]]:
    import xlrd

    try:
        book = xlrd.open_workbook(str(path), on_demand=True, formatting_info=styles is not None)
    except Exception as exc:  # xlrd raises XLRDError and struct errors for broken files
        raise ReadError(f"{path.name}: broken XLS workbook: {exc}") from exc
    try:
        ws = _pick_sheet(book.sheet_names(), sheet, path.name, book.sheet_by_name)
        if ws.nrows * ws.ncols > MAX_SHEET_CELLS:
            raise ReadError(
                f"{path.name}: sheet {ws.name!r} spans {ws.nrows} rows by {ws.ncols} columns, more than "
                f"{MAX_SHEET_CELLS:,} cells; send a table this large as CSV"
            )
        rows = []
        for r in range(ws.nrows):
            out = []
            for c in range(ws.ncols):
                cell = ws.cell(r, c)
                if cell.ctype == xlrd.XL_CELL_DATE:
                    out.append(cell_text(xlrd.xldate_as_datetime(cell.value, book.datemode)))
                elif cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                    out.append("")
                elif cell.ctype == xlrd.XL_CELL_ERROR:  # the value is an error code: #N/A is 42
                    out.append(xlrd.error_text_from_code.get(cell.value, "#ERROR"))
                elif cell.ctype == xlrd.XL_CELL_BOOLEAN:  # stored as 0/1, read as openpyxl does
                    out.append(cell_text(bool(cell.value)))
                else:
                    out.append(cell_text(cell.value))
            rows.append(out)
            if styles is not None:  # the layout step's parent rows read indentation and bold type
                styles.append([_xls_style(book, ws, r, c) for c in range(ws.ncols)])
            if (col := _long_cell(out)) is not None:
                raise ReadError(
                    f"{path.name}: sheet {ws.name!r}, row {r + 1}, column {col + 1}: a cell of "
                    f"{len(out[col]):,} characters (at most {MAX_CELL_CHARS:,})"
                )
        return ws.name, rows
    except ReadError:
        raise
    except Exception as exc:  # a sheet that xlrd cannot decode (a bad date, a broken record)
        raise ReadError(f"{path.name}: broken XLS workbook: {exc.__class__.__name__}: {exc}") from exc
    finally:
        book.release_resources()


def _pick_sheet(names: list[str], sheet, file_name: str, get):
    if isinstance(sheet, int):
        if sheet >= len(names):
            raise ReadError(
                f"{file_name}: the workbook has {len(names)} sheet(s); contract asks for #{sheet}"
            )
        return get(names[sheet])
    if sheet not in names:
        raise ReadError(f"{file_name}: no sheet named {sheet!r}; sheets are {names}")
    return get(sheet)


def read_excel_grid(path: Path, spec) -> Grid:
    """Read one sheet of an XLSX or XLS file into a Grid of text cells."""
    head = path.read_bytes()[:8]
    is_zip = head.startswith(b"PK\x03\x04")
    is_ole = head.startswith(b"\xd0\xcf\x11\xe0")
    if spec.format == "xlsx" and not is_zip:
        kind = "a legacy XLS" if is_ole else "not a workbook (text or other data)"
        raise ReadError(f"{path.name}: the contract says XLSX but the file is {kind}")
    if spec.format == "xls" and not is_ole:
        kind = "an XLSX" if is_zip else "not a workbook (text or other data)"
        raise ReadError(f"{path.name}: the contract says XLS but the file is {kind}")
    if spec.has_layout():
        return _layout_sheets(path, spec, is_zip)
    title, rows = (_xlsx_rows if is_zip else _xls_rows)(path, spec.sheet)
    if spec.header_find:
        header_idx = [find_header(rows[:PREAMBLE_SCAN], spec.header_find, path.name)]
    else:
        header_idx = [r - 1 for r in spec.header_lines()]
    return build_grid(rows, header_idx, 1, spec.stop_at_blank_row, title, path.name)


def _layout_sheets(path: Path, spec, is_zip: bool) -> Grid:
    """The contract's sheet (or every sheet ``sheets`` matches) through the layout step."""
    import re

    from transforms.readers.layout import SHEET_ROW_STRIDE, layout_grid, stack_grids

    if spec.sheets is not None:
        names = [n for n in sheet_names(path) if re.search(spec.sheets, n)]
        if not names:
            raise ReadError(
                f"{path.name}: no sheet name matches /{spec.sheets}/; sheets are {sheet_names(path)}"
            )
    else:
        names = [spec.sheet]
    want_styles = spec.parents is not None and spec.parents.by in ("indent", "bold")
    grids = []
    for number, sheet in enumerate(names):
        styles: list | None = [] if want_styles else None
        title, rows = (_xlsx_rows if is_zip else _xls_rows)(path, sheet, styles)
        if spec.sheets is not None and not any(c.strip() for row in rows for c in row):
            continue  # a matching sheet left empty (a year not yet published) holds no table
        if len(rows) >= SHEET_ROW_STRIDE:
            raise ReadError(
                f"{path.name}: sheet {title!r} has {len(rows):,} rows; send a table this large as CSV"
            )
        grids.append(layout_grid(rows, spec, path.name, title, styles, number if spec.sheets else 0))
    if not grids:
        raise ReadError(f"{path.name}: every sheet whose name matches /{spec.sheets}/ is empty")
    return grids[0] if len(grids) == 1 else stack_grids(grids, path.name)
