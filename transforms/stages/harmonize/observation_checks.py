"""Checks on a file's canonical observations: one key per observation, no implausible jump."""

from __future__ import annotations

import pandas as pd

from transforms.contracts.checks import full_number
from transforms.engine import fetch_df
from transforms.problems import Problem
from transforms.stages.harmonize.model import KEY_COLUMNS


def check_keys(con, canon: str, problems: list[Problem]) -> None:
    from transforms.engine import duplicate_groups

    dup = duplicate_groups(con, canon, KEY_COLUMNS)
    if len(dup):
        n = int(dup["_n"].sum())
        problems.append(
            Problem(
                "error",
                "key_unique",
                f"{n} observations share their key (exact duplicate rows, or a breakdown "
                "the contract does not keep in 'detail')",
                count=n,
                rows=sorted(int(r) for rows in dup["_rows"] for r in rows)[:5],
            )
        )


# A period this many times above (or below) the median of its series is implausible.
JUMP_FACTOR = 10


JUMP_MIN_DIFFERENCE = 1000


def check_jumps(con, canon: str, problems: list[Problem]) -> None:
    """Warn about a period far outside the rest of its series (a typo, a unit change, a lost row)."""
    series = fetch_df(
        con,
        f"""SELECT reporter_iso3, flow_type, unit, period_type, period_start, sum(value) AS value,
                   min(source_row) AS first_row
            FROM {canon} GROUP BY ALL ORDER BY ALL""",
    )
    for key, values in series.groupby(["reporter_iso3", "flow_type", "unit", "period_type"], sort=False):
        if len(values) < 4:
            continue
        median = float(values["value"].median())
        v = values["value"]
        far = values[
            ((v - median).abs() >= JUMP_MIN_DIFFERENCE)
            & ((v > JUMP_FACTOR * max(median, 1)) | (v * JUMP_FACTOR < median))
        ]
        if far.empty:
            continue
        listed = ", ".join(
            f"{pd.Timestamp(r.period_start).date()}: {full_number(r.value)}" for r in far.head(4).itertuples()
        )
        listed += " ..." if len(far) > 4 else ""
        problems.append(
            Problem(
                "warning",
                "jump",
                f"{key[0]} {key[1]}: {len(far)} period(s) more than {JUMP_FACTOR}x away from the series "
                f"median {full_number(median)} {key[2]} ({listed})",
                label=full_number(far["value"].iloc[0]),
                count=len(far),
                rows=[int(far["first_row"].iloc[0])],
            )
        )
