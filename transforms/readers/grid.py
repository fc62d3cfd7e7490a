"""The grid every reader returns, and the header-finding helpers the readers share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd


class ReadError(ValueError):
    """A file that cannot be read as its contract says; the message names file and place."""


# A statistical table has tens or hundreds of columns (months of 30 years, 250 countries); every
# column costs the engine buffers whatever its content (16,384 columns exhaust DuckDB's memory
# limit). A grid of more cells than MAX_CELLS is held in Python only by the plain readers.
MAX_COLUMNS = 4_096
MAX_CELLS = 20_000_000


def check_width(width: int, name: str, where: str = "") -> None:
    if width > MAX_COLUMNS:
        raise ReadError(
            f"{name}: {where}{width} columns; a statistical table has at most {MAX_COLUMNS} "
            "(is the delimiter right, or is this a table at all?)"
        )


def ragged_row_error(name: str, line: int, found: int, expected: int, count: int) -> ReadError:
    """The refusal of a data row whose field count is not the header's, the same from the plain
    reader and the Arrow fast path: a short row was cut (or lost a field), and padding it would
    withdraw or shift a figure without a word; a long one has a delimiter inside a value
    ("17,603" with a comma delimiter)."""
    why = (
        "the row is cut short or lost a field"
        if found < expected
        else "the row has more fields than the header (a delimiter inside a value?)"
    )
    return ReadError(
        f"{name}: line {line}: {found} fields where the header has {expected}; {why} "
        f"(rows like this: {count})"
    )


@dataclass
class Grid:
    """Cells of one table as text.

    ``data`` has positional columns 0..n-1 holding str ("" for empty); ``row_numbers`` gives the
    physical 1-based row (line) of each data row; ``header_levels`` has one list per header row,
    filled to the right across merged cells; ``header`` joins the levels of each column.
    """

    data: pd.DataFrame
    row_numbers: list[int]
    header_levels: list[list[str]]
    sheet: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def header(self) -> list[str]:
        out = []
        for i in range(len(self.header_levels[0]) if self.header_levels else 0):
            parts = [lvl[i] for lvl in self.header_levels if lvl[i]]
            # A level repeated by the right-fill of a merged cell is named once.
            dedup = [p for j, p in enumerate(parts) if j == 0 or p != parts[j - 1]]
            out.append(" / ".join(dedup))
        return out


def col_letter(index: int) -> str:
    """0-based column index -> spreadsheet letter (0 -> A)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def find_header(rows: list[list[str]], pattern: str, name: str) -> int:
    """0-based index of the first row whose first non-empty cell matches ``pattern``."""
    rx = re.compile(pattern)
    for i, row in enumerate(rows):
        first = next((c.strip() for c in row if c and c.strip()), "")
        if first and rx.search(first):
            return i
    raise ReadError(f"{name}: no header row matching /{pattern}/ in the first {len(rows)} rows")


def fill_header_levels(raw_levels: list[list[str]]) -> list[list[str]]:
    """Header rows with merged cells (a year above its months) filled to the right.

    A level is filled only within the span of the level above: where the level above starts a new
    cell, the fill stops, so a "2015 Total" column does not inherit the last month of 2015.
    """
    levels = [[str(c).strip() for c in level] for level in raw_levels]
    if len(levels) < 2:
        return levels
    filled_levels = []
    starts_above = None  # positions where the level above has its own (non-filled) cell
    for level in levels:
        filled, last = [], ""
        for i, cell in enumerate(level):
            if starts_above is not None and starts_above[i] and not cell:
                last = ""
            last = cell or last
            filled.append(last)
        starts = [bool(cell) for cell in level]
        if starts_above is not None:
            starts = [a or b for a, b in zip(starts, starts_above, strict=True)]
        starts_above = starts
        filled_levels.append(filled)
    return filled_levels


def build_grid(
    rows: list[list[str]],
    header_idx: list[int],
    first_row_number: int,
    stop_at_blank_row: bool,
    sheet: str | None,
    name: str,
) -> Grid:
    """Cut ``rows`` (text cells, starting at physical row ``first_row_number``) into header and data.

    ``header_idx`` are 0-based indexes into ``rows``; data starts after the last header row and ends
    at the first blank row when ``stop_at_blank_row`` (footnotes follow it in real files).
    """
    if not rows or max(header_idx) >= len(rows):
        raise ReadError(f"{name}: the file has no header row where the contract expects one")
    width = max(len(r) for r in rows)
    check_width(width, name)
    if width * (len(rows) - max(header_idx) - 1) > MAX_CELLS:
        raise ReadError(
            f"{name}: {len(rows)} rows of {width} columns is more than {MAX_CELLS:,} cells; "
            "send a table this large as CSV"
        )
    levels = fill_header_levels([rows[idx] + [""] * (width - len(rows[idx])) for idx in header_idx])
    body, numbers = [], []
    for offset, row in enumerate(rows[max(header_idx) + 1 :]):
        blank = not any(c.strip() for c in row)
        if blank:
            if stop_at_blank_row and body:
                break
            continue
        body.append(row + [""] * (width - len(row)))
        numbers.append(first_row_number + max(header_idx) + 1 + offset)
    data = (
        pd.DataFrame(body, columns=range(width), dtype=object) if body else pd.DataFrame(columns=range(width))
    )
    return Grid(data=data, row_numbers=numbers, header_levels=levels, sheet=sheet)
