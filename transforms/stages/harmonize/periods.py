"""Periods: the distinct period labels of a file -> start, end, type, year and month, under the
contract's calendar (monthly, quarterly, yearly, US fiscal, dates)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import pandas as pd

from transforms.contracts import codelists
from transforms.contracts.model import Contract, FieldSpec
from transforms.engine import ident, small_table
from transforms.problems import Problem
from transforms.stages.harmonize.grouping import Distinct, first_rows, weight
from transforms.stages.harmonize.model import roles_kept
from transforms.stages.harmonize.sql import concat_lists, sql_literal

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
    """period_start, period_end, period_type, year, month of every record (``_ok``: readable)."""
    parts = _Parts(contract, table, problems)
    cal, year, month = parts.year_and_month()
    first, last = parts.months("first_month"), parts.months("last_month")
    ok = year.notna() & (month.notna() if month is not None else True)
    for values in (first, last):
        ok = ok & (values.notna() if values is not None else True)
    year = year.fillna(1900).astype("int64")
    month = month.fillna(1).astype("int64") if month is not None else pd.Series(1, index=table.index)
    if cal == "us_fiscal_monthly":  # US fiscal year N runs from 1 October N-1 to 30 September N
        year = year.where(month < 10, year - 1)
    first, last = (
        (s if s is not None else pd.Series(0, index=table.index)).fillna(0).astype("int64")
        for s in (first, last)
    )
    frame = _period_frame(cal, year, month, first, last, table.index)
    backwards = ok & (frame["period_end"] < frame["period_start"])
    if backwards.any():
        problems.append(
            Problem(
                "error",
                "period_valid",
                "the period's last month comes before its first month (first_month / last_month)",
                count=weight(table, backwards),
                rows=first_rows(table, backwards),
            )
        )
    frame["_ok"] = ok & ~backwards
    return frame


class _Parts:
    """The period parts of a contract read from the distinct labels of ``table``; a label that
    cannot be read is a ``period_valid`` problem with its count and first rows."""

    def __init__(self, contract: Contract, table: pd.DataFrame, problems: list[Problem]):
        self.spec, self.table, self.problems = contract.period, table, problems

    def labels(self, fs: FieldSpec) -> pd.Series:
        if fs.value is not None:
            return _read_part(fs, pd.Series(fs.value, index=self.table.index, dtype=object))
        return _read_part(fs, self.table[fs.column].astype(str))

    def bad(self, mask: pd.Series, what: str, fs: FieldSpec, labels: pd.Series) -> None:
        for label in pd.unique(labels[mask]):
            hit = mask & (labels == label)
            self.problems.append(
                Problem(
                    "error",
                    "period_valid",
                    f"{what} {label!r} cannot be read as a {what}",
                    column=fs.column,
                    label=str(label),
                    count=weight(self.table, hit),
                    rows=first_rows(self.table, hit),
                )
            )

    def read(self, fs: FieldSpec, what: str, parse) -> pd.Series:
        labels = self.labels(fs)
        values = parse(labels)
        self.bad(values.isna(), what, fs, labels)
        return values

    def year_and_month(self) -> tuple[str, pd.Series, pd.Series | None]:
        """(calendar, year, month): from a date, or from year, month and quarter parts (a quarter
        is its first month; a date calendar reads as monthly)."""
        spec = self.spec
        if spec.calendar == "date":
            parsed = self.read(
                spec.date, "date", lambda s: pd.to_datetime(s, errors="coerce", format="mixed")
            )
            return "monthly", parsed.dt.year, parsed.dt.month
        year = self.read(spec.year, "year", _years)
        month = self.read(spec.month, "month", _months) if spec.month is not None else None
        if spec.quarter is not None:
            month = (self.read(spec.quarter, "quarter", _quarters) - 1) * 3 + 1
        return spec.calendar, year, month

    def months(self, name: str) -> pd.Series | None:
        """``first_month`` / ``last_month``: the months a yearly figure truly covers."""
        fs = getattr(self.spec, name)
        return self.read(fs, "month", _months) if fs is not None else None


def _period_frame(cal: str, year, month, first, last, index) -> pd.DataFrame:
    """Each record's period under calendar ``cal``, computed once per distinct (year, month,
    first month, last month)."""
    keys = pd.DataFrame({"y": year, "m": month, "f": first, "l": last})
    out = {k: _period(cal, *k) for k in keys.drop_duplicates().itertuples(index=False, name=None)}
    mapped = [out[k] for k in zip(year, month, first, last, strict=True)]
    frame = pd.DataFrame(mapped, index=index, columns=["period_start", "period_end", "period_type", "month"])
    frame["year"] = [p.year for p in frame["period_start"]]
    return frame


def _period(cal: str, y: int, m: int, f: int, la: int) -> tuple:
    """(start, end, type, month) of one period; ``f``/``la``: first and last month, 0 when unset."""
    if cal in ("monthly", "us_fiscal_monthly"):
        return dt.date(y, m, 1), _month_end(y, m), "M", m
    if cal == "quarterly":
        return dt.date(y, m, 1), _month_end(y, m + 2), "Q", m
    if cal == "yearly":
        return dt.date(y, f or 1, 1), _month_end(y, la or 12), "Y", 1
    # us_fiscal_yearly: a month from October on is of the calendar year before
    fm, lm = f or 10, la or 9
    return dt.date(y - (fm >= 10), fm, 1), _month_end(y - (lm >= 10), lm), "Y", 10


@dataclass
class PeriodMap:
    """The distinct period labels of a file mapped once, and how the canonical SELECT reads them."""

    join: str  # the JOIN of the map on the cells ('' when it is joined on the rows)
    prefix: str  # where the SELECT finds the p_* columns: the map ('p.') or the coded cells ('l.')
    type_sql: str  # period_type: a literal when every period is of one kind
    span: tuple | None  # (first start, last end) of the periods read, None when none is
    row_joins: list[str] = field(default_factory=list)
    row_cols: list[str] = field(default_factory=list)


_MAPPED = ("p_period_start", "p_period_end", "p_period_type", "p_year", "p_month", "p_ok")


def _period_labels(distinct: Distinct, contexts: pd.DataFrame, kept: tuple) -> pd.DataFrame:
    """The distinct period labels of the kept cells (one row for the whole file when the period
    is fixed by the contract), with their counts and first rows."""
    period_cols = distinct.period_cols
    if not period_cols:
        cells = int(contexts["_n"].sum()) if not contexts.empty else 0
        return pd.DataFrame({"_n": [cells], "source_row": [0], "_rows": [[]]})
    plabels = distinct.of([*period_cols, "cell_role"])
    plabels = plabels[plabels["cell_role"].isin(kept)]
    for c in period_cols:
        plabels[c] = plabels[c].astype(str)
    return (
        plabels.groupby(period_cols, sort=False)
        .agg(_n=("_n", "sum"), source_row=("source_row", "min"), _rows=("_rows", concat_lists))
        .reset_index()
    )


def period_map(
    contract: Contract,
    con,
    distinct: Distinct,
    contexts: pd.DataFrame,
    row_level: set[str],
    problems: list[Problem],
) -> PeriodMap:
    """Map the file's distinct period labels once into a table the canonical SELECT joins."""
    period_cols = distinct.period_cols
    plabels = _period_labels(distinct, contexts, roles_kept(contract))
    per = periods(contract, plabels, problems)
    pmap = plabels[period_cols].copy() if period_cols else pd.DataFrame(index=plabels.index)
    for col in ("period_start", "period_end", "period_type", "year", "month"):
        pmap[f"p_{col}"] = per[col].values
    pmap["p_ok"] = per["_ok"].values
    pmap["p_period_start"] = pd.to_datetime(pmap["p_period_start"]).dt.date
    pmap["p_period_end"] = pd.to_datetime(pmap["p_period_end"]).dt.date
    pname = small_table(con, pmap, "pmap")
    ok = pmap[pmap["p_ok"].fillna(False).astype(bool)]
    span = (min(ok["p_period_start"]), max(ok["p_period_end"])) if len(ok) else None
    if period_cols and set(period_cols) <= row_level:
        # Joined on the rows like their labels (a row with no period match keeps NULLs: p_ok fails).
        on = " AND ".join(f"p.{ident(c)} = r.{ident(c)}" for c in period_cols)
        found = PeriodMap("", "l.", "", span, [f"LEFT JOIN {pname} p ON {on}"], [f"p.{c}" for c in _MAPPED])
    elif period_cols:
        on = " AND ".join(f"p.{ident(c)} = l.{ident(c)}" for c in period_cols)
        found = PeriodMap(f"JOIN {pname} p ON {on}", "p.", "", span)
    else:
        found = PeriodMap(f"CROSS JOIN {pname} p", "p.", "", span)
    kinds = ok["p_period_type"]
    one_kind = kinds.notna().all() and kinds.nunique() == 1
    found.type_sql = sql_literal(kinds.iloc[0]) if one_kind else f"{found.prefix}p_period_type"
    return found
