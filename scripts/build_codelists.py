#!/usr/bin/env python3
"""Write the code lists in data/codelists/ (deterministic: same inputs, same bytes).

Inputs: pycountry (ISO 3166-1 names and their gettext translations), the hand-curated
``data/codelists/country_aliases.csv`` (iso3, alias, lang: demonyms, variant and inverted names,
bucket words) and the tables below (members from DOMAIN.md, flow types, sex, age bands, units,
observation status, conferences, months).

Exits with status 1 and the reason when:
- a label, after ``normalize_label``, would map to two different codes;
- an alias names an unknown code or language, or two countries share a numeric code;
- the members are not the 23 of DOMAIN.md, or the flow types differ from DOMAIN.md's codes;
- a country name in the real UNHCR / Panama / IOM files in data/realdata does not resolve to
  the code given beside it (UNHCR pseudo-codes UNK, XXA, STA, TIB resolve to buckets).

Usage: .venv/bin/python scripts/build_codelists.py
"""

from __future__ import annotations

import csv
import gettext
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import pycountry

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transforms.contracts.codelists import CODELIST_DIR, normalize_label  # noqa: E402

LANGS = ("es", "en", "pt", "fr")
# gettext expands "pt_BR" to pt_BR then pt: Brazilian spelling first, European as fallback.
GETTEXT_LANGS = {"es": ["es"], "pt": ["pt_BR"], "fr": ["fr"], "nl": ["nl"], "pt_PT": ["pt"]}
ALIAS_LANGS = {"es", "en", "pt", "fr", "nl", "und"}
REALDATA = ROOT / "data" / "realdata"

# ---------------------------------------------------------------------------- members (DOMAIN.md)

# In the order of DOMAIN.md's table: conference, ISO3, M49.
MEMBERS = (
    ("CRM", "BLZ", "084"),
    ("CRM", "CAN", "124"),
    ("CRM", "CRI", "188"),
    ("CRM", "SLV", "222"),
    ("CRM", "GTM", "320"),
    ("CRM", "HND", "340"),
    ("CRM", "MEX", "484"),
    ("CRM", "NIC", "558"),
    ("CRM", "PAN", "591"),
    ("CRM", "DOM", "214"),
    ("CRM", "USA", "840"),
    ("CSM", "ARG", "032"),
    ("CSM", "BOL", "068"),
    ("CSM", "BRA", "076"),
    ("CSM", "CHL", "152"),
    ("CSM", "COL", "170"),
    ("CSM", "ECU", "218"),
    ("CSM", "GUY", "328"),
    ("CSM", "PRY", "600"),
    ("CSM", "PER", "604"),
    ("CSM", "SUR", "740"),
    ("CSM", "URY", "858"),
    ("CSM", "VEN", "862"),
)

# ---------------------------------------------------------------------------- country names

# Short common names where pycountry's name (or its translation) is an inverted ISO form
# ("Venezuela, Bolivarian Republic of") or misspelt. The pycountry forms stay as aliases.
SHORT_NAMES: dict[str, dict[str, str]] = {
    "ALA": {"es": "Islas Åland", "fr": "Îles Åland"},
    "BES": {"es": "Bonaire, San Eustaquio y Saba"},
    "CCK": {"fr": "Îles Cocos (Keeling)"},
    "CIV": {"es": "Costa de Marfil"},
    "COD": {
        "en": "Democratic Republic of the Congo",
        "es": "República Democrática del Congo",
        "pt": "República Democrática do Congo",
    },
    "COM": {"es": "Comoras"},
    "CXR": {"fr": "Île Christmas"},
    "FSM": {"en": "Micronesia", "es": "Micronesia", "pt": "Micronésia", "fr": "Micronésie"},
    "IRN": {"pt": "Irã"},
    "PSE": {"en": "Palestine", "es": "Palestina", "pt": "Palestina", "fr": "Palestine"},
    "REU": {"fr": "La Réunion"},
    "RUS": {"en": "Russia", "es": "Rusia", "pt": "Rússia", "fr": "Russie"},
    "SLB": {"fr": "Îles Salomon"},
    "VGB": {"en": "British Virgin Islands", "es": "Islas Vírgenes Británicas"},
    "VIR": {
        "en": "United States Virgin Islands",
        "es": "Islas Vírgenes de los Estados Unidos",
        "fr": "Îles Vierges des États-Unis",
    },
}

# pycountry translations that are wrong; dropped (iso3, translated form). Found by the clash check.
BAD_TRANSLATIONS = {
    ("AFG", "República Islâmica do Paquistão"),  # pt_BR catalogue: Afghanistan's official name
}

# Codes real files use that ISO 3166-1 does not (any more). XKX is the user-assigned code for
# Kosovo used by the EU, the World Bank and IOM; the historic ones are ISO 3166-3 entities that
# split (IOM's harmonized flows still carry CSK, SCG, YUG). Renamed entities (Burma, Zaire, ...)
# are aliases of their successor instead (country_aliases.csv).
EXTRA_COUNTRIES = (
    # iso3, iso2, m49, kind, en, es, pt, fr, official_name_en
    ("XKX", "XK", "", "user_assigned", "Kosovo", "Kosovo", "Kosovo", "Kosovo", ""),
    ("ANT", "", "530", "historic", "Netherlands Antilles", "Antillas Neerlandesas",
     "Antilhas Holandesas", "Antilles néerlandaises", ""),
    ("CSK", "", "200", "historic", "Czechoslovakia", "Checoslovaquia", "Tchecoslováquia",
     "Tchécoslovaquie", "Czechoslovak Socialist Republic"),
    ("DDR", "", "278", "historic", "German Democratic Republic", "República Democrática Alemana",
     "República Democrática Alemã", "République démocratique allemande", "German Democratic Republic"),
    ("SCG", "", "891", "historic", "Serbia and Montenegro", "Serbia y Montenegro", "Sérvia e Montenegro",
     "Serbie-et-Monténégro", ""),
    ("SUN", "", "810", "historic", "Soviet Union", "Unión Soviética", "União Soviética", "Union soviétique",
     "Union of Soviet Socialist Republics"),
    # ISO 3166-3 gives YUG the numeric 891 of its successor SCG; M49 kept 890 for the SFRY.
    ("YUG", "", "890", "historic", "Yugoslavia", "Yugoslavia", "Iugoslávia", "Yougoslavie",
     "Socialist Federal Republic of Yugoslavia"),
    # Buckets (SDMX-style codes).
    ("_O", "", "", "bucket", "Other countries", "Otros países", "Outros países", "Autres pays", ""),
    ("_S", "", "", "bucket", "Stateless", "Apátrida", "Apátrida", "Apatride", ""),
    ("_U", "", "", "bucket", "Unknown", "Desconocido", "Desconhecido", "Inconnu", ""),
    ("_Z", "", "", "bucket", "Not applicable", "No aplica", "Não se aplica", "Sans objet", ""),
)  # fmt: skip

# Two-letter aliases that shadow an ISO2 code of another country; allowed because the resolver
# reads two-letter labels as ISO2 first when asked to (allow_iso2=True).
ISO2_SHADOWS_ALLOWED = {"ne": "_U"}  # "NE" = no especificado; NE is also Niger's ISO2

# UNHCR pseudo-codes in its ISO3 columns, and the bucket each stands for. Tibetans are a
# separate origin group for UNHCR; they go to "other" rather than to a country.
UNHCR_PSEUDO_CODES = {"UNK": "_U", "STA": "_S", "XXA": "_S", "TIB": "_O"}

COUNTRY_HEADER = (
    "iso3", "iso2", "m49", "kind", "name_en", "name_es", "name_pt", "name_fr", "official_name_en",
    "conference", "member", "member_order", "aliases",
)  # fmt: skip

# ---------------------------------------------------------------------------- flow types (DOMAIN.md)

DOMAIN_FLOW_CODES = (
    "ENT_REG", "EXT_REG", "IRR_ENC", "IRR_TRN", "RET_REM", "RET_AVR", "RET_RCV", "ASY_APP",
    "ASY_DEC_POS", "ASY_DEC_COMP", "ASY_DEC_NEG", "ASY_DEC_CLO", "RES_GRANT", "REG_PROG", "RST_ARR",
    "NAT", "RET_REF",
)  # fmt: skip
SUFFIXED_FLOW_CODES = ("IRR_ENC.APP", "IRR_ENC.INA", "IRR_ENC.EXP")

FLOW_HEADER = (
    "code", "parent", "reporter_role", "default_unit", "label_es", "label_en", "label_pt", "label_fr",
    "definition_en",
)  # fmt: skip
FLOW_TYPES = (
    ("ENT_REG", "", "destination", "events",
     "Entradas regulares", "Regular entries", "Entradas regulares", "Entrées régulières",
     "Regular entries of travellers at official ports of entry, counted as border-crossing events."),
    ("EXT_REG", "", "origin", "events",
     "Salidas regulares", "Regular exits", "Saídas regulares", "Sorties régulières",
     "Regular exits of travellers through official ports, counted as border-crossing events; "
     "the reporter is the country being left."),
    ("IRR_ENC", "", "destination", "events",
     "Encuentros con personas en situación migratoria irregular",
     "Encounters with people in an irregular situation",
     "Encontros com pessoas em situação migratória irregular",
     "Interceptions de personnes en situation irrégulière",
     "Encounters of the authorities with people entering or staying irregularly (apprehensions, "
     "inadmissibles, expulsions); events, so one person may be counted several times."),
    ("IRR_ENC.APP", "IRR_ENC", "destination", "events",
     "Aprehensiones", "Apprehensions", "Apreensões", "Appréhensions",
     "Apprehensions of people who entered irregularly between ports of entry (e.g. US CBP Title 8 "
     "apprehensions)."),
    ("IRR_ENC.EXP", "IRR_ENC", "destination", "events",
     "Expulsiones", "Expulsions", "Expulsões", "Expulsions",
     "Expulsions carried out directly at the border under a public-health or similar authority "
     "(e.g. US CBP Title 42 expulsions)."),
    ("IRR_ENC.INA", "IRR_ENC", "destination", "events",
     "Inadmisiones", "Inadmissibles", "Inadmissões", "Non-admissions",
     "People found inadmissible at an official port of entry (e.g. US CBP Title 8 inadmissibles)."),
    ("IRR_TRN", "", "transit", "events",
     "Tránsito irregular", "Irregular transit", "Trânsito irregular", "Transit irrégulier",
     "Irregular transit registered at a control point of a transit country (e.g. Panama, Darién)."),
    ("RET_REM", "", "destination", "events",
     "Deportaciones", "Removals", "Deportações", "Éloignements",
     "Removals (deportations) carried out by the reporting country."),
    ("RET_AVR", "", "destination", "events",
     "Retornos asistidos", "Assisted returns", "Retornos assistidos", "Retours assistés",
     "Assisted returns carried out by the reporting country."),
    ("RET_RCV", "", "origin", "events",
     "Connacionales retornados recibidos", "Returned nationals received", "Nacionais retornados recebidos",
     "Ressortissants renvoyés accueillis",
     "Own nationals received back from another country (origin-country view); the counterpart is "
     "the country that returned them."),
    ("ASY_APP", "", "destination", "persons",
     "Solicitudes de asilo", "Asylum applications", "Solicitações de refúgio", "Demandes d'asile",
     "Asylum (refugee status) applications lodged in the reporting country; persons or cases, as the "
     "source states."),
    ("ASY_DEC_CLO", "", "destination", "persons",
     "Solicitudes de asilo cerradas por otros motivos", "Asylum applications otherwise closed",
     "Solicitações de refúgio extintas ou arquivadas", "Demandes d'asile clôturées pour d'autres motifs",
     "Applications closed without a decision on the merits (withdrawn, abandoned, archived, "
     "extinguished)."),
    ("ASY_DEC_COMP", "", "destination", "persons",
     "Protección complementaria otorgada", "Complementary protection granted",
     "Proteção complementar concedida", "Protection complémentaire accordée",
     "Decisions granting complementary (subsidiary or humanitarian) protection instead of refugee status."),
    ("ASY_DEC_NEG", "", "destination", "persons",
     "Solicitudes de asilo rechazadas", "Rejected asylum applications", "Solicitações de refúgio indeferidas",
     "Demandes d'asile rejetées",
     "Decisions rejecting an asylum application on its merits."),
    ("ASY_DEC_POS", "", "destination", "persons",
     "Reconocimientos de la condición de refugiado", "Refugee status recognitions",
     "Reconhecimentos da condição de refugiado", "Reconnaissances du statut de réfugié",
     "Decisions recognising refugee status."),
    ("RES_GRANT", "", "destination", "persons",
     "Permisos de residencia otorgados", "Residence permits granted", "Autorizações de residência concedidas",
     "Titres de séjour délivrés",
     "Residence permits (temporary or permanent) granted by the reporting country."),
    ("REG_PROG", "", "destination", "persons",
     "Regularizaciones extraordinarias", "Extraordinary regularisations", "Regularizações extraordinárias",
     "Régularisations exceptionnelles",
     "Grants under an extraordinary regularisation programme (e.g. Colombia PPT/ETPV, Peru CPP)."),
    ("RST_ARR", "", "destination", "persons",
     "Llegadas por reasentamiento", "Resettlement arrivals", "Chegadas por reassentamento",
     "Arrivées au titre de la réinstallation",
     "Refugees arriving for resettlement; the reporter is the country of resettlement."),
    ("NAT", "", "destination", "persons",
     "Naturalizaciones de refugiados", "Naturalisations of refugees", "Naturalizações de refugiados",
     "Naturalisations de réfugiés",
     "Refugees naturalised; the reporter is the country of asylum."),
    ("RET_REF", "", "origin", "persons",
     "Refugiados retornados", "Returned refugees", "Refugiados retornados", "Réfugiés rapatriés",
     "Refugees who returned to their country of origin (the reporter); the counterpart is the former "
     "country of asylum."),
)  # fmt: skip

# ---------------------------------------------------------------------------- small lists

LABELS = ("label_es", "label_en", "label_pt", "label_fr")

# Aliases are stored normalized (lower case, no accents), '|'-separated.
SEX = (
    ("F", "Mujeres", "Female", "Mulheres", "Femmes",
     "f|femenino|femenina|mujer|mujeres|female|females|woman|women|feminino|feminina|mulher|mulheres"
     "|femme|femmes|feminin"),
    ("M", "Hombres", "Male", "Homens", "Hommes",
     "m|masculino|masculina|hombre|hombres|varon|varones|male|males|man|men|homem|homens|homme|hommes"
     "|masculin"),
    ("O", "Otro género", "Another gender", "Outro gênero", "Autre genre",
     "o|x|otro|otro genero|no binario|another gender|other gender|gender diverse|non binary|outro"
     "|outro genero|nao binario|autre|autre genre|non binaire"),
    ("_T", "Total", "Total", "Total", "Total",
     "total|ambos sexos|both sexes|all|ambos os sexos|les deux sexes"),
    ("_U", "Sexo no especificado", "Sex not stated", "Sexo não informado", "Sexe non précisé",
     "indefinido|no especificado|sin especificar|sin informacion|desconocido|ne|unknown|not stated"
     "|not specified|nao informado|ignorado|desconhecido|inconnu|non precise"),
)  # fmt: skip

AGE_BANDS = (
    # code, lower, upper (inclusive, years; empty = open), es, en, pt, fr
    ("_T", "", "", "Todas las edades", "All ages", "Todas as idades", "Tous âges"),
    ("_U", "", "", "Edad no especificada", "Age not stated", "Idade não informada", "Âge non précisé"),
    ("Y_LT18", "0", "17", "Menores de 18 años", "Under 18 years", "Menores de 18 anos", "Moins de 18 ans"),
    ("Y_GE18", "18", "", "18 años y más", "18 years and over", "18 anos ou mais", "18 ans et plus"),
    ("Y0T4", "0", "4", "De 0 a 4 años", "0 to 4 years", "De 0 a 4 anos", "De 0 à 4 ans"),
    ("Y5T9", "5", "9", "De 5 a 9 años", "5 to 9 years", "De 5 a 9 anos", "De 5 à 9 ans"),
    ("Y10T14", "10", "14", "De 10 a 14 años", "10 to 14 years", "De 10 a 14 anos", "De 10 à 14 ans"),
    ("Y15T17", "15", "17", "De 15 a 17 años", "15 to 17 years", "De 15 a 17 anos", "De 15 à 17 ans"),
    ("Y18T24", "18", "24", "De 18 a 24 años", "18 to 24 years", "De 18 a 24 anos", "De 18 à 24 ans"),
    ("Y25T34", "25", "34", "De 25 a 34 años", "25 to 34 years", "De 25 a 34 anos", "De 25 à 34 ans"),
    ("Y35T44", "35", "44", "De 35 a 44 años", "35 to 44 years", "De 35 a 44 anos", "De 35 à 44 ans"),
    ("Y45T54", "45", "54", "De 45 a 54 años", "45 to 54 years", "De 45 a 54 anos", "De 45 à 54 ans"),
    ("Y55T64", "55", "64", "De 55 a 64 años", "55 to 64 years", "De 55 a 64 anos", "De 55 à 64 ans"),
    ("Y_GE65", "65", "", "65 años y más", "65 years and over", "65 anos ou mais", "65 ans et plus"),
    ("Y0T17", "0", "17", "De 0 a 17 años", "0 to 17 years", "De 0 a 17 anos", "De 0 à 17 ans"),
    ("Y18T59", "18", "59", "De 18 a 59 años", "18 to 59 years", "De 18 a 59 anos", "De 18 à 59 ans"),
    ("Y_GE60", "60", "", "60 años y más", "60 years and over", "60 anos ou mais", "60 ans et plus"),
)

UNITS = (
    ("cases", "Casos", "Cases", "Casos", "Dossiers",
     "Cases (applications, files) that may cover several persons, e.g. a family."),
    ("events", "Eventos", "Events", "Eventos", "Événements",
     "Events (border crossings, encounters, returns): one person may be counted more than once."),
    ("persons", "Personas", "Persons", "Pessoas", "Personnes",
     "Distinct persons."),
)  # fmt: skip

OBS_STATUS = (
    ("A", "Valor normal", "Normal value", "Valor normal", "Valeur normale",
     "Normal value."),
    ("B", "Ruptura de serie", "Break in series", "Quebra de série", "Rupture de série",
     "The definition, coverage or method changed from the previous period."),
    ("E", "Estimado o derivado", "Estimated or derived", "Estimado ou derivado", "Estimé ou dérivé",
     "Estimated, or derived from other figures (e.g. by subtraction)."),
    ("M", "Dato faltante", "Missing value", "Valor ausente", "Valeur manquante",
     "Not available from the source."),
    ("P", "Provisional", "Provisional", "Provisório", "Provisoire",
     "Provisional figure, subject to revision by the source."),
    ("R", "Redondeado por la fuente", "Rounded by the source", "Arredondado pela fonte", "Arrondi par la source",
     "Rounded by the source (e.g. to a multiple of 5); sums of rounded values may differ from totals."),
    ("S", "Suprimido por la fuente (cifra pequeña)", "Suppressed by the source (small count)",
     "Suprimido pela fonte (contagem pequena)", "Supprimé par la source (petit effectif)",
     "Withheld by the source to protect small counts (e.g. '--' for 0 to 5)."),
)  # fmt: skip

CONFERENCES = (
    ("CRM", "Conferencia Regional sobre Migración", "Regional Conference on Migration",
     "Conferência Regional sobre Migração", "Conférence régionale sur la migration",
     "Proceso Puebla|Puebla Process"),
    ("CSM", "Conferencia Suramericana sobre Migraciones", "South American Conference on Migration",
     "Conferência Sul-Americana sobre Migrações", "Conférence sud-américaine sur les migrations",
     "Conferencia Sudamericana sobre Migraciones|South American Conference on Migrations"),
)  # fmt: skip

# Stored lower case without accents: es, en, pt, fr, nl full names, then every other form.
MONTHS = (
    (1, "enero", "january", "janeiro", "janvier", "januari", "ene|jan|janv"),
    (2, "febrero", "february", "fevereiro", "fevrier", "februari", "feb|fev|fevr|febr"),
    (3, "marzo", "march", "marco", "mars", "maart", "mar|mrt|maa"),
    (4, "abril", "april", "abril", "avril", "april", "abr|apr|avr"),
    (5, "mayo", "may", "maio", "mai", "mei", "may|mai|mei"),
    (6, "junio", "june", "junho", "juin", "juni", "jun"),
    (7, "julio", "july", "julho", "juillet", "juli", "jul|juil"),
    (8, "agosto", "august", "agosto", "aout", "augustus", "ago|aug|aou"),
    (9, "septiembre", "september", "setembro", "septembre", "september", "setiembre|sep|sept|set|setiem"),
    (10, "octubre", "october", "outubro", "octobre", "oktober", "oct|out|okt"),
    (11, "noviembre", "november", "novembro", "novembre", "november", "nov"),
    (12, "diciembre", "december", "dezembro", "decembre", "december", "dic|dec|dez"),
)

# Month names as analysts read them in the views (month_es ... month_fr): es, pt and fr write them
# in lower case, en capitalised; accents kept. MONTHS above holds the forms the readers parse.
MONTH_NAMES = (
    (1, "enero", "January", "janeiro", "janvier"),
    (2, "febrero", "February", "fevereiro", "février"),
    (3, "marzo", "March", "março", "mars"),
    (4, "abril", "April", "abril", "avril"),
    (5, "mayo", "May", "maio", "mai"),
    (6, "junio", "June", "junho", "juin"),
    (7, "julio", "July", "julho", "juillet"),
    (8, "agosto", "August", "agosto", "août"),
    (9, "septiembre", "September", "setembro", "septembre"),
    (10, "octubre", "October", "outubro", "octobre"),
    (11, "noviembre", "November", "novembro", "novembre"),
    (12, "diciembre", "December", "dezembro", "décembre"),
)


# ---------------------------------------------------------------------------- helpers


class BuildError(Exception):
    """A check failed: the code lists would be inconsistent."""


def sort_key(text: str) -> tuple[str, str]:
    """Order by the unaccented, casefolded form, then the text itself (stable across platforms)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return (plain.casefold(), text)


def write_csv(name: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    path = CODELIST_DIR / f"{name}.csv"
    rows = [[str(v) for v in row] for row in rows]
    for row in rows:
        if len(row) != len(header):
            raise BuildError(f"{name}: row {row[0]!r} has {len(row)} fields, header has {len(header)}")
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return len(rows)


def translators() -> dict[str, gettext.NullTranslations]:
    return {
        lang: gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=langs)
        for lang, langs in GETTEXT_LANGS.items()
    }


def read_curated_aliases() -> dict[str, list[tuple[str, str]]]:
    """country_aliases.csv as {iso3: [(alias, lang), ...]} after checking each row.

    The file is rewritten in canonical order (iso3, lang, alias; exact duplicates dropped), so
    curators may append rows anywhere and the diff of a rerun shows only real changes.
    """
    path = CODELIST_DIR / "country_aliases.csv"
    rows: set[tuple[str, str, str]] = set()
    errors = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != ["iso3", "alias", "lang"]:
            raise BuildError(f"{path.name}: header must be iso3,alias,lang, not {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            iso3, alias, lang = (row[k].strip() for k in ("iso3", "alias", "lang"))
            if lang not in ALIAS_LANGS:
                errors.append(f"line {line}: language {lang!r} not in {sorted(ALIAS_LANGS)}")
            if not normalize_label(alias):
                errors.append(f"line {line}: alias {alias!r} is empty once normalized")
            if "|" in alias:
                errors.append(f"line {line}: alias {alias!r} contains the list separator '|'")
            rows.add((iso3, alias, lang))
    if errors:
        raise BuildError(f"{path.name}:\n  " + "\n  ".join(errors))
    ordered = sorted(rows, key=lambda r: (r[0], r[2], *sort_key(r[1])))
    write_csv("country_aliases", ("iso3", "alias", "lang"), ordered)
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for iso3, alias, lang in ordered:
        out[iso3].append((alias, lang))
    return out


# ---------------------------------------------------------------------------- countries


def country_rows() -> list[dict[str, str]]:
    tr = translators()
    curated = read_curated_aliases()
    members = {iso3: (conf, m49, order) for order, (conf, iso3, m49) in enumerate(MEMBERS, start=1)}
    rows: list[dict[str, str]] = []
    pyc_forms: dict[str, list[str]] = {}

    for c in sorted(pycountry.countries, key=lambda c: c.alpha_3):
        base = getattr(c, "common_name", None) or c.name
        short = SHORT_NAMES.get(c.alpha_3, {})
        names = {"en": short.get("en", base)}
        for lang in ("es", "pt", "fr"):
            names[lang] = short.get(lang) or tr[lang].gettext(base)
        english = [c.name, base, getattr(c, "official_name", None)]
        forms = [f for f in english if f]
        forms += [tr[lang].gettext(f) for f in english if f for lang in GETTEXT_LANGS]
        pyc_forms[c.alpha_3] = [f for f in forms if (c.alpha_3, f) not in BAD_TRANSLATIONS]
        rows.append(
            {
                "iso3": c.alpha_3,
                "iso2": c.alpha_2,
                "m49": c.numeric,
                "kind": "iso",
                **{f"name_{lang}": names[lang] for lang in LANGS},
                "official_name_en": getattr(c, "official_name", None) or "",
            }
        )
    for iso3, iso2, m49, kind, en, es, pt, fr, official in EXTRA_COUNTRIES:
        rows.append(
            {
                "iso3": iso3, "iso2": iso2, "m49": m49, "kind": kind,
                "name_en": en, "name_es": es, "name_pt": pt, "name_fr": fr, "official_name_en": official,
            }
        )  # fmt: skip

    known = {r["iso3"] for r in rows}
    unknown = sorted(set(curated) - known)
    if unknown:
        raise BuildError(f"country_aliases.csv names codes that are not countries: {unknown}")

    for row in rows:
        iso3 = row["iso3"]
        conf, m49, order = members.get(iso3, ("", "", ""))
        if m49 and m49 != row["m49"]:
            raise BuildError(f"{iso3}: DOMAIN.md gives M49 {m49}, pycountry {row['m49']}")
        row.update(conference=conf, member="true" if conf else "false", member_order=str(order))
        covered = {normalize_label(iso3)} | {normalize_label(row[c]) for c in COUNTRY_HEADER[4:9]}
        aliases: dict[str, str] = {}
        for form in [a for a, _ in curated.get(iso3, [])] + pyc_forms.get(iso3, []):
            key = normalize_label(form)
            if key and key not in covered and key not in aliases:
                aliases[key] = form.strip()
        for form in aliases.values():
            if "|" in form:  # a pycountry name; curated ones are checked on reading
                raise BuildError(f"{iso3}: alias {form!r} contains the separator '|'")
        row["aliases"] = "|".join(sorted(aliases.values(), key=sort_key))

    rows.sort(key=lambda r: r["iso3"])
    check_countries(rows)
    return rows


def check_countries(rows: list[dict[str, str]]) -> None:
    """No label to two codes, no shared numeric or ISO2 code, the 23 members of DOMAIN.md."""
    owners: dict[str, set[str]] = defaultdict(set)
    examples: dict[str, str] = {}
    for row in rows:
        forms = [row["iso3"], *(row[c] for c in COUNTRY_HEADER[4:9]), *row["aliases"].split("|")]
        for form in forms:
            key = normalize_label(form)
            if key:
                owners[key].add(row["iso3"])
                examples.setdefault(key, form)
    clashes = {k: v for k, v in owners.items() if len(v) > 1}
    if clashes:
        lines = [f"{examples[k]!r} (normalized {k!r}) -> {sorted(v)}" for k, v in sorted(clashes.items())]
        raise BuildError("labels that map to two different countries:\n  " + "\n  ".join(lines))

    for column in ("m49", "iso2"):
        seen: dict[str, str] = {}
        for row in rows:
            value = row[column]
            if value and seen.setdefault(value, row["iso3"]) != row["iso3"]:
                raise BuildError(f"{column} {value} belongs to {seen[value]} and {row['iso3']}")

    iso2 = {row["iso2"].lower(): row["iso3"] for row in rows if row["iso2"]}
    for key, (code,) in ((k, tuple(v)) for k, v in owners.items()):
        if len(key) == 2 and key in iso2 and iso2[key] != code and ISO2_SHADOWS_ALLOWED.get(key) != code:
            raise BuildError(f"alias {key!r} -> {code} shadows the ISO2 code of {iso2[key]}")

    members = [r for r in rows if r["member"] == "true"]
    by_conf = defaultdict(int)
    for r in members:
        by_conf[r["conference"]] += 1
    if len(members) != 23 or by_conf != {"CRM": 11, "CSM": 12}:
        raise BuildError(f"expected 23 members (11 CRM, 12 CSM), got {dict(by_conf)}")


# ---------------------------------------------------------------------------- other lists


def check_flow_types() -> None:
    codes = [row[0] for row in FLOW_TYPES]
    if len(codes) != len(set(codes)):
        raise BuildError("flow types: duplicate code")
    if set(codes) != set(DOMAIN_FLOW_CODES) | set(SUFFIXED_FLOW_CODES):
        raise BuildError(f"flow types differ from DOMAIN.md: {sorted(set(codes) ^ set(DOMAIN_FLOW_CODES))}")
    for code, parent, role, unit, *labels in FLOW_TYPES:
        if parent and (parent not in DOMAIN_FLOW_CODES or not code.startswith(parent + ".")):
            raise BuildError(f"flow type {code}: parent {parent!r} is not its root code")
        if "." in code and not parent:
            raise BuildError(f"flow type {code}: a suffixed code needs its parent")
        if role not in ("destination", "transit", "origin"):
            raise BuildError(f"flow type {code}: reporter_role {role!r}")
        if unit not in {u[0] for u in UNITS}:
            raise BuildError(f"flow type {code}: default_unit {unit!r} is not a unit")
        if not all(labels):
            raise BuildError(f"flow type {code}: empty label")


def check_months() -> None:
    owner: dict[str, int] = {}
    for number, *names, aliases in MONTHS:
        for form in [*names, *aliases.split("|")]:
            if form != form.lower() or normalize_label(form) != form:
                raise BuildError(f"months: {form!r} must be stored lower case without accents")
            if owner.setdefault(form, number) != number:
                raise BuildError(f"months: {form!r} is month {owner[form]} and {number}")


def check_labels(name: str, rows: Iterable[Sequence[object]], first_label: int) -> None:
    for row in rows:
        if not all(row[first_label : first_label + 4]):
            raise BuildError(f"{name}: code {row[0]!r} lacks a label in one of es/en/pt/fr")


def check_sex_aliases() -> None:
    owner: dict[str, str] = {}
    for code, *_, aliases in SEX:
        for form in aliases.split("|"):
            if normalize_label(form) != form:
                raise BuildError(f"sex: alias {form!r} must be stored normalized")
            if owner.setdefault(form, code) != code:
                raise BuildError(f"sex: alias {form!r} is {owner[form]} and {code}")


# ---------------------------------------------------------------------------- checks on real files


def check_real_files() -> list[str]:
    """Every country label and code of the real files resolves to what the file says."""
    from transforms.contracts.codelists import CountryResolver  # after the CSVs are written

    resolver = CountryResolver()
    errors: list[str] = []
    notes: list[str] = []

    unhcr = REALDATA / "raw" / "unhcr_refugee_data_finder_solutions_extracted_2024-07-19.csv"
    if unhcr.exists():
        pairs = set()
        with unhcr.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            for row in reader:
                if row and row[0] == "Year":
                    header = row
                    break
            iso_of = {
                name: header.index(f"{name} (ISO)") for name in ("Country of origin", "Country of asylum")
            }
            for row in reader:
                for name, iso_col in iso_of.items():
                    pairs.add((row[header.index(name)], row[iso_col]))
        for label, iso in sorted(pairs):
            expected = UNHCR_PSEUDO_CODES.get(iso, iso)
            for given in (label, iso):
                got = resolver.resolve(given)
                if got != expected:
                    errors.append(f"UNHCR {given!r}: resolves to {got}, the file says {iso} ({expected})")
        notes.append(f"UNHCR: {len(pairs)} (name, ISO3) pairs resolve")
    else:
        notes.append(f"skipped (missing): {unhcr}")

    darien = REALDATA / "raw" / "panama_darien_2019-2022_by_nationality_derived.csv"
    if darien.exists():
        with darien.open(encoding="utf-8", newline="") as fh:
            labels = sorted({row["toShow"] for row in csv.DictReader(fh)})
        for label in labels:
            if resolver.resolve(label) is None:
                errors.append(f"Panama Darién {label!r}: does not resolve")
        notes.append(f"Panama Darién: {len(labels)} labels resolve")
    else:
        notes.append(f"skipped (missing): {darien}")

    reference = sorted((REALDATA / "reference").glob("amerdigest_*.csv"))
    codes: set[str] = set()
    for path in reference:
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                codes.update(c for c in (row["geo"], row["nat"]) if c)
    for code in sorted(codes):
        got = resolver.resolve(code)
        if got is None or (got != code and code != "OOO"):
            errors.append(f"IOM reference code {code!r}: resolves to {got}")
    if reference:
        notes.append(f"IOM reference: {len(codes)} codes resolve")
    if errors:
        raise BuildError("real-file labels that do not resolve as the file says:\n  " + "\n  ".join(errors))
    return notes


# ---------------------------------------------------------------------------- main


def sources_md(n_countries: int, n_aliases: int, n_curated: int) -> str:
    return f"""# Code lists: where they come from

Written by `scripts/build_codelists.py` (do not edit the CSVs by hand, except `country_aliases.csv`,
which is the hand-curated input; then rerun the script). UTF-8, `,`-separated, `\\n` line ends.
Read them as text: Namibia's ISO2 is `NA` (pandas: `dtype=str, keep_default_na=False`).

| file | source |
|---|---|
| countries.csv | pycountry {pycountry.__version__} (ISO 3166-1 alpha-3, alpha-2, numeric; English names; Spanish, Portuguese (pt_BR, then pt), French and Dutch names from its gettext catalogues `iso3166-1`). Short common names replace inverted ISO forms ("Venezuela", not "Venezuela, Bolivarian Republic of"); ISO forms stay as aliases. Members, conference and M49 from DOMAIN.md (23 states, its table order in `member_order`). Plus XKX (Kosovo, user-assigned code used by the EU, World Bank and IOM), historic ISO 3166-3 codes still found in real files (ANT, CSK, DDR, SCG, SUN, YUG; YUG numeric 890, since ISO 3166-3 gives it SCG's 891) and the buckets `_O` other, `_U` unknown, `_S` stateless, `_Z` not applicable. {n_countries} rows, {n_aliases} aliases. |
| country_aliases.csv | Hand curation ({n_curated} rows: iso3, alias, lang with lang in es/en/pt/fr/nl/und): demonyms (masculine, feminine, plurals), variant, abbreviated and inverted names as Latin- and North-American migration files write them, all country labels of the UNHCR Refugee Data Finder and Panama SNM files in `data/realdata/`, UNHCR/ICAO pseudo-codes (UNK, XXX unknown; STA, XXA stateless; TIB Tibetan, and IOM's OOO, to other), renamed ISO codes (BUR, ZAR, TMP, DHY, HVO, BYS, ROM). Ambiguous words are left out on purpose: "congoleño"/"Congolese" (COD or COG), "coreano"/"Korean", "americano", "árabe", "guineense" only for Guinea-Bissau. |
| flow_types.csv | DOMAIN.md canonical codes, exactly, plus the suffixed sub-types IRR_ENC.APP / .INA / .EXP. `reporter_role` and `default_unit` are the usual case; a source contract may say otherwise. |
| sex.csv, age_bands.csv, units.csv, obs_status.csv | SDMX conventions (`_T` total, `_U` unknown, `_Z` not applicable; age codes `Y0T4`, `Y_GE65`; OBS_STATUS A/B/E/M/P plus S suppressed and R rounded by the source) and DOMAIN.md. Age bounds are whole years, inclusive; empty means open. |
| conferences.csv | DOMAIN.md (CRM "Proceso Puebla", CSM). |
| months.csv | Hand curation: month names and abbreviations in es/en/pt/fr/nl, lower case without accents ("setiembre" is Peru's and Uruguay's spelling). |
| month_names.csv | Hand curation: the month names the views show analysts (`month_es` ... `month_fr`), as each language writes them. |

Checks the script runs before it succeeds: no label maps to two codes once normalized
(`transforms.contracts.codelists.normalize_label`); M49 and ISO2 codes unique; 23 members (11 CRM, 12 CSM);
flow types equal DOMAIN.md's; every country label of the UNHCR file resolves to the ISO3 beside it
(pseudo-codes to buckets), every Panama label resolves, every IOM reference code resolves.
"""


def main() -> int:
    CODELIST_DIR.mkdir(parents=True, exist_ok=True)
    try:
        countries = country_rows()
        check_flow_types()
        check_months()
        check_sex_aliases()
        for name, rows, first in (
            ("sex", SEX, 1), ("age_bands", AGE_BANDS, 3), ("units", UNITS, 1),
            ("obs_status", OBS_STATUS, 1), ("conferences", CONFERENCES, 1), ("months", MONTHS, 1),
            ("month_names", MONTH_NAMES, 1),
        ):  # fmt: skip
            check_labels(name, rows, first)
        members = defaultdict(int)
        for r in countries:
            members[r["conference"]] += r["member"] == "true"

        written = {
            "countries": write_csv(
                "countries", COUNTRY_HEADER, ([r[c] for c in COUNTRY_HEADER] for r in countries)
            ),
            "flow_types": write_csv("flow_types", FLOW_HEADER, sorted(FLOW_TYPES)),
            "sex": write_csv("sex", ("code", *LABELS, "aliases"), SEX),
            "age_bands": write_csv("age_bands", ("code", "lower_bound", "upper_bound", *LABELS), AGE_BANDS),
            "units": write_csv("units", ("code", *LABELS, "definition_en"), UNITS),
            "obs_status": write_csv("obs_status", ("code", *LABELS, "definition_en"), OBS_STATUS),
            "conferences": write_csv(
                "conferences",
                ("code", *LABELS, "aliases", "member_count"),
                (row + (members[row[0]],) for row in CONFERENCES),
            ),
            "months": write_csv("months", ("month", *LABELS, "label_nl", "aliases"), MONTHS),
            "month_names": write_csv("month_names", ("month", *LABELS), MONTH_NAMES),
        }
        n_aliases = sum(len(r["aliases"].split("|")) for r in countries if r["aliases"])
        n_curated = sum(len(v) for v in read_curated_aliases().values())
        (CODELIST_DIR / "SOURCES.md").write_text(
            sources_md(len(countries), n_aliases, n_curated), encoding="utf-8"
        )
        notes = check_real_files()
    except BuildError as exc:
        print(f"build_codelists: FAILED: {exc}", file=sys.stderr)
        return 1
    for name, count in written.items():
        print(f"{name}.csv: {count} rows")
    print(f"countries: {n_aliases} aliases ({n_curated} curated rows in country_aliases.csv)")
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
