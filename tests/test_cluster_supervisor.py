"""The launcher's supervision of its components (transforms/tools/cluster.Supervisor), on dummy
child processes: no Airflow, no server. The real API server killed under running DAGs is in
tests/test_cluster.py."""

from __future__ import annotations

import os
import sys
import time

import pytest

from transforms.tools.cluster import CrashLoop, Plan, Supervisor, restart_delays

# A component that dies (exit 3) the first time it starts and stays up afterwards: the marker file
# says it has run before.
DIES_ONCE = "import os,sys,time; p=sys.argv[1]; first=not os.path.exists(p); open(p,'a').close(); first and sys.exit(3); time.sleep(300)"


def _plan(tmp_path, **components: list[str]) -> Plan:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "af")}
    return Plan(env, "http://127.0.0.1:9", 0, "q", 9, "", 1, components=components)


def _watch_until(sup: Supervisor, done, timeout: float = 30.0) -> None:
    """Run the launcher's loop (``watch``) until ``done()`` holds."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not within the time"
        sup.watch()
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_component_that_dies_is_restarted_after_its_delay_and_named_in_a_log_line(tmp_path, capsys):
    py = sys.executable
    p = _plan(
        tmp_path,
        flaky=[py, "-c", DIES_ONCE, str(tmp_path / "ran")],
        steady=[py, "-c", "import time; time.sleep(300)"],
    )
    sup = Supervisor(p, {"flaky": 0.3, "steady": 0.3})
    try:
        for name in p.components:
            sup.start(name)
        first, steady = sup.procs["flaky"].pid, sup.procs["steady"].pid
        _watch_until(sup, lambda: sup.restarts.get("flaky") == 1)
        assert sup.procs["flaky"].pid != first and sup.procs["flaky"].poll() is None
        # The other component was left alone, and the state file names the new process.
        assert sup.procs["steady"].pid == steady and "steady" not in sup.restarts
        assert p.state_file.exists() and str(sup.procs["flaky"].pid) in p.state_file.read_text()
        out = capsys.readouterr().out
        assert f"flaky exited (exit code 3); restarting in 0.3 s (log: {sup.logs / 'flaky.log'})" in out
        assert f"flaky restarted (pid {sup.procs['flaky'].pid})" in out
        # It stays up: a second look restarts nothing.
        for _ in range(10):
            sup.watch()
            time.sleep(0.02)
        assert sup.restarts == {"flaky": 1}
    finally:
        sup.stop()
    assert not _alive(sup.procs["flaky"].pid) and not _alive(steady)
    assert not p.state_file.exists()


def test_a_component_that_keeps_dying_backs_off_then_stops_the_cluster_with_its_name(tmp_path, capsys):
    p = _plan(tmp_path, broken=[sys.executable, "-c", "import sys; sys.exit(7)"])
    sup = Supervisor(p, 0.05, max_restarts=4, stable_seconds=60)
    sup.start("broken")
    with pytest.raises(CrashLoop) as caught:
        _watch_until(sup, lambda: False)
    sup.stop()
    message = str(caught.value)
    assert message.startswith("broken died 4 times in a row, each within 60 s of its start")
    assert "(last: exit code 7); stopping the cluster" in message
    assert str(sup.logs / "broken.log") in message
    # Three restarts, each after twice the delay of the one before.
    out = capsys.readouterr().out
    delays = [
        line.split("restarting in ")[1].split(" s")[0] for line in out.splitlines() if "restarting in" in line
    ]
    assert delays == ["0.05", "0.1", "0.2"]
    assert sup.restarts == {"broken": 3}


def test_deaths_after_a_stable_run_do_not_count_as_a_crash_loop(tmp_path, capsys):
    # Lives 0.3 s, longer than "stable" here (0.1 s): every restart comes after the base delay.
    p = _plan(tmp_path, tired=[sys.executable, "-c", "import time, sys; time.sleep(0.3); sys.exit(1)"])
    sup = Supervisor(p, 0.05, max_restarts=2, stable_seconds=0.1)
    try:
        sup.start("tired")
        _watch_until(sup, lambda: sup.restarts.get("tired", 0) >= 3)
    finally:
        sup.stop()
    out = capsys.readouterr().out
    assert out.count("tired exited (exit code 1); restarting in 0.05 s") >= 3


def test_a_dead_component_takes_the_processes_of_its_group_with_it(tmp_path):
    # A leader that dies leaving a child behind (as uvicorn's or Celery's children would keep the
    # port or the queue): the child is killed before the component starts again.
    pid_file = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pid_file}; exit 1"
    p = _plan(tmp_path, leader=["/bin/sh", "-c", script])
    sup = Supervisor(p, 300.0)
    try:
        sup.start("leader")
        _watch_until(sup, lambda: "leader" in sup.restart_at and pid_file.exists())
        child = int(pid_file.read_text())
        _watch_until(sup, lambda: not _alive(child), timeout=5)
    finally:
        sup.stop()


def test_restart_delays_default_and_per_component():
    env = {"OMH_CLUSTER_RESTART_SECONDS": "600", "OMH_CLUSTER_RESTART_SECONDS_API_SERVER": "1"}
    assert restart_delays(["api-server", "worker-1"], env) == {"api-server": 1.0, "worker-1": 600.0}
    assert restart_delays(["scheduler"], {}) == {"scheduler": 5.0}
