"""Layout step of the reading stage: the raw rows of one sheet -> the grid of its table(s).

Inputs: the sheet's rows as text (``rows``, 0-based; physical row = index + 1), the contract's
reader spec, and optionally each cell's style (``styles[i][j] = (indent, bold)``, XLSX only) for
parent rows found by indentation or bold type. Output: a ``Grid`` holding the data rows of every
table found on the sheet, stacked, with the layout's attribute columns appended after the file's
own (``Grid.attributes``: captures from title cells, the parent row's label, the sheet's name).

The steps, each a function with named inputs and outputs:
``find_tables`` (header rows, title rows and data span of each stacked table: ``blocks``),
``cut_rows`` (the data rows of one table: ``first_row``/``last_row``, ``stop_at``, blank rows),
``capture`` (attributes read from a table's title rows or a fixed cell: ``captures``),
``assign_parents`` (parent rows taken out, their label an attribute of the rows below: ``parents``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from transforms.readers.grid import MAX_CELLS, Grid, ReadError, check_width, fill_header_levels, find_header

# Rows of the n-th sheet of a multi-sheet contract are numbered n * SHEET_ROW_STRIDE + row, so that
# every data row of the file keeps one number (row 15 of the third sheet is 2000015).
SHEET_ROW_STRIDE = 1_000_000


@dataclass
class Table:
    """One table on a sheet: 0-based indexes of its header rows, title rows and data rows."""

    header_idx: list[int]
    title_idx: list[int]
    data_idx: list[int]
    totals: bool = False  # the total table of the others (``blocks.totals``)


def _first_cell(row: list[str]) -> str:
    return next((c.strip() for c in row if c and c.strip()), "")


def _blank(row: list[str]) -> bool:
    return not any(c.strip() for c in row)


def cut_rows(rows: list[list[str]], start: int, end: int, spec) -> tuple[list[int], int]:
    """Data rows of a table whose data may span rows[start:end]: returns their indexes and the
    index where the table ends (the first row not read)."""
    stop = re.compile(spec.stop_at) if spec.stop_at else None
    out: list[int] = []
    for idx in range(start, end):
        physical = idx + 1
        if spec.first_row and physical < spec.first_row:
            continue
        if spec.last_row and physical > spec.last_row:
            return out, idx
        row = rows[idx]
        if _blank(row):
            if spec.stop_at_blank_row and out:
                return out, idx
            continue
        if stop is not None and stop.search(_first_cell(row)):
            return out, idx
        out.append(idx)
    return out, end


def find_tables(rows: list[list[str]], spec, name: str) -> list[Table]:
    """The tables of a sheet: one (the contract's header rows), or each block ``blocks`` finds."""
    blocks = spec.blocks
    if blocks is None:
        if spec.header_find:
            header_idx = [find_header(rows, spec.header_find, name)]
        else:
            header_idx = [r - 1 for r in spec.header_lines()]
        if not rows or max(header_idx) >= len(rows):
            raise ReadError(f"{name}: the file has no header row where the contract expects one")
        data, _ = cut_rows(rows, max(header_idx) + 1, len(rows), spec)
        return [Table(header_idx, list(range(min(header_idx))), data)]
    rx = re.compile(blocks.title or blocks.header)
    starts = [i for i, row in enumerate(rows) if (first := _first_cell(row)) and rx.search(first)]
    if not starts:
        what = "title" if blocks.title else "header"
        raise ReadError(f"{name}: no block {what} row matching /{rx.pattern}/ on the sheet")
    tables, previous_end = [], 0
    for n, start in enumerate(starts):
        if not blocks.title:
            header_idx = [start]
        elif blocks.header_rows:
            header_idx = [start + k for k in blocks.header_rows]
        else:  # the first non-empty row under the title
            header_idx = [next((i for i in range(start + 1, len(rows)) if not _blank(rows[i])), len(rows))]
        if max(header_idx) >= len(rows):
            raise ReadError(
                f"{name}: row {start + 1}: the block has no header row where the contract expects one"
            )
        limit = starts[n + 1] if n + 1 < len(starts) else len(rows)
        data, end = cut_rows(rows, max(header_idx) + 1, limit, spec)
        title = [i for i in range(previous_end, min(header_idx)) if not _blank(rows[i])]
        previous_end = end
        text = " ".join(c.strip() for i in title for c in rows[i] if c.strip())
        if blocks.skip and re.search(blocks.skip, text):
            continue
        tables.append(Table(header_idx, title, data, bool(blocks.totals and re.search(blocks.totals, text))))
    if not tables:
        raise ReadError(f"{name}: every block's title matches 'blocks.skip' /{blocks.skip}/; nothing is read")
    return tables


def _cell_index(address: str) -> tuple[int, int]:
    m = re.fullmatch(r"([A-Za-z]+)(\d+)", address)
    col = 0
    for ch in m.group(1).upper():
        col = col * 26 + (ord(ch) - 64)
    return int(m.group(2)) - 1, col - 1


def capture(rows: list[list[str]], table: Table, spec, name: str) -> dict[str, str]:
    """The value of every ``captures`` attribute for one table."""
    out: dict[str, str] = {}
    for attr, cap in spec.captures.items():
        rx = re.compile(cap.pattern) if cap.pattern else None
        if cap.cell is not None:
            r, c = _cell_index(cap.cell)
            texts = [rows[r][c].strip()] if r < len(rows) and c < len(rows[r]) else [""]
            where = f"cell {cap.cell.upper()}"
        else:
            texts = [cell.strip() for i in table.title_idx for cell in rows[i] if cell.strip()]
            first, last = (table.title_idx[0] + 1, table.title_idx[-1] + 1) if table.title_idx else (0, 0)
            where = (
                f"the title rows {first}-{last}" if table.title_idx else "the title (there are no title rows)"
            )
            where += f" of the table whose header is row {min(table.header_idx) + 1}"
        value = None
        for text in texts:
            if rx is None:
                value = text
            elif found := rx.search(text):
                value = found.group(1) if found.groups() else found.group(0)
            if value:
                break
        if not value:
            if cap.default is None:
                shown = f"/{cap.pattern}/" if cap.pattern else "a value"
                raise ReadError(f"{name}: {where}: no text matches {shown} for the attribute '{attr}'")
            value = cap.default
        out[attr] = value.strip()
    return out


def _label_index(header: list[str], spec, name: str) -> int:
    col = spec.parents.column
    if col.index() is not None:
        return col.index()
    wanted = {" ".join(h.split()).casefold() for h in [col.header, *col.aliases]}
    for i, h in enumerate(header):
        if " ".join(h.split()).casefold() in wanted:
            return i
    raise ReadError(f"{name}: the parent rows' column {col.header!r} is missing; the header is {header}")


def _indent(text: str, style: tuple[int, bool] | None) -> int:
    spaces = len(text) - len(text.lstrip(" \t\u00a0"))
    return (style[0] if style else 0) * 4 + spaces


def assign_parents(
    rows: list[list[str]], data_idx: list[int], label_col: int, spec, styles=None
) -> tuple[list[int], list[str]]:
    """Parent rows out of ``data_idx``; returns the child rows and each one's parent label."""
    par = spec.parents
    rx = re.compile(par.pattern) if par.pattern else None

    def label(i: int) -> str:
        return rows[i][label_col] if label_col < len(rows[i]) else ""

    def style(i: int):
        return styles[i][label_col] if styles and i < len(styles) and label_col < len(styles[i]) else None

    kept, parents = [], []
    if par.by == "indent":
        stack: list[tuple[int, str]] = []
        for n, i in enumerate(data_idx):
            depth = _indent(label(i), style(i))
            while stack and stack[-1][0] >= depth:
                stack.pop()
            nxt = data_idx[n + 1] if n + 1 < len(data_idx) else None
            if nxt is not None and _indent(label(nxt), style(nxt)) > depth:
                stack.append((depth, label(i).strip()))
                continue
            kept.append(i)
            parents.append(stack[-1][1] if stack else "")
        return kept, parents
    current = ""
    for i in data_idx:
        is_parent = rx.search(label(i).strip()) if rx else bool((style(i) or (0, False))[1])
        if is_parent:
            current = label(i).strip()
            continue
        kept.append(i)
        parents.append(current)
    return kept, parents


def _levels(rows: list[list[str]], header_idx: list[int], width: int) -> list[list[str]]:
    return fill_header_levels([rows[i][:width] + [""] * (width - len(rows[i])) for i in header_idx])


def _keys(levels: list[list[str]]) -> list[tuple[str, int]]:
    """Each column's header text, numbered when it repeats (the 2nd "Total" is ("Total", 1))."""
    seen: dict[str, int] = {}
    out = []
    for col in zip(*levels, strict=True):
        text = " / ".join(dict.fromkeys(p for p in col if p))
        out.append((text, seen.get(text, 0)))
        seen[text] = seen.get(text, 0) + 1
    return out


def union_columns(level_sets: list[list[list[str]]], name: str, where) -> tuple[list[list[str]], list[list]]:
    """The columns of several tables of one contract, matched by header text: the first table's
    in its order, then those only later tables have. Returns the header levels of the union and,
    per table, the column of the table each union column is (None where the table lacks it)."""
    depth = len(level_sets[0])
    for k, levels in enumerate(level_sets):
        if len(levels) != depth:
            raise ReadError(f"{name}: {where(k)} has {len(levels)} header rows, the first table has {depth}")
    keys: list[tuple[str, int]] = []
    columns: list[list[str]] = []
    for levels in level_sets:
        for j, key in enumerate(_keys(levels)):
            if key not in keys:
                keys.append(key)
                columns.append([lvl[j] for lvl in levels])
    maps = []
    for levels in level_sets:
        position = {key: j for j, key in enumerate(_keys(levels))}
        maps.append([position.get(key) for key in keys])
    return [[col[d] for col in columns] for d in range(depth)], maps


def layout_grid(
    rows: list[list[str]], spec, name: str, sheet: str | None, styles=None, sheet_number: int = 0
) -> Grid:
    """The grid of one sheet's table(s) as the reader spec's layout keys say (module doc).

    Stacked tables are matched column by column by header text: a block without a column of the
    others has empty cells there (nothing is read from them), one with more adds the column."""
    if not rows:
        raise ReadError(f"{name}: the file has no header row where the contract expects one")
    width = max(len(r) for r in rows)
    check_width(width, name)
    if width * len(rows) > MAX_CELLS:
        raise ReadError(f"{name}: {len(rows)} rows of {width} columns is more than {MAX_CELLS:,} cells")
    tables = find_tables(rows, spec, name)
    # The table ends at its last named column: a stray cell far right (a note, a formatted empty
    # cell) does not widen it, so sheets and blocks of the same table have the same columns.
    named = [
        len(rows[i]) - next((k for k, c in enumerate(reversed(rows[i])) if c.strip()), len(rows[i]))
        for t in tables
        for i in t.header_idx
    ]
    width = max(named) or width
    if spec.parents is not None and spec.parents.column.index() is not None:
        width = max(width, spec.parents.column.index() + 1)
    level_sets = [_levels(rows, t.header_idx, width) for t in tables]
    levels, maps = union_columns(
        level_sets, name, lambda k: f"the block whose header is row {tables[k].header_idx[0] + 1}"
    )
    attributes = spec.layout_attributes()
    header = [key[0] for key in _keys(levels)]
    clash = [a for a in attributes if a in header]
    if clash:
        raise ReadError(
            f"{name}: the layout attribute(s) {clash} have the name of a column of the file; rename them"
        )
    body, numbers, control_body, control_numbers = [], [], [], []
    for number, (table, cmap) in enumerate(zip(tables, maps, strict=True)):
        out, out_numbers = (control_body, control_numbers) if table.totals else (body, numbers)
        attrs = capture(rows, table, spec, name)
        data_idx, parent_labels = table.data_idx, None
        if spec.parents:
            own = [key[0] for key in _keys(level_sets[number])]
            label_col = _label_index(own, spec, name)
            data_idx, parent_labels = assign_parents(rows, data_idx, label_col, spec, styles)
        for n, i in enumerate(data_idx):
            extra = dict(attrs)
            if parent_labels is not None:
                extra[spec.parents.attribute] = parent_labels[n]
            if spec.sheets is not None:
                extra[spec.sheet_attribute] = sheet or ""
            extra["_table"] = f"{sheet_number}.{number}"
            cells = rows[i]
            out.append(
                [cells[j] if j is not None and j < len(cells) else "" for j in cmap]
                + [extra.get(a, "") for a in attributes]
            )
            out_numbers.append(sheet_number * SHEET_ROW_STRIDE + i + 1)
    full = len(header) + len(attributes)

    def frame(cells: list[list[str]]) -> pd.DataFrame:
        return (
            pd.DataFrame(cells, columns=range(full), dtype=object)
            if cells
            else pd.DataFrame(columns=range(full))
        )

    levels = [
        lvl + ([*attributes] if k == len(levels) - 1 else [""] * len(attributes))
        for k, lvl in enumerate(levels)
    ]
    grid = Grid(
        data=frame(body), row_numbers=numbers, header_levels=levels, sheet=sheet, attributes=attributes
    )
    if any(t.totals for t in tables):
        grid.totals = Grid(frame(control_body), control_numbers, levels, sheet, attributes=attributes)
    return grid


def stack_grids(grids: list[Grid], name: str) -> Grid:
    """Grids of several sheets read by one contract, stacked; columns are matched by header text
    as the blocks of a sheet are (``union_columns``); the layout's attributes stay last."""
    n_attr = len(grids[0].attributes)
    own = [[lvl[: len(lvl) - n_attr] for lvl in g.header_levels] for g in grids]
    levels, maps = union_columns(own, name, lambda k: f"sheet {grids[k].sheet!r}")
    frames = []
    for g, cmap in zip(grids, maps, strict=True):
        width = len(g.header_levels[0]) - n_attr
        cols = {
            u: (g.data[j] if j is not None else pd.Series("", index=g.data.index, dtype=object))
            for u, j in enumerate(cmap)
        }
        cols.update({len(cmap) + a: g.data[width + a] for a in range(n_attr)})
        frames.append(pd.DataFrame(cols, index=g.data.index))
    data = pd.concat(frames, ignore_index=True)
    data.columns = range(data.shape[1])
    last = grids[0].header_levels
    levels = [lvl + last[d][len(last[d]) - n_attr :] for d, lvl in enumerate(levels)]
    out = Grid(
        data=data,
        row_numbers=[n for g in grids for n in g.row_numbers],
        header_levels=levels,
        sheet=", ".join(str(g.sheet) for g in grids),
        attributes=grids[0].attributes,
    )
    # Total tables (``blocks.totals``) of every sheet, stacked: they are matched by header text.
    totals = [g.totals for g in grids if g.totals is not None]
    if totals:
        out.totals = totals[0] if len(totals) == 1 else stack_grids(totals, name)
    return out
