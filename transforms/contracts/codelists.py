"""Code lists (data/codelists/*.csv) and the label resolvers built on them.

Standard library only: DAG files import this module, so it must stay cheap to import. The CSVs
are written by ``scripts/build_codelists.py``; this module only reads them, each once per process.

Resolution is meant to run on the *distinct* labels of a column: a resolver builds one dict on
first use and memoizes every label it has seen.
"""

from __future__ import annotations

import csv
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache

from transforms.config import DATA_DIR

CODELIST_DIR = DATA_DIR / "codelists"

# The column holding the code in each list; every other list uses "code".
_KEY_COLUMN = {"countries": "iso3", "months": "month", "month_names": "month", "country_aliases": "iso3"}
_NAME_COLUMNS = ("name_en", "name_es", "name_pt", "name_fr", "official_name_en")
_MEMBER_FIELDS = ("iso3", "m49", "conference", "name_es", "name_en", "name_pt", "name_fr")

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
# Latin letters that NFKD does not decompose, spelled out so they are not lost as punctuation.
_UNDECOMPOSED = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"}
)
_SPACE = re.compile(r"\s+")
# A footnote marker at the end of a label: "Estados Unidos 1", "Chile2", "Peru 1" (from "(1)").
_TRAILING_DIGITS = re.compile(r"(?<=[a-z])\s*\d+$")
_NUMERIC = re.compile(r"^\d{1,3}(?:\.0+)?$")
_LIST_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def normalize_label(text: object) -> str:
    """A label reduced to the form code lists are matched on.

    Casefolded, accents stripped (NFKD), punctuation and symbols replaced by spaces, whitespace
    collapsed, and trailing footnote markers dropped ("Estados Unidos 1", "Chile2", "Perú (1)",
    "Colombia*"). A label without any letter keeps its digits ("862", "032"). Idempotent.
    """
    if text is None:
        return ""
    s = unicodedata.normalize("NFKD", str(text).casefold())
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    # casefold again: NFKD can expose characters that casefold changes (e.g. compatibility forms)
    s = unicodedata.normalize("NFKD", s.casefold())
    s = "".join(ch for ch in s if not unicodedata.combining(ch)).translate(_UNDECOMPOSED)
    s = _NOT_ALNUM.sub(" ", s)
    s = _SPACE.sub(" ", s).strip()
    if any(ch.isalpha() for ch in s):
        while True:
            stripped = _TRAILING_DIGITS.sub("", s).strip()
            if stripped == s:
                break
            s = stripped
    return s


@cache
def _rows(name: str) -> tuple[tuple[tuple[str, str], ...], ...]:
    if not _LIST_NAME.match(name):
        raise ValueError(f"not a code list name: {name!r}")
    path = CODELIST_DIR / f"{name}.csv"
    if not path.is_file():
        known = sorted(p.stem for p in CODELIST_DIR.glob("*.csv"))
        raise ValueError(f"no code list {name!r} in {CODELIST_DIR}; known: {known}")
    with path.open(encoding="utf-8", newline="") as fh:
        return tuple(tuple(row.items()) for row in csv.DictReader(fh))


def load(name: str) -> list[dict[str, str]]:
    """The rows of code list ``name`` (e.g. "flow_types"), as fresh dicts of strings.

    The file is read once per process; each call returns copies, so callers may mutate them.
    """
    return [dict(row) for row in _rows(name)]


@cache
def codes(name: str) -> frozenset[str]:
    """The valid codes of a list. For "countries": ISO3 codes, the few user-assigned and
    historic codes kept for real files (XKX, YUG, ...) and the buckets _O, _U, _S, _Z."""
    key = _KEY_COLUMN.get(name, "code")
    return frozenset(row[key] for row in load(name))


@lru_cache(maxsize=1)
def _members() -> tuple[dict[str, str], ...]:
    rows = [r for r in load("countries") if r["member"] == "true"]
    rows.sort(key=lambda r: int(r["member_order"]))
    return tuple({k: r[k] for k in _MEMBER_FIELDS} for r in rows)


def members() -> list[dict[str, str]]:
    """The 23 member states (iso3, m49, conference, name_es/en/pt/fr), in DOMAIN.md's order."""
    return [dict(m) for m in _members()]


# ---------------------------------------------------------------------------- countries


class _CountryIndex:
    """Every known form of every country, normalized, built once per process."""

    def __init__(self, rows: Iterable[Mapping[str, str]]) -> None:
        self.codes: set[str] = set()
        self.names: dict[str, str] = {}
        self.numeric: dict[str, str] = {}
        self.iso2: dict[str, str] = {}
        clashes: list[str] = []
        for row in rows:
            code = row["iso3"]
            self.codes.add(code)
            forms = [code, *(row[c] for c in _NAME_COLUMNS)]
            forms += row["aliases"].split("|")
            for form in forms:
                key = normalize_label(form)
                if not key:
                    continue
                if self.names.setdefault(key, code) != code:
                    clashes.append(f"{form!r} -> {self.names[key]} and {code}")
            if row["m49"]:
                self.numeric[row["m49"]] = code
            if row["iso2"]:
                self.iso2[row["iso2"].lower()] = code
        if clashes:
            raise RuntimeError("countries.csv maps a label to two codes: " + "; ".join(clashes))


@lru_cache(maxsize=1)
def _country_index() -> _CountryIndex:
    return _CountryIndex(_rows_as_dicts("countries"))


def _rows_as_dicts(name: str) -> Iterable[dict[str, str]]:
    return (dict(row) for row in _rows(name))


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class CountryResolver:
    """Resolve country labels as real files write them to an ISO3 code or a bucket.

    Accepted: ISO3 codes and the buckets (_O other, _U unknown, _S stateless, _Z not applicable),
    in any case; numeric ISO 3166 / M49 codes ("862", "32", 32, "032"); every name and alias of
    countries.csv in Spanish, English, Portuguese, French (and Dutch), with or without accents,
    in any case, with footnote markers, as demonyms; inverted forms ("Dominicana, Rep." is
    tried as "Rep. Dominicana"). ISO2 codes only with ``allow_iso2=True``: then a two-letter label
    is read as ISO2 first ("NE" is Niger, not "no especificado").

    ``extra_aliases`` (label -> code, e.g. from a source contract) take precedence over the lists;
    their codes must be in ``codes("countries")`` or be ``_T`` (total of all countries).
    """

    def __init__(self, extra_aliases: Mapping[str, str] | None = None, *, allow_iso2: bool = False) -> None:
        self._index = _country_index()
        self.allow_iso2 = allow_iso2
        self._extra: dict[str, str] = {}
        for label, code in (extra_aliases or {}).items():
            if code not in self._index.codes and code != "_T":  # _T: a contract's "all citizenships"
                raise ValueError(f"extra alias {label!r} -> {code!r}: not a code of the list 'countries'")
            key = normalize_label(label)
            if key:
                self._extra[key] = code
        self._memo: dict[tuple[object, bool], str | None] = {}

    def resolve(self, label: object, *, allow_iso2: bool | None = None) -> str | None:
        """The ISO3 code (or bucket) of ``label``, or None when it is not a known country."""
        iso2 = self.allow_iso2 if allow_iso2 is None else allow_iso2
        memo_key = (label, iso2)
        try:
            return self._memo[memo_key]
        except KeyError:
            pass
        except TypeError:  # unhashable input is no label
            return None
        code = self._memo[memo_key] = self._resolve(label, iso2)
        return code

    def _resolve(self, label: object, iso2: bool) -> str | None:
        if _is_missing(label) or isinstance(label, bool):
            return None
        if isinstance(label, (int, float)):
            if isinstance(label, float) and not label.is_integer():
                return None
            return self._index.numeric.get(f"{int(label):03d}")
        text = str(label).strip()
        if not text:
            return None
        if text.upper() in self._index.codes:
            return text.upper()
        key = normalize_label(text)
        if key in self._extra:
            return self._extra[key]
        if _NUMERIC.match(text):
            return self._index.numeric.get(f"{int(float(text)):03d}")
        if iso2 and len(key) == 2 and key in self._index.iso2:
            return self._index.iso2[key]
        if key in self._index.names:
            return self._index.names[key]
        if "," in text:
            head, _, tail = text.partition(",")
            inverted = normalize_label(f"{tail} {head}")
            found = self._extra.get(inverted) or self._index.names.get(inverted)
            if found:
                return found
            head, _, tail = text.rpartition(",")
            inverted = normalize_label(f"{tail} {head}")
            return self._extra.get(inverted) or self._index.names.get(inverted)
        return None

    def suggest(self, label: object, n: int = 3, lang: str = "es") -> list[str]:
        """Countries whose name or alias is spelled closest to an unknown ``label`` ("Colombai":
        Colombia), by their ``lang`` name, for a "did you mean" to the file's sender."""
        import difflib

        key = normalize_label(label)
        if not key:
            return []
        close = difflib.get_close_matches(key, list(self._index.names), n=12, cutoff=0.75)
        names = {r["iso3"]: r.get(f"name_{lang}") or r["name_en"] for r in _rows_as_dicts("countries")}
        out: list[str] = []
        for form in close:
            name = names.get(self._index.names[form])
            if name and name not in out:
                out.append(name)
        return out[:n]

    def resolve_many(self, labels: Iterable[object]) -> dict[object, str | None]:
        """``{label: code}`` for the distinct labels given."""
        return {label: self.resolve(label) for label in dict.fromkeys(labels)}


@lru_cache(maxsize=256)
def country_resolver(
    extra_aliases: tuple[tuple[str, str], ...] = (), allow_iso2: bool = False
) -> CountryResolver:
    """A shared resolver for a (hashable) tuple of extra ``(label, code)`` aliases."""
    return CountryResolver(dict(extra_aliases), allow_iso2=allow_iso2)


# ---------------------------------------------------------------------------- months


@lru_cache(maxsize=1)
def _month_index() -> dict[str, int]:
    index: dict[str, int] = {}
    for row in _rows_as_dicts("months"):
        number = int(row["month"])
        forms = [row[c] for c in ("label_es", "label_en", "label_pt", "label_fr", "label_nl")]
        for form in forms + row["aliases"].split("|"):
            key = normalize_label(form)
            if key and index.setdefault(key, number) != number:
                raise RuntimeError(f"months.csv maps {form!r} to two months")
    return index


def month_number(label: object) -> int | None:
    """1..12 for a month name or abbreviation in es/en/pt/fr/nl ("Enero", "OCT", "févr.",
    "Setiembre", "mrt") or a number "1".."12" / "01"; None otherwise."""
    if _is_missing(label) or isinstance(label, bool):
        return None
    if isinstance(label, (int, float)):
        return int(label) if float(label).is_integer() and 1 <= label <= 12 else None
    text = str(label).strip()
    if text.isdigit():
        number = int(text)
        return number if 1 <= number <= 12 and len(text) <= 2 else None
    return _month_index().get(normalize_label(text))
