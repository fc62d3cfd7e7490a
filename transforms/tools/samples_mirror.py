"""Counterpart sample feeds: the other side of each mirror pair of ``data/mirror_pairs.yaml``.

The member states' samples (``transforms.tools.samples.SAMPLES``, one per member state) hold one side of
each pair; these files hold the other, for the same months, so the demo's ``v_mirror`` shows pairs
within and out of tolerance:

* Costa Rica's registrations of people in irregular transit entering from Panama, against
  Panama's Darién transit (IOM's real monthly figures): the same people a few days later, fewer
  in the months the southern border post was bypassed (May, October);
* Mexico's returns (devoluciones) by nationality, against the returns received from Mexico that
  Guatemala and Honduras report (and El Salvador's existing sample).

All SYNTHETIC (the figures are derived, not published) and say so in their title lines. The
figures do not depend on the year the files are written for (like the member states' samples).
"""

from __future__ import annotations

import datetime as dt
import random
from functools import lru_cache
from pathlib import Path

from transforms.tools.samples import (
    MONTHS_2024,
    MONTHS_ES,
    SYNTHETIC_ES,
    YEAR,
    Sample,
    _csv_text,
    _name,
    _num,
    _shift_years,
    _spread,
    _top,
    _write_bytes,
    iom_figures,
)

_SEED = 20261204
# Costa Rica's count against Panama's, per month: close to 1 (the same people), except May and
# October (the border post bypassed), so the Darién pair is out of tolerance in those months.
CRI_FACTOR = (0.97, 0.96, 0.99, 1.02, 0.80, 0.98, 0.97, 1.01, 0.96, 0.84, 0.98, 0.99)
# Guatemala's returns received from Mexico against Mexico's returns of Guatemalans: within 10 %
# except March and August (Guatemala also counts the people Mexico returned by air, late).
GTM_FACTOR = (0.98, 1.01, 1.24, 0.97, 1.02, 0.99, 0.96, 1.21, 1.00, 0.98, 1.03, 0.97)
# Honduras registers 88-93 % of Mexico's events (a person returned twice in a month is one
# registration), and about 74 % in the months its reception centre at Corinto was closed.
HND_FACTOR = (0.91, 0.90, 0.93, 0.74, 0.89, 0.92, 0.90, 0.74, 0.88, 0.91, 0.74, 0.90)
# Mexico's yearly returns by nationality (devoluciones; events).
MEX_RETURNS = {"GTM": 31_200, "HND": 27_600, "SLV": 4_800, "NIC": 2_100}
MEX_RETURNS_OTHER = 2_900


@lru_cache(maxsize=1)
def mex_returns() -> dict[str, list[int]]:
    """Mexico's monthly returns by nationality ("_O": the other nationalities)."""
    rng = random.Random(_SEED)
    out = {iso: _spread(rng, n, noise=0.08) for iso, n in MEX_RETURNS.items()}
    out["_O"] = _spread(rng, MEX_RETURNS_OTHER, noise=0.2)
    return out


def _title_rows(agency: str, title: str, header: list[str]) -> list[list[object]]:
    return [[agency], [title], [SYNTHETIC_ES], [], header]


def _cri_irregular(path: Path, year: int = YEAR) -> None:
    """Costa Rica, DGME: people in irregular transit registered entering from Panama, by
    nationality and month (CSV, UTF-8, ';', '.' for thousands)."""
    rows = _top(iom_figures("irreg", "PAN", MONTHS_2024), 25)
    out = _title_rows(
        "Dirección General de Migración y Extranjería (DGME) - Costa Rica",
        "Personas migrantes en tránsito irregular registradas al ingresar desde Panamá (CATEM Sur), "
        f"por nacionalidad y mes. Año {year}",
        ["Año", "Mes", "Nacionalidad", "Personas"],
    )
    for m, month in enumerate(MONTHS_ES):
        for code, values in rows:
            if values[m] is None:
                continue
            label = "Otras nacionalidades" if code == "_O" else _name(code)
            out.append([year, month, label, _num(round(values[m] * CRI_FACTOR[m]), ".", "0")])
    out += [[], ["Fuente: DGME, Centro de Atención Temporal de Migrantes (CATEM Sur), Paso Canoas."]]
    _write_bytes(path, _csv_text(out, ";").encode("utf-8"))


def _mex_returns(path: Path, year: int = YEAR) -> None:
    """Mexico, UPM: returns (devoluciones) of foreigners by nationality and month (CSV, UTF-8)."""
    out = _title_rows(
        "Unidad de Política Migratoria, Registro e Identidad de Personas (UPM) - México",
        f"Eventos de personas extranjeras devueltas por la autoridad migratoria mexicana, según país de "
        f"nacionalidad y mes, enero-diciembre de {year}",
        ["Año", "Mes", "País de nacionalidad", "Eventos"],
    )
    for m, month in enumerate(MONTHS_ES):
        for code, values in mex_returns().items():
            label = "Otros países" if code == "_O" else _name(code)
            out.append([year, month, label, _num(values[m], ",", "0")])
    out += [[], ["Fuente: UPM con base en registros del INM. Cada devolución es un evento."]]
    _write_bytes(path, _csv_text(out, ",").encode("utf-8"))


def _received(
    path: Path,
    year: int,
    iso3: str,
    who: str,
    agency: str,
    factors: tuple[float, ...],
    from_usa: int,
    seed: int,
) -> None:
    """Nationals returned, by the country returning them and month: from Mexico (Mexico's returns
    of this nationality times ``factors``) and from the United States (by air)."""
    rng = random.Random(_SEED + seed)
    usa = _spread(rng, from_usa, noise=0.1)
    out = _title_rows(
        agency,
        f"Personas {who} retornadas por país de procedencia y vía, según mes. Año {year}",
        ["Año", "Mes", "País de procedencia", "Vía", "Retornados"],
    )
    for m, month in enumerate(MONTHS_ES):
        from_mex = round(mex_returns()[iso3][m] * factors[m])
        out.append([year, month, "México", "Terrestre", _num(from_mex, ",", "0")])
        out.append([year, month, "Estados Unidos", "Aérea", _num(usa[m], ",", "0")])
    out += [[], ["Fuente: registros de los centros de recepción de personas retornadas."]]
    _write_bytes(path, _csv_text(out, ",").encode("utf-8"))


def _gtm_received(path: Path, year: int = YEAR) -> None:
    _received(
        path,
        year,
        "GTM",
        "guatemaltecas",
        "Instituto Guatemalteco de Migración (IGM)",
        GTM_FACTOR,
        61_000,
        320,
    )


def _hnd_received(path: Path, year: int = YEAR) -> None:
    _received(
        path,
        year,
        "HND",
        "hondureñas",
        "Instituto Nacional de Migración (INM) - Honduras",
        HND_FACTOR,
        27_000,
        340,
    )


MIRROR_SAMPLES = (
    Sample(
        "CRI",
        "cri_dgme_transito_irregular_sur",
        "DGME_transito_irregular_ingresos_desde_Panama_2024_2025-02-14.csv",
        dt.date(2025, 2, 14),
        _cri_irregular,
    ),
    Sample(
        "MEX",
        "mex_upm_devoluciones",
        "UPM_devoluciones_por_nacionalidad_2024_2025-03-14.csv",
        dt.date(2025, 3, 14),
        _mex_returns,
    ),
    Sample(
        "GTM",
        "gtm_igm_retornados",
        "IGM_personas_retornadas_2024_2025-02-05.csv",
        dt.date(2025, 2, 5),
        _gtm_received,
    ),
    Sample(
        "HND",
        "hnd_inm_retornados",
        "INM_personas_retornadas_2024_2025-02-12.csv",
        dt.date(2025, 2, 12),
        _hnd_received,
    ),
)


def write_mirror_samples(landing: Path | None = None, year: int = YEAR) -> list[Path]:
    """Write the counterpart feeds under ``landing/<ISO3>/`` (same bytes every run), for ``year``
    as ``transforms.tools.samples.write_samples`` does."""
    if landing is None:
        from transforms.config import settings

        landing = settings().landing
    written = []
    for sample in MIRROR_SAMPLES:
        path = sample.path(Path(landing))
        if year != YEAR:
            path = path.with_name(_shift_years(path.name, year - YEAR))
        sample.write(path, year)
        written.append(path)
    return written
