"""SQL text of harmonize's generated queries: literals, quoting, lists."""

from __future__ import annotations

import re

_LITERAL = re.compile(r"^'(?:[^']|'')*'$")


def is_literal(sql: str) -> bool:
    """A quoted SQL string, as ``sql_text`` writes the contract's fixed values."""
    return bool(_LITERAL.match(sql.strip()))


def sql_literal(value) -> str:
    return "NULL" if value is None else f"'{sql_text(str(value))}'"


def sql_text(text: str) -> str:
    return str(text).replace("'", "''")


def concat_lists(lists) -> list:
    return [x for item in lists for x in item]


def case_sql(cases: list[tuple[str, str]], otherwise: str = "NULL") -> str:
    """One SQL expression from (condition, expression) pairs: the expression alone when there is
    one, ``otherwise`` when there is none."""
    if not cases:
        return otherwise
    if len(cases) == 1:
        return cases[0][1]
    return "CASE " + " ".join(f"WHEN {c} THEN {e}" for c, e in cases) + " END"
