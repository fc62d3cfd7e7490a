"""Labels: the distinct labels of a column -> the canonical codes of a field, with the message
of a label no mapping knows (and what the sender may have meant)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from transforms.contracts import codelists
from transforms.contracts.model import Contract, FieldSpec
from transforms.engine import ident, small_table, temp_name
from transforms.problems import Problem
from transforms.stages.harmonize.grouping import Distinct, first_rows, weight
from transforms.stages.harmonize.model import COUNTRY_FIELDS, DEFAULTS, FIELD_CODELIST, roles_kept
from transforms.stages.harmonize.sql import case_sql, concat_lists, sql_text


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
                count=weight(table, hit),
                rows=first_rows(table, hit),
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
                    count=weight(table, hit),
                    rows=first_rows(table, hit),
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


def default_role(flow_type) -> str | None:
    """The reporter's role a flow type implies (a sub-type inherits its root's)."""
    roles = {r["code"]: r.get("reporter_role") for r in codelists.load("flow_types")}
    return roles.get(flow_type) or roles.get(str(flow_type).split(".")[0])


# The canonical fields computed from labels, in the order their problems are reported.
MAPPED_FIELDS = (*COUNTRY_FIELDS, "flow_type", "sex", "age_band", "unit", "obs_status", "reporter_role")


@dataclass
class Fields:
    """Each canonical field as a SQL expression over the cells (``l.``) and the label maps joined
    to them; maps of the file's rows (a record-level file) are joined on the rows instead."""

    sql: dict[str, str] = field(default_factory=dict)
    joins: list[str] = field(default_factory=list)  # label maps joined on the cells
    row_joins: list[str] = field(default_factory=list)  # label maps joined on the rows
    row_cols: list[str] = field(default_factory=list)  # what the row joins carry to the cells
    implied_role: str = "NULL"  # the reporter's role the flow type implies
    maps: dict[tuple, str] = field(default_factory=dict)  # (field, spec) -> prefix of its columns


def kept_contexts(contract: Contract, contexts: pd.DataFrame) -> list[tuple[int, str]]:
    """The (measure, kind of cell) pairs that become observations: leaves, and the totals whose
    remainder the contract keeps."""
    kept = roles_kept(contract)
    return [(int(r.measure_index), str(r.cell_role)) for r in contexts.itertuples() if r.cell_role in kept]


def _specs_by_context(contract: Contract, name: str, contexts: list[tuple[int, str]]) -> dict:
    """spec (as JSON) -> (spec, the contexts it applies to), for field ``name``."""
    by_spec: dict[str, tuple[FieldSpec, list[tuple[int, str]]]] = {}
    for m_idx, role in contexts:
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
        by_spec.setdefault(spec.model_dump_json(), (spec, []))[1].append((m_idx, role))
    return by_spec


@dataclass
class _LabelContext:
    """What mapping one column's labels needs to know of the file."""

    contract: Contract
    con: object
    distinct: Distinct
    row_level: set[str]
    problems: list[Problem]


def _join_label_map(name: str, spec: FieldSpec, contexts: list, ctx: _LabelContext, fields: Fields) -> str:
    """Map the distinct labels ``spec`` reads in ``contexts`` once, join the map, and return the
    prefix of its ``code`` and ``role`` columns in the canonical SELECT."""
    labels_of = ctx.distinct.of([spec.column, "measure_index", "cell_role"])
    wanted = labels_of[
        [
            (int(m), str(r)) in contexts
            for m, r in zip(labels_of["measure_index"], labels_of["cell_role"], strict=True)
        ]
    ]
    distinct = (
        wanted.groupby(spec.column, sort=False)
        .agg(_n=("_n", "sum"), source_row=("source_row", "min"), _rows=("_rows", concat_lists))
        .reset_index()
    )
    distinct[spec.column] = distinct[spec.column].astype(str)
    codes = map_field(name, spec, distinct, ctx.problems, ctx.contract)
    frame = pd.DataFrame({"label": distinct[spec.column], "code": codes.astype(object)})
    # The reporter's role a flow type implies travels with the flow type's code.
    frame["role"] = frame["code"].map(default_role).astype(object)
    mname = small_table(ctx.con, frame, "map")
    alias = f"m{len(fields.maps)}"
    if spec.column in ctx.row_level:
        fields.row_joins.append(f"LEFT JOIN {mname} {alias} ON {alias}.label = r.{ident(spec.column)}")
        fields.row_cols += [f"{alias}.code AS _{alias}_code", f"{alias}.role AS _{alias}_role"]
        return f"l._{alias}_"
    fields.joins.append(f"LEFT JOIN {mname} {alias} ON {alias}.label = l.{ident(spec.column)}")
    return f"{alias}."


def field_expressions(
    contract: Contract,
    con,
    distinct: Distinct,
    contexts: list[tuple[int, str]],
    row_level: set[str],
    problems: list[Problem],
) -> Fields:
    """Every canonical field for every kept context: a fixed code, or the code of its label's map
    (each column's distinct labels mapped once, unknown labels reported with count and rows)."""
    ctx = _LabelContext(contract, con, distinct, row_level, problems)
    fields = Fields()
    role_cases: list[tuple[str, str]] = []
    for name in MAPPED_FIELDS:
        cases = []
        for spec, ctxs in _specs_by_context(contract, name, contexts).values():
            cond = " OR ".join(f"(l.measure_index = {m} AND l.cell_role = '{r}')" for m, r in ctxs)
            prefix = None
            if spec.value is not None:
                expr = f"'{sql_text(spec.value)}'"
            else:
                key = (name, spec.model_dump_json())
                if key not in fields.maps:
                    fields.maps[key] = _join_label_map(name, spec, ctxs, ctx, fields)
                prefix = fields.maps[key]
                expr = f"{prefix}code"
            cases.append((cond, expr))
            if name == "flow_type":
                implied = (
                    f"'{sql_text(default_role(spec.value) or '')}'" if prefix is None else f"{prefix}role"
                )
                role_cases.append((cond, implied))
        fields.sql[name] = case_sql(cases)
    fields.implied_role = case_sql(role_cases)
    return fields


def coded_cells(con, view: str, ex, row_joins: list[str], row_cols: list[str]) -> str:
    """The cells to select observations from: the long table itself, or, when maps are joined on
    the file's rows, the long table again over the rows with their labels' codes."""
    if not row_joins:
        return view
    rows_joined = temp_name("rows_coded")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {rows_joined} AS SELECT r.*, {', '.join(row_cols)} "
        f"FROM {ex.rows_view} r {' '.join(row_joins)}"
    )
    coded = temp_name("long_coded")
    carried = [c.split(" AS ")[-1].split(".")[-1] for c in row_cols]
    con.execute(f"CREATE OR REPLACE TEMP VIEW {coded} AS {ex.long_over(rows_joined, carried)}")
    return coded
