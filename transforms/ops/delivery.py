"""The delivery calendar of one source DAG run: which period it processes, when that period is due,
whether its figures are in, and whether to keep waiting for its file.

A source DAG runs once per period of its contract's calendar (a ``CronDataIntervalTimetable`` on
the delivery frequency): its data interval *is* the period. So a run is keyed on what it processes,
and a rerun or a backfill of a period asks the same question again (files already loaded are
skipped by sha256; ``period_loaded`` only reads).

Standard library at module level (DAG files and the plugin import this); the warehouse is opened
read-only, inside the functions that need it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import os
from dataclasses import dataclass

FREQUENCY_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}


def _as_date(value: dt.date | dt.datetime | str) -> dt.date:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.date()
    return value


def _add_months(d: dt.date, months: int) -> dt.date:
    index = d.year * 12 + d.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def due_date(period_end_exclusive: dt.date | dt.datetime | str, lag_months: int, due_day: int) -> dt.date:
    """Due date of the period that ends just before ``period_end_exclusive`` (a data interval's end).

    The rule of the warehouse's delivery calendar (``transforms.storage.warehouse.delivery_slots``): the
    file is due on ``due_day`` (or the month's last day) of the month ``lag_months`` after the
    period's last month.
    """
    last_day = _as_date(period_end_exclusive) - dt.timedelta(days=1)
    month = _add_months(last_day.replace(day=1), lag_months)
    return month.replace(day=min(due_day, calendar.monthrange(month.year, month.month)[1]))


@dataclass(frozen=True)
class Period:
    """One delivery period: [start, end] (both inclusive) and the day its file is due."""

    start: dt.date
    end: dt.date
    due: dt.date
    frequency: str

    @classmethod
    def of_interval(cls, start, end_exclusive, frequency: str, lag_months: int, due_day: int) -> Period:
        return cls(
            start=_as_date(start),
            end=_as_date(end_exclusive) - dt.timedelta(days=1),
            due=due_date(end_exclusive, lag_months, due_day),
            frequency=frequency,
        )

    @property
    def label(self) -> str:
        """``2026-10`` (month), ``2026-Q3`` (quarter), ``2025`` (year), else ``start..end``."""
        months = (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1
        if self.start.day == 1 and self.end == _add_months(self.start, months) - dt.timedelta(days=1):
            if months == 1:
                return f"{self.start:%Y-%m}"
            if months == 3 and self.start.month in (1, 4, 7, 10):
                return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
            if months == 12 and self.start.month == 1:
                return f"{self.start.year}"
        return f"{self.start}..{self.end}"


def period_label(start, end_exclusive) -> str:
    return Period.of_interval(start, end_exclusive, "", 0, 1).label


def deadline_grace() -> dt.timedelta:
    """How long after the due date (or after a run created past it) the Deadline Alert waits.

    ``OMH_DEADLINE_GRACE_SECONDS`` (default one day: the file is due *on* its due day); read when
    the DAG file is parsed.
    """
    return dt.timedelta(seconds=float(os.environ.get("OMH_DEADLINE_GRACE_SECONDS", 86400)))


def discover_poke_seconds() -> float:
    """How often a run waiting for its period's file looks at the landing folder again."""
    return float(os.environ.get("OMH_DISCOVER_POKE_SECONDS", 3600))


# ---------------------------------------------------------------------------- in the warehouse


@dataclass
class Coverage:
    """What the warehouse holds for one source and period."""

    source_id: str
    period: Period
    files_loaded: list[str]
    observations: int
    files_refused: list[str]

    @property
    def loaded(self) -> bool:
        return bool(self.files_loaded)

    def message(self, today: dt.date | None = None) -> str:
        if today is None:
            from transforms.config import today as observatory_today

            today = observatory_today()
        p = self.period
        if self.loaded:
            return (
                f"{self.source_id} {p.label}: loaded, {self.observations} observation(s) from "
                f"{', '.join(self.files_loaded)}"
            )
        why = f"files refused: {', '.join(self.files_refused)}" if self.files_refused else "no file loaded"
        when = f"was due on {p.due}" if today > p.due else f"is due on {p.due}"
        return f"{self.source_id} {p.label}: NOT LOADED ({why}); its file {when}"


def coverage(source_id: str, period: Period, home=None) -> Coverage:
    """Loaded files whose figures cover the period (``file_coverage``), and refused files received
    since the period ended; read-only. A warehouse not created yet holds nothing."""
    from transforms.config import settings
    from transforms.storage.warehouse import open_for_reading

    cfg = settings(home)
    empty = Coverage(source_id, period, [], 0, [])
    if cfg.duckdb_path is not None and not cfg.duckdb_path.exists():
        return empty
    with open_for_reading(cfg) as wh:
        try:
            loaded = wh.fetchall(
                "SELECT m.file_name, sum(c.observations) FROM file_coverage c "
                "JOIN file_manifest m ON m.source_id = c.source_id AND m.sha256 = c.sha256 "
                "AND m.status = 'loaded' "
                "WHERE c.source_id = ? AND c.period_start <= ? AND c.period_end >= ? "
                "GROUP BY m.file_name ORDER BY m.file_name",
                [source_id, period.end, period.start],
            )
            refused = wh.fetchall(
                "SELECT file_name FROM file_manifest WHERE source_id = ? AND status = 'refused' "
                "AND CAST(received_at AS DATE) > ? ORDER BY file_name",
                [source_id, period.end],
            )
        except Exception as exc:  # no schema yet: nothing is loaded
            if "file_coverage" in str(exc) or "file_manifest" in str(exc):
                return empty
            raise
    return Coverage(
        source_id,
        period,
        [r[0] for r in loaded],
        int(sum(r[1] or 0 for r in loaded)),
        [r[0] for r in refused],
    )


@dataclass
class Decision:
    """What ``discover`` does for a run: go on with ``new`` files, wait, or fail (``missing``)."""

    done: bool
    new: list[dict]
    message: str
    missing: bool = False


def await_delivery(
    source_id: str,
    period: Period | None,
    now: dt.datetime | None = None,
    grace: dt.timedelta | None = None,
    home=None,
    rerun: list[str] | None = None,
) -> Decision:
    """The ``discover`` step of a source DAG run.

    * New landing files (not loaded by sha256): go on and ingest them, whatever their period
      (a country may resend earlier periods with its new one). A file refused before is not new
      while its bytes and the rules that judged it are unchanged, or once dismissed; ``rerun``
      names files to try again all the same (the DAG's ``rerun_files`` parameter).
    * No new file and the period's figures already loaded (a rerun, a backfill): go on, nothing to do.
    * No new file, not loaded, before the due date (plus grace): wait and look again.
    * No new file, not loaded, past it: fail; the DAG's Deadline Alert reports it.
    A run with no period (triggered by hand without a logical date) goes on with what landed.
    """
    from transforms.ingest.landing import discover

    now = now or dt.datetime.now(dt.UTC)
    grace = deadline_grace() if grace is None else grace
    files = discover(source_id, home)
    rerun = set(rerun or ())
    new = [
        {"path": f["path"], "file": f["file"], "sha256": f["sha256"]}
        for f in files
        if not f["loaded"] and (not f.get("settled") or f["file"] in rerun)
    ]
    settled = [f for f in files if f.get("settled") and f["file"] not in rerun]
    listing = f"{len(files)} landing file(s), {len(new)} new"
    if settled:
        listing += "; not tried again: " + "; ".join(f"{f['file']} ({f['settled']})" for f in settled)
    if new or period is None:
        what = f" for {period.label}" if period else " (a run with no period)"
        return Decision(True, new, f"{source_id}{what}: {listing}")
    cov = coverage(source_id, period, home)
    if cov.loaded:
        return Decision(True, [], f"{cov.message()}; {listing}: nothing to do")
    wait_until = dt.datetime.combine(period.due, dt.time(), dt.UTC) + grace
    if now < wait_until:
        return Decision(
            False,
            [],
            f"{source_id} {period.label}: waiting for its file (due on {period.due}; {listing}); "
            f"looking again until {wait_until:%Y-%m-%d %H:%M} UTC",
        )
    return Decision(False, [], cov.message(now.date()) + f"; {listing}", missing=True)
