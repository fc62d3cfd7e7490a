"""The canonical observations of one file: the SELECT over its coded cells (leaves, and the
remainders of totals), materialized once, with what is the same for every observation kept as a
constant instead of a column."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pandas as pd

from transforms.contracts import codelists
from transforms.contracts.model import Contract
from transforms.engine import fetch_all, fetch_value, ident, register_frame, temp_name, work_schema
from transforms.stages.harmonize.labels import Fields
from transforms.stages.harmonize.model import COUNTRY_FIELDS
from transforms.stages.harmonize.periods import PeriodMap
from transforms.stages.harmonize.sql import is_literal, sql_literal, sql_text
from transforms.stages.harmonize.values import ValueMap

NULL_INT = "CAST(NULL AS INTEGER)"
# A part of the canonical SELECT: its columns as (name, expression), and its FROM … WHERE.
Part = tuple[list[tuple[str, str]], str]


@dataclass
class CanonicalSelect:
    """How one kind of cell (a leaf, a total's remainder) becomes canonical observations."""

    contract: Contract
    fields: Fields
    period: PeriodMap
    cells: str  # the (coded) long table
    values: ValueMap
    prm: dict[str, str]  # the file's parameters, as scalar subqueries
    role_sql: str
    detail_sql: str
    fixed: set[str] = field(default_factory=set)  # expressions that read no cell

    @classmethod
    def build(
        cls, contract: Contract, con, sheet, fields: Fields, period: PeriodMap, cells: str, values: ValueMap
    ) -> CanonicalSelect:
        params = register_frame(
            con,
            pd.DataFrame(
                {"source_id": [contract.source_id], "sheet": [sheet], "rounding": [contract.rounding]}
            ),
            "hprm",
        )
        # One-row parameters as scalar subqueries (evaluated once; a cross join would copy every row).
        prm = {k: f"(SELECT {k} FROM {params})" for k in ("source_id", "sheet", "rounding")}
        role_sql = f"coalesce({fields.sql['reporter_role']}, nullif({fields.implied_role}, ''))"
        detail = " , ".join(f"'{sql_text(a)}=' || l.{ident(a)}" for a in contract.detail)
        detail_sql = f"concat_ws('; ', {detail})" if detail else "''"
        # Expressions that read no cell (the contract's fixed codes, the file's parameters).
        # (Quoted literals count as fixed wherever this set is asked: ``is_literal``.)
        fixed = {prm["source_id"], prm["sheet"], "NULL", NULL_INT}
        if all(e in fixed or is_literal(e) for e in (fields.sql["reporter_role"], fields.implied_role)):
            fixed.add(role_sql)
        return cls(contract, fields, period, cells, values, prm, role_sql, detail_sql, fixed)

    def _part(
        self,
        value_sql: str,
        status_sql: str,
        rounding_sql: str,
        detail_expr: str,
        extra_from: str,
        where: str,
    ) -> Part:
        f, pp = self.fields.sql, self.period.prefix
        conf = "CASE WHEN v.action = 'suppressed' THEN 'S' ELSE 'F' END" if self.values.suppressed else "'F'"
        columns = [
            ("source_id", self.prm["source_id"]),
            ("reporter_iso3", f["reporter"]),
            ("flow_type", f["flow_type"]),
            ("citizenship_iso3", f["citizenship"]),
            ("counterpart_iso3", f["counterpart"]),
            ("period_start", f"{pp}p_period_start"),
            ("period_end", f"{pp}p_period_end"),
            ("sex", f["sex"]),
            ("age_band", f["age_band"]),
            ("unit", f["unit"]),
            ("detail", detail_expr),
            ("reporter_role", self.role_sql),
            ("period_type", self.period.type_sql),
            ("value", value_sql),
            ("obs_status", status_sql),
            ("conf_status", conf),
            ("rounding_base", rounding_sql),
            ("source_sheet", self.prm["sheet"]),
            ("source_row", "l.source_row"),
            ("source_column", "l.source_column"),
            ("year", f"{pp}p_year"),
            ("month", f"{pp}p_month"),
        ]
        required = " AND ".join(
            f"({f[n]}) IS NOT NULL"
            for n in (*COUNTRY_FIELDS, "flow_type", "sex", "age_band", "unit", "obs_status")
        )
        joins = "\n".join(self.fields.joins)
        tail = f"""
            FROM {self.cells} l
            JOIN {self.values.name} v ON v.value_raw = l.value_raw
            {self.period.join}
            {joins}
            {extra_from}
            WHERE {pp}p_ok AND {required} AND {where}"""
        return columns, tail

    def leaves(self) -> Part:
        """The value cells, as published."""
        rounding = self.prm["rounding"]
        rounding_sql = (
            f"CASE WHEN {rounding} IS NOT NULL AND v.action <> 'suppressed' AND v.value <> 0 "
            f"THEN CAST({rounding} AS INTEGER) END"
            if self.contract.rounding is not None
            else NULL_INT
        )
        status = self.fields.sql["obs_status"]
        return self._part(
            "v.value",
            status,
            rounding_sql,
            self.detail_sql,
            "",
            "l.cell_role = 'value' AND v.action <> 'missing'",
        )

    def remainders(self, differing: str) -> Part:
        """What a total holds beyond its cells (``differing``: the controls that differ), as
        estimated observations (status E) on the total's cell."""
        d = self.detail_sql
        return self._part(
            "ctl.remainder",
            "'E'",
            NULL_INT,
            f"CASE WHEN {d} = '' THEN 'remainder' ELSE {d} || '; remainder' END",
            f"JOIN {differing} ctl ON ctl.source_row = l.source_row AND ctl.source_col = l.source_col",
            "l.cell_role IN ('total', 'total_row') AND ctl.remainder <> 0",
        )


def sql_of(part: Part) -> str:
    return "SELECT " + ", ".join(f"{e} AS {a}" for a, e in part[0]) + part[1]


@dataclass
class Canonical:
    view: str  # the canonical observations, every column in canonical order and type
    out_of_scope: int  # observations of reporters outside the members, left out
    constants: dict  # columns the same for every observation, not stored: name -> value


def _constant_columns(parts: list[Part], fixed: set[str]) -> list[str]:
    """Columns with the same fixed expression in every kind of cell: they are not materialized,
    the canonical view adds them back as typed constants (a 10 M-row file has 20 M observations,
    and each stored column costs time however well it compresses)."""
    return [
        a
        for i, (a, e) in enumerate(parts[0][0])
        if (e in fixed or is_literal(e)) and all(p[0][i][1] == e for p in parts[1:])
    ]


def _store(con, source: str, stored: dict, constants: dict, span, sink, ex) -> str:
    """Where the observations are written once: the sink (the DuckDB warehouse, for a file whose
    periods it holds nothing of: stored where they are published, its relation then serves every
    later check), a compressed Parquet file (bounded memory, ``OMH_CANON_PARQUET=1``) or a table of
    the work database."""
    table = sink(source, stored, constants, span) if sink is not None and span is not None else None
    if table is None and ex is not None and os.environ.get("OMH_CANON_PARQUET", "0") == "1":
        path = ex.temp_file("canon")
        con.execute(f"COPY ({source}) TO '{sql_text(path.as_posix())}' (FORMAT parquet, COMPRESSION zstd)")
        table = f"read_parquet('{sql_text(path.as_posix())}')"
    elif table is None:
        table = f"{work_schema(con)}.{temp_name('canon_t')}"
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {source}")
    return table


def materialize(
    contract: Contract, con, select: CanonicalSelect, parts: list[Part], sink=None, gate=None, ex=None
) -> Canonical:
    """Write the observations once (DuckDB spills past its memory limit): every later check and
    the load scan them. ``gate()`` is called just before they are written (it may raise)."""
    everything = temp_name("canon_all")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {everything} AS {' UNION ALL '.join(sql_of(p) for p in parts)}")
    constant = _constant_columns(parts, select.fixed)
    names = [a for a, _ in parts[0][0]]
    stored = [a for a in names if a not in constant] or names[:1]
    source = f"SELECT {', '.join(stored)} FROM {everything}"
    member_codes = {m["iso3"] for m in codelists.members()}
    reporter = select.fields.sql["reporter"]
    fixed_reporter = reporter.strip("'") if reporter.startswith("'") else None
    scoped = contract.reporter_scope == "members" and fixed_reporter not in member_codes
    if scoped:
        members = register_frame(con, pd.DataFrame({"iso3": sorted(member_codes)}), "members")
        source += f" WHERE reporter_iso3 IN (SELECT iso3 FROM {members})"
    types = dict(
        fetch_all(con, f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {everything})")
    )
    exprs = dict(parts[0][0])
    values = (
        dict(zip(constant, fetch_all(con, f"SELECT {', '.join(exprs[a] for a in constant)}")[0], strict=True))
        if constant
        else {}
    )
    if gate is not None:  # the last moment to stop before the observations are written
        gate()
    table = _store(
        con,
        source,
        {a: types[a] for a in stored},
        {a: values[a] for a in constant},
        select.period.span,
        sink,
        ex,
    )
    # The canonical view: the stored columns and the constants, in the canonical order and types.
    cols = [
        ident(a) if a in stored else f"CAST({sql_literal(values[a])} AS {types[a]}) AS {ident(a)}"
        for a in names
    ]
    canon = temp_name("canon")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {canon} AS SELECT {', '.join(cols)} FROM {table}")
    out_of_scope = 0
    if scoped:
        total = fetch_value(con, f"SELECT count(*) FROM {everything}")
        out_of_scope = int(total - fetch_value(con, f"SELECT count(*) FROM {canon}"))
    return Canonical(canon, out_of_scope, {a: values[a] for a in constant if a not in stored})
