"""The Observatory app, mounted by the plugin at ``/observatory`` on Airflow's API server.

    GET /observatory/                       the page (shown inside the Airflow UI, "Observatory")
    GET /observatory/api/completeness       23 member states x recent months (``?months=N``)
    GET /observatory/api/validations        last validation per source, with its report's URL
    GET /observatory/api/unmapped           open unmapped labels
    GET /observatory/api/alerts             Deadline Alerts ($OMH_HOME/alerts.jsonl)
    GET /observatory/api/overview           all of the above in one answer
    GET /observatory/reports/<source>/<file>.html   a rendered validation report
    GET /observatory/bulletins/<YYYY-MM>/<lang>/bulletin.html|.pdf   a monthly bulletin

Every route answers only to an authenticated Airflow user: the dependency is Airflow's own
``requires_access_view(AccessView.WEBSITE)``, which reads the JWT from the ``Authorization: Bearer``
header (a token from ``POST /auth/token``) or the UI's ``_token`` cookie, validates it with the
configured auth manager and asks that auth manager whether the user may see the UI. No token: 401;
an invalid token or a user without access: 403.

The data comes from ``transforms.ops.observatory`` (read-only warehouse reads). Answers are cached
for ``CACHE_SECONDS`` so that a page left open does not keep the DuckDB file opened; when the file
is held by a running load, the last answer (or the snapshot the regional DAG writes) is served,
marked ``stale``.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

CACHE_SECONDS = 15.0


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.data: dict[int, tuple[float, dict]] = {}

    def get(self, months: int) -> dict:
        from transforms.ops import observatory

        with self.lock:
            hit = self.data.get(months)
            if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
                return hit[1]
            try:
                fresh = observatory.overview(months=months)
            except observatory.WarehouseBusy as exc:
                old = hit[1] if hit else observatory.read_snapshot()
                if old is None:
                    raise
                return {**old, "stale": True, "stale_reason": f"warehouse busy: {exc}"}
            fresh["stale"] = False
            self.data[months] = (time.monotonic(), fresh)
            return fresh


def create_app():
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view
    from fastapi import Depends, FastAPI, HTTPException, Query
    from fastapi.responses import FileResponse, HTMLResponse

    from transforms.config import settings
    from transforms.ops import observatory

    cache = _Cache()
    app = FastAPI(
        title="OMH Observatory",
        description="Reporting completeness, validations, unmapped labels and alerts of the 23 member states.",
        dependencies=[Depends(requires_access_view(AccessView.WEBSITE))],
        docs_url=None,
        redoc_url=None,
    )

    def data(months: int) -> dict:
        try:
            return cache.get(months)
        except observatory.WarehouseBusy as exc:
            raise HTTPException(503, f"the warehouse is being written; retry in a moment ({exc})") from exc

    Months = Query(observatory.DEFAULT_MONTHS, ge=1, le=120, description="how many recent months")

    @app.get("/api/overview")
    def api_overview(months: int = Months) -> dict:
        return data(months)

    @app.get("/api/completeness")
    def api_completeness(months: int = Months) -> dict:
        d = data(months)
        return {
            "generated_at": d["generated_at"],
            "stale": d.get("stale", False),
            "warehouse_ready": d.get("warehouse_ready", False),
            "statuses": d["statuses"],
            **d["completeness"],
        }

    @app.get("/api/validations")
    def api_validations() -> list[dict]:
        return data(observatory.DEFAULT_MONTHS)["validations"]

    @app.get("/api/unmapped")
    def api_unmapped() -> list[dict]:
        return data(observatory.DEFAULT_MONTHS)["unmapped"]

    @app.get("/api/alerts")
    def api_alerts() -> list[dict]:
        return data(observatory.DEFAULT_MONTHS)["alerts"]

    @app.get("/reports/{path:path}")
    def report(path: str):
        root = settings().reports.resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root) or target.suffix != ".html" or not target.is_file():
            raise HTTPException(404, "no such report")
        return FileResponse(target, media_type="text/html")

    @app.get("/bulletins/{path:path}")
    def bulletin(path: str):
        from transforms.publish.bulletin import bulletins_root

        root = bulletins_root(settings()).resolve()
        target = (root / path).resolve()
        kinds = {".html": "text/html", ".pdf": "application/pdf"}
        if not target.is_relative_to(root) or target.suffix not in kinds or not target.is_file():
            raise HTTPException(404, "no such bulletin")
        return FileResponse(target, media_type=kinds[target.suffix])

    @app.get("/", response_class=HTMLResponse)
    def page(months: int = Months) -> str:
        return render_page(data(months))

    # Importing pandas and DuckDB takes seconds on a cold cache: pay it before the first visitor.
    threading.Thread(target=_warm_up, daemon=True, name="observatory-warm-up").start()
    return app


def _warm_up() -> None:
    try:
        import transforms.storage.warehouse  # noqa: F401
    except Exception:  # only a warm-up
        pass


# ---------------------------------------------------------------------------- the page

COLORS = {
    "loaded": ("#2e7d32", "#fff"),
    "warnings": ("#9ccc65", "#1b1b1b"),
    "late": ("#fb8c00", "#1b1b1b"),
    "refused": ("#c62828", "#fff"),
    "missing": ("#6d1b1b", "#fff"),
    "partial": ("#c0ca33", "#1b1b1b"),
    "not_due": ("#e0e0e0", "#555"),
    "no_source": ("#fafafa", "#bbb"),
    "unknown": ("#eeeeee", "#777"),
}
SYMBOLS = {
    "loaded": "✓",
    "warnings": "!",
    "late": "L",
    "refused": "✗",
    "missing": "–",
    "partial": "½",
    "not_due": "·",
    "no_source": "",
    "unknown": "?",
}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _cell_target(cell: dict, reports: dict[str, str]) -> str | None:
    """Where a click on a cell leads: the report of a refused or warned file covering it, else the
    DAG of its first source (its runs, one per delivery period)."""
    sources = cell.get("sources", [])
    for s in sources:
        if s["status"] == "refused" and reports.get(s["source_id"]):
            return f"reports/{reports[s['source_id']]}"
    if cell["status"] == "warnings":
        for s in sources:
            if reports.get(s["source_id"]):
                return f"reports/{reports[s['source_id']]}"
    return f"/dags/{dag_id(sources[0]['source_id'])}" if sources else None


def _cell(cell: dict, country: dict, reports: dict[str, str]) -> str:
    status = cell["status"]
    bg, fg = COLORS.get(status, ("#fff", "#000"))
    detail = "; ".join(
        f"{s['source_id']} {s['period_start']}..{s['period_end']}: {s['status']} (due {s['due_date']})"
        for s in cell.get("sources", [])
    )
    label = status
    if status == "partial":
        label = f"partial: {cell.get('sources_in')} of {cell.get('sources_expected')} sources"
    title = f"{country['name_es']} {cell['month']}: {label}" + (f" — {detail}" if detail else "")
    target = _cell_target(cell, reports)
    link = f' data-href="{_e(target)}" tabindex="0"' if target else ""
    return (
        f'<td class="cell s-{_e(status)}" data-status="{_e(status)}" title="{_e(title)}"{link} '
        f'style="background:{bg};color:{fg}">{SYMBOLS.get(status, "")}</td>'
    )


def dag_id(source_id: str) -> str:
    from transforms.ops.airflow_env import dag_id as airflow_dag_id

    return airflow_dag_id(source_id)


# Airflow 3 shows a plugin page in an iframe sandboxed without allow-top-navigation and without
# allow-popups: a plain link (target _top or _blank) is blocked there. The sandbox allows scripts
# and the same origin, so a click builds the link in the top document and follows it from there:
# the report, the DAG or the page itself opens in the Airflow window. Outside an iframe the links
# work as links.
TOP_NAVIGATION = """<script>
document.addEventListener('click', function (e) {
  var el = e.target.closest('a[data-top], td.cell[data-href]');
  if (!el) return;
  var href = new URL(el.getAttribute('href') || el.dataset.href, location.href).href;
  e.preventDefault();
  try {
    if (window.top !== window) {
      var a = window.top.document.createElement('a');
      a.href = href;
      window.top.document.body.appendChild(a);
      a.click();
      a.remove();
      return;
    }
  } catch (err) { /* another origin: fall through */ }
  location.href = href;
});
document.addEventListener('keydown', function (e) {
  if (e.key === 'Enter' && e.target.matches('td.cell[data-href]')) e.target.click();
});
</script>"""


def render_page(d: dict) -> str:
    grid = d["completeness"]
    months = grid["months"]
    head = "".join(f'<th class="m">{_e(m[2:])}</th>' for m in months)
    rows = []
    reports = {v["source_id"]: v["report"] for v in d["validations"] if v.get("report")}
    for c in grid["countries"]:
        cells = "".join(_cell(cell, c, reports) for cell in c["cells"])
        rows.append(
            f'<tr class="country" data-iso3="{_e(c["iso3"])}"><th class="name">{_e(c["name_es"])} '
            f'<span class="iso">{_e(c["iso3"])}</span></th><td class="conf">{_e(c["conference"])}</td>{cells}</tr>'
        )
    legend = "".join(
        f'<span class="legend"><span class="sw" style="background:{COLORS[k][0]};color:{COLORS[k][1]}">'
        f"{SYMBOLS[k]}</span>{_e(v['label'])}<small> — {_e(v['meaning'])}</small></span>"
        for k, v in d["statuses"].items()
        if k in COLORS
    )

    def report_link(v: dict) -> str:
        return f'<a href="reports/{_e(v["report"])}" data-top>report</a>' if v.get("report") else ""

    validations = "".join(
        f'<tr class="v-{_e(v["status"])}"><td>{_e(v.get("reporter_iso3") or "multi")}</td>'
        f'<td><a href="/dags/{_e(v["dag_id"])}" data-top>{_e(v["source_id"])}</a></td>'
        f"<td>{_e(v.get('file_name') or '—')}</td><td><b>{_e(v['status'])}</b></td>"
        f"<td>{_e(v.get('rows_loaded', ''))}</td><td>{_e(v.get('warnings', ''))}</td>"
        f"<td>{_e(v.get('failed_checks', ''))}</td><td>{_e((v.get('processed_at') or '')[:19])}</td>"
        f'<td>{report_link(v)}</td><td class="reason">{_e(v.get("reason", ""))}</td></tr>'
        for v in d["validations"]
    )
    unmapped = (
        "".join(
            f"<tr><td>{_e(u.get('reporter_iso3') or 'multi')}</td><td>{_e(u['source_id'])}</td>"
            f"<td>{_e(u['file_name'])}</td><td>{_e(u['column'])}</td><td><code>{_e(u['label'])}</code></td>"
            f"<td>{_e(u['cells'])}</td><td>{_e(', '.join(str(r) for r in u['rows']))}</td><td>{_e(u['state'])}</td></tr>"
            for u in d["unmapped"]
        )
        or '<tr><td colspan="8">No open unmapped labels.</td></tr>'
    )
    alerts = (
        "".join(
            f'<tr class="{"resolved" if a.get("resolved") else "open"}"><td>{_e((a.get("at") or "")[:19])}</td>'
            f"<td>{_e(a.get('reporter_iso3') or 'multi')}</td><td>{_e(a.get('source_id'))}</td>"
            f"<td>{_e(a.get('period'))}</td><td>{_e(a.get('due_date'))}</td>"
            f"<td>{'resolved' if a.get('resolved') else '<b>open</b>'}</td><td>{_e(a.get('message'))}</td></tr>"
            for a in d["alerts"]
        )
        or '<tr><td colspan="7">No alert.</td></tr>'
    )
    bulletins = (
        " · ".join(
            f'{_e(b["lang"])} {_e(b["period"])}: <a href="bulletins/{_e(b["html"])}" data-top>HTML</a>'
            + (f' <a href="bulletins/{_e(b["pdf"])}" data-top>PDF</a>' if b.get("pdf") else "")
            for b in d.get("bulletins") or []
        )
        or "No bulletin yet: the regional DAG makes one after its loads (or run omh bulletin)."
    )
    stale = (
        f'<p class="stale">Shown from an earlier reading: {_e(d.get("stale_reason"))}</p>'
        if d.get("stale")
        else ""
    )
    not_ready = (
        ""
        if d.get("warehouse_ready")
        else '<p class="stale">No warehouse yet: trigger a source DAG (or run make demo).</p>'
    )
    return f"""<!doctype html>
<html lang="es"><head><meta charset="utf-8"><title>Observatorio de Movilidad Humana</title>
<style>
 body {{ font: 13px system-ui, sans-serif; margin: 12px 16px; color: #1b1b1b; background: #fff; }}
 h1 {{ font-size: 18px; margin: 0 0 4px; }} h2 {{ font-size: 15px; margin: 22px 0 6px; }}
 table {{ border-collapse: collapse; }} th, td {{ padding: 2px 5px; }}
 table.grid td.cell {{ width: 22px; text-align: center; border: 1px solid #fff; font-weight: 600; }}
 table.grid td.cell[data-href] {{ cursor: pointer; }} table.grid td.cell[data-href]:hover {{ outline: 2px solid #1565c0; }}
 table.grid th.m {{ font-weight: 500; font-size: 11px; writing-mode: vertical-rl; transform: rotate(180deg); }}
 table.grid th.name {{ text-align: left; font-weight: 500; white-space: nowrap; }}
 .iso {{ color: #777; font-size: 11px; }} .conf {{ color: #777; font-size: 11px; }}
 .legend {{ display: inline-block; margin: 2px 14px 2px 0; }} .legend small {{ color: #666; }}
 .sw {{ display: inline-block; width: 16px; text-align: center; margin-right: 4px; font-weight: 600; }}
 table.list td, table.list th {{ border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }}
 td.reason {{ max-width: 520px; color: #555; }}
 tr.v-refused td, tr.v-unreadable td {{ background: #fdecea; }} tr.v-warnings td {{ background: #f4f9e9; }}
 tr.open td {{ background: #fff4e5; }} tr.resolved td {{ color: #888; }}
 .stale {{ background: #fff4e5; padding: 4px 8px; }} .meta {{ color: #666; }}
</style></head><body>
<h1>Observatorio de Movilidad Humana — reporting completeness</h1>
<p class="meta">23 member states of the CRM and the CSM, by month, from each source contract's delivery
calendar. As of {_e(d["generated_at"])} UTC. <a href="api/overview" data-top>JSON</a>
· Click a cell: the report of a refused or warned file, else the source's DAG and its runs.</p>
{stale}{not_ready}
<p class="meta" id="bulletins">Latest monthly bulletin: {bulletins}</p>
<div>{legend}</div>
<table class="grid" id="completeness"><thead><tr><th></th><th></th>{head}</tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<h2>Alerts (files not loaded by their due date)</h2>
<table class="list" id="alerts"><thead><tr><th>at</th><th>country</th><th>source</th><th>period</th>
<th>due</th><th>state</th><th>alert</th></tr></thead><tbody>{alerts}</tbody></table>
<h2>Last validation per source</h2>
<table class="list" id="validations"><thead><tr><th>country</th><th>source (DAG)</th><th>file</th><th>status</th>
<th>rows</th><th>warnings</th><th>failed checks</th><th>processed</th><th>report</th><th>reason</th></tr></thead>
<tbody>{validations}</tbody></table>
<h2>Open unmapped labels</h2>
<table class="list" id="unmapped"><thead><tr><th>country</th><th>source</th><th>file</th><th>column</th>
<th>label</th><th>cells</th><th>rows</th><th>state</th></tr></thead><tbody>{unmapped}</tbody></table>
<p class="meta">Fix an unmapped label in <code>contracts/&lt;source&gt;.yaml</code> (the field's <code>map</code>),
check it with <code>omh check FILE --source &lt;source&gt;</code>, then clear the failed <code>ingest</code>
task of the source's DAG.</p>
{TOP_NAVIGATION}
</body></html>"""
