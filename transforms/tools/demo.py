"""``omh demo``: land sample and real files for the 23 member states, run every DAG through Airflow.

1. Land: the sample files of every member state (``transforms.tools.samples``) and each real agency file
   of ``data/realdata/raw/`` into the landing folder of the contract whose patterns match it.
2. Prepare Airflow under ``$OMH_HOME/airflow`` (SQLite metadata, the repo's ``dags/`` and
   ``plugins/``), migrate its database, create the warehouse pool.
3. Run every source DAG, then the regional DAG, with ``dag.test()`` on DAGs loaded through a
   DagBag: the scheduler's own dependency, trigger-rule, mapping and retry logic, in one process
   so Airflow, pandas and Great Expectations are imported once.
4. Print what was loaded per member state and how to look at it.

Safe to rerun: landing files already there are left alone and files already loaded are skipped.
Airflow's own log lines go to ``$OMH_HOME/logs/demo-airflow.log``; the console gets one line per run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import hashlib
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from transforms.config import DATA_DIR, Settings, settings
from transforms.contracts.loading import load_contracts
from transforms.contracts.model import Contract
from transforms.ops import airflow_env as afe

REAL_DIR = DATA_DIR / "realdata" / "raw"
EXIT_OK, EXIT_FAILED = 0, 1
# A transient fault retries as in production, but after seconds rather than minutes: a demo that
# waits 6 minutes in silence looks hung.
DEMO_RETRY_DELAY = dt.timedelta(seconds=5)


@dataclass
class FileOutcome:
    file: str
    status: str  # loaded | refused | unreadable | failed (an error that is not data quality)
    rows: int = 0
    reason: str = ""
    report: str | None = None


@dataclass
class RunOutcome:
    dag_id: str
    state: str
    seconds: float
    files: list[FileOutcome] = field(default_factory=list)
    failed_tasks: list[str] = field(default_factory=list)  # failures other than refused files

    @property
    def unexpected(self) -> bool:
        return self.state != "success" and (
            bool(self.failed_tasks) or not any(f.status in ("refused", "unreadable") for f in self.files)
        )


# ---------------------------------------------------------------------------- landing


def _matches(contract: Contract, name: str) -> bool:
    # The same rule as transforms.ingest.pipeline.source_files: case-insensitive shell patterns.
    return any(fnmatch.fnmatch(name.lower(), pattern.lower()) for pattern in contract.landing.patterns)


def _same_file(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    return hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def land_real_files(landing: Path, raw_dir: Path = REAL_DIR, contracts=None) -> list[tuple[Path, str]]:
    """Copy each real agency file into the landing folder of every contract whose patterns match it.

    Returns (landing path, note) pairs. A landing file is never overwritten: one with the same name
    but other content is reported and left alone (agencies' files are kept as sent).
    """
    contracts = contracts if contracts is not None else load_contracts()
    out: list[tuple[Path, str]] = []
    if not raw_dir.is_dir():
        return out
    for src in sorted(p for p in raw_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
        folders = sorted({c.landing.folder for c in contracts.values() if _matches(c, src.name)})
        if not folders:
            out.append((src, "no contract matches this file: not landed"))
            continue
        for folder in folders:
            target = landing / folder / src.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                shutil.copy2(src, target)
                note = "landed"
            elif _same_file(src, target):
                note = "already landed"
            else:
                note = "a different file of this name is already landed: left as it is"
            out.append((target, note))
    return out


def land_counterpart_feeds(landing: Path) -> list[Path]:
    """The other side of each mirror pair (data/mirror_pairs.yaml) for the same years as the
    samples: Costa Rica's irregular transit from Panama, Mexico's returns, the returnees Guatemala
    and Honduras receive (transforms/tools/samples_mirror.py); none when the samples are not available."""
    try:
        from transforms.tools.samples import YEAR, recent_year
        from transforms.tools.samples_mirror import write_mirror_samples
    except ImportError:
        return []
    written = []
    for year in sorted({YEAR, recent_year()}):
        written += write_mirror_samples(landing, year)
    return [Path(p) for p in written]


def land_samples(landing: Path) -> tuple[list[Path], str]:
    """The sample files of the member states, or why there are none: the 2024 releases (the year
    of IOM's figures they carry) and the releases of the last whole year before the observatory's
    date, so the completeness grid of the last 24 months shows every member's deliveries."""
    try:
        from transforms.tools.samples import YEAR, recent_year, write_samples
    except ImportError as exc:
        return [], f"sample files not available ({exc})"
    written = []
    for year in sorted({YEAR, recent_year()}):
        written += write_samples(landing, year)
    return [Path(p) for p in written], ""


# ---------------------------------------------------------------------------- Airflow


@contextlib.contextmanager
def _output_to(path: Path):
    """Send file descriptors 1 and 2 to ``path``: Airflow's structlog writes to the real stdout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _manifest(cfg: Settings, source_id: str) -> dict[str, dict]:
    """The newest manifest row of each file name of a source."""
    from transforms.storage.warehouse import open_for_reading

    if cfg.duckdb_path is not None and not cfg.duckdb_path.exists():
        return {}
    try:
        with open_for_reading(cfg) as wh:
            cols, rows = wh.query(
                "SELECT file_name, status, rows_loaded, reason, report_path FROM file_manifest "
                "WHERE source_id = ? ORDER BY processed_at",
                [source_id],
            )
    except Exception:  # only for the report: the run's task states say what failed
        return {}
    return {r[0]: dict(zip(cols, r, strict=True)) for r in rows}


def _shorten_retries(dag) -> None:
    for task in dag.tasks:
        task.retry_delay = DEMO_RETRY_DELAY
        task.max_retry_delay = DEMO_RETRY_DELAY * 4


def for_dag_test(dag):
    """A DAG made ready for ``dag.test()``: short retry delays, and no Deadline Alert.

    A run by ``dag.test()`` has no delivery period, so its deadline would never be set anyway; and
    Airflow 3.3.2's ``dag.test()`` fails when a run with a ``DeadlineAlert`` succeeds (it looks the
    alert up by the serialized alert instead of its id). The scheduler is not concerned.
    """
    _shorten_retries(dag)
    dag.deadline = None
    return dag


def run_dag(dag, cfg: Settings, source_id: str | None = None) -> RunOutcome:
    """One ``dag.test()`` run, read back from the metadata DB: state, files loaded or refused.

    A source DAG runs without a logical date, as a run triggered by hand does: it has no delivery
    period, so it ingests whatever landed and checks no period (scheduled runs do, see
    ``transforms.ops.delivery``)."""
    started = time.monotonic()
    dr = dag.test(logical_date=None) if source_id else dag.test()
    outcome = RunOutcome(dag.dag_id, str(getattr(dr.state, "value", dr.state)), time.monotonic() - started)
    manifest = _manifest(cfg, source_id) if source_id else {}
    for ti in sorted(dr.get_task_instances(), key=lambda t: (t.task_id, t.map_index)):
        state = str(getattr(ti.state, "value", ti.state))
        label = ti.rendered_map_index or (
            f"{ti.task_id}[{ti.map_index}]" if ti.map_index >= 0 else ti.task_id
        )
        if ti.task_id == "ingest" and ti.map_index >= 0:
            row = manifest.get(label, {})
            if state == "success":
                outcome.files.append(FileOutcome(label, "loaded", row.get("rows_loaded") or 0))
            elif state == "failed" and row.get("status") == "refused":
                outcome.files.append(
                    FileOutcome(label, "refused", 0, row.get("reason") or "", row.get("report_path"))
                )
            elif state == "failed":
                outcome.files.append(FileOutcome(label, "failed", 0, "error, not data quality: see the log"))
                outcome.failed_tasks.append(f"ingest[{label}]")
        elif state == "failed":
            outcome.failed_tasks.append(label)
    return outcome


def _run_line(o: RunOutcome) -> str:
    loaded = [f for f in o.files if f.status == "loaded"]
    refused = [f for f in o.files if f.status in ("refused", "unreadable")]
    if not o.files and o.state == "success":
        what = "no new file"
    else:
        what = f"{len(loaded)} file(s) loaded ({sum(f.rows for f in loaded):,} observations)"
        if refused:
            what += f", {len(refused)} REFUSED"
    if o.failed_tasks:
        what += f", FAILED: {', '.join(o.failed_tasks)}"
    return f"  {o.dag_id:40} {o.state:8} {what}  [{o.seconds:.1f}s]"


# ---------------------------------------------------------------------------- summary


def print_summary(cfg: Settings, out=sys.stdout) -> None:
    from transforms.ingest.pipeline import summary

    rows = summary(cfg.home)
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"  {'reporter':8} {'name':24} {'conf':4} {'files':>5} {'refused':>7} {'observations':>12}  periods")
    for r in rows:
        periods = f"{r['first_period']} .. {r['last_period']}" if r["first_period"] else "-"
        p(
            f"  {r['reporter_iso3']:8} {str(r.get('name_en') or '')[:24]:24} {r['conference'] or '':4} "
            f"{r['files']:>5} {r['refused']:>7} {r['observations']:>12,}  {periods}"
        )
    p(f"  ({len(rows)} member states)")


def omh_command() -> str:
    """How to type ``omh`` here: ``omh`` when it is on the PATH, else the path of the venv's script
    (``.venv/bin/omh`` from the repository), so the printed commands run as printed."""
    script = Path(sys.executable).parent / "omh"
    found = shutil.which("omh")
    if found and Path(found).resolve() == script.resolve():
        return "omh"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def print_howto(cfg: Settings, out=sys.stdout) -> None:
    p = lambda *a: print(*a, file=out)  # noqa: E731
    # The commands below find this home by themselves when run from the repository with no OMH_HOME.
    env = "" if cfg.home == Path("var").resolve() else f"OMH_HOME={cfg.home} "
    env += omh_command()
    p(f"""
How to look at it
  warehouse: {cfg.duckdb_path or cfg.warehouse_url.split("@")[-1]}
  lake {f"(Iceberg table, OMH_LAKE_URL): {cfg.lake_url}" if cfg.lake_in_object_storage else f"(Parquet, hive-partitioned by reporter/year/month): {cfg.lake}"}
  validation reports (HTML): {cfg.reports}/<source>/   summary: {cfg.reports / "summary.json"}
  refused files with their reasons: {cfg.quarantine}/<source>/
  {env} summary
  {env} sql "SELECT reporter_iso3, flow_type, unit, sum(value) FROM fact_flow GROUP BY ALL ORDER BY 1"
  {env} sql "SELECT * FROM v_flow_by_period WHERE reporter_iso3 = 'PAN' ORDER BY period_start"
  {env} sql "SELECT source_id, file_name, status, rows_loaded, reason FROM file_manifest"
  {env} sql "SELECT reporter_iso3, year, count(*) FROM read_parquet('{cfg.lake}/**/*.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY ALL LIMIT 10"
  monthly bulletin (HTML and PDF; --lang es|en|pt|fr): {cfg.home / "bulletins"}/<YYYY-MM>/<lang>/
  {env} bulletin --period 2024-06 --lang es
  Airflow UI with these DAGs and runs: make airflow   (home {afe.airflow_home(cfg.home)})
  The Observatory page (Airflow's navigation bar) shows each member's months: the sample releases of
  2024 and of the last whole year (received today, so "late"), the months since then "missing".
  The DAGs start paused in the UI: unpause a country's DAG to let the scheduler run its delivery
  periods (a period whose file never came fails: that is how a late country shows).""")


# ---------------------------------------------------------------------------- the demo


def run_demo(home: str | os.PathLike | None = None) -> int:
    """Land, run every DAG through Airflow, summarize. Non-zero if a run failed for another reason
    than a refused file (refusals are listed with their reason and report)."""
    cfg = settings(home).ensure()
    # Airflow reads its configuration on first import: the environment goes in before that.
    afe.apply_env(cfg.home)
    contracts = load_contracts()
    airflow_log = cfg.logs / "demo-airflow.log"
    print(f"Observatorio de Movilidad Humana: demo in {cfg.home}")

    print("\n1. Landing files")
    samples, why_not = land_samples(cfg.landing)
    if why_not:
        print(f"  {why_not}")
    else:
        folders = sorted({p.parent.name for p in samples})
        print(f"  {len(samples)} sample file(s) in {len(folders)} landing folder(s) of {cfg.landing}")
        feeds = land_counterpart_feeds(cfg.landing)
        print(f"  {len(feeds)} counterpart feed(s) of the mirror pairs (data/mirror_pairs.yaml)")
    for path, note in land_real_files(cfg.landing, contracts=contracts):
        where = path.relative_to(cfg.home) if path.is_relative_to(cfg.home) else path
        print(f"  real file {where}: {note}")

    print(f"\n2. Airflow in {afe.airflow_home(cfg.home)} (SQLite); its log: {airflow_log}")
    started = time.monotonic()
    with _output_to(airflow_log):
        afe.prepare_airflow(cfg.home)
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(afe.DAGS_DIR))
    print(
        f"  database migrated, pool {afe.POOL} ({afe.POOL_SLOTS} slot), {len(bag.dags)} DAGs parsed from "
        f"{afe.DAGS_DIR} [{time.monotonic() - started:.1f}s]"
    )
    if bag.import_errors:
        for path, error in bag.import_errors.items():
            print(f"  DAG import error in {path}:\n{error}")
        return EXIT_FAILED
    missing = [afe.dag_id(s) for s in contracts if afe.dag_id(s) not in bag.dags]
    if afe.REGIONAL_DAG_ID not in bag.dags:
        missing.append(afe.REGIONAL_DAG_ID)
    if missing:
        print(f"  DAGs missing from {afe.DAGS_DIR}: {', '.join(missing)}")
        return EXIT_FAILED

    print(f"\n3. Running {len(contracts)} source DAGs, then {afe.REGIONAL_DAG_ID}")
    outcomes: list[RunOutcome] = []
    for source_id in sorted(contracts):
        dag = for_dag_test(bag.dags[afe.dag_id(source_id)])
        with _output_to(airflow_log):
            outcome = run_dag(dag, cfg, source_id)
        outcomes.append(outcome)
        print(_run_line(outcome), flush=True)
    regional = for_dag_test(bag.dags[afe.REGIONAL_DAG_ID])
    with _output_to(airflow_log):
        outcome = run_dag(regional, cfg)
    outcomes.append(outcome)
    print(_run_line(outcome).replace("no new file", "views refreshed, summary.json written"), flush=True)

    refused = [(o.dag_id, f) for o in outcomes for f in o.files if f.status in ("refused", "unreadable")]
    if refused:
        print("\nRefused files (nothing of them was loaded; fix the contract or the file, rerun):")
        for dag_id, f in refused:
            print(f"  {dag_id}: {f.reason}\n    report: {f.report}")

    print("\n4. What is loaded, per member state")
    try:
        print_summary(cfg)
    except Exception as exc:  # the runs above already say what went wrong; keep the how-to
        print(f"  no summary: {exc.__class__.__name__}: {exc}")
    print_howto(cfg)

    unexpected = [o for o in outcomes if o.unexpected]
    if unexpected:
        print(f"\nFAILED: {', '.join(o.dag_id for o in unexpected)} (see {airflow_log})")
        return EXIT_FAILED
    return EXIT_OK


def seed_landing(home=None) -> str:
    """Land the sample files of the 23 members and the real agency files when the landing zone
    holds no file at all (a landing zone with files is never touched)."""
    cfg = settings(home).ensure()
    if any(p.is_file() for p in cfg.landing.rglob("*")):
        return f"landing zone {cfg.landing} already holds files: left as it is"
    samples, why_not = land_samples(cfg.landing)
    feeds = land_counterpart_feeds(cfg.landing) if not why_not else []
    real = [p for p, note in land_real_files(cfg.landing) if note == "landed"]
    what = f"{len(samples)} sample file(s), {len(feeds)} counterpart feed(s)" if not why_not else why_not
    return f"landing zone was empty: landed {what} and {len(real)} real agency file(s) in {cfg.landing}"
