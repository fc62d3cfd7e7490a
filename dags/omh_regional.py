"""The regional DAG: after any source loads new files, refresh the warehouse views and the summary.

Scheduled on the Assets of every source DAG (`omh_<source_id>`, see `omh_sources.py`): any one
of them updated starts a run (an `AssetAny` expression), so a country's new file reaches the
analysts' views without waiting for the other 22.

Module level imports only `airflow.sdk` and the light contract loader, like every DAG file.
"""

from __future__ import annotations

import datetime as dt
import logging

from airflow.sdk import DAG, Asset, AssetAny, task

from transforms.contracts.loading import load_contracts
from transforms.ops import airflow_env as afe

log = logging.getLogger("omh.dags")

DOC = f"""## Regional refresh (23 member states)
Runs whenever any source DAG publishes its Asset (new files loaded), or by hand.

1. `refresh_views`: recreates the SQL views and reseeds the dimensions (code lists, contracts) of
   the warehouse.
2. `country_summary`: per member state, sources, files loaded and refused, observations and the
   periods covered; written to the task log and to `$OMH_HOME/reports/summary.json`.
3. `mirror_checks`: the mirror pairs (`data/mirror_pairs.yaml`, view `v_mirror`) out of tolerance
   in the last 12 months each pair has both sides for: a WARNING per pair and period in the task
   log, in `$OMH_HOME/alerts.jsonl` (the Observatory lists it) and in
   `$OMH_HOME/reports/mirror.json`. A warning: the task stays green.

4. `bulletin`: the monthly bulletin of the latest month with published monthly figures, in
   es/en/pt/fr, into `$OMH_HOME/bulletins/<YYYY-MM>/<lang>/` (`omh bulletin`); the Observatory
   page links the newest one.

The first three run in the `{afe.POOL}` pool, the queue of the warehouse's writers (decision 0007):
the summary follows the loads queued before it. The bulletin only reads (it never holds up a load).

### When it fails
- `refresh_views` up for retry: the warehouse is locked by another writer (an open `omh sql`
  session or a source DAG's `ingest`); it retries with backoff.
- A SQL error in `refresh_views`: a view in `sql/views.sql` no longer matches the schema; fix
  the view and clear the task. Loaded data is untouched: views hold no data.
- `bulletin` failed: its log names the language and the error; the loads, the views and the
  summary are untouched, and the previous bulletin stays in place (files are replaced whole).
  Run `omh bulletin --period YYYY-MM --lang es` by hand to see the same error, then clear the task.
"""


def source_assets() -> list[Asset]:
    return [
        Asset(name=afe.asset_name(sid), uri=afe.asset_uri(sid), group="omh_sources")
        for sid in sorted(load_contracts())
    ]


with DAG(
    dag_id=afe.REGIONAL_DAG_ID,
    description="Refresh warehouse views and the per-country summary when any source loads",
    doc_md=DOC,
    schedule=AssetAny(*source_assets()),
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": afe.OWNER,
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=15),
    },
    tags=["scope:regional", "country:multi", "conference:CRM", "conference:CSM"],
) as dag:

    @task(pool=afe.POOL)
    def refresh_views() -> None:
        """Views, dimensions and schema, all idempotent (CREATE OR REPLACE)."""
        from transforms.config import settings
        from transforms.storage.warehouse import Warehouse

        with Warehouse(settings()) as wh:
            wh.ensure_schema(load_contracts())
        log.info("warehouse views refreshed")

    # It only reads (readers never wait for a load, decision 0007); it keeps the pool's slot so that
    # the summary comes after the loads queued before it.
    @task(pool=afe.POOL)
    def country_summary(triggering_asset_events=None) -> list[dict]:
        """Per-country summary to the log and to `$OMH_HOME/reports/summary.json`."""
        import json

        from transforms.config import settings
        from transforms.ingest.pipeline import summary

        for asset_key, events in (triggering_asset_events or {}).items():
            for event in events:
                log.info("triggered by %s: %s", getattr(asset_key, "name", asset_key), event.extra)
        rows = summary()
        log.info(
            "%-8s %-4s %5s %7s %12s  %s", "reporter", "conf", "files", "refused", "observations", "periods"
        )
        for r in rows:
            periods = f"{r['first_period']} .. {r['last_period']}" if r["first_period"] else "-"
            log.info(
                "%-8s %-4s %5s %7s %12s  %s",
                r["reporter_iso3"],
                r["conference"] or "",
                r["files"],
                r["refused"],
                r["observations"],
                periods,
            )
        cfg = settings().ensure()
        target = cfg.reports / "summary.json"
        payload = {"generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "reporters": rows}
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        tmp.replace(target)
        log.info("summary of %d member states written to %s", len(rows), target)
        # The Observatory page's data, for when the warehouse is busy with a load.
        from transforms.ops.observatory import write_snapshot

        log.info("observatory snapshot written to %s", write_snapshot())
        return json.loads(json.dumps(rows, default=str))

    @task(pool=afe.POOL)
    def mirror_checks() -> dict:
        """Mirror pairs out of tolerance: warnings (log, alerts file, report), never a failure."""
        from transforms.ops.mirror import check_mirror

        report = check_mirror()
        return {"compared": report["compared"], "out_of_tolerance": len(report["out_of_tolerance"])}

    @task
    def bulletin() -> list[str]:
        """The latest month's bulletin in the four languages (HTML and PDF)."""
        from transforms.config import settings
        from transforms.publish.bulletin import build, bulletins_root, default_period

        cfg = settings()
        period = default_period()
        made = []
        for lang in ("es", "en", "pt", "fr"):
            out = bulletins_root(cfg) / f"{period:%Y-%m}" / lang
            result = build(period, lang, out)
            log.info(
                "bulletin %s %s: %s and %s (%d charts)",
                f"{period:%Y-%m}",
                lang,
                result.html,
                result.pdf,
                result.charts,
            )
            made.append(str(result.html))
        return made

    summary = country_summary()
    refresh_views() >> [summary, mirror_checks()]
    summary >> bulletin()


if __name__ == "__main__":
    print(dag.dag_id, "scheduled on", ", ".join(a.name for a in source_assets()))
