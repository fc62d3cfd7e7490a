"""Harmonize one file: its long table of cells -> canonical observations, as a sequence of steps.

1. ``grouping``  one pass over the cells: the distinct labels, raw values and period labels;
2. ``values``    each distinct raw value read once (numbers, markers, suppressed cells);
3. ``labels``    each column's distinct labels mapped once to the canonical codes of a field;
4. ``periods``   each distinct period label mapped once to start, end and type;
5. ``canonical`` the SELECT of the observations over the coded cells;
6. ``totals``    the source's totals reconciled with their cells, remainders kept both ways;
7. ``canonical`` the observations written once (to the warehouse's sink on a first load);
8. ``observation_checks``  one key per observation, no implausible jump.

Every step works on the distinct labels (a file of millions of rows has a few hundred), so an
unknown label is reported once with its count and first rows, and the heavy work stays in one
DuckDB query. Knows nothing of file formats or storage.
"""

from __future__ import annotations

from transforms.contracts.model import Contract
from transforms.engine import fetch_value
from transforms.problems import Problem
from transforms.stages.harmonize.canonical import CanonicalSelect, materialize
from transforms.stages.harmonize.grouping import distinct_cells
from transforms.stages.harmonize.labels import coded_cells, field_expressions, kept_contexts
from transforms.stages.harmonize.model import Harmonized
from transforms.stages.harmonize.observation_checks import check_jumps, check_keys
from transforms.stages.harmonize.periods import period_map
from transforms.stages.harmonize.totals import check_other_controls, check_totals, has_totals
from transforms.stages.harmonize.values import value_map


def harmonize(
    contract: Contract,
    table,
    sheet: str | None = None,
    headers: dict[str, str] | None = None,
    sink=None,
    gate=None,
) -> Harmonized:
    """Long table of one file -> canonical observations, controls and problems.

    ``table`` is an ``Extracted`` (its DuckDB view is used) or a long-table DataFrame.
    ``headers`` maps the contract's attribute names to the columns as the file names them, so
    that messages speak the file's language; the contract's ``severity`` map is applied last.
    ``sink(source, stored, constants, span)``, when given, may store the observations itself:
    ``source`` is the SELECT of the columns that vary (``stored``: name -> DuckDB type),
    ``constants`` the values of the others, ``span`` the (first start, last end) of the periods
    the file can hold; it returns the relation of the stored columns, or None (then a table of
    the connection's scratch database holds them, as without a sink). ``gate()``, when given,
    is called before the observations are written (it may raise to stop there).
    """
    from transforms.stages.extract import Extracted

    if isinstance(table, Extracted):
        con, view = table.con, table.view
        headers = headers or table.headers
        sheet = sheet if sheet is not None else table.sheet
    else:
        from transforms.engine import connect, register_frame

        con = connect()
        view = register_frame(con, table, "long")
    result = _harmonize(
        contract, con, view, sheet, table if isinstance(table, Extracted) else None, sink, gate
    )
    for p in result.problems:
        p.severity = contract.severity_of(p.check, p.severity)
        if headers and p.column in headers:
            p.column = headers[p.column]
    return result


def _harmonize(
    contract: Contract, con, view: str, sheet: str | None, ex=None, sink=None, gate=None
) -> Harmonized:
    problems: list[Problem] = []
    distinct = distinct_cells(contract, con, view, ex)
    contexts = distinct.of(["measure_index", "cell_role"])
    if contexts.empty or not (contexts["cell_role"] == "value").any():
        problems.append(Problem("error", "not_empty", no_data_rows(contract, con, view, ex)))
    values = value_map(contract, con, distinct, problems)
    # Labels of the file's rows (not of its value columns) are joined on the rows, before they
    # become cells: a row of a record-level file carries several cells.
    row_level = set(ex.row_attrs) if ex is not None and ex.long_over is not None else set()
    fields = field_expressions(
        contract, con, distinct, kept_contexts(contract, contexts), row_level, problems
    )
    period = period_map(contract, con, distinct, contexts, row_level, problems)
    cells = coded_cells(
        con, view, ex, [*fields.row_joins, *period.row_joins], [*fields.row_cols, *period.row_cols]
    )
    select = CanonicalSelect.build(contract, con, sheet, fields, period, cells, values)
    parts, controls_view = [select.leaves()], None
    if has_totals(contract):
        controls_view, differing = check_totals(contract, con, view, values.name, ex, problems)
        if differing is not None:
            parts.append(select.remainders(differing))
    check_other_controls(contract, con, view, values.name, ex, problems)
    canon = materialize(contract, con, select, parts, sink, gate, ex)
    check_keys(con, canon.view, problems)
    check_jumps(con, canon.view, problems)
    return Harmonized(con, canon.view, problems, controls_view, canon.out_of_scope, canon.constants)


def no_data_rows(contract: Contract, con, view: str, ex) -> str:
    """Why no value cell is left: how many rows were read and skipped, and where reading stopped."""
    message = "the file holds no data rows"
    if ex is None:
        return message
    message += f": {ex.rows_read} row(s) read after the header"
    if ex.rows_skipped:
        message += f", {ex.rows_skipped} of them skipped by the contract's rows.skip"
    if contract.reader.stop_at_blank_row:
        last = fetch_value(con, f"SELECT max(source_row) FROM {ex.rows_view or view}")
        where = f" (row {int(last) + 1})" if last is not None else ""
        message += (
            f"; reading stops at the first blank row after the data{where}, and rows after it are not "
            "read: set reader.stop_at_blank_row: false in the contract to read on"
        )
    return message
