"""Harmonize: a contract's long table -> canonical observations (see DOMAIN.md).

Every canonical field is computed from the contract's field specs by mapping the *distinct*
labels of a column once (a file of millions of rows has a few hundred labels), so unknown
labels are reported with their count and first rows, and the work stays proportional to
the number of labels. Knows nothing of file formats or storage.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from transforms import codelists
from transforms.contracts import Contract, FieldSpec

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


@dataclass
class Problem:
    """One finding about a file, with enough to act on it."""

    severity: str  # "error" refuses the file, "warning" travels with it
    check: str
    message: str
    column: str | None = None
    label: str | None = None
    count: int = 0
    rows: list[int] = field(default_factory=list)

    def one_line(self, file_name: str) -> str:
        where = f"row {self.rows[0]}" if self.rows else ""
        col = f"column {self.column!r}" if self.column else ""
        loc = ", ".join(x for x in (where, col) if x)
        return f"{file_name}: {loc + ': ' if loc else ''}{self.message}"


@dataclass
class Harmonized:
    frame: pd.DataFrame
    problems: list[Problem]
    controls: pd.DataFrame
    out_of_scope: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


# ---------------------------------------------------------------------------- values


def parse_values(raw: pd.Series, contract: Contract, problems: list[Problem], rows: pd.Series) -> pd.DataFrame:
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
                count=int(hit.sum()),
                rows=rows[hit].head(5).tolist(),
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
        codelists.country_resolver(tuple(sorted(spec.map.items())))
        if codelist == "countries"
        else None
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
                f"unknown {name} label {label!r}" if label.strip() else f"empty {name} label",
                column=_file_column(spec.column, table),
                label=label,
                count=int(hit.sum()),
                rows=table.loc[hit, "source_row"].head(5).tolist(),
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
                    count=int(hit.sum()),
                    rows=table.loc[hit, "source_row"].head(5).tolist(),
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


def _months(labels: pd.Series) -> pd.Series:
    distinct = {x: codelists.month_number(str(x)) for x in pd.unique(labels)}
    return labels.map(distinct)


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
            return pd.Series(fs.value, index=table.index, dtype=object)
        return table[fs.column].astype(str)

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
                    count=int(hit.sum()),
                    rows=table.loc[hit, "source_row"].head(5).tolist(),
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
    ok = year.notna() & (month.notna() if month is not None else True)
    year = year.fillna(1900).astype("int64")
    month = month.fillna(1).astype("int64") if month is not None else pd.Series(1, index=table.index)
    if cal in ("us_fiscal_monthly", "us_fiscal_yearly"):
        # US fiscal year N runs from 1 October N-1 to 30 September N.
        if cal == "us_fiscal_monthly":
            year = year.where(month < 10, year - 1)
    keys = pd.DataFrame({"y": year, "m": month})
    out = {}
    for (y, m) in keys.drop_duplicates().itertuples(index=False):
        if cal in ("monthly", "us_fiscal_monthly"):
            out[(y, m)] = (dt.date(y, m, 1), _month_end(y, m), "M", m)
        elif cal == "quarterly":
            out[(y, m)] = (dt.date(y, m, 1), _month_end(y, m + 2), "Q", m)
        elif cal == "yearly":
            out[(y, m)] = (dt.date(y, 1, 1), dt.date(y, 12, 31), "Y", 1)
        else:  # us_fiscal_yearly
            out[(y, m)] = (dt.date(y - 1, 10, 1), dt.date(y, 9, 30), "Y", 10)
    mapped = [out[k] for k in zip(year, month, strict=True)]
    frame = pd.DataFrame(mapped, index=table.index, columns=["period_start", "period_end", "period_type", "month"])
    frame["year"] = [p.year for p in frame["period_start"]]
    frame["_ok"] = ok
    return frame


# ---------------------------------------------------------------------------- main


def _fields_for(contract: Contract, table: pd.DataFrame, problems: list[Problem], remainder: bool) -> pd.DataFrame:
    """Every canonical field, honouring per-measure and remainder overrides."""
    out = pd.DataFrame(index=table.index)
    groups = table.groupby("measure_index", sort=False).groups if len(table) else {}
    for name in (*COUNTRY_FIELDS, "flow_type", "sex", "age_band", "unit", "obs_status", "reporter_role"):
        series = pd.Series(None, index=table.index, dtype=object)
        for m_idx, index in groups.items():
            measure = contract.values.columns[m_idx] if m_idx >= 0 else None
            spec = None
            if remainder and contract.remainder and name in contract.remainder:
                spec = contract.remainder[name]
            spec = spec or contract.field_spec(name, measure)
            if spec is None:
                if name in DEFAULTS:
                    spec = FieldSpec(value=DEFAULTS[name])
                elif name == "reporter_role":
                    continue
                else:
                    raise KeyError(f"the contract gives no '{name}' for column {table.loc[index[0], 'measure']!r}")
            series.loc[index] = map_field(name, spec, table.loc[index], problems, contract).values
        out[name] = series
    return out


def harmonize(
    contract: Contract, table: pd.DataFrame, sheet: str | None, headers: dict[str, str] | None = None
) -> Harmonized:
    """Long table of one file -> canonical observations, controls and problems.

    ``headers`` maps the contract's attribute names to the columns as the file names them, so
    that messages speak the file's language; the contract's ``severity`` map is applied last.
    """
    result = _harmonize(contract, table, sheet)
    for p in result.problems:
        p.severity = contract.severity_of(p.check, p.severity)
        if headers and p.column in headers:
            p.column = headers[p.column]
    return result


def _harmonize(contract: Contract, table: pd.DataFrame, sheet: str | None) -> Harmonized:
    problems: list[Problem] = []
    if table.empty:
        problems.append(Problem("error", "not_empty", "the file holds no data rows"))
        return Harmonized(pd.DataFrame(columns=CANONICAL_COLUMNS), problems, pd.DataFrame())
    parsed = parse_values(table["value_raw"], contract, problems, table["source_row"])
    table = table.assign(value=parsed["value"], action=parsed["action"])
    # Missing cells are not observations; suppressed ones are (value unknown, flagged).
    table = table[table["action"] != "missing"]
    leaves = table[table["cell_role"] == "value"]
    totals = table[table["cell_role"].isin(["total", "total_row"])]

    frame = _canonical(contract, leaves, problems, remainder=False, sheet=sheet)
    controls = _controls(leaves, totals)
    if not controls.empty:
        frame = _reconcile(contract, frame, totals, controls, problems, sheet)
    frame, out_of_scope = _scope(contract, frame)
    _check_keys(frame, problems)
    _check_jumps(frame, problems)
    return Harmonized(frame.reset_index(drop=True), problems, controls, out_of_scope)


def _reconcile(
    contract: Contract,
    frame: pd.DataFrame,
    totals: pd.DataFrame,
    controls: pd.DataFrame,
    problems: list[Problem],
    sheet: str | None,
) -> pd.DataFrame:
    """Compare the source's own totals with its cells; keep a declared remainder as an observation.

    Rounded cells may each be off by half the rounding base, and a suppressed cell hides up to
    one rounding base: within that, a disagreement is a warning; beyond it, an error.
    """
    base = contract.rounding or 0
    rest = controls[controls["remainder"] != 0]
    low = -(base / 2) * rest["cells"]
    high = (base / 2) * rest["cells"] + base * rest["suppressed"]
    keep_remainder = contract.remainder is not None
    for row, lo, hi in zip(rest.itertuples(), low, high, strict=True):
        if row.remainder < lo or (row.remainder > hi and not keep_remainder):
            problems.append(
                Problem(
                    "error",
                    "total_matches",
                    f"the source's own total {row.total:g} but its cells sum to {row.parts:g} "
                    f"(difference {row.remainder:+g}, beyond the rounding the contract declares)",
                    column=row.source_column,
                    label=f"{row.total:g}",
                    rows=[row.source_row],
                )
            )
        elif not keep_remainder or row.remainder < 0:
            problems.append(
                Problem(
                    "warning",
                    "total_within_rounding",
                    f"the source's own total {row.total:g} differs from its cells' sum {row.parts:g} "
                    f"by {row.remainder:+g}, within rounding",
                    column=row.source_column,
                    rows=[row.source_row],
                )
            )
    if not keep_remainder:
        return frame
    positive = rest[rest["remainder"] > 0]
    cells = totals.loc[positive["total_index"]]
    if cells.empty:
        return frame
    cells = cells.assign(value=positive["remainder"].to_numpy())
    extra = _canonical(contract, cells, problems, remainder=True, sheet=sheet)
    extra["obs_status"] = "E"
    extra["rounding_base"] = pd.NA
    # The part of a total that no published cell carries (unstated, suppressed, rounding).
    extra["detail"] = np.where(extra["detail"] == "", "remainder", extra["detail"] + "; remainder")
    return pd.concat([frame, extra], ignore_index=True)


def _canonical(
    contract: Contract, table: pd.DataFrame, problems: list[Problem], remainder: bool, sheet: str | None
) -> pd.DataFrame:
    fields = _fields_for(contract, table, problems, remainder)
    per = periods(contract, table, problems)
    role = fields["reporter_role"]
    if role.isna().any():
        roles = {r["code"]: r.get("reporter_role") for r in codelists.load("flow_types")}
        role = role.fillna(fields["flow_type"].map(lambda c: roles.get(c) or roles.get(str(c).split(".")[0])))
    detail = pd.Series("", index=table.index, dtype=object)
    for attr in contract.detail:
        part = attr + "=" + table[attr].astype(str)
        detail = detail.where(detail == "", detail + "; ") + part
    suppressed = table["action"] == "suppressed"
    conf = np.where(suppressed, "S", "F")
    rounding = contract.rounding
    rounded = (~suppressed) & (table["value"] != 0) if rounding else pd.Series(False, index=table.index)
    frame = pd.DataFrame(
        {
            "source_id": contract.source_id,
            "reporter_iso3": fields["reporter"],
            "flow_type": fields["flow_type"],
            "citizenship_iso3": fields["citizenship"],
            "counterpart_iso3": fields["counterpart"],
            "period_start": per["period_start"],
            "period_end": per["period_end"],
            "sex": fields["sex"],
            "age_band": fields["age_band"],
            "unit": fields["unit"],
            "detail": detail,
            "reporter_role": role,
            "period_type": per["period_type"],
            "value": table["value"],
            "obs_status": fields["obs_status"],
            "conf_status": conf,
            "rounding_base": pd.array(np.where(rounded, rounding or 0, 0), dtype="Int64"),
            "source_sheet": sheet,
            "source_row": table["source_row"].astype("int64"),
            "source_column": table["source_column"],
            "year": per["year"],
            "month": per["month"],
        },
        index=table.index,
    )
    frame.loc[frame["rounding_base"] == 0, "rounding_base"] = pd.NA
    return frame


def _controls(leaves: pd.DataFrame, totals: pd.DataFrame) -> pd.DataFrame:
    """The source's own totals beside the sum of the leaves they cover."""
    if totals.empty:
        return pd.DataFrame()
    cells = pd.DataFrame(
        {
            "sum": leaves["value"].fillna(0),
            "count": 1,
            "suppressed": (leaves["action"] == "suppressed").astype(int),
        }
    )
    by_row = cells.groupby(leaves["source_row"]).sum()
    by_col = cells.groupby(leaves["source_col"]).sum()
    rows = []
    for idx, t in totals.iterrows():
        agg = by_row if t["cell_role"] == "total" else by_col
        key = t["source_row"] if t["cell_role"] == "total" else t["source_col"]
        parts, count, hidden = agg.loc[key].tolist() if key in agg.index else (0.0, 0, 0)
        total = 0.0 if pd.isna(t["value"]) else float(t["value"])
        rows.append(
            {
                "total_index": idx,
                "scope": "row" if t["cell_role"] == "total" else "column",
                "source_row": int(t["source_row"]),
                "source_column": t["source_column"],
                "total": total,
                "parts": float(parts),
                "cells": int(count),
                "suppressed": int(hidden),
                "remainder": total - float(parts),
            }
        )
    return pd.DataFrame(rows)


def _scope(contract: Contract, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep observations whose reporter is a member state (when the contract says so)."""
    if contract.reporter_scope != "members" or frame.empty:
        return frame, 0
    member = {m["iso3"] for m in codelists.members()}
    inside = frame["reporter_iso3"].isin(member)
    return frame[inside], int((~inside).sum())


def _check_keys(frame: pd.DataFrame, problems: list[Problem]) -> None:
    dup = frame.duplicated(KEY_COLUMNS, keep=False)
    if dup.any():
        rows = frame.loc[dup, "source_row"].head(5).tolist()
        problems.append(
            Problem(
                "error",
                "key_unique",
                f"{int(dup.sum())} observations share their key (exact duplicate rows, or a breakdown "
                "the contract does not keep in 'detail')",
                count=int(dup.sum()),
                rows=rows,
            )
        )


# A period this many times above (or below) the median of its series is implausible.
JUMP_FACTOR = 10
JUMP_MIN_DIFFERENCE = 1000


def _check_jumps(frame: pd.DataFrame, problems: list[Problem]) -> None:
    """Warn about a period far outside the rest of its series (a typo, a unit change, a lost row)."""
    if frame.empty:
        return
    series = frame.groupby(["reporter_iso3", "flow_type", "unit", "period_type", "period_start"])["value"].sum()
    for key, values in series.groupby(level=[0, 1, 2, 3]):
        if len(values) < 4:
            continue
        median = float(values.median())
        far = [
            (start, v)
            for (*_, start), v in values.items()
            if abs(v - median) >= JUMP_MIN_DIFFERENCE and (v > JUMP_FACTOR * max(median, 1) or v * JUMP_FACTOR < median)
        ]
        if not far:
            continue
        start, v = far[0]
        rows = frame.loc[
            (frame["reporter_iso3"] == key[0]) & (frame["flow_type"] == key[1]) & (frame["period_start"] == start),
            "source_row",
        ]
        listed = ", ".join(f"{s}: {x:g}" for s, x in far[:4]) + (" ..." if len(far) > 4 else "")
        problems.append(
            Problem(
                "warning",
                "jump",
                f"{key[0]} {key[1]}: {len(far)} period(s) more than {JUMP_FACTOR}x away from the series "
                f"median {median:g} {key[2]} ({listed})",
                label=f"{v:g}",
                count=len(far),
                rows=rows.head(3).tolist(),
            )
        )
