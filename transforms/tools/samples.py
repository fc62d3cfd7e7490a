"""Sample landing files for the 23 member states, written the way each migration authority publishes.

``omh samples`` and ``make demo`` land one file per member state under ``landing/<ISO3>/`` so that the
whole pipeline runs end to end before any country has sent data. Each file imitates its agency's own
format (encoding, delimiter, title lines, multi-row headers, months as columns, totals, hierarchy rows,
footnotes, markers) and is read by a contract in ``contracts/`` like any real file: nothing here is
known to the readers or the harmonizer.

Figures. Where the IOM "Lighthouse" series in ``data/realdata/reference/`` (iom/amerdigest) covers the
country and the flow, the file holds those real figures for 2024 (Bolivia: June to September, the
months IOM has): the top nationalities or destinations plus an "other" bucket, and a footnote naming
the series. Every other file holds plausible synthetic figures from a seeded generator, says so in its
own lines or cells ("DATOS SINTÉTICOS / SYNTHETIC DATA") and has ``synthetic: true`` in its contract.

Output is byte-identical on every run: fixed seeds, no current dates, fixed timestamps in the XLSX
document properties and zip entries (xlwt writes no timestamps).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from transforms.config import DATA_DIR
from transforms.contracts import codelists

REFERENCE_DIR = DATA_DIR / "realdata" / "reference"
YEAR = 2024
MONTHS_2024 = tuple(f"{YEAR}-{m:02d}" for m in range(1, 13))
# Workbooks carry this date in their properties and zip entries instead of the time of writing.
_WORKBOOK_TIME = dt.datetime(2025, 1, 1, 0, 0, 0)
_ZIP_TIME = (2025, 1, 1, 0, 0, 0)
_SEED = 20250515

MONTHS_ES = (
    "Enero",
    "Febrero",
    "Marzo",
    "Abril",
    "Mayo",
    "Junio",
    "Julio",
    "Agosto",
    "Septiembre",
    "Octubre",
    "Noviembre",
    "Diciembre",
)
MONTHS_PT = (
    "Janeiro",
    "Fevereiro",
    "Março",
    "Abril",
    "Maio",
    "Junho",
    "Julho",
    "Agosto",
    "Setembro",
    "Outubro",
    "Novembro",
    "Dezembro",
)
MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
MONTHS_NL = (
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
)
MONTHS_FR = (
    "janv.",
    "févr.",
    "mars",
    "avr.",
    "mai",
    "juin",
    "juil.",
    "août",
    "sept.",
    "oct.",
    "nov.",
    "déc.",
)
# A year with more arrivals in the northern winter and the July-August holidays.
_SEASON = (1.10, 0.95, 1.00, 0.95, 0.90, 0.95, 1.15, 1.10, 0.90, 0.95, 0.95, 1.10)

SYNTHETIC_ES = "DATOS SINTÉTICOS / SYNTHETIC DATA - no son cifras oficiales (muestra de prueba del OMH)"
SYNTHETIC_EN = "SYNTHETIC DATA - not official figures (OMH test sample)"


def _iom_note(series: str) -> str:
    return (
        f"Nota: muestra de prueba del OMH; cifras reales de la serie armonizada de la OIM "
        f"(iom/amerdigest, {series}) escritas en el formato de la fuente."
    )


@dataclass(frozen=True)
class Sample:
    """One sample landing file: where it goes, which contract reads it, what seeds its figures."""

    iso3: str
    source_id: str
    file_name: str
    vintage: dt.date
    write: Callable[[Path], None]
    iom_series: str | None = None  # regin, regout or irreg when the figures are IOM's
    iom_months: tuple[str, ...] = ()
    iom_exclude: tuple[str, ...] = ()  # IOM codes the file leaves out (e.g. nationals in "foreigners")

    @property
    def synthetic(self) -> bool:
        return self.iom_series is None

    def path(self, landing: Path) -> Path:
        return landing / self.iso3 / self.file_name


# ---------------------------------------------------------------------------- IOM reference series


@lru_cache(maxsize=3)
def _iom_rows(series: str) -> tuple[tuple[str, str, str, str], ...]:
    with (REFERENCE_DIR / f"amerdigest_{series}.csv").open(encoding="utf-8", newline="") as fh:
        return tuple((r["t"], r["geo"], r["nat"], r["n"]) for r in csv.DictReader(fh))


def iom_figures(series: str, reporter: str, months: Sequence[str]) -> dict[str, list[int | None]]:
    """Monthly IOM figures of one reporter by counterpart code (None: missing in the series).

    regin and irreg: the reporter is ``geo`` and the breakdown is citizenship (``nat``);
    regout: the reporter is ``nat`` and the breakdown is the destination (``geo``).
    """
    index = {m: i for i, m in enumerate(months)}
    out: dict[str, list[int | None]] = {}
    for t, geo, nat, n in _iom_rows(series):
        rep, other = (nat, geo) if series == "regout" else (geo, nat)
        if rep != reporter or t not in index:
            continue
        row = out.setdefault(other, [None] * len(months))
        if n.strip():
            row[index[t]] = (row[index[t]] or 0) + int(float(n))
    return out


def _top(
    figures: dict[str, list[int | None]], n: int, exclude: Sequence[str] = (), unknown: Sequence[str] = ()
) -> list[tuple[str, list[int | None]]]:
    """The ``n`` largest countries, then "_O" (the rest and IOM's buckets) and, if any, "_U".

    Codes in ``unknown`` (and an empty code) go to "_U"; codes in ``exclude`` are left out.
    """
    resolver = codelists.country_resolver()
    width = len(next(iter(figures.values())))
    countries: dict[str, list[int | None]] = {}
    other, unstated = [0] * width, [0] * width
    for code, values in figures.items():
        if code in exclude:
            continue
        iso = resolver.resolve(code) if code else "_U"
        if code in unknown or iso == "_U":
            unstated = [a + (b or 0) for a, b in zip(unstated, values, strict=True)]
        elif iso is None or iso.startswith("_"):
            other = [a + (b or 0) for a, b in zip(other, values, strict=True)]
        else:
            countries[iso] = values
    ranked = sorted(countries.items(), key=lambda kv: (-sum(v or 0 for v in kv[1]), kv[0]))
    for _, values in ranked[n:]:
        other = [a + (b or 0) for a, b in zip(other, values, strict=True)]
    rows: list[tuple[str, list[int | None]]] = [*ranked[:n], ("_O", list(other))]
    if any(unstated):
        rows.append(("_U", list(unstated)))
    return rows


def _column_sums(rows: Sequence[tuple[str, Sequence[int | None]]]) -> list[int]:
    return [sum(v or 0 for v in col) for col in zip(*(values for _, values in rows), strict=True)]


# ---------------------------------------------------------------------------- labels and numbers


@lru_cache(maxsize=1)
def _countries() -> dict[str, dict[str, str]]:
    return {row["iso3"]: row for row in codelists.load("countries")}


def _name(iso3: str, lang: str = "es") -> str:
    return _countries()[iso3][f"name_{lang}"]


def _num(value: int | None, thousands: str = ",", zero: str = "-") -> str:
    """A count as the agency prints it: thousands separator, a marker for zero, "" when missing."""
    if value is None:
        return ""
    if value == 0:
        return zero
    return f"{value:,}".replace(",", thousands)


def _cell(value: int | None, zero: str = "-") -> int | str | None:
    """A count for a spreadsheet cell: the number, a zero marker, or an empty cell when missing."""
    if value is None:
        return None
    return zero if value == 0 else value


def _spread(
    rng: random.Random, annual: float, season: Sequence[float] = _SEASON, noise: float = 0.12
) -> list[int]:
    """A yearly figure spread over periods by a seasonal profile, with seeded noise."""
    base = annual / sum(season)
    return [max(0, round(base * s * rng.uniform(1 - noise, 1 + noise))) for s in season]


def _split(rng: random.Random, total: int, share: float, noise: float = 0.04) -> tuple[int, int]:
    first = round(total * min(1.0, max(0.0, share + rng.uniform(-noise, noise))))
    return first, total - first


# ---------------------------------------------------------------------------- writers


def _csv_text(rows: Sequence[Sequence[object]], delimiter: str = ",", crlf: bool = False) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n")
    for row in rows:
        writer.writerow(["" if c is None else c for c in row])
    return buf.getvalue()


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _write_csv(path: Path, rows, delimiter: str = ",", encoding: str = "utf-8", crlf: bool = False) -> None:
    """The rows as the agency's CSV: its delimiter, encoding and line ends."""
    _write_bytes(path, _csv_text(rows, delimiter, crlf).encode(encoding))


def _with_totals(body, total_label: str, thousands: str = ",") -> list[list[object]]:
    """Each (label, values) row with its row total, then the row of column totals."""
    out: list[list[object]] = [
        [label, *[_num(v, thousands) for v in values], _num(sum(v or 0 for v in values), thousands)]
        for label, values in body
    ]
    grand = _column_sums(body)
    out.append([total_label, *[_num(v, thousands) for v in grand], _num(sum(grand), thousands)])
    return out


def _save_xlsx(wb, path: Path) -> None:
    """Save an openpyxl workbook with fixed properties and zip timestamps (openpyxl stamps 'now')."""
    from openpyxl.xml.functions import tostring

    wb.properties.creator = "OMH samples"
    wb.properties.lastModifiedBy = "OMH samples"
    wb.properties.created = _WORKBOOK_TIME
    raw = io.BytesIO()
    wb.save(raw)
    wb.properties.modified = _WORKBOOK_TIME
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = tostring(wb.properties.to_tree())
            entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, data)
    _write_bytes(path, out.getvalue())


def _save_xls(book, path: Path) -> None:
    raw = io.BytesIO()
    book.save(raw)
    _write_bytes(path, raw.getvalue())


def _xlsx_rows(ws, rows: Sequence[Sequence[object]], bold_rows: Sequence[int] = ()) -> None:
    from openpyxl.styles import Font

    for row in rows:
        ws.append(list(row))
    for r in bold_rows:
        for cell in ws[r]:
            cell.font = Font(bold=True)


# ---------------------------------------------------------------------------- CRM member states


def _blz(path: Path, year: int = YEAR) -> None:
    """Belize, Immigration and Nationality Department: arrivals by nationality and quarter (XLS)."""
    import xlwt

    rng = random.Random(_SEED + 84)
    annual = {
        "USA": 210_000,
        "GTM": 95_000,
        "MEX": 61_000,
        "CAN": 38_000,
        "HND": 18_500,
        "SLV": 15_200,
        "GBR": 14_100,
        "DEU": 9_300,
        "FRA": 6_200,
        "ITA": 4_600,
        "CHN": 4_100,
        "NLD": 3_500,
        "ESP": 3_100,
        "TWN": 2_600,
        "AUS": 2_300,
        "IND": 2_050,
        "JAM": 1_400,
    }
    season = (1.25, 1.0, 0.8, 0.95)
    book = xlwt.Workbook(encoding="utf-8")
    ws = book.add_sheet(f"Arrivals {year}")
    bold = xlwt.easyxf("font: bold on")
    number = xlwt.easyxf(num_format_str="#,##0")
    ws.write(0, 0, "BELIZE - IMMIGRATION AND NATIONALITY DEPARTMENT", bold)
    ws.write(1, 0, f"Arrivals of non-residents by nationality and quarter, {year}", bold)
    ws.write(2, 0, SYNTHETIC_EN)
    ws.write(4, 0, "Nationality", bold)
    ws.write_merge(4, 4, 1, 5, str(year), bold)
    for c, label in enumerate(("Q1", "Q2", "Q3", "Q4", "Total"), start=1):
        ws.write(5, c, label, bold)
    rows = [(_name(iso, "en"), _spread(rng, n, season)) for iso, n in annual.items()]
    rows.append(("Other nationalities", _spread(rng, 24_800, season)))
    r = 6
    for label, values in rows:
        ws.write(r, 0, label)
        for c, v in enumerate([*values, sum(values)], start=1):
            ws.write(r, c, v, number)
        r += 1
    ws.write(r, 0, "Total", bold)
    for c, v in enumerate(_column_sums(rows) + [sum(_column_sums(rows))], start=1):
        ws.write(r, c, v, number)
    ws.write(
        r + 2, 0, "Source: Immigration and Nationality Department, Border Management Information System."
    )
    ws.write(r + 3, 0, "Note: figures are provisional. " + SYNTHETIC_EN)
    _save_xls(book, path)


def _can(path: Path, year: int = YEAR) -> None:
    """IRCC open data, French edition: permanent residents by country of citizenship and month (XLSX)."""
    import openpyxl

    rng = random.Random(_SEED + 124)
    annual = {
        "IND": 127_300,
        "CHN": 31_000,
        "PHL": 29_200,
        "NGA": 17_400,
        "AFG": 15_100,
        "PAK": 13_600,
        "CMR": 12_800,
        "USA": 10_300,
        "IRN": 10_100,
        "FRA": 9_200,
        "ERI": 8_900,
        "DZA": 7_300,
        "BRA": 6_900,
        "MAR": 6_400,
        "KOR": 6_100,
        "SYR": 5_900,
        "BGD": 5_800,
        "LKA": 5_200,
        "COL": 5_100,
        "VNM": 4_900,
        "GBR": 4_800,
        "MEX": 4_700,
        "HTI": 4_200,
        "ETH": 3_900,
        "JAM": 3_700,
        "UKR": 3_500,
        "ISL": 22,
        "LUX": 31,
        "MLT": 27,
    }
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "RP Pays de citoyenneté"
    quarters = ("T1", "T2", "T3", "T4")
    level_year, level_quarter, level_month = ["Pays de citoyenneté"], [None], [None]
    for q, quarter in enumerate(quarters):
        for m in range(3):
            level_year.append(str(year) if q == 0 and m == 0 else None)
            level_quarter.append(quarter if m == 0 else None)
            level_month.append(MONTHS_FR[q * 3 + m])
        level_year.append(None)
        level_quarter.append(None)
        level_month.append(f"Total {quarter}")
    level_year.append(None)
    level_quarter.append(f"Total {year}")
    level_month.append(None)

    def text(v: int) -> str:
        # IRCC stores numbers as text; 1 to 5 is "--", the rest is rounded to 5 (French: NBSP thousands).
        if 0 < v <= 5:
            return "--"
        return f"{5 * round(v / 5):,}".replace(",", "\u00a0")

    body, exact = [], []
    for iso, n in [*annual.items(), ("_O", 89_500)]:
        values = _spread(rng, n)
        exact.append(values)
        label = "Autres pays" if iso == "_O" else _name(iso, "fr")
        body.append((label, values))
    totals = [sum(col) for col in zip(*exact, strict=True)]

    def row_cells(label: str, values: Sequence[int]) -> list[str]:
        cells: list[str] = [label]
        for q in range(4):
            part = values[q * 3 : q * 3 + 3]
            cells += [text(v) for v in part] + [text(sum(part))]
        return [*cells, text(sum(values))]

    rows = [
        [
            f"Canada - Résidents permanents admis selon le pays de citoyenneté et le mois, janvier - décembre {year}"
        ],
        [
            "DONNÉES SYNTHÉTIQUES / SYNTHETIC DATA - ce ne sont pas des chiffres officiels (échantillon de test de l'OMH)"
        ],
        level_year,
        level_quarter,
        level_month,
        *[row_cells(label, values) for label, values in body],
        row_cells("Total", totals),
        [None],
        [
            "Notes : toutes les valeurs entre 0 et 5 sont indiquées par « -- » afin d'empêcher l'identification "
            "des personnes; les autres valeurs sont arrondies au multiple de 5 le plus proche, de sorte que les "
            "données peuvent ne pas correspondre aux totaux. Données préliminaires, sujettes à changement."
        ],
        [None],
        ["Source : IRCC, données de mars 2025. DONNÉES SYNTHÉTIQUES / SYNTHETIC DATA."],
    ]
    _xlsx_rows(ws, rows, bold_rows=(1, 3, 4, 5))
    ws.merge_cells(start_row=3, start_column=2, end_row=3, end_column=len(level_year) - 1)
    _save_xlsx(wb, path)


# Regions of the Costa Rica table and continents of the Mexico table.
_CRI_REGIONS = {
    "América del Norte": ("USA", "CAN", "MEX"),
    "Centroamérica": ("NIC", "PAN", "GTM", "SLV", "HND", "BLZ"),
    "El Caribe": ("CUB", "DOM", "HTI", "JAM", "TTO", "PRI"),
    "América del Sur": ("COL", "ARG", "BRA", "CHL", "PER", "VEN", "ECU", "BOL", "URY", "PRY", "GUY", "SUR"),
    "Europa": (
        "DEU",
        "FRA",
        "GBR",
        "ESP",
        "NLD",
        "CHE",
        "ITA",
        "BEL",
        "PRT",
        "AUT",
        "SWE",
        "DNK",
        "NOR",
        "IRL",
        "POL",
        "RUS",
        "UKR",
        "CZE",
        "FIN",
    ),
    "Asia": ("CHN", "IND", "ISR", "JPN", "KOR", "PHL", "TWN", "TUR", "VNM"),
    "África": ("ZAF", "NGA", "MAR", "EGY", "KEN"),
    "Oceanía": ("AUS", "NZL"),
}
_CONTINENTS = {
    "América": (
        "USA",
        "CAN",
        "MEX",
        "GTM",
        "BLZ",
        "SLV",
        "HND",
        "NIC",
        "CRI",
        "PAN",
        "CUB",
        "DOM",
        "HTI",
        "JAM",
        "TTO",
        "COL",
        "VEN",
        "ECU",
        "PER",
        "BOL",
        "CHL",
        "ARG",
        "URY",
        "PRY",
        "BRA",
        "GUY",
        "SUR",
    ),
    "Asia": (
        "CHN",
        "IND",
        "BGD",
        "NPL",
        "PAK",
        "AFG",
        "IRN",
        "IRQ",
        "SYR",
        "LBN",
        "JOR",
        "TUR",
        "UZB",
        "KAZ",
        "KGZ",
        "TJK",
        "GEO",
        "ARM",
        "AZE",
        "LKA",
        "VNM",
        "PHL",
        "JPN",
        "KOR",
        "ISR",
        "MMR",
        "IDN",
        "SAU",
    ),
    "África": (
        "AGO",
        "CMR",
        "MRT",
        "SEN",
        "GIN",
        "GHA",
        "TCD",
        "EGY",
        "ETH",
        "SOM",
        "ERI",
        "NGA",
        "COD",
        "COG",
        "MAR",
        "TGO",
        "SLE",
        "BFA",
        "MLI",
        "CIV",
        "SDN",
        "KEN",
        "TZA",
        "ZAF",
        "GMB",
        "NER",
        "BEN",
    ),
    "Europa": (
        "DEU",
        "FRA",
        "GBR",
        "ESP",
        "NLD",
        "CHE",
        "ITA",
        "BEL",
        "PRT",
        "RUS",
        "UKR",
        "ROU",
        "POL",
        "ALB",
    ),
    "Oceanía": ("AUS", "NZL"),
}


def _grouped(rows: list[tuple[str, list[int | None]]], groups: dict[str, tuple[str, ...]], rest: str):
    """Rows under their group, with subtotals: [(group, subtotal, [(code, values), ...]), ...].

    Buckets ("_O", "_U") go to the ``rest`` group; a country without a group is an error, not a guess.
    """
    out = []
    for group, members in groups.items():
        children = [(c, v) for c, v in rows if c in members]
        if children:
            out.append((group, _column_sums(children), children))
    placed = {c for members in groups.values() for c in members}
    leftover = [(c, v) for c, v in rows if c not in placed]
    unplaced = [c for c, _ in leftover if not c.startswith("_")]
    if unplaced:
        raise KeyError(f"no region for {unplaced}")
    if leftover:
        out.append((rest, _column_sums(leftover), leftover))
    return out


_CRI_EXCLUDE = ("CRI",)  # "entradas de personas extranjeras": Costa Ricans are not counted


def _cri(path: Path, year: int = YEAR) -> None:
    """Costa Rica, DGME: entries of foreigners by region and nationality, months as columns (XLSX)."""
    import openpyxl

    rows = _top(iom_figures("regin", "CRI", MONTHS_2024), 25, exclude=_CRI_EXCLUDE)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = f"Entradas {year}"
    out: list[list[object]] = [
        ["DIRECCIÓN GENERAL DE MIGRACIÓN Y EXTRANJERÍA"],
        ["Unidad de Estadística - Área de Planificación Institucional"],
        [f"Entradas de personas extranjeras a Costa Rica por región y nacionalidad, según mes. Año {year}"],
        [None],
        ["Región / nacionalidad", *MONTHS_ES, "Total"],
    ]
    grand = _column_sums(rows)
    out.append(["Total general", *grand, sum(grand)])
    bold = [1, 2, 3, 5, 6]
    for group, subtotal, children in _grouped(rows, _CRI_REGIONS, "Resto del mundo"):
        out.append([group, *subtotal, sum(subtotal)])
        bold.append(len(out))
        for code, values in children:
            label = "Otras nacionalidades" if code == "_O" else _name(code)
            out.append(["    " + label, *[_cell(v, "(-)") for v in values], sum(v or 0 for v in values)])
    out += [
        [None],
        ["Fuente: DGME, Sistema de Control Migratorio, puestos migratorios aéreos, terrestres y marítimos."],
        ["Nota: cifras preliminares. (-) sin movimientos registrados."],
        [_iom_note("regin")],
    ]
    _xlsx_rows(ws, out, bold_rows=bold)
    ws.column_dimensions["A"].width = 34
    for row in ws.iter_rows(min_row=6, max_row=len(out) - 4, min_col=2, max_col=14):
        for cell in row:
            cell.number_format = "#,##0"
    _save_xlsx(wb, path)


def _slv(path: Path, year: int = YEAR) -> None:
    """El Salvador, DGME: Salvadorans returned, by country, route, sex and age group (CSV, UTF-8)."""
    rng = random.Random(_SEED + 222)
    flows = [
        ("Estados Unidos", "Aérea", 7_600),
        ("México", "Terrestre", 4_150),
        ("México", "Aérea", 310),
        ("Guatemala", "Terrestre", 120),
        ("Otros países", "Aérea", 140),
    ]
    rows: list[list[object]] = [
        ["Dirección General de Migración y Extranjería (DGME) - El Salvador"],
        [
            f"Personas salvadoreñas retornadas por país de procedencia, vía, sexo y grupo de edad. Enero - diciembre {year}"
        ],
        [SYNTHETIC_ES],
        [],
        ["Año", "Mes", "País de procedencia", "Vía de retorno", "Sexo", "Grupo de edad", "Retornados"],
    ]
    series = {(country, route): _spread(rng, n) for country, route, n in flows}
    for m, month in enumerate(MONTHS_ES):
        for country, route, _ in flows:
            total = series[(country, route)][m]
            minors, adults = _split(rng, total, 0.12)
            for age, n in (("Niñas, niños y adolescentes", minors), ("Personas adultas", adults)):
                men, women = _split(rng, n, 0.78 if age == "Personas adultas" else 0.58)
                for sex, v in (("Hombre", men), ("Mujer", women)):
                    rows.append([year, month, country, route, sex, age, _num(v, ",")])
    rows += [
        [],
        ["Fuente: DGME, Gerencia de Atención al Migrante, registros de los centros de recepción."],
        ["Nota: cifras preliminares; cada retorno es un evento. " + SYNTHETIC_ES],
    ]
    _write_csv(path, rows, ",", "utf-8")


def _gtm(path: Path, year: int = YEAR) -> None:
    """Guatemala, IGM: entries by nationality, months as columns (CSV, Latin-1, ';')."""
    rows = _top(iom_figures("regin", "GTM", MONTHS_2024), 25)
    out: list[list[object]] = [
        ["INSTITUTO GUATEMALTECO DE MIGRACIÓN"],
        [f"INGRESOS AL PAÍS POR NACIONALIDAD, SEGÚN MES - AÑO {year}"],
        ["NACIONALIDAD", *[m.upper() for m in MONTHS_ES], "TOTAL"],
    ]
    for code, values in rows:
        label = "OTRAS NACIONALIDADES" if code == "_O" else _name(code).upper()
        out.append([label, *[_num(v, ",") for v in values], _num(sum(v or 0 for v in values), ",")])
    grand = _column_sums(rows)
    out.append(["TOTAL", *[_num(v, ",") for v in grand], _num(sum(grand), ",")])
    out += [
        [],
        ["Fuente: IGM, Subdirección de Control Migratorio, puestos de control aéreos y terrestres."],
        ["Nota: incluye guatemaltecos. Cifras sujetas a revisión."],
        [_iom_note("regin")],
    ]
    _write_csv(path, out, ";", "latin-1", crlf=True)


def _hnd(path: Path, year: int = YEAR) -> None:
    """Honduras, INM: irregular transit by nationality, a 14-line preamble (CSV, CP850, ';')."""
    rows = _top(iom_figures("irreg", "HND", MONTHS_2024), 30)
    out: list[list[object]] = [
        ["REPÚBLICA DE HONDURAS"],
        ["SECRETARÍA DE ESTADO EN LOS DESPACHOS DE GOBERNACIÓN, JUSTICIA Y DESCENTRALIZACIÓN"],
        ["INSTITUTO NACIONAL DE MIGRACIÓN (INM)"],
        ["GERENCIA DE ESTADÍSTICA MIGRATORIA"],
        ["FLUJO MIGRATORIO IRREGULAR: PERSONAS EN TRÁNSITO IRREGULAR POR NACIONALIDAD"],
        [f"PERÍODO: ENERO - DICIEMBRE {year}"],
        ["UNIDAD: PERSONAS REGISTRADAS EN LOS CENTROS DE ATENCIÓN AL MIGRANTE IRREGULAR (CAMI)"],
        ["COBERTURA: CAMI DANLÍ, CAMI TROJES, CAMI CHOLUTECA Y OFICINAS REGIONALES"],
        ["FECHA DE CORTE: 10/02/2025"],
        ["CIFRAS PRELIMINARES, SUJETAS A REVISIÓN"],
        ["EXPORTADO DEL SISTEMA DE REGISTRO MIGRATORIO (SIREMI)"],
        ["NOTA: MUESTRA DE PRUEBA DEL OMH, CIFRAS DE LA SERIE OIM (IOM/AMERDIGEST, IRREG)"],
        [],
        [],
        ["AÑO", "MES", "NACIONALIDAD", "TOTAL PERSONAS"],
    ]
    for m, month in enumerate(MONTHS_ES):
        for code, values in rows:
            if not values[m]:
                continue
            label = "OTRAS NACIONALIDADES" if code == "_O" else _name(code).upper()
            out.append([year, month.upper(), label, _num(values[m], ",")])
    out += [[], ["FUENTE: INM, GERENCIA DE ESTADÍSTICA."]]
    _write_csv(path, out, ";", "cp850", crlf=True)


def _mex(path: Path, year: int = YEAR) -> None:
    """Mexico, UPM boletín cuadro 3.1.1: irregular events by continent and country, year over months (XLSX)."""
    import openpyxl

    rows = _top(iom_figures("irreg", "MEX", MONTHS_2024), 30)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "3.1.1"
    grand = _column_sums(rows)
    out: list[list[object]] = [
        ["Unidad de Política Migratoria, Registro e Identidad de Personas"],
        [f"Boletín Mensual de Estadísticas Migratorias {year}"],
        [
            "Cuadro 3.1.1 Eventos de personas en situación migratoria irregular en México, según continente y "
            f"país de nacionalidad, enero-diciembre de {year}"
        ],
        [None],
        ["Continente y país de nacionalidad", str(year)],
        [None, "Total", *MONTHS_ES],
        ["Total", sum(grand), *grand],
    ]
    bold = [1, 2, 3, 5, 6, 7]
    for group, subtotal, children in _grouped(rows, _CONTINENTS, "Otros"):
        if group == "Otros":
            for _code, values in children:
                out.append(["Otros países", sum(v or 0 for v in values), *[_cell(v) for v in values]])
            continue
        out.append([group, sum(subtotal), *subtotal])
        bold.append(len(out))
        for code, values in children:
            out.append(["   " + _name(code), sum(v or 0 for v in values), *[_cell(v) for v in values]])
    out += [
        [None],
        [
            "Notas: Las cifras se refieren a eventos, debido a que una persona pudo haber sido presentada ante la "
            "autoridad migratoria en más de una ocasión."
        ],
        ["- Cifra igual a cero. Cifras preliminares."],
        [
            "Fuente: Unidad de Política Migratoria, Registro e Identidad de Personas, SEGOB, con base en información "
            "registrada en las oficinas del INM."
        ],
        [_iom_note("irreg")],
    ]
    _xlsx_rows(ws, out, bold_rows=bold)
    ws.merge_cells("A5:A6")
    ws.merge_cells(start_row=5, start_column=2, end_row=5, end_column=14)
    _save_xlsx(wb, path)


def _nic(path: Path, year: int = YEAR) -> None:
    """Nicaragua, DGME: entries and exits of foreigners by nationality, period "Enero 2024" (CSV, cp1252)."""
    rng = random.Random(_SEED + 558)
    annual = {
        "HND": 252_000,
        "CRI": 198_000,
        "SLV": 151_000,
        "USA": 148_000,
        "GTM": 79_000,
        "CUB": 31_000,
        "PAN": 20_500,
        "HTI": 16_800,
        "MEX": 15_200,
        "CAN": 12_100,
        "VEN": 9_900,
        "COL": 9_100,
        "ESP": 8_200,
        "DEU": 5_100,
    }
    rows: list[list[object]] = [
        ["Dirección General de Migración y Extranjería – Nicaragua"],
        [f"Entradas y salidas de extranjeros por nacionalidad – {year} – {SYNTHETIC_ES}"],
        ["Período", "Nacionalidad", "Entradas", "Salidas"],
    ]
    series = {iso: _spread(rng, n) for iso, n in [*annual.items(), ("_O", 41_000)]}
    for m, month in enumerate(MONTHS_ES):
        period = f"{month} {year}"
        total_in = total_out = 0
        for iso, values in series.items():
            entries = values[m]
            exits = round(entries * rng.uniform(0.93, 1.03))
            total_in, total_out = total_in + entries, total_out + exits
            label = "Otras nacionalidades" if iso == "_O" else _name(iso)
            rows.append([period, label, _num(entries), _num(exits)])
        rows.append([period, "Total", _num(total_in), _num(total_out)])
    rows += [[], ["Fuente: DGME, Dirección de Estadísticas, puestos fronterizos y aeropuerto internacional."]]
    _write_csv(path, rows, ",", "cp1252", crlf=True)


def _pan(path: Path, year: int = YEAR) -> None:
    """Panama, SNM: monthly irregular transit through the Darién by country (XLSX)."""
    import openpyxl

    rows = _top(iom_figures("irreg", "PAN", MONTHS_2024), 25)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = f"DARIEN {year}"
    grand = _column_sums(rows)
    out: list[list[object]] = [
        ["REPÚBLICA DE PANAMÁ - SERVICIO NACIONAL DE MIGRACIÓN"],
        [f"TRÁNSITO IRREGULAR POR DARIÉN SEGÚN PAÍS, POR MES: ENERO - DICIEMBRE {year}"],
        [None],
        ["PAÍS", "TOTAL", *[m.upper() for m in MONTHS_ES]],
        ["TOTAL", sum(grand), *grand],
    ]
    for code, values in rows:
        label = "OTROS PAÍSES" if code == "_O" else _name(code).upper()
        out.append([label, sum(v or 0 for v in values), *[_cell(v) for v in values]])
    out += [
        [None],
        ["Fuente: Servicio Nacional de Migración, Departamento de Estadística."],
        ["Nota: cifras preliminares; una celda vacía no tiene dato."],
        [_iom_note("irreg")],
    ]
    _xlsx_rows(ws, out, bold_rows=(1, 2, 4, 5))
    _save_xlsx(wb, path)


def _dom(path: Path, year: int = YEAR) -> None:
    """Dominican Republic, DGM: deportations by nationality and sex, one date per month (XLSX)."""
    import openpyxl

    rng = random.Random(_SEED + 214)
    # Deportations of Haitians rose from October 2024 (a weekly target of 10,000).
    haiti_season = (0.8, 0.8, 0.85, 0.85, 0.85, 0.8, 0.8, 0.85, 0.85, 1.9, 2.1, 2.0)
    annual = {
        "HTI": (271_000, haiti_season, 0.86),
        "VEN": (1_250, _SEASON, 0.62),
        "COL": (520, _SEASON, 0.55),
        "CHN": (310, _SEASON, 0.7),
        "CUB": (260, _SEASON, 0.6),
        "_O": (640, _SEASON, 0.65),
    }
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Deportaciones"
    out: list[list[object]] = [
        ["Dirección General de Migración - República Dominicana"],
        [f"Deportaciones ejecutadas por nacionalidad y sexo, enero - diciembre {year}"],
        [SYNTHETIC_ES],
        [None],
        ["Fecha", "Nacionalidad", "Sexo", "Cantidad"],
    ]
    series = {iso: _spread(rng, n, season) for iso, (n, season, _) in annual.items()}
    for m in range(12):
        for iso, (_, _, male) in annual.items():
            men, women = _split(rng, series[iso][m], male)
            label = "Otras nacionalidades" if iso == "_O" else _name(iso)
            for sex, v in (("M", men), ("F", women)):
                out.append([dt.datetime(year, m + 1, 1), label, sex, v])
    out += [[None], ["Fuente: DGM, Dirección de Interdicción y Deportaciones."], ["Nota: " + SYNTHETIC_ES]]
    _xlsx_rows(ws, out, bold_rows=(1, 5))
    for r in range(6, 6 + 12 * len(annual) * 2):
        ws.cell(r, 1).number_format = "dd/mm/yyyy"
    _save_xlsx(wb, path)


def _usa(path: Path, year: int = YEAR) -> None:
    """US Refugee Processing Center: refugee arrivals by nationality and month of fiscal year 2024 (CSV)."""
    rng = random.Random(_SEED + 840)
    annual = {
        "Dem. Rep. Congo": 18_500,
        "Afghanistan": 14_400,
        "Syria": 10_800,
        "Venezuela": 9_700,
        "Burma": 8_100,
        "Guatemala": 5_400,
        "Sudan": 3_900,
        "Somalia": 3_100,
        "Ukraine": 2_900,
        "Iraq": 2_500,
        "Eritrea": 2_200,
        "El Salvador": 2_000,
        "Colombia": 1_800,
        "Honduras": 1_500,
        "Ethiopia": 1_450,
        "Iran": 1_200,
        "Burundi": 1_100,
        "Moldova": 900,
        "Cuba": 700,
        "Russia": 680,
        "Bhutan": 610,
        "Nicaragua": 590,
        "Central African Republic": 480,
        "South Sudan": 400,
    }
    # Arrivals climb through the fiscal year (October first).
    season = (0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 1.25, 1.45)
    months = ("Oct", "Nov", "Dec", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep")
    body = [(label, _spread(rng, n, season)) for label, n in annual.items()]
    body.append(("Other", _spread(rng, 3_100, season)))
    rows: list[list[object]] = [
        ["Refugee Processing Center"],
        ["Admissions & Arrivals - Refugee Arrivals by Nationality and Month"],
        [f"Arrivals from October 01, {year - 1} through September 30, {year} (Fiscal Year {year})"],
        [SYNTHETIC_EN],
        [],
        ["Nationality", *months, "Total"],
    ]
    rows += _with_totals(body, "Total", ",")
    rows += [
        [],
        ["Source: Department of State, Bureau of Population, Refugees, and Migration (PRM), WRAPS."],
        ["Data are preliminary and subject to change. " + SYNTHETIC_EN],
    ]
    _write_csv(path, rows, ",", "utf-8")


# ---------------------------------------------------------------------------- CSM member states


def _arg(path: Path, year: int = YEAR) -> None:
    """Argentina, DNM: entries of foreigners by nationality and month (CSV, Latin-1, ';', decimal comma)."""
    rows = _top(iom_figures("regin", "ARG", MONTHS_2024), 25)
    out: list[list[object]] = [
        ["Dirección Nacional de Migraciones - Ministerio del Interior - República Argentina"],
        [f"Ingresos de extranjeros al país por nacionalidad y mes. Año {year}"],
        ["Cifras provisorias"],
        [],
        ["Año", "Mes", "Nacionalidad", "Ingresos", "Participación mensual (%)"],
    ]
    for m, month in enumerate(MONTHS_ES):
        total = sum(values[m] or 0 for _, values in rows)
        for code, values in rows:
            label = "OTROS PAÍSES" if code == "_O" else _name(code).upper()
            share = "" if values[m] is None else f"{100 * values[m] / total:.1f}".replace(".", ",")
            out.append([year, month, label, _num(values[m], "."), share])
        out.append([year, month, "TOTAL", _num(total, "."), "100,0"])
    out += [
        [],
        ["Fuente: DNM, Sistema Integral de Captura Migratoria (SICaM), todos los pasos habilitados."],
        [
            "Nota: cifras provisorias, sujetas a rectificación. Una celda vacía: la nacionalidad no se "
            "detalla ese mes y está incluida en OTROS PAÍSES."
        ],
        [_iom_note("regin")],
    ]
    _write_csv(path, out, ";", "latin-1", crlf=True)


def _bol(path: Path, year: int = YEAR) -> None:
    """Bolivia, DIGEMIG: international exits by country of destination, June-September 2024 (XLS)."""
    import xlwt

    months = ("2024-06", "2024-07", "2024-08", "2024-09")
    # An exit "to Bolivia" in the series is a destination not recorded.
    rows = _top(iom_figures("regout", "BOL", months), 20, unknown=("BOL",))
    book = xlwt.Workbook(encoding="utf-8")
    ws = book.add_sheet(f"Salidas {year}")
    bold = xlwt.easyxf("font: bold on")
    number = xlwt.easyxf(num_format_str="#,##0")
    ws.write(0, 0, "ESTADO PLURINACIONAL DE BOLIVIA", bold)
    ws.write(1, 0, "MINISTERIO DE GOBIERNO - DIRECCIÓN GENERAL DE MIGRACIÓN (DIGEMIG)", bold)
    ws.write(2, 0, f"SALIDAS INTERNACIONALES POR PAÍS DE DESTINO, JUNIO - SEPTIEMBRE {year}", bold)
    for c, label in enumerate(("PAÍS DE DESTINO", "JUNIO", "JULIO", "AGOSTO", "SEPTIEMBRE", "TOTAL")):
        ws.write(4, c, label, bold)
    r = 5
    for code, values in rows:
        label = {"_O": "OTROS PAÍSES", "_U": "NO ESPECIFICADO"}.get(code) or _name(code).upper()
        ws.write(r, 0, label)
        for c, v in enumerate([*values, sum(v or 0 for v in values)], start=1):
            ws.write(r, c, "-" if v == 0 else v, number)
        r += 1
    grand = _column_sums(rows)
    ws.write(r, 0, "TOTAL GENERAL", bold)
    for c, v in enumerate([*grand, sum(grand)], start=1):
        ws.write(r, c, v, number)
    ws.write(
        r + 2, 0, "Fuente: DIGEMIG, registros de control migratorio en puestos fronterizos y aeropuertos."
    )
    ws.write(r + 3, 0, "Nota: cifras preliminares.")
    ws.write(r + 4, 0, _iom_note("regout"))
    _save_xls(book, path)


def _bra(path: Path, year: int = YEAR) -> None:
    """Brazil, CONARE/SISCONARE: refugee-status applications by nationality, sex and month (CSV, BOM, ';')."""
    rng = random.Random(_SEED + 76)
    annual = {
        "VEN": 30_400,
        "CUB": 11_900,
        "AGO": 3_150,
        "COL": 1_620,
        "AFG": 1_410,
        "IND": 1_290,
        "CHN": 1_060,
        "HTI": 910,
        "SEN": 760,
        "NGA": 700,
        "BGD": 560,
        "NPL": 420,
        "GHA": 380,
        "COD": 360,
        "PAK": 330,
        "GNB": 290,
        "SYR": 280,
        "VNM": 260,
        "MAR": 240,
        "CMR": 220,
        "PER": 210,
        "LBN": 190,
        "BOL": 150,
    }
    male_share = {"VEN": 0.52, "CUB": 0.55, "COL": 0.5, "HTI": 0.58, "PER": 0.52, "BOL": 0.5}
    series = {iso: _spread(rng, n) for iso, n in [*annual.items(), ("_S", 44), ("_O", 2_410)]}
    rows: list[list[object]] = [
        ["MINISTÉRIO DA JUSTIÇA E SEGURANÇA PÚBLICA - COMITÊ NACIONAL PARA OS REFUGIADOS (CONARE)"],
        [
            f"Solicitações de reconhecimento da condição de refugiado por país de nacionalidade, sexo e mês - {year}"
        ],
        ["DADOS SINTÉTICOS / SYNTHETIC DATA - não são cifras oficiais (amostra de teste do OMH)"],
        [],
        ["Ano", "Mês", "País de nacionalidade", "Masculino", "Feminino", "Não informado", "Total"],
    ]
    for m, month in enumerate(MONTHS_PT):
        for iso, values in series.items():
            total = values[m]
            unstated = rng.choice((0, 0, 0, 0, 1, 2)) if total > 20 else 0
            men, women = _split(rng, total - unstated, male_share.get(iso, 0.72))
            label = {"_O": "Outros países", "_S": "Apátrida"}.get(iso) or _name(iso, "pt")
            rows.append(
                [year, month, label, _num(men, "."), _num(women, "."), _num(unstated, "."), _num(total, ".")]
            )
    rows += [
        [],
        ["Fonte: CONARE/SISCONARE; Polícia Federal. Elaboração: OBMigra."],
        ["Nota: dados sintéticos gerados para testes do OMH; não usar como estatística oficial."],
    ]
    _write_csv(path, rows, ";", "utf-8-sig", crlf=True)


def _chl(path: Path, year: int = YEAR) -> None:
    """Chile, SERMIG: residence permits granted by country, sex and type; a 'FUENTE' column (CSV, ';')."""
    rng = random.Random(_SEED + 152)
    annual = {
        "VENEZUELA": (52_000, 38_000),
        "PERÚ": (14_000, 9_100),
        "COLOMBIA": (12_100, 8_000),
        "BOLIVIA": (9_000, 5_100),
        "HAITÍ": (7_000, 6_100),
        "CUBA": (3_500, 1_800),
        "ARGENTINA": (3_000, 1_500),
        "REPÚBLICA DOMINICANA": (2_600, 1_900),
        "CHINA": (2_500, 1_200),
        "ECUADOR": (2_200, 1_400),
        "BRASIL": (1_500, 700),
        "ESPAÑA": (1_400, 600),
        "ESTADOS UNIDOS": (1_200, 500),
        "PARAGUAY": (900, 400),
        "MÉXICO": (800, 350),
        "OTROS": (6_000, 2_500),
    }
    rows: list[list[object]] = [["AÑO", "MES", "PAÍS", "SEXO", "TIPO_RESIDENCIA", "TOTAL", "FUENTE"]]
    source = "DATOS SINTÉTICOS - sintético, no oficial"
    series = {
        (c, t): _spread(rng, n)
        for c, pair in annual.items()
        for t, n in zip(("TEMPORAL", "DEFINITIVA"), pair, strict=True)
    }
    for m in range(12):
        for (country, kind), values in series.items():
            men, women = _split(rng, values[m], 0.49)
            for sex, v in (("HOMBRE", men), ("MUJER", women)):
                rows.append([year, m + 1, country, sex, kind, _num(v, ".", zero="0"), source])
    _write_csv(path, rows, ";", "utf-8")


def _col(path: Path, year: int = YEAR) -> None:
    """Colombia, Migración Colombia: exits of travellers by country of destination (CSV, open-data style)."""
    rows = _top(iom_figures("regout", "COL", MONTHS_2024), 30, unknown=("COL",))
    out: list[list[object]] = [["Año", "Mes", "País Destino", "Codigo M49 Destino", "Total Salidas"]]
    for m, month in enumerate(MONTHS_ES):
        for code, values in rows:
            if code == "_O":
                label, m49 = "Otros Países", "999"
            elif code == "_U":
                label, m49 = "Sin Información", "000"
            else:
                label, m49 = _name(code), _countries()[code]["m49"]
            out.append([year, month, label, m49, _num(values[m], ",", zero="0")])
    out += [[], ["Fuente: Migración Colombia, puestos de control migratorio."], [_iom_note("regout")]]
    _write_csv(path, out, ",", "utf-8")


def _ecu(path: Path, year: int = YEAR) -> None:
    """Ecuador, Registro de Entradas y Salidas Internacionales: entries by nationality (CSV, INEC style)."""
    rows = _top(iom_figures("regin", "ECU", MONTHS_2024), 30)
    out: list[list[object]] = [["anio", "mes", "cod_nac", "nacionalidad", "entradas"]]
    for m in range(12):
        for code, values in rows:
            if values[m] is None:
                continue
            cod, label = (
                ("999", "Otras nacionalidades") if code == "_O" else (_countries()[code]["m49"], _name(code))
            )
            out.append([year, m + 1, cod, label, values[m]])
    out += [
        [],
        ["Fuente: Registro Estadístico de Entradas y Salidas Internacionales (ESI)."],
        [_iom_note("regin")],
    ]
    _write_csv(path, out, ",", "utf-8")


def _guy(path: Path, year: int = YEAR) -> None:
    """Guyana, Central Immigration and Passport Office: arrivals and departures by nationality (CSV)."""
    rng = random.Random(_SEED + 328)
    annual = {
        "GUY": 182_000,
        "USA": 118_000,
        "TTO": 35_500,
        "CAN": 24_800,
        "VEN": 19_600,
        "BRA": 18_200,
        "BRB": 12_100,
        "CUB": 11_800,
        "SUR": 10_200,
        "IND": 9_100,
        "CHN": 8_300,
        "GBR": 7_200,
        "JAM": 5_100,
        "DOM": 4_200,
        "HTI": 2_900,
    }
    rows: list[list[object]] = [
        [
            f"Ministry of Home Affairs - Central Immigration and Passport Office, Guyana: arrivals and departures "
            f"by nationality, {year}. SYNTHETIC DATA - not official figures (OMH test sample)"
        ],
        ["Year", "Month", "Nationality", "Arrivals", "Departures"],
    ]
    series = {iso: _spread(rng, n) for iso, n in [*annual.items(), ("_O", 19_700)]}
    for m, month in enumerate(MONTHS_EN):
        for iso, values in series.items():
            arrivals = values[m]
            departures = round(arrivals * rng.uniform(0.94, 1.03))
            label = "Other" if iso == "_O" else _name(iso, "en")
            rows.append([year, month, label, _num(arrivals), _num(departures)])
    rows += [
        [],
        [
            "Source: Central Immigration and Passport Office, ports of entry (CJIA, Ogle, Moleson Creek, "
            "Lethem)."
        ],
    ]
    _write_csv(path, rows, ",", "utf-8", crlf=True)


def _pry(path: Path, year: int = YEAR) -> None:
    """Paraguay, DNM: residence permits (radicaciones) by nationality, type and quarter (XLS, two header rows)."""
    import xlwt

    rng = random.Random(_SEED + 600)
    annual = {
        "BRA": (6_000, 2_500),
        "ARG": (3_500, 1_800),
        "BOL": (1_500, 600),
        "COL": (900, 300),
        "URY": (800, 300),
        "VEN": (700, 250),
        "DEU": (600, 300),
        "PER": (600, 250),
        "CHL": (500, 200),
        "CHN": (500, 200),
        "USA": (450, 150),
        "ESP": (400, 200),
        "RUS": (350, 120),
        "KOR": (300, 150),
        "CUB": (300, 100),
        "TWN": (250, 150),
        "MEX": (200, 80),
        "JPN": (120, 60),
        "LBN": (100, 80),
        "ZAF": (5, 2),
        "_O": (1_500, 500),
    }
    season = (1.0, 1.05, 0.95, 1.0)
    book = xlwt.Workbook(encoding="utf-8")
    ws = book.add_sheet("Radicaciones")
    bold = xlwt.easyxf("font: bold on; align: horiz center")
    ws.write(0, 0, "DIRECCIÓN NACIONAL DE MIGRACIONES - REPÚBLICA DEL PARAGUAY", bold)
    ws.write(
        1, 0, f"Radicaciones otorgadas por nacionalidad, tipo de radicación y trimestre - Año {year}", bold
    )
    ws.write(2, 0, SYNTHETIC_ES)
    ws.write(4, 0, "Nacionalidad", bold)
    ws.write_merge(4, 4, 1, 4, "Radicación temporal", bold)
    ws.write_merge(4, 4, 5, 8, "Radicación permanente", bold)
    ws.write(4, 9, f"Total {year}", bold)
    for c, label in enumerate(("1er trim.", "2do trim.", "3er trim.", "4to trim.") * 2, start=1):
        ws.write(5, c, label, bold)
    r = 6
    body = []
    for iso, (temporary, permanent) in annual.items():
        values = _spread(rng, temporary, season, 0.2) + _spread(rng, permanent, season, 0.2)
        body.append((iso, values))
    for iso, values in body:
        ws.write(r, 0, "Otras nacionalidades" if iso == "_O" else _name(iso))
        for c, v in enumerate([*values, sum(values)], start=1):
            ws.write(r, c, "(-)" if v == 0 else v)
        r += 1
    grand = _column_sums(body)
    ws.write(r, 0, "TOTAL", bold)
    for c, v in enumerate([*grand, sum(grand)], start=1):
        ws.write(r, c, v, bold)
    ws.write(r + 2, 0, "Fuente: DNM, Dirección de Radicaciones. (-) Sin movimiento.")
    ws.write(r + 3, 0, "Nota: " + SYNTHETIC_ES)
    _save_xls(book, path)


def _per(path: Path, year: int = YEAR) -> None:
    """Peru, Migraciones: CPP (regularisation) permits approved by nationality, sex, age group (CSV)."""
    rng = random.Random(_SEED + 604)
    annual = {
        "VENEZUELA": 181_000,
        "COLOMBIA": 2_550,
        "CUBA": 1_820,
        "ECUADOR": 910,
        "HAITÍ": 720,
        "CHINA": 510,
        "BOLIVIA": 350,
        "REPÚBLICA DOMINICANA": 260,
        "OTROS": 610,
    }
    ages = (("0 - 17", 0.25), ("18 - 59", 0.72), ("60 A MÁS", 0.03))
    months = [m.upper() for m in MONTHS_ES]
    months[8] = "SETIEMBRE"  # Peru's spelling
    rows: list[list[object]] = [
        [
            f"SUPERINTENDENCIA NACIONAL DE MIGRACIONES - CARNÉ DE PERMISO TEMPORAL DE PERMANENCIA (CPP): "
            f"SOLICITUDES APROBADAS {year} - {SYNTHETIC_ES}"
        ],
        ["AÑO", "MES", "NACIONALIDAD", "SEXO", "GRUPO DE EDAD", "APROBADOS"],
    ]
    series = {label: _spread(rng, n, noise=0.3) for label, n in annual.items()}
    for m, month in enumerate(months):
        for label, values in series.items():
            men, women = _split(rng, values[m], 0.48)
            for sex, n in (("MASCULINO", men), ("FEMENINO", women)):
                remaining = n
                for a, (age, share) in enumerate(ages):
                    v = remaining if a == len(ages) - 1 else min(remaining, round(n * share))
                    remaining -= v
                    rows.append([year, month, label, sex, age, _num(v, ",", zero="0")])
    _write_csv(path, rows, ",", "utf-8")


def _sur(path: Path, year: int = YEAR) -> None:
    """Suriname, Vreemdelingenpolitie: arrivals by nationality, Dutch/English labels (tab-separated text)."""
    rng = random.Random(_SEED + 740)
    annual = {
        "Nederland": 94_800,
        "Frans-Guyana": 40_200,
        "Guyana": 35_100,
        "Brazilië": 19_800,
        "Verenigde Staten": 12_100,
        "China": 9_050,
        "Venezuela": 8_000,
        "Cuba": 6_100,
        "Haïti": 3_500,
        "India": 3_050,
        "Trinidad en Tobago": 2_950,
        "Indonesië": 2_500,
        "België": 2_480,
        "Dominicaanse Republiek": 2_450,
        "Duitsland": 1_800,
        "Colombia": 1_500,
        "Overige landen": 11_900,
    }
    rows: list[list[object]] = [
        ["Korps Politie Suriname - Vreemdelingenpolitie / Aliens Police"],
        [
            f"Aankomsten van niet-ingezetenen per nationaliteit en maand, {year} / Arrivals of non-residents by "
            f"nationality and month, {year}"
        ],
        ["SYNTHETISCHE GEGEVENS / SYNTHETIC DATA - geen officiële cijfers / not official figures"],
        [],
        ["Jaar / Year", "Maand / Month", "Nationaliteit / Nationality", "Aankomsten / Arrivals"],
    ]
    series = {label: _spread(rng, n) for label, n in annual.items()}
    for m, month in enumerate(MONTHS_NL):
        for label, values in series.items():
            rows.append([year, month, label, _num(values[m], ".")])
    rows += [
        [],
        ["Bron / Source: Vreemdelingenpolitie, grensposten Johan Adolf Pengel, Nieuw-Nickerie, Albina."],
    ]
    _write_csv(path, rows, "\t", "utf-8", crlf=True)


def _ury(path: Path, year: int = YEAR) -> None:
    """Uruguay, Comisión de Refugiados: asylum applications (case files) by nationality and quarter (CSV)."""
    rng = random.Random(_SEED + 858)
    annual = {
        "Cuba": 8_900,
        "Venezuela": 610,
        "Rep. Dominicana": 310,
        "Colombia": 250,
        "Rusia": 150,
        "Senegal": 120,
        "Perú": 90,
        "Haití": 48,
        "Ucrania": 40,
        "Ecuador": 30,
        "Bolivia": 14,
        "China": 9,
        "Afganistán": 6,
        "Otros": 80,
    }
    season = (1.1, 0.95, 0.9, 1.05)
    rows: list[list[object]] = [
        [
            f"Comisión de Refugiados (CORE) - Solicitudes de refugio por país de nacionalidad y trimestre, {year}. "
            + SYNTHETIC_ES
        ],
        ["Año", "Trimestre", "País de nacionalidad", "Solicitudes (expedientes)"],
    ]
    series = {label: _spread(rng, n, season, 0.3) for label, n in annual.items()}
    for q, quarter in enumerate(("I", "II", "III", "IV")):
        for label, values in series.items():
            v = values[q]
            rows.append([year, quarter, label, "--" if 0 < v < 3 else _num(v, ".")])
    rows += [
        [],
        ["-- menos de 3 expedientes (reservado). Un expediente puede incluir a varias personas."],
        ["Fuente: CORE / Dirección Nacional de Migración, Ministerio del Interior."],
    ]
    _write_csv(path, rows, ",", "utf-8")


def _ven(path: Path, year: int = YEAR) -> None:
    """Venezuela, SAIME: nationals returned by the Plan Vuelta a la Patria, months as 'Ene-24' (CSV, ';')."""
    rng = random.Random(_SEED + 862)
    annual = {
        "PER": 4_050,
        "CHL": 2_480,
        "USA": 2_050,
        "ECU": 1_520,
        "MEX": 1_480,
        "BRA": 1_210,
        "COL": 910,
        "PAN": 790,
        "ARG": 700,
        "DOM": 520,
        "TTO": 310,
        "CRI": 210,
        "URY": 150,
        "BOL": 120,
    }
    months = [f"{m[:3]}-{year % 100}" for m in MONTHS_ES]
    body = [(_name(iso), _spread(rng, n, noise=0.4)) for iso, n in annual.items()]
    body.append(("Otros países", _spread(rng, 190, noise=0.4)))
    rows: list[list[object]] = [
        [
            "República Bolivariana de Venezuela - Servicio Administrativo de Identificación, Migración y "
            "Extranjería (SAIME)"
        ],
        [f"Plan Vuelta a la Patria: connacionales retornados según país de procedencia y mes, {year}"],
        [SYNTHETIC_ES],
        [],
        ["País de procedencia", *months, f"Total {year}"],
    ]
    rows += _with_totals(body, "Total general", ".")
    rows += [[], ["Fuente: SAIME; Ministerio del Poder Popular para Relaciones Exteriores."]]
    _write_csv(path, rows, ";", "utf-8")


# ---------------------------------------------------------------------------- the samples

SAMPLES: tuple[Sample, ...] = (
    Sample(
        "BLZ",
        "blz_ind_arrivals_quarterly",
        "IND_arrivals_by_nationality_quarterly_2024_2025-02-03.xls",
        dt.date(2025, 2, 3),
        _blz,
    ),
    Sample(
        "CAN",
        "can_ircc_residents_permanents_fr",
        "IRCC_FR_ODP-RP-Pays_citoyennete_mensuel_2025-03-28.xlsx",
        dt.date(2025, 3, 28),
        _can,
    ),
    Sample(
        "CRI",
        "cri_dgme_entradas_extranjeros",
        "DGME_entradas_extranjeros_region_nacionalidad_2024_2025-03-07.xlsx",
        dt.date(2025, 3, 7),
        _cri,
        "regin",
        MONTHS_2024,
        _CRI_EXCLUDE,
    ),
    Sample(
        "SLV",
        "slv_dgme_retornados",
        "DGME_personas_salvadorenas_retornadas_2024_2025-02-21.csv",
        dt.date(2025, 2, 21),
        _slv,
    ),
    Sample(
        "GTM",
        "gtm_igm_ingresos_nacionalidad",
        "IGM_ingresos_por_nacionalidad_2024_2025-01-31.csv",
        dt.date(2025, 1, 31),
        _gtm,
        "regin",
        MONTHS_2024,
    ),
    Sample(
        "HND",
        "hnd_inm_flujo_irregular",
        "INM_flujo_migratorio_irregular_2024_2025-02-10.csv",
        dt.date(2025, 2, 10),
        _hnd,
        "irreg",
        MONTHS_2024,
    ),
    Sample(
        "MEX",
        "mex_upm_eventos_irregulares",
        "UPM_boletin_cuadro_3.1.1_eventos_irregulares_2024_2025-03-14.xlsx",
        dt.date(2025, 3, 14),
        _mex,
        "irreg",
        MONTHS_2024,
    ),
    Sample(
        "NIC",
        "nic_dgme_entradas_salidas",
        "DGME_entradas_salidas_extranjeros_2024_2025-04-04.csv",
        dt.date(2025, 4, 4),
        _nic,
    ),
    Sample(
        "PAN",
        "pan_snm_transito_irregular_mensual",
        "SNM_transito_irregular_por_pais_mensual_2024_2025-01-15.xlsx",
        dt.date(2025, 1, 15),
        _pan,
        "irreg",
        MONTHS_2024,
    ),
    Sample(
        "DOM",
        "dom_dgm_deportaciones",
        "DGM_deportaciones_por_nacionalidad_2024_2025-01-29.xlsx",
        dt.date(2025, 1, 29),
        _dom,
    ),
    Sample(
        "USA",
        "usa_rpc_refugee_arrivals",
        "RPC_refugee_arrivals_by_nationality_FY2024_2024-11-08.csv",
        dt.date(2024, 11, 8),
        _usa,
    ),
    Sample(
        "ARG",
        "arg_dnm_ingresos_nacionalidad",
        "DNM_ingresos_extranjeros_por_nacionalidad_2024_2025-02-14.csv",
        dt.date(2025, 2, 14),
        _arg,
        "regin",
        MONTHS_2024,
    ),
    Sample(
        "BOL",
        "bol_digemig_salidas_destino",
        "DIGEMIG_salidas_por_pais_de_destino_jun-sep_2024_2025-01-20.xls",
        dt.date(2025, 1, 20),
        _bol,
        "regout",
        ("2024-06", "2024-07", "2024-08", "2024-09"),
    ),
    Sample(
        "BRA",
        "bra_conare_solicitacoes_refugio",
        "SISCONARE_solicitacoes_de_refugio_2024_2025-03-20.csv",
        dt.date(2025, 3, 20),
        _bra,
    ),
    Sample(
        "CHL",
        "chl_sermig_residencias_otorgadas",
        "SERMIG_residencias_otorgadas_2024_2025-04-10.csv",
        dt.date(2025, 4, 10),
        _chl,
    ),
    Sample(
        "COL",
        "col_salidas_pais_destino",
        "Salidas_de_viajeros_por_pais_de_destino_2024_2025-02-28.csv",
        dt.date(2025, 2, 28),
        _col,
        "regout",
        MONTHS_2024,
    ),
    Sample(
        "ECU",
        "ecu_esi_entradas_nacionalidad",
        "esi_entradas_internacionales_nacionalidad_2024_2025-04-25.csv",
        dt.date(2025, 4, 25),
        _ecu,
        "regin",
        MONTHS_2024,
    ),
    Sample(
        "GUY",
        "guy_cipo_arrivals_departures",
        "CIPO_arrivals_departures_by_nationality_2024_2025-03-03.csv",
        dt.date(2025, 3, 3),
        _guy,
    ),
    Sample(
        "PRY",
        "pry_dnm_radicaciones",
        "DNM_radicaciones_otorgadas_trimestral_2024_2025-02-17.xls",
        dt.date(2025, 2, 17),
        _pry,
    ),
    Sample(
        "PER",
        "per_migraciones_cpp",
        "MIGRACIONES_CPP_aprobados_nacionalidad_sexo_edad_2024_2025-03-31.csv",
        dt.date(2025, 3, 31),
        _per,
    ),
    Sample(
        "SUR",
        "sur_vreemdelingenpolitie_aankomsten",
        "VP_aankomsten_per_nationaliteit_2024_2025-04-15.txt",
        dt.date(2025, 4, 15),
        _sur,
    ),
    Sample(
        "URY",
        "ury_core_solicitudes_refugio",
        "CORE_solicitudes_de_refugio_trimestral_2024_2025-03-12.csv",
        dt.date(2025, 3, 12),
        _ury,
    ),
    Sample(
        "VEN",
        "ven_saime_vuelta_a_la_patria",
        "SAIME_plan_vuelta_a_la_patria_retornados_2024_2025-01-24.csv",
        dt.date(2025, 1, 24),
        _ven,
    ),
)


def write_samples(landing: Path | None = None, year: int = YEAR) -> list[Path]:
    """Write the sample landing file of every member state under ``landing/<ISO3>/``; same bytes
    every run. ``year``: the year the files report (their titles, period cells and names); the
    figures stay IOM's of 2024, so a demo can show recent months with the same real magnitudes."""
    if landing is None:
        from transforms.config import settings

        landing = settings().landing
    landing = Path(landing)
    written = []
    for sample in SAMPLES:
        path = sample.path(landing)
        if year != YEAR:
            path = path.with_name(_shift_years(path.name, year - YEAR))
        sample.write(path, year)
        written.append(path)
    return written


def _shift_years(name: str, years: int) -> str:
    """A sample's file name for another year: every year in it (the period's, the release date's)
    moved by ``years``."""
    return re.sub(r"(?<!\d)20\d\d(?!\d)", lambda m: str(int(m.group()) + years), name)


def recent_year(today: dt.date | None = None) -> int:
    """The last whole calendar year before ``today`` (the observatory's date): the year of the
    demo's recent deliveries, so the completeness grid of the last 24 months shows loaded months."""
    from transforms.config import today as observatory_today

    return (today or observatory_today()).year - 1
