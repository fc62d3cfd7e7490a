"""What ``omh check`` says to a file's sender, in es/en/pt/fr: the catalog is data
(``data/messages.yaml``); this module only looks it up.

The pipeline words its problems in English, one line each ("row 3, column 'total': -14: outside
the range of plausible values"). ``translate`` rewrites such a line into another language phrase
by phrase, each phrase an English template of the catalog read as a pattern: values, labels and
row numbers pass through unchanged; a line no phrase covers stays in English.
"""

from __future__ import annotations

import re
from functools import cache

from transforms.config import DATA_DIR

LANGS = ("es", "en", "pt", "fr")
CATALOG = DATA_DIR / "messages.yaml"
# What a placeholder of a phrase matches: a quoted label or value, a row number, or any text.
_SLOTS = {
    "row": r"\d+",
    "column": r"'(?:[^'\\]|\\.)*'|\"[^\"]*\"",
    "label": r"'(?:[^'\\]|\\.)*'|\"[^\"]*\"",
    "value": r"'(?:[^'\\]|\\.)*'|\"[^\"]*\"|-?[\d.]+",
}


@cache
def _catalog() -> dict:
    import yaml

    return yaml.safe_load(CATALOG.read_text(encoding="utf-8"))


def language(lang: str | None, fallback: str | None = None) -> str:
    """The language to speak: ``lang`` if given, else the contract's, else English."""
    for candidate in (lang, fallback):
        if candidate and candidate.lower()[:2] in LANGS:
            return candidate.lower()[:2]
    return "en"


def label(key: str, lang: str, section: str = "labels", **values) -> str:
    """A fixed text of the catalog (a heading, a verdict), filled in."""
    texts = _catalog()[section][key]
    return (texts.get(lang) or texts["en"]).format(**values)


@cache
def _phrases(lang: str) -> list[tuple[re.Pattern, str]]:
    out = []
    for phrase in _catalog()["phrases"]:
        target = phrase.get(lang)
        if not target:
            continue
        pattern, pos = "", 0
        for slot in re.finditer(r"\{(\w+)\}", phrase["en"]):
            pattern += re.escape(phrase["en"][pos : slot.start()])
            pattern += f"(?P<{slot.group(1)}>{_SLOTS.get(slot.group(1), '.+?')})"
            pos = slot.end()
        out.append((re.compile(pattern + re.escape(phrase["en"][pos:])), target))
    return out


def translate(line: str, lang: str) -> str:
    """A problem line of the pipeline in ``lang`` (English lines pass through)."""
    if lang == "en":
        return line
    fields = _catalog()["fields"]
    word_or = next((p[lang] for p in _catalog()["phrases"] if p["en"] == " or "), " or ")

    def fill(target: str):
        def sub(match: re.Match) -> str:
            values = match.groupdict()
            if "field" in values:
                values["field"] = fields.get(values["field"], {}).get(lang, values["field"])
            if "choices" in values:
                values["choices"] = values["choices"].replace("' or '", f"'{word_or}'")
            return target.format(**values)

        return sub

    for pattern, target in _phrases(lang):
        if pattern.pattern == re.escape(" or "):
            continue  # only between the choices of a "did you mean"
        line = pattern.sub(fill(target), line)
    return line
