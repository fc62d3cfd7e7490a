"""One DAG per source contract: land -> discover -> ingest each new file -> publish the source's Asset.

Generated from `contracts/*.yaml`: onboarding a source is a contract file, not a DAG file. Every
DAG is `omh_<source_id>`, tagged `country:<ISO3>`, `conference:<CRM|CSM>` and `source:<id>`
(sources reporting for many countries: `country:multi`, `scope:regional` and both conferences),
so the grid filtered by tag shows which country is late or failing.

This file is parsed by the scheduler every few seconds: at module level it imports only
`airflow.sdk` and the light contract loader (yaml + pydantic). The pipeline (pandas, DuckDB,
Great Expectations) is imported inside the tasks.
"""

from __future__ import annotations

import datetime as dt
import logging

from airflow.sdk import DAG, Asset, TriggerRule, get_parsing_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from transforms import airflow_env as afe
from transforms.contracts import Contract, load_contracts

log = logging.getLogger("omh.dags")

SCHEDULES = {"monthly": "@monthly", "quarterly": "@quarterly", "yearly": "@yearly"}
START_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

DEFAULT_ARGS = {
    "owner": afe.OWNER,
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=30),
}

FIXING = """
### When it fails
- **`ingest` failed on a file (refused)**: the task is named by the file. Its log gives the
  one-line reason, every problem found and the path of the rendered validation report
  (`$OMH_HOME/reports/<source>/*.html`); the file is copied with its reason to
  `$OMH_HOME/quarantine/<source>/`, and nothing already published changed. A refusal does not
  retry: the same file would fail the same way. If the file is wrong, ask the agency for a
  corrected release and land it beside the old one. If the agency changed its format or labels,
  change the contract (`contracts/<source>.yaml`; try it with `omh check <file> --source <source>`),
  then **clear the failed `ingest` task with its downstream tasks**: it reruns on the same file,
  with no cleanup. (The next scheduled run would also pick the file up: a refused file is not
  loaded.)
- **`ingest` failed as unreadable**: encoding, sheet, header or delimiter do not match the
  contract's `reader` section; same fix.
- **A task up for retry**: a transient fault, most often the DuckDB file held by another process
  (an open `omh sql` or notebook). Two retries with growing delays; if they fail too, close the
  other process and clear the task.
- **`discover` failed**: the landing folder or the warehouse could not be read; see its log.
- **Run green, `ingest` and `publish` skipped**: no new file (a file already loaded is skipped by
  its sha256). A late country shows as runs with nothing loaded.
"""


def _conference_tags(contract: Contract) -> list[str]:
    if not contract.reporter:
        return ["country:multi", "scope:regional", "conference:CRM", "conference:CSM"]
    try:
        conference = contract.conference
    except Exception:  # a missing code list must not take every DAG down with it
        log.warning("no conference for %s", contract.reporter, exc_info=True)
        conference = None
    return [f"country:{contract.reporter}", f"conference:{conference or 'unknown'}"]


def tags_of(contract: Contract) -> list[str]:
    tags = [*_conference_tags(contract), f"source:{contract.source_id}"]
    if contract.synthetic:
        tags.append("synthetic")
    return tags


def schedule_of(contract: Contract) -> str:
    """The contract's own cron if given, else the preset of its delivery frequency."""
    return contract.delivery.schedule or SCHEDULES[contract.delivery.frequency]


def source_asset(source_id: str) -> Asset:
    return Asset(name=afe.asset_name(source_id), uri=afe.asset_uri(source_id), group="omh_sources")


def doc_of(contract: Contract) -> str:
    d = contract.delivery
    reporter = contract.reporter or "several member states (reporter per row)"
    patterns = ", ".join(f"`{p}`" for p in contract.landing.patterns)
    return f"""## {contract.title}
**Agency**: {contract.agency} | **reporter**: {reporter} | **source**: `{contract.source_id}`
(contract `contracts/{contract.source_id}.yaml`, version {contract.version}{", synthetic sample" if contract.synthetic else ""})

**Landing**: `$OMH_HOME/landing/{contract.landing.folder}/`, files matching {patterns}.
**Delivery**: {d.frequency}, due on day {d.due_day} of the month {d.lag_months} month(s) after the
period ends; scheduled `{schedule_of(contract)}`.

### What it does
1. `discover`: lists the landing files of the source that are not loaded yet (by sha256).
2. `ingest` (one mapped task per file, named by the file): extract with the contract's reader,
   validate (Great Expectations, raw and canonical suites), harmonize, load the warehouse and the
   lake in one transaction per file.
3. `publish`: updates the Asset `{afe.asset_name(contract.source_id)}` when at least one file of
   this run loaded; the regional DAG `{afe.REGIONAL_DAG_ID}` is scheduled on it.
4. `all_files_loaded`: fails the run (marks it red) when any file was refused, after the files that
   did load were published.

The tasks that open the DuckDB warehouse run in the `{afe.POOL}` pool: one at a time across all
DAGs, since DuckDB admits one process per file.
{FIXING}"""


def build_dag(contract: Contract) -> DAG:
    """The DAG of one source contract."""
    source_id = contract.source_id
    asset = source_asset(source_id)

    with DAG(
        dag_id=afe.dag_id(source_id),
        description=f"{contract.reporter or 'multi'}: {contract.title}"[:200],
        doc_md=doc_of(contract),
        schedule=schedule_of(contract),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=tags_of(contract),
    ) as dag:
        # Every task that opens the DuckDB file takes the pool's one slot: DuckDB lets one process
        # open a file for writing, and none other then, not even to read.
        @task(pool=afe.POOL)
        def discover() -> list[dict]:
            """Landing files of the source not loaded yet; each becomes one `ingest` task."""
            from transforms.pipeline import discover as discover_files

            files = discover_files(source_id)
            new = [f for f in files if not f["loaded"]]
            for f in files:
                log.info(
                    "%s %s (sha256 %s)",
                    "new   " if not f["loaded"] else "loaded",
                    f["file"],
                    f["sha256"][:12],
                )
            log.info("%d landing file(s), %d new", len(files), len(new))
            return [{"path": f["path"], "file": f["file"], "sha256": f["sha256"]} for f in new]

        @task(pool=afe.POOL, map_index_template="{{ task.op_kwargs['landing']['file'] }}")
        def ingest(landing: dict) -> dict:
            """The whole pipeline for one file; a refused file fails without retrying."""
            from transforms.pipeline import ingest_file

            # ingest_file logs the warnings, and for a refused file every problem found.
            result = ingest_file(landing["path"], source_id)
            if not result.ok:
                log.error("validation report: %s", result.report)
                # Data quality, not a fault: a retry would fail the same way (AirflowFailException
                # skips the remaining retries). Any other exception, e.g. a locked DuckDB file,
                # retries with backoff.
                raise AirflowFailException(f"{result.status}: {result.reason} | report: {result.report}")
            log.info("%s | report: %s", result.reason, result.report)
            return {
                "file": result.file,
                "status": result.status,
                "rows": result.rows,
                "report": result.report,
            }

        # Runs when discover succeeded, whatever became of each file: one refused file does not
        # hold back the files of the same run that loaded.
        @task(pool=afe.POOL, outlets=[asset], trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
        def publish(files: list[dict], outlet_events=None) -> dict:
            """Announce the files of this run that loaded (refusals fail `all_files_loaded`)."""
            from transforms.pipeline import discover as discover_files

            ran = {f["sha256"] for f in files or []}
            loaded = [f for f in discover_files(source_id) if f["loaded"] and f["sha256"] in ran]
            if not loaded:
                raise AirflowSkipException("no file of this run loaded: the asset is not updated")
            extra = {"files": [f["file"] for f in loaded], "sha256": [f["sha256"] for f in loaded]}
            outlet_events[asset].extra = extra
            log.info("published %s: %s", asset.name, ", ".join(extra["files"]))
            return extra

        @task
        def all_files_loaded() -> None:
            """Runs only when every `ingest` succeeded; otherwise upstream_failed fails the run."""
            log.info("every new landing file of %s loaded", source_id)

        new_files = discover()
        ingested = ingest.expand(landing=new_files)
        published = publish(new_files)
        ingested >> published
        [ingested, published] >> all_files_loaded()

    return dag


def _wanted(dag_id: str) -> bool:
    # A worker running one task parses this file for one DAG only: build just that one.
    current = get_parsing_context().dag_id
    return current is None or current == dag_id


for _contract in load_contracts().values():
    if _wanted(afe.dag_id(_contract.source_id)):
        globals()[afe.dag_id(_contract.source_id)] = build_dag(_contract)


if __name__ == "__main__":
    for _name, _obj in sorted(globals().items()):
        if isinstance(_obj, DAG):
            print(_name, _obj.tags)
