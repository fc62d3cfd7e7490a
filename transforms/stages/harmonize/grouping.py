"""The one pass over a file's cells: the distinct labels of each column, the distinct raw values
and period labels, each with its count of cells and first rows (GROUPING SETS)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from transforms.contracts.model import Contract
from transforms.engine import columns_of, fetch_df, ident

# The parts of a period a contract may read from the file.
PERIOD_PARTS = ("year", "month", "quarter", "date", "first_month", "last_month")


def first_rows(table: pd.DataFrame, hit: pd.Series, n: int = 5) -> list[int]:
    """The first source rows a mask covers (distinct-label tables carry them in ``_rows``)."""
    if "_rows" in table:
        return sorted(int(r) for rows in table.loc[hit, "_rows"] for r in rows)[:n]
    return [int(r) for r in table.loc[hit, "source_row"].head(n)]


def weight(table: pd.DataFrame, hit: pd.Series) -> int:
    """How many cells a mask covers: rows of a distinct-label table carry their count in ``_n``."""
    return int(table.loc[hit, "_n"].sum()) if "_n" in table else int(hit.sum())


def gid_of(group_cols: list[str], cols: list[str]) -> int:
    """GROUPING() of a grouping set over ``group_cols``: a bit set for each column not grouped."""
    return sum(1 << (len(group_cols) - 1 - i) for i, c in enumerate(group_cols) if c not in cols)


def _merge_rows(lists) -> list[int]:
    return sorted(int(r) for rows in lists for r in rows)[:5]


def grouped_over_rows(
    con, ex, labels: list[str], period_cols: list[str], group_cols: list[str]
) -> pd.DataFrame:
    """The grouping sets of ``_harmonize`` computed on the file's rows, not on its cells.

    When every label column is a label of the rows (a record-level file: one row, several value
    columns), the cells of a row share its labels: the rows are grouped once (label, whether
    the row is a total row) and each group is spread over the value columns here, with the
    cell role each column gives it (the long view's rule); raw values are grouped per value
    column. The result is the frame the cell-level GROUPING SETS query returns (same columns,
    same groups, same counts and first rows), from a pass over a quarter or less of the cells.
    """
    rows = f"(SELECT * FROM {ex.rows_view} WHERE _is_total OR NOT _skip)"
    measures = ex.measures[["col_index", "measure_index", "role"]]
    value_exprs = [f"trim(coalesce(c{int(i)}, ''))" for i in sorted(set(measures["col_index"]))]
    sets = [f"({ident(c)}, _is_total)" for c in labels]
    sets += [f"(_v{i})" for i in range(len(value_exprs))]
    if period_cols:
        sets.append("(" + ", ".join(ident(c) for c in period_cols) + ", _is_total)")
    sets.append("(_is_total)")
    sets = list(dict.fromkeys(sets))  # a period column alone is also a label's set: once
    keys = [*labels, *(f"_v{i}" for i in range(len(value_exprs))), "_is_total"]
    raw = fetch_df(
        con,
        f"""SELECT {", ".join(ident(k) for k in keys)}, count(*) AS _n, min(source_row) AS source_row,
                   min(source_row, 5) AS _rows, GROUPING({", ".join(ident(k) for k in keys)}) AS _g
            FROM (SELECT *, {", ".join(f"{e} AS _v{i}" for i, e in enumerate(value_exprs))} FROM {rows})
            GROUP BY GROUPING SETS ({", ".join(sets)})""",
    )
    agg = {"_n": ("_n", "sum"), "source_row": ("source_row", "min"), "_rows": ("_rows", _merge_rows)}

    def part(cols: list[str]) -> pd.DataFrame:
        return raw[raw["_g"] == gid_of(keys, cols)]

    def spread(frame: pd.DataFrame, by: list[str], keep: list[str]) -> pd.DataFrame:
        """Rows grouped by ``by`` + _is_total -> cells grouped by ``by`` + ``keep`` contexts."""
        cells = frame[[*by, "_is_total", "_n", "source_row", "_rows"]].merge(measures, how="cross")
        total = cells["_is_total"].astype(bool)
        cells["cell_role"] = cells["role"].where(
            ~total, cells["role"].map(lambda r: "grand_total" if r == "total" else "total_row")
        )
        out = cells.groupby([*by, *keep], sort=False, dropna=False).agg(**agg).reset_index()
        return out

    pieces = []
    for c in labels:
        pieces.append(
            spread(part([c, "_is_total"]), [c], ["measure_index", "cell_role"]).assign(
                _gid=gid_of(group_cols, [c, "measure_index", "cell_role"])
            )
        )
    values = []
    for i, _ in enumerate(value_exprs):
        v = part([f"_v{i}"])
        values.append(v[[f"_v{i}", "_n", "source_row", "_rows"]].rename(columns={f"_v{i}": "value_raw"}))
    if values:
        merged = (
            pd.concat(values, ignore_index=True).groupby("value_raw", sort=False).agg(**agg).reset_index()
        )
        pieces.append(merged.assign(_gid=gid_of(group_cols, ["value_raw"])))
    if period_cols:
        pieces.append(
            spread(part([*period_cols, "_is_total"]), period_cols, ["cell_role"]).assign(
                _gid=gid_of(group_cols, [*period_cols, "cell_role"])
            )
        )
    pieces.append(
        spread(part(["_is_total"]), [], ["measure_index", "cell_role"]).assign(
            _gid=gid_of(group_cols, ["measure_index", "cell_role"])
        )
    )
    grouped = pd.concat(pieces, ignore_index=True)
    for col in group_cols:
        if col not in grouped:
            grouped[col] = None
    grouped["measure_index"] = grouped["measure_index"].astype("Int64")  # NULL outside its sets
    return grouped[[*group_cols, "_n", "source_row", "_rows", "_gid"]]


def label_columns(contract: Contract) -> list[str]:
    """Attributes whose labels the field and period specs read."""
    cols: list[str] = []
    specs = [*contract.fields.values(), *(contract.remainder or {}).values()]
    for m in contract.values.columns:
        specs.extend(m.fields.values())
    for part in PERIOD_PARTS:
        spec = getattr(contract.period, part)
        if spec is not None:
            specs.append(spec)
    for spec in specs:
        if spec.column and spec.column not in cols and spec.column != "measure":
            cols.append(spec.column)
    return cols


@dataclass
class Distinct:
    """The distinct labels of one file: the grouping sets of one pass over its cells, over
    ``group_cols`` (the label columns, the raw value, the measure and the kind of cell)."""

    grouped: pd.DataFrame
    group_cols: list[str]
    labels: list[str]
    period_cols: list[str]

    def of(self, cols: list[str]) -> pd.DataFrame:
        """The groups over ``cols`` (one grouping set), with their counts and first rows."""
        grouped = self.grouped
        return grouped[grouped["_gid"] == gid_of(self.group_cols, cols)].reset_index(drop=True)


def period_columns(contract: Contract) -> list[str]:
    """The columns the period's parts read, once each."""
    specs = (getattr(contract.period, part) for part in PERIOD_PARTS)
    return list(dict.fromkeys(spec.column for spec in specs if spec is not None and spec.column))


def distinct_cells(contract: Contract, con, view: str, ex=None) -> Distinct:
    """One pass: distinct labels per column and context, distinct raw values, distinct period
    labels, each with its count of cells and first rows. A record-level file (every label a label
    of its rows) is grouped over its rows, a quarter or less of its cells."""
    columns = set(columns_of(con, view))
    labels = label_columns(contract)
    for col in labels:
        if col not in columns:
            raise KeyError(f"a field reads column '{col}', which the contract does not define")
    period_cols = period_columns(contract)
    group_cols = [*labels, "value_raw", "measure_index", "cell_role"]
    if ex is not None and ex.rows_view is not None and set(labels) <= set(ex.row_attrs):
        grouped = grouped_over_rows(con, ex, labels, period_cols, group_cols)
    else:
        sets = [f"({ident(c)}, measure_index, cell_role)" for c in labels]
        sets.append("(value_raw)")
        if period_cols:
            sets.append("(" + ", ".join(ident(c) for c in period_cols) + ", cell_role)")
        sets.append("(measure_index, cell_role)")
        grouped = fetch_df(
            con,
            f"""SELECT {", ".join(ident(c) for c in group_cols)}, count(*) AS _n, min(source_row) AS source_row,
                       min(source_row, 5) AS _rows, GROUPING({", ".join(ident(c) for c in group_cols)}) AS _gid
                FROM {view}
                GROUP BY GROUPING SETS ({", ".join(sets)})""",
        )
    return Distinct(grouped, group_cols, labels, period_cols)
