"""The built-in checks, each by the stable name a contract's ``severity`` map addresses.

Data only (imported by ``contracts``, itself imported by DAG files). A check's ``default`` is the
severity it has without a contract saying otherwise: ``error`` refuses the file, ``warning``
loads it with the finding recorded. A contract raises or lowers a check with a reason::

    severity:
      guard.own_citizens: {level: warning, reason: "citizens returning through the border are counted"}

A ``locked`` check cannot be lowered (privacy, safety of exports, an empty delivery): the contract
may only raise it. ``docs/contracts.md`` lists them all (``scripts/contract_docs.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    stage: str  # where it runs: reader, raw suite, harmonize, guard, canonical suite
    default: str  # "error" | "warning"
    meaning: str
    locked: bool = False


_CHECKS = [
    Check("file.no_data_rows", "reader", "error", "the file holds no data row (an empty delivery)", True),
    Check(
        "not_empty",
        "harmonize",
        "error",
        "no value cell is left once rows are skipped (the message says where reading stopped)",
        True,
    ),
    Check("guard.person_level", "guard", "error", "a column holds person-level identifiers", True),
    Check(
        "guard.formula_label",
        "guard",
        "error",
        "a label would run as a spreadsheet formula (=, +, - or @)",
        True,
    ),
    Check(
        "guard.own_citizens",
        "guard",
        "error",
        "the reporter's own citizens in a flow of foreigners only (the signature of another country's file)",
    ),
    Check("guard.future_period", "guard", "error", "observations for a period that starts after today"),
    Check("guard.fraction", "guard", "error", "a value that is not a whole number (counts are integers)"),
    Check(
        "expect_table_row_count_to_be_between",
        "raw suite, canonical suite",
        "error",
        "the file (or its observations) holds no row",
    ),
    Check("expect_column_to_exist", "raw suite", "error", "a column the contract reads is missing"),
    Check(
        "expect_column_values_to_match_regex",
        "raw suite",
        "error",
        "a value cell is not a number or a known marker; a year is not a year",
    ),
    Check(
        "expect_column_values_to_not_be_null",
        "raw suite, canonical suite",
        "error",
        "a required cell is empty",
    ),
    Check("expect_column_value_lengths_to_be_between", "raw suite", "error", "a value cell is too long"),
    Check(
        "expect_column_values_to_be_in_set",
        "raw suite, canonical suite",
        "error",
        "a label the contract's map does not know; a code outside its code list",
    ),
    Check(
        "expect_column_values_to_be_between",
        "canonical suite",
        "error",
        "a negative value, an implausibly large value, a year outside 1950-2100",
    ),
    Check("expect_compound_columns_to_be_unique", "canonical suite", "error", "two observations share a key"),
    Check(
        "expect_column_pair_values_a_to_be_greater_than_b",
        "canonical suite",
        "error",
        "a period that ends before it starts",
    ),
    Check("value_is_number", "harmonize", "error", "a value cell that is not a number or a known marker"),
    Check("label_known", "harmonize", "error", "a label no mapping of the contract knows"),
    Check("code_in_codelist", "harmonize", "error", "a code outside its code list"),
    Check("period_valid", "harmonize", "error", "a period label that cannot be read"),
    Check(
        "total_matches", "harmonize", "error", "the source's own total differs from its cells beyond rounding"
    ),
    Check("total_within_rounding", "harmonize", "warning", "the source's own total differs within rounding"),
    Check(
        "remainder_negative",
        "harmonize",
        "warning",
        "cells exceed their total within rounding: a negative remainder is stored so the sum is the total",
    ),
    Check(
        "remainder_share",
        "harmonize",
        "warning",
        "remainders are more than `remainder_max_share` of the file's totals (rows the contract may skip wrongly)",
    ),
    Check("key_unique", "harmonize", "error", "observations that share their key"),
    Check("jump", "harmonize", "warning", "a period far outside the rest of its series"),
]

CHECKS: dict[str, Check] = {c.name: c for c in _CHECKS}


def setting_hint(name: str, level: str = "warning") -> str:
    """The contract setting that changes a check's outcome, as a message names it."""
    return f"set severity: {{{name}: {{level: {level}, reason: ...}}}} in the contract"


def full_number(value) -> str:
    """A number as findings print it: in full, never in e-notation (3058550, 12.5, -25)."""
    from decimal import Decimal

    number = float(value)
    if number == int(number):
        return str(int(number))
    return format(Decimal(repr(number)).normalize(), "f")
