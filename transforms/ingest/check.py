"""Check one file: the stages it goes through before anything is stored, each a call with named
inputs and outputs. ``check`` runs them in order:

1. ``_bound``        the contract as it reads this file (fields taken from the file's name);
2. ``_extract``      the file -> a long table of cells (readers; refusals in the sender's words);
3. ``_at_sight``     refusals before any value is echoed: an empty file, person-level data, formulas;
4. ``RawSuite``      the raw GX suite, in a thread while harmonize reads the labels (see there);
5. ``_harmonized``   cells -> canonical observations (the warehouse's sink may store them at once);
6. ``_judged``       harmonize's findings, the guard on the observations, the contract's overrides;
7. ``_canonical``    the canonical GX suite.

A file refused by a stage raises ``Refused``; ``omh check`` (``every_problem``) gathers the findings
of every stage instead and raises them together at the end (``Findings``).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from transforms.contracts.loading import bind_to_file
from transforms.contracts.model import Contract, ContractError
from transforms.ingest.landing import display_name
from transforms.ingest.results import Refused, timed

log = logging.getLogger("omh.pipeline")


def _lineage(file_name: str, sha: str, vintage, stamp) -> dict:
    """The fact columns a load gives every observation of its file."""
    return {"source_file": file_name, "source_sha256": sha, "vintage": vintage, "loaded_at": stamp}


@dataclass
class Checked:
    """A file that passed extract, both suites and harmonization (its observations are a view)."""

    extracted: object
    harmonized: object
    outcomes: list
    warnings: list[str]
    rows: int
    reporters: list[str]

    def facts(self):
        """The observations as a DataFrame (small files and tests)."""
        return self.harmonized.frame

    def fact_select(self, file_name: str, sha: str, vintage, stamp, omit=()) -> str:
        """The observations with their lineage, as a SELECT in the fact schema (less the columns
        in ``omit``) on the harmonized table's connection (the lineage travels as a registered
        one-row table, not as SQL text)."""
        import pandas as pd

        from transforms.engine import ident, register_frame
        from transforms.storage.warehouse import _sql_type, fact_schema

        lineage = _lineage(file_name, sha, vintage, stamp)
        hz = self.harmonized
        one = register_frame(hz.con, pd.DataFrame({k: [v] for k, v in lineage.items()}), "lineage")
        cols = []
        for f in fact_schema():
            if f.name in omit:
                continue
            source = f"(SELECT {ident(f.name)} FROM {one})" if f.name in lineage else ident(f.name)
            cols.append(f"CAST({source} AS {_sql_type(f.type)}) AS {ident(f.name)}")
        return f"SELECT {', '.join(cols)} FROM {hz.view}"

    def fact_constants(self, file_name: str, sha: str, vintage, stamp) -> dict:
        """Fact columns with one value in every observation of the file: its lineage and the
        canonical constants (the lake writes them without reading them back row by row)."""
        return {**self.harmonized.constants, **_lineage(file_name, sha, vintage, stamp)}

    def fact_scope(self) -> list[tuple]:
        """The observations counted by (source_id, reporter_iso3, period_start, period_end, year,
        month): one aggregate in DuckDB, which tells the warehouse a file's span, coverage and lake
        partitions before it reads the observations (``Warehouse.load``)."""
        keys = "source_id, reporter_iso3, period_start, period_end, year, month"
        hz = self.harmonized
        return hz.con.execute(f"SELECT {keys}, count(*) FROM {hz.view} GROUP BY {keys}").fetchall()

    def fact_batches(self, file_name: str, sha: str, vintage, stamp, batch_rows: int = 32_768):
        """The observations with their lineage, as a stream of Arrow batches in the fact schema:
        the warehouse stages them batch by batch, so no file is ever held whole in memory."""
        sql = self.fact_select(file_name, sha, vintage, stamp)
        return self.harmonized.con.sql(sql).to_arrow_reader(batch_rows)

    def write_lake(self, lake, source_id: str, partitions, file_name: str, sha: str, vintage, stamp) -> int:
        """The lake leaves of ``partitions`` written from the file's own harmonized table, for a
        load whose partitions hold the file's observations only (``LoadResult.sole``): the same
        rows a read back from the warehouse gives, without the round trip (PostgreSQL spooled them
        to CSV and back). The file's constants are added by Arrow, as ``Warehouse.write_lake`` does
        once it has checked them; here they are constants by construction."""
        from transforms.storage.lake import PARTITION_COLUMNS
        from transforms.storage.lakestore import as_lake
        from transforms.storage.warehouse import _leaf_batches

        fixed = {
            k: v
            for k, v in self.fact_constants(file_name, sha, vintage, stamp).items()
            if k not in PARTITION_COLUMNS  # the writer cuts the rows by them
        }
        sql = self.fact_select(file_name, sha, vintage, stamp, omit=fixed)
        return as_lake(lake).write(
            _leaf_batches(self.harmonized.con, sql, fixed=fixed), source_id, partitions
        )

    def close(self) -> None:
        self.extracted.cleanup()  # with the harmonized tables of the file (engine.release_work)


@dataclass
class Findings:
    """The refusals of one check. An ingest stops at the first stage that refuses (and writes
    nothing); ``every_problem`` (``omh check``) notes them and goes on, and the last stage refuses
    with all of them."""

    every_problem: bool = False
    held: list[str] = field(default_factory=list)

    def refuse(self, problems: list[str], outcomes: list, last: bool = False) -> None:
        self.held.extend(p for p in problems if p not in self.held)
        if self.held and (last or not self.every_problem):
            raise Refused(self.held[0], list(self.held), outcomes=outcomes)


class RawSuite:
    """The raw GX suite, evaluated in a thread on projections of the cells while harmonize reads
    the file's labels and periods (GX's import alone takes seconds: it overlaps with harmonize
    instead of preceding it). ``verdict`` is harmonize's gate: no observation is written before
    the raw suite's verdict, and a refusal by the raw suite comes first, as if harmonize had not
    started."""

    def __init__(self, contract: Contract, ex, name: str, findings: Findings):
        from transforms.stages.validate import project_suite, raw_suite_for

        self.name, self.findings = name, findings
        with timed("raw suite projections", name):
            evaluate = project_suite(raw_suite_for(contract), ex.con, ex.view, contract.severity_levels())

        def evaluated():
            with timed("raw suite", name):  # from the projections: GX's import, then its checks
                raw = evaluate()
            for o in raw.outcomes:
                o.column = ex.headers.get(o.column, o.column)
            return raw

        pool = ThreadPoolExecutor(1, thread_name_prefix="omh-raw-suite")
        self._pending = pool.submit(evaluated)
        pool.shutdown(wait=False)

    def verdict(self):
        """The raw suite's result; raises its refusal (or, every_problem, holds it)."""
        if not self._pending.done():  # the critical path waits for GX here (the step log shows it)
            with timed("wait for the raw suite", self.name):
                self._pending.result()
        raw = self._pending.result()
        if raw.errors:
            problems = [f"{self.name}: {o.message()}" for o in raw.errors]
            if not self.findings.every_problem:
                raise Refused(problems[0], problems, outcomes=list(raw.outcomes))
            self.findings.held[:] = problems
        return raw


def _bound(contract: Contract, name: str) -> Contract:
    """The contract as it reads this file (fields taken from the file's name become constants);
    the suites stay those of the contract itself."""
    try:
        return bind_to_file(contract, name)
    except ContractError as exc:
        raise Refused(str(exc)) from exc


def _extract(path: Path, bound: Contract, contract: Contract, con, work_dir):
    from transforms.readers import ReadError
    from transforms.stages import guard
    from transforms.stages.extract import ExtractError, extract

    try:
        with timed("extract", path.name):
            return extract(path, bound, con=con, work_dir=work_dir)
    except ReadError as exc:
        raise Refused(str(exc), unreadable=True) from exc
    except ExtractError as exc:
        # A person-level file rarely fits the contract: say what it is, not which column is missing.
        header = getattr(exc, "header", None) or []
        found = guard.header_findings(header, path.name, guard.contract_headers(contract))
        raise Refused(*((found[0], found) if found else (str(exc),))) from exc


def _at_sight(ex, bound: Contract, contract: Contract, name: str) -> None:
    """Refusals before anything echoes a value: an empty delivery (it never replaces published
    figures), person-level identifiers and formula labels."""
    from transforms.stages import guard

    if not ex.rows_read:
        raise Refused(f"{name}: the file has no data rows (a header at most); nothing is loaded from it")
    found = guard.header_findings(ex.header, name, guard.contract_headers(contract)) or guard.label_findings(
        ex, bound, name
    )
    if found:
        raise Refused(found[0], found)


def _harmonized(bound: Contract, contract: Contract, ex, sink, raw: RawSuite, findings: Findings, name: str):
    """Harmonize, gated by the raw suite's verdict; a contract that does not fit the file
    (``KeyError``) is a refusal naming the contract."""
    from transforms.stages.harmonize import harmonize

    try:
        with timed("harmonize", name):
            return harmonize(bound, ex, sink=sink, gate=raw.verdict)
    except KeyError as exc:
        outcomes = list(raw.verdict().outcomes)
        raise Refused(f"{name}: contract {contract.source_id}: {exc.args[0]}", outcomes=outcomes) from exc
    except Refused:
        raise
    except BaseException:
        verdict = raw.verdict()  # the raw suite's refusal, if any, is the file's
        if findings.held:  # every_problem: what the raw suite found is the answer
            findings.refuse([], list(verdict.outcomes), last=True)
        raise


def _judged(hz, contract: Contract, name: str, outcomes: list, warnings: list, findings: Findings) -> None:
    """Harmonize's findings, then the guard's on the observations (at the severity the contract
    gives each check) and the contract's severity overrides, into ``outcomes`` and ``warnings``."""
    from transforms.stages import guard

    if hz.errors:
        findings.refuse([p.one_line(name) for p in hz.errors], outcomes + _problem_outcomes(hz.problems))
    warnings += [p.one_line(name) for p in hz.problems if p.severity == "warning"]
    outcomes += _problem_outcomes(hz.problems)
    refused, accepted = _guarded(guard.observation_problems(hz.con, hz.view, name), contract)
    warnings += accepted
    outcomes += _override_outcomes(contract)
    if refused:
        findings.refuse(refused, outcomes)


def _canonical(hz, contract: Contract, name: str, outcomes: list, warnings: list, findings: Findings) -> None:
    """The canonical GX suite on the observations: the last stage, which refuses with every held
    finding."""
    from transforms.stages.validate import build_canonical_suite, load_suite, run_suite_sql

    with timed("canonical suite", name):
        suite = load_suite("canonical", build_canonical_suite)
        canonical = run_suite_sql(suite, hz.con, hz.view, contract.severity_levels())
    outcomes += canonical.outcomes
    findings.refuse([f"{name}: {o.message()}" for o in canonical.errors], outcomes, last=True)
    warnings += [f"{name}: {o.message()}" for o in canonical.failed if o.severity == "warning"]


def check(
    path: Path, contract: Contract, work_dir=None, con=None, sink=None, every_problem: bool = False
) -> Checked:
    """Extract, validate and harmonize one file in DuckDB; raises Refused. ``sink``: the
    warehouse's ``FactSink`` (``harmonize``), rolled back here when the file fails."""
    from transforms.engine import fetch_all
    from transforms.stages.validate import warm_up

    name = path.name
    bound = _bound(contract, name)
    ex = _extract(path, bound, contract, con, work_dir)
    try:
        _at_sight(ex, bound, contract, name)
        # GX's imports start only for a file that reached its suites: a file refused above never
        # pays for them (they overlap with the raw suite's projections instead).
        warm_up()
        warnings = [f"{name}: {d}" for d in ex.drift]
        findings = Findings(every_problem)
        raw = RawSuite(contract, ex, name, findings)
        hz = _harmonized(bound, contract, ex, sink, raw, findings, name)
        outcomes = list(raw.verdict().outcomes)
        _judged(hz, contract, name, outcomes, warnings, findings)
        _canonical(hz, contract, name, outcomes, warnings, findings)
        sql = f"SELECT count(*), list(DISTINCT reporter_iso3 ORDER BY reporter_iso3) FROM {hz.view}"
        rows, reporters = fetch_all(hz.con, sql)[0]
    except BaseException:
        if sink is not None:  # before the scratch database goes: no detaching inside it
            sink.abandon()
        ex.cleanup()
        raise
    return Checked(ex, hz, outcomes, warnings, int(rows), list(reporters or []))


def check_safely(
    path: Path, contract: Contract, work_dir=None, con=None, sink=None, every_problem: bool = False
) -> Checked:
    """``check``, with any other failure while reading the file (a library's error, DuckDB out of
    memory on a pathological file) turned into a refusal: the file goes to quarantine with a
    one-line reason, the trace to the log, and nothing published changes."""
    try:
        return check(path, contract, work_dir, con, sink, every_problem)
    except Refused:
        raise
    except Exception as exc:
        log.exception("checking %s failed", display_name(path))
        first = (str(exc).splitlines() or [""])[0][:200]
        raise Refused(
            f"{display_name(path)}: the file could not be checked ({exc.__class__.__name__}: {first}); "
            "the full trace is in the log"
        ) from exc


def _guarded(found: list[tuple[str, str]], contract: Contract) -> tuple[list[str], list[str]]:
    """The guard's findings as (refusals, warnings) at the severity the contract gives each check;
    a refusal names the setting that would accept its rows."""
    from transforms.contracts.checks import CHECKS, setting_hint

    refused, accepted = [], []
    for check, message in found:
        if contract.severity_of(check, CHECKS[check].default) == "error":
            refused.append(f"{message} (check {check}; to accept these rows, {setting_hint(check)})")
        else:
            accepted.append(f"{message} (accepted: {check} is a warning for this source)")
    return refused, accepted


def _override_outcomes(contract: Contract) -> list:
    """The contract's severity overrides, each with its reason, as records of the load (dq_result,
    suite ``contract``)."""
    from transforms.contracts.checks import CHECKS
    from transforms.stages.validate import Outcome

    return [
        Outcome(
            suite="contract",
            expectation=check,
            column=None,
            severity=o.level,
            success=True,
            examples=[
                {
                    "message": f"severity of {check} set to {o.level} (default {CHECKS[check].default}) "
                    f"by the contract: {o.reason}",
                    "reason": o.reason,
                }
            ],
        )
        for check, o in contract.severity.items()
    ]


def _problem_outcomes(problems) -> list:
    """Harmonization findings in the same shape as GX results, for reports and dq_result."""
    from transforms.stages.validate import Outcome

    return [
        Outcome(
            suite="harmonize",
            expectation=p.check,
            column=p.column,
            severity=p.severity,
            success=False,
            unexpected_count=p.count or 1,
            examples=[{"value": p.label, "row": r, "message": p.message} for r in (p.rows or [None])][:5],
        )
        for p in problems
    ]


def check_units(checked: Checked, wh) -> None:
    """A (reporter, flow type) keeps one unit across every source and file."""
    import pandas as pd

    from transforms.engine import fetch_df

    hz = checked.harmonized
    new = fetch_df(hz.con, f"SELECT DISTINCT reporter_iso3, flow_type, unit FROM {hz.view}")
    mixed = new[new.duplicated(["reporter_iso3", "flow_type"], keep=False)]
    if not mixed.empty:
        r = mixed.iloc[0]
        raise Refused(
            f"units mixed within the file for {r.reporter_iso3} {r.flow_type}: {sorted(mixed.unit)}"
        )
    old = wh.units_in_use()
    if old.empty:
        return
    both = pd.merge(new, old, on=["reporter_iso3", "flow_type"], suffixes=("", "_old"))
    clash = both[both["unit"] != both["unit_old"]]
    if not clash.empty:
        r = clash.iloc[0]
        raise Refused(
            f"{r.reporter_iso3} {r.flow_type} is in {r.unit} here but in {r.unit_old} in source "
            f"{r.source_id}: figures in different units must not be added"
        )
