"""The delivery deadline of a source DAG run: the due date of the period it processes.

A source DAG runs once per period of its contract's delivery calendar (its data interval is the
period). The country's file for that period is due on ``due_day`` of the month ``lag_months`` after
the period ends. ``DeliveryDueDate`` evaluates to that day (00:00 UTC), or to the run's creation
when the run is created after it (a backfill, a rerun, a first deployment), so that a late run is
given the same grace as any other before its alert fires. The DAG's ``DeadlineAlert`` adds that
grace (its ``interval``) and names the callback (``transforms.ops.alerts.delivery_missed``).

A run that succeeds (the period's figures are in the warehouse) before the deadline removes it;
a run still waiting for the file, or failed (a refused file, no file), lets it fire.

Registered by the plugin (``deadline_references``): the scheduler evaluates it when it creates
a run. Module level imports only ``airflow.sdk`` and the standard-library ``transforms.ops.delivery``:
DAG files import this.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar

from airflow.sdk import BaseDeadlineReference

from transforms.ops.delivery import due_date


# eq=False: equality and hash stay the base class's (its serialized form, fields included).
@dataclass(eq=False)
class DeliveryDueDate(BaseDeadlineReference):
    """Due date (00:00 UTC) of the period in the run's data interval, or the run's creation if later."""

    lag_months: int = 1
    due_day: int = 15

    required_kwargs: ClassVar[set[str]] = {"dag_id", "run_id"}

    def _evaluate_with(self, *, session, dag_id: str, run_id: str, **kwargs: Any) -> dt.datetime | None:
        from airflow.models import DagRun
        from sqlalchemy import select

        row = session.execute(
            select(DagRun.data_interval_end).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        ).one_or_none()
        if row is None or row[0] is None:
            return None  # a manual run with no period: nothing is due
        due = due_date(row[0], self.lag_months, self.due_day)
        at = dt.datetime(due.year, due.month, due.day, tzinfo=dt.UTC)
        return max(at, dt.datetime.now(dt.UTC))

    def serialize_reference(self) -> dict[str, Any]:
        return {**super().serialize_reference(), "lag_months": self.lag_months, "due_day": self.due_day}

    @classmethod
    def deserialize_reference(cls, reference_data: dict[str, Any]) -> DeliveryDueDate:
        return cls(
            lag_months=int(reference_data.get("lag_months", 1)),
            due_day=int(reference_data.get("due_day", 15)),
        )
