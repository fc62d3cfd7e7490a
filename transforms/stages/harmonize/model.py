"""What harmonize produces: the canonical columns, the key of an observation, the defaults of
fields a contract leaves out, and ``Harmonized`` (one file's observations, problems and controls)."""

from __future__ import annotations

import pandas as pd

from transforms.engine import fetch_df, fetch_value
from transforms.problems import Problem

COUNTRY_FIELDS = ("reporter", "citizenship", "counterpart")


FIELD_CODELIST = {
    "reporter": "countries",
    "citizenship": "countries",
    "counterpart": "countries",
    "flow_type": "flow_types",
    "sex": "sex",
    "age_band": "age_bands",
    "unit": "units",
    "obs_status": "obs_status",
    "reporter_role": None,
}


DEFAULTS = {
    "citizenship": "_T",
    "counterpart": "_Z",
    "sex": "_T",
    "age_band": "_T",
    "obs_status": "A",
}


REPORTER_ROLES = ("destination", "transit", "origin")


KEY_COLUMNS = [
    "source_id",
    "reporter_iso3",
    "flow_type",
    "citizenship_iso3",
    "counterpart_iso3",
    "period_start",
    "period_end",
    "sex",
    "age_band",
    "unit",
    "detail",
]


CANONICAL_COLUMNS = [
    *KEY_COLUMNS,
    "reporter_role",
    "period_type",
    "value",
    "obs_status",
    "conf_status",
    "rounding_base",
    "source_sheet",
    "source_row",
    "source_column",
    "year",
    "month",
]


# The layout step's attribute numbering the tables of a file (``readers.layout``).
TABLE_KEY = "_table"


def roles_kept(contract) -> tuple[str, ...]:
    """The kinds of cell that become observations: leaves, and totals and total rows when the
    contract keeps their remainders."""
    return ("value", "total", "total_row") if contract.remainder is not None else ("value",)


class Harmonized:
    """Canonical observations of one file: views in DuckDB, plus problems and controls."""

    def __init__(
        self,
        con,
        view: str,
        problems: list[Problem],
        controls_view: str | None,
        out_of_scope: int,
        constants: dict | None = None,
    ):
        self.con = con
        self.view = view
        self.problems = problems
        self.controls_view = controls_view
        self.out_of_scope = out_of_scope
        # Canonical columns that hold the same value in every observation of the file (the
        # contract's fixed codes, the file's parameters), as Python values.
        self.constants = constants or {}

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def frame(self) -> pd.DataFrame:
        """The observations materialized (small files and tests), dates as ``datetime.date``."""
        frame = fetch_df(self.con, f"SELECT * FROM {self.view} ORDER BY source_row, source_column, detail")
        for col in ("period_start", "period_end"):
            frame[col] = [d.date() if hasattr(d, "date") else d for d in frame[col]]
        frame["rounding_base"] = frame["rounding_base"].astype("Int64")
        return frame

    @property
    def controls(self) -> pd.DataFrame:
        if self.controls_view is None:
            return pd.DataFrame()
        return fetch_df(self.con, f"SELECT * FROM {self.controls_view} ORDER BY source_row, source_col")

    def count(self) -> int:
        return int(fetch_value(self.con, f"SELECT count(*) FROM {self.view}"))
