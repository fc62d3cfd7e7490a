"""Source contracts: the model, one YAML file per country source, data not code.

A contract says how to read a file (reader options), which cells are values, totals or
hierarchy rows, and how each canonical field of an observation is obtained (a constant, a
column of the file, a mapping of its labels). Generic readers and the harmonizer do the work.
This module is the one schema of a contract: every key is declared here, with its type, default
and a docstring under it (``docs.py`` turns them into docs/contracts.md); ``loading`` reads the
YAML files into these models. Imported by Airflow DAG files: it must stay light (pydantic only).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    # Every key of a contract is declared here, with its type, default and (the docstring under
    # it) meaning and example: the loader checks contracts against these models and
    # scripts/contract_docs.py writes docs/contracts.md from them (it reads the docstrings from
    # this file's source: pydantic's use_attribute_docstrings would cost every DAG parse ~50 ms).
    model_config = ConfigDict(extra="forbid", frozen=True)


class Predicate(_Strict):
    """A test on one attribute of a row: all given conditions must hold."""

    column: str
    """The attribute tested: an id name of `ids`, or a level name of `melt.names`. Example: `nationality`"""
    equals: str | None = None
    """The attribute's text (trimmed) equals this. Example: `TOTAL`"""
    matches: str | None = None
    """A regular expression found in the attribute's text (`re.search`). Example: `^Total`"""
    isin: list[str] | None = Field(default=None, alias="in")
    """The attribute's text is one of these (YAML key `in`). Example: `[Total, Subtotal]`"""
    empty: bool | None = None
    """`true`: the attribute is empty; `false`: it is not. Example: `true`"""

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
    """A constant code for every observation (`flow_type: ENT_REG` is shorthand for `{value: ENT_REG}`). Example: `ENT_REG`"""
    column: str | None = None
    """The attribute (id name or melt level) whose label gives the value. Example: `nationality`"""
    file_name: str | None = None
    """A regular expression on the landing file's name: its first group (else the whole match) is the value. Example: `_(\\d{4})_`"""
    map: dict[str, str] = Field(default_factory=dict)
    """Label -> code; a label neither in the map nor a code of the code list is refused. Example: `{Hombres: M, Mujeres: F}`"""
    pattern: str | None = None
    """A regular expression whose first group is taken from the label before mapping. Example: `^(\\d{4})`"""
    codelist: str | None = None
    """The code list the resulting codes must belong to (default: the field's own). Example: `countries`"""
    default: str | None = None
    """The code for an empty label (an empty label is otherwise refused). Example: `_U`"""

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
    """How the period is read: `monthly`, `quarterly`, `yearly`, `us_fiscal_monthly`, `us_fiscal_yearly` (October-September) or `date`. Example: `monthly`"""
    year: FieldSpec | None = None
    """Where the year comes from (a field spec). Example: `{column: year}`"""
    month: FieldSpec | None = None
    """Where the month comes from: a number, or a month name in es/en/pt/fr. Example: `{column: mes}`"""
    quarter: FieldSpec | None = None
    """Where the quarter (1-4, `Q1`, `T1`, ...) comes from. Example: `{column: trimestre}`"""
    date: FieldSpec | None = None
    """Where the date comes from (calendar `date`). Example: `{column: fecha}`"""
    first_month: FieldSpec | None = None
    """Yearly calendars only: the first month a yearly figure truly covers (a fiscal year only partly covered), stored as its true period_start. Example: `"10"`"""
    last_month: FieldSpec | None = None
    """Yearly calendars only: the last month a yearly figure covers (a year-to-date table, a partial fiscal year), stored as its true period_end. Example: `{column: title_month}`"""

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
    """The column's header text (a string alone is shorthand for `{header: ...}`). Example: `Nacionalidad`"""
    col: str | int | None = None
    """The column's position: a letter or a 1-based number. Example: `B`"""
    aliases: list[str] = Field(default_factory=list)
    """Other header texts the column may carry (also trusted by the person-level guard). Example: `[País, Pais]`"""

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
    """The value column's header text. Example: `Ingresos`"""
    role: Literal["value", "total"] = "value"
    """`value` (a leaf count) or `total` (the source's own total of the row's value columns, reconciled). Example: `total`"""
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    """Canonical fields this column implies (also written inline: `{header: Mujeres, sex: F}`). Example: `{sex: F}`"""
    aliases: list[str] = Field(default_factory=list)
    """Other header texts of the column. Example: `[Total general]`"""

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
    """The first value column (letter or 1-based number); every column from it on is a value. Example: `C`"""
    names: list[str]
    """A name for each header level of the value columns (one per header row). Example: `[year, month]`"""
    skip: list[Predicate] = Field(default_factory=list)
    """Value columns left out: predicates on the header levels (any one matching). Example: `[{column: month, equals: Total}]`"""
    total: list[Predicate] = Field(default_factory=list)
    """Value columns that are the source's totals (reconciled, remainders). Example: `[{column: month, equals: Total}]`"""

    def start_index(self) -> int:
        return Column(col=self.start_col).index()


class Values(_Strict):
    """Which cells of the file are values."""

    columns: list[Measure] = Field(default_factory=list)
    """Narrow layout: the value columns, by header. Example: `[{header: Ingresos}]`"""
    melt: Melt | None = None
    """Wide layout: every column from `start_col` on is a value. Example: `{start_col: C, names: [month]}`"""

    @model_validator(mode="after")
    def _one(self) -> Values:
        if bool(self.columns) == (self.melt is not None):
            raise ValueError("give exactly one of 'columns' or 'melt'")
        return self


class Rows(_Strict):
    """Rows of the file that are not leaves: hierarchy rows to skip, the source's total rows."""

    skip: list[Predicate] = Field(default_factory=list)
    """Rows left out (hierarchy rows, sub-totals): predicates, any one matching. Example: `[{column: nationality, equals: TOTAL}]`"""
    total: list[Predicate] = Field(default_factory=list)
    """Rows that are the source's totals of their column: reconciled with the cells above. Example: `[{column: country, matches: '^Total'}]`"""


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
    """A regex searched in the title rows (above the header; with `blocks`, each block's title), cell by cell; its first group (else the whole match) is the value. Example: `'(20\\d\\d)'`"""
    cell: str | None = None
    """One cell of the sheet to read instead (with `pattern` applied to it when both are given). Example: `B2`"""
    default: str | None = None
    """The value when nothing matches; without it a title that does not match is an error naming the file and rows. Example: `'2024'`"""

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
    """A regex: a block starts at a row whose first non-empty cell matches. Example: `'^Cuadro \\d+'`"""
    header: str | None = None
    """Instead of `title`, a regex matching each block's header row (its title is then the non-empty rows above it). Example: `'^Nacionalidad$'`"""
    header_rows: list[int] | None = None
    """The block's header rows counted from its title row (1 = the row under the title); default: the first non-empty row under the title. Example: `[2, 3]`"""
    # Blocks whose title text matches (regex, default None) are not read at all, their total rows
    # included: e.g. the total table above the per-entry-point ones, ``skip: 'todos los puntos'``.
    skip: str | None = None
    """Blocks whose title matches this regex are not read at all (their total rows included). Example: `'todos los puntos'`"""
    # The block whose title matches (regex, default None) is the total table of the others: it is
    # not loaded; each of its cells is a control, compared with the sum of the other blocks' cells
    # of the same row labels (ids) and column. E.g. ``totals: 'todos los puntos'``.
    totals: str | None = None
    """The block whose title matches this regex is the total table of the others: not loaded, each cell a control for the sum of the other blocks' cells of the same row labels and column. Example: `'todos los puntos'`"""

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
    """The id column (header text or `col`) that holds the parent and child labels. Example: `Nacionalidad`"""
    by: Literal["indent", "bold", "pattern"] = "indent"
    """Which rows are parents: `indent` (followed by more indented rows), `bold` (XLSX font) or `pattern`. Example: `pattern`"""
    pattern: str | None = None
    """With `by: pattern`, the regex a parent's label matches. Example: `'^(Residentes|No residentes)$'`"""
    attribute: str = "parent"
    """The attribute of every child row that holds its nearest parent's label (put it in `detail` or map it to a field). Example: `residencia`"""

    @model_validator(mode="after")
    def _pattern(self) -> Parents:
        if (self.by == "pattern") != (self.pattern is not None):
            raise ValueError("'pattern' is given with, and only with, by: pattern")
        if self.pattern is not None:
            re.compile(self.pattern)
        return self


class ReaderSpec(_Strict):
    """How the file is read: format, text options, where the header is, where reading stops. Layout keys (all optional; the plain reader's behaviour without them):

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
    """`csv`, `xlsx` or `xls`. Example: `xlsx`"""
    encoding: str = "utf-8"
    """Text encoding of a CSV. Example: `latin-1`"""
    delimiter: str = ","
    """Field separator of a CSV. Example: `;`"""
    quotechar: str = '"'
    """Quote character of a CSV. Example: `'"'`"""
    sheet: str | int = 0
    """The worksheet: its name or 0-based index. Example: `Datos`"""
    header_row: int | None = None
    """The 1-based row holding the header (default: the first row). Example: `5`"""
    header_rows: list[int] | None = None
    """Several 1-based header rows (wide layouts: one per level of `melt.names`). Example: `[4, 5]`"""
    header_find: str | None = None
    """A regular expression matched against a first-column cell: that row is the header. Example: `^Año$`"""
    thousands: str | None = None
    """Thousands separator inside numbers. Example: `.`"""
    decimal: str = "."
    """Decimal mark inside numbers. Example: `,`"""
    fill_down: list[str] = Field(default_factory=list)
    """Attributes whose empty cells take the label above (merged cells). Example: `[country]`"""
    fill_up: list[str] = Field(default_factory=list)
    """Attributes whose empty cells take the label below (a label printed under its block). Example: `[year]`"""
    stop_at_blank_row: bool = True
    """`true`: reading stops at the first all-empty row after the first data row (what follows is footnotes; blank rows before the data are passed over); `false`: empty rows are skipped and reading goes on to the end. Example: `false`"""
    sheets: str | None = None
    """Read every sheet whose name matches this regex (instead of `sheet`), one table each, stacked (columns matched by header text). Example: `'^20\\d\\d$'`"""
    sheet_attribute: str = "sheet"
    """With `sheets`: the attribute that holds each row's sheet name. Example: `year_sheet`"""
    blocks: Blocks | None = None
    """Several tables stacked on one sheet, each with its title and header rows (see `blocks`). Example: `{title: '^Cuadro \\d+', header_rows: [2]}`"""
    parents: Parents | None = None
    """Hierarchy rows whose label becomes an attribute of the rows under them (see `parents`). Example: `{column: Nacionalidad, by: indent, attribute: region}`"""
    stop_at: str | None = None
    """The data end before the first row whose first non-empty cell matches this regex. Example: `'^(Fuente|Nota)'`"""
    first_row: int | None = None
    """Data rows before this 1-based physical row are not read. Example: `8`"""
    last_row: int | None = None
    """Data rows after this 1-based physical row are not read. Example: `40`"""
    captures: dict[str, Capture] = Field(default_factory=dict)
    """Values read outside the table (title rows or one cell), each an attribute of every data row (see `captures`). Example: `{year: '(20\\d\\d)'}`"""

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
    """The name of the sheet that holds the totals. Example: `Resumen`"""
    header_row: int = 1
    """The 1-based header row of the totals sheet. Example: `3`"""
    value: str
    """The header of the totals sheet's total column. Example: `Total`"""
    match: dict[str, str] = Field(default_factory=dict)
    """{attribute of this contract: header on the totals sheet}: which loaded cells each total covers; empty: one grand total. Example: `{sheet: Mes}`"""
    where: list[Predicate] = Field(default_factory=list)
    """Predicates on the totals sheet's headers: only the rows they keep are controls. Example: `[{column: Tipo, equals: Entradas}]`"""


class Landing(_Strict):
    """Where the source's files arrive."""

    folder: str
    """The landing sub-folder the source's files arrive in (`$OMH_HOME/landing/<folder>/`). Example: `ARG`"""
    patterns: list[str]
    """File-name glob patterns of the source's files. Example: `['DNM_ingresos*.csv']`"""


class Delivery(_Strict):
    """When a period's file is due: ``due_day`` of the month ``lag_months`` after the period ends."""

    frequency: Literal["monthly", "quarterly", "yearly"] = "monthly"
    """`monthly`, `quarterly` or `yearly`: one DAG run per period. Example: `monthly`"""
    lag_months: int = 1
    """Months after the period's end in which its file is due. Example: `2`"""
    due_day: int = 15
    """Day of that month by which the file is due (a Deadline Alert fires after it). Example: `20`"""
    schedule: str | None = None
    """A cron expression replacing the frequency's default schedule. Example: `'0 6 * * 1'`"""
    calendar: bool = True
    """`false`: a file sent on request (e.g. a counterpart feed for the mirror checks), outside the delivery calendar: the completeness grid expects no period of it. Example: `false`"""


class Publication(_Strict):
    """Where and under which license the source publishes (for people: the DAG's documentation shows it)."""

    url: str | None = None
    """Where the source publishes (shown with the DAG's documentation). Example: `https://...`"""
    license: str | None = None
    """The figures' license (shown with the DAG's documentation). Example: `CC BY 4.0`"""
    notes: str | None = None
    """Notes for people reading the contract (shown with the DAG's documentation). Example: `Figures are revised.`"""


class Overlap(_Strict):
    """Another source that counts the same events of the same reporter (contract key ``overlaps``,
    a list; default ``[]``: the source overlaps no other). Both sources load and are kept; a sum
    in the reporting views uses one of them where they overlap (sql/views.sql, v_fact_precedence).

    * ``source`` (str, required): the other source's ``source_id``; its contract must exist.
    * ``flows`` (list of str, default ``[]``: every flow type): the root flow types the overlap
      concerns (a child such as ``IRR_ENC.APP`` falls under its root ``IRR_ENC``).
    * ``prefer`` (``this`` | ``other``, default ``this``): the source a sum uses. Precedence is by
      coverage too: the preferred source wins a period only where its figures cover it whole
      (a year by twelve months, or a month inside its year); where they do not, the other
      source's figures are used and the preferred source's inside that period yield to them.
    * ``since`` / ``until`` (date ``YYYY-MM-DD``, default none): the periods the rule holds for
      (e.g. a yearbook that replaced a monthly release from 2023 on); outside them, no overlap.
    * ``note`` (str, default none): why, for the analysts.

    Example::

        overlaps:
          - {source: pan_darien_yearly, flows: [IRR_TRN], prefer: this,
             note: "the yearly series is a third party's sum of these monthly tables"}
    """

    source: str
    """The other source's `source_id` (its contract must exist). Example: `pan_darien_yearly`"""
    flows: list[str] = Field(default_factory=list)
    """The root flow types the overlap concerns (default: every flow type). Example: `[IRR_TRN]`"""
    prefer: Literal["this", "other"] = "this"
    """`this` or `other`: the source a sum uses where both cover a period whole. Example: `this`"""
    since: dt.date | None = None
    """The first date the rule holds for (default: always). Example: `2023-01-01`"""
    until: dt.date | None = None
    """The last date the rule holds for (default: always). Example: `2024-12-31`"""
    note: str | None = None
    """Why, for the analysts. Example: `the yearbook sums the monthly tables`"""

    @model_validator(mode="after")
    def _range(self) -> Overlap:
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"overlap with '{self.source}': since {self.since} is after until {self.until}")
        return self


class FormatVersion(_Strict):
    """Another release format of the same source: the parts that differ from the contract's own."""

    version: int
    """The format's version number (recorded with each file that matches it). Example: `2`"""
    note: str | None = None
    """What changed in this format, for people (reported in the file's drift note). Example: `2026 exports`"""
    reader: ReaderSpec | None = None
    """The reader section of this format (replaces the contract's whole `reader`). Example: `{format: xlsx, header_row: 3}`"""
    ids: dict[str, Column] | None = None
    """The `ids` of this format (replace the contract's). Example: `{year: Año}`"""
    values: Values | None = None
    """The `values` of this format (replace the contract's). Example: `{columns: [{header: Total}]}`"""
    rows: Rows | None = None
    """The `rows` of this format (replace the contract's). Example: `{skip: []}`"""

    @field_validator("ids", mode="before")
    @classmethod
    def _ids_list(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {str(name): str(name) for name in data}
        return data


class SeverityOverride(_Strict):
    """A named check raised or lowered by a contract, and why."""

    level: Literal["error", "warning"]
    """The check's new severity: `error` refuses the file, `warning` loads it with the finding. Example: `warning`"""
    reason: str = Field(min_length=3)
    """Why (required; recorded with each load the override changes). Example: `returning citizens are counted at the border`"""


class Contract(_Strict):
    """One country source: how its files are read and how each canonical field is obtained (the top level of the file)."""

    source_id: str
    """The source's id: lower-case letters, digits and `_` (3-64). Example: `arg_dnm_ingresos_nacionalidad`"""
    version: int = 1
    """The contract's own format version (see `versions`). Example: `1`"""
    title: str
    """The source's title. Example: `Ingresos de extranjeros por nacionalidad`"""
    agency: str
    """The publishing agency. Example: `Dirección Nacional de Migraciones`"""
    language: str = "es"
    """The source's language: messages of `omh check` default to it (`es`, `en`, `pt`, `fr`). Example: `es`"""
    reporter: str | None = None
    """The reporting member state (ISO3), when fixed; else a `reporter` field. Example: `ARG`"""
    reporter_scope: Literal["members", "any"] = "members"
    """`members`: rows of non-member reporters are left out (counted); `any`: every reporter is kept. Example: `any`"""
    synthetic: bool = False
    """`true`: the sample's figures are made up (marked in the warehouse and the DAG). Example: `true`"""
    landing: Landing
    """Where the source's files arrive. Example: `{folder: ARG, patterns: ['*.csv']}`"""
    delivery: Delivery = Field(default_factory=Delivery)
    """When a period's file is due. Example: `{frequency: monthly, lag_months: 1, due_day: 20}`"""
    publication: Publication = Field(default_factory=Publication)
    """Where and under which license the source publishes. Example: `{url: https://...}`"""
    reader: ReaderSpec
    """How to read the file. Example: `{format: csv, delimiter: ';'}`"""
    ids: dict[str, Column] = Field(default_factory=dict)
    """Attribute columns: name -> header (or `{col: B}`); a list of headers is shorthand for `{h: h}`. Example: `{year: Año, month: Mes}`"""
    values: Values
    """Which cells are values: `columns` (narrow) or `melt` (wide). Example: `{columns: [{header: Ingresos}]}`"""
    rows: Rows = Field(default_factory=Rows)
    """Rows to skip and total rows. Example: `{skip: [{column: nationality, equals: TOTAL}]}`"""
    markers: dict[str, Literal["missing", "zero", "suppressed"]] = Field(default_factory=dict)
    """Cell texts that are not numbers and what they mean (`missing`, `zero`, `suppressed`), added to the defaults (`''`, `-`, `(-)`, `--`, `..`, `...`, `…`). Example: `{'*': suppressed}`"""
    rounding: int | None = None
    """The source's rounding base (e.g. figures rounded to 5): totals are reconciled within it. Example: `5`"""
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    """How each canonical field is obtained (a field spec per field). Example: `{flow_type: ENT_REG, unit: persons}`"""
    period: PeriodSpec
    """Where the period comes from. Example: `{calendar: monthly, year: {column: year}, month: {column: month}}`"""
    detail: list[str] = Field(default_factory=list)
    """Attributes kept in the observation's `detail` key (breakdowns with no canonical field). Example: `[province]`"""
    remainder: dict[str, FieldSpec] | None = None
    """When given, the difference between a total and its cells becomes an estimated observation (obs_status `E`) with these fields, so the loaded sum equals the source's total. Example: `{citizenship: _O}`"""
    remainder_max_share: float = Field(default=0.05, ge=0, le=1)
    """Remainders above this share of the file's totals give the warning `remainder_share`, naming the rows. Example: `0.1`"""
    severity: dict[str, SeverityOverride] = Field(default_factory=dict)
    """Raise or lower a named check (see the list of checks below), each with a reason. Example: `{jump: {level: error, reason: 'a jump here is a unit change'}}`"""
    versions: list[FormatVersion] = Field(default_factory=list)
    """Other release formats of the same source: the parts that differ. Example: `[{version: 2, ids: {year: Año}}]`"""
    sheet_totals: list[SheetTotals] = Field(default_factory=list)
    """Totals on another sheet of the workbook, checked as controls (see `sheet_totals`). Example: `[{sheet: Totales, ...}]`"""
    overlaps: list[Overlap] = Field(default_factory=list)
    """Other sources that count the same events of this reporter, and which one a sum uses (see `overlaps`). Example: `[{source: pan_darien_yearly, flows: [IRR_TRN], prefer: this}]`"""
    path: str | None = Field(default=None, exclude=True)  # set by the loader, not a key of the file

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
            near = did_you_mean(min(unknown), CANONICAL_FIELDS)
            raise ValueError(
                f"unknown canonical fields: {sorted(unknown)}{near} (known: {list(CANONICAL_FIELDS)})"
            )
        if self.reporter is None and "reporter" not in self.fields:
            if not all("reporter" in m.fields for m in self.values.columns if m.role == "value"):
                raise ValueError("give 'reporter' (ISO3) or a 'reporter' field")
        for action in self.markers.values():
            if action not in MARKER_ACTIONS:
                raise ValueError(f"marker action must be one of {MARKER_ACTIONS}")
        if any(o.source == self.source_id for o in self.overlaps):
            raise ValueError("overlaps: a source does not overlap itself")
        return self

    @field_validator("fields", "remainder")
    @classmethod
    def _canonical(cls, v: dict[str, FieldSpec] | None) -> dict[str, FieldSpec] | None:
        for name in v or {}:
            if name not in CANONICAL_FIELDS:
                raise ValueError(
                    f"unknown canonical field {name!r}{did_you_mean(name, CANONICAL_FIELDS)} "
                    f"(known: {', '.join(CANONICAL_FIELDS)})"
                )
        return v

    @field_validator("severity")
    @classmethod
    def _named_checks(cls, v: dict[str, SeverityOverride]) -> dict[str, SeverityOverride]:
        from transforms.contracts.checks import CHECKS

        for name, override in v.items():
            check = CHECKS.get(name)
            if check is None:
                raise ValueError(f"unknown check {name!r}{did_you_mean(name, CHECKS)}")
            if check.locked and override.level != "error":
                raise ValueError(f"check {name!r} cannot be lowered ({check.meaning})")
        return v

    @property
    def conference(self) -> str | None:
        """CRM or CSM of a fixed reporter, from the code lists."""
        if not self.reporter:
            return None
        from transforms.contracts.codelists import members

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
        override = self.severity.get(check)
        return override.level if override is not None else default

    def severity_levels(self) -> dict[str, str]:
        """The ``severity`` map as check name -> level (what the suites read)."""
        return {name: o.level for name, o in self.severity.items()}

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


def did_you_mean(word: str, valid) -> str:
    """The suffix "; did you mean 'x'?" for the closest valid word, or nothing."""
    import difflib  # only when a contract is wrong: DAG files import this module

    close = difflib.get_close_matches(str(word), [str(v) for v in valid], n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""
