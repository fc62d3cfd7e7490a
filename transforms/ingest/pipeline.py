"""Pipeline entry points: the same functions run under Airflow, the ``omh`` command and the tests.

discover -> check (extract, raw suite, harmonize, guard, canonical suite) -> load (warehouse, lake)
A refused file is copied to quarantine with its report; nothing already published changes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from transforms import scratch
from transforms.config import Settings
from transforms.config import settings as get_settings
from transforms.contracts.loading import get_contract, load_contracts, shared_flows
from transforms.contracts.model import Contract
from transforms.ingest.landing import display_name, quarantine, sha256_of, source_files, vintage_of
from transforms.ingest.results import (
    STATUS_LOADED,
    STATUS_REFUSED,
    STATUS_SKIPPED,
    STATUS_UNREADABLE,
    IngestResult,
    Refused,
    timed,
)
from transforms.storage.manifest import already_loaded, rules_fingerprint

log = logging.getLogger("omh.pipeline")


def check_file(path, source_id: str, report: str | None = None, lang: str | None = None) -> IngestResult:
    """Would this file load? Nothing is stored (for a country's data team, before sending)."""
    from transforms.ingest.check import check_safely

    path = Path(path)
    contract = get_contract(source_id)
    sha = sha256_of(path) if path.is_file() else ""
    result = IngestResult(source_id, path.name, sha, STATUS_LOADED)
    outcomes = []
    try:
        if not path.is_file():
            raise Refused(f"{path.name}: no such file", unreadable=True)
        checked = check_safely(path, contract, every_problem=True)
        checked.close()
        outcomes = checked.outcomes
        result.rows = checked.rows
        result.warnings = checked.warnings
        result.reporters = checked.reporters
        result.reason = f"{path.name}: would load {checked.rows} observations"
    except Refused as exc:
        result.status = STATUS_UNREADABLE if exc.unreadable else STATUS_REFUSED
        result.reason = exc.reason
        result.problems = exc.problems
        outcomes = exc.outcomes or outcomes
    if report:
        from transforms.ingest.reports import write_report

        result.report = str(write_report(Path(report), result, outcomes, contract, lang=lang))
    return result


def ingest_file(path, source_id: str, home=None) -> IngestResult:
    """The whole pipeline for one landing file; a file already loaded is skipped.

    landing file -> already loaded? -> check (``ingest.check``) -> refused: quarantine and record;
    else -> the warehouse (one transaction) -> the lake -> overlap warnings.
    """
    cfg = get_settings(home).ensure()
    # Scratch files of killed runs (SIGKILL, OOM) go; this run works in a folder of its own.
    scratch.sweep(cfg.home / "tmp", tempfile.gettempdir())
    work_dir = scratch.process_dir(cfg.home / "tmp")
    path = Path(path)
    if not path.is_file():
        return IngestResult(source_id, path.name, "", STATUS_UNREADABLE, reason=f"{path.name}: no such file")
    sha, shown = sha256_of(path), display_name(path)
    if already_loaded(cfg, source_id, sha):  # before any heavy import: a rerun costs a hash
        return _skipped(source_id, path, shown, sha)
    contract = get_contract(source_id)
    from transforms.storage.warehouse import Warehouse

    with Warehouse(cfg, purpose=f"the load of {shown}") as wh:
        if wh.is_loaded(source_id, sha):
            return _skipped(source_id, path, shown, sha)
        wh.ensure_schema(load_contracts())
        load = _Load(cfg, wh, contract, path, sha, shown)
        try:
            checked = load.check(work_dir)
        except Refused as exc:
            return load.refuse(exc)
        load.publish(checked)
    for w in load.result.warnings:
        log.warning(w)
    log.info("%s", load.result.reason)
    return load.result


@dataclass
class _Load:
    """One file's load into an open warehouse: its record, its check, its refusal or its publication."""

    cfg: Settings
    wh: object
    contract: Contract
    path: Path
    sha: str
    shown: str
    result: IngestResult = field(init=False)
    entry: dict = field(init=False)
    now: dt.datetime = field(init=False)
    sink: object = field(init=False, default=None)
    outcomes: list = field(init=False, default_factory=list)

    def __post_init__(self):
        stat = self.path.stat()
        self.entry = {
            "source_id": self.contract.source_id,
            "sha256": self.sha,
            "file_name": self.shown,
            "landing_path": display_name(self.path, full=True),
            "size_bytes": stat.st_size,
            "received_at": dt.datetime.fromtimestamp(stat.st_mtime),
            "vintage": vintage_of(self.path),
            "processed_at": dt.datetime.now(),
        }
        self.result = IngestResult(self.contract.source_id, self.shown, self.sha, STATUS_LOADED)
        # The instant of the load, in every observation's lineage (a sink writes them early).
        self.now = dt.datetime.now()

    @property
    def _lineage(self) -> tuple:
        """What every observation of this load carries: file name, sha256, vintage, load instant."""
        return (self.path.name, self.sha, self.entry["vintage"], self.now)

    @property
    def _local(self):
        """The warehouse's own connection on DuckDB: the file is read and harmonized there."""
        return self.wh.con if self.wh.engine == "duckdb" else None

    def check(self, work_dir):
        """The file checked in the warehouse's connection (DuckDB). A first load's observations are
        written once, by harmonize, into ``fact_flow`` (``FactSink``: no copy, no second read);
        they are rolled back when the file is refused."""
        from transforms.ingest.check import check_safely, check_units
        from transforms.storage.warehouse import FactSink

        if self._local is not None:
            self.sink = FactSink(
                self.wh, self.contract.source_id, self.path.name, self.sha, self.entry["vintage"], self.now
            )
        try:
            if self.shown != self.path.name:  # the name would break every log, report and table it reaches
                raise Refused(
                    f"{self.shown}: the file name is not valid UTF-8; rename the file", unreadable=True
                )
            checked = check_safely(
                self.path, self.contract, work_dir=work_dir, con=self._local, sink=self.sink
            )
            self.outcomes = checked.outcomes
            try:
                check_units(checked, self.wh)
            except Refused:
                self._abandon()  # before the scratch database goes: no detaching inside it
                checked.close()
                raise
        except Refused:
            self._abandon()
            raise
        # Another contract reading the same sheet for the same flow loads it twice: said, not refused.
        shared = shared_flows(self.contract, self.path.name)
        self.result.warnings = [*checked.warnings, *(f"{self.path.name}: {w}" for w in shared)]
        return checked

    def _abandon(self) -> None:
        if self.sink is not None:
            self.sink.abandon()

    def refuse(self, exc: Refused) -> IngestResult:
        """Quarantine the file with its reason, write its report, record the refusal with the
        rules' fingerprint (the same bytes under the same rules are not tried again)."""
        result, source_id = self.result, self.contract.source_id
        outcomes = exc.outcomes or self.outcomes
        result.status = STATUS_UNREADABLE if exc.unreadable else STATUS_REFUSED
        result.reason, result.problems = exc.reason, exc.problems
        result.report = str(_report(self.cfg, result, outcomes, self.contract))
        reason = {"reason": exc.reason, "problems": exc.problems}
        quarantine(self.path, self.sha, self.cfg, source_id, reason, self.shown)
        refusal = {
            **self.entry,
            "rules_sha256": rules_fingerprint(source_id),
            "status": "refused",
            "rows_loaded": 0,
            "warnings": 0,
            "reason": exc.reason,
            "report_path": result.report,
        }
        self.wh.record_refusal(refusal, outcomes)
        log.error("refused %s: %s", self.path.name, exc.reason)
        for problem in exc.problems:
            log.error("  %s", problem)
        return result

    def publish(self, checked) -> None:
        """The warehouse load (one transaction), then the lake leaves it changed, then the overlap
        warnings."""
        result, name = self.result, self.path.name
        result.rows, result.reporters = checked.rows, checked.reporters
        result.reason = f"{name}: loaded {checked.rows} observations"
        result.report = str(_report(self.cfg, result, self.outcomes, self.contract))
        try:
            loaded = self._load_warehouse(checked)
            self._write_lake(checked, loaded)
        finally:
            checked.close()
        self.wh.lake_written(self.contract.source_id, self.sha)
        result.warnings += _flag_overlaps(self.wh, self.cfg, self.contract.source_id, self.sha, self.shown)

    def _facts(self, checked):
        """The observations as the warehouse reads them: a factory, so that a load retried on a new
        connection reads them again (the stream of a failed attempt is closed first: DuckDB runs
        one result at a time)."""
        from transforms.storage.warehouse import LocalFacts

        streams: list = []
        lineage = self._lineage

        def facts():
            if self.sink is not None and self.sink.rows is not None:  # written by harmonize already
                return self.sink
            if self._local is not None:  # the same connection: a SELECT, no stream
                return LocalFacts(checked.fact_select(*lineage))
            while streams:
                streams.pop().close()
            streams.append(checked.fact_batches(*lineage))
            return streams[-1]

        return facts

    def _load_warehouse(self, checked):
        # Progress marks in the log (an operator, and the fault tests, see where a load stopped).
        log.info("%s: warehouse load of %d observations begins", self.path.name, checked.rows)
        record = {
            **self.entry,
            "status": "loaded",
            "rows_loaded": checked.rows,
            "loaded_at": self.now,
            "warnings": len(self.result.warnings),
            "reason": "",
            "report_path": self.result.report,
        }
        # A sink counted the rows it wrote; otherwise one aggregate counts them.
        sink = self.sink
        scope = sink.scope if sink is not None and sink.scope is not None else checked.fact_scope()
        with timed("warehouse load", self.path.name), _committing(sink):
            return self.wh.load(record, self._facts(checked), self.outcomes, scope=scope)

    def _write_lake(self, checked, loaded) -> None:
        """The leaves the load changed (revised, added or withdrawn figures), rewritten from the
        warehouse; those of a first load whose partitions hold nothing else, from the file's own
        table (no read back: over the wire from PostgreSQL, and no scan to check the constants on
        DuckDB)."""
        partitions, name = loaded.partitions, self.path.name
        lineage = self._lineage
        log.info("%s: warehouse committed; lake write of %d partitions begins", name, len(partitions))
        from transforms.storage.lakestore import open_lake

        lake = open_lake(self.cfg)  # the folder lake, or the Iceberg table of OMH_LAKE_URL
        with timed("lake write", name):
            if loaded.sole:
                checked.write_lake(lake, self.contract.source_id, partitions, *lineage)
            else:
                constants = checked.fact_constants(*lineage)
                self.wh.write_lake(lake, self.contract.source_id, partitions, constants=constants)


@contextlib.contextmanager
def _committing(sink):
    """The load of a file whose observations a ``FactSink`` wrote: committed with it, or the
    whole transaction rolled back."""
    try:
        yield
    except BaseException:
        if sink is not None:
            sink.abandon()
        raise
    if sink is not None:
        sink.commit()


def _flag_overlaps(wh, cfg: Settings, source_id: str, sha: str, shown: str) -> list[str]:
    """A loaded file whose figures overlap another source's: one warning per overlap, in the
    load's record and as an alert (transforms/ingest/overlaps.py)."""
    from transforms.ingest import overlaps
    from transforms.storage.alert_log import write_alert

    found = overlaps.find(wh, source_id, sha)
    for o in found:
        write_alert(overlaps.alert(o, shown), cfg.home)
    return [overlaps.message(o, shown) for o in found]


def _skipped(source_id: str, path: Path, shown: str, sha: str) -> IngestResult:
    reason = f"{path.name}: already loaded (sha256 {sha[:12]})"
    return IngestResult(source_id, shown, sha, STATUS_SKIPPED, reason=reason)


def _report(cfg: Settings, result: IngestResult, outcomes, contract) -> Path:
    from transforms.ingest.reports import write_report

    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    path = cfg.reports / contract.source_id / f"{stamp}_{result.sha256[:12]}.html"
    return write_report(path, result, outcomes, contract)


def ingest_source(source_id: str, home=None) -> list[IngestResult]:
    """Every landing file of a source, in name order (older releases first)."""
    cfg = get_settings(home).ensure()
    contract = get_contract(source_id)
    return [ingest_file(path, source_id, cfg.home) for path in source_files(contract, cfg)]


def summary(home=None) -> list[dict]:
    """Per member state: sources, files loaded/refused, observations, periods."""
    from transforms.storage.warehouse import open_for_reading

    cfg = get_settings(home)
    with open_for_reading(cfg) as wh:
        cols, rows = wh.query(
            """
            SELECT s.reporter_iso3, s.name_en, s.conference, s.files, s.observations, s.first_period,
                   s.last_period,
                   (SELECT count(*) FROM file_manifest m JOIN dim_source d USING (source_id)
                     WHERE d.reporter_iso3 = s.reporter_iso3 AND m.status = 'refused') AS refused
            FROM v_reporter_summary s ORDER BY s.conference, s.reporter_iso3
            """
        )
    return [dict(zip(cols, r, strict=True)) for r in rows]
