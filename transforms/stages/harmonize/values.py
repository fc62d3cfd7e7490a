"""Values: the distinct raw texts of a file's value cells -> numbers, zeros, suppressed or
missing cells, each read once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from transforms.contracts.model import Contract
from transforms.engine import small_table
from transforms.problems import Problem
from transforms.stages.harmonize.grouping import Distinct, first_rows


def parse_values(
    raw: pd.Series,
    contract: Contract,
    problems: list[Problem],
    rows: pd.Series,
    weights: pd.Series | None = None,
    row_lists: pd.Series | None = None,
) -> pd.DataFrame:
    """Raw cell text -> value (float, NaN when suppressed), action (value|zero|missing|suppressed)."""
    markers = contract.all_markers()
    thousands = contract.reader.thousands
    decimal = contract.reader.decimal
    distinct = pd.unique(raw)
    values, actions, bad = {}, {}, []
    for text in distinct:
        t = text.strip()
        action = markers.get(t)
        if action is not None:
            actions[text] = action
            values[text] = 0.0 if action == "zero" else np.nan
            continue
        s = t.replace("\u00a0", "").replace(" ", "")
        if thousands:
            s = s.replace(thousands, "")
        if decimal != ".":
            s = s.replace(decimal, ".")
        try:
            v = float(s)
            if not np.isfinite(v):
                raise ValueError
        except ValueError:
            bad.append(text)
            actions[text] = "missing"
            values[text] = np.nan
            continue
        actions[text] = "value"
        values[text] = v
    for text in bad:
        hit = raw == text
        problems.append(
            Problem(
                "error",
                "value_is_number",
                f"value {text[:60]!r} is not a number nor a marker the contract knows",
                column=None,
                label=text[:60],
                count=int(weights[hit].sum()) if weights is not None else int(hit.sum()),
                rows=first_rows(rows.to_frame("source_row").assign(_rows=row_lists), hit)
                if row_lists is not None
                else rows[hit].head(5).tolist(),
            )
        )
    return pd.DataFrame({"value": raw.map(values).astype("float64"), "action": raw.map(actions)})


@dataclass
class ValueMap:
    """The distinct raw values of a file mapped once: a small table (value_raw -> value, action)."""

    name: str
    suppressed: bool  # whether any cell is suppressed (else every observation is 'F')


def value_map(contract: Contract, con, distinct: Distinct, problems: list[Problem]) -> ValueMap:
    """Every distinct raw value read once, as a table the canonical SELECT joins on."""
    values = distinct.of(["value_raw"])
    raw = values["value_raw"].astype(str)
    parsed = parse_values(raw, contract, problems, values["source_row"], values["_n"], values["_rows"])
    vmap = pd.DataFrame({"value_raw": raw, "value": parsed["value"], "action": parsed["action"]})
    return ValueMap(small_table(con, vmap, "vmap"), bool((vmap["action"] == "suppressed").any()))
