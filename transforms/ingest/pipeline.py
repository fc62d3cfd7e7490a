"""Pipeline entry points: the same functions run under Airflow, the ``omh`` command and the tests.

discover -> extract -> validate (raw) -> harmonize -> validate (canonical) -> load (warehouse, lake)
A refused file is copied to quarantine with its report; nothing already published changes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import hashlib
import json
import logging
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transforms import scratch
from transforms.config import Settings
from transforms.config import settings as get_settings
from transforms.contracts.model import (
    Contract,
    ContractError,
    bind_to_file,
    get_contract,
    load_contracts,
    shared_flows,
)
from transforms.storage.manifest import already_loaded, rules_fingerprint

log = logging.getLogger("omh.pipeline")

STATUS_LOADED, STATUS_SKIPPED, STATUS_REFUSED, STATUS_UNREADABLE = (
    "loaded",
    "skipped",
    "refused",
    "unreadable",
)


@dataclass
class IngestResult:
    """What happened to one file."""

    source_id: str
    file: str
    sha256: str
    status: str
    rows: int = 0
    reason: str = ""
    report: str | None = None
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reporters: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in (STATUS_LOADED, STATUS_SKIPPED)

    def to_dict(self) -> dict:
        return asdict(self)


class Refused(Exception):
    """The file is refused; ``reason`` is the one line for the user."""

    def __init__(self, reason: str, problems=None, unreadable: bool = False, outcomes=None):
        reason = _clip(reason)  # a refused value may be a 100 kB field: not into logs and tables
        super().__init__(reason)
        self.reason = reason
        self.problems = [_clip(p) for p in problems] if problems else [reason]
        self.unreadable = unreadable
        self.outcomes = outcomes or []
        for o in self.outcomes:
            o.examples = [{k: _clip(v, 200) for k, v in e.items()} for e in o.examples or []]


@contextlib.contextmanager
def timed(step: str, name: str):
    """Log how long a step of a file took, the process's resident memory after it and its peak
    so far (the operator's view of where a slow load spends its time; ``omh -v`` shows it)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        log.info(
            "%s: %s took %.2f s (rss %d MB, peak %d MB)",
            name,
            step,
            time.perf_counter() - start,
            _rss_mb(),
            _rss_mb("VmHWM:"),
        )


def _rss_mb(field: str = "VmRSS:") -> int:
    """Resident memory (VmRSS) or its peak so far (VmHWM), in MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def _clip(value, limit: int = 1000):
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 1] + "…"
    return value


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_DATE_IN_NAME = re.compile(r"(?<!\d)(20\d\d)[-_]?(0[1-9]|1[0-2])[-_]?(0[1-9]|[12]\d|3[01])(?!\d)")


def vintage_of(path: Path) -> dt.date:
    """Release date: a date in the file name (agencies name their extracts so), else its mtime."""
    match = _DATE_IN_NAME.search(path.name)
    if match:
        try:
            return dt.date(*(int(x) for x in match.groups()))
        except ValueError:
            pass
    return dt.date.fromtimestamp(path.stat().st_mtime)


# ---------------------------------------------------------------------------- discover


def source_files(contract: Contract, cfg: Settings) -> list[Path]:
    """Landing files that belong to a source, by its contract's folder and patterns."""
    folder = cfg.landing / contract.landing.folder
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.iterdir()):
        if (
            path.is_file()
            and not path.is_symlink()  # a link could point anywhere on the worker's disk
            and not path.name.startswith(".")
            and any(fnmatch.fnmatch(path.name.lower(), pat.lower()) for pat in contract.landing.patterns)
        ):
            out.append(path)
    return out


def discover(source_id: str, home=None) -> list[dict]:
    """Landing files of a source with sha256, whether each is already loaded, and ``settled``: why
    a refused file is not to be tried again (same bytes, same rules; or dismissed), else None.

    Reads only: the files are hashed first, then the warehouse is opened read-only just long
    enough to look their sha256 up (a warehouse not created yet has loaded nothing). Migrating the
    schema is left to the loads (``ingest_file``), so listing stays cheap and never writes.
    """
    from transforms.storage.warehouse import open_for_reading

    cfg = get_settings(home)
    contract = get_contract(source_id)
    out = []
    for path in source_files(contract, cfg):
        out.append(
            {
                "source_id": source_id,
                "path": str(path),
                "file": path.name,
                "sha256": sha256_of(path),
                "size": path.stat().st_size,
                "loaded": False,
                "settled": None,
            }
        )
    if not out or (cfg.duckdb_path is not None and not cfg.duckdb_path.exists()):
        return out
    with open_for_reading(cfg) as wh:
        for entry in out:
            entry["loaded"] = wh.is_loaded(source_id, entry["sha256"])
        settled = wh.settled_refusals(source_id, rules_fingerprint(source_id))
    for entry in out:  # refused before, and nothing changed since: not worth another run
        entry["settled"] = None if entry["loaded"] else settled.get(entry["sha256"])
    return out


# ---------------------------------------------------------------------------- one file


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


def _lineage(file_name: str, sha: str, vintage, stamp) -> dict:
    """The fact columns a load gives every observation of its file."""
    return {"source_file": file_name, "source_sha256": sha, "vintage": vintage, "loaded_at": stamp}


def _stage_check(
    path: Path, contract: Contract, work_dir=None, con=None, sink=None, every_problem: bool = False
) -> Checked:
    """Extract, validate and harmonize one file in DuckDB; raises Refused. ``sink``: the
    warehouse's ``FactSink`` (``harmonize``), rolled back here when the file fails.
    ``every_problem`` (``omh check``): a raw suite's refusal does not stop the file there; the
    harmonizer's and the canonical suite's findings are gathered too, and the refusal names them
    all (an ingest stops at the first stage that refuses, and writes nothing)."""
    from transforms.engine import fetch_all
    from transforms.readers import ReadError
    from transforms.stages import guard
    from transforms.stages.extract import ExtractError, extract
    from transforms.stages.harmonize import harmonize
    from transforms.stages.validate import (
        build_canonical_suite,
        load_suite,
        project_suite,
        raw_suite_for,
        run_suite_sql,
        warm_up,
    )

    name = path.name
    # The contract as it reads this file (fields taken from the file's name become constants);
    # the suites stay those of the contract itself.
    try:
        bound = bind_to_file(contract, name)
    except ContractError as exc:
        raise Refused(str(exc)) from exc
    try:
        with timed("extract", name):
            ex = extract(path, bound, con=con, work_dir=work_dir)
    except ReadError as exc:
        raise Refused(str(exc), unreadable=True) from exc
    except ExtractError as exc:
        # A person-level file rarely fits the contract: say what it is, not which column is missing.
        found = guard.header_findings(
            getattr(exc, "header", None) or [], name, guard.contract_headers(contract)
        )
        raise Refused(*((found[0], found) if found else (str(exc),))) from exc
    try:
        if not ex.rows_read:  # an empty delivery never replaces published figures
            raise Refused(f"{name}: the file has no data rows (a header at most); nothing is loaded from it")
        # Person-level identifiers and formula labels: refused before anything echoes a value.
        found = guard.header_findings(
            ex.header, name, guard.contract_headers(contract)
        ) or guard.label_findings(ex, bound, name)
        if found:
            raise Refused(found[0], found)
        # GX's imports start only for a file that reached its suites: a file refused above never
        # pays for them (they overlap with the raw suite's projections instead).
        warm_up()
        warnings = [f"{name}: {d}" for d in ex.drift]
        with timed("raw suite projections", name):
            evaluate = project_suite(raw_suite_for(contract), ex.con, ex.view, contract.severity_levels())

        def evaluated():
            with timed("raw suite", name):  # from the projections: GX's import, then its checks
                raw = evaluate()
            for o in raw.outcomes:
                o.column = ex.headers.get(o.column, o.column)
            return raw

        # GX evaluates the projections in a thread, where it waits for its import, while
        # harmonize reads the file's labels and periods. Harmonize writes no observation before
        # the raw suite's verdict (``gate``), and a refusal by the raw suite comes first, as if
        # harmonize had not started.
        pool = ThreadPoolExecutor(1, thread_name_prefix="omh-raw-suite")
        pending = pool.submit(evaluated)
        pool.shutdown(wait=False)

        held: list[str] = []  # every_problem: the raw suite's refusals, named with the rest

        def verdict():
            if not pending.done():  # the critical path waits for GX here (the step log shows it)
                with timed("wait for the raw suite", name):
                    pending.result()
            raw = pending.result()
            if raw.errors:
                problems = [f"{name}: {o.message()}" for o in raw.errors]
                if not every_problem:
                    raise Refused(problems[0], problems, outcomes=list(raw.outcomes))
                held[:] = problems
            return raw

        def refuse(problems: list[str], outcomes: list, last: bool = False):
            """Refuse the file here, or with every_problem note the problems and go on to the next
            stage, the last one then refusing with all of them."""
            held.extend(p for p in problems if p not in held)
            if held and (last or not every_problem):
                raise Refused(held[0], list(held), outcomes=outcomes)

        try:
            with timed("harmonize", name):
                hz = harmonize(bound, ex, sink=sink, gate=verdict)
        except KeyError as exc:
            outcomes = list(verdict().outcomes)
            raise Refused(f"{name}: contract {contract.source_id}: {exc.args[0]}", outcomes=outcomes) from exc
        except Refused:
            raise
        except BaseException:
            raw = verdict()  # the raw suite's refusal, if any, is the file's
            if held:  # every_problem: what the raw suite found is the answer
                refuse([], list(raw.outcomes), last=True)
            raise
        outcomes = list(verdict().outcomes)
        if hz.errors:
            problems = [p.one_line(name) for p in hz.errors]
            refuse(problems, outcomes + _problem_outcomes(hz.problems))
        warnings += [p.one_line(name) for p in hz.problems if p.severity == "warning"]
        outcomes += _problem_outcomes(hz.problems)
        refused, accepted = _guarded(guard.observation_problems(hz.con, hz.view, name), contract)
        warnings += accepted
        outcomes += _override_outcomes(contract)
        if refused:
            refuse(refused, outcomes)

        with timed("canonical suite", name):
            canonical = run_suite_sql(
                load_suite("canonical", build_canonical_suite), hz.con, hz.view, contract.severity_levels()
            )
        outcomes += canonical.outcomes
        refuse([f"{name}: {o.message()}" for o in canonical.errors], outcomes, last=True)
        warnings += [f"{name}: {o.message()}" for o in canonical.failed if o.severity == "warning"]
        summary = fetch_all(
            hz.con, f"SELECT count(*), list(DISTINCT reporter_iso3 ORDER BY reporter_iso3) FROM {hz.view}"
        )
        rows, reporters = summary[0]
    except BaseException:
        if sink is not None:  # before the scratch database goes: no detaching inside it
            sink.abandon()
        ex.cleanup()
        raise
    return Checked(ex, hz, outcomes, warnings, int(rows), list(reporters or []))


def _checked(
    path: Path, contract: Contract, work_dir=None, con=None, sink=None, every_problem: bool = False
) -> Checked:
    """``_stage_check``, with any other failure while reading the file (a library's error, DuckDB
    out of memory on a pathological file) turned into a refusal: the file goes to quarantine
    with a one-line reason, the trace to the log, and nothing published changes."""
    try:
        return _stage_check(path, contract, work_dir, con, sink, every_problem)
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


def _check_units(checked: Checked, wh) -> None:
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


def _short_name(name: str, limit: int = 160) -> str:
    """A file name that fits beside a prefix and suffix (a name may have up to 255 bytes)."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= limit:
        return name
    suffix = Path(name).suffix.encode("utf-8", "surrogateescape")[:16]
    head = raw[: limit - len(suffix) - 1].decode("utf-8", "ignore")
    return f"{head}~{suffix.decode('utf-8', 'ignore')}"


def display_name(path: Path, full: bool = False) -> str:
    """The file's name (or path) as text: bytes that are not UTF-8 are shown as escapes."""
    text = str(path) if full else path.name
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _quarantine(path: Path, sha: str, cfg: Settings, contract_id: str, reason: dict, name=None) -> Path:
    folder = cfg.quarantine / contract_id
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{sha[:12]}_{_short_name(name or path.name)}"
    if not target.exists():
        shutil.copy2(path, target)
    target.with_name(target.name + ".reason.json").write_text(
        json.dumps(reason, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )
    return target


def check_file(path, source_id: str, report: str | None = None, lang: str | None = None) -> IngestResult:
    """Would this file load? Nothing is stored (for a country's data team, before sending)."""
    path = Path(path)
    contract = get_contract(source_id)
    sha = sha256_of(path) if path.is_file() else ""
    result = IngestResult(source_id, path.name, sha, STATUS_LOADED)
    outcomes = []
    try:
        if not path.is_file():
            raise Refused(f"{path.name}: no such file", unreadable=True)
        checked = _checked(path, contract, every_problem=True)
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
    """The whole pipeline for one landing file; a file already loaded is skipped."""
    cfg = get_settings(home).ensure()
    # Scratch files of killed runs (SIGKILL, OOM) go; this run works in a folder of its own.
    scratch.sweep(cfg.home / "tmp", tempfile.gettempdir())
    work_dir = scratch.process_dir(cfg.home / "tmp")
    path = Path(path)
    if not path.is_file():
        return IngestResult(source_id, path.name, "", STATUS_UNREADABLE, reason=f"{path.name}: no such file")
    sha = sha256_of(path)
    shown = display_name(path)
    if already_loaded(cfg, source_id, sha):  # before any heavy import: a rerun costs a hash
        return _skipped(source_id, path, shown, sha)
    contract = get_contract(source_id)
    from transforms.storage.warehouse import FactSink, LocalFacts, Warehouse

    entry = {
        "source_id": source_id,
        "sha256": sha,
        "file_name": shown,
        "landing_path": display_name(path, full=True),
        "size_bytes": path.stat().st_size,
        "received_at": dt.datetime.fromtimestamp(path.stat().st_mtime),
        "vintage": vintage_of(path),
        "processed_at": dt.datetime.now(),
    }
    result = IngestResult(source_id, shown, sha, STATUS_LOADED)
    with Warehouse(cfg, purpose=f"the load of {shown}") as wh:
        if wh.is_loaded(source_id, sha):
            return _skipped(source_id, path, shown, sha)
        wh.ensure_schema(load_contracts())
        outcomes = []
        # The instant of the load, in every observation's lineage (a sink writes them early).
        now = dt.datetime.now()
        # On the DuckDB warehouse the file is read and harmonized in the warehouse's own
        # connection: the observations of a first load are written once, by harmonize, into
        # ``fact_flow`` (``FactSink``); otherwise the load is one INSERT … SELECT, with no copy
        # through Python.
        local = wh.con if wh.engine == "duckdb" else None
        sink = FactSink(wh, source_id, path.name, sha, entry["vintage"], now) if local is not None else None
        try:
            if shown != path.name:  # the name would break every log, report and table it reaches
                raise Refused(f"{shown}: the file name is not valid UTF-8; rename the file", unreadable=True)
            checked = _checked(path, contract, work_dir=work_dir, con=local, sink=sink)
            outcomes, warnings = checked.outcomes, checked.warnings
            # Another contract reading the same sheet for the same flow loads it twice: said, not refused.
            warnings = [*warnings, *(f"{path.name}: {w}" for w in shared_flows(contract, path.name))]
            try:
                _check_units(checked, wh)
            except Refused:
                if sink is not None:
                    sink.abandon()
                checked.close()
                raise
        except Refused as exc:
            if sink is not None:
                sink.abandon()
            outcomes = exc.outcomes or outcomes
            result.status = STATUS_UNREADABLE if exc.unreadable else STATUS_REFUSED
            result.reason = exc.reason
            result.problems = exc.problems
            result.report = str(_report(cfg, result, outcomes, contract))
            _quarantine(path, sha, cfg, source_id, {"reason": exc.reason, "problems": exc.problems}, shown)
            wh.record_refusal(
                {
                    **entry,
                    "rules_sha256": rules_fingerprint(source_id),
                    "status": "refused",
                    "rows_loaded": 0,
                    "warnings": 0,
                    "reason": exc.reason,
                    "report_path": result.report,
                },
                outcomes,
            )
            log.error("refused %s: %s", path.name, exc.reason)
            for problem in exc.problems:
                log.error("  %s", problem)
            return result

        # A factory: a load retried on a new connection reads the observations again (the
        # stream of the failed attempt is closed first: DuckDB runs one result at a time).
        streams: list = []

        def facts():
            if sink is not None and sink.rows is not None:  # written by harmonize already
                return sink
            if local is not None:  # the same connection: a SELECT, no stream
                return LocalFacts(checked.fact_select(path.name, sha, entry["vintage"], now))
            while streams:
                streams.pop().close()
            streams.append(checked.fact_batches(path.name, sha, entry["vintage"], now))
            return streams[-1]

        result.rows = checked.rows
        result.warnings = warnings
        result.reporters = checked.reporters
        result.reason = f"{path.name}: loaded {checked.rows} observations"
        result.report = str(_report(cfg, result, outcomes, contract))
        # Progress marks in the log (an operator, and the fault tests, see where a load stopped).
        log.info("%s: warehouse load of %d observations begins", path.name, checked.rows)
        constants = checked.fact_constants(path.name, sha, entry["vintage"], now)
        try:
            with timed("warehouse load", path.name), _committing(sink):
                loaded = wh.load(
                    {
                        **entry,
                        "status": "loaded",
                        "rows_loaded": checked.rows,
                        "loaded_at": now,
                        "warnings": len(warnings),
                        "reason": "",
                        "report_path": result.report,
                    },
                    facts,
                    outcomes,
                    # A sink counted the rows it wrote; otherwise one aggregate counts them.
                    scope=sink.scope if sink is not None and sink.scope is not None else checked.fact_scope(),
                )
            # The leaves the load changed (revised, added or withdrawn figures), rewritten from
            # the warehouse; those of a first load whose partitions hold nothing else, from the
            # file's own table (no read back: over the wire from PostgreSQL, and no scan to check
            # the constants on DuckDB).
            partitions = loaded.partitions
            log.info(
                "%s: warehouse committed; lake write of %d partitions begins", path.name, len(partitions)
            )
            from transforms.storage.lakestore import open_lake

            lake = open_lake(cfg)
            with timed("lake write", path.name):
                if loaded.sole:
                    checked.write_lake(lake, source_id, partitions, path.name, sha, entry["vintage"], now)
                else:
                    wh.write_lake(lake, source_id, partitions, constants=constants)
        finally:
            checked.close()
        wh.lake_written(source_id, sha)
        warnings += _flag_overlaps(wh, cfg, source_id, sha, shown)
    for w in warnings:
        log.warning(w)
    log.info("%s", result.reason)
    return result


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
