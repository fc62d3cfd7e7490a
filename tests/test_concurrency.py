"""Many hands on the embedded warehouse (transforms/storage/writelock.py, decision 0007).

Writers queue on an OS file lock and work on a private copy of the warehouse, renamed over the
published file when they finish; readers open the published file and never wait. Shown here with
real processes: three real files ingested at once give the figures of three loads one after the
other; queries in a loop during a 2 M-row load (the bench generator's file) all answer, with the
figures of before or after the load, never a mixture; a writer killed with SIGKILL leaves no lock
and the writer waiting behind it proceeds; a writer with no patience gets a plain message.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import hostile_corpus as hc
import pytest

from transforms.config import Settings
from transforms.storage import writelock
from transforms.storage.warehouse import Warehouse, open_for_reading

REPO = Path(__file__).resolve().parent.parent
RAW = REPO / "data" / "realdata" / "raw"
OMH = Path(sys.executable).parent / "omh"
THREE = [
    ("usa_cbp_swb_encounters", "usa_cbp_sbo-encounters-fy22-fy25-aug.csv"),
    ("col_entradas_extranjeros", "colombia_entradas_de_extranjeros_a_colombia_20250803.csv"),
    ("can_ircc_asylum_gender", "canada_ircc_EN_ODP-Asylum-PT_Gender.xlsx"),
]
# One statement: the facts and the manifest as one reader sees them (a mixture would show here).
STATE_SQL = (
    "SELECT (SELECT count(*) FROM fact_flow), (SELECT sum(value) FROM fact_flow), "
    "(SELECT count(*) FROM file_manifest WHERE status = 'loaded')"
)
PLAIN = ("PID", "duckdb.org", "IOException", "Conflicting lock")


def _settings(home: Path) -> Settings:
    return Settings(home=home, warehouse_url=f"duckdb:///{home / 'warehouse.duckdb'}")


def _figures(home: Path) -> dict:
    """Per source: facts, sum of values, files loaded; read as any analyst's tool would."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        facts = con.execute(
            "SELECT source_id, count(*), sum(value) FROM fact_flow GROUP BY 1 ORDER BY 1"
        ).fetchall()
        files = con.execute(
            "SELECT source_id, file_name, rows_loaded FROM file_manifest WHERE status = 'loaded' ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    return {"facts": facts, "files": files}


def _ingest(home: Path, pycache: Path, source: str, path: Path, stderr=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen(
        [str(OMH), "ingest", str(path), "--source", source],
        env=hc.omh_env(home, pycache),
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        cwd=home.parent,
    )


def _shadows(home: Path) -> list[Path]:
    return sorted(home.glob(".warehouse.duckdb.shadow-*"))


def _wait_for(what, timeout: float = 120, pause: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := what():
            return value
        time.sleep(pause)
    raise AssertionError(f"not seen within {timeout} s")


# ---------------------------------------------------------------------------- in one process


def test_a_reader_keeps_its_state_and_the_next_reader_sees_the_write(tmp_path):
    cfg = _settings(tmp_path)
    with Warehouse(cfg, purpose="the set-up") as wh:
        wh.execute("CREATE TABLE t AS SELECT 1 AS n")
    reader = open_for_reading(cfg)
    try:
        with Warehouse(cfg, purpose="a write") as wh:
            wh.execute("INSERT INTO t VALUES (2)")
            # Committed in the writer's copy, not yet published.
            assert reader.fetchall("SELECT sum(n) FROM t") == [(1,)]
            with open_for_reading(cfg) as other:
                assert other.fetchall("SELECT sum(n) FROM t") == [(1,)]
        assert reader.fetchall("SELECT sum(n) FROM t") == [(1,)]  # the state it opened
    finally:
        reader.close()
    with open_for_reading(cfg) as wh:
        assert wh.fetchall("SELECT sum(n) FROM t") == [(3,)]
    assert _shadows(tmp_path) == []
    assert not (tmp_path / "warehouse.duckdb.wal").exists()


def test_nested_writers_of_one_process_share_the_copy_and_the_last_publishes(tmp_path):
    cfg = _settings(tmp_path)
    with Warehouse(cfg) as outer:
        outer.execute("CREATE TABLE t AS SELECT 1 AS n")
        with Warehouse(cfg) as inner:  # joins: no wait for itself
            assert inner.fetchall("SELECT n FROM t") == [(1,)]
            inner.execute("INSERT INTO t VALUES (2)")
        assert not (tmp_path / "warehouse.duckdb").exists()  # the outer writer is still at work
        assert outer.fetchall("SELECT sum(n) FROM t") == [(3,)]
    with open_for_reading(cfg) as wh:
        assert wh.fetchall("SELECT sum(n) FROM t") == [(3,)]


def test_a_failed_write_keeps_what_it_committed_before(tmp_path):
    cfg = _settings(tmp_path)
    with pytest.raises(ZeroDivisionError), Warehouse(cfg) as wh:
        wh.execute("CREATE TABLE t AS SELECT 1 AS n")
        with wh.transaction():
            wh.execute("INSERT INTO t VALUES (2)")
            1 / 0  # noqa: B018  (a failure inside the second transaction)
    with open_for_reading(cfg) as wh:
        assert wh.fetchall("SELECT sum(n) FROM t") == [(1,)]


def test_a_log_left_beside_the_warehouse_by_an_older_writer_is_kept(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    # A writer that wrote in place and died before its checkpoint: its commits are in the log.
    script = (
        "import duckdb, os, sys; c = duckdb.connect(sys.argv[1]); "
        "c.execute('CREATE TABLE t AS SELECT 1 AS n'); c.execute('INSERT INTO t VALUES (2)'); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", script, str(db)], check=True)
    assert Path(f"{db}.wal").exists()
    cfg = _settings(tmp_path)
    with Warehouse(cfg) as wh:
        assert wh.fetchall("SELECT sum(n) FROM t") == [(3,)]
        wh.execute("INSERT INTO t VALUES (4)")
    assert not Path(f"{db}.wal").exists()
    with open_for_reading(cfg) as wh:
        assert wh.fetchall("SELECT sum(n) FROM t") == [(7,)]


# ---------------------------------------------------------------------------- the queue


_HOLDER = """
import sys
from pathlib import Path
from transforms.storage import writelock
writelock.begin(Path(sys.argv[1]), sys.argv[2])
print("held", flush=True)
sys.stdin.read()  # until the test closes our stdin
writelock.end(Path(sys.argv[1]))
"""


def _holder(db: Path, purpose: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db), purpose],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_writer_waits_its_turn_says_so_once_and_proceeds(tmp_path, monkeypatch, capsys):
    db = tmp_path / "warehouse.duckdb"
    holder = _holder(db, "the load of big.csv")
    try:
        monkeypatch.setenv(writelock.WAIT_ENV, "0")
        with pytest.raises(writelock.WarehouseBusy) as busy:
            writelock.begin(db, "the load of small.csv")
        message = str(busy.value)
        assert "the warehouse is busy with the load of big.csv" in message
        assert "--wait" in message and not any(p in message for p in PLAIN)
        assert capsys.readouterr().err == ""  # no patience: no waiting line either

        monkeypatch.setenv(writelock.WAIT_ENV, "120")
        threading.Timer(1.0, holder.stdin.close).start()  # the holder finishes a second later
        writelock.begin(db, "the load of small.csv")
        try:
            err = capsys.readouterr().err
            assert err.count("waiting for the load of big.csv to finish") == 1, err
            assert len(err.strip().splitlines()) == 1 and not any(p in err for p in PLAIN)
            assert (tmp_path / "warehouse.duckdb.writer").read_text() == "the load of small.csv"
        finally:
            writelock.end(db)
    finally:
        if holder.stdin and not holder.stdin.closed:
            holder.stdin.close()
        holder.wait(timeout=60)


def test_the_wait_is_a_number_of_seconds(monkeypatch):
    monkeypatch.setenv(writelock.WAIT_ENV, "soon")
    with pytest.raises(ValueError, match="OMH_WRITE_WAIT='soon': give a number of seconds"):
        writelock.wait_seconds()
    monkeypatch.setenv(writelock.WAIT_ENV, "-1")
    with pytest.raises(ValueError):
        writelock.wait_seconds()
    monkeypatch.setenv(writelock.WAIT_ENV, "2.5")
    assert writelock.wait_seconds() == 2.5


def test_omh_ingest_with_no_patience_exits_4_in_plain_words(tmp_path, pycache):
    home = tmp_path / "home"
    home.mkdir()
    holder = _holder(home / "warehouse.duckdb", "the load of big.csv")
    try:
        run = hc.run_omh(
            ["ingest", str(RAW / THREE[0][1]), "--source", THREE[0][0], "--wait", "0"],
            hc.omh_env(home, pycache),
            tmp_path / "w",
        )
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert run.rc == 4, run.output
    assert "omh ingest: the warehouse is busy with the load of big.csv; nothing was changed" in run.stderr
    assert not any(p in run.output for p in (*PLAIN, "Traceback", "WarehouseBusy"))
    assert not (home / "warehouse.duckdb").exists()


# ---------------------------------------------------------------------------- real loads at once


@pytest.mark.slow
def test_three_real_files_at_once_load_as_they_do_one_after_another(tmp_path, pycache):
    together, apart = tmp_path / "together", tmp_path / "apart"
    for home in (together, apart):
        home.mkdir()
    for source, name in THREE:
        proc = _ingest(apart, pycache, source, RAW / name)
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, out + err
    procs = [_ingest(together, pycache, source, RAW / name) for source, name in THREE]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err), (_, name) in zip(procs, outputs, THREE, strict=True):
        assert proc.returncode == 0, out + err
        assert f"{name}: loaded" in out
        assert not any(p in err for p in PLAIN), err
    verify = hc.run_omh(["verify"], hc.omh_env(together, pycache), tmp_path / "w")
    assert verify.rc == 0 and "agree" in verify.stdout, verify.output
    figures = _figures(together)
    assert [f[0] for f in figures["facts"]] == sorted(s for s, _ in THREE)
    assert figures == _figures(apart)
    assert _shadows(together) == []


@pytest.mark.slow
def test_a_writer_killed_mid_load_leaves_no_lock_and_the_queue_moves_on(tmp_path, pycache):
    home = tmp_path / "home"
    home.mkdir()
    seed = _ingest(home, pycache, "pan_darien_yearly", hc.DARIEN)
    assert seed.wait(timeout=600) == 0
    before = _figures(home)
    release = tmp_path / "release" / "usa_cbp_sbo-encounters-fy22-fy25-revised.csv"
    release.parent.mkdir()
    release.write_bytes(hc.cbp_release(100))  # 193,600 observations: seconds of work
    big = _ingest(home, pycache, "usa_cbp_swb_encounters", release)
    _wait_for(lambda: _shadows(home))  # it holds the lock and works on its copy
    waiter_err = tmp_path / "waiter.err"
    with waiter_err.open("w") as sink:
        waiter = _ingest(home, pycache, "col_entradas_extranjeros", RAW / THREE[1][1], stderr=sink)
    # The waiter says, on one line, what it waits for.
    _wait_for(lambda: "waiting for" in waiter_err.read_text())
    assert big.poll() is None, "the large load ended before it could be killed: make it larger"
    killed_shadows = _shadows(home)
    big.send_signal(signal.SIGKILL)
    big.communicate(timeout=60)
    assert big.returncode == -signal.SIGKILL
    out, _ = waiter.communicate(timeout=600)
    err = waiter_err.read_text()
    assert waiter.returncode == 0, out + err
    assert "colombia_entradas_de_extranjeros_a_colombia_20250803.csv: loaded" in out
    assert "waiting for the load of usa_cbp_sbo-encounters-fy22-fy25-revised.csv to finish" in err, err
    after = _figures(home)
    # Nothing of the killed load is published; the waiter's file is.
    assert [f for f in after["facts"] if f[0] != "col_entradas_extranjeros"] == before["facts"]
    assert [f[0] for f in after["files"]] == ["col_entradas_extranjeros", "pan_darien_yearly"]
    assert not any(s.exists() for s in killed_shadows), "the killed writer's copy is still there"
    rerun = _ingest(home, pycache, "usa_cbp_swb_encounters", release)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0 and "loaded 193600 observations" in out, out + err
    verify = hc.run_omh(["verify"], hc.omh_env(home, pycache), tmp_path / "w")
    assert verify.rc == 0 and "agree" in verify.stdout, verify.output


@pytest.mark.slow
def test_queries_during_a_2m_row_load_see_before_or_after_never_a_mixture(tmp_path, pycache):
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import generate
    finally:
        sys.path.remove(str(REPO / "bench"))
    path, meta = generate.ensure(2_000_000)
    home = tmp_path / "home"
    home.mkdir()
    seed = _ingest(home, pycache, "pan_darien_yearly", hc.DARIEN)
    assert seed.wait(timeout=600) == 0
    cfg = _settings(home)

    def state() -> tuple:
        with open_for_reading(cfg) as wh:
            return tuple(wh.fetchall(STATE_SQL)[0])

    before = state()
    load = _ingest(home, pycache, generate.SOURCE_ID, path)
    seen, sql_runs = [], []
    while load.poll() is None:
        answer = state()
        if load.poll() is None:
            seen.append(answer)
        if len(sql_runs) < 3 and load.poll() is None:  # and as an analyst would, a process each
            run = subprocess.run(
                [str(OMH), "sql", "--csv", STATE_SQL],
                env=hc.omh_env(home, pycache),
                capture_output=True,
                text=True,
                timeout=300,
            )
            if load.poll() is None:
                sql_runs.append(run)
        time.sleep(0.1)
    out, err = load.communicate()
    assert load.returncode == 0, out + err
    after = state()
    expected = meta["observations_expected"]
    assert after[0] == before[0] + expected and after[2] == before[2] + 1
    assert len(seen) >= 3, f"only {len(seen)} answers during the load"
    assert set(seen) <= {before, after}, set(seen) - {before, after}
    assert sql_runs, "no `omh sql` ran during the load"
    for run in sql_runs:
        assert run.returncode == 0, run.stderr
        n, total, files = run.stdout.strip().splitlines()[-1].split(",")
        assert (int(n), int(files)) in {(before[0], before[2]), (after[0], after[2])}
