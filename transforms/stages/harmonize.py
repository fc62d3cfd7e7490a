"""Harmonize: a contract's long table -> canonical observations (see DOMAIN.md).

Every canonical field is computed from the contract's field specs by mapping the *distinct*
labels of a column once (a file of millions of rows has a few hundred labels), so unknown
labels are reported with their count and first rows, and the work stays proportional to
the number of labels. Knows nothing of file formats or storage.
"""

from __future__ import annotations

import datetime as dt
import os
import re

import numpy as np
import pandas as pd

from transforms.contracts import codelists
from transforms.contracts.checks import full_number
from transforms.contracts.model import Contract, FieldSpec
from transforms.engine import columns_of, fetch_all, fetch_df, fetch_value, work_schema
from transforms.problems import Problem

COUNTRY_FIELDS = ("reporter", "citizenship", "counterpart")
FIELD_CODELIST = {
    "reporter": "countries",
    "citizenship": "countries",
    "counterpart": "countries",
    "flow_type": "flow_types",
    "sex": "sex",
    "age_band": "age_bands",
    "unit": "units",
    "obs_status": "obs_status",
    "reporter_role": None,
}
DEFAULTS = {
    "citizenship": "_T",
    "counterpart": "_Z",
    "sex": "_T",
    "age_band": "_T",
    "obs_status": "A",
}
REPORTER_ROLES = ("destination", "transit", "origin")
KEY_COLUMNS = [
    "source_id",
    "reporter_iso3",
    "flow_type",
    "citizenship_iso3",
    "counterpart_iso3",
    "period_start",
    "period_end",
    "sex",
    "age_band",
    "unit",
    "detail",
]
CANONICAL_COLUMNS = [
    *KEY_COLUMNS,
    "reporter_role",
    "period_type",
    "value",
    "obs_status",
    "conf_status",
    "rounding_base",
    "source_sheet",
    "source_row",
    "source_column",
    "year",
    "month",
]


def _unknown_label(name: str, label: str, resolver, spec, valid) -> str:
    """The message of a label no mapping knows, with what the sender may have meant: the closest
    country names, or for a short list of codes the labels the contract knows."""
    if not label.strip():
        return f"empty {name} label"
    message = f"unknown {name} label {label!r}"
    if resolver is not None:
        close = resolver.suggest(label)
        if close:
            return f"{message}; did you mean {' or '.join(repr(c) for c in close)}?"
        return message
    import difflib

    known = sorted({str(k) for k in spec.map} | set(valid or ()))
    close = difflib.get_close_matches(label, known, n=3, cutoff=0.6)
    if close:
        message += f"; did you mean {' or '.join(repr(c) for c in close)}?"
    if known and len(known) <= 20:
        message += f" (allowed: {', '.join(known)})"
    return message


# ---------------------------------------------------------------------------- values


def _first_rows(table: pd.DataFrame, hit: pd.Series, n: int = 5) -> list[int]:
    """The first source rows a mask covers (distinct-label tables carry them in ``_rows``)."""
    if "_rows" in table:
        return sorted(int(r) for rows in table.loc[hit, "_rows"] for r in rows)[:n]
    return [int(r) for r in table.loc[hit, "source_row"].head(n)]


def _weight(table: pd.DataFrame, hit: pd.Series) -> int:
    """How many cells a mask covers: rows of a distinct-label table carry their count in ``_n``."""
    return int(table.loc[hit, "_n"].sum()) if "_n" in table else int(hit.sum())


def parse_values(
    raw: pd.Series,
    contract: Contract,
    problems: list[Problem],
    rows: pd.Series,
    weights: pd.Series | None = None,
    row_lists: pd.Series | None = None,
) -> pd.DataFrame:
    """Raw cell text -> value (float, NaN when suppressed), action (value|zero|missing|suppressed)."""
    markers = contract.all_markers()
    thousands = contract.reader.thousands
    decimal = contract.reader.decimal
    distinct = pd.unique(raw)
    values, actions, bad = {}, {}, []
    for text in distinct:
        t = text.strip()
        action = markers.get(t)
        if action is not None:
            actions[text] = action
            values[text] = 0.0 if action == "zero" else np.nan
            continue
        s = t.replace("\u00a0", "").replace(" ", "")
        if thousands:
            s = s.replace(thousands, "")
        if decimal != ".":
            s = s.replace(decimal, ".")
        try:
            v = float(s)
            if not np.isfinite(v):
                raise ValueError
        except ValueError:
            bad.append(text)
            actions[text] = "missing"
            values[text] = np.nan
            continue
        actions[text] = "value"
        values[text] = v
    for text in bad:
        hit = raw == text
        problems.append(
            Problem(
                "error",
                "value_is_number",
                f"value {text[:60]!r} is not a number nor a marker the contract knows",
                column=None,
                label=text[:60],
                count=int(weights[hit].sum()) if weights is not None else int(hit.sum()),
                rows=_first_rows(rows.to_frame("source_row").assign(_rows=row_lists), hit)
                if row_lists is not None
                else rows[hit].head(5).tolist(),
            )
        )
    return pd.DataFrame({"value": raw.map(values).astype("float64"), "action": raw.map(actions)})


# ---------------------------------------------------------------------------- fields


def _valid_codes(codelist: str | None) -> frozenset[str] | None:
    if codelist is None:
        return None
    codes = set(codelists.codes(codelist))
    if codelist == "countries":
        codes |= {"_T", "_O", "_U", "_Z", "_S"}
    return frozenset(codes)


def map_field(
    name: str,
    spec: FieldSpec,
    table: pd.DataFrame,
    problems: list[Problem],
    contract: Contract,
) -> pd.Series:
    """Canonical codes of one field for every record of ``table``."""
    if spec.value is not None:
        return pd.Series(spec.value, index=table.index, dtype=object)
    if spec.column not in table.columns:
        raise KeyError(f"field '{name}' reads column '{spec.column}', which the contract does not define")
    raw = table[spec.column].astype(str)
    labels = raw.str.extract(spec.pattern, expand=False).fillna("") if spec.pattern else raw
    codelist = spec.codelist or FIELD_CODELIST.get(name)
    valid = _valid_codes(codelist)
    resolver = (
        codelists.country_resolver(tuple(sorted(spec.map.items()))) if codelist == "countries" else None
    )
    mapping: dict[str, str | None] = {}
    for label in pd.unique(labels):
        text = label.strip()
        code: str | None
        if text in spec.map:
            code = spec.map[text]
        elif text == "":
            code = spec.default
        elif resolver is not None:
            code = resolver.resolve(text)
        elif valid is not None and text in valid:
            code = text
        else:
            code = None
        mapping[label] = code
    codes = labels.map(mapping)
    unknown = [label for label, code in mapping.items() if code is None]
    for label in unknown:
        hit = labels == label
        problems.append(
            Problem(
                "error",
                "label_known",
                _unknown_label(name, label, resolver, spec, valid),
                column=_file_column(spec.column, table),
                label=label,
                count=_weight(table, hit),
                rows=_first_rows(table, hit),
            )
        )
    if valid is not None:
        for code in set(mapping.values()) - {None} - valid:
            hit = codes == code
            problems.append(
                Problem(
                    "error",
                    "code_in_codelist",
                    f"{name} code {code!r} (mapped in the contract) is not in the code list '{codelist}'",
                    column=_file_column(spec.column, table),
                    label=code,
                    count=_weight(table, hit),
                    rows=_first_rows(table, hit),
                )
            )
    return codes


def _file_column(attr: str | None, table: pd.DataFrame) -> str | None:
    """The column as the file names it, for messages (melted levels are named by the contract)."""
    if attr is None:
        return None
    if attr == "measure" and "source_column" in table:
        return str(table["source_column"].iloc[0]) if len(table) else attr
    return attr


# ---------------------------------------------------------------------------- periods

_YEAR = re.compile(r"(1[89]\d\d|2[01]\d\d)")
# A quarter digit standing alone ("T2", "Q3", "2023-Q3", "3er"), not a digit of a year.
_QUARTER = re.compile(r"(?<!\d)0?([1-4])(?!\d)")


def _years(labels: pd.Series) -> pd.Series:
    distinct = {x: (int(m.group(1)) if (m := _YEAR.search(str(x))) else None) for x in pd.unique(labels)}
    return labels.map(distinct)


def _month_of(label: str) -> int | None:
    """A month label's number: the whole label ("Oct", "10"), a date ("2024-10-01": a date cell),
    else its one word that names a month ("01 October", "Octubre 2024", "mes de enero")."""
    number = codelists.month_number(label)
    if number is not None:
        return number
    if iso := re.fullmatch(r"\s*\d{4}-(\d{2})-\d{2}(?:[ T][\d:.]+)?\s*", str(label)):
        # A header cell that shows "01 October" is often a date cell: read as ISO text.
        return int(iso.group(1)) if 1 <= int(iso.group(1)) <= 12 else None
    found = {codelists.month_number(w) for w in re.findall(r"[^\W\d_]+\.?", str(label))} - {None}
    return found.pop() if len(found) == 1 else None


def _months(labels: pd.Series) -> pd.Series:
    distinct = {x: _month_of(str(x)) for x in pd.unique(labels)}
    return labels.map(distinct)


def _read_part(fs: FieldSpec, labels: pd.Series) -> pd.Series:
    """A period part's labels after its ``pattern`` (first group, else the match), ``map`` and
    ``default`` (for an empty label)."""
    if fs.pattern:
        rx = re.compile(fs.pattern)
        distinct = {}
        for x in pd.unique(labels):
            m = rx.search(str(x))
            distinct[x] = (m.group(1) if m.groups() else m.group(0)) if m else ""
        labels = labels.map(distinct)
    if fs.map:
        labels = labels.map(lambda x: fs.map.get(str(x).strip(), x))
    if fs.default is not None:
        labels = labels.map(lambda x: fs.default if str(x).strip() == "" else x)
    return labels


def _quarters(labels: pd.Series) -> pd.Series:
    roman = {"i": 1, "ii": 2, "iii": 3, "iv": 4}
    out = {}
    for x in pd.unique(labels):
        t = str(x).strip().lower()
        m = _QUARTER.search(t)
        out[x] = int(m.group(1)) if m else roman.get(t.split()[-1] if t else "")
    return labels.map(out)


def _month_end(year: int, month: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def periods(contract: Contract, table: pd.DataFrame, problems: list[Problem]) -> pd.DataFrame:
    """period_start, period_end, period_type, year, month of every record."""
    spec = contract.period
    cal = spec.calendar

    def part(fs: FieldSpec) -> pd.Series:
        if fs.value is not None:
            return _read_part(fs, pd.Series(fs.value, index=table.index, dtype=object))
        return _read_part(fs, table[fs.column].astype(str))

    def bad(mask: pd.Series, what: str, fs: FieldSpec, labels: pd.Series) -> None:
        for label in pd.unique(labels[mask]):
            hit = mask & (labels == label)
            problems.append(
                Problem(
                    "error",
                    "period_valid",
                    f"{what} {label!r} cannot be read as a {what}",
                    column=fs.column,
                    label=str(label),
                    count=_weight(table, hit),
                    rows=_first_rows(table, hit),
                )
            )

    if cal == "date":
        labels = part(spec.date)
        parsed = pd.to_datetime(labels, errors="coerce", format="mixed")
        bad(parsed.isna(), "date", spec.date, labels)
        year, month = parsed.dt.year, parsed.dt.month
        cal = "monthly"
    else:
        ylabels = part(spec.year)
        year = _years(ylabels)
        bad(year.isna(), "year", spec.year, ylabels)
        month = None
        if spec.month is not None:
            mlabels = part(spec.month)
            month = _months(mlabels)
            bad(month.isna(), "month", spec.month, mlabels)
        if spec.quarter is not None:
            qlabels = part(spec.quarter)
            quarter = _quarters(qlabels)
            bad(quarter.isna(), "quarter", spec.quarter, qlabels)
            month = (quarter - 1) * 3 + 1
    span = {}  # first_month / last_month: the months a yearly figure truly covers
    for name in ("first_month", "last_month"):
        fs = getattr(spec, name)
        if fs is not None:
            labels = part(fs)
            span[name] = _months(labels)
            bad(span[name].isna(), "month", fs, labels)
    ok = year.notna() & (month.notna() if month is not None else True)
    for values in span.values():
        ok = ok & values.notna()
    year = year.fillna(1900).astype("int64")
    month = month.fillna(1).astype("int64") if month is not None else pd.Series(1, index=table.index)
    if cal in ("us_fiscal_monthly", "us_fiscal_yearly"):
        # US fiscal year N runs from 1 October N-1 to 30 September N.
        if cal == "us_fiscal_monthly":
            year = year.where(month < 10, year - 1)
    first = span.get("first_month", pd.Series(0, index=table.index)).fillna(0).astype("int64")
    last = span.get("last_month", pd.Series(0, index=table.index)).fillna(0).astype("int64")
    keys = pd.DataFrame({"y": year, "m": month, "f": first, "l": last})
    out = {}
    for y, m, f, la in keys.drop_duplicates().itertuples(index=False):
        if cal in ("monthly", "us_fiscal_monthly"):
            out[(y, m, f, la)] = (dt.date(y, m, 1), _month_end(y, m), "M", m)
        elif cal == "quarterly":
            out[(y, m, f, la)] = (dt.date(y, m, 1), _month_end(y, m + 2), "Q", m)
        elif cal == "yearly":
            out[(y, m, f, la)] = (dt.date(y, f or 1, 1), _month_end(y, la or 12), "Y", 1)
        else:  # us_fiscal_yearly: a month from October on is of the calendar year before
            fm, lm = f or 10, la or 9
            start = dt.date(y - (fm >= 10), fm, 1)
            out[(y, m, f, la)] = (start, _month_end(y - (lm >= 10), lm), "Y", 10)
    mapped = [out[k] for k in zip(year, month, first, last, strict=True)]
    frame = pd.DataFrame(
        mapped, index=table.index, columns=["period_start", "period_end", "period_type", "month"]
    )
    frame["year"] = [p.year for p in frame["period_start"]]
    backwards = ok & (frame["period_end"] < frame["period_start"])
    if backwards.any():
        problems.append(
            Problem(
                "error",
                "period_valid",
                "the period's last month comes before its first month (first_month / last_month)",
                count=_weight(table, backwards),
                rows=_first_rows(table, backwards),
            )
        )
    frame["_ok"] = ok & ~backwards
    return frame


# ---------------------------------------------------------------------------- main


class Harmonized:
    """Canonical observations of one file: views in DuckDB, plus problems and controls."""

    def __init__(
        self,
        con,
        view: str,
        problems: list[Problem],
        controls_view: str | None,
        out_of_scope: int,
        constants: dict | None = None,
    ):
        self.con = con
        self.view = view
        self.problems = problems
        self.controls_view = controls_view
        self.out_of_scope = out_of_scope
        # Canonical columns that hold the same value in every observation of the file (the
        # contract's fixed codes, the file's parameters), as Python values.
        self.constants = constants or {}

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def frame(self) -> pd.DataFrame:
        """The observations materialized (small files and tests), dates as ``datetime.date``."""
        frame = fetch_df(self.con, f"SELECT * FROM {self.view} ORDER BY source_row, source_column, detail")
        for col in ("period_start", "period_end"):
            frame[col] = [d.date() if hasattr(d, "date") else d for d in frame[col]]
        frame["rounding_base"] = frame["rounding_base"].astype("Int64")
        return frame

    @property
    def controls(self) -> pd.DataFrame:
        if self.controls_view is None:
            return pd.DataFrame()
        return fetch_df(self.con, f"SELECT * FROM {self.controls_view} ORDER BY source_row, source_col")

    def count(self) -> int:
        return int(fetch_value(self.con, f"SELECT count(*) FROM {self.view}"))


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


def _no_data_rows(contract: Contract, con, view: str, ex) -> str:
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


def _gid_of(group_cols: list[str], cols: list[str]) -> int:
    """GROUPING() of a grouping set over ``group_cols``: a bit set for each column not grouped."""
    return sum(1 << (len(group_cols) - 1 - i) for i, c in enumerate(group_cols) if c not in cols)


def _merge_rows(lists) -> list[int]:
    return sorted(int(r) for rows in lists for r in rows)[:5]


def _grouped_over_rows(
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
    from transforms.engine import ident

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
        return raw[raw["_g"] == _gid_of(keys, cols)]

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
                _gid=_gid_of(group_cols, [c, "measure_index", "cell_role"])
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
        pieces.append(merged.assign(_gid=_gid_of(group_cols, ["value_raw"])))
    if period_cols:
        pieces.append(
            spread(part([*period_cols, "_is_total"]), period_cols, ["cell_role"]).assign(
                _gid=_gid_of(group_cols, [*period_cols, "cell_role"])
            )
        )
    pieces.append(
        spread(part(["_is_total"]), [], ["measure_index", "cell_role"]).assign(
            _gid=_gid_of(group_cols, ["measure_index", "cell_role"])
        )
    )
    grouped = pd.concat(pieces, ignore_index=True)
    for col in group_cols:
        if col not in grouped:
            grouped[col] = None
    grouped["measure_index"] = grouped["measure_index"].astype("Int64")  # NULL outside its sets
    return grouped[[*group_cols, "_n", "source_row", "_rows", "_gid"]]


def _label_columns(contract: Contract) -> list[str]:
    """Attributes whose labels the field and period specs read."""
    cols: list[str] = []
    specs = [*contract.fields.values(), *(contract.remainder or {}).values()]
    for m in contract.values.columns:
        specs.extend(m.fields.values())
    for part in ("year", "month", "quarter", "date", "first_month", "last_month"):
        spec = getattr(contract.period, part)
        if spec is not None:
            specs.append(spec)
    for spec in specs:
        if spec.column and spec.column not in cols and spec.column != "measure":
            cols.append(spec.column)
    return cols


def _harmonize(
    contract: Contract, con, view: str, sheet: str | None, ex=None, sink=None, gate=None
) -> Harmonized:
    from transforms.engine import ident, register_frame, small_table, temp_name

    problems: list[Problem] = []
    columns = set(columns_of(con, view))
    labels = _label_columns(contract)
    for col in labels:
        if col not in columns:
            raise KeyError(f"a field reads column '{col}', which the contract does not define")
    has_totals = (
        bool(contract.rows.total)
        or any(m.role == "total" for m in contract.values.columns)
        or bool(contract.values.melt and contract.values.melt.total)
    )

    # Contexts: which measure and which kind of cell (a leaf, or a total whose remainder is kept).
    roles_kept = ("value", "total", "total_row") if contract.remainder is not None else ("value",)
    period_cols = list(
        dict.fromkeys(
            getattr(contract.period, part).column
            for part in ("year", "month", "quarter", "date", "first_month", "last_month")
            if getattr(contract.period, part) is not None and getattr(contract.period, part).column
        )
    )
    # One pass: distinct labels per column and context, distinct raw values, distinct period
    # labels, each with its count of cells and first rows.
    group_cols = [*labels, "value_raw", "measure_index", "cell_role"]
    row_level = ex is not None and ex.rows_view is not None and set(labels) <= set(ex.row_attrs)
    if row_level:
        grouped = _grouped_over_rows(con, ex, labels, period_cols, group_cols)
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

    def grouping(cols: list[str]) -> pd.DataFrame:
        gid = sum(1 << (len(group_cols) - 1 - i) for i, c in enumerate(group_cols) if c not in cols)
        return grouped[grouped["_gid"] == gid].reset_index(drop=True)

    values = grouping(["value_raw"])
    contexts = grouping(["measure_index", "cell_role"])
    if contexts.empty or not (contexts["cell_role"] == "value").any():
        problems.append(Problem("error", "not_empty", _no_data_rows(contract, con, view, ex)))
    parsed = parse_values(
        values["value_raw"].astype(str),
        contract,
        problems,
        values["source_row"],
        values["_n"],
        values["_rows"],
    )
    vmap = pd.DataFrame(
        {"value_raw": values["value_raw"].astype(str), "value": parsed["value"], "action": parsed["action"]}
    )
    vname = small_table(con, vmap, "vmap")

    # Every (field, context) gets its spec; column specs map their column's distinct labels once.
    ctx_list = [
        (int(r.measure_index), str(r.cell_role))
        for r in contexts.itertuples()
        if r.cell_role == "value"
        or (contract.remainder is not None and r.cell_role in ("total", "total_row"))
    ]
    joins: list[str] = []
    field_sql: dict[str, str] = {}
    map_names: dict[tuple, str] = {}
    # Labels of the file's rows (not of its value columns) are joined on the rows, before they
    # become cells: a row of a record-level file carries several cells.
    row_level = set(ex.row_attrs) if ex is not None and ex.long_over is not None else set()
    row_joins: list[str] = []
    row_cols: list[str] = []
    role_cases: list[tuple[str, str]] = []
    for name in (*COUNTRY_FIELDS, "flow_type", "sex", "age_band", "unit", "obs_status", "reporter_role"):
        by_spec: dict[str, tuple[FieldSpec, list[tuple[int, str]]]] = {}
        for m_idx, role in ctx_list:
            measure = contract.values.columns[m_idx] if m_idx >= 0 else None
            remainder = role != "value"
            spec = contract.remainder.get(name) if remainder and contract.remainder else None
            spec = spec or contract.field_spec(name, measure)
            if spec is None:
                if name in DEFAULTS:
                    spec = FieldSpec(value=DEFAULTS[name])
                elif name == "reporter_role":
                    continue
                else:
                    where = measure.header if measure is not None else "the file's values"
                    raise KeyError(f"the contract gives no '{name}' for {where!r}")
            key = spec.model_dump_json()
            by_spec.setdefault(key, (spec, []))[1].append((m_idx, role))
        cases = []
        for spec, ctxs in by_spec.values():
            cond = " OR ".join(f"(l.measure_index = {m} AND l.cell_role = '{r}')" for m, r in ctxs)
            if spec.value is not None:
                expr = f"'{_sql_text(spec.value)}'"
            else:
                mkey = (name, spec.model_dump_json())
                if mkey not in map_names:
                    labels_of = grouping([spec.column, "measure_index", "cell_role"])
                    wanted = labels_of[
                        [
                            (int(m), str(r)) in ctxs
                            for m, r in zip(labels_of["measure_index"], labels_of["cell_role"], strict=True)
                        ]
                    ]
                    distinct = (
                        wanted.groupby(spec.column, sort=False)
                        .agg(
                            _n=("_n", "sum"), source_row=("source_row", "min"), _rows=("_rows", _concat_lists)
                        )
                        .reset_index()
                    )
                    distinct[spec.column] = distinct[spec.column].astype(str)
                    codes = map_field(name, spec, distinct, problems, contract)
                    frame = pd.DataFrame({"label": distinct[spec.column], "code": codes.astype(object)})
                    # The reporter's role a flow type implies travels with the flow type's code.
                    frame["role"] = frame["code"].map(_default_role).astype(object)
                    mname = small_table(con, frame, "map")
                    alias = f"m{len(map_names)}"
                    if spec.column in row_level:
                        row_joins.append(
                            f"LEFT JOIN {mname} {alias} ON {alias}.label = r.{ident(spec.column)}"
                        )
                        row_cols += [f"{alias}.code AS _{alias}_code", f"{alias}.role AS _{alias}_role"]
                        map_names[mkey] = f"l._{alias}_"
                    else:
                        joins.append(f"LEFT JOIN {mname} {alias} ON {alias}.label = l.{ident(spec.column)}")
                        map_names[mkey] = f"{alias}."
                expr = f"{map_names[mkey]}code"
            cases.append((cond, expr))
            if name == "flow_type":
                role_cases.append(
                    (
                        cond,
                        f"'{_sql_text(_default_role(spec.value) or '')}'"
                        if spec.value is not None
                        else f"{map_names[mkey]}role",
                    )
                )
        if not cases:
            field_sql[name] = "NULL"
        elif len(cases) == 1:
            field_sql[name] = cases[0][1]
        else:
            field_sql[name] = "CASE " + " ".join(f"WHEN {c} THEN {e}" for c, e in cases) + " END"

    # Periods: the distinct period labels, mapped once.
    if period_cols:
        plabels = grouping([*period_cols, "cell_role"])
        plabels = plabels[plabels["cell_role"].isin(roles_kept)]
        for c in period_cols:
            plabels[c] = plabels[c].astype(str)
        plabels = (
            plabels.groupby(period_cols, sort=False)
            .agg(_n=("_n", "sum"), source_row=("source_row", "min"), _rows=("_rows", _concat_lists))
            .reset_index()
        )
    else:
        plabels = pd.DataFrame(
            {"_n": [int(contexts["_n"].sum()) if not contexts.empty else 0], "source_row": [0], "_rows": [[]]}
        )
    per = periods(contract, plabels, problems)
    pmap = plabels[period_cols].copy() if period_cols else pd.DataFrame(index=plabels.index)
    for col in ("period_start", "period_end", "period_type", "year", "month"):
        pmap[f"p_{col}"] = per[col].values
    pmap["p_ok"] = per["_ok"].values
    pmap["p_period_start"] = pd.to_datetime(pmap["p_period_start"]).dt.date
    pmap["p_period_end"] = pd.to_datetime(pmap["p_period_end"]).dt.date
    pname = small_table(con, pmap, "pmap")
    if period_cols and set(period_cols) <= row_level:
        # Joined on the rows like their labels (a row with no period match keeps NULLs: p_ok fails).
        row_joins.append(
            f"LEFT JOIN {pname} p ON " + " AND ".join(f"p.{ident(c)} = r.{ident(c)}" for c in period_cols)
        )
        row_cols += [
            f"p.{c}" for c in ("p_period_start", "p_period_end", "p_period_type", "p_year", "p_month", "p_ok")
        ]
        pjoin, pp = "", "l."
    else:
        pjoin = (
            f"JOIN {pname} p ON " + " AND ".join(f"p.{ident(c)} = l.{ident(c)}" for c in period_cols)
            if period_cols
            else f"CROSS JOIN {pname} p"
        )
        pp = "p."
    if row_joins:
        # The long table again, over the rows with their labels' codes joined.
        rows_joined = temp_name("rows_coded")
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {rows_joined} AS SELECT r.*, {', '.join(row_cols)} "
            f"FROM {ex.rows_view} r {' '.join(row_joins)}"
        )
        coded = temp_name("long_coded")
        carried = [c.split(" AS ")[-1].split(".")[-1] for c in row_cols]
        con.execute(f"CREATE OR REPLACE TEMP VIEW {coded} AS {ex.long_over(rows_joined, carried)}")
        cells = coded
    else:
        cells = view
    if not role_cases:
        implied_role = "NULL"
    elif len(role_cases) == 1:
        implied_role = role_cases[0][1]
    else:
        implied_role = "CASE " + " ".join(f"WHEN {c} THEN {e}" for c, e in role_cases) + " END"
    params = register_frame(
        con,
        pd.DataFrame({"source_id": [contract.source_id], "sheet": [sheet], "rounding": [contract.rounding]}),
        "hprm",
    )
    role_sql = f"coalesce({field_sql['reporter_role']}, nullif({implied_role}, ''))"
    # One-row parameters as scalar subqueries (evaluated once; a cross join would copy every row).
    prm = {k: f"(SELECT {k} FROM {params})" for k in ("source_id", "sheet", "rounding")}
    detail = " , ".join(f"'{_sql_text(a)}=' || l.{ident(a)}" for a in contract.detail)
    detail_sql = f"concat_ws('; ', {detail})" if detail else "''"
    join_sql = "\n".join(joins)
    required = " AND ".join(
        f"({field_sql[n]}) IS NOT NULL"
        for n in (*COUNTRY_FIELDS, "flow_type", "sex", "age_band", "unit", "obs_status")
    )

    # What the small maps show to be one value for every observation is written as that value:
    # the canonical table does not store it (each stored column of 20 M observations costs
    # seconds to write, however well it compresses).
    null_int = "CAST(NULL AS INTEGER)"
    suppressed = bool((vmap["action"] == "suppressed").any())
    conf_sql = "CASE WHEN v.action = 'suppressed' THEN 'S' ELSE 'F' END" if suppressed else "'F'"
    kinds = pmap.loc[pmap["p_ok"].fillna(False).astype(bool), "p_period_type"]
    one_kind = kinds.notna().all() and kinds.nunique() == 1
    period_type_sql = _sql_literal(kinds.iloc[0]) if one_kind else f"{pp}p_period_type"

    def select(
        value_sql: str, status_sql: str, rounding_sql: str, detail_expr: str, extra_from: str, where: str
    ) -> tuple[list[tuple[str, str]], str]:
        """The canonical columns of one kind of cell, as (name, expression), and their FROM … WHERE."""
        columns = [
            ("source_id", prm["source_id"]),
            ("reporter_iso3", field_sql["reporter"]),
            ("flow_type", field_sql["flow_type"]),
            ("citizenship_iso3", field_sql["citizenship"]),
            ("counterpart_iso3", field_sql["counterpart"]),
            ("period_start", f"{pp}p_period_start"),
            ("period_end", f"{pp}p_period_end"),
            ("sex", field_sql["sex"]),
            ("age_band", field_sql["age_band"]),
            ("unit", field_sql["unit"]),
            ("detail", detail_expr),
            ("reporter_role", role_sql),
            ("period_type", period_type_sql),
            ("value", value_sql),
            ("obs_status", status_sql),
            ("conf_status", conf_sql),
            ("rounding_base", rounding_sql),
            ("source_sheet", prm["sheet"]),
            ("source_row", "l.source_row"),
            ("source_column", "l.source_column"),
            ("year", f"{pp}p_year"),
            ("month", f"{pp}p_month"),
        ]
        tail = f"""
            FROM {cells} l
            JOIN {vname} v ON v.value_raw = l.value_raw
            {pjoin}
            {join_sql}
            {extra_from}
            WHERE {pp}p_ok AND {required} AND {where}"""
        return columns, tail

    def sql_of(part: tuple[list[tuple[str, str]], str]) -> str:
        return "SELECT " + ", ".join(f"{e} AS {a}" for a, e in part[0]) + part[1]

    leaves_sql = select(
        "v.value",
        field_sql["obs_status"],
        f"CASE WHEN {prm['rounding']} IS NOT NULL AND v.action <> 'suppressed' AND v.value <> 0 "
        f"THEN CAST({prm['rounding']} AS INTEGER) END"
        if contract.rounding is not None
        else null_int,
        detail_sql,
        "",
        "l.cell_role = 'value' AND v.action <> 'missing'",
    )
    parts = [leaves_sql]
    # Expressions that read no cell (the contract's fixed codes, the file's parameters).
    # (Quoted literals count as fixed wherever this set is asked: ``_is_literal``.)
    fixed = {prm["source_id"], prm["sheet"], "NULL", null_int}
    if all(e in fixed or _is_literal(e) for e in (field_sql["reporter_role"], implied_role)):
        fixed.add(role_sql)
    controls_view = None
    if has_totals:
        # Every control as a view (``Harmonized.controls``); only those whose total differs from
        # its cells are stored: the reconciliation and the remainders read nothing else.
        controls_view = temp_name("controls")
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {controls_view} AS {_controls_sql(view, vname, ex, TABLE_KEY in columns)}"
        )
        differing = f"{work_schema(con)}.{temp_name('controls_off')}"
        con.execute(
            f"CREATE OR REPLACE TABLE {differing} AS SELECT * FROM {controls_view} WHERE remainder <> 0"
        )
        _reconcile(contract, con, differing, problems)
        # Remainders come from the stored controls whose total differs from their cells, both ways
        # (a negative one is within rounding, else the file is refused): none, no part.
        if contract.remainder is not None and fetch_value(con, f"SELECT count(*) FROM {differing}"):
            _remainder_share(contract, con, controls_view, differing, problems, ex)
            parts.append(
                select(
                    "ctl.remainder",
                    "'E'",
                    null_int,
                    f"CASE WHEN {detail_sql} = '' THEN 'remainder' ELSE {detail_sql} || '; remainder' END",
                    f"JOIN {differing} ctl ON ctl.source_row = l.source_row AND ctl.source_col = l.source_col",
                    "l.cell_role IN ('total', 'total_row') AND ctl.remainder <> 0",
                )
            )
    if ex is not None and ex.sheet_totals:  # totals published on another sheet of the workbook
        from transforms.stages.sheet_controls import check_sheet_totals

        check_sheet_totals(contract, con, view, vname, ex.sheet_totals, problems)
    if ex is not None and ex.block_totals is not None:  # a total table above the other blocks
        from transforms.stages.sheet_controls import check_block_totals

        check_block_totals(contract, con, view, vname, ex, problems)
    everything = temp_name("canon_all")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {everything} AS {' UNION ALL '.join(sql_of(p) for p in parts)}")
    # Columns with the same fixed expression in every kind of cell are not materialized: the
    # canonical view adds them back as typed constants (a 10 M-row file has 20 M observations,
    # and each stored column costs time however well it compresses).
    constant = [
        a
        for i, (a, e) in enumerate(parts[0][0])
        if (e in fixed or _is_literal(e)) and all(p[0][i][1] == e for p in parts[1:])
    ]
    # Materialized once (DuckDB spills past its memory limit): every later check and the load scan it.
    canon, out_of_scope = temp_name("canon"), 0
    member_codes = {m["iso3"] for m in codelists.members()}
    fixed_reporter = field_sql["reporter"].strip("'") if field_sql["reporter"].startswith("'") else None
    names = [a for a, _ in parts[0][0]]
    stored = [a for a in names if a not in constant] or names[:1]
    source = f"SELECT {', '.join(stored)} FROM {everything}"
    scoped = contract.reporter_scope == "members" and fixed_reporter not in member_codes
    if scoped:
        members = register_frame(con, pd.DataFrame({"iso3": sorted(member_codes)}), "members")
        source += f" WHERE reporter_iso3 IN (SELECT iso3 FROM {members})"
    types = dict(
        fetch_all(con, f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {everything})")
    )
    exprs = dict(parts[0][0])
    values = {}
    if constant:
        row = fetch_all(con, f"SELECT {', '.join(exprs[a] for a in constant)}")[0]
        values = dict(zip(constant, row, strict=True))
    if gate is not None:  # the last moment to stop before the observations are written
        gate()
    # A sink (the DuckDB warehouse, for a file whose periods it holds nothing of) stores the
    # observations where they are published, once: its relation then serves every later check.
    ok = pmap[pmap["p_ok"].fillna(False).astype(bool)]
    span = (min(ok["p_period_start"]), max(ok["p_period_end"])) if len(ok) else None
    table = (
        sink(source, {a: types[a] for a in stored}, {a: values[a] for a in constant}, span)
        if sink is not None and span is not None
        else None
    )
    if table is None and ex is not None and os.environ.get("OMH_CANON_PARQUET", "0") == "1":
        # A compressed Parquet file: bounded memory however many observations the file holds.
        path = ex.temp_file("canon")
        con.execute(f"COPY ({source}) TO '{_sql_text(path.as_posix())}' (FORMAT parquet, COMPRESSION zstd)")
        table = f"read_parquet('{_sql_text(path.as_posix())}')"
    elif table is None:
        table = f"{work_schema(con)}.{temp_name('canon_t')}"
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {source}")
    # The canonical view: the stored columns and the constants, in the canonical order and types.
    cols = [
        ident(a) if a in stored else f"CAST({_sql_literal(values[a])} AS {types[a]}) AS {ident(a)}"
        for a in names
    ]
    con.execute(f"CREATE OR REPLACE TEMP VIEW {canon} AS SELECT {', '.join(cols)} FROM {table}")
    if scoped:
        total = fetch_value(con, f"SELECT count(*) FROM {everything}")
        out_of_scope = int(total - fetch_value(con, f"SELECT count(*) FROM {canon}"))
    _check_keys(con, canon, problems)
    _check_jumps(con, canon, problems)
    return Harmonized(
        con, canon, problems, controls_view, out_of_scope, {a: values[a] for a in constant if a not in stored}
    )


_LITERAL = re.compile(r"^'(?:[^']|'')*'$")


def _is_literal(sql: str) -> bool:
    """A quoted SQL string, as ``_sql_text`` writes the contract's fixed values."""
    return bool(_LITERAL.match(sql.strip()))


def _sql_literal(value) -> str:
    return "NULL" if value is None else f"'{_sql_text(str(value))}'"


def _concat_lists(lists) -> list:
    return [x for item in lists for x in item]


def _default_role(flow_type) -> str | None:
    """The reporter's role a flow type implies (a sub-type inherits its root's)."""
    roles = {r["code"]: r.get("reporter_role") for r in codelists.load("flow_types")}
    return roles.get(flow_type) or roles.get(str(flow_type).split(".")[0])


def _sql_text(text: str) -> str:
    return str(text).replace("'", "''")


_EMPTY_CANONICAL = (
    ", ".join(
        f"CAST(NULL AS {t}) AS {c}"
        for c, t in (
            ("source_id", "VARCHAR"),
            ("reporter_iso3", "VARCHAR"),
            ("flow_type", "VARCHAR"),
            ("citizenship_iso3", "VARCHAR"),
            ("counterpart_iso3", "VARCHAR"),
            ("period_start", "DATE"),
            ("period_end", "DATE"),
            ("sex", "VARCHAR"),
            ("age_band", "VARCHAR"),
            ("unit", "VARCHAR"),
            ("detail", "VARCHAR"),
            ("reporter_role", "VARCHAR"),
            ("period_type", "VARCHAR"),
            ("value", "DOUBLE"),
            ("obs_status", "VARCHAR"),
            ("conf_status", "VARCHAR"),
            ("rounding_base", "INTEGER"),
            ("source_sheet", "VARCHAR"),
            ("source_row", "BIGINT"),
            ("source_column", "VARCHAR"),
            ("year", "BIGINT"),
            ("month", "BIGINT"),
        )
    )
    + " WHERE FALSE"
)


# The layout step's attribute numbering the tables of a file (``readers.layout``).
TABLE_KEY = "_table"
_CONTROL_COLUMNS = "source_row, source_col, source_column, scope, total, parts, cells, suppressed, remainder"


def _controls_sql(view: str, vname: str, ex, tables: bool = False) -> str:
    """The source's own totals beside the sum of the leaves each covers.

    A total column covers the leaves of its row: with the file's rows at hand (``ex``), that sum is
    taken across the row's value columns, with no grouping over millions of rows. A total row
    covers the leaves of its column: few groups, taken from the long table; with ``tables`` (the
    long table has the column ``_table``: blocks, sheets), within its own table only, whether the
    long table comes from ``extract`` or as a DataFrame.
    """
    from transforms.engine import register_frame

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


def _reconcile(contract: Contract, con, controls: str, problems: list[Problem]) -> None:
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


def _remainder_share(contract: Contract, con, controls: str, differing: str, problems, ex) -> None:
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


def _check_keys(con, canon: str, problems: list[Problem]) -> None:
    from transforms.engine import duplicate_groups

    dup = duplicate_groups(con, canon, KEY_COLUMNS)
    if len(dup):
        n = int(dup["_n"].sum())
        problems.append(
            Problem(
                "error",
                "key_unique",
                f"{n} observations share their key (exact duplicate rows, or a breakdown "
                "the contract does not keep in 'detail')",
                count=n,
                rows=sorted(int(r) for rows in dup["_rows"] for r in rows)[:5],
            )
        )


# A period this many times above (or below) the median of its series is implausible.
JUMP_FACTOR = 10
JUMP_MIN_DIFFERENCE = 1000


def _check_jumps(con, canon: str, problems: list[Problem]) -> None:
    """Warn about a period far outside the rest of its series (a typo, a unit change, a lost row)."""
    series = fetch_df(
        con,
        f"""SELECT reporter_iso3, flow_type, unit, period_type, period_start, sum(value) AS value,
                   min(source_row) AS first_row
            FROM {canon} GROUP BY ALL ORDER BY ALL""",
    )
    for key, values in series.groupby(["reporter_iso3", "flow_type", "unit", "period_type"], sort=False):
        if len(values) < 4:
            continue
        median = float(values["value"].median())
        v = values["value"]
        far = values[
            ((v - median).abs() >= JUMP_MIN_DIFFERENCE)
            & ((v > JUMP_FACTOR * max(median, 1)) | (v * JUMP_FACTOR < median))
        ]
        if far.empty:
            continue
        listed = ", ".join(
            f"{pd.Timestamp(r.period_start).date()}: {full_number(r.value)}" for r in far.head(4).itertuples()
        )
        listed += " ..." if len(far) > 4 else ""
        problems.append(
            Problem(
                "warning",
                "jump",
                f"{key[0]} {key[1]}: {len(far)} period(s) more than {JUMP_FACTOR}x away from the series "
                f"median {full_number(median)} {key[2]} ({listed})",
                label=full_number(far["value"].iloc[0]),
                count=len(far),
                rows=[int(far["first_row"].iloc[0])],
            )
        )
