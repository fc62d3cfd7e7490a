"""Validate with Great Expectations Core: a raw suite per contract and one canonical suite.

Suites are JSON in ``expectations/``, reviewed like code and generated from the contracts and
code lists by ``omh suites --write`` (so a label added to a contract reaches its suite). Each
expectation's GX ``severity`` decides: ``critical`` refuses the file, ``warning`` loads it with
a flag. GX is imported here only, lazily: its import costs seconds.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from transforms import codelists
from transforms.config import EXPECTATIONS_DIR
from transforms.contracts import Contract
from transforms.harmonize import FIELD_CODELIST, KEY_COLUMNS

CANONICAL_SUITE = "canonical"


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
        """One line: where (row, column as the file names it), what value, which expectation."""
        if self.success:
            return f"{self.expectation} passed"
        first = self.examples[0] if self.examples else {}
        where = []
        if first.get("row") is not None:
            where.append(f"row {first['row']}")
        column = first.get("column") or self.column
        if column:
            where.append(f"column {column!r}")
        value = f"value {first['value']!r} " if "value" in first else ""
        more = f" ({self.unexpected_count} values)" if self.unexpected_count > 1 else ""
        prefix = ", ".join(where)
        return f"{prefix + ': ' if prefix else ''}{value}fails {self.expectation}{more}"


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


def build_raw_suite(contract: Contract) -> dict:
    """The raw suite of a contract: structure, types, markers, labels the contract knows, periods."""
    exps = [_exp("expect_table_row_count_to_be_between", min_value=1)]
    for attr in contract.ids:
        exps.append(_exp("expect_column_to_exist", column=attr))
    exps.append(_exp("expect_column_values_to_match_regex", column="value_raw", regex=_number_or_marker_regex(contract)))
    if contract.values.melt is not None:
        for level in contract.values.melt.names:
            exps.append(_exp("expect_column_to_exist", column=level))
    exps.append(_exp("expect_column_values_to_not_be_null", column="source_row"))
    # A count has at most 15 characters with separators; longer cells are not statistics.
    exps.append(_exp("expect_column_value_lengths_to_be_between", column="value_raw", min_value=0, max_value=20))
    seen = set()
    for name, spec in [*contract.fields.items(), *[(k, v) for m in contract.values.columns for k, v in m.fields.items()]]:
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
        "meta": {"contract": contract.source_id, "contract_version": contract.version},
    }


def build_canonical_suite() -> dict:
    """One suite for every country: code lists, no negative counts, unique keys, periods."""
    members = sorted(m["iso3"] for m in codelists.members())
    countries = sorted(set(codelists.codes("countries")) | {"_T", "_O", "_U", "_Z", "_S"})
    exps = [
        _exp("expect_table_row_count_to_be_between", min_value=1),
        _exp("expect_column_values_to_be_in_set", column="reporter_iso3", value_set=members),
        _exp("expect_column_values_to_be_in_set", column="flow_type", value_set=sorted(codelists.codes("flow_types"))),
        _exp("expect_column_values_to_be_in_set", column="citizenship_iso3", value_set=countries),
        _exp("expect_column_values_to_be_in_set", column="counterpart_iso3", value_set=countries),
        _exp("expect_column_values_to_be_in_set", column="sex", value_set=sorted(codelists.codes("sex"))),
        _exp("expect_column_values_to_be_in_set", column="age_band", value_set=sorted(codelists.codes("age_bands"))),
        _exp("expect_column_values_to_be_in_set", column="unit", value_set=sorted(codelists.codes("units"))),
        _exp("expect_column_values_to_be_in_set", column="obs_status", value_set=sorted(codelists.codes("obs_status"))),
        _exp("expect_column_values_to_be_in_set", column="conf_status", value_set=["F", "S"]),
        _exp(
            "expect_column_values_to_be_in_set",
            column="reporter_role",
            value_set=["destination", "origin", "transit"],
        ),
        _exp("expect_column_values_to_be_between", column="value", min_value=0),
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
        path.write_text(json.dumps(suite, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
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


@lru_cache(maxsize=1)
def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas("omh")
    asset = source.add_dataframe_asset("frame")
    return gx, context, asset.add_batch_definition_whole_dataframe("whole")


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
    gx_suite = gx.ExpectationSuite(name=suite["name"], expectations=suite["expectations"])
    if len(gx_suite.expectations) != len(suite["expectations"]):
        raise ValueError(f"suite {suite['name']}: GX dropped invalid expectations; check the JSON")
    batch = batch_def.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(gx_suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 10})
    outcomes = []
    for r in result.results:
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
        severity = getattr(cfg, "severity", None)
        severity = str(getattr(severity, "value", severity) or "critical")
        level = "error" if severity == "critical" else "warning"
        level = (severity_map or {}).get(cfg.type, level)
        outcomes.append(
            Outcome(
                suite=suite["name"],
                expectation=cfg.type,
                column=kwargs.get("column") or ",".join(kwargs.get("column_list", []) or []) or None,
                severity=level,
                success=bool(r.success),
                unexpected_count=int(res.get("unexpected_count") or (0 if r.success else 1)),
                examples=examples,
            )
        )
    return SuiteResult(suite["name"], outcomes)


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
