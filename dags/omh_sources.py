"""One DAG per source contract, one run per delivery period: wait for the period's file, ingest
every new landing file, publish the source's Asset, check the period is loaded.

Generated from `contracts/*.yaml`: onboarding a source is a contract file, not a DAG file. Every
DAG is `omh_<source_id>`, tagged `country:<ISO3>`, `conference:<CRM|CSM>` and `source:<id>`
(sources reporting for many countries: `country:multi`, `scope:regional` and both conferences),
so the grid filtered by tag shows which country is late or failing.

Scheduling follows the contract's delivery calendar: a `CronDataIntervalTimetable` on the delivery
frequency, so a run's data interval is the period it processes (a month, a quarter, a year), and
a `DeadlineAlert` whose reference is that period's due date (`DeliveryDueDate`, registered by the
project's plugin) alerts when the run has not succeeded by then.

This file is parsed by the DAG processor every few seconds: at module level it imports only
`airflow.sdk`, the light contract loader (yaml + pydantic), the plugin's deadline reference and
standard-library helpers. The pipeline (pandas, DuckDB, Great Expectations) is imported inside the
tasks.
"""

from __future__ import annotations

import datetime as dt
import logging

from airflow.sdk import (
    DAG,
    Asset,
    AsyncCallback,
    BaseOperator,
    CronDataIntervalTimetable,
    DeadlineAlert,
    Param,
    PokeReturnValue,
    TriggerRule,
    get_parsing_context,
    task,
)
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from omh_observatory.deadlines import DeliveryDueDate

from transforms.contracts.loading import load_contracts
from transforms.contracts.model import Contract
from transforms.ops import airflow_env as afe
from transforms.ops import delivery

log = logging.getLogger("omh.dags")

# Calendar periods: the run of a period starts when the period ends.
CRONS = {"monthly": "@monthly", "quarterly": "@quarterly", "yearly": "@yearly"}
# The earliest period a backfill may ask for (Airflow creates no task for a run dated before its
# DAG's start date); with catchup=False the scheduler itself only creates the latest period's run.
START_DATE = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
ALERT_CALLBACK = "transforms.ops.alerts.delivery_missed"

DEFAULT_ARGS = {
    "owner": afe.OWNER,
    "retries": 2,
    "retry_delay": afe.retry_delay(),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=30),
    # Named on each task when the installation names its executor (the cluster: CeleryExecutor),
    # so a task instance says which executor ran it.
    **({"executor": afe.executor()} if afe.executor() else {}),
}

FIXING = """
### When it fails
- **`ingest` failed on a file (refused)**: the task is named by the file. Its log gives the
  one-line reason, every problem found and the path of the rendered validation report
  (`$OMH_HOME/reports/<source>/*.html`, linked from the **Observatory** page); the file is copied
  with its reason to `$OMH_HOME/quarantine/<source>/`, and nothing already published changed.
  A refusal does not retry: the same file would fail the same way. If the file is wrong, ask the
  agency for a corrected release and land it beside the old one. If the agency changed its format
  or labels (unknown labels are listed on the Observatory page), change the contract
  (`contracts/<source>.yaml`; try it with `omh check <file> --source <source>`), then **clear the
  failed `ingest` task with its downstream tasks**: it reruns on the same file, with no cleanup.
  Later runs do not try a refused file again while it and its contract are unchanged; a corrected
  file that loads turns the next run green. `omh dismiss <file> --source <source> --reason ...`
  sets a refused file aside for good; "Trigger DAG w/ config" `{"rerun_files": ["<file>"]}`
  tries named files again.
- **`ingest` failed as unreadable**: encoding, sheet, header or delimiter do not match the
  contract's `reader` section; same fix.
- **`discover` failed, "NOT LOADED ... was due on"**: no new file landed for the period and its due
  date (plus grace) has passed; the Deadline Alert reports it (Observatory page,
  `$OMH_HOME/alerts.jsonl`, the alert connection if configured). Land the file and **clear the
  run**: the same period is looked at again.
- **`discover` up for reschedule**: the period's file is not due yet and has not landed; it looks
  again every hour until its due date. Nothing to do.
- **`period_loaded` failed**: the files that loaded do not cover this run's period (the country
  sent another period); its log says which files cover what.
- **A task up for retry**: a transient fault, most often the DuckDB file held by another process
  (an open `omh sql` or notebook). Two retries with growing delays; if they fail too, close the
  other process and clear the task.
- **Rerun or backfill a period**: clear its run, or `airflow backfill create --dag-id <dag> ...`;
  a file already loaded is skipped by its sha256, so reruns change nothing that is published.
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


def cron_of(contract: Contract) -> str:
    """The contract's own cron if given, else the preset of its delivery frequency."""
    return contract.delivery.schedule or CRONS[contract.delivery.frequency]


def schedule_of(contract: Contract) -> CronDataIntervalTimetable:
    """One run per delivery period, whose data interval is the period."""
    return CronDataIntervalTimetable(cron_of(contract), timezone="UTC")


def deadline_of(contract: Contract) -> DeadlineAlert:
    d = contract.delivery
    return DeadlineAlert(
        reference=DeliveryDueDate(lag_months=d.lag_months, due_day=d.due_day),
        interval=delivery.deadline_grace(),
        callback=AsyncCallback(
            ALERT_CALLBACK,
            kwargs={
                "source_id": contract.source_id,
                "reporter_iso3": contract.reporter,
                "lag_months": d.lag_months,
                "due_day": d.due_day,
                "frequency": d.frequency,
            },
        ),
        name="delivery_due",
    )


def source_asset(source_id: str) -> Asset:
    return Asset(name=afe.asset_name(source_id), uri=afe.asset_uri(source_id), group="omh_sources")


def _publication_md(contract: Contract) -> str:
    """The contract's ``publication`` (where, license, notes) as lines of the DAG's documentation."""
    pub = contract.publication
    parts = [
        f"**Published**: {pub.url}" if pub.url else "",
        f"**License**: {pub.license}" if pub.license else "",
        f"**Notes**: {' '.join(pub.notes.split())}" if pub.notes else "",
    ]
    return "".join(f"{p}\n" for p in parts if p)


def doc_of(contract: Contract) -> str:
    d = contract.delivery
    reporter = contract.reporter or "several member states (reporter per row)"
    patterns = ", ".join(f"`{p}`" for p in contract.landing.patterns)
    return f"""## {contract.title}
**Agency**: {contract.agency} | **reporter**: {reporter} | **source**: `{contract.source_id}`
(contract `contracts/{contract.source_id}.yaml`, version {contract.version}{", synthetic sample" if contract.synthetic else ""})

**Landing**: `$OMH_HOME/landing/{contract.landing.folder}/`, files matching {patterns}.
{_publication_md(contract)}**Delivery**: {d.frequency}; a period's file is due on day {d.due_day} of the month {d.lag_months}
month(s) after the period ends. One run per period (`{cron_of(contract)}`): the run's data interval
is the period it processes. A Deadline Alert fires when the run of a period has not succeeded by
its due date (plus {delivery.deadline_grace()} of grace).

### What it does
1. `discover`: lists the landing files of the source not loaded yet (by sha256). With none, and
   the period not loaded, it waits (reschedules itself hourly) until the period's due date.
2. `ingest` (one mapped task per file, named by the file): extract with the contract's reader,
   validate (Great Expectations, raw and canonical suites), harmonize, load the warehouse and the
   lake in one transaction per file. Emits OpenLineage events: the landing file in, the lake
   leaves and warehouse tables out.
3. `publish`: updates the Asset `{afe.asset_name(contract.source_id)}` when at least one file of
   this run loaded; the regional DAG `{afe.REGIONAL_DAG_ID}` is scheduled on it.
4. `all_files_loaded`: fails the run (marks it red) when any file was refused, after the files that
   did load were published.
5. `period_loaded`: the run is green only when the warehouse holds figures of its period (a run
   triggered by hand without a logical date has no period: it only ingests what landed).

The tasks that open the DuckDB warehouse run in the `{afe.POOL}` pool: one at a time across all
DAGs, since DuckDB admits one process per file.
{FIXING}"""


def _period(contract: Contract, context) -> delivery.Period | None:
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is None or end is None:
        return None
    d = contract.delivery
    return delivery.Period.of_interval(start, end, d.frequency, d.lag_months, d.due_day)


def report_link(report: str | None) -> str:
    """The validation report as a link the Airflow UI serves (the Observatory's reports route)."""
    from transforms.config import settings
    from transforms.ops.observatory import report_url

    rel = report_url(report, settings())
    return f"{afe.base_url()}/observatory/reports/{rel}" if rel else (report or "no report")


class IngestFile(BaseOperator):
    """The whole pipeline for one landing file; a refused file fails without retrying.

    An operator rather than a ``@task`` for its OpenLineage methods: the provider's listener asks
    them for the load's datasets (the landing file in; lake leaves and warehouse tables out).
    """

    template_fields = ()
    ui_color = "#e3f2e1"

    def __init__(self, *, source_id: str, landing: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.source_id = source_id
        self.landing = landing
        self._datasets: dict | None = None

    def execute(self, context) -> dict:
        from transforms.config import mask_in_airflow
        from transforms.ingest.pipeline import ingest_file
        from transforms.ops.lineage import load_datasets

        mask_in_airflow()  # the warehouse password, redacted in this task's log whatever prints it
        # ingest_file logs the warnings, and for a refused file every problem found.
        result = ingest_file(self.landing["path"], self.source_id)
        try:
            self._datasets = load_datasets(self.source_id, self.landing["path"], result)
        except Exception:  # lineage must never fail a load
            log.warning("no lineage for %s", self.landing["file"], exc_info=True)
        if not result.ok:
            link = report_link(result.report)
            # The reason first, one line per problem, the report as a link: what the engineer
            # reads in the task's log. Data quality, not a fault: a retry would fail the same way
            # (AirflowFailException skips the remaining retries); any other exception, e.g. a
            # server away, retries with backoff.
            log.error("%s %s: %s", result.status.upper(), result.file, result.reason)
            for problem in result.problems[1:21]:
                log.error("  - %s", problem)
            log.error("report: %s", link)
            log.error("not tried again until the file or its contract changes (or: omh dismiss)")
            raise AirflowFailException(f"{result.file} {result.status}; report: {link}")
        log.info("%s | report: %s", result.reason, result.report)
        return {"file": result.file, "status": result.status, "rows": result.rows, "report": result.report}

    def _lineage(self):
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.event_v2 import Dataset
        from openlineage.client.facet_v2 import output_statistics_output_dataset

        datasets = self._datasets or {"inputs": [], "outputs": []}

        def to_ol(d: dict) -> Dataset:
            facets = {}
            if "rows" in d:
                facets["outputStatistics"] = (
                    output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=d["rows"])
                )
            return Dataset(namespace=d["namespace"], name=d["name"], facets=facets or None)

        return OperatorLineage(
            inputs=[to_ol(d) for d in datasets["inputs"]], outputs=[to_ol(d) for d in datasets["outputs"]]
        )

    def get_openlineage_facets_on_complete(self, task_instance):
        return self._lineage()

    def get_openlineage_facets_on_failure(self, task_instance):
        return self._lineage()


# "Trigger DAG w/ config": name refused landing files to try again although nothing changed since
# they were refused (e.g. after a code-list fix elsewhere), by file name.
PARAMS = {
    "rerun_files": Param(
        [],
        type="array",
        items={"type": "string"},
        description="Landing files (names) to try again, even if refused before under the same rules.",
    )
}


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
        deadline=deadline_of(contract),
        params=PARAMS,
    ) as dag:
        # Every task that opens the DuckDB file takes the pool's one slot: DuckDB lets one process
        # open a file for writing, and none other then, not even to read.
        @task.sensor(
            pool=afe.POOL,
            mode="reschedule",
            poke_interval=delivery.discover_poke_seconds(),
            timeout=dt.timedelta(days=400).total_seconds(),
        )
        def discover(**context) -> PokeReturnValue:
            """Landing files not loaded yet (each becomes one `ingest`); waits for the period's file."""
            rerun = (context.get("params") or {}).get("rerun_files") or []
            decision = delivery.await_delivery(source_id, _period(contract, context), rerun=rerun)
            log.info("%s", decision.message)
            if decision.missing:
                raise AirflowFailException(decision.message)
            for f in decision.new:
                log.info("new %s (sha256 %s)", f["file"], f["sha256"][:12])
            return PokeReturnValue(is_done=decision.done, xcom_value=decision.new if decision.done else None)

        # Runs when discover succeeded, whatever became of each file: one refused file does not
        # hold back the files of the same run that loaded.
        @task(pool=afe.POOL, outlets=[asset], trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
        def publish(files: list[dict], outlet_events=None) -> dict:
            """Announce the files of this run that loaded (refusals fail `all_files_loaded`)."""
            from transforms.ingest.landing import discover as discover_files

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

        @task(pool=afe.POOL, trigger_rule=TriggerRule.NONE_FAILED)
        def period_loaded(**context) -> dict:
            """Green only when the warehouse holds figures of this run's period."""
            period = _period(contract, context)
            if period is None:
                raise AirflowSkipException("a run without a period (no logical date): nothing to check")
            cov = delivery.coverage(source_id, period)
            if not cov.loaded:
                raise AirflowFailException(cov.message())
            log.info("%s", cov.message())
            return {"period": period.label, "files": cov.files_loaded, "observations": cov.observations}

        new_files = discover()
        ingested = IngestFile.partial(
            task_id="ingest",
            source_id=source_id,
            pool=afe.POOL,
            map_index_template="{{ task.landing['file'] }}",
        ).expand(landing=new_files)
        published = publish(new_files)
        ingested >> published
        checked = all_files_loaded()
        [ingested, published] >> checked
        checked >> period_loaded()

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
