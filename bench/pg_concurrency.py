"""``make bench-concurrency``: K loader processes into one PostgreSQL warehouse, K = 1, 2, 4, 8.

What the cluster's pool (``OMH_WAREHOUSE_POOL_SLOTS``, deploy/cluster.env) should allow: the 23
member states' sample files (transforms/tools/samples.py, one file per member and year, two years
by default) are dealt round robin to K processes, each calling ``ingest_file`` on its share, one
file after another, into a fresh database and one shared OMH_HOME (the folder lake), as K Celery
slots would. Two files of one source go to different processes, so the per-source advisory lock
(``Warehouse._lock``) is taken against a waiting writer. For each K: wall time (processes started
to all exited), the load window (first ingest started to last ended, imports excluded), rows/s over
that window, the loaders' CPU seconds per file (the PostgreSQL server's not counted), backends seen
waiting on a lock (pg_stat_activity sampled every 0.1 s), deadlocks (pg_stat_database), and the
correctness check: every file loaded, per source the rows, values and
sum of ``fact_flow`` equal to the serial load's (K = 1), no fact key twice.

    .venv/bin/python bench/pg_concurrency.py                    # K = 1,2,4,8, 2 repeats
    .venv/bin/python bench/pg_concurrency.py --ks 1,4 --repeats 1 --years 2024

Writes bench/concurrency.json (``--out``). Needs the PostgreSQL server (``--admin``, default
postgresql://postgres@127.0.0.1:5432/postgres, the right to create databases); each run's
database (omh_bench_conc_<hex>) is dropped after it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def land(landing_home: Path, years: list[int]) -> list[tuple[str, str]]:
    """The sample file of every member for each year in ``landing_home``'s landing zone:
    [(source_id, path)], ordered by year, then source."""
    from transforms.config import settings
    from transforms.contracts.model import load_contracts
    from transforms.ingest.pipeline import source_files
    from transforms.tools.samples import write_samples

    cfg = settings(landing_home).ensure()
    for year in years:
        write_samples(cfg.landing, year)
    files = [(c.source_id, str(p)) for c in load_contracts().values() for p in source_files(c, cfg)]
    return sorted(files, key=lambda f: (Path(f[1]).name, f[0]))


def deal(files: list, k: int) -> list[list]:
    """Round robin: with two files per source (23 sources, an odd number), the two go to
    different processes whenever k > 1."""
    return [files[i::k] for i in range(k)]


def loader(home: str, share_file: str) -> None:
    """One loader process: ``ingest_file`` on each file of its share; prints one JSON line."""
    from transforms.ingest.pipeline import ingest_file

    out = []
    for source_id, path in json.loads(Path(share_file).read_text(encoding="utf-8")):
        # CLOCK_MONOTONIC is one clock for every process of the machine; the wall clock of this
        # VM was seen stepping during a run (a load window longer than the run).
        started = time.monotonic()
        r = ingest_file(path, source_id, home)
        out.append(
            {
                "file": Path(path).name,
                "status": r.status,
                "rows": r.rows,
                "reason": r.reason,
                "start": started,
                "end": time.monotonic(),
            }
        )
    print(json.dumps(out))


def _db(admin: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))


class LockSampler(threading.Thread):
    """Backends of the database waiting on a lock, sampled every 0.1 s (how often writers wait)."""

    def __init__(self, admin: str, db: str):
        super().__init__(daemon=True)
        self.admin, self.db = admin, db
        self.stop = threading.Event()
        self.samples: list[int] = []

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as con:
            while not self.stop.is_set():
                n = con.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                    (self.db,),
                ).fetchone()[0]
                self.samples.append(int(n))
                time.sleep(0.1)


def _children_cpu() -> float:
    import resource

    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def figures(url: str) -> dict:
    """Per source, [rows, values, sum of value] of fact_flow; and the fact keys held twice."""
    import psycopg

    from transforms.stages.harmonize import KEY_COLUMNS

    keys = ", ".join(KEY_COLUMNS)
    with psycopg.connect(url) as con:
        per_source = {
            s: [int(r), int(v), float(t or 0)]
            for s, r, v, t in con.execute(
                "SELECT source_id, count(*), count(value), sum(value) FROM fact_flow GROUP BY source_id"
            )
        }
        doubled = con.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM fact_flow GROUP BY {keys} HAVING count(*) > 1) d"
        ).fetchone()[0]
    return {"per_source": per_source, "doubled_keys": int(doubled)}


def run_once(files: list, k: int, admin: str) -> dict:
    """Load ``files`` with ``k`` processes into a fresh database; the measures and the figures."""
    import psycopg
    from psycopg import sql

    name = f"omh_bench_conc_{uuid.uuid4().hex[:8]}"
    url = _db(admin, name)
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with tempfile.TemporaryDirectory(prefix="omh-bench-conc-") as tmp:
            env = {**os.environ, "OMH_WAREHOUSE_URL": url, "OMH_HOME": f"{tmp}/home"}
            sampler = LockSampler(admin, name)
            sampler.start()
            started = time.monotonic()
            cpu_before = _children_cpu()
            procs = []
            for i, share in enumerate(deal(files, k)):
                share_file = Path(tmp) / f"share-{i}.json"
                share_file.write_text(json.dumps(share), encoding="utf-8")
                procs.append(
                    subprocess.Popen(
                        [sys.executable, __file__, "--loader", f"{tmp}/home", str(share_file)],
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                )
            outs = [p.communicate() for p in procs]
            wall = time.monotonic() - started
            cpu = _children_cpu() - cpu_before  # the loaders' own CPU time, whatever else ran
            sampler.stop.set()
            sampler.join()
        failed = [
            (p.returncode, err[-2000:]) for p, (_, err) in zip(procs, outs, strict=True) if p.returncode
        ]
        loads = [x for out, _ in outs if out.strip() for x in json.loads(out.strip().splitlines()[-1])]
        with psycopg.connect(admin, autocommit=True) as con:
            deadlocks = con.execute(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = %s", (name,)
            ).fetchone()[0]
        result = figures(url)
    finally:
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    window = max(x["end"] for x in loads) - min(x["start"] for x in loads) if loads else float("nan")
    rows = sum(r for r, _, _ in result["per_source"].values())
    return {
        "k": k,
        "wall_s": round(wall, 2),
        "load_window_s": round(window, 2),
        "rows": rows,
        "rows_per_s": round(rows / window, 1) if loads else None,
        # CPU seconds (user + system) the loader processes spent per file: on a machine shared
        # with other work the wall time says how much CPU the loads got, this what they needed.
        "loader_cpu_s_per_file": round(cpu / max(len(loads), 1), 2),
        "slowest_file_s": round(max(x["end"] - x["start"] for x in loads), 2) if loads else None,
        "files_loaded": sum(x["status"] == "loaded" for x in loads),
        "not_loaded": [(x["file"], x["status"], x["reason"]) for x in loads if x["status"] != "loaded"],
        "process_failures": failed,
        "lock_wait_share": round(sum(1 for n in sampler.samples if n) / max(len(sampler.samples), 1), 3),
        "lock_waiters_max": max(sampler.samples, default=0),
        "deadlocks": int(deadlocks or 0),
        **result,
    }


def check(run: dict, serial: dict | None, files: int) -> list[str]:
    # serial: the per-source figures of the first K = 1 run
    """What is wrong with one run: a file not loaded, a process that failed, a key twice, a
    source whose figures differ from the serial load's."""
    wrong = [f"{f} {s}: {r}" for f, s, r in run["not_loaded"]]
    wrong += [f"a loader exited {rc}: {err}" for rc, err in run["process_failures"]]
    if run["files_loaded"] != files:
        wrong.append(f"{run['files_loaded']} of {files} files loaded")
    if run["doubled_keys"]:
        wrong.append(f"{run['doubled_keys']} fact keys twice")
    if run["deadlocks"]:
        wrong.append(f"{run['deadlocks']} deadlocks")
    if serial is not None:
        a, b = run["per_source"], serial
        differ = sorted(s for s in a.keys() | b.keys() if s not in a or s not in b or not _same(a[s], b[s]))
        wrong += [f"{s}: {a.get(s)} != serial {b.get(s)}" for s in differ]
    return wrong


def _same(a: list, b: list) -> bool:
    return a[:2] == b[:2] and abs(a[2] - b[2]) <= 1e-9 * max(abs(a[2]), abs(b[2]), 1.0)


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "load_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "shared": "yes: other sessions' tests and builds ran on the same 2 cores during the runs",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", default="1,2,4,8", help="loader processes per run (comma-separated)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--years", default="2023,2024", help="sample years: one file per member and year")
    ap.add_argument("--admin", default=os.environ.get("OMH_BENCH_PG_ADMIN") or ADMIN)
    ap.add_argument("--out", default=str(ROOT / "bench" / "concurrency.json"))
    ap.add_argument("--loader", nargs=2, metavar=("HOME", "SHARE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.loader:
        loader(*args.loader)
        return 0
    # K = 1 first: the serial load is the reference of the others.
    ks = sorted({1, *(int(k) for k in args.ks.split(","))})
    with tempfile.TemporaryDirectory(prefix="omh-bench-landing-") as tmp:
        files = land(Path(tmp), [int(y) for y in args.years.split(",")])
        report = {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "files": len(files),
            "machine_before": machine(),
            "runs": [],
        }
        serial = None
        for repeat in range(1, args.repeats + 1):
            for k in ks:
                run = run_once(files, k, args.admin)
                if serial is None:
                    serial = run["per_source"]
                run["repeat"] = repeat
                run["errors"] = check(run, serial, len(files))
                del run["per_source"]  # the check compared them; the file keeps the measures
                report["runs"].append(run)
                # Written after every run: a long benchmark stopped midway keeps what it measured.
                Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
                print(
                    f"K={k} repeat {repeat}: wall {run['wall_s']} s, load window {run['load_window_s']} s, "
                    f"{run['rows_per_s']} rows/s, lock waits {run['lock_wait_share']:.0%} of samples, "
                    f"errors: {run['errors'] or 'none'}",
                    flush=True,
                )
        report["machine_after"] = machine()
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 1 if any(r["errors"] for r in report["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
