"""Validate with Great Expectations Core: a raw suite per contract and one canonical suite.

Suites are JSON in ``expectations/``, reviewed like code and generated from the contracts and
code lists by ``omh suites --write`` (so a label added to a contract reaches its suite). Each
expectation's GX ``severity`` decides: ``critical`` refuses the file, ``warning`` loads it with
a flag. GX is imported here only, lazily: its import costs seconds.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from transforms.config import EXPECTATIONS_DIR
from transforms.contracts import codelists
from transforms.contracts.model import Contract
from transforms.stages.harmonize import FIELD_CODELIST, KEY_COLUMNS

CANONICAL_SUITE = "canonical"
# The largest count one observation may hold (the world's cross-border movements in a year are a
# few billion; one cell of one country's table is far below a billion).
MAX_PLAUSIBLE_VALUE = 1_000_000_000
log = logging.getLogger("omh.validate")


@dataclass
class Outcome:
    """One expectation's result, in the words an engineer needs."""

    suite: str
    expectation: str
    column: str | None
    severity: str  # "error" | "warning"
    success: bool
    unexpected_count: int = 0
    examples: list[dict] = field(default_factory=list)

    def message(self) -> str:
        """One line in the sender's words: where (row, column as the file names it), the value as
        written, what is wrong with it (``plain_words``; never the check's technical name)."""
        if self.success:
            return f"{plain_words(self)} holds"
        first = self.examples[0] if self.examples else {}
        where = []
        if first.get("row") is not None:
            where.append(f"row {first['row']}")
        column = first.get("column") or self.column
        if column and column not in _INTERNAL_COLUMNS:
            where.append(f"column {column!r}")
        value = f"{_as_written(first['value'])}: " if "value" in first else ""
        more = f" ({self.unexpected_count} cells)" if self.unexpected_count > 1 else ""
        prefix = ", ".join(where)
        return f"{prefix + ': ' if prefix else ''}{value}{plain_words(self)}{more}"


# Columns the extract adds (the raw value text, the row number): never a name the sender knows.
_INTERNAL_COLUMNS = {"value_raw", "value", "source_row", "source_column", "source_sheet"}

# What each kind of check means to the person who sent the file.
_PLAIN = {
    "expect_column_to_exist": "a column the contract needs is missing (check the header row)",
    "expect_table_row_count_to_be_between": "the file holds no data rows (or fewer than expected)",
    "expect_column_values_to_not_be_null": "the cell is empty",
    "expect_column_value_lengths_to_be_between": "the cell is longer than such a cell can be",
    "expect_column_values_to_be_in_set": "not a label or code the contract knows",
    "expect_column_values_to_be_between": "outside the range of plausible values",
    "expect_compound_columns_to_be_unique": "the same row (same labels and period) appears twice",
    "expect_column_values_to_be_unique": "the same value appears twice",
    "expect_column_pair_values_a_to_be_greater_than_b": "the total is smaller than its parts",
}


def plain_words(outcome: Outcome) -> str:
    """What a failed check means, in words the file's sender reads."""
    first = outcome.examples[0] if outcome.examples else {}
    if outcome.expectation == "expect_column_values_to_match_regex":
        if "column" in first or outcome.column in ("value", "value_raw"):
            return "not a number (a count, or a marker the contract knows such as '-' or '...')"
        return "not written as this column's values are (e.g. a year such as 2024, or a month name)"
    return _PLAIN.get(outcome.expectation, "does not pass one of the contract's checks")


def _as_written(value) -> str:
    """A value as the file wrote it: a whole number without '.0', text in quotes."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


@dataclass
class SuiteResult:
    suite: str
    outcomes: list[Outcome]

    @property
    def evaluated(self) -> int:
        return len(self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.failed if o.severity == "error"]


# ---------------------------------------------------------------------------- suite builders


def _number_or_marker_regex(contract: Contract) -> str:
    thousands = re.escape(contract.reader.thousands or "")
    decimal = re.escape(contract.reader.decimal)
    digits = rf"\d{{1,3}}(?:{thousands}\d{{3}})+|\d+" if thousands else r"\d+"
    number = rf"[-+]?(?:{digits})(?:{decimal}\d+)?"
    markers = "|".join(re.escape(m) for m in sorted(contract.all_markers(), key=len, reverse=True) if m)
    return rf"^\s*(?:{number}|{markers})?\s*$"


def _exp(kind: str, severity: str = "critical", **kwargs) -> dict:
    return {"type": kind, "kwargs": kwargs, "meta": {}, "severity": severity}


def contract_fingerprint(contract: Contract) -> str:
    """A digest of everything in a contract that its raw suite is built from."""
    import hashlib

    # `overlaps` says how the warehouse sums the source with others: nothing the raw suite checks.
    # A key left at its default does not count: a key added to the contract language does not
    # change the fingerprint (nor the suites, nor the retry of refused files) of contracts without it.
    data = contract.model_dump(
        mode="json",
        exclude={"path", "publication", "delivery", "title", "agency", "overlaps"},
        exclude_defaults=True,
    )
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def raw_suite_for(contract: Contract) -> dict:
    """The reviewed raw suite from ``expectations/``; rebuilt from the contract when the contract
    changed since (an alias added to fix a refused file works on the rerun), with a warning."""
    built = None
    path = suite_path(f"raw_{contract.source_id}")
    if path.exists():
        suite = json.loads(path.read_text(encoding="utf-8"))
        if suite.get("meta", {}).get("contract_fingerprint") == contract_fingerprint(contract):
            return suite
        log.warning(
            "%s is older than contracts/%s.yaml; run `omh suites` and review", path.name, contract.source_id
        )
    built = build_raw_suite(contract)
    return built


def build_raw_suite(contract: Contract) -> dict:
    """The raw suite of a contract: structure, types, markers, labels the contract knows, periods."""
    exps = [_exp("expect_table_row_count_to_be_between", min_value=1)]
    for attr in contract.ids:
        exps.append(_exp("expect_column_to_exist", column=attr))
    exps.append(
        _exp(
            "expect_column_values_to_match_regex", column="value_raw", regex=_number_or_marker_regex(contract)
        )
    )
    if contract.values.melt is not None:
        for level in contract.values.melt.names:
            exps.append(_exp("expect_column_to_exist", column=level))
    exps.append(_exp("expect_column_values_to_not_be_null", column="source_row"))
    # A count has at most 15 characters with separators; longer cells are not statistics.
    exps.append(
        _exp("expect_column_value_lengths_to_be_between", column="value_raw", min_value=0, max_value=20)
    )
    seen = set()
    for name, spec in [
        *contract.fields.items(),
        *[(k, v) for m in contract.values.columns for k, v in m.fields.items()],
    ]:
        codelist = spec.codelist or FIELD_CODELIST.get(name)
        if spec.column is None or not spec.map or codelist == "countries" or spec.pattern:
            continue
        if spec.column in seen:
            continue
        seen.add(spec.column)
        labels = sorted(spec.map)
        # Labels are checked on value cells; total rows carry no breakdown label.
        exps.append(
            _exp(
                "expect_column_values_to_be_in_set",
                column=spec.column,
                value_set=labels,
                row_condition={
                    "type": "comparison",
                    "column": {"name": "cell_role"},
                    "operator": "==",
                    "parameter": "value",
                },
            )
        )
    for part in ("year", "date"):
        spec = getattr(contract.period, part)
        if spec is not None and spec.column:
            exps.append(
                _exp(
                    "expect_column_values_to_match_regex",
                    column=spec.column,
                    regex=r"(?:19[5-9]\d|20\d\d)",
                )
            )
    return {
        "name": f"raw_{contract.source_id}",
        "expectations": exps,
        "meta": {
            "contract": contract.source_id,
            "contract_version": contract.version,
            "contract_fingerprint": contract_fingerprint(contract),
        },
    }


def build_canonical_suite() -> dict:
    """One suite for every country: code lists, no negative counts, unique keys, periods."""
    members = sorted(m["iso3"] for m in codelists.members())
    countries = sorted(set(codelists.codes("countries")) | {"_T", "_O", "_U", "_Z", "_S"})
    exps = [
        _exp("expect_table_row_count_to_be_between", min_value=1),
        _exp("expect_column_values_to_be_in_set", column="reporter_iso3", value_set=members),
        _exp(
            "expect_column_values_to_be_in_set",
            column="flow_type",
            value_set=sorted(codelists.codes("flow_types")),
        ),
        _exp("expect_column_values_to_be_in_set", column="citizenship_iso3", value_set=countries),
        _exp("expect_column_values_to_be_in_set", column="counterpart_iso3", value_set=countries),
        _exp("expect_column_values_to_be_in_set", column="sex", value_set=sorted(codelists.codes("sex"))),
        _exp(
            "expect_column_values_to_be_in_set",
            column="age_band",
            value_set=sorted(codelists.codes("age_bands")),
        ),
        _exp("expect_column_values_to_be_in_set", column="unit", value_set=sorted(codelists.codes("units"))),
        _exp(
            "expect_column_values_to_be_in_set",
            column="obs_status",
            value_set=sorted(codelists.codes("obs_status")),
        ),
        _exp("expect_column_values_to_be_in_set", column="conf_status", value_set=["F", "S"]),
        _exp(
            "expect_column_values_to_be_in_set",
            column="reporter_role",
            value_set=["destination", "origin", "transit"],
        ),
        # No negative count; a remainder (status E, derived by subtraction: decision 0001) is
        # negative where cells exceed their total within rounding (beyond it, harmonize refuses).
        _exp(
            "expect_column_values_to_be_between",
            column="value",
            min_value=0,
            row_condition={
                "type": "comparison",
                "column": {"name": "obs_status"},
                "operator": "!=",
                "parameter": "E",
            },
        ),
        # Plausibility: no one observation counts a billion people or events (periods that start
        # in the future are refused by transforms.stages.guard: the bound moves every day).
        _exp("expect_column_values_to_be_between", column="value", max_value=MAX_PLAUSIBLE_VALUE),
        _exp("expect_compound_columns_to_be_unique", column_list=list(KEY_COLUMNS)),
        _exp("expect_column_values_to_not_be_null", column="period_start"),
        _exp("expect_column_values_to_not_be_null", column="source_row"),
        _exp(
            "expect_column_pair_values_a_to_be_greater_than_b",
            column_A="period_end",
            column_B="period_start",
            or_equal=True,
        ),
        _exp("expect_column_values_to_be_between", column="year", min_value=1950, max_value=2100),
    ]
    return {"name": CANONICAL_SUITE, "expectations": exps, "meta": {"applies_to": "every source"}}


def suite_path(name: str) -> Path:
    return EXPECTATIONS_DIR / f"{name}.json"


def write_suites(contracts: dict[str, Contract]) -> list[Path]:
    """Regenerate the JSON suites from the contracts and code lists."""
    EXPECTATIONS_DIR.mkdir(exist_ok=True)
    written = []
    for suite in [build_canonical_suite(), *(build_raw_suite(c) for c in contracts.values())]:
        path = suite_path(suite["name"])
        path.write_text(
            json.dumps(suite, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8"
        )
        written.append(path)
    return written


def load_suite(name: str, fallback=None) -> dict:
    path = suite_path(name)
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    if fallback is None:
        raise FileNotFoundError(f"no suite {path}; run `omh suites --write`")
    return fallback()


# ---------------------------------------------------------------------------- running GX


_CONTEXT_LOCK = threading.Lock()


def _context():
    """GX, its ephemeral context and the batch definition every suite runs on (built once)."""
    with _CONTEXT_LOCK:  # a caller arriving while warm_up builds it waits for that one
        return _build_context()


def warm_up() -> threading.Thread:
    """Import GX and build its context in a background thread: its seconds of imports overlap
    with reading the file instead of following it. A failure here is left for ``_context``."""

    def build() -> None:
        try:
            _context()
        except Exception as exc:
            log.debug("GX warm-up failed (%s); the first suite run will retry", exc)

    thread = threading.Thread(target=build, name="omh-gx-warm-up", daemon=True)
    thread.start()
    return thread


@lru_cache(maxsize=1)
def _build_context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas("omh")
    asset = source.add_dataframe_asset("frame")
    return gx, context, asset.add_batch_definition_whole_dataframe("whole")


def _indexed(expectations: list[dict]) -> list[dict]:
    """Copies tagged with their position: GX does not report results in the suite's order."""
    return [{**e, "meta": {**(e.get("meta") or {}), "omh_index": i}} for i, e in enumerate(expectations)]


def _in_suite_order(results) -> list:
    return sorted(results, key=lambda r: (r.expectation_config.meta or {}).get("omh_index", 0))


def run_suite(
    suite: dict, frame: pd.DataFrame, locate: pd.DataFrame | None = None, severity: dict | None = None
) -> SuiteResult:
    """Validate ``frame`` with a suite dict.

    ``locate`` (indexed like ``frame``, columns source_row and source_column) turns GX's unexpected
    indexes into the file's rows and columns; ``severity`` maps expectation types to
    error/warning, overriding the suite (a contract's ``severity``).
    """
    severity_map = severity
    gx, context, batch_def = _context()
    gx_suite = gx.ExpectationSuite(name=suite["name"], expectations=_indexed(suite["expectations"]))
    if len(gx_suite.expectations) != len(suite["expectations"]):
        raise ValueError(f"suite {suite['name']}: GX dropped invalid expectations; check the JSON")
    batch = batch_def.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        gx_suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 10}
    )
    outcomes = []
    for r in _in_suite_order(result.results):
        cfg = r.expectation_config
        kwargs = cfg.kwargs
        res = r.result or {}
        examples = []
        values = res.get("partial_unexpected_list") or []
        indexes = res.get("partial_unexpected_index_list") or [None] * len(values)
        for value, idx in zip(values, indexes, strict=False):
            example = {"value": _plain(value), "row": None}
            if idx is not None and locate is not None and idx in locate.index:
                example["row"] = int(locate.at[idx, "source_row"])
                if "source_column" in locate and kwargs.get("column") in ("value", "value_raw"):
                    example["column"] = str(locate.at[idx, "source_column"])
            examples.append(example)
        if r.exception_info and r.exception_info.get("raised_exception"):
            examples.append({"value": r.exception_info.get("exception_message"), "row": None})
        outcomes.append(
            Outcome(
                suite=suite["name"],
                expectation=cfg.type,
                column=_column_of(kwargs),
                severity=_level(cfg, severity_map),
                success=bool(r.success),
                unexpected_count=int(res.get("unexpected_count") or (0 if r.success else 1)),
                examples=examples,
            )
        )
    return SuiteResult(suite["name"], outcomes)


# ---------------------------------------------------------------------------- GX on projections

_NULL_TYPES = {"expect_column_values_to_not_be_null", "expect_column_values_to_be_null"}
_UNIQUE_TYPES = {"expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique"}
_SCHEMA_TYPES = {
    "expect_column_to_exist",
    "expect_table_columns_to_match_set",
    "expect_table_column_count_to_equal",
}


def _condition_columns(cond) -> list[str]:
    """Columns a serialized GX row condition refers to."""
    if isinstance(cond, dict):
        out = []
        if isinstance(cond.get("column"), dict) and "name" in cond["column"]:
            out.append(cond["column"]["name"])
        for value in cond.values():
            if isinstance(value, (dict, list)):
                out.extend(_condition_columns(value))
        return out
    if isinstance(cond, list):
        return [c for item in cond for c in _condition_columns(item)]
    return []


def _projection(exp: dict) -> tuple[str, tuple[str, ...]]:
    """How an expectation can be evaluated on a small frame: (strategy, columns)."""
    kind, kw = exp["type"], exp.get("kwargs", {})
    cols = list(kw.get("column_list") or [])
    for key in ("column", "column_A", "column_B"):
        if kw.get(key):
            cols.append(kw[key])
    cols += [c for c in _condition_columns(kw.get("row_condition")) if c not in cols]
    if kind in _SCHEMA_TYPES:
        return "schema", ()
    if kind == "expect_table_row_count_to_be_between":
        return "limit", ()
    if kind in _NULL_TYPES:
        return "nulls", tuple(cols)
    if kind in _UNIQUE_TYPES:
        return "dups", tuple(cols)
    if kind.startswith("expect_column") and cols:
        return "distinct", tuple(cols)
    return "full", ()


def project_suite(suite: dict, con, relation: str, severity: dict | None = None):
    """Validate a DuckDB relation with a suite, letting GX evaluate every expectation on a
    projection that gives the same verdict as the whole table: distinct values (with their counts
    and first rows) for value checks, nulls plus a sample for null checks, duplicated keys plus a
    sample for uniqueness, a few rows for row counts. Work is proportional to distinct values,
    not rows; unexpected counts are weighted back to cells.

    The projections are read here, from ``con``; the function returned evaluates them with GX
    and gives the ``SuiteResult``. It reads nothing more from the connection, so it may run in
    another thread (waiting there for GX's import) while the connection does other work.
    """
    from transforms.engine import columns_of, duplicate_groups, fetch_df, ident

    available = set(columns_of(con, relation))
    located = "source_row" in available
    loc_sql = (
        ", min(source_row) AS _row"
        + (", any_value(source_column) AS _col" if "source_column" in available else "")
        if located
        else ""
    )
    groups: dict[tuple, list[tuple[int, dict]]] = {}
    for i, exp in enumerate(suite["expectations"]):
        groups.setdefault(_projection(exp), []).append((i, exp))

    distinct_sets = sorted({cols for (kind, cols) in groups if kind == "distinct" and set(cols) <= available})
    frames: dict[tuple, pd.DataFrame] = {}
    if distinct_sets:
        all_cols = sorted({c for cols in distinct_sets for c in cols})
        sets = ", ".join("(" + ", ".join(ident(c) for c in cols) + ")" for cols in distinct_sets)
        grouping = ", ".join(ident(c) for c in all_cols)
        big = fetch_df(
            con,
            f"SELECT {grouping}, count(*) AS _n{loc_sql}, GROUPING({grouping}) AS _gid "
            f"FROM {relation} GROUP BY GROUPING SETS ({sets})",
        )
        for cols in distinct_sets:
            # GROUPING sets bit i (from the left) when column i is NOT in the set.
            gid = sum(1 << (len(all_cols) - 1 - i) for i, c in enumerate(all_cols) if c not in cols)
            frames[("distinct", cols)] = big[big["_gid"] == gid].drop(columns="_gid").reset_index(drop=True)

    planned: list[tuple[list, dict, pd.DataFrame]] = []
    for (kind, cols), numbered in groups.items():
        exps = [e for _, e in numbered]
        missing = [c for c in cols if c not in available]
        if kind == "distinct" and not missing:
            frame = frames[(kind, cols)]
        elif kind == "nulls" and not missing:
            col = ident(cols[0])
            frame = fetch_df(
                con,
                f"(SELECT {', '.join(ident(c) for c in cols)}, count(*) AS _n{loc_sql} FROM {relation} "
                f"WHERE {col} IS NULL GROUP BY ALL) UNION ALL "
                f"(SELECT {', '.join(ident(c) for c in cols)}, 1 AS _n{', source_row AS _row' if located else ''}"
                f"{', source_column AS _col' if 'source_column' in available and located else ''} "
                f"FROM {relation} WHERE {col} IS NOT NULL LIMIT 1)",
            )
        elif kind == "dups" and not missing:
            keys = ", ".join(ident(c) for c in cols)
            # The duplicated keys (computed once per table: harmonize's key check asked already).
            groups = duplicate_groups(con, relation, cols).drop(columns="_rows")
            sample = fetch_df(
                con,
                f"SELECT {keys}, 1 AS _n{', source_row AS _row' if located else ''}"
                f"{', source_column AS _col' if 'source_column' in available and located else ''} "
                f"FROM {relation} LIMIT 1",
            )
            dups = pd.concat([groups[[c for c in sample.columns if c in groups]], sample], ignore_index=True)
            # A duplicated key appears twice in the projection: GX sees it as not unique.
            frame = pd.concat([dups, dups[dups["_n"] > 1]], ignore_index=True)
        elif kind == "limit":
            limits = [int(e["kwargs"].get("max_value") or 0) + 1 for e in exps] + [
                int(e["kwargs"].get("min_value") or 1) for e in exps
            ]
            frame = fetch_df(con, f"SELECT 1 AS _one FROM {relation} LIMIT {max(limits)}")
            frame["_n"] = 1
        elif kind == "schema":
            frame = fetch_df(con, f"SELECT * FROM {relation} LIMIT 1")
        else:  # an expectation with no faithful projection (or a missing column): the whole table
            frame = fetch_df(con, f"SELECT * FROM {relation}")
            frame["_n"] = 1
            if located:
                frame["_row"] = frame["source_row"]
        planned.append((numbered, {"name": suite["name"], "expectations": exps}, frame))

    def evaluate() -> SuiteResult:
        placed: dict[int, Outcome] = {}
        for numbered, sub, frame in planned:
            # GX reports results in the order of the suite's expectations.
            for (i, _), outcome in zip(numbered, _validate_projection(sub, frame, severity), strict=True):
                placed[i] = outcome
        return SuiteResult(suite["name"], [placed[i] for i in sorted(placed)])

    return evaluate


def run_suite_sql(suite: dict, con, relation: str, severity: dict | None = None) -> SuiteResult:
    """Validate a DuckDB relation with a suite (``project_suite``, then GX on the projections)."""
    return project_suite(suite, con, relation, severity)()


def _validate_projection(suite: dict, frame: pd.DataFrame, severity: dict | None) -> list[Outcome]:
    gx, context, batch_def = _context()
    gx_suite = gx.ExpectationSuite(name=suite["name"], expectations=_indexed(suite["expectations"]))
    if len(gx_suite.expectations) != len(suite["expectations"]):
        raise ValueError(f"suite {suite['name']}: GX dropped invalid expectations; check the JSON")
    frame = frame.reset_index(drop=True)
    batch = batch_def.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(gx_suite, result_format={"result_format": "COMPLETE"})
    out = []
    for r in _in_suite_order(result.results):
        cfg = r.expectation_config
        kwargs = cfg.kwargs
        res = r.result or {}
        indexes = res.get("unexpected_index_list") or []
        indexes = [i for i in indexes if isinstance(i, (int, np.integer))]
        weights = frame["_n"] if "_n" in frame else pd.Series(1, index=frame.index)
        if indexes:
            unexpected = int(weights.iloc[list(dict.fromkeys(indexes))].sum())
        else:
            unexpected = int(res.get("unexpected_count") or (0 if r.success else 1))
        examples = []
        for idx in list(dict.fromkeys(indexes))[:10]:
            value = (
                frame.at[idx, kwargs["column"]]
                if kwargs.get("column") in frame
                else {
                    c: frame.at[idx, c]
                    for c in (kwargs.get("column_list") or [kwargs.get("column_A"), kwargs.get("column_B")])
                    if c in frame
                }
            )
            example = {
                "value": _plain(value),
                "row": int(frame.at[idx, "_row"])
                if "_row" in frame and pd.notna(frame.at[idx, "_row"])
                else None,
            }
            if "_col" in frame and kwargs.get("column") in ("value", "value_raw"):
                example["column"] = str(frame.at[idx, "_col"])
            examples.append(example)
        if not indexes and not r.success:
            for value in (res.get("partial_unexpected_list") or [])[:10]:
                examples.append({"value": _plain(value), "row": None})
        examples.sort(key=lambda e: (e["row"] is None, e["row"] or 0))
        if r.exception_info and r.exception_info.get("raised_exception"):
            examples.append({"value": r.exception_info.get("exception_message"), "row": None})
        out.append(
            Outcome(
                suite=suite["name"],
                expectation=cfg.type,
                column=_column_of(kwargs),
                severity=_level(cfg, severity),
                success=bool(r.success),
                unexpected_count=0 if r.success else unexpected,
                examples=examples if not r.success else [],
            )
        )
    return out


def _level(cfg, overrides: dict | None) -> str:
    """error or warning: GX's own severity (critical = error), unless the contract overrides it."""
    severity = getattr(cfg, "severity", None)
    severity = str(getattr(severity, "value", severity) or "critical")
    level = "error" if severity == "critical" else "warning"
    return (overrides or {}).get(cfg.type, level)


def _column_of(kwargs: dict) -> str | None:
    return kwargs.get("column") or ",".join(kwargs.get("column_list", []) or []) or None


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    try:
        return value.item()
    except AttributeError:
        return value
