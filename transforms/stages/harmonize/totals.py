"""Totals: the source's own totals beside the sum of the cells each covers; disagreements beyond
rounding refuse the file, positive differences become remainders (decision 0001)."""

from __future__ import annotations

import pandas as pd

from transforms.contracts.checks import full_number
from transforms.contracts.model import Contract
from transforms.engine import (
    columns_of,
    fetch_all,
    fetch_df,
    fetch_value,
    register_frame,
    temp_name,
    work_schema,
)
from transforms.problems import Problem
from transforms.stages.harmonize.model import TABLE_KEY
from transforms.stages.sheet_controls import check_block_totals, check_sheet_totals

_CONTROL_COLUMNS = "source_row, source_col, source_column, scope, total, parts, cells, suppressed, remainder"


def controls_sql(view: str, vname: str, ex, tables: bool = False) -> str:
    """The source's own totals beside the sum of the leaves each covers.

    A total column covers the leaves of its row: with the file's rows at hand (``ex``), that sum is
    taken across the row's value columns, with no grouping over millions of rows. A total row
    covers the leaves of its column: few groups, taken from the long table; with ``tables`` (the
    long table has the column ``_table``: blocks, sheets), within its own table only, whether the
    long table comes from ``extract`` or as a DataFrame.
    """
    parts = []
    measures = ex.measures if ex is not None and ex.rows_view is not None else None
    if measures is not None:
        leaves = measures[measures["role"] == "value"]
        for t in measures[measures["role"] == "total"].itertuples():
            vals = [f"v{i}" for i in range(len(leaves))]
            joins = " ".join(
                f"LEFT JOIN {vname} {a} ON {a}.value_raw = trim(coalesce(r.c{c}, ''))"
                for a, c in zip(vals, leaves["col_index"], strict=True)
            )
            present = [f"coalesce({a}.action, 'missing') <> 'missing'" for a in vals]
            # The column's header is the file's text: it travels as a registered table, not as SQL.
            label = register_frame(ex.con, pd.DataFrame({"m": [str(t.measure)]}), "label")
            parts.append(
                f"""SELECT r.source_row, '{t.source_col}' AS source_col, (SELECT m FROM {label}) AS source_column,
                       'row' AS scope, coalesce(tv.value, 0) AS total,
                       {" + ".join(f"coalesce({a}.value, 0)" for a in vals) or "0"} AS parts,
                       {" + ".join(f"CAST({p} AS INTEGER)" for p in present) or "0"} AS cells,
                       {" + ".join(f"CAST({a}.action = 'suppressed' AS INTEGER)" for a in vals) or "0"} AS suppressed,
                       coalesce(tv.value, 0) - ({" + ".join(f"coalesce({a}.value, 0)" for a in vals) or "0"}) AS remainder
                FROM {ex.rows_view} r JOIN {vname} tv ON tv.value_raw = trim(coalesce(r.c{t.col_index}, ''))
                {joins}
                WHERE NOT r._skip AND NOT r._is_total AND tv.action <> 'missing'"""
            )
        row_scope = ""
    else:
        row_scope = _grouped_scope_sql(view, vname, "source_row", "total", "row")
    # A total row covers its column within its own table (a block of a sheet, a sheet of several).
    table_key = TABLE_KEY if tables else None
    column_scope = _grouped_scope_sql(view, vname, "source_col", "total_row", "column", table_key)
    pieces = [*parts, row_scope, column_scope] if row_scope else [*parts, column_scope]
    return " UNION ALL ".join(f"SELECT {_CONTROL_COLUMNS} FROM ({p})" for p in pieces)


def _grouped_scope_sql(
    view: str, vname: str, key: str, role: str, scope: str, within: str | None = None
) -> str:
    """Totals of cell role ``role`` beside the sum of the leaves sharing their ``key`` (and their
    ``within`` attribute, when given)."""
    inner = f", l.{within}" if within else ""
    on = f" AND g.{within} = t.{within}" if within else ""
    return f"""SELECT t.source_row, t.source_col, t.source_column, '{scope}' AS scope, coalesce(v.value, 0) AS total,
               coalesce(g.parts, 0) AS parts, coalesce(g.cells, 0) AS cells, coalesce(g.suppressed, 0) AS suppressed,
               coalesce(v.value, 0) - coalesce(g.parts, 0) AS remainder
        FROM {view} t JOIN {vname} v ON v.value_raw = t.value_raw
        LEFT JOIN (SELECT l.{key}{inner}, sum(coalesce(w.value, 0)) AS parts, count(*) AS cells,
                          sum(CAST(w.action = 'suppressed' AS INTEGER)) AS suppressed
                   FROM {view} l JOIN {vname} w ON w.value_raw = l.value_raw
                   WHERE l.cell_role = 'value' AND w.action <> 'missing' GROUP BY ALL) g
               ON g.{key} = t.{key}{on}
        WHERE t.cell_role = '{role}' AND v.action <> 'missing'"""


def reconcile(contract: Contract, con, controls: str, problems: list[Problem]) -> None:
    """Compare the source's own totals with its cells.

    Rounded cells may each be off by half the rounding base, and a suppressed cell hides up to
    one rounding base: within that, a disagreement is a warning; beyond it, an error. With a
    declared ``remainder``, a positive difference becomes an observation instead.
    """
    base = float(contract.rounding or 0)
    keep = contract.remainder is not None
    rows = fetch_df(
        con,
        f"""SELECT source_row, source_column, total, parts, remainder,
                   remainder < -($base / 2) * cells AS too_low,
                   remainder > ($base / 2) * cells + $base * suppressed AS too_high
            FROM {controls} WHERE remainder <> 0 ORDER BY source_row, source_col""",
        {"base": base},
    )
    if rows.empty:
        return
    errors = rows[rows["too_low"] | (rows["too_high"] & (not keep))]
    for row in errors.head(5).itertuples():
        problems.append(
            Problem(
                "error",
                "total_matches",
                f"the source's own total {full_number(row.total)} but its cells sum to {full_number(row.parts)} "
                f"(difference {_signed(row.remainder)}, beyond the rounding the contract declares)",
                column=row.source_column,
                label=full_number(row.total),
                count=len(errors),
                rows=[int(row.source_row)],
            )
        )
    within = rows[~rows.index.isin(errors.index) & ((not keep) | (rows["remainder"] < 0))]
    for row in within.head(5).itertuples():
        if keep:  # stored as a negative remainder: the loaded sum is the source's total
            check, message = (
                "remainder_negative",
                f"the source's own total {full_number(row.total)} is below its cells' sum "
                f"{full_number(row.parts)} by {full_number(-row.remainder)}, within rounding; "
                f"a remainder of {full_number(row.remainder)} (status E) is stored so that the loaded "
                "sum equals the total",
            )
        else:
            check, message = (
                "total_within_rounding",
                f"the source's own total {full_number(row.total)} differs from its cells' sum "
                f"{full_number(row.parts)} by {_signed(row.remainder)}, within rounding",
            )
        problems.append(
            Problem(
                "warning",
                check,
                message,
                column=row.source_column,
                count=len(within),
                rows=[int(row.source_row)],
            )
        )


def _signed(value) -> str:
    text = full_number(value)
    return text if text.startswith("-") else f"+{text}"


def remainder_share(contract: Contract, con, controls: str, differing: str, problems, ex) -> None:
    """Warn when the remainders are more than ``remainder_max_share`` of the file's totals: a
    contract that skips rows it should read turns their figures into estimated remainders."""
    whole, kept = fetch_all(
        con,
        f"""SELECT (SELECT sum(abs(total)) FROM {controls}),
                   (SELECT sum(abs(remainder)) FROM {differing})""",
    )[0]
    share = float(kept or 0) / float(whole) if whole else 0.0
    if share <= contract.remainder_max_share:
        return
    top = fetch_all(
        con,
        f"""SELECT source_row, source_column, remainder FROM {differing}
            ORDER BY abs(remainder) DESC, source_row LIMIT 5""",
    )
    listed = "; ".join(f"row {int(r)}{f' ({c})' if c else ''}: {full_number(v)}" for r, c, v in top)
    skipped = (
        f"; the contract skipped {ex.rows_skipped} row(s) of the file"
        if ex is not None and ex.rows_skipped
        else ""
    )
    problems.append(
        Problem(
            "warning",
            "remainder_share",
            f"remainders are {share:.1%} of the file's totals ({full_number(kept)} of {full_number(whole)}), "
            f"more than remainder_max_share {contract.remainder_max_share:.0%}: the figures of these totals "
            f"became estimated remainders: {listed}{skipped}; check the contract's rows.skip and values "
            "(or raise remainder_max_share)",
            count=len(top),
            rows=sorted({int(r) for r, _, _ in top}),
        )
    )


def has_totals(contract: Contract) -> bool:
    """Whether the contract declares any total (a total row, a total column, a melted total)."""
    return (
        bool(contract.rows.total)
        or any(m.role == "total" for m in contract.values.columns)
        or bool(contract.values.melt and contract.values.melt.total)
    )


def check_totals(contract: Contract, con, view: str, vname: str, ex, problems: list[Problem]):
    """Reconcile the source's totals with their cells: (the view of every control, the table of
    the controls whose remainder is kept, or None when there is none to keep).

    Every control is a view (``Harmonized.controls``); only those whose total differs from its
    cells are stored: the reconciliation and the remainders read nothing else. Remainders come
    from those, both ways (a negative one is within rounding, else the file is refused)."""
    controls_view = temp_name("controls")
    tables = TABLE_KEY in columns_of(con, view)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {controls_view} AS {controls_sql(view, vname, ex, tables)}")
    differing = f"{work_schema(con)}.{temp_name('controls_off')}"
    con.execute(f"CREATE OR REPLACE TABLE {differing} AS SELECT * FROM {controls_view} WHERE remainder <> 0")
    reconcile(contract, con, differing, problems)
    if contract.remainder is None or not fetch_value(con, f"SELECT count(*) FROM {differing}"):
        return controls_view, None
    remainder_share(contract, con, controls_view, differing, problems, ex)
    return controls_view, differing


def check_other_controls(contract: Contract, con, view: str, vname: str, ex, problems: list[Problem]) -> None:
    """Totals published apart from the table they add up: on another sheet of the workbook, or
    as a total table above the other blocks (``stages.sheet_controls``)."""
    if ex is not None and ex.sheet_totals:
        check_sheet_totals(contract, con, view, vname, ex.sheet_totals, problems)
    if ex is not None and ex.block_totals is not None:
        check_block_totals(contract, con, view, vname, ex, problems)
