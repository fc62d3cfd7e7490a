"""Totals outside the table as controls: from another sheet of the workbook
(``Contract.sheet_totals``) or from a total table above the other blocks of a sheet
(``reader.blocks.totals``). Each is compared with the sum of the loaded cells it covers; a
difference beyond rounding is an error."""

from __future__ import annotations

import pandas as pd

from transforms.engine import fetch_df, ident


def _number(text: str, contract) -> float | None:
    t = str(text).strip().replace("\u00a0", "").replace(" ", "")
    if contract.reader.thousands:
        t = t.replace(contract.reader.thousands, "")
    if contract.reader.decimal != ".":
        t = t.replace(contract.reader.decimal, ".")
    try:
        return float(t)
    except ValueError:
        return None


def check_sheet_totals(
    contract, con, view: str, vname: str, tables: list[pd.DataFrame], problems: list
) -> None:
    """Compare every totals sheet row with the sum of the value cells of ``view`` it covers."""
    from transforms.problems import Problem

    base = float(contract.rounding or 0)
    for spec, table in zip(contract.sheet_totals, tables, strict=True):
        sheet = table.attrs.get("sheet", spec.sheet)
        keys = list(spec.match)
        key_sql = ", ".join(f"trim(CAST(l.{ident(k)} AS VARCHAR)) AS {ident(k)}" for k in keys)
        sums = fetch_df(
            con,
            f"""SELECT {key_sql}{", " if keys else ""}sum(v.value) AS parts, count(*) AS cells
                FROM {view} l JOIN {vname} v ON v.value_raw = l.value_raw
                WHERE l.cell_role = 'value' AND v.action <> 'missing'
                {"GROUP BY ALL" if keys else ""}""",
        )
        if not keys:
            sums = sums.dropna(subset=["parts"])
        index = {
            tuple(str(r[k]) for k in keys): (float(r["parts"]), int(r["cells"])) for _, r in sums.iterrows()
        }
        errors = []
        for row in table.itertuples(index=False):
            row = row._asdict()
            total = _number(row["total_raw"], contract)
            key = tuple(str(row[k]) for k in keys)
            where = ", ".join(f"{k}={v!r}" for k, v in zip(keys, key, strict=True)) or "the whole file"
            if total is None:
                if str(row["total_raw"]).strip() in contract.all_markers():
                    continue
                errors.append((row, f"the total {row['total_raw']!r} on sheet {sheet!r} is not a number"))
                continue
            parts, cells = index.get(key, (0.0, 0))
            if abs(total - parts) > (base / 2) * cells:
                errors.append(
                    (
                        row,
                        f"the total {total:g} on sheet {sheet!r} (row {row['source_row']}) for {where} but the "
                        f"loaded cells sum to {parts:g} (difference {total - parts:+g})",
                    )
                )
        for row, message in errors[:5]:
            problems.append(
                Problem(
                    "error",
                    "total_matches",
                    message,
                    column=spec.value,
                    label=str(row["total_raw"]),
                    count=len(errors),
                    rows=[int(row["source_row"])],
                )
            )


def check_block_totals(contract, con, view: str, vname: str, ex, problems: list) -> None:
    """Every leaf cell of the total table against the sum of the other blocks' cells of the same
    row labels (the contract's ids) and column."""
    from transforms.problems import Problem

    ctl = ex.block_totals
    keys = [a for a in ex.row_attrs if a not in ex_layout(contract)] + ["measure"]
    if contract.reader.sheets is not None:  # each sheet's total table covers its own sheet
        keys.insert(0, contract.reader.sheet_attribute)
    on = " AND ".join(f"p.{ident(k)} = t.{ident(k)}" for k in keys)
    rows = fetch_df(
        con,
        f"""WITH p AS (SELECT {", ".join(f"l.{ident(k)}" for k in keys)}, sum(v.value) AS parts,
                              count(*) AS cells
                       FROM {view} l JOIN {vname} v ON v.value_raw = l.value_raw
                       WHERE l.cell_role = 'value' AND v.action <> 'missing' GROUP BY ALL)
            SELECT t.source_row, t.source_column, t.value_raw, {", ".join(f"t.{ident(k)}" for k in keys)},
                   coalesce(p.parts, 0) AS parts, coalesce(p.cells, 0) AS cells
            FROM {ctl.view} t LEFT JOIN p ON {on}
            WHERE t.cell_role = 'value' ORDER BY t.source_row, t.source_col""",
    )
    base = float(contract.rounding or 0)
    markers = contract.all_markers()
    errors = []
    for r in rows.itertuples(index=False):
        total = _number(r.value_raw, contract)
        if total is None:
            if str(r.value_raw).strip() in markers:
                continue
            errors.append((r, f"the total table's cell {r.value_raw!r} is not a number"))
        elif abs(total - r.parts) > (base / 2) * r.cells:
            label = ", ".join(f"{r._asdict()[k]}" for k in keys[:-1])
            errors.append(
                (
                    r,
                    f"the total table says {total:g} for {label} but the other blocks' cells sum to "
                    f"{r.parts:g} (difference {total - r.parts:+g})",
                )
            )
    for r, message in errors[:5]:
        problems.append(
            Problem(
                "error",
                "total_matches",
                message,
                column=r.source_column,
                label=str(r.value_raw),
                count=len(errors),
                rows=[int(r.source_row)],
            )
        )


def ex_layout(contract) -> set[str]:
    """The layout step's attributes: they tell the blocks apart, so they are no key of a total."""
    return set(contract.reader.layout_attributes())
