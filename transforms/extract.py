"""Extract: a landing file + its contract -> a tidy long table of text cells.

One record per value cell: the row's id attributes, the value column's header (or header levels
of a wide layout), the raw text of the cell, whether the cell is a value or one of the source's
own totals, and its location (sheet, physical row, column as the file names it).
Hierarchy rows and columns (subtotals) are left out; grand totals are kept as controls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from transforms.contracts import Column, Contract
from transforms.readers import Grid, ReadError, read_grid
from transforms.readers.grid import col_letter


class ExtractError(ValueError):
    """The file does not fit its contract (drift); the message names the file and columns."""


@dataclass
class Extracted:
    table: pd.DataFrame
    sheet: str | None
    header: list[str]
    drift: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_skipped: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    version: int | None = None


def _norm(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def _locate(col: Column, header: list[str], name: str, what: str) -> tuple[int, str | None]:
    """Index of a column in the file, and the alias used if it is not the contract's own name."""
    if col.index() is not None:
        idx = col.index()
        if idx >= len(header):
            raise ExtractError(f"{name}: {what} is column {col_letter(idx)}, but the file has {len(header)} columns")
        return idx, None
    wanted = [col.header, *col.aliases]
    normalized = [_norm(h) for h in header]
    for candidate in wanted:
        if _norm(candidate) in normalized:
            alias = None if candidate == col.header else candidate
            return normalized.index(_norm(candidate)), alias
    raise ExtractError(
        f"{name}: column {col.header!r} ({what}) is missing; the file has columns "
        f"{[h for h in header if h]}"
    )


def _fill(series: pd.Series, direction: str) -> pd.Series:
    s = series.where(series.str.strip() != "")
    s = s.ffill() if direction == "down" else s.bfill()
    return s.fillna("")


def extract(path: str | Path, contract: Contract) -> Extracted:
    """Read ``path`` with the contract format version it fits (the contract's own first)."""
    variants = contract.variants()
    first_error: ExtractError | None = None
    for variant in variants:
        try:
            out = _extract(Path(path), variant)
        except ExtractError as exc:
            first_error = first_error or exc
            continue
        if variant is not contract:
            out.drift.insert(0, f"matched format version {variant.version} of the contract")
        out.version = variant.version
        return out
    if len(variants) > 1:
        tried = ", ".join(str(v.version) for v in variants)
        raise ExtractError(f"{first_error} (format versions tried: {tried})")
    raise first_error


def _extract(path: Path, contract: Contract) -> Extracted:
    """Read ``path`` as ``contract`` says and return its long table (see module doc)."""
    name = path.name
    grid: Grid = read_grid(path, contract.reader)
    header = grid.header
    data = grid.data
    drift: list[str] = []
    headers: dict[str, str] = {}

    attrs = pd.DataFrame(index=data.index)
    used: set[int] = set()
    for attr, col in contract.ids.items():
        idx, alias = _locate(col, header, name, f"id '{attr}'")
        if alias:
            drift.append(f"column {col.header!r} is named {alias!r} in this file")
        used.add(idx)
        headers[attr] = header[idx]
        attrs[attr] = data[idx].astype(str).str.strip() if len(data) else pd.Series(dtype=object)
    for attr in contract.reader.fill_down:
        attrs[attr] = _fill(attrs[attr], "down")
    for attr in contract.reader.fill_up:
        attrs[attr] = _fill(attrs[attr], "up")

    # Row roles: grand totals are kept as controls, hierarchy rows are left out.
    is_total_row = pd.Series(False, index=data.index)
    for pred in contract.rows.total:
        is_total_row |= attrs[pred.column].map(pred.test).astype(bool)
    skip = pd.Series(False, index=data.index)
    for pred in contract.rows.skip:
        skip |= attrs[pred.column].map(pred.test).astype(bool)
    skip &= ~is_total_row
    keep = ~skip
    rows_skipped = int(skip.sum())

    # Value columns: (index, header text, measure index, role, level attributes).
    columns: list[tuple[int, str, int, str, dict[str, str]]] = []
    if contract.values.columns:
        for m_idx, measure in enumerate(contract.values.columns):
            col = Column(header=measure.header, aliases=measure.aliases)
            idx, alias = _locate(col, header, name, "value column")
            if alias:
                drift.append(f"column {measure.header!r} is named {alias!r} in this file")
            used.add(idx)
            columns.append((idx, header[idx], m_idx, measure.role, {}))
    else:
        melt = contract.values.melt
        levels = grid.header_levels
        if len(melt.names) != len(levels):
            raise ExtractError(
                f"{name}: the contract names {len(melt.names)} header levels, the file has {len(levels)}"
            )
        for idx in range(melt.start_index(), len(header)):
            level_attrs = {n: levels[i][idx] for i, n in enumerate(melt.names)}
            if not any(level_attrs.values()):
                continue
            if any(p.test(level_attrs[p.column]) for p in melt.skip):
                continue
            role = "total" if any(p.test(level_attrs[p.column]) for p in melt.total) else "value"
            used.add(idx)
            columns.append((idx, header[idx], -1, role, level_attrs))
    if contract.values.columns:
        extra = [h for i, h in enumerate(header) if i not in used and h]
        if extra:
            drift.append(f"columns not in the contract (ignored): {extra}")

    kept = attrs[keep]
    numbers = pd.Series(grid.row_numbers, index=data.index)[keep]
    total_row = is_total_row[keep]
    pieces = []
    for idx, head, m_idx, role, level_attrs in columns:
        piece = kept.copy()
        for k, v in level_attrs.items():
            piece[k] = v
        piece["measure"] = head
        piece["measure_index"] = m_idx
        piece["value_raw"] = data.loc[keep, idx].astype(str).str.strip()
        piece["source_row"] = numbers.astype("int64")
        piece["source_column"] = head
        piece["source_col"] = col_letter(idx)
        piece["cell_role"] = "total" if role == "total" else "value"
        # A total column crossing a total row is a grand total, which no scope of leaves matches.
        piece.loc[total_row, "cell_role"] = "total_row" if role != "total" else "grand_total"
        pieces.append(piece)
    if pieces:
        table = pd.concat(pieces, ignore_index=True)
    else:
        table = pd.DataFrame(columns=[*attrs.columns, "measure", "value_raw", "source_row"])
    return Extracted(
        table=table,
        sheet=grid.sheet,
        header=header,
        drift=drift,
        rows_read=len(data),
        rows_skipped=rows_skipped,
        headers=headers,
    )


__all__ = ["ExtractError", "Extracted", "ReadError", "extract"]
