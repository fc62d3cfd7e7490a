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
    """Where the period of an observation comes from, and in which calendar.

    Each part is a FieldSpec: a column (an id, a melted header level, or an attribute the layout
    step made, e.g. a ``reader.captures`` of a title cell), the file name or a constant. Its
    ``pattern`` (first group) and ``map`` (label -> year/month/quarter) are applied before the
    label is parsed, so "01 October", "Trim. 3" or "enero-diciembre de 2025" can be read, and
    its ``default`` stands for an empty label. A month label is read whole ("Oct", "10") or by its
    one word that names a month ("01 October", "Octubre 2024").

    ``first_month`` / ``last_month`` (FieldSpec, default None; yearly calendars only): the months a
    yearly figure truly covers, for a year-to-date table (``last_month: {column: title_month}``:
    1 January to the end of that month) or a fiscal year only partly covered (October-November:
    ``first_month: "10"``, ``last_month: "11"`` with ``us_fiscal_yearly``). The observation is
    stored with that true period_start/period_end (period_type stays "Y"), never as a whole year.
    """

    calendar: Literal["monthly", "quarterly", "yearly", "us_fiscal_monthly", "us_fiscal_yearly", "date"]
    year: FieldSpec | None = None
    month: FieldSpec | None = None
    quarter: FieldSpec | None = None
    date: FieldSpec | None = None
    first_month: FieldSpec | None = None
    last_month: FieldSpec | None = None

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
        spans = [p for p in ("first_month", "last_month") if getattr(self, p) is not None]
        if spans and self.calendar not in ("yearly", "us_fiscal_yearly"):
            raise ValueError(f"{' and '.join(spans)} narrow a yearly calendar, not '{self.calendar}'")
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


class Capture(_Strict):
    """A value read outside the table, that becomes an attribute (a column) of every data row.

    ``pattern`` (regex; its first group, else the whole match, is the value) is searched in the
    title rows (the rows above the header; with ``blocks``, the rows above each block's header,
    title included), cell by cell; ``cell`` ("B2") reads one cell of the sheet instead (with
    ``pattern`` applied to it when both are given). ``default`` (None) is used when nothing
    matches; without it, a title that does not match is an error naming the file and rows.
    Shorthand: a string is the pattern. Example: ``captures: {year: '(20\\d\\d)'}``.
    """

    pattern: str | None = None
    cell: str | None = None
    default: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"pattern": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _some(self) -> Capture:
        if self.pattern is None and self.cell is None:
            raise ValueError("give 'pattern' (searched in the title rows) or 'cell' (e.g. 'B2')")
        if self.pattern is not None:
            re.compile(self.pattern)
        if self.cell is not None and not re.fullmatch(r"[A-Za-z]{1,3}[1-9]\d*", self.cell):
            raise ValueError(f"cell {self.cell!r} is not a cell address like 'B2'")
        return self


class Blocks(_Strict):
    """Several tables stacked on one sheet, each with its own title and header rows.

    A block starts at a row whose first non-empty cell matches ``title`` (regex), or, with
    ``header`` (regex) instead, at a header row matching it (its title is then the non-empty rows
    between the previous block and that header). ``header_rows`` (list of int, default None: the
    first non-empty row under the title) are the block's header rows counted from the title row
    (1 = the row under the title); ignored with ``header``, where the matching row is the header. A block's data end at the next block, at a
    ``stop_at`` row or (``stop_at_blank_row``) at a blank row. Blocks are matched column by
    column by header text (a block without a column has empty cells there). Attributes of a block come from ``reader.captures`` searched in its title.
    Example: ``blocks: {title: '^Cuadro \\d+', header_rows: [2]}``.
    """

    title: str | None = None
    header: str | None = None
    header_rows: list[int] | None = None
    # Blocks whose title text matches (regex, default None) are not read at all, their total rows
    # included: e.g. the total table above the per-entry-point ones, ``skip: 'todos los puntos'``.
    skip: str | None = None
    # The block whose title matches (regex, default None) is the total table of the others: it is
    # not loaded; each of its cells is a control, compared with the sum of the other blocks' cells
    # of the same row labels (ids) and column. E.g. ``totals: 'todos los puntos'``.
    totals: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Blocks:
        if (self.title is None) == (self.header is None):
            raise ValueError("give exactly one of 'title' or 'header' (a regex) to find the blocks")
        re.compile(self.title or self.header)
        for rx in (self.skip, self.totals):
            if rx is not None:
                re.compile(rx)
        if any(n < 1 for n in self.header_rows or []):
            raise ValueError("header_rows count from the title row: 1 is the row under it")
        return self


class Parents(_Strict):
    """Parent rows: a label row whose children are the rows under it (hierarchy in one column).

    ``column`` (an id Column: header text or ``col``) holds the labels. ``by`` says which rows are
    parents: ``indent`` (a row followed by more indented rows; the indent is the cell's alignment
    indent in XLSX, else its leading spaces), ``bold`` (XLSX font), or ``pattern`` (the label
    matches ``pattern``, a regex). The nearest parent's label becomes the attribute ``attribute``
    (a column of every child row; put it in ``detail`` or map it to a field). Parent rows are
    subtotals of their children: they are left out of the data. Example:
    ``parents: {column: Nacionalidad, by: pattern, pattern: '^(Residentes|No residentes)$',
    attribute: residencia}``.
    """

    column: Column
    by: Literal["indent", "bold", "pattern"] = "indent"
    pattern: str | None = None
    attribute: str = "parent"

    @model_validator(mode="after")
    def _pattern(self) -> Parents:
        if (self.by == "pattern") != (self.pattern is not None):
            raise ValueError("'pattern' is given with, and only with, by: pattern")
        if self.pattern is not None:
            re.compile(self.pattern)
        return self


class ReaderSpec(_Strict):
    """How to read a file. Layout keys (all optional; the plain reader's behaviour without them):

    - ``sheets`` (regex, default None): read every sheet whose name matches (instead of ``sheet``),
      one table each, stacked (columns matched by header text); ``sheet_attribute`` (str, default "sheet") names the attribute that
      holds the sheet name. Example: ``sheets: '^20\\d\\d$'`` with ``period.year: {column: sheet}``.
    - ``blocks`` (Blocks): several tables stacked on one sheet.
    - ``parents`` (Parents): hierarchy rows whose label becomes an attribute of the rows under them.
    - ``stop_at`` (regex, default None): the data end before the first row whose first non-empty
      cell matches (a "Total general" or "Fuente:" line). Example: ``stop_at: '^(Fuente|Nota)'``.
    - ``first_row`` / ``last_row`` (int, 1-based physical rows, default None): data rows outside
      this range are not read. Example: ``first_row: 8``, ``last_row: 40``.
    - ``captures`` ({attribute: Capture}): values from title cells, as attributes of every row.

    With ``sheets`` or ``blocks``, every row also has the attribute ``_table`` (which table of the
    file it is of): a total row (``rows.total``) is checked against the cells of its own table.
    """

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
    sheets: str | None = None
    sheet_attribute: str = "sheet"
    blocks: Blocks | None = None
    parents: Parents | None = None
    stop_at: str | None = None
    first_row: int | None = None
    last_row: int | None = None
    captures: dict[str, Capture] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _header(self) -> ReaderSpec:
        given = [x for x in (self.header_row, self.header_rows, self.header_find) if x is not None]
        if len(given) > 1:
            raise ValueError("give at most one of header_row, header_rows, header_find")
        if self.header_find is not None:
            re.compile(self.header_find)
        for rx in (self.sheets, self.stop_at):
            if rx is not None:
                re.compile(rx)
        if self.sheets is not None and self.format == "csv":
            raise ValueError("'sheets' reads the sheets of a workbook; a CSV file has none")
        if self.blocks is not None and given:
            raise ValueError("with 'blocks', each block's header rows are found by 'blocks'")
        return self

    def has_layout(self) -> bool:
        """Whether a layout step (blocks, parents, ranges, captures, several sheets) is asked for."""
        return bool(
            self.sheets
            or self.blocks
            or self.parents
            or self.stop_at
            or self.first_row
            or self.last_row
            or self.captures
        )

    def layout_attributes(self) -> list[str]:
        """The attribute columns the layout step adds to the grid, in order."""
        out = list(self.captures)
        if self.parents is not None:
            out.append(self.parents.attribute)
        if self.sheets is not None:
            out.append(self.sheet_attribute)
        if self.sheets is not None or self.blocks is not None:
            out.append("_table")  # which table a row is of: a total row covers its own table
        return out

    def header_lines(self) -> list[int]:
        """1-based physical rows of the header (default: the first row)."""
        if self.header_rows:
            return list(self.header_rows)
        return [self.header_row or 1]


class SheetTotals(_Strict):
    """Check totals published on another sheet of the same workbook, used as controls.

    ``sheet`` (sheet name) is read with ``header_row`` (1-based, default 1); ``value`` is the
    header of its total column; ``match`` ({attribute of this contract: header on the totals
    sheet}, default {}: one grand total) says which loaded cells each total covers; ``where``
    (Predicates on the totals sheet's headers) keeps only some of its rows. Each total is compared
    with the sum of the loaded cells (value cells, before codes are mapped) it covers; a total
    that differs (beyond ``rounding``) refuses the file, as the source's own totals do. Example:
    ``sheet_totals: [{sheet: Resumen, value: Total, match: {sheet: Mes}}]``.
    """

    sheet: str
    header_row: int = 1
    value: str
    match: dict[str, str] = Field(default_factory=dict)
    where: list[Predicate] = Field(default_factory=list)


class Landing(_Strict):
    folder: str
    patterns: list[str]


class Delivery(_Strict):
    """When a period's file is due: ``due_day`` of the month ``lag_months`` after the period ends."""

    frequency: Literal["monthly", "quarterly", "yearly"] = "monthly"
    lag_months: int = 1
    due_day: int = 15
    schedule: str | None = None


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
    # Totals on another sheet of the workbook, checked as controls (list of SheetTotals, default []).
    sheet_totals: list[SheetTotals] = Field(default_factory=list)
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


def _flow_types(contract: Contract) -> set[str] | None:
    """The flow types a contract's values can have: constants, or None when a column says."""
    specs = [contract.field_spec("flow_type", m) for m in contract.values.columns] or [
        contract.field_spec("flow_type")
    ]
    if any(spec is None or spec.value is None for spec in specs):
        return None
    return {spec.value for spec in specs}


def _same_sheet(a: ReaderSpec, b: ReaderSpec) -> bool:
    """Whether two readers may read the same sheet (a pattern of sheets against a sheet name)."""
    if a.format == "csv" or b.format == "csv":
        return a.format == b.format
    if a.sheets is not None and b.sheets is not None:
        return a.sheets == b.sheets
    if a.sheets is not None or b.sheets is not None:
        pattern, sheet = (a.sheets, b.sheet) if a.sheets is not None else (b.sheets, a.sheet)
        return isinstance(sheet, int) or bool(re.search(pattern, sheet))
    return a.sheet == b.sheet


def shared_flows(
    contract: Contract, file_name: str, contracts: dict[str, Contract] | None = None
) -> list[str]:
    """Other contracts that would read the same flow from the same sheet of a file named
    ``file_name`` (same landing folder, a pattern of each matches the name): its figures would be
    loaded twice, under two sources. Returns one sentence per such contract (warnings)."""
    import fnmatch

    out = []
    mine = _flow_types(contract)
    for other in (contracts if contracts is not None else load_contracts()).values():
        if other.source_id == contract.source_id or other.landing.folder != contract.landing.folder:
            continue
        if not any(fnmatch.fnmatch(file_name.lower(), p.lower()) for p in other.landing.patterns):
            continue
        theirs = _flow_types(other)
        if not _same_sheet(contract.reader, other.reader):
            continue
        if mine is not None and theirs is not None and not mine & theirs:
            continue
        flows = ", ".join(sorted((mine or set()) & (theirs or set()))) or "flow types read from the file"
        out.append(
            f"the contract '{other.source_id}' also reads this file's sheet with the same flow ({flows}): "
            "the same figures may be loaded under two sources; narrow one contract's landing patterns or sheet"
        )
    return out


def get_contract(source_id: str, directory: str | Path | None = None) -> Contract:
    contracts = load_contracts(directory)
    if source_id not in contracts:
        raise ContractError(f"unknown source '{source_id}'; `omh sources` lists them")
    return contracts[source_id]
