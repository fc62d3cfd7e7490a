"""Faults injected for real: a load SIGKILLed midway, a PostgreSQL connection terminated by the server.

Nothing is mocked. ``omh ingest`` of a large CBP release (193,600 observations, 17 MB, read by the
Arrow fast path with its canonical observations in a Parquet file: OMH_FAST_CSV_BYTES and
OMH_CANON_PARQUET) runs as a child process on a copy of a warehouse that publishes the real Darién and
CBP files, and is killed with SIGKILL at several points: while it checks the file (once it is read),
inside the warehouse transaction and during the lake write (by the progress marks the pipeline
writes to ``$OMH_HOME/logs/omh.log``, plus a delay). After each kill the published figures are
either the previous ones or the new ones, never a mix (the new ones only once the load's copy of
the warehouse was published, after its lake write: decision 0007); before the commit, the lake is
byte for byte what it was. The rerun then completes, with no duplicate observation, and ``omh verify``
passes. The kill points run two at a time (2 cores), each on its own copy of the warehouse and
with a temporary directory of its own, beside a complete load of the release on another copy; all
in the background from the start of the session, beside the other tests (tests/background.py).

On PostgreSQL a thread terminates the load's backend (``pg_terminate_backend``) while its COPY
runs, while it waits at its manifest write (held there by a table lock), or while it sits idle
between statements: the warehouse reconnects and reruns the statement or the file's whole load
(with retries off, the transaction dies with the connection and nothing of the file is
published). A cancelled statement (``pg_cancel_backend``) is an error, not a lost connection: it
is not retried.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import hostile_corpus as hc
import pytest
from background import BACKGROUND, job

COPIES = 100  # the large release: 100 rows per real CBP row
KEY = (
    "source_id, reporter_iso3, flow_type, citizenship_iso3, counterpart_iso3, period_start, period_end, "
    "sex, age_band, unit, detail"
)


def write_release(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "usa_cbp_sbo-encounters-fy22-fy25-revised.csv"
    path.write_bytes(hc.cbp_release(COPIES))
    return path


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return write_release(tmp_path_factory.mktemp("release"))


def _marks(log: Path, start: int) -> str:
    if not log.exists():
        return ""
    with log.open("rb") as fh:
        fh.seek(start)
        return fh.read().decode("utf-8", "replace")


def _kill_at(cmd, env, log: Path, marker: str | None, delay_ms: int, cwd: Path) -> dict:
    """Run ``cmd``; SIGKILL it ``delay_ms`` after ``marker`` appears in the log (or after start)."""
    start = log.stat().st_size if log.exists() else 0
    with open(cwd / "out.txt", "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        seen = None
        while proc.poll() is None:
            if seen is None and (marker is None or marker in _marks(log, start)):
                seen = time.monotonic()
            if seen is not None and (time.monotonic() - seen) * 1000 >= delay_ms:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        rc = proc.wait()
    return {
        "rc": rc,
        "killed": rc == -signal.SIGKILL,
        "after_s": time.monotonic() - t0,
        "log": _marks(log, start),
        "pid": proc.pid,
    }


def _scratch_of(pid: int, home: Path, tmp: Path) -> list[Path]:
    """The scratch folders of process ``pid`` (staging and canonical Parquet, DuckDB spill) under
    its OMH_HOME and its temporary directory (``TMPDIR``)."""
    from transforms.scratch import SPILL, owner_name

    name = owner_name(pid)
    bases = [home / "tmp", tmp]
    return [p for b in bases for p in (b / name, b / SPILL / name) if p.exists()]


def _duplicates(home: Path) -> int:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(
            f"SELECT count(*) FROM (SELECT {KEY} FROM fact_flow GROUP BY ALL HAVING count(*) > 1)"
        ).fetchall()[0][0]
    finally:
        con.close()


COMMITTED = "warehouse committed"
# The writer's copy renamed over the published warehouse (transforms/storage/writelock.py).
PUBLISHED = "warehouse.duckdb: published"
LOADING = "warehouse load of"
EXTRACTED = "extract took"  # the mark of the extract step: the file is read, its checks run next
KILL_POINTS = [
    ("checking", EXTRACTED, 0),
    ("transaction+0ms", LOADING, 0),
    ("transaction+250ms", LOADING, 250),
    ("lake+0ms", COMMITTED, 0),
    ("lake+250ms", COMMITTED, 250),
]
WHERE_KILLED: dict[str, str] = {}  # label -> phase the kill landed in
WORKERS = 2  # kill points run two at a time (2 cores), each on its own copy and TMPDIR


@dataclass
class Killed:
    """What one kill point saw: after the kill, then after the rerun."""

    kill: dict
    home: Path
    left: list[Path]  # the killed run's scratch folders right after the kill
    left_names: list[str]  # the files in them
    figures: tuple
    lake_before: dict
    lake_after: dict
    duplicates: int
    rerun: hc.Run
    left_after_rerun: list[Path]
    figures_after_rerun: tuple
    duplicates_after_rerun: int
    verify: hc.Run
    shadows_after_rerun: list[Path]  # writers' copies of the warehouse still there


def _kill_point(marker, delay_ms, published: Path, release: Path, pycache: Path, work: Path) -> Killed:
    home, tmp = work / "home", work / "tmp"
    shutil.copytree(published, home)
    tmp.mkdir()
    lake_before = hc.lake_state(home)
    # The Arrow fast path and a canonical Parquet file: scratch files exist while the load runs.
    # TMPDIR of its own: another kill point's rerun sweeps only its own temporary directory.
    env = hc.omh_env(home, pycache, OMH_FAST_CSV_BYTES=str(1 << 20), OMH_CANON_PARQUET="1", TMPDIR=str(tmp))
    omh = str(Path(sys.executable).parent / "omh")
    cmd = [omh, "ingest", str(release), "--source", "usa_cbp_swb_encounters"]

    kill = _kill_at(cmd, env, home / "logs" / "omh.log", marker, delay_ms, work)
    left = _scratch_of(kill["pid"], home, tmp)
    names = [f.name for d in left for f in d.iterdir()]
    figures, lake_after, duplicates = hc.figures(home), hc.lake_state(home), _duplicates(home)

    rerun = hc.run_omh(cmd[1:], env, work / "rerun")
    left_after_rerun = _scratch_of(kill["pid"], home, tmp)
    figures_after_rerun, duplicates_after_rerun = hc.figures(home), _duplicates(home)
    verify = hc.run_omh(["verify"], env, work / "verify")
    shadows = sorted(home.glob(".warehouse.duckdb.shadow-*"))
    return Killed(
        kill, home, left, names, figures, lake_before, lake_after, duplicates,
        rerun, left_after_rerun, figures_after_rerun, duplicates_after_rerun, verify, shadows,
    )  # fmt: skip


@dataclass
class Kills:
    v1: tuple  # the published figures
    v2: tuple  # the figures once the release is loaded whole
    points: dict[str, Killed]


@job("kills")
def run_kills(published: Path, pycache: Path, root: Path) -> Kills:
    """Every kill point (kill, look, rerun, look, verify), and a complete load of the release on
    another copy (the figures a load gives, read by the plain reader), two at a time; in the
    background (tests/background.py), beside the other tests."""
    release = write_release(root / "release")
    v1 = hc.figures(published)

    def full_load() -> tuple:
        home = root / "full" / "home"
        shutil.copytree(published, home)
        run = hc.run_omh(
            ["ingest", str(release), "--source", "usa_cbp_swb_encounters"],
            hc.omh_env(home, pycache),
            root / "w",
        )
        assert run.rc == 0, run.output
        return hc.figures(home)

    with ThreadPoolExecutor(WORKERS) as pool:
        full = pool.submit(full_load)
        points = {
            label: pool.submit(_kill_point, marker, delay_ms, published, release, pycache, root / f"kill{i}")
            for i, (label, marker, delay_ms) in enumerate(KILL_POINTS)
        }
        v2 = full.result()
        points = {label: future.result() for label, future in points.items()}
    assert v2 != v1 and v2[0][0] == 28 + 1936 * COPIES, (v1, v2)
    return Kills(v1, v2, points)


@pytest.fixture(scope="module")
def kills(tmp_path_factory) -> Kills:
    """What the kill points saw (``run_kills``, started in the background with the session)."""
    return BACKGROUND.result("kills", tmp_path_factory)


@pytest.mark.slow
@pytest.mark.parametrize("label", [k[0] for k in KILL_POINTS])
def test_sigkill_midway_keeps_figures_and_rerun_completes(label, kills):
    v1, v2, k = kills.v1, kills.v2, kills.points[label]
    kill = k.kill
    assert kill["killed"], (
        f"{label}: the load finished before the kill ({kill['after_s']:.1f} s): make it larger"
    )
    committed = COMMITTED in kill["log"]
    WHERE_KILLED[label] = "lake" if committed else ("transaction" if LOADING in kill["log"] else "check")
    # Killed in the transaction: the file's work database (with its staging table) and its
    # canonical Parquet are still there.
    if WHERE_KILLED[label] == "transaction":
        assert any(n.startswith("_omh_work_") and n.endswith(".duckdb") for n in k.left_names), (
            label,
            k.left_names,
        )
        assert any(n.startswith("_omh_canon_") for n in k.left_names), (label, k.left_names)
        assert any(d.parent.name == "omh-duckdb-spill" for d in k.left), (label, k.left)
    # All or nothing: the previous figures, or (killed once its copy was published) the new ones.
    published = PUBLISHED in kill["log"]
    assert k.figures == (v2 if published else v1), f"{label}: figures are neither the old nor the new ones"
    if not committed:
        assert k.lake_after == k.lake_before, f"{label}: the lake changed before the commit"
    assert k.duplicates == 0

    assert k.rerun.rc == 0 and "Traceback" not in k.rerun.output, k.rerun.output
    assert k.left_after_rerun == [], "the killed run's scratch files are still there"
    assert k.shadows_after_rerun == [], "the killed writer's copy of the warehouse is still there"
    assert k.figures_after_rerun == v2
    assert k.duplicates_after_rerun == 0
    assert k.verify.rc == 0 and "agree" in k.verify.stdout, k.verify.output


def test_scratch_of_live_processes_is_kept_and_of_dead_ones_removed(tmp_path):
    """The sweep removes the folders of dead processes of this host only: never one of a live
    process (a real one, sleeping), of this process, or of another host."""
    from transforms import scratch

    base = tmp_path / "tmp"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        folders = {
            "live": base / scratch.owner_name(sleeper.pid),
            "self": scratch.process_dir(base),
            "dead": base / scratch.owner_name(dead.pid),
            "dead spill": base / scratch.SPILL / scratch.owner_name(dead.pid),
            "other host": base / f"omh-elsewhere-{dead.pid}",
        }
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "_omh_stage_1_1.parquet").write_bytes(b"x")
        loose_old = base / f"_omh_canon_{dead.pid}_3.parquet"
        loose_new = base / f"_omh_stage_{dead.pid}_4.parquet"
        for f in (loose_old, loose_new):
            f.write_bytes(b"x")
        day_ago = time.time() - scratch.LOOSE_FILE_AGE_S - 60
        os.utime(loose_old, (day_ago, day_ago))

        removed = scratch.sweep(base)
        assert sorted(removed) == sorted([folders["dead"], folders["dead spill"], loose_old])
        assert all(folders[k].exists() for k in ("live", "self", "other host")) and loose_new.exists()
        sleeper.kill()
        sleeper.wait()
        assert scratch.sweep(base) == [folders["live"]]
    finally:
        sleeper.kill()
        sleeper.wait()


# ---------------------------------------------------------------------------- PostgreSQL


@contextlib.contextmanager
def _pg_role_schema():
    """A fresh schema and a login role of its own (so that exactly its backends can be found)."""
    import psycopg
    from psycopg import sql
    from test_warehouse import PG_URL, postgres_schema

    with postgres_schema() as url:
        role = f"omh_fault_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_URL, autocommit=True) as con:
            con.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(sql.Identifier(role)))
        try:
            yield url.replace("://postgres@", f"://{role}@", 1), role
        finally:
            with psycopg.connect(PG_URL, autocommit=True) as con:
                con.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role]
                )
                con.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                con.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


class Terminator(threading.Thread):
    """Terminates the role's backend once: as soon as it runs a statement matching ``pattern``,
    or (``pattern`` None) once it has been idle for half a second (between two statements)."""

    def __init__(self, role: str, pattern: str | None):
        super().__init__(daemon=True)
        self.role, self.pattern = role, pattern
        self.terminated: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg
        from test_warehouse import PG_URL

        if self.pattern is None:
            where, params = "state = 'idle' AND now() - state_change > interval '0.5 seconds'", []
        else:
            where, params = "state = 'active' AND query ILIKE %s", [self.pattern]
        with psycopg.connect(PG_URL, autocommit=True) as con:
            while not self.stop.is_set():
                rows = con.execute(
                    f"SELECT pid, query FROM pg_stat_activity WHERE usename = %s AND {where}",
                    [self.role, *params],
                ).fetchall()
                if rows:
                    pid, query = rows[0]
                    con.execute("SELECT pg_terminate_backend(%s)", [pid])
                    self.terminated.append(query[:80])
                    return
                time.sleep(0.01)


def _pg_env(monkeypatch, tmp_path: Path, url: str) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("OMH_HOME", str(home))
    monkeypatch.setenv("OMH_WAREHOUSE_URL", url)
    return home


def _pg_figures(url: str) -> tuple:
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        total = con.execute("SELECT count(*), sum(value) FROM fact_flow").fetchone()
        dups = con.execute(
            f"SELECT count(*) FROM (SELECT {KEY} FROM fact_flow GROUP BY {KEY} HAVING count(*) > 1) d"
        ).fetchone()
        return tuple(total), dups[0]


RETRY_LOG = "PostgreSQL connection lost during"


def _retries(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(RETRY_LOG)]


@pytest.mark.postgres
@pytest.mark.slow
def test_terminated_backend_mid_copy_is_retried_whole(monkeypatch, tmp_path, release, caplog):
    """The backend dies while the file's COPY streams (the observations half read): the warehouse
    reconnects and reruns the file's whole load in the same call, reading the observations again."""
    from transforms.ingest.pipeline import ingest_file

    caplog.set_level("WARNING", logger="omh.warehouse")
    with _pg_role_schema() as (url, role):
        _pg_env(monkeypatch, tmp_path, url)
        assert ingest_file(hc.DARIEN, "pan_darien_yearly").status == "loaded"
        killer = Terminator(role, "COPY fact_flow%FROM STDIN%")  # a first load: straight into the facts
        killer.start()
        try:
            result = ingest_file(release, "usa_cbp_swb_encounters")
        finally:
            killer.stop.set()
            killer.join(10)
        assert killer.terminated, "the load's COPY was never seen running"
        assert killer.terminated[0].startswith("COPY fact_flow ("), killer.terminated  # not a dimension
        assert result.status == "loaded", result.reason
        retries = _retries(caplog)
        assert len(retries) == 1 and "the load of usa_cbp_sbo-encounters" in retries[0], retries
        assert "AdminShutdown" in retries[0] or "closed" in retries[0], retries
        (count, total), dups = _pg_figures(url)
        assert count == 28 + 1936 * COPIES and dups == 0
        from transforms.storage.verify import verify

        assert verify().ok


class Blocker:
    """Holds an EXCLUSIVE lock on ``file_manifest`` (reads pass, writes wait), so a load stops at
    its manifest write, late in its transaction, after its observations are merged into
    ``fact_flow``. A thread then ``action``s (``pg_terminate_backend`` or ``pg_cancel_backend``) the
    role's backend waiting there, once, and releases the lock."""

    def __init__(self, url: str, role: str, action: str):
        import psycopg

        self.role, self.action = role, action
        self.con = psycopg.connect(url)  # not autocommit: the lock lasts until commit
        self.con.execute("LOCK TABLE file_manifest IN EXCLUSIVE MODE")
        self.hit: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import psycopg
        from psycopg import sql
        from test_warehouse import PG_URL

        try:
            with psycopg.connect(PG_URL, autocommit=True) as con:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    rows = con.execute(
                        "SELECT pid, query FROM pg_stat_activity WHERE usename = %s AND wait_event_type = 'Lock' "
                        "AND query ILIKE 'DELETE FROM file_manifest%%'",
                        [self.role],
                    ).fetchall()
                    if rows:
                        con.execute(
                            sql.SQL("SELECT {}(%s)").format(sql.Identifier(self.action)), [rows[0][0]]
                        )
                        self.hit.append(rows[0][1][:80])
                        return
                    time.sleep(0.01)
        finally:
            self.con.commit()  # release the lock whatever happened

    def join(self) -> None:
        self.thread.join(70)
        self.con.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_terminated_backend_late_in_the_transaction_loads_nothing(monkeypatch, tmp_path):
    """Retries off: the backend dies after the file's observations are in ``fact_flow`` but before
    the commit; the figures are the previous ones, and a rerun (Airflow's task retry) loads it."""
    from transforms.ingest.pipeline import ingest_file
    from transforms.storage.warehouse import PostgresWarehouse

    with _pg_role_schema() as (url, role):
        _pg_env(monkeypatch, tmp_path, url)
        assert ingest_file(hc.DARIEN, "pan_darien_yearly").status == "loaded"
        before = _pg_figures(url)
        monkeypatch.setattr(PostgresWarehouse, "RETRY_ATTEMPTS", 1)
        blocker = Blocker(url, role, "pg_terminate_backend")
        try:
            with pytest.raises(Exception) as failed:
                ingest_file(hc.CBP, "usa_cbp_swb_encounters")
        finally:
            blocker.join()
        assert blocker.hit, "the load never reached its manifest write"
        assert "terminating connection" in str(failed.value) or "closed" in str(failed.value), failed.value
        assert _pg_figures(url) == before, "a terminated load left part of the file behind"
        monkeypatch.undo()
        _pg_env(monkeypatch, tmp_path, url)
        assert ingest_file(hc.CBP, "usa_cbp_swb_encounters").status == "loaded"
        (count, _), dups = _pg_figures(url)
        assert count == 28 + 1936 and dups == 0


@pytest.mark.postgres
@pytest.mark.slow
def test_an_error_that_is_not_a_lost_connection_is_not_retried(monkeypatch, tmp_path, caplog):
    """A cancelled statement (``pg_cancel_backend``: an OperationalError, but the connection lives)
    fails the load at once, with no reconnection and nothing published."""
    import psycopg

    from transforms.ingest.pipeline import ingest_file

    caplog.set_level("WARNING", logger="omh.warehouse")
    with _pg_role_schema() as (url, role):
        _pg_env(monkeypatch, tmp_path, url)
        assert ingest_file(hc.DARIEN, "pan_darien_yearly").status == "loaded"
        before = _pg_figures(url)
        blocker = Blocker(url, role, "pg_cancel_backend")
        try:
            with pytest.raises(psycopg.errors.QueryCanceled):
                ingest_file(hc.CBP, "usa_cbp_swb_encounters")
        finally:
            blocker.join()
        assert blocker.hit
        assert _retries(caplog) == []
        assert _pg_figures(url) == before


@pytest.mark.postgres
@pytest.mark.slow
def test_dropped_connection_is_retried_by_the_warehouse(monkeypatch, tmp_path, caplog):
    """The server drops the connection between statements: the warehouse reconnects and the same
    call completes (no task-level retry needed)."""
    from transforms.ingest.pipeline import ingest_file

    caplog.set_level("WARNING", logger="omh.warehouse")
    with _pg_role_schema() as (url, role):
        _pg_env(monkeypatch, tmp_path, url)
        assert ingest_file(hc.DARIEN, "pan_darien_yearly").status == "loaded"
        # Terminate the load's connection while it sits idle (the file is being checked).
        killer = Terminator(role, None)
        killer.start()
        try:
            result = ingest_file(hc.CBP, "usa_cbp_swb_encounters")
        finally:
            killer.stop.set()
            killer.join(10)
        assert killer.terminated
        assert result.status == "loaded"
        retries = _retries(caplog)
        assert len(retries) == 1 and "AdminShutdown: terminating connection" in retries[0], retries
        (count, _), dups = _pg_figures(url)
        assert count == 28 + 1936 and dups == 0


@pytest.mark.slow
@pytest.mark.usefixtures("kills")  # runs with the SIGKILL tests, after them (conftest.py orders by fixture)
def test_kills_landed_in_every_phase():
    """The kills above hit the check, the warehouse transaction and the lake write (run after them)."""
    if len(WHERE_KILLED) < len(KILL_POINTS):
        pytest.skip("the SIGKILL tests did not all run")
    assert set(WHERE_KILLED.values()) == {"check", "transaction", "lake"}, WHERE_KILLED
