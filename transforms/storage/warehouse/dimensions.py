"""The dimensions and the delivery calendar, seeded from the code lists and the contracts on
every ``ensure_schema`` (a mixin of ``Warehouse``)."""

from __future__ import annotations

import calendar
import datetime as dt

import pandas as pd

from transforms.config import pinned_today, today
from transforms.contracts import codelists
from transforms.contracts.mirror_pairs import pair_frame


def _add_months(d: dt.date, months: int) -> dt.date:
    idx = d.year * 12 + d.month - 1 + months
    return dt.date(idx // 12, idx % 12 + 1, 1)


def _month_end(d: dt.date) -> dt.date:
    return dt.date(d.year, d.month, calendar.monthrange(d.year, d.month)[1])


def delivery_slots(sources: list[dict], today: dt.date, months_back: int) -> tuple[list[dict], list[dict]]:
    """The delivery calendar of each source from ``months_back`` months ago to the current period,
    and the calendar months of that span.

    A period's file is due on ``due_day`` (or the month's last day) of the month ``lag_months``
    after the period ends (contracts' ``delivery``). Monthly, quarterly (calendar quarters) and
    yearly (calendar years) periods.
    """
    this_month = today.replace(day=1)
    start = _add_months(this_month, -max(0, months_back))
    months = []
    m = start
    while m <= this_month:
        months.append({"month_start": m, "month_end": _month_end(m), "year": m.year, "month": m.month})
        m = _add_months(m, 1)
    slots = []
    for s in sources:
        step = {"monthly": 1, "quarterly": 3, "yearly": 12}.get(s.get("delivery_frequency") or "monthly", 1)
        lag = int(s.get("lag_months") if s.get("lag_months") is not None else 1)
        due_day = int(s.get("due_day") or 15)
        first = dt.date(start.year, ((start.month - 1) // step) * step + 1, 1)
        periods = []
        p = first
        while p <= this_month:
            end = _month_end(_add_months(p, step - 1))
            due_month = _add_months(end.replace(day=1), lag)
            due = due_month.replace(day=min(due_day, calendar.monthrange(due_month.year, due_month.month)[1]))
            periods.append((p, end, due))
            p = _add_months(p, step)
        for i, (p, end, due) in enumerate(periods):
            window_end = (
                periods[i + 1][1] if i + 1 < len(periods) else _month_end(_add_months(p, 2 * step - 1))
            )
            slots.append(
                {
                    "source_id": s["source_id"],
                    "period_start": p,
                    "period_end": end,
                    "due_date": due,
                    "window_end": window_end,
                }
            )
    return slots, months


def _absent_as_null(frame: pd.DataFrame) -> pd.DataFrame:
    """An empty cell of a code list (``''`` or blanks only) is an absent value: NULL in the
    warehouse, never ``''``. Migration 0006 does the same to warehouses seeded before.

    (``''`` as a flow type's parent made every grouping on the root flow type merge the top-level
    types: entries and exits added together.)
    """
    text = frame.select_dtypes(include=["object", "string"]).columns
    if not len(text):
        return frame
    out = frame.copy()
    for column in text:
        values = out[column]
        blank = values.map(lambda v: isinstance(v, str) and not v.strip())
        out[column] = values.astype(object).where(~blank, None)
    return out


def _overlap_frame(contracts) -> pd.DataFrame:
    """``dim_source_overlap`` from the contracts' ``overlaps`` (transforms/contracts/model.py)."""
    from transforms.contracts.loading import overlap_rules

    columns = [
        "source_id",
        "preferred_source_id",
        "flow_type",
        "period_from",
        "period_to",
        "declared_by",
        "note",
    ]
    return pd.DataFrame(overlap_rules(contracts), columns=columns)


def _month_names() -> pd.DataFrame:
    months = pd.DataFrame(codelists.load("month_names"))
    months["month"] = months["month"].astype(int)
    return months[["month", "label_es", "label_en", "label_pt", "label_fr"]]


class Dimensions:
    """Seeding the dimensions (a mixin of ``Warehouse``: needs its primitives)."""

    def _replace(self, table: str, frame: pd.DataFrame) -> None:
        self.execute(f"DELETE FROM {table}")
        if len(frame):
            self.copy_into(table, _absent_as_null(frame))

    def _seed_dimensions(self, contracts) -> None:
        labels = ["code", "label_es", "label_en", "label_pt", "label_fr"]
        countries = pd.DataFrame(codelists.load("countries"))
        countries["is_member"] = countries["member"].astype(str).str.lower().isin(["true", "1", "yes"])
        countries = countries[
            ["iso3", "iso2", "m49", "name_es", "name_en", "name_pt", "name_fr", "is_member", "conference"]
        ]
        if "_T" not in set(countries["iso3"]):  # SDMX total: the source gives no citizenship breakdown
            total = {
                "iso3": "_T",
                "iso2": None,
                "m49": None,
                "name_es": "Todas las nacionalidades",
                "name_en": "All citizenships",
                "name_pt": "Todas as nacionalidades",
                "name_fr": "Toutes nationalités",
                "is_member": False,
                "conference": None,
            }
            countries = pd.concat([countries, pd.DataFrame([total])], ignore_index=True)
        flows = pd.DataFrame(codelists.load("flow_types"))
        conferences = pd.DataFrame(codelists.load("conferences"))[labels]
        everyone = {
            "code": "ALL",
            "label_es": "Todos los Estados miembros",
            "label_en": "All member states",
            "label_pt": "Todos os Estados membros",
            "label_fr": "Tous les États membres",
        }
        conferences = pd.concat([conferences, pd.DataFrame([everyone])], ignore_index=True)
        with self.transaction():
            self._lock("omh:dimensions")
            self._replace("dim_country", countries)
            self._replace(
                "dim_flow_type",
                flows[[*labels[:1], "parent", "reporter_role", "default_unit", *labels[1:], "definition_en"]],
            )
            for name, table in (
                ("sex", "dim_sex"),
                ("age_bands", "dim_age_band"),
                ("units", "dim_unit"),
                ("obs_status", "dim_obs_status"),
            ):
                self._replace(table, pd.DataFrame(codelists.load(name))[labels])
            self._replace("dim_month_name", _month_names())
            self._replace("dim_conference", conferences)
            self._replace("dim_mirror_pair", pair_frame())
            if contracts:
                rows = [
                    {
                        "source_id": c.source_id,
                        "reporter_iso3": c.reporter,
                        "conference": c.conference,
                        "title": c.title,
                        "agency": c.agency,
                        "language": c.language,
                        "file_format": c.reader.format,
                        "contract_version": c.version,
                        "synthetic": c.synthetic,
                        "delivery_frequency": c.delivery.frequency,
                        "due_day": c.delivery.due_day,
                        "lag_months": c.delivery.lag_months,
                        "calendar": c.period.calendar,
                        "on_calendar": c.delivery.calendar,
                    }
                    for c in contracts.values()
                ]
                self._replace("dim_source", pd.DataFrame(rows))
                self._replace("dim_source_overlap", _overlap_frame(contracts))
            cols, rows = self.query(
                "SELECT source_id, delivery_frequency, due_day, lag_months FROM dim_source "
                "WHERE on_calendar IS NULL OR on_calendar"
            )
            months_back = self._scalar("SELECT value FROM config WHERE key = 'completeness_months'")
            slots, months = delivery_slots(
                [dict(zip(cols, r, strict=True)) for r in rows], today(), int(months_back or 24)
            )
            self._pin_clock(pinned_today())
            self._replace(
                "delivery_slot",
                pd.DataFrame(
                    slots, columns=["source_id", "period_start", "period_end", "due_date", "window_end"]
                ),
            )
            self._replace(
                "dim_month", pd.DataFrame(months, columns=["month_start", "month_end", "year", "month"])
            )

    def _pin_clock(self, pinned: dt.date | None) -> None:
        """Store the date OMH_TODAY pins (the views' missing / not-due follow it), or forget it."""
        self.execute("DELETE FROM config WHERE key = 'clock_today'")
        if pinned:
            self.execute("INSERT INTO config (key, value) VALUES ('clock_today', ?)", [pinned.isoformat()])
