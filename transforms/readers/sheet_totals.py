"""Check totals published on another sheet of the same workbook (``sheet_totals``).

Input: the workbook and one ``SheetTotals`` spec. Output: a table of the totals sheet's rows
(``source_row``, ``total_raw`` and one column per matched attribute), that the harmonizer
compares with the cells it loads (``transforms.stages.sheet_controls``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transforms.readers.grid import ReadError, fill_header_levels


def read_sheet_totals(path: Path, spec, name: str | None = None) -> pd.DataFrame:
    from transforms.readers.excel_reader import sheet_rows

    name = name or path.name
    if not path.read_bytes()[:4].startswith((b"PK", b"\xd0\xcf\x11\xe0")):
        raise ReadError(f"{name}: 'sheet_totals' reads another sheet of a workbook; this file is not one")
    title, rows = sheet_rows(path, spec.sheet)
    if spec.header_row > len(rows):
        raise ReadError(f"{name}: sheet {title!r} has no header row {spec.header_row} (totals sheet)")
    width = max(len(r) for r in rows)
    header = fill_header_levels(
        [rows[spec.header_row - 1] + [""] * (width - len(rows[spec.header_row - 1]))]
    )[0]
    norm = [" ".join(h.split()).casefold() for h in header]

    def index(text: str) -> int:
        key = " ".join(text.split()).casefold()
        if key not in norm:
            raise ReadError(
                f"{name}: sheet {title!r}: no column {text!r} on the totals sheet; its header is {header}"
            )
        return norm.index(key)

    cols = {"total_raw": index(spec.value), **{attr: index(h) for attr, h in spec.match.items()}}
    where = {p.column: index(p.column) for p in spec.where}
    out = []
    for i in range(spec.header_row, len(rows)):
        row = rows[i] + [""] * (width - len(rows[i]))
        if not any(c.strip() for c in row):
            break
        if not all(p.test(row[where[p.column]]) for p in spec.where):
            continue
        out.append({"source_row": i + 1, **{k: row[c].strip() for k, c in cols.items()}})
    frame = pd.DataFrame(out, columns=["source_row", *cols])
    frame.attrs["sheet"] = title
    return frame
