"""One real Airflow for the slow tests: ``omh airflow`` (standalone) on a small, partly loaded OMH_HOME.

Started once per test session by the ``airflow_server`` fixture (tests/conftest.py), the way an
engineer starts it (``make airflow`` runs the same command), on free loopback ports so that a
``make airflow`` already running on 8080 is not disturbed, and stopped at the end of the session.

The home it serves:
* landing/PAN/ holds the real Darién file, not loaded: the e2e test has Airflow's scheduler load it;
* two member states' sample files are loaded beforehand (the completeness grid has colours);
* one refused file with an unknown label (the Observatory lists it as an open unmapped label).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from transforms.config import DATA_DIR
from transforms.contracts.loading import get_contract

PASSWORD = "omh-test-pw"
E2E_SOURCE = "pan_darien_yearly"
E2E_FILE = DATA_DIR / "realdata" / "raw" / "panama_darien_2019-2022_by_nationality_derived.csv"
PRELOADED = ("cri_dgme_entradas_extranjeros", "mex_upm_eventos_irregulares")
# Short enough for a test to see a Deadline Alert fire, long enough for a run to finish first.
DEADLINE_GRACE_SECONDS = 40
START_TIMEOUT = 300


def free_port_block(width: int = 3) -> int:
    """A port p with p .. p+width-1 all free on 127.0.0.1 (API server and the two log servers)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + width > 65535:
            continue
        ok = True
        for p in range(port, port + width):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no free block of ports")


# The observatory's date in the test homes (transforms.config.today): the sample files cover 2024,
# and the completeness grid shows the 24 months up to this date, whatever the day the suite runs.
SAMPLES_CLOCK = "2025-03-20"


@contextlib.contextmanager
def observatory_clock(day: str = SAMPLES_CLOCK):
    """Pin the observatory's date (OMH_TODAY) in this process for the duration of the block."""
    before = os.environ.get("OMH_TODAY")
    os.environ["OMH_TODAY"] = day
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OMH_TODAY", None)
        else:
            os.environ["OMH_TODAY"] = before


def prepare_home(home: Path) -> None:
    """Land and preload the small OMH_HOME described above (in this process, read by Airflow later)."""
    with observatory_clock():
        _prepare_home(home)


def _prepare_home(home: Path) -> None:
    from transforms.config import settings
    from transforms.ingest.landing import source_files
    from transforms.ingest.pipeline import ingest_file
    from transforms.tools.samples import write_samples

    cfg = settings(home).ensure()
    landing = cfg.landing / get_contract(E2E_SOURCE).landing.folder
    landing.mkdir(parents=True, exist_ok=True)
    shutil.copy2(E2E_FILE, landing / E2E_FILE.name)

    samples = home / "samples"
    write_samples(samples)
    for source_id in PRELOADED:
        contract = get_contract(source_id)
        folder = cfg.landing / contract.landing.folder
        folder.mkdir(parents=True, exist_ok=True)
        for path in (samples / contract.landing.folder).iterdir():
            shutil.copy2(path, folder / path.name)
        for path in source_files(contract, cfg):
            result = ingest_file(path, source_id, home)
            assert result.status == "loaded", result
    shutil.rmtree(samples)

    # Refused for an unknown citizenship label; kept outside the landing zone so that the e2e run
    # of the same source does not pick it up.
    outside = home / "outside"
    outside.mkdir()
    bad = outside / "darien_2023_atlantis.csv"
    bad.write_text("toShow,year,total\nAtlantis,2023,5\nColombia,2023,7\n", encoding="utf-8")
    result = ingest_file(bad, E2E_SOURCE, home)
    assert result.status == "refused", result


@dataclass
class AirflowServer:
    home: Path
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---------------------------------------------------------------- HTTP

    def request(self, method: str, path: str, body=None, token: str | None = None, timeout: float = 30):
        """(status, parsed JSON or text) of one request; HTTP errors are returned, not raised."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def token(self, username: str = "admin", password: str = PASSWORD) -> str:
        status, body = self.request("POST", "/auth/token", {"username": username, "password": password})
        assert status in (200, 201), (status, body)
        return body["access_token"]

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    # ---------------------------------------------------------------- life cycle

    def wait_ready(self, expected_dags: int, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"omh airflow exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                token = self.token()
                status, body = self.request("GET", "/api/v2/dags?limit=200", token=token)
                last = (status, body if status != 200 else body.get("total_entries"))
                if status == 200 and body["total_entries"] >= expected_dags:
                    return
            except (OSError, AssertionError, KeyError) as exc:
                last = exc
            time.sleep(1)
        raise RuntimeError(f"Airflow not ready after {timeout}s (last: {last}):\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to `omh airflow`, which stops standalone and every component it started (its
        own process group); SIGKILL to this one's group if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=75)
            except subprocess.TimeoutExpired:
                pass
        if _group_alive(self.process.pid):
            os.killpg(self.process.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def start(home: Path, expected_dags: int) -> AirflowServer:
    port = free_port_block()
    log_path = home.parent / "airflow-standalone.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "OMH_HOME": str(home),
            "OMH_AIRFLOW_PORT": str(port),
            "OMH_AIRFLOW_PASSWORD": PASSWORD,
            "OMH_DEADLINE_GRACE_SECONDS": str(DEADLINE_GRACE_SECONDS),
            "OMH_DISCOVER_POKE_SECONDS": "30",
            "OMH_TODAY": SAMPLES_CLOCK,
            # Parse new DAG files and files changed by a test quickly.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        }
    )
    omh = Path(sys.executable).parent / "omh"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(omh), "airflow"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = AirflowServer(home, port, process, log_path)
    try:
        server.wait_ready(expected_dags)
    except BaseException:
        server.stop()
        raise
    return server
