"""Code lists (data/codelists) and their resolvers (transforms/contracts/codelists.py)."""

from __future__ import annotations

import csv
import filecmp
import importlib.util
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms.contracts import codelists
from transforms.contracts.codelists import (
    CODELIST_DIR,
    CountryResolver,
    codes,
    load,
    members,
    month_number,
    normalize_label,
)

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "data" / "realdata" / "raw"
UNHCR = RAW / "unhcr_refugee_data_finder_solutions_extracted_2024-07-19.csv"
DARIEN = RAW / "panama_darien_2019-2022_by_nationality_derived.csv"

# DOMAIN.md's member table, in its order.
DOMAIN_MEMBERS = [
    ("CRM", "BLZ", "084"), ("CRM", "CAN", "124"), ("CRM", "CRI", "188"), ("CRM", "SLV", "222"),
    ("CRM", "GTM", "320"), ("CRM", "HND", "340"), ("CRM", "MEX", "484"), ("CRM", "NIC", "558"),
    ("CRM", "PAN", "591"), ("CRM", "DOM", "214"), ("CRM", "USA", "840"), ("CSM", "ARG", "032"),
    ("CSM", "BOL", "068"), ("CSM", "BRA", "076"), ("CSM", "CHL", "152"), ("CSM", "COL", "170"),
    ("CSM", "ECU", "218"), ("CSM", "GUY", "328"), ("CSM", "PRY", "600"), ("CSM", "PER", "604"),
    ("CSM", "SUR", "740"), ("CSM", "URY", "858"), ("CSM", "VEN", "862"),
]  # fmt: skip
DOMAIN_FLOW_CODES = {
    "ENT_REG", "EXT_REG", "IRR_ENC", "IRR_TRN", "RET_REM", "RET_AVR", "RET_RCV", "ASY_APP",
    "ASY_DEC_POS", "ASY_DEC_COMP", "ASY_DEC_NEG", "ASY_DEC_CLO", "RES_GRANT", "REG_PROG", "RST_ARR",
    "NAT", "RET_REF",
}  # fmt: skip
UNHCR_PSEUDO = {"UNK": "_U", "STA": "_S", "XXA": "_S", "TIB": "_O"}

# Demonyms as national files write them: es masc/fem/plural, pt, en, fr.
MEMBER_DEMONYMS = {
    "BLZ": ["beliceño", "beliceña", "belizenho", "Belizean", "bélizienne"],
    "CAN": ["canadiense", "canadienses", "canadense", "Canadian", "canadienne"],
    "CRI": ["costarricense", "costarricenses", "costarriquenho", "Costa Rican", "costaricienne"],
    "SLV": ["salvadoreño", "salvadoreña", "salvadorenho", "Salvadoran", "salvadorienne"],
    "GTM": ["guatemalteco", "guatemaltecas", "guatemalteco", "Guatemalan", "guatémaltèque"],
    "HND": ["hondureño", "hondureñas", "hondurenho", "Honduran", "hondurienne"],
    "MEX": ["mexicano", "mexicana", "mexicanos", "Mexican", "mexicaine"],
    "NIC": ["nicaragüense", "nicaragüenses", "nicaraguense", "Nicaraguan", "nicaraguayenne"],
    "PAN": ["panameño", "panameña", "panamenho", "Panamanian", "panaméenne"],
    "DOM": ["dominicano", "dominicana", "dominicanos", "Dominican", "dominicaine"],
    "USA": ["estadounidense", "norteamericano", "estadunidense", "American", "américaine"],
    "ARG": ["argentino", "argentina", "argentinos", "Argentine", "argentine"],
    "BOL": ["boliviano", "bolivianas", "boliviano", "Bolivian", "bolivienne"],
    "BRA": ["brasileño", "brasileña", "brasileira", "Brazilian", "brésilienne"],
    "CHL": ["chileno", "chilena", "chilenos", "Chilean", "chilienne"],
    "COL": ["colombiano", "colombiana", "colombianos", "Colombian", "colombienne"],
    "ECU": ["ecuatoriano", "ecuatoriana", "equatoriano", "Ecuadorian", "équatorienne"],
    "GUY": ["guyanés", "guyanesa", "guianense", "Guyanese", "guyanienne"],
    "PRY": ["paraguayo", "paraguaya", "paraguaio", "Paraguayan", "paraguayenne"],
    "PER": ["peruano", "peruana", "peruanos", "Peruvian", "péruvienne"],
    "SUR": ["surinamés", "surinamesa", "surinamês", "Surinamese", "surinamaise"],
    "URY": ["uruguayo", "uruguaya", "uruguaio", "Uruguayan", "uruguayenne"],
    "VEN": ["venezolano", "venezolana", "venezuelano", "Venezuelan", "vénézuélienne"],
}


@pytest.fixture(scope="module")
def resolver() -> CountryResolver:
    return CountryResolver()


def _strip_accents(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _load_generator():
    spec = importlib.util.spec_from_file_location("build_codelists", ROOT / "scripts" / "build_codelists.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------- members


def test_members_are_the_23_of_domain_md_in_order():
    got = [(m["conference"], m["iso3"], m["m49"]) for m in members()]
    assert got == DOMAIN_MEMBERS
    by_conf = defaultdict(int)
    for m in members():
        by_conf[m["conference"]] += 1
        assert all(m[f"name_{lang}"] for lang in ("es", "en", "pt", "fr"))
    assert by_conf == {"CRM": 11, "CSM": 12}


@pytest.mark.parametrize("member", members(), ids=lambda m: m["iso3"])
def test_member_resolves_from_every_form(resolver, member):
    iso3 = member["iso3"]
    forms = [iso3, iso3.lower(), member["m49"], int(member["m49"]), str(int(member["m49"]))]
    for lang in ("es", "en", "pt", "fr"):
        name = member[f"name_{lang}"]
        forms += [name, name.upper(), _strip_accents(name), f"{name} 1", f"{name}2", f"{name} (3)"]
    for demonym in MEMBER_DEMONYMS[iso3]:
        forms += [demonym, demonym.upper(), _strip_accents(demonym)]
    wrong = {f: resolver.resolve(f) for f in forms if resolver.resolve(f) != iso3}
    assert wrong == {}


# ---------------------------------------------------------------------------- real files


def _unhcr_pairs() -> set[tuple[str, str]]:
    with UNHCR.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(row for row in reader if row and row[0] == "Year")
        cols = [
            (header.index(n), header.index(f"{n} (ISO)")) for n in ("Country of origin", "Country of asylum")
        ]
        return {(row[name], row[iso]) for row in reader for name, iso in cols}


def test_every_unhcr_country_name_resolves_to_the_iso3_beside_it(resolver):
    pairs = _unhcr_pairs()
    assert len(pairs) > 150
    wrong = {
        (name, iso): resolver.resolve(name)
        for name, iso in pairs
        if resolver.resolve(name) != UNHCR_PSEUDO.get(iso, iso)
    }
    assert wrong == {}
    # the pseudo-codes really occur and go to buckets
    assert {"UNK", "XXA", "TIB"} <= {iso for _, iso in pairs}


def test_unhcr_iso_columns_resolve_too(resolver):
    wrong = {
        iso: resolver.resolve(iso)
        for _, iso in _unhcr_pairs()
        if resolver.resolve(iso) != UNHCR_PSEUDO.get(iso, iso)
    }
    assert wrong == {}
    assert resolver.resolve("STA") == "_S"


def test_every_panama_darien_label_resolves(resolver):
    with DARIEN.open(encoding="utf-8", newline="") as fh:
        labels = {row["toShow"] for row in csv.DictReader(fh)}
    resolved = {label: resolver.resolve(label) for label in labels}
    assert None not in resolved.values(), resolved
    assert resolved["Otros Paises"] == "_O"
    assert resolved["Haití"] == "HTI"
    assert resolved["Brasil"] == "BRA"


# ---------------------------------------------------------------------------- resolver


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Estados Unidos 1", "USA"),
        ("Dominicana, Rep.", "DOM"),
        ("VENEZOLANA", "VEN"),
        ("haitiano", "HTI"),
        ("862", "VEN"),
        (862, "VEN"),
        (862.0, "VEN"),
        ("32", "ARG"),
        (32, "ARG"),
        ("032", "ARG"),
        ("Tr¡nsito", None),
        ("Tránsito", None),
        ("ven", "VEN"),
        ("Chile2", "CHL"),
        ("Perú (1)", "PER"),
        ("Colombia*", "COL"),
        ("EE.UU.", "USA"),
        ("EEUU", "USA"),
        ("Corea, República de", "KOR"),
        ("Corea del Sur", "KOR"),
        ("Congo, Rep. Dem. del", "COD"),
        ("Congo", "COG"),
        ("Guyana Francesa", "GUF"),
        ("Guayana", "GUY"),
        ("Türkiye", "TUR"),
        ("TURQUIA", "TUR"),
        ("Côte d'Ivoire", "CIV"),
        ("Costa de Marfil", "CIV"),
        ("Iran (Islamic Rep. of)", "IRN"),
        ("Federación de Rusia", "RUS"),
        ("Holanda", "NLD"),
        ("Países Bajos", "NLD"),
        ("Bajos, Países", "NLD"),  # generic inversion, not an alias
        ("Nicaragua, República de", "NIC"),  # generic inversion of an official-style form
        ("San Vicente y las Granadinas", "VCT"),
        ("chinas", "CHN"),
        ("indios", "IND"),
        ("afegão", "AFG"),
        ("Uzbek", "UZB"),
        ("sénégalaise", "SEN"),
        ("somalíes", "SOM"),
        ("Otros", "_O"),
        ("Resto del mundo", "_O"),
        ("No especificado", "_U"),
        ("Sin información", "_U"),
        ("Apátrida/sem nacionalidade", "_S"),
        ("Stateless", "_S"),
        ("No aplica", "_Z"),
        ("_o", "_O"),
        ("XKX", "XKX"),
        ("Kosovo", "XKX"),
        ("Zaire", "COD"),
        ("Congolese", None),  # COD or COG: deliberately not an alias
        ("", None),
        ("   ", None),
        (None, None),
        (float("nan"), None),
        (True, None),
        (3.5, None),
        ("999", None),
        ("Title 42", None),
    ],
)
def test_resolve(resolver, label, expected):
    assert resolver.resolve(label) == expected


def test_iso2_only_when_asked(resolver):
    assert resolver.resolve("VE") is None
    assert resolver.resolve("ve", allow_iso2=True) == "VEN"
    assert CountryResolver(allow_iso2=True).resolve("BR") == "BRA"
    # "NE" is "no especificado" unless the column holds ISO2 codes, where it is Niger
    assert resolver.resolve("NE") == "_U"
    assert resolver.resolve("NE", allow_iso2=True) == "NER"


def test_extra_aliases_take_precedence():
    contract = CountryResolver({"Guayana": "GUF", "Otros Paises": "_O", "Extranjeros sin dato": "_U"})
    assert contract.resolve("GUAYANA") == "GUF"
    assert contract.resolve("extranjeros sin dato") == "_U"
    assert CountryResolver().resolve("Guayana") == "GUY"
    assert CountryResolver({"Total general": "_T"}).resolve("TOTAL GENERAL") == "_T"
    assert CountryResolver().resolve("Total general") is None
    with pytest.raises(ValueError, match="not a code"):
        CountryResolver({"Atlantis": "ATL"})


def test_country_resolver_factory_is_shared():
    a = codelists.country_resolver((("Otros Paises", "_O"),))
    assert a is codelists.country_resolver((("Otros Paises", "_O"),))
    assert a.resolve("otros paises") == "_O"


def test_resolver_covers_every_label_of_countries_csv(resolver):
    """Every name and alias written in countries.csv resolves back to its own row."""
    wrong = {}
    for row in load("countries"):
        forms = [row[c] for c in ("iso3", "name_en", "name_es", "name_pt", "name_fr", "official_name_en")]
        forms += row["aliases"].split("|")
        for form in filter(None, forms):
            if resolver.resolve(form) != row["iso3"]:
                wrong[form] = (row["iso3"], resolver.resolve(form))
    assert wrong == {}


def test_no_label_maps_to_two_countries():
    owners: dict[str, set[str]] = defaultdict(set)
    for row in load("countries"):
        forms = [row[c] for c in ("iso3", "name_en", "name_es", "name_pt", "name_fr", "official_name_en")]
        for form in forms + row["aliases"].split("|"):
            if normalize_label(form):
                owners[normalize_label(form)].add(row["iso3"])
    assert {k: v for k, v in owners.items() if len(v) > 1} == {}


def test_generator_fails_loudly_on_a_clash():
    build = _load_generator()
    rows = load("countries")
    hti = next(r for r in rows if r["iso3"] == "HTI")
    hti["aliases"] += "|venezolano"
    with pytest.raises(build.BuildError, match="venezolano"):
        build.check_countries(rows)


def test_generator_rejects_an_alias_of_an_unknown_code(tmp_path, monkeypatch):
    build = _load_generator()
    shutil.copy(CODELIST_DIR / "country_aliases.csv", tmp_path / "country_aliases.csv")
    with (tmp_path / "country_aliases.csv").open("a", encoding="utf-8") as fh:
        fh.write("ATL,Atlantis,en\n")
    monkeypatch.setattr(build, "CODELIST_DIR", tmp_path)
    with pytest.raises(build.BuildError, match="ATL"):
        build.country_rows()


def test_committed_code_lists_equal_a_fresh_build(tmp_path, monkeypatch):
    """The CSVs in the repo are what the generator writes now (nobody edited them by hand)."""
    build = _load_generator()
    shutil.copy(CODELIST_DIR / "country_aliases.csv", tmp_path / "country_aliases.csv")
    monkeypatch.setattr(build, "CODELIST_DIR", tmp_path)
    assert build.main() == 0
    names = sorted(p.name for p in CODELIST_DIR.iterdir() if p.suffix in {".csv", ".md"})
    assert names == sorted(p.name for p in tmp_path.iterdir())
    match, mismatch, errors = filecmp.cmpfiles(CODELIST_DIR, tmp_path, names, shallow=False)
    assert (mismatch, errors) == ([], [])


# ---------------------------------------------------------------------------- normalize_label


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Estados Unidos 1", "estados unidos"),
        ("Chile2", "chile"),
        ("Perú (1)", "peru"),
        ("Colombia*", "colombia"),
        ("  Côte d’Ivoire ", "cote d ivoire"),
        ("Guinea-Bissau", "guinea bissau"),
        ("EE.UU.", "ee uu"),
        ("862", "862"),
        ("032", "032"),
        ("Estados Unidos²", "estados unidos"),
        ("ÅLAND", "aland"),
        ("Føroyar", "foroyar"),
        (None, ""),
    ],
)
def test_normalize_label(text, expected):
    assert normalize_label(text) == expected


@given(st.text())
def test_normalize_label_is_idempotent(text):
    once = normalize_label(text)
    assert normalize_label(once) == once


# ---------------------------------------------------------------------------- other lists


LABEL_COLUMNS = {"countries": ("name_es", "name_en", "name_pt", "name_fr")}
ALL_LISTS = ("countries", "flow_types", "sex", "age_bands", "units", "obs_status", "conferences", "months")


@pytest.mark.parametrize("name", ALL_LISTS)
def test_every_code_list_has_labels_in_four_languages(name):
    columns = LABEL_COLUMNS.get(name, ("label_es", "label_en", "label_pt", "label_fr"))
    rows = load(name)
    assert rows
    empty = [r for r in rows if not all(r[c].strip() for c in columns)]
    assert empty == []
    assert len(codes(name)) == len(rows), "codes are unique"


def test_flow_types_are_exactly_domain_md_codes_plus_suffixes():
    rows = {r["code"]: r for r in load("flow_types")}
    roots = {c for c in rows if "." not in c}
    assert roots == DOMAIN_FLOW_CODES
    assert set(rows) - roots == {"IRR_ENC.APP", "IRR_ENC.INA", "IRR_ENC.EXP"}
    for code, row in rows.items():
        assert row["parent"] == (code.split(".")[0] if "." in code else "")
        assert row["reporter_role"] in {"destination", "transit", "origin"}
        assert row["default_unit"] in codes("units")
        assert row["definition_en"]
    assert rows["IRR_TRN"]["reporter_role"] == "transit"
    assert rows["RET_RCV"]["reporter_role"] == "origin"


def test_small_lists_have_the_expected_codes():
    assert codes("sex") == {"F", "M", "O", "_U", "_T"}
    assert codes("units") == {"persons", "events", "cases"}
    assert codes("obs_status") == set("APEBMSR")
    assert codes("conferences") == {"CRM", "CSM"}
    assert codes("months") == {str(m) for m in range(1, 13)}
    assert {"_O", "_U", "_S", "_Z", "VEN", "USA"} <= codes("countries")
    assert {r["code"]: r["member_count"] for r in load("conferences")} == {"CRM": "11", "CSM": "12"}


def test_age_band_bounds_match_their_codes():
    expected = {
        "_T": ("", ""), "_U": ("", ""), "Y_LT18": ("0", "17"), "Y_GE18": ("18", ""), "Y0T4": ("0", "4"),
        "Y5T9": ("5", "9"), "Y10T14": ("10", "14"), "Y15T17": ("15", "17"), "Y18T24": ("18", "24"),
        "Y25T34": ("25", "34"), "Y35T44": ("35", "44"), "Y45T54": ("45", "54"), "Y55T64": ("55", "64"),
        "Y_GE65": ("65", ""), "Y0T17": ("0", "17"), "Y18T59": ("18", "59"), "Y_GE60": ("60", ""),
    }  # fmt: skip
    assert {r["code"]: (r["lower_bound"], r["upper_bound"]) for r in load("age_bands")} == expected


def test_countries_csv_is_sorted_and_has_iso_data():
    rows = load("countries")
    iso3 = [r["iso3"] for r in rows]
    assert iso3 == sorted(iso3)
    assert len(iso3) == len(set(iso3))
    iso = [r for r in rows if r["kind"] == "iso"]
    assert len(iso) == 249
    assert all(len(r["m49"]) == 3 and r["m49"].isdigit() for r in iso)
    assert next(r for r in rows if r["iso3"] == "VEN")["name_en"] == "Venezuela"
    assert (
        next(r for r in rows if r["iso3"] == "VEN")["official_name_en"] == "Bolivarian Republic of Venezuela"
    )
    assert next(r for r in rows if r["iso3"] == "NAM")["iso2"] == "NA"  # read as text, not as missing
    assert {r["iso3"] for r in rows if r["kind"] == "bucket"} == {"_O", "_U", "_S", "_Z"}


def test_load_returns_copies():
    first = load("units")
    first[0]["code"] = "changed"
    assert load("units")[0]["code"] != "changed"
    with pytest.raises(ValueError):
        load("../pyproject")
    with pytest.raises(ValueError):
        load("no_such_list")


# ---------------------------------------------------------------------------- months


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Enero", 1), ("OCT", 10), ("Fev", 2), ("févr.", 2), ("Setiembre", 9), ("septiembre", 9),
        ("Sept.", 9), ("mrt", 3), ("okt", 10), ("Août", 8), ("dez", 12), ("Dic", 12), ("janv", 1),
        ("Outubro", 10), ("May", 5), ("mei", 5), ("1", 1), ("01", 1), ("12", 12), (7, 7),
        ("13", None), ("0", None), ("001", None), ("Q1", None), ("", None), (None, None), ("Total", None),
    ],
)  # fmt: skip
def test_month_number(label, expected):
    assert month_number(label) == expected


# ---------------------------------------------------------------------------- import cost


def test_module_imports_nothing_heavy():
    code = (
        "import json, sys, transforms.contracts.codelists as c; c.CountryResolver().resolve('x'); c.month_number('x');"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = set(json.loads(out.stdout))
    assert not loaded & {"pandas", "numpy", "pycountry", "yaml", "airflow"}
