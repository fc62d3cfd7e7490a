"""Source contracts: one YAML file per country source, data not code.

A contract says how to read a file (reader options), which cells are values, totals or
hierarchy rows, and how each canonical field of an observation is obtained (a constant, a
column of the file, a mapping of its labels). Generic readers and the harmonizer do the work.
This module is imported by Airflow DAG files: it must stay light (yaml and pydantic only).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from transforms.config import CONTRACTS_DIR

# The C loader when libyaml is there: contracts are parsed at every DAG file parse.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

CANONICAL_FIELDS = (
    "reporter",
    "reporter_role",
    "flow_type",
    "citizenship",
    "counterpart",
    "sex",
    "age_band",
    "unit",
    "obs_status",
)
MARKER_ACTIONS = ("missing", "zero", "suppressed")
DEFAULT_MARKERS = {
    "": "missing",
    "-": "zero",
    "(-)": "zero",
    "--": "suppressed",
    "..": "missing",
    "...": "missing",
    "…": "missing",
}


class ContractError(ValueError):
    """A contract file that cannot be used, with the file and the problem named."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Predicate(_Strict):
    """A test on one attribute of a row: all given conditions must hold."""

    column: str
    equals: str | None = None
    matches: str | None = None
    isin: list[str] | None = Field(default=None, alias="in")
    empty: bool | None = None

    def test(self, value: str) -> bool:
        value = "" if value is None else str(value).strip()
        if self.empty is not None and (value == "") != self.empty:
            return False
        if self.equals is not None and value != self.equals:
            return False
        if self.isin is not None and value not in self.isin:
            return False
        if self.matches is not None and not re.search(self.matches, value):
            return False
        return True


class FieldSpec(_Strict):
    """How one canonical field is obtained: a constant, a column mapped to codes, or the landing
    file's name (``file_name``: a regular expression whose first group, else whole match, is the
    value, e.g. the year of ``..._2024_...xlsx``; ``bind_to_file`` turns it into a constant)."""

    value: str | None = None
    column: str | None = None
    file_name: str | None = None
    map: dict[str, str] = Field(default_factory=dict)
    pattern: str | None = None
    codelist: str | None = None
    default: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, (str, int)):
            return {"value": str(data)}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        given = [k for k in ("value", "column", "file_name") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'value' (a constant), 'column' or 'file_name' (a pattern)")
        if self.file_name is not None:
            re.compile(self.file_name)
        if self.pattern is not None:
            re.compile(self.pattern)
        return self

    @field_validator("map", mode="before")
    @classmethod
    def _map_keys_as_text(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {str(k): str(v) for k, v in data.items()}
        return data


class PeriodSpec(_Strict):
    """Where the period of an observation comes from, and in which calendar."""

    calendar: Literal["monthly", "quarterly", "yearly", "us_fiscal_monthly", "us_fiscal_yearly", "date"]
    year: FieldSpec | None = None
    month: FieldSpec | None = None
    quarter: FieldSpec | None = None
    date: FieldSpec | None = None

    @model_validator(mode="after")
    def _parts(self) -> PeriodSpec:
        needs = {
            "monthly": ("year", "month"),
            "us_fiscal_monthly": ("year", "month"),
            "quarterly": ("year", "quarter"),
            "yearly": ("year",),
            "us_fiscal_yearly": ("year",),
            "date": ("date",),
        }[self.calendar]
        missing = [part for part in needs if getattr(self, part) is None]
        if missing:
            raise ValueError(f"calendar '{self.calendar}' needs {', '.join(missing)}")
        return self


class Column(_Strict):
    """An id column: by header text or by position (letter or 1-based number)."""

    header: str | None = None
    col: str | int | None = None
    aliases: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"header": data}
        return data

    @model_validator(mode="after")
    def _one(self) -> Column:
        if (self.header is None) == (self.col is None):
            raise ValueError("give exactly one of 'header' or 'col'")
        return self

    def index(self) -> int | None:
        """0-based position when given by position."""
        if self.col is None:
            return None
        if isinstance(self.col, int):
            return self.col - 1
        n = 0
        for ch in self.col.strip().upper():
            n = n * 26 + (ord(ch) - 64)
        return n - 1


class Measure(_Strict):
    """A value column named in the contract, with the fields it implies."""

    header: str
    role: Literal["value", "total"] = "value"
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    aliases: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _inline_fields(cls, data: Any) -> Any:
        # `{header: Femenino, sex: F}` is shorthand for `{header: Femenino, fields: {sex: F}}`.
        if isinstance(data, dict):
            data = dict(data)
            fields = dict(data.pop("fields", {}) or {})
            for key in list(data):
                if key in CANONICAL_FIELDS:
                    fields[key] = data.pop(key)
            data["fields"] = fields
        return data


class Melt(_Strict):
    """Wide layout: every column from ``start_col`` on is a value; its header levels are attributes."""

    start_col: str | int
    names: list[str]
    skip: list[Predicate] = Field(default_factory=list)
    total: list[Predicate] = Field(default_factory=list)

    def start_index(self) -> int:
        return Column(col=self.start_col).index()


class Values(_Strict):
    columns: list[Measure] = Field(default_factory=list)
    melt: Melt | None = None

    @model_validator(mode="after")
    def _one(self) -> Values:
        if bool(self.columns) == (self.melt is not None):
            raise ValueError("give exactly one of 'columns' or 'melt'")
        return self


class Rows(_Strict):
    skip: list[Predicate] = Field(default_factory=list)
    total: list[Predicate] = Field(default_factory=list)


class ReaderSpec(_Strict):
    format: Literal["csv", "xlsx", "xls"]
    encoding: str = "utf-8"
    delimiter: str = ","
    quotechar: str = '"'
    sheet: str | int = 0
    header_row: int | None = None
    header_rows: list[int] | None = None
    header_find: str | None = None
    thousands: str | None = None
    decimal: str = "."
    fill_down: list[str] = Field(default_factory=list)
    fill_up: list[str] = Field(default_factory=list)
    stop_at_blank_row: bool = True

    @model_validator(mode="after")
    def _header(self) -> ReaderSpec:
        given = [x for x in (self.header_row, self.header_rows, self.header_find) if x is not None]
        if len(given) > 1:
            raise ValueError("give at most one of header_row, header_rows, header_find")
        if self.header_find is not None:
            re.compile(self.header_find)
        return self

    def header_lines(self) -> list[int]:
        """1-based physical rows of the header (default: the first row)."""
        if self.header_rows:
            return list(self.header_rows)
        return [self.header_row or 1]


class Landing(_Strict):
    folder: str
    patterns: list[str]


class Delivery(_Strict):
    """When a period's file is due: ``due_day`` of the month ``lag_months`` after the period ends."""

    frequency: Literal["monthly", "quarterly", "yearly"] = "monthly"
    lag_months: int = 1
    due_day: int = 15
    schedule: str | None = None
    # False: a file sent on request (e.g. a counterpart feed for the mirror checks), outside the
    # delivery calendar: no periods are expected of it in the completeness grid.
    calendar: bool = True


class Publication(_Strict):
    url: str | None = None
    license: str | None = None
    notes: str | None = None


class FormatVersion(_Strict):
    """Another release format of the same source: the parts that differ from the contract's own."""

    version: int
    note: str | None = None
    reader: ReaderSpec | None = None
    ids: dict[str, Column] | None = None
    values: Values | None = None
    rows: Rows | None = None

    @field_validator("ids", mode="before")
    @classmethod
    def _ids_list(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {str(name): str(name) for name in data}
        return data


class Contract(_Strict):
    source_id: str
    version: int = 1
    title: str
    agency: str
    language: str = "es"
    reporter: str | None = None
    reporter_scope: Literal["members", "any"] = "members"
    synthetic: bool = False
    landing: Landing
    delivery: Delivery = Field(default_factory=Delivery)
    publication: Publication = Field(default_factory=Publication)
    reader: ReaderSpec
    ids: dict[str, Column] = Field(default_factory=dict)
    values: Values
    rows: Rows = Field(default_factory=Rows)
    markers: dict[str, Literal["missing", "zero", "suppressed"]] = Field(default_factory=dict)
    rounding: int | None = None
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    period: PeriodSpec
    detail: list[str] = Field(default_factory=list)
    remainder: dict[str, FieldSpec] | None = None
    severity: dict[str, Literal["error", "warning"]] = Field(default_factory=dict)
    versions: list[FormatVersion] = Field(default_factory=list)
    path: str | None = None

    @field_validator("source_id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]{2,63}", v):
            raise ValueError("source_id must be lower-case letters, digits and '_' (3-64 characters)")
        return v

    @field_validator("ids", mode="before")
    @classmethod
    def _ids_list(cls, data: Any) -> Any:
        # A list of header names is shorthand for {name: name}.
        if isinstance(data, list):
            return {str(name): str(name) for name in data}
        return data

    @model_validator(mode="after")
    def _fields(self) -> Contract:
        unknown = set(self.fields) - set(CANONICAL_FIELDS)
        for measure in self.values.columns:
            unknown |= set(measure.fields) - set(CANONICAL_FIELDS)
        if self.remainder:
            unknown |= set(self.remainder) - set(CANONICAL_FIELDS)
        if unknown:
            raise ValueError(f"unknown canonical fields: {sorted(unknown)}; known: {list(CANONICAL_FIELDS)}")
        if self.reporter is None and "reporter" not in self.fields:
            if not all("reporter" in m.fields for m in self.values.columns if m.role == "value"):
                raise ValueError("give 'reporter' (ISO3) or a 'reporter' field")
        for action in self.markers.values():
            if action not in MARKER_ACTIONS:
                raise ValueError(f"marker action must be one of {MARKER_ACTIONS}")
        return self

    @property
    def conference(self) -> str | None:
        """CRM or CSM of a fixed reporter, from the code lists."""
        if not self.reporter:
            return None
        from transforms.codelists import members

        return next((m["conference"] for m in members() if m["iso3"] == self.reporter), None)

    def variants(self) -> list[Contract]:
        """This contract's own format first, then each declared other format version."""
        out = [self]
        for v in self.versions:
            update = {
                k: getattr(v, k) for k in ("reader", "ids", "values", "rows") if getattr(v, k) is not None
            }
            out.append(self.model_copy(update={**update, "version": v.version, "versions": []}))
        return out

    def severity_of(self, check: str, default: str) -> str:
        """A check's severity, raised or lowered by the contract's ``severity`` map."""
        return self.severity.get(check, default)

    def all_markers(self) -> dict[str, str]:
        return {**DEFAULT_MARKERS, **self.markers}

    def field_spec(self, name: str, measure: Measure | None = None) -> FieldSpec | None:
        """The spec of a canonical field for one measure: measure override, contract, reporter."""
        if measure is not None and name in measure.fields:
            return measure.fields[name]
        if name in self.fields:
            return self.fields[name]
        if name == "reporter" and self.reporter:
            return FieldSpec(value=self.reporter)
        return None


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"])
        parts.append(f"{loc}: {e['msg']}" if loc else e["msg"])
    return "; ".join(parts)


def load_contract(path: str | Path) -> Contract:
    """Parse and check one contract file; errors name the file and the offending key."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"{path.name}: cannot read contract: {exc}") from exc
    if not isinstance(data, dict):
        raise ContractError(f"{path.name}: a contract is a YAML mapping")
    data["path"] = str(path)
    try:
        return Contract.model_validate(data)
    except ValidationError as exc:
        raise ContractError(f"{path.name}: {_describe(exc)}") from exc


@lru_cache(maxsize=4)
def _load_all(directory: str, stamp: tuple) -> dict[str, Contract]:
    contracts: dict[str, Contract] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        contract = load_contract(path)
        if contract.source_id in contracts:
            raise ContractError(f"{path.name}: source_id '{contract.source_id}' is used twice")
        contracts[contract.source_id] = contract
    return contracts


def load_contracts(directory: str | Path | None = None) -> dict[str, Contract]:
    """Every contract in the contracts folder, keyed by source id (cached until a file changes)."""
    directory = Path(directory or CONTRACTS_DIR)
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(directory.glob("*.yaml")))
    return _load_all(str(directory), stamp)


def bind_to_file(contract: Contract, file_name: str) -> Contract:
    """The contract as it reads one file: every field taken from the file's name (``file_name``)
    becomes the constant the name holds. A name without it is an error naming the field."""

    def bind(node, where: str):
        if isinstance(node, FieldSpec) and node.file_name is not None:
            found = re.search(node.file_name, file_name)
            if not found:
                raise ContractError(
                    f"{file_name}: {where} is read from the file name with the pattern {node.file_name!r}, "
                    "and the name does not match it; rename the file as the contract's landing section shows"
                )
            value = found.group(1) if found.groups() else found.group(0)
            return node.model_copy(update={"value": value, "file_name": None})
        if isinstance(node, BaseModel):
            changes = {}
            for name in type(node).model_fields:
                old = getattr(node, name)
                new = bind(old, f"{where}.{name}" if where else name)
                if new is not old:
                    changes[name] = new
            return node.model_copy(update=changes) if changes else node
        if isinstance(node, dict):
            out = {k: bind(v, f"{where}.{k}") for k, v in node.items()}
            return out if any(out[k] is not node[k] for k in node) else node
        if isinstance(node, list):
            out = [bind(v, f"{where}[{i}]") for i, v in enumerate(node)]
            return out if any(a is not b for a, b in zip(out, node, strict=True)) else node
        return node

    return bind(contract, "")


def get_contract(source_id: str, directory: str | Path | None = None) -> Contract:
    contracts = load_contracts(directory)
    if source_id not in contracts:
        raise ContractError(f"unknown source '{source_id}'; `omh sources` lists them")
    return contracts[source_id]
