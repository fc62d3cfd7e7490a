"""The bulletin's words in es/en/pt/fr (the ``bulletin`` section of ``data/messages.yaml``) and its
number formats."""

from __future__ import annotations

import datetime as dt

from transforms import messages
from transforms.contracts import codelists

LANGS = messages.LANGS
# Thousands separator and decimal mark per language.
_SEPARATORS = {"es": (".", ","), "en": (",", "."), "pt": (".", ","), "fr": ("\u202f", ",")}
SUPPRESSED = "•"
MISSING = "—"


# The columns of the bulletin's tables, the same in the HTML and the PDF: keys of the catalog,
# "=TEXT" a heading written as it is, "{month}" the bulletin's month.
TABLE_HEADS = {
    "headline": ("flow_type", "unit", "all_members", "=CRM", "=CSM", "last_year", "change"),
    "corridors": ("reporter", "flow_type", "unit", "nationalities"),
    "yoy": ("reporter", "flow_type", "unit", "{month}", "last_year", "change"),
    "mirror": (
        "pair",
        "period_col",
        "side_a",
        "side_b",
        "difference",
        "asymmetry",
        "tolerance",
        "within",
        "note",
    ),
    "revisions": ("reporter", "source", "period_col", "revision_change", "observations", "=vintage"),
}


def text(key: str, lang: str, **values) -> str:
    return messages.label(key, lang, section="bulletin", **values)


def heads(table: str, period: dt.date, lang: str) -> list[str]:
    """The headings of one of the bulletin's tables (``TABLE_HEADS``) in ``lang``."""

    def heading(key: str) -> str:
        if key == "{month}":
            return month(period, lang)
        return key[1:] if key.startswith("=") else text(key, lang)

    return [heading(k) for k in TABLE_HEADS[table]]


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        from transforms.publish.bulletin.errors import BulletinError

        raise BulletinError(f"--lang {lang!r}: expected one of {', '.join(LANGS)}")
    return lang


def number(value: float | None, lang: str) -> str:
    """A count as the language writes it; ``•`` when disclosure control withholds it."""
    if value is None:
        return SUPPRESSED
    thousands, _ = _SEPARATORS[lang]
    return f"{round(value):,}".replace(",", thousands)


def percent(value: float | None, lang: str) -> str:
    if value is None:
        return MISSING
    _, decimal = _SEPARATORS[lang]
    return f"{value:+.1f}".replace(".", decimal) + " %"


def month(d: dt.date, lang: str) -> str:
    row = next(r for r in codelists.load("month_names") if int(r["month"]) == d.month)
    return f"{row[f'label_{lang}']} {d.year}"


def status_line(d, member: dict, lang: str) -> str:
    """A member's delivery status for the month, with k of n sources when partial."""
    line = d.grid["status_labels"].get(member["status"], member["status"])
    if member["status"] == "partial":
        line += f" ({text('sources_in', lang, k=member['sources_in'], n=member['sources_expected'])})"
    return line
