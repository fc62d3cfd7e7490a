"""The bulletin's words in es/en/pt/fr (the ``bulletin`` section of ``data/messages.yaml``) and its
number formats."""

from __future__ import annotations

import datetime as dt

from transforms import codelists, messages

LANGS = messages.LANGS
# Thousands separator and decimal mark per language.
_SEPARATORS = {"es": (".", ","), "en": (",", "."), "pt": (".", ","), "fr": ("\u202f", ",")}
SUPPRESSED = "•"
MISSING = "—"


def text(key: str, lang: str, **values) -> str:
    return messages.label(key, lang, section="bulletin", **values)


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        from transforms.bulletin.errors import BulletinError

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
