"""Guards at the observatory's edges: what comes in, and what goes out to spreadsheets.

In: the observatory takes aggregates only. A file that carries person-level identifiers (names,
document or passport numbers, exact birth dates) is refused, and the reason names the column and
the kind of identifier, never a value. Labels that a spreadsheet would run as a formula (``=``,
``+``, ``-``, ``@``) are refused unless the contract maps them. After harmonization, figures that
cannot be true are refused: periods that start after today, fractions of people, or the
reporter's own citizens in a flow that only foreigners make (the signature of another country's
file sent under this source).

Out: every CSV or XLSX the project writes passes its cells through :func:`neutralize`, which
prefixes a text cell starting with a formula character with ``'`` (OWASP "CSV injection").

Knows nothing of storage; reads the DuckDB views that extract and harmonize leave.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable, Sequence

from transforms.contracts.checks import full_number
from transforms.engine import fetch_all, ident

# ---------------------------------------------------------------------------- exports

# Characters that make Excel, LibreOffice or Google Sheets read a cell as a formula (or DDE).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value):
    """A cell safe for a spreadsheet: text starting with a formula character gets a ``'`` prefix.

    Numbers, dates and None are returned as they are (a negative number is a number).
    """
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def neutralize_row(row: Iterable) -> list:
    return [neutralize(v) for v in row]


def write_csv(fh, header: Sequence, rows: Iterable[Sequence]) -> int:
    """Write a CSV whose every text cell (header included) is neutralized; returns the row count."""
    writer = csv.writer(fh)
    writer.writerow(neutralize_row(str(h) for h in header))
    n = 0
    for row in rows:
        writer.writerow(neutralize_row(row))
        n += 1
    return n


def write_xlsx(path, header: Sequence, rows: Iterable[Sequence], sheet: str = "data") -> int:
    """Write an XLSX (one sheet) with neutralized text cells and no formulas; returns the row count.

    openpyxl stores a string starting with ``=`` as a formula: neutralizing first keeps every text
    cell a string.
    """
    import datetime as dt
    import decimal

    import openpyxl
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    plain = (str, int, float, bool, decimal.Decimal, dt.date, dt.datetime, dt.time, type(None))

    def cell(value):
        if not isinstance(value, plain):  # lists, structs, intervals: as text
            value = str(value)
        if isinstance(value, str):
            value = ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters XML cannot hold
        return neutralize(value)

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(title=re.sub(r"[\\/*?:\[\]]", "_", sheet)[:31] or "data")
    ws.append([cell(str(h)) for h in header])
    n = 0
    for row in rows:
        ws.append([cell(v) for v in row])
        n += 1
    wb.save(path)
    return n


# ---------------------------------------------------------------------------- person-level data

AGGREGATES_ONLY = "the observatory takes aggregates only"


def _norm(text: str) -> str:
    """Lower case, no accents, words separated by one space: 'Fecha de Nacimiento' -> 'fecha de nacimiento'."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text).split())


# Header words (es, en, pt, fr, nl: the languages of the member states), matched on normalized text.
_NAME = re.compile(
    r"^(?:(?:primer|segundo|first|last|given|family|middle|full|middle)\s+)?"
    r"(?:nombres?|names?|nome|nomes|nom|prenoms?|apellidos?|surnames?|sobrenomes?|naam|voornaam|"
    r"achternaam|nombre completo|nome completo|nom complet|nombres y apellidos|apellidos y nombres|"
    r"nombre y apellido|apellido y nombre)$"
    r"|\b(?:apellidos?|surnames?|sobrenomes?|first name|last name|full name|given names?|family name|"
    r"nombre completo|nome completo|voornaam|achternaam)\b"
)
_DOCUMENT = re.compile(
    r"\b(?:passports?|pasaportes?|passaportes?|passeports?|paspoort\w*|cedula|dni|curp|cpf|rut|nuip|"
    r"ssn|social security|id number|identity number|national id|documento de identidad|"
    r"carne de extranjeria|numero de identificacion)\b"
    r"|\b(?:numero|nro|num|no|n|number)\s+(?:de\s+|of\s+)?(?:documento|document|identificacion|identidad)\b"
    r"|\b(?:documento|document)\s+(?:numero|nro|num|no|number|id)\b"
)
_BIRTH = re.compile(
    r"\b(?:fecha|date|data|f)\s+(?:de\s+|of\s+)?(?:nacimiento|birth|nascimento|naissance)\b"
    r"|\b(?:birth\s*date|birthdate|dob|geboortedatum|fecha nac|fec nac)\b"
)
HEADER_KINDS = (
    (_DOCUMENT, "a document number"),
    (_BIRTH, "a birth date"),
    (_NAME, "a person's name"),
)

# Values: passport-like (letters then 6-9 digits), a CURP, an exact date (day precision).
_PASSPORT = r"^[A-Z]{1,3}[- ]?[0-9]{6,9}$"
_CURP = r"^[A-Z]{4}[0-9]{6}[HMX][A-Z]{5}[A-Z0-9][0-9]$"
_FULL_DATE = (
    r"^(?:(?:19|20)[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0?[1-9]|[12][0-9]|3[01])[/.-](?:0?[1-9]|1[0-2])[/.-](?:19|20)[0-9]{2})(?:[ T]00:00(?::00)?)?$"
)
# A period label is a month's first (or last) day; a birth date is any day.
_NOT_PERIOD_DAY = (
    r"^(?:[0-9]{4}-[0-9]{2}-(?:0[2-9]|1[0-9]|2[0-7])|(?:0?[2-9]|1[0-9]|2[0-7])[/.-][0-9]{1,2}[/.-][0-9]{4})"
)
# How many distinct identifier-like values make a column person-level (and their least share).
MIN_VALUES = 3
MIN_SHARE = 0.2


def contract_headers(contract) -> set[str]:
    """The column headers a contract itself reads (normalized): a contract that reads a column
    called "Nombre" as a country's name has been reviewed, so that header is not a person's."""
    cols = [*contract.ids.values(), *contract.values.columns]
    # The layout step's attributes (captures, parent labels, sheet names) are the contract's own.
    reader = getattr(contract, "reader", None)  # any object with ids and values will do
    out = {_norm(a) for a in (reader.layout_attributes() if reader is not None else ())}
    for col in cols:
        for text in (getattr(col, "header", None), *(getattr(col, "aliases", None) or [])):
            if text:
                out.add(_norm(text))
    return out


def header_findings(header: Iterable[str], file_name: str, allowed: Iterable[str] = ()) -> list[str]:
    """Columns whose header says they hold person-level identifiers (no value is read);
    ``allowed`` are normalized headers the contract reads (see ``contract_headers``)."""
    allowed = set(allowed)
    out = []
    for column in header:
        for part in str(column).split(" / "):
            norm = _norm(part)
            if not norm or norm in allowed:
                continue
            for rx, kind in HEADER_KINDS:
                if rx.search(norm):
                    out.append(
                        f"{file_name}: person-level data: column {part.strip()[:60]!r} looks like {kind}; "
                        f"{AGGREGATES_ONLY}"
                    )
                    break
    return out


def _known_labels(contract, column: str) -> set[str]:
    """Labels the contract itself maps for a column (trusted: the contract is reviewed)."""
    specs = [*contract.fields.values(), *(contract.remainder or {}).values()]
    for m in contract.values.columns:
        specs.extend(m.fields.values())
    known: set[str] = set()
    for spec in specs:
        if getattr(spec, "column", None) == column and spec.map:
            known |= {str(k) for k in spec.map}
    return known


def _period_columns(contract) -> set[str]:
    return {
        getattr(contract.period, part).column
        for part in ("year", "month", "quarter", "date")
        if getattr(contract.period, part) is not None and getattr(contract.period, part).column
    }


def label_findings(ex, contract, file_name: str) -> list[str]:
    """Person-level identifiers and formulas among the labels of an extracted file.

    Works on the distinct labels of each attribute column (the file's id columns and header levels):
    a column where at least ``MIN_VALUES`` distinct labels (and ``MIN_SHARE`` of them) look like
    passport numbers, CURPs or exact (non-period) dates is person-level; a label that starts with
    a formula character and that the contract does not map is refused. Messages never quote a
    person-level value.
    """
    attrs = [a for a in (ex.attrs or []) if a]
    if not attrs:
        return []
    periods = _period_columns(contract)
    out: list[str] = []
    formulas: list[str] = []
    # A label of the file's rows is read once per row, not once per cell of the row.
    rows = f"(SELECT * FROM {ex.rows_view} WHERE _is_total OR NOT _skip)" if ex.rows_view else None
    for attr in attrs:
        col = ident(attr)
        shown = ex.headers.get(attr, attr)
        relation = rows if rows and attr in (ex.row_attrs or []) else ex.view
        known = sorted(_known_labels(contract, attr))
        # One pass: the distinct labels (with their first row), how many look like documents or
        # birth dates, and the first three that would run as spreadsheet formulas.
        row = fetch_all(
            ex.con,
            f"""WITH d AS (SELECT {col} AS v, min(source_row) AS r FROM {relation}
                           WHERE {col} IS NOT NULL AND {col} <> '' GROUP BY 1)
                SELECT count(*),
                       count(*) FILTER (WHERE regexp_full_match(upper(v), $passport)
                                           OR regexp_full_match(upper(v), $curp)),
                       count(*) FILTER (WHERE regexp_full_match(v, $date) AND regexp_matches(v, $day)),
                       arg_min([v, CAST(r AS VARCHAR)], r, 3) FILTER (
                           WHERE regexp_matches(v, $formula) AND NOT regexp_full_match(v, $dashes)
                             AND NOT list_contains($known, v))
                FROM d""",
            {
                "passport": _PASSPORT,
                "curp": _CURP,
                "date": _FULL_DATE,
                "day": _NOT_PERIOD_DAY,
                "formula": r"^[=+\-@\t\r]",
                "dashes": r"^[-.…]+$",
                "known": known,
            },
        )[0]
        distinct, documents, births = (int(x or 0) for x in row[:3])
        if distinct and documents >= MIN_VALUES and documents >= MIN_SHARE * distinct:
            out.append(
                f"{file_name}: person-level data: column {shown!r} holds {documents} values that look like "
                f"document or passport numbers; {AGGREGATES_ONLY}"
            )
        elif attr not in periods and distinct and births >= MIN_VALUES and births >= MIN_SHARE * distinct:
            out.append(
                f"{file_name}: person-level data: column {shown!r} holds {births} exact dates that look like "
                f"birth dates; {AGGREGATES_ONLY}"
            )
        if out:
            continue
        for value, source_row in row[3] or []:
            formulas.append(
                f"{file_name}: row {source_row}, column {shown!r}: label {value[:40]!r} starts with "
                f"{value[:1]!r} and would run as a spreadsheet formula; labels must not start with "
                "=, +, - or @ (or the contract must map them)"
            )
    return out + formulas


# ---------------------------------------------------------------------------- plausibility

# Flow types only foreigners make: the reporter's own citizens cannot be in them. A file that
# counts them is another country's file (or a mapping error).
FOREIGNERS_ONLY = (
    "ASY_APP",
    "ASY_DEC_",
    "IRR_ENC",
    "IRR_TRN",
    "RES_GRANT",
    "REG_PROG",
    "RST_ARR",
    "NAT",
    "RET_REM",
    "RET_AVR",
)


def observation_findings(con, view: str, file_name: str) -> list[str]:
    """Figures that cannot be true, on the harmonized observations of one file."""
    return [message for _, message in observation_problems(con, view, file_name)]


def observation_problems(con, view: str, file_name: str) -> list[tuple[str, str]]:
    """``observation_findings`` with the name of the check (``transforms.contracts.checks``) that found each:
    a contract's ``severity`` may lower it."""
    out: list[tuple[str, str]] = []
    foreigners_only = "^(?:" + "|".join(re.escape(p) for p in FOREIGNERS_ONLY) + ")"
    own = fetch_all(
        con,
        f"""SELECT reporter_iso3, flow_type, count(*), sum(value), min(source_row)
            FROM {view}
            WHERE citizenship_iso3 = reporter_iso3 AND coalesce(value, 0) > 0
              AND regexp_matches(flow_type, $foreigners_only)
            GROUP BY 1, 2 ORDER BY 5 LIMIT 3""",
        {"foreigners_only": foreigners_only},
    )
    for reporter, flow_type, n, total, first_row in own:
        out.append(
            (
                "guard.own_citizens",
                f"{file_name}: row {first_row}: {n} observation(s) ({total:,.0f} in all) count citizens of {reporter} "
                f"in {flow_type} reported by {reporter}, a flow of foreigners only; is this another country's file?",
            )
        )
    future = fetch_all(
        con,
        f"""SELECT count(*), min(period_start), min(source_row) FROM {view}
            WHERE period_start > current_date HAVING count(*) > 0""",
    )
    for n, first, source_row in future:
        out.append(
            (
                "guard.future_period",
                f"{file_name}: row {source_row}: {n} observation(s) for periods that start after today "
                f"(the first on {first}); a period cannot be reported before it begins",
            )
        )
    fractions = fetch_all(
        con,
        f"""SELECT value, source_row, source_column FROM {view}
            WHERE value IS NOT NULL AND value <> floor(value) ORDER BY source_row LIMIT 1""",
    )
    for value, source_row, source_column in fractions:
        out.append(
            (
                "guard.fraction",
                f"{file_name}: row {source_row}, column {source_column!r}: value {full_number(value)} is not "
                "a whole number; counts of persons, events and cases are integers",
            )
        )
    return out


__all__ = [
    "FORMULA_START",
    "contract_headers",
    "header_findings",
    "label_findings",
    "neutralize",
    "neutralize_row",
    "observation_findings",
    "observation_problems",
    "write_csv",
    "write_xlsx",
]
