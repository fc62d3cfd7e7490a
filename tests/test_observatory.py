"""The engineers' cockpit without a running Airflow: delivery calendar and deadlines, alerts and their
channels, the Observatory's data and page, lineage datasets, the read-only discover.

The same code runs under the real Airflow in tests/test_airflow_e2e.py and tests/test_browser.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import json
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from omh_airflow_server import SAMPLES_CLOCK, observatory_clock

from transforms.config import DATA_DIR, settings
from transforms.contracts import codelists
from transforms.contracts.loading import get_contract, load_contracts
from transforms.ops import alerts, delivery, observatory

DARIEN = "pan_darien_yearly"
DARIEN_FILE = DATA_DIR / "realdata" / "raw" / "panama_darien_2019-2022_by_nationality_derived.csv"
CRI = "cri_dgme_entradas_extranjeros"


# ---------------------------------------------------------------------------- calendar


def test_due_dates_are_those_of_the_warehouse_delivery_calendar():
    from transforms.storage.warehouse import delivery_slots

    sources = [
        {
            "source_id": c.source_id,
            "delivery_frequency": c.delivery.frequency,
            "due_day": c.delivery.due_day,
            "lag_months": c.delivery.lag_months,
        }
        for c in load_contracts().values()
    ]
    slots, _ = delivery_slots(sources, dt.date(2026, 11, 27), 30)
    assert slots
    by_id = {s["source_id"]: s for s in sources}
    for slot in slots:
        s = by_id[slot["source_id"]]
        end_exclusive = slot["period_end"] + dt.timedelta(days=1)
        assert delivery.due_date(end_exclusive, s["lag_months"], s["due_day"]) == slot["due_date"], slot


@pytest.mark.parametrize(
    ("start", "end", "label"),
    [
        ("2026-10-01", "2026-11-01", "2026-10"),
        ("2026-07-01", "2026-10-01", "2026-Q3"),
        ("2025-01-01", "2026-01-01", "2025"),
        ("2025-01-05", "2025-02-05", "2025-01-05..2025-02-04"),
    ],
)
def test_period_labels(start, end, label):
    assert delivery.period_label(start, end) == label


def test_a_period_is_due_lag_months_after_it_ends_on_the_due_day_or_the_months_last():
    period = delivery.Period.of_interval(
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 2, 1, tzinfo=dt.UTC), "monthly", 1, 30
    )
    assert (period.start, period.end, period.due) == (
        dt.date(2026, 1, 1),
        dt.date(2026, 1, 31),
        dt.date(2026, 2, 28),
    )
    assert delivery.due_date("2025-01-01T00:00:00Z", 1, 31) == dt.date(2025, 1, 31)  # the year 2024


def test_the_deadline_reference_is_registered_by_the_plugin_and_serializes_its_calendar():
    import airflow.sdk  # noqa: F401  (puts the plugins folder on sys.path)
    from airflow import plugins_manager
    from airflow.serialization.encoders import encode_deadline_reference
    from omh_observatory.deadlines import DeliveryDueDate

    ref = DeliveryDueDate(lag_months=2, due_day=28)
    data = encode_deadline_reference(ref)
    assert data["__class_path"] == "omh_observatory.deadlines.DeliveryDueDate"
    assert (data["lag_months"], data["due_day"]) == (2, 28)
    assert DeliveryDueDate.deserialize_reference(data) == ref
    assert hash(DeliveryDueDate.deserialize_reference(data)) == hash(ref)
    assert plugins_manager.get_deadline_references_plugins()[data["__class_path"]] is DeliveryDueDate


# ---------------------------------------------------------------------------- a small loaded home


@pytest.fixture(scope="module", autouse=True)
def clock():
    """The samples cover 2024: the grid's window is pinned to a date after it, on any day."""
    with observatory_clock():
        yield


@pytest.fixture(scope="module")
def home(tmp_path_factory, clock):
    """CRI's sample file loaded, a refused file with an unknown label, the Darién file landed only."""
    from transforms.ingest.landing import source_files
    from transforms.ingest.pipeline import ingest_file
    from transforms.tools.samples import write_samples

    home = tmp_path_factory.mktemp("observatory") / "omh_home"
    cfg = settings(home).ensure()
    samples = home.parent / "samples"
    write_samples(samples)
    cri = get_contract(CRI)
    (cfg.landing / cri.landing.folder).mkdir(parents=True)
    for path in (samples / cri.landing.folder).iterdir():
        shutil.copy2(path, cfg.landing / cri.landing.folder / path.name)
    for path in source_files(cri, cfg):
        assert ingest_file(path, CRI, home).status == "loaded"
    bad = home.parent / "darien_2023_atlantis.csv"
    bad.write_text("toShow,year,total\nAtlantis,2023,5\nColombia,2023,7\n", encoding="utf-8")
    assert ingest_file(bad, DARIEN, home).status == "refused"
    landing = cfg.landing / get_contract(DARIEN).landing.folder
    landing.mkdir(parents=True, exist_ok=True)
    shutil.copy2(DARIEN_FILE, landing / DARIEN_FILE.name)
    return home


def _period(source_id: str, start: str, end: str) -> delivery.Period:
    d = get_contract(source_id).delivery
    return delivery.Period.of_interval(start, end, d.frequency, d.lag_months, d.due_day)


def test_discover_only_reads(tmp_path):
    from transforms.ingest.landing import discover

    home = tmp_path / "fresh"
    folder = settings(home).landing / get_contract(DARIEN).landing.folder
    folder.mkdir(parents=True)
    shutil.copy2(DARIEN_FILE, folder / DARIEN_FILE.name)
    (listed,) = discover(DARIEN, home)
    assert (listed["file"], listed["loaded"]) == (DARIEN_FILE.name, False)
    assert not settings(home).duckdb_path.exists()  # no warehouse created for a listing


def test_discover_goes_on_with_new_files_waits_before_the_due_date_and_fails_after(home, tmp_path):
    cfg = settings(home)
    period_2025 = _period(DARIEN, "2025-01-01", "2026-01-01")
    mtime = cfg.duckdb_path.stat().st_mtime_ns
    go = delivery.await_delivery(DARIEN, period_2025, home=home)
    assert go.done and [f["file"] for f in go.new] == [DARIEN_FILE.name]
    assert cfg.duckdb_path.stat().st_mtime_ns == mtime  # read-only
    manual = delivery.await_delivery(DARIEN, None, home=home)
    assert manual.done

    # No new file: MEX's landing folder is empty in this home.
    empty = _period("mex_upm_eventos_irregulares", "2026-10-01", "2026-11-01")
    before = dt.datetime.combine(empty.due, dt.time(), dt.UTC) - dt.timedelta(days=3)
    wait = delivery.await_delivery("mex_upm_eventos_irregulares", empty, now=before, home=home)
    assert (wait.done, wait.missing) == (False, False) and "waiting for its file" in wait.message
    after = dt.datetime.combine(empty.due, dt.time(), dt.UTC) + dt.timedelta(days=2)
    late = delivery.await_delivery("mex_upm_eventos_irregulares", empty, now=after, home=home)
    assert late.missing and f"was due on {empty.due}" in late.message

    # A period already loaded: nothing to wait for, nothing to do.
    loaded = _period(CRI, "2024-06-01", "2024-07-01")
    done = delivery.await_delivery(CRI, loaded, now=after, home=home)
    assert (done.done, done.new) == (True, [])
    cov = delivery.coverage(CRI, loaded, home)
    assert cov.loaded and cov.observations > 0 and "loaded" in cov.message()
    missing = delivery.coverage(CRI, _period(CRI, "2026-06-01", "2026-07-01"), home)
    assert not missing.loaded and "NOT LOADED" in missing.message()


# ---------------------------------------------------------------------------- alerts


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        length = int(self.headers["Content-Length"])
        _Hook.received.append((self.path, json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def webhook():
    _Hook.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], _Hook.received
    server.shutdown()
    server.server_close()


def _run(period_start="2025-01-01T00:00:00+00:00", period_end="2026-01-01T00:00:00+00:00"):
    return {
        "dag_run": {
            "dag_id": f"omh_{DARIEN}",
            "dag_run_id": "scheduled__2026-01-01T00:00:00+00:00",
            "data_interval_start": period_start,
            "data_interval_end": period_end,
        },
        "deadline": {"deadline_time": "2026-02-01T00:00:00+00:00"},
    }


def test_the_deadline_callback_writes_the_alert_and_sends_it_through_a_webhook_connection(
    tmp_path, monkeypatch, webhook
):
    port, received = webhook
    monkeypatch.setenv("OMH_HOME", str(tmp_path))
    monkeypatch.setenv("OMH_ALERT_CONN_ID", "omh_test_hook")
    monkeypatch.setenv(
        "AIRFLOW_CONN_OMH_TEST_HOOK",
        json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "slack/hook"}),
    )
    output = asyncio.run(
        alerts.delivery_missed(
            source_id=DARIEN,
            reporter_iso3="PAN",
            lag_months=1,
            due_day=31,
            frequency="yearly",
            context=_run(),
        )
    )
    # Airflow stores the callback's return value in a text column.
    assert isinstance(output, str) and "webhook omh_test_hook: HTTP 200" in output
    (alert,) = alerts.read_alerts(tmp_path)
    assert alert["period"] == "2025" and alert["due_date"] == "2026-01-31"
    assert alert["message"].startswith(
        "PAN: the yearly file of 2025 for source pan_darien_yearly was due on 2026-01-31"
    )
    ((path, body),) = received
    assert path == "/slack/hook" and body["text"] == alert["message"]
    (written,) = alerts.read_alerts(tmp_path)
    assert written["run_id"] == "scheduled__2026-01-01T00:00:00+00:00"
    assert any(s.startswith("webhook omh_test_hook: HTTP 200") for s in written["sent"])


def test_without_a_connection_the_alert_goes_to_the_file_and_the_log(tmp_path, monkeypatch):
    monkeypatch.setenv("OMH_HOME", str(tmp_path))
    monkeypatch.setenv("OMH_ALERT_CONN_ID", "omh_no_such_connection")
    output = asyncio.run(
        alerts.delivery_missed(source_id=DARIEN, reporter_iso3="PAN", due_day=31, context=_run())
    )
    assert isinstance(output, str)
    (alert,) = alerts.read_alerts(tmp_path)
    assert alert["sent"] == [f"file {tmp_path / 'alerts.jsonl'}"] and alert["period"] == "2025"
    # A callback run twice (a triggerer restarted while running it) alerts once.
    again = asyncio.run(
        alerts.delivery_missed(source_id=DARIEN, reporter_iso3="PAN", due_day=31, context=_run())
    )
    assert again.startswith("already given") and len(alerts.read_alerts(tmp_path)) == 1


def test_webhook_urls_of_slack_and_plain_connections():
    slack = SimpleNamespace(
        conn_id="s", conn_type="slackwebhook", host=None, port=None, schema=None, password="T0/B0/X"
    )
    assert alerts.webhook_url(slack) == "https://hooks.slack.com/services/T0/B0/X"
    full = SimpleNamespace(
        conn_id="f",
        conn_type="http",
        host="ignored",
        port=None,
        schema=None,
        password="https://example.org/h",
    )
    assert alerts.webhook_url(full) == "https://example.org/h"
    plain = SimpleNamespace(
        conn_id="p", conn_type="https", host="chat.local", port=8443, schema="in/x", password=None
    )
    assert alerts.webhook_url(plain) == "https://chat.local:8443/in/x"


def test_an_email_connection_needs_recipients():
    conn = SimpleNamespace(
        conn_id="m", conn_type="smtp", host="localhost", port=25, login=None, password=None, extra="{}"
    )
    with pytest.raises(ValueError, match="no recipients"):
        alerts.send_alert({"message": "x"}, conn)


# ---------------------------------------------------------------------------- the Observatory's data


def test_overview_names_the_23_member_states_and_what_each_delivered(home):
    alerts.write_alert(
        alerts.delivery_alert(
            source_id=CRI,
            reporter_iso3="CRI",
            dag_id=f"omh_{CRI}",
            run_id="r1",
            data_interval_start="2024-06-01",
            data_interval_end="2024-07-01",
            lag_months=1,
            due_day=15,
        ),
        home,
    )
    alerts.write_alert(
        alerts.delivery_alert(
            source_id=DARIEN,
            reporter_iso3="PAN",
            dag_id=f"omh_{DARIEN}",
            run_id="r2",
            data_interval_start="2025-01-01",
            data_interval_end="2026-01-01",
            lag_months=1,
            due_day=31,
        ),
        home,
    )
    data = observatory.overview(home, months=36)
    grid = data["completeness"]
    assert [c["iso3"] for c in grid["countries"]] == [m["iso3"] for m in codelists.members()]
    assert len(grid["countries"]) == 23 and len(grid["months"]) <= 36
    statuses = {cell["status"] for c in grid["countries"] for cell in c["cells"]}
    assert statuses <= set(observatory.STATUSES) and "missing" in statuses
    cri = next(c for c in grid["countries"] if c["iso3"] == "CRI")
    assert {cell["status"] for cell in cri["cells"]} & {"loaded", "warnings", "late"}
    assert any(s["source_id"] == CRI for cell in cri["cells"] for s in cell["sources"])

    validations = {v["source_id"]: v for v in data["validations"]}
    assert set(validations) == set(load_contracts())
    assert validations[CRI]["status"] in ("loaded", "warnings") and validations[CRI]["report"].startswith(
        f"{CRI}/"
    )
    assert (settings(home).reports / validations[CRI]["report"]).is_file()
    assert validations[DARIEN]["status"] == "refused" and "Atlantis" in validations[DARIEN]["reason"]
    assert validations["mex_upm_eventos_irregulares"]["status"] == "no_file"

    (label,) = [u for u in data["unmapped"] if u["label"] == "Atlantis"]
    assert (label["source_id"], label["state"], label["rows"]) == (DARIEN, "open", [2])

    by_source = {a["source_id"]: a for a in data["alerts"]}
    assert by_source[CRI]["resolved"] is True  # its figures are loaded now
    assert by_source[DARIEN]["resolved"] is False


def test_the_page_shows_the_grid_the_reports_and_the_labels(home):
    from omh_observatory.app import render_page

    page = render_page(observatory.overview(home, months=12))
    assert page.count('<tr class="country"') == 23
    for member in codelists.members():
        assert f'data-iso3="{member["iso3"]}"' in page
    assert f'href="reports/{CRI}/' in page
    assert "<code>Atlantis</code>" in page


def test_the_grid_without_a_warehouse_still_names_every_member(tmp_path):
    data = observatory.overview(tmp_path / "nothing", months=6)
    assert data["warehouse_ready"] is False
    assert len(data["completeness"]["countries"]) == 23
    assert {cell["status"] for c in data["completeness"]["countries"] for cell in c["cells"]} == {"unknown"}


def test_snapshot_for_a_busy_warehouse(home):
    path = observatory.write_snapshot(home)
    assert path.name == observatory.SNAPSHOT
    assert len(observatory.read_snapshot(home)["completeness"]["countries"]) == 23


# ---------------------------------------------------------------------------- lineage


def test_a_load_names_its_landing_file_lake_leaves_and_warehouse_tables(home):
    from transforms.ingest.landing import discover
    from transforms.ingest.results import IngestResult
    from transforms.ops.lineage import load_datasets

    cfg = settings(home)
    (loaded,) = [f for f in discover(CRI, home) if f["loaded"]]
    result = IngestResult(CRI, loaded["file"], loaded["sha256"], "loaded", rows=10)
    datasets = load_datasets(CRI, loaded["path"], result, home)
    assert datasets["inputs"] == [{"namespace": "file", "name": str(cfg.landing / "CRI" / loaded["file"])}]
    namespace = f"duckdb://{cfg.duckdb_path}"
    assert {"namespace": namespace, "name": "main.fact_flow", "rows": 10} in datasets["outputs"]
    leaves = [d["name"] for d in datasets["outputs"] if d["namespace"] == "file"]
    assert leaves and all("/lake/reporter_iso3=CRI/year=2024/" in name for name in leaves)
    assert all(Path(name).is_file() for name in leaves)

    refused = IngestResult(DARIEN, "x.csv", "0" * 64, "refused")
    out = load_datasets(DARIEN, "/landing/PAN/x.csv", refused, home)["outputs"]
    assert {d["name"] for d in out} == {"main.file_manifest", "main.dq_result"}


# ---------------------------------------------------------------------------- omh airflow


def test_make_airflow_seeds_an_empty_landing_zone_only(tmp_path):
    from transforms.tools.demo import seed_landing

    home = tmp_path / "home"
    note = seed_landing(home)
    assert "landed 23 sample file(s)" in note, note
    landed = sorted(
        p.relative_to(settings(home).landing) for p in settings(home).landing.rglob("*") if p.is_file()
    )
    assert len(landed) >= 23 + 5
    (settings(home).landing / "PAN" / "extra.csv").write_text("x\n")
    assert "left as it is" in seed_landing(home)


def test_the_admin_password_comes_from_the_environment_or_is_generated_once(tmp_path, monkeypatch):
    from transforms.ops.airflow_env import ADMIN_USER, admin_password, passwords_file

    monkeypatch.delenv("OMH_AIRFLOW_PASSWORD", raising=False)
    generated, origin = admin_password(tmp_path)
    assert len(generated) >= 12 and origin.startswith("generated")
    assert admin_password(tmp_path) == (generated, f"kept in {passwords_file(tmp_path)}")
    monkeypatch.setenv("OMH_AIRFLOW_PASSWORD", "chosen")
    assert admin_password(tmp_path) == ("chosen", "OMH_AIRFLOW_PASSWORD")
    # The file SimpleAuthManager reads ([core] simple_auth_manager_passwords_file), private.
    assert json.loads(passwords_file(tmp_path).read_text()) == {ADMIN_USER: "chosen"}
    assert passwords_file(tmp_path).stat().st_mode & 0o077 == 0


def test_the_airflow_environment_configures_auth_lineage_and_ports(tmp_path, monkeypatch):
    from transforms.ops.airflow_env import airflow_env, lineage_file, passwords_file

    monkeypatch.setenv("OMH_AIRFLOW_PORT", "18080")
    env = airflow_env(tmp_path)
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:18080"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == "18081"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(passwords_file(tmp_path))
    transport = json.loads(env["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert transport == {"type": "file", "log_file_path": str(lineage_file(tmp_path)), "append": True}
    monkeypatch.delenv("OMH_AIRFLOW_PORT")
    assert "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT" not in airflow_env(tmp_path)  # 8080: Airflow's own


def _grid_at(home, day: dt.date, months: int = 24) -> dict:
    from transforms.storage.warehouse import Warehouse

    with observatory_clock(day.isoformat()):
        with Warehouse(settings(home)) as wh:
            wh.ensure_schema(load_contracts())  # what every load does: the calendar up to the clock
        return observatory.overview(home, months=months)["completeness"]


def test_the_grid_follows_the_observatory_clock_not_the_day_the_suite_runs(home):
    pinned = dt.date.fromisoformat(SAMPLES_CLOCK)
    seen = set()
    for day in (pinned, pinned.replace(year=pinned.year + 1)):  # and with the clock a year ahead
        grid = _grid_at(home, day)
        assert len(grid["months"]) == 24 and grid["months"][-1] == f"{day:%Y-%m}"
        cells = next(g for g in grid["countries"] if g["iso3"] == "CRI")["cells"]
        loaded = {c["month"] for c in cells if c["status"] in ("loaded", "warnings", "late")}
        assert loaded == {m for m in grid["months"] if m.startswith("2024-")}, (day, cells)
        # After the samples: a month whose file was due before the clock's date is missing, one
        # due after it is not due yet, by the clock, whatever the day the suite runs.
        later = [c for c in cells if c["month"] >= "2025-01"]
        for c in later:
            due = max(dt.date.fromisoformat(s["due_date"]) for s in c["sources"])
            assert c["status"] == ("missing" if due < day else "not_due"), (day, c)
        seen |= {c["status"] for c in later}
    assert seen == {"missing", "not_due"}
    assert _grid_at(home, pinned)["months"][-1] == SAMPLES_CLOCK[:7]  # the module's home as it was
