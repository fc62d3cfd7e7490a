"""The benchmark (``make bench``): the pipeline against the hardware floor and the usual approach.

Measures, in one run and on the same generated files (``bench/generate.py``, Migración
Colombia's record-level format at 2 M and 10 M rows), and writes ``bench/results.json``:

==================  =====================================================================
floor_s             bare DuckDB ``COPY (SELECT * FROM read_csv(file)) TO dir (FORMAT parquet,
                    PARTITION_BY (Año, Mes))`` in a fresh process (the COPY alone; median)
pipeline_s          ``omh ingest`` of the large file into an empty OMH_HOME (DuckDB warehouse),
                    a separate process, wall time end to end (imports included)
usual_s             ``bench/usual.py`` (pandas + GX Core on whole DataFrames, same suites),
                    a separate process, wall time end to end
peak_rss_mb_*       peak RSS of ``omh ingest`` incl. children: ``getrusage(RUSAGE_CHILDREN)``
                    in a fresh wrapper process per measurement
small_ingest_s      ``omh ingest`` of a 5,000-row file into an empty OMH_HOME (median)
gx_import_s         ``python -c "import great_expectations"`` (median)
skip_s              ``omh ingest`` of the large file again: already loaded, skipped (median)
dag_parse_s_max     each DAG file parsed as the DAG processor does (fresh process, Airflow
                    modules the file names pre-imported, ``BundleDagBag``): its dagbag_stats
view_s_max          ``SELECT count(*) FROM (SELECT * FROM view)`` for each view of the warehouse
                    the large ingest built (~2 observations per row), fresh connection
same_output_floor_s ``bench/same_output.sql``: the bench file turned by a hand-written DuckDB script
                    (no project code) into exactly the fact rows (the schema of the day, its index)
                    and the hive lake ``omh ingest`` writes; the script alone (median)
pg_same_output_floor_s  the same script's rows and lake, plus a binary COPY of its canonical rows
                    into ``bench/same_output_pg.sql``'s indexed fact table on a fresh database
pg_floor_s          the PostgreSQL server's own ``COPY FROM`` of the raw CSV into an unindexed
                    all-text table (server-side file; ``FROM STDIN`` if the server cannot read it)
pg_pipeline_s       ``omh ingest`` of the large file with ``OMH_WAREHOUSE_URL`` on a fresh database
query_during_load_s ``omh sql`` (a fresh process each, in a loop) while ``omh ingest`` loads the
                    small file (2 M rows) into a home publishing the real CBP file: the slowest
                    answer; each must be the figures of before or after the load
==================  =====================================================================

Ratios: ``ratio_vs_same_output`` = pipeline_s / same_output_floor_s, ``ratio_pg_vs_same_output`` =
pg_pipeline_s / pg_same_output_floor_s (the targets); ``ratio_vs_floor`` = pipeline_s / floor_s
(a reference: the bare COPY writes none of the warehouse's rows), ``speedup_vs_usual`` = usual_s / pipeline_s,
``small_vs_gx_import`` = small_ingest_s / gx_import_s, ``ratio_pg_vs_floor`` =
pg_pipeline_s / pg_floor_s. A step that fails records an error string under its keys; the run
goes on. Results are written after every step, so an interrupted run leaves what it measured.

    .venv/bin/python bench/run.py                # 2 M + 10 M rows (tens of minutes)
    .venv/bin/python bench/run.py --quick        # 40 k + 200 k rows smoke run (bench/results/quick.json)
    .venv/bin/python bench/run.py --only floor,pipeline --runs 5
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import generate  # noqa: E402  (bench/ is not a package)
import same_output  # noqa: E402

SOURCE_ID = generate.SOURCE_ID
RESULTS_JSON = BENCH_DIR / "results.json"
RESULTS_DIR = BENCH_DIR / "results"
PG_ADMIN_URL = os.environ.get("OMH_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_FLOOR_DB = "omh_bench"
PG_PIPELINE_DB = "omh_bench_pipeline"
PG_SAME_OUTPUT_DB = "omh_bench_same_output"
SMALL_ROWS = 5_000
# Set per measurement; any other OMH_* variable (e.g. OMH_DUCKDB_MEMORY) passes through and is recorded.
_HOME_VARS = ("OMH_HOME", "OMH_WAREHOUSE_URL")
FULL_SIZES = (2_000_000, 10_000_000)
QUICK_SIZES = (40_000, 200_000)

# The targets (ratios measured in one run); shown next to the figures, never enforced.
# Issue 17 replaced issue 6's ratios to the bare COPY (kept as reference figures) by ratios to
# the same output written by hand.
TARGETS = {
    "ratio_vs_same_output": ("<=", 1.2),
    "speedup_vs_usual": (">=", 5.0),
    "ratio_pg_vs_same_output": ("<=", 1.5),
    "peak_rss_mb_10m": ("<=", 1024.0),
    "rss_growth_10m_vs_2m": ("<=", 1.3),
    "small_vs_gx_import": ("<=", 2.0),
    "skip_s": ("<=", 2.0),
    "dag_parse_s_max": ("<=", 0.5),
    "view_s_max": ("<=", 1.0),
    "query_during_load_s": ("<=", 2.0),
}

STEPS = (
    "generate",
    "gx_small",
    "dags",
    "floor",
    "same_output",
    "pipeline",
    "skip",
    "views",
    "usual",
    "pg",
    "concurrency",
)

# Runs a command in a fresh process, so that RUSAGE_CHILDREN is this one command's (and its
# children's) peak RSS. Polls the process group's summed RSS too, to enforce a memory limit and
# a timeout (the group is killed: it is ours alone).
_WRAPPER = r"""
import json, os, resource, signal, subprocess, sys, time
spec = json.loads(sys.argv[1])

def group_rss_kb(pgid):
    total = 0
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open(f'/proc/{pid}/stat') as fh:
                fields = fh.read().rsplit(')', 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            with open(f'/proc/{pid}/status') as fh:
                for line in fh:
                    if line.startswith('VmRSS:'):
                        total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total

with open(spec['stdout'], 'wb') as out, open(spec['stderr'], 'wb') as err:
    started = time.perf_counter()
    proc = subprocess.Popen(spec['cmd'], env=spec['env'], cwd=spec['cwd'], stdout=out, stderr=err,
                            start_new_session=True)

    def stop(signum, frame):  # the benchmark is interrupted: take the measured command down with us
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    killed, group_peak = None, 0
    while True:
        try:
            rc = proc.wait(timeout=spec['poll_s'])
            break
        except subprocess.TimeoutExpired:
            pass
        rss = group_rss_kb(proc.pid)
        group_peak = max(group_peak, rss)
        if spec['mem_limit_kb'] and rss > spec['mem_limit_kb']:
            killed = f"killed: the process group's RSS {rss // 1024} MB exceeded {spec['mem_limit_kb'] // 1024} MB"
        elif spec['timeout_s'] and time.perf_counter() - started > spec['timeout_s']:
            killed = f"killed: still running after {spec['timeout_s']} s"
        if killed:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            rc = proc.wait()
            break
    wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({'wall_s': wall, 'rc': rc, 'maxrss_mb': usage.ru_maxrss / 1024, 'user_s': usage.ru_utime,
                  'sys_s': usage.ru_stime, 'group_rss_peak_mb': group_peak / 1024, 'killed': killed}))
"""


class StepError(RuntimeError):
    """A measurement failed; the message is what results.json records."""


# ---------------------------------------------------------------------------- helpers


# A step's line in the pipeline's log: "<file>: <step> took <seconds> s (rss ..., peak ...)".
_TOOK = re.compile(r": ([a-z][a-z ]*?) took ([0-9.]+) s \(rss (\d+) MB, peak (\d+) MB\)")


def step_times(log: Path) -> dict:
    """Each step's time, RSS and peak so far, from the ``took`` lines of an ingest's log (the
    last line of a step wins: a home holds one ingest per measurement)."""
    steps: dict = {}
    if log.is_file():
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if m := _TOOK.search(line):
                steps[m.group(1)] = {
                    "s": float(m.group(2)),
                    "rss_mb": int(m.group(3)),
                    "peak_mb": int(m.group(4)),
                }
    return steps


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())


def meminfo_mb() -> dict:
    out = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, value = line.split(":", 1)
            if key in ("MemTotal", "MemAvailable"):
                out[key] = round(int(value.split()[0]) / 1024)
    except OSError:
        pass
    return out


def git_commit() -> dict:
    """HEAD's commit, read from .git's files (the benchmark runs no git command)."""
    git = REPO_ROOT / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = (REPO_ROOT / git.read_text().split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return {"commit": head, "ref": None}
        ref = head.split(":", 1)[1].strip()
        common = git
        if (git / "commondir").is_file():
            common = (git / (git / "commondir").read_text().strip()).resolve()
        for base in (git, common):
            if (base / ref).is_file():
                return {"commit": (base / ref).read_text().strip(), "ref": ref}
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return {"commit": line.split()[0], "ref": ref}
        return {"commit": None, "ref": ref}
    except OSError as exc:
        return {"commit": None, "error": str(exc)}


def versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("duckdb", "pyarrow", "pandas", "numpy", "great-expectations", "psycopg", "apache-airflow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def machine() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_mb": meminfo_mb().get("MemTotal"),
        "ram_available_mb_at_start": meminfo_mb().get("MemAvailable"),
        "loadavg_at_start": [round(x, 2) for x in load] if load else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


# ---------------------------------------------------------------------------- the bench


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.quick = args.quick
        self.sizes = tuple(args.sizes)
        self.small_size, self.large_size = min(self.sizes), max(self.sizes)
        self.runs = args.runs
        self.out = args.out
        self.work = Path(tempfile.mkdtemp(prefix="omh-bench-", dir=args.work))
        self.files: dict[int, Path] = {}
        self.meta: dict[int, dict] = {}
        self.large_home: Path | None = None
        self.large_error: str | None = None
        self.omh = self._omh_command()
        self.results: dict = {
            "started_at": dt.datetime.now().isoformat(timespec="seconds"),
            "quick": self.quick,
            "sizes": {"2m": self.small_size, "10m": self.large_size, "small": SMALL_ROWS},
            "runs": {"repeated": self.runs, "pipeline": args.pipeline_runs, "usual": args.usual_runs},
            "mem_limit_gb": args.mem_limit_gb,
            "seed": args.seed,
            "git": git_commit(),
            "machine": machine(),
            "versions": versions(),
            "env": {
                k: v for k, v in sorted(os.environ.items()) if k.startswith("OMH_") and k not in _HOME_VARS
            },
            "targets": {k: f"{op} {v}" for k, (op, v) in TARGETS.items()},
            "errors": {},
            "details": {},
        }

    # -- plumbing

    def _omh_command(self) -> list[str]:
        exe = Path(sys.executable).parent / "omh"
        return [str(exe)] if exe.exists() else [sys.executable, "-m", "transforms.tools.cli"]

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _HOME_VARS and not k.startswith("AIRFLOW")}
        env["GX_ANALYTICS_ENABLED"] = "False"  # as the pipeline's own processes run
        env.update(extra)
        return env

    def measure(
        self,
        cmd: list[str],
        env: dict[str, str],
        label: str,
        *,
        timeout_s: float | None = None,
        mem_limit_mb: float | None = None,
        check: bool = True,
    ) -> dict:
        """Run ``cmd`` in a fresh wrapper process: wall time, exit code, peak RSS, output."""
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        n = len(list(logs.glob("*.out")))
        stdout, stderr = logs / f"{n:03d}_{label}.out", logs / f"{n:03d}_{label}.err"
        spec = {
            "cmd": cmd,
            "env": env,
            "cwd": str(REPO_ROOT),
            "stdout": str(stdout),
            "stderr": str(stderr),
            "timeout_s": timeout_s if timeout_s is not None else self.args.timeout,
            "mem_limit_kb": int(
                (mem_limit_mb if mem_limit_mb is not None else self.args.mem_limit_gb * 1024) * 1024
            ),
            "poll_s": 0.5,
        }
        wrapper = subprocess.Popen(
            [sys.executable, "-c", _WRAPPER, json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        try:
            out, err = wrapper.communicate()
        except BaseException:  # interrupted: the wrapper kills the measured command's process group
            wrapper.terminate()
            wrapper.wait()
            raise
        if wrapper.returncode != 0 or not out.strip():
            raise StepError(f"{label}: the measuring wrapper failed: {err.strip()[-400:]}")
        res = json.loads(out.strip().splitlines()[-1])
        res["stdout"] = stdout.read_text(encoding="utf-8", errors="replace")
        res["stderr_tail"] = tail(stderr)
        if res["killed"]:
            raise StepError(f"{label}: {res['killed']} (after {res['wall_s']:.1f} s)")
        if check and res["rc"] != 0:
            raise StepError(
                f"{label}: exit code {res['rc']} after {res['wall_s']:.1f} s: "
                f"{tail(stdout, 3)} {res['stderr_tail']}".strip()
            )
        return res

    def fresh_home(self, name: str) -> Path:
        home = self.work / name
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        return home

    def record(self, **values) -> None:
        self.results.update(values)
        self.save()

    def detail(self, step: str, value) -> None:
        self.results["details"][step] = value
        self.save()

    def fail(self, keys: list[str], step: str, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, StepError) else f"{exc.__class__.__name__}: {exc}"
        message = f"error: {message}"[:2000]
        for key in keys:
            if not isinstance(self.results.get(key), (int, float)):
                self.results[key] = message
        self.results["errors"][step] = message
        if not isinstance(exc, StepError):
            self.results["errors"][step + "_trace"] = traceback.format_exc()[-4000:]
        self.save()
        print(f"  ! {step}: {message}", flush=True)

    def step(self, name: str, keys: list[str], fn: Callable[[], None]) -> None:
        if self.args.only and name not in self.args.only:
            return
        print(f"- {name} ...", flush=True)
        started = time.perf_counter()
        try:
            fn()
        except KeyboardInterrupt:
            self.fail(keys, name, StepError("interrupted"))
            raise
        except Exception as exc:  # one failing measurement must not end the run
            self.fail(keys, name, exc)
        self.results.setdefault("step_s", {})[name] = round(time.perf_counter() - started, 1)
        self.save()

    def save(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(self.results, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
        )
        tmp.replace(self.out)

    def ingest(self, path: Path, home: Path, label: str, **env) -> dict:
        res = self.measure(
            [*self.omh, "ingest", str(path), "--source", SOURCE_ID],
            self.env(OMH_HOME=str(home), **env),
            label,
        )
        match = re.search(r"loaded (\d+) observations|already loaded", res["stdout"])
        if not match:
            raise StepError(
                f"{label}: unexpected output: {res['stdout'].strip()[-300:]} {res['stderr_tail']}"
            )
        res["observations"] = int(match.group(1)) if match.group(1) else None
        res["steps"] = step_times(home / "logs" / "omh.log")
        return res

    # -- steps

    def step_generate(self) -> None:
        info = {}
        for rows in sorted({SMALL_ROWS, *self.sizes}):
            path, meta = generate.ensure(rows, self.args.seed, self.args.data)
            self.files[rows], self.meta[rows] = path, meta
            info[str(rows)] = {"file": str(path), **meta}
            print(
                f"    {rows:>10} rows  {meta['bytes'] / 1e6:8.1f} MB  {'cached' if meta['cached'] else 'written'}"
            )
        self.detail("files", info)
        self.record(file_mb_10m=round(self.meta[self.large_size]["bytes"] / 1e6, 1))

    def step_gx_small(self) -> None:
        """gx import and small ingest, interleaved so that machine noise hits both alike."""
        gx, small, runs = [], [], []
        for i in range(self.runs):
            res = self.measure([sys.executable, "-c", "import great_expectations"], self.env(), "gx_import")
            gx.append(res["wall_s"])
            try:
                home = self.fresh_home(f"small_{i}")
                res = self.ingest(self.files[SMALL_ROWS], home, "small_ingest")
                small.append(res["wall_s"])
                runs.append(
                    {
                        "wall_s": round(res["wall_s"], 3),
                        "maxrss_mb": round(res["maxrss_mb"], 1),
                        "observations": res["observations"],
                    }
                )
            finally:
                shutil.rmtree(self.work / f"small_{i}", ignore_errors=True)
        self.detail("gx_import_runs_s", [round(x, 3) for x in gx])
        self.detail("small_ingest_runs", runs)
        self.record(gx_import_s=median(gx), small_ingest_s=median(small))
        self.record(small_vs_gx_import=round(self.results["small_ingest_s"] / self.results["gx_import_s"], 3))

    def step_dags(self) -> None:
        dags_dir = REPO_ROOT / "dags"
        per_file, method = {}, "BundleDagBag dagbag_stats in a fresh process per file (as the DAG processor)"
        for dag_file in sorted(dags_dir.glob("*.py")):
            af_home = self.fresh_home(f"airflow_{dag_file.stem}")
            env = self.env(
                AIRFLOW_HOME=str(af_home),
                AIRFLOW__CORE__DAGS_FOLDER=str(dags_dir),
                AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO_ROOT / "plugins"),
                AIRFLOW__CORE__LOAD_EXAMPLES="False",
                AIRFLOW__CORE__UNIT_TEST_MODE="False",
                AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{af_home / 'airflow.db'}",
                OMH_HOME=str(af_home / "omh"),
            )
            values = []
            try:
                for _ in range(self.runs):
                    res = self.measure(
                        [sys.executable, str(Path(__file__).resolve()), "--_probe", "dagbag", str(dag_file)],
                        env,
                        f"dag_{dag_file.stem}",
                    )
                    probe = json.loads(res["stdout"].strip().splitlines()[-1])
                    if probe.get("import_errors"):
                        raise StepError(f"{dag_file.name}: import errors: {probe['import_errors']}")
                    values.append(probe)
                per_file[dag_file.name] = {
                    "parse_s": median([v["parse_s"] for v in values]),
                    "serialize_s": median([v["serialize_s"] for v in values]),
                    "dags": values[-1]["dags"],
                    "tasks": values[-1]["tasks"],
                }
            except StepError as exc:  # fall back: time `python dagfile.py` in a fresh process
                method = "fallback: wall time of `python <dagfile>` in a fresh process (DagBag failed)"
                times = [
                    self.measure([sys.executable, str(dag_file)], env, f"dagpy_{dag_file.stem}")["wall_s"]
                    for _ in range(self.runs)
                ]
                per_file[dag_file.name] = {"parse_s": median(times), "dagbag_error": str(exc)[:500]}
            finally:
                shutil.rmtree(af_home, ignore_errors=True)
        self.detail("dag_parse", {"method": method, "files": per_file})
        self.record(dag_parse_s_max=max(v["parse_s"] for v in per_file.values()))

    def step_floor(self) -> None:
        for rows in sorted(self.sizes):
            copies, walls = [], []
            for _ in range(self.runs):
                target = self.work / "floor_lake"
                shutil.rmtree(target, ignore_errors=True)
                res = self.measure(
                    [
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "--_probe",
                        "floor",
                        str(self.files[rows]),
                        str(target),
                    ],
                    self.env(),
                    f"floor_{rows}",
                )
                probe = json.loads(res["stdout"].strip().splitlines()[-1])
                if probe["rows"] != rows:
                    raise StepError(f"floor: COPY wrote {probe['rows']} rows, the file has {rows}")
                copies.append(probe["copy_s"])
                walls.append(res["wall_s"])
                shutil.rmtree(target, ignore_errors=True)
            self.detail(
                f"floor_{rows}", {"copy_runs_s": copies, "process_runs_s": [round(w, 3) for w in walls]}
            )
            key = "floor_s" if rows == self.large_size else "floor_s_2m"
            self.record(**{key: median(copies), key.replace("floor_s", "floor_process_s"): median(walls)})
        self._ratios()

    def step_same_output(self) -> None:
        for rows in sorted(self.sizes):
            times, walls, probe = [], [], {}
            for _ in range(self.runs):
                res = self.measure(
                    [
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "--_probe",
                        "same_output",
                        str(self.files[rows]),
                        str(self.work / "same_output"),
                    ],
                    self.env(),
                    f"same_output_{rows}",
                )
                probe = json.loads(res["stdout"].strip().splitlines()[-1])
                expected = self.meta[rows].get("observations_expected")
                if probe["rows"] != expected or probe["lake_rows"] != expected:
                    raise StepError(
                        f"same output: {probe['rows']} rows, {probe['lake_rows']} in the lake; "
                        f"the generator says {expected}"
                    )
                times.append(probe["sql_s"])
                walls.append(res["wall_s"])
            shutil.rmtree(self.work / "same_output", ignore_errors=True)
            self.detail(
                f"same_output_{rows}",
                {"sql_runs_s": times, "process_runs_s": [round(w, 3) for w in walls], "rows": probe["rows"]},
            )
            key = "same_output_floor_s" if rows == self.large_size else "same_output_floor_s_2m"
            self.record(**{key: median(times)})
        self._ratios()

    def _pipeline_once(self, rows: int, label: str) -> tuple[dict, Path]:
        home = self.fresh_home(f"pipeline_{rows}")
        res = self.ingest(self.files[rows], home, label)
        expected = self.meta[rows].get("observations_expected")
        if expected is not None and res["observations"] != expected:
            raise StepError(f"{label}: loaded {res['observations']} observations, expected {expected}")
        res["published"] = self.verify_published(rows, label, duckdb_path=home / "warehouse.duckdb")
        return res, home

    def verify_published(
        self, rows: int, label: str, duckdb_path: Path | None = None, pg_url: str | None = None
    ):
        """What the warehouse holds after the ingest: fact_flow rows and sum of values against the
        generator's figures. A mismatch is recorded as an error of its own (the timing stays)."""
        sql = f"SELECT count(*), sum(value) FROM fact_flow WHERE source_id = '{SOURCE_ID}'"
        try:
            if pg_url:
                import psycopg

                with psycopg.connect(pg_url) as con:
                    count, total = con.execute(sql).fetchone()
            else:
                import duckdb

                con = duckdb.connect(str(duckdb_path), read_only=True)
                try:
                    count, total = con.execute(sql).fetchone()
                finally:
                    con.close()
        except Exception as exc:
            message = f"error: {label}: cannot read fact_flow: {exc.__class__.__name__}: {str(exc)[:300]}"
            self.results["errors"][f"{label}_published"] = message
            return {"error": message}
        want_rows = self.meta[rows].get("observations_expected")
        want_sum = self.meta[rows].get("value_sum")
        out = {
            "fact_rows": int(count),
            "value_sum": float(total or 0),
            "expected_rows": want_rows,
            "expected_value_sum": want_sum,
        }
        out["ok"] = out["fact_rows"] == want_rows and round(out["value_sum"]) == want_sum
        if not out["ok"]:
            message = (
                f"error: {label}: `omh ingest` reported success but fact_flow holds {count} rows "
                f"(sum {out['value_sum']:.0f}); the file makes {want_rows} observations (sum {want_sum})"
            )
            self.results["errors"][f"{label}_published"] = message
            print(f"  ! {message}", flush=True)
        self.save()
        return out

    def step_pipeline(self) -> None:
        failed = []
        for rows in sorted(self.sizes):  # each size on its own: a failure at one still measures the other
            large = rows == self.large_size
            suffix = "10m" if large else "2m"
            keys = [f"peak_rss_mb_{suffix}", "pipeline_s" if large else "pipeline_s_2m"]
            try:
                self._pipeline_size(rows, large, suffix)
            except Exception as exc:
                self.fail(keys, f"pipeline_{rows}", exc)
                if large:
                    self.large_error = self.results["errors"][f"pipeline_{rows}"]
                failed.append(rows)
        self._ratios()
        if failed:
            raise StepError(f"omh ingest failed at {', '.join(f'{r:,}' for r in failed)} rows (see errors)")

    def _pipeline_size(self, rows: int, large: bool, suffix: str) -> None:
        walls, rss, runs = [], [], []
        home = None
        for _ in range(self.args.pipeline_runs):
            res, home = self._pipeline_once(rows, f"pipeline_{rows}")
            walls.append(res["wall_s"])
            rss.append(res["maxrss_mb"])
            keep = (
                "wall_s",
                "maxrss_mb",
                "group_rss_peak_mb",
                "user_s",
                "sys_s",
                "observations",
                "published",
                "steps",
            )
            runs.append({k: round(res[k], 3) if isinstance(res[k], float) else res[k] for k in keep})
        self.detail(f"pipeline_{rows}", runs)
        self.record(**{f"peak_rss_mb_{suffix}": round(max(rss), 1)})
        if large:
            self.large_home = home
            self.record(pipeline_s=median(walls), observations_10m=runs[-1]["observations"])
        else:
            self.record(pipeline_s_2m=median(walls))
            shutil.rmtree(home, ignore_errors=True)

    def _need_large_home(self) -> Path:
        if self.large_home is None or not (self.large_home / "warehouse.duckdb").is_file():
            if self.large_error:  # no second attempt: it failed once in this run
                raise StepError(f"needs the large file ingested, which failed: {self.large_error}")
            print("    (building the large warehouse first)", flush=True)
            try:
                _, self.large_home = self._pipeline_once(
                    self.large_size, f"pipeline_{self.large_size}_for_views"
                )
            except Exception as exc:
                self.large_error = str(exc)
                raise
        return self.large_home

    def step_skip(self) -> None:
        home = self._need_large_home()
        walls = []
        for _ in range(self.runs):
            res = self.ingest(self.files[self.large_size], home, "skip")
            if res["observations"] is not None:
                raise StepError("skip: the file already loaded was loaded again")
            walls.append(res["wall_s"])
        self.detail("skip_runs_s", [round(w, 3) for w in walls])
        self.record(skip_s=median(walls))

    def step_views(self) -> None:
        home = self._need_large_home()
        res = self.measure(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--_probe",
                "views",
                str(home / "warehouse.duckdb"),
                str(self.runs),
                str(self.args.view_timeout),
            ],
            self.env(),
            "views",
        )
        probe = json.loads(res["stdout"].strip().splitlines()[-1])
        self.detail("views", probe)
        timed = {v: t for v, t in probe["views"].items() if isinstance(t, (int, float))}
        failed = {v: t for v, t in probe["views"].items() if not isinstance(t, (int, float))}
        self.record(fact_rows=probe["fact_rows"])
        expected = self.meta[self.large_size].get("observations_expected")
        if probe["fact_rows"] != expected:
            raise StepError(
                f"views timed on a warehouse of {probe['fact_rows']} fact rows, not the {expected} the large "
                "file makes (the pipeline did not publish them): figures not meaningful"
            )
        if failed:
            raise StepError(f"views failed: {failed}")
        slowest = max(timed, key=timed.get)
        self.record(view_s_max=timed[slowest], view_slowest=slowest)

    def step_usual(self) -> None:
        rows = self.large_size
        walls, details = [], []
        for i in range(self.args.usual_runs):
            out = self.fresh_home(f"usual_{i}")
            try:
                res = self.measure(
                    [sys.executable, str(BENCH_DIR / "usual.py"), str(self.files[rows]), "--out", str(out)],
                    self.env(),
                    f"usual_{rows}",
                    timeout_s=self.args.usual_timeout,
                )
            finally:
                shutil.rmtree(out, ignore_errors=True)
            summary = json.loads(res["stdout"].strip().splitlines()[-1])
            expected = self.meta[rows].get("observations_expected")
            want_sum = self.meta[rows].get("value_sum")
            if summary.get("observations") != expected or round(summary.get("value_sum") or 0) != want_sum:
                raise StepError(
                    f"usual: {summary.get('observations')} observations (sum {summary.get('value_sum')}), "
                    f"the file makes {expected} (sum {want_sum}): {summary.get('reason', '')}"
                )
            walls.append(res["wall_s"])
            details.append(
                {"wall_s": round(res["wall_s"], 3), "maxrss_mb": round(res["maxrss_mb"], 1), **summary}
            )
        self.detail("usual", details)
        self.record(usual_s=median(walls), usual_peak_rss_mb=max(d["maxrss_mb"] for d in details))
        self._ratios()

    def step_concurrency(self) -> None:
        """``omh sql`` in a loop, each a fresh process, while ``omh ingest`` loads the smaller
        file (2 M rows in a full run) into a home that already publishes the real CBP file: every
        answer must come at once and give the figures of before the load or of after it. Then a
        small real file is loaded into the result, to time the copy a writer makes of the
        published warehouse (decision 0007)."""
        rows = self.small_size
        home = self.fresh_home("concurrency")
        env = self.env(OMH_HOME=str(home))
        raw = REPO_ROOT / "data" / "realdata" / "raw"
        seed = [*self.omh, "ingest", str(raw / "usa_cbp_sbo-encounters-fy22-fy25-aug.csv")]
        self.measure([*seed, "--source", "usa_cbp_swb_encounters"], env, "concurrency_seed")
        query = [*self.omh, "sql", "--csv", "SELECT count(*) AS n, sum(value) AS total FROM fact_flow"]

        def answer() -> tuple[float, str]:
            started = time.perf_counter()
            out = subprocess.run(query, env=env, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
            wall = time.perf_counter() - started
            lines = out.stdout.strip().splitlines()
            return wall, (
                lines[-1] if out.returncode == 0 and lines else f"error: {out.stderr.strip()[-300:]}"
            )

        before = answer()[1]
        cmd = [*self.omh, "ingest", str(self.files[rows]), "--source", SOURCE_ID]
        started = time.perf_counter()
        load = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        during: list[tuple[float, str]] = []
        try:
            while load.poll() is None:
                wall, figures = answer()
                if load.poll() is None:  # answered while the load still ran
                    during.append((wall, figures))
                time.sleep(0.25)
        finally:
            out, err = load.communicate()
        load_s = time.perf_counter() - started
        if load.returncode != 0:
            raise StepError(f"concurrency: the load failed: {out.strip()[-300:]} {err.strip()[-300:]}")
        after = answer()[1]
        odd = [f for _, f in during if f not in (before, after)]
        colombia = raw / "colombia_entradas_de_extranjeros_a_colombia_20250803.csv"
        self.measure(
            [*self.omh, "ingest", str(colombia), "--source", "col_entradas_extranjeros"],
            env,
            "concurrency_copy",
        )
        log_text = (home / "logs" / "omh.log").read_text(encoding="utf-8", errors="replace")
        copied = re.findall(r"copied for writing in ([\d.]+) s \((\d+) MB\)", log_text)
        walls = [w for w, _ in during]
        self.detail(
            "concurrency",
            {
                "rows": rows,
                "load_s": round(load_s, 3),
                "queries_during_load": len(during),
                "query_s": [round(w, 3) for w in walls],
                "before": before,
                "after": after,
                "other_answers": odd[:5],
                "copy_s_and_mb": copied[-1] if copied else None,
            },
        )
        if not during:
            raise StepError("concurrency: the load ended before any query answered: use a larger file")
        if odd:
            raise StepError(
                f"concurrency: {len(odd)} answers were neither before nor after the load: {odd[:3]}"
            )
        self.record(query_during_load_s=round(max(walls), 3), query_during_load_rows=rows)
        shutil.rmtree(home, ignore_errors=True)

    def step_pg(self) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise StepError("psycopg is not installed") from exc
        try:
            admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            raise StepError(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {str(exc).strip()[:200]}") from exc
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        with admin:
            server = admin.execute("SELECT version()").fetchone()[0]
            self.detail("pg_server", server)
            try:
                self.step_pg_floor(admin, base)
            except Exception as exc:
                self.fail(["pg_floor_s", "ratio_pg_vs_floor"], "pg_floor", exc)
            try:
                self.step_pg_pipeline(admin, base)
            except Exception as exc:
                self.fail(["pg_pipeline_s", "ratio_pg_vs_floor"], "pg_pipeline", exc)
            try:
                self.step_pg_same_output(admin, base)
            except Exception as exc:
                self.fail(["pg_same_output_floor_s", "ratio_pg_vs_same_output"], "pg_same_output", exc)
        self._ratios()

    @staticmethod
    def _recreate_db(admin, name: str) -> None:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")

    def step_pg_floor(self, admin, base: str) -> None:
        import psycopg
        import psycopg.sql

        path = self.files[self.large_size].resolve()
        options = "(FORMAT csv, HEADER true, ENCODING 'UTF8')"
        self._recreate_db(admin, PG_FLOOR_DB)
        times, method = [], "server"
        try:
            with psycopg.connect(f"{base}/{PG_FLOOR_DB}", autocommit=True) as con:
                cols = ", ".join(f"c{i} text" for i in range(9))
                for _ in range(self.runs):
                    con.execute("DROP TABLE IF EXISTS raw_col")
                    con.execute(f"CREATE TABLE raw_col ({cols})")
                    started = time.perf_counter()
                    if method == "server":
                        try:
                            con.execute(
                                psycopg.sql.SQL("COPY raw_col FROM {} WITH " + options).format(
                                    psycopg.sql.Literal(str(path))
                                )
                            )
                        except psycopg.Error as exc:  # the server cannot read the file: stream it
                            if times:
                                raise
                            self.results["details"]["pg_floor_server_copy_error"] = str(exc).strip()[:300]
                            method = "stdin"
                            con.execute("TRUNCATE raw_col")
                            started = time.perf_counter()
                    if method == "stdin":
                        with con.cursor() as cur, cur.copy(f"COPY raw_col FROM STDIN WITH {options}") as copy:
                            with path.open("rb") as fh:
                                while chunk := fh.read(1 << 20):
                                    copy.write(chunk)
                    times.append(time.perf_counter() - started)
                    count = con.execute("SELECT count(*) FROM raw_col").fetchone()[0]
                    if count != self.large_size:
                        raise StepError(f"pg floor: COPY loaded {count} rows, the file has {self.large_size}")
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {PG_FLOOR_DB} WITH (FORCE)")
        method = {
            "server": "server-side COPY FROM file (one connection)",
            "stdin": "COPY FROM STDIN, the file streamed by psycopg in 1 MB chunks (one connection)",
        }[method]
        self.detail("pg_floor", {"method": method, "runs_s": [round(t, 3) for t in times]})
        self.record(pg_floor_s=median(times), pg_floor_method=method)

    def step_pg_same_output(self, admin, base: str) -> None:
        """The same-output script once (rows and lake), then its rows COPYed into a fresh database
        per run: ``pg_same_output_floor_s`` = the script's median + the COPY's median."""
        work = self.work / "same_output_pg"
        made = same_output.run(
            self.files[self.large_size],
            work,
            dt.date.today().isoformat(),
            dt.datetime.now().isoformat(sep=" "),
        )
        copies = []
        try:
            for _ in range(self.runs):
                self._recreate_db(admin, PG_SAME_OUTPUT_DB)
                copied = same_output.pg_copy(Path(made["db"]), f"{base}/{PG_SAME_OUTPUT_DB}")
                if copied["rows"] != made["rows"]:
                    raise StepError(f"pg same output: COPY loaded {copied['rows']} rows of {made['rows']}")
                copies.append(copied["copy_s"])
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {PG_SAME_OUTPUT_DB} WITH (FORCE)")
            shutil.rmtree(work, ignore_errors=True)
        script_s = self.results.get("same_output_floor_s")
        if not isinstance(script_s, (int, float)):
            script_s = made["sql_s"]
        self.detail("pg_same_output", {"script_s": script_s, "copy_runs_s": copies})
        self.record(
            pg_same_output_copy_s=median(copies), pg_same_output_floor_s=round(script_s + median(copies), 3)
        )

    def step_pg_pipeline(self, admin, base: str) -> None:
        self._recreate_db(admin, PG_PIPELINE_DB)
        home = self.fresh_home("pg_pipeline")
        try:
            res = self.ingest(
                self.files[self.large_size],
                home,
                f"pg_pipeline_{self.large_size}",
                OMH_WAREHOUSE_URL=f"{base}/{PG_PIPELINE_DB}",
            )
            expected = self.meta[self.large_size].get("observations_expected")
            if res["observations"] != expected:
                raise StepError(
                    f"pg pipeline: loaded {res['observations']} observations, expected {expected}"
                )
            self.detail(
                "pg_pipeline",
                {
                    k: round(res[k], 3) if isinstance(res[k], float) else res[k]
                    for k in ("wall_s", "maxrss_mb", "group_rss_peak_mb", "user_s", "sys_s", "observations")
                },
            )
            self.record(pg_pipeline_s=round(res["wall_s"], 3), pg_peak_rss_mb=round(res["maxrss_mb"], 1))
            self.results["details"]["pg_pipeline"]["published"] = self.verify_published(
                self.large_size, "pg_pipeline", pg_url=f"{base}/{PG_PIPELINE_DB}"
            )
        finally:
            shutil.rmtree(home, ignore_errors=True)
            admin.execute(f"DROP DATABASE IF EXISTS {PG_PIPELINE_DB} WITH (FORCE)")

    def _ratios(self) -> None:
        r = self.results

        def ratio(key: str, num: str, den: str) -> None:
            a, b = r.get(num), r.get(den)
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
                r[key] = round(a / b, 3)
            elif key not in r or isinstance(r[key], str):
                missing = [k for k in (num, den) if not isinstance(r.get(k), (int, float))]
                r[key] = f"error: not measured: {', '.join(missing)}"

        ratio("ratio_vs_same_output", "pipeline_s", "same_output_floor_s")
        ratio("ratio_vs_same_output_2m", "pipeline_s_2m", "same_output_floor_s_2m")
        ratio("ratio_pg_vs_same_output", "pg_pipeline_s", "pg_same_output_floor_s")
        ratio("ratio_vs_floor", "pipeline_s", "floor_s")
        ratio("speedup_vs_usual", "usual_s", "pipeline_s")
        ratio("ratio_pg_vs_floor", "pg_pipeline_s", "pg_floor_s")
        ratio("small_vs_gx_import", "small_ingest_s", "gx_import_s")
        ratio("rss_growth_10m_vs_2m", "peak_rss_mb_10m", "peak_rss_mb_2m")
        ratio("ratio_vs_floor_2m", "pipeline_s_2m", "floor_s_2m")
        self.save()

    # -- run

    def run(self) -> dict:
        started = time.perf_counter()
        print(
            f"OMH benchmark: sizes {self.small_size:,} and {self.large_size:,} rows, {self.runs} runs; "
            f"results -> {self.out}",
            flush=True,
        )
        try:
            self.step("generate", ["file_mb_10m"], self.step_generate)
            if not self.files:
                raise StepError("no input files: nothing else can be measured")
            self.step("gx_small", ["gx_import_s", "small_ingest_s", "small_vs_gx_import"], self.step_gx_small)
            self.step("dags", ["dag_parse_s_max"], self.step_dags)
            self.step("floor", ["floor_s", "floor_s_2m"], self.step_floor)
            self.step("same_output", ["same_output_floor_s", "same_output_floor_s_2m"], self.step_same_output)
            self.step(
                "pipeline",
                ["pipeline_s", "pipeline_s_2m", "peak_rss_mb_2m", "peak_rss_mb_10m"],
                self.step_pipeline,
            )
            self.step("skip", ["skip_s"], self.step_skip)
            self.step("views", ["view_s_max"], self.step_views)
            self.step("usual", ["usual_s"], self.step_usual)
            self.step("pg", ["pg_floor_s", "pg_pipeline_s"], self.step_pg)
            self.step("concurrency", ["query_during_load_s"], self.step_concurrency)
        except StepError as exc:
            self.fail([], "run", exc)
        finally:
            self._ratios()
            self.results["total_s"] = round(time.perf_counter() - started, 1)
            self.results["finished_at"] = dt.datetime.now().isoformat(timespec="seconds")
            self.save()
            if not self.args.keep:
                shutil.rmtree(self.work, ignore_errors=True)
            else:
                self.results["work_dir"] = str(self.work)
                self.save()
        return self.results


# ---------------------------------------------------------------------------- table

ROWS = [
    ("same_output_floor_s", "s", "hand-written DuckDB script, the pipeline's rows and lake (large file)"),
    ("pipeline_s", "s", "omh ingest, large file, DuckDB warehouse, end to end"),
    ("ratio_vs_same_output", "x", "pipeline / same-output floor"),
    ("floor_s", "s", "bare DuckDB CSV -> partitioned Parquet (reference)"),
    ("ratio_vs_floor", "x", "pipeline / bare floor (reference)"),
    ("usual_s", "s", "pandas + GX Core on whole frames + to_parquet + DuckDB"),
    ("speedup_vs_usual", "x", "usual / pipeline"),
    ("floor_s_2m", "s", "floor, small size"),
    ("same_output_floor_s_2m", "s", "same-output floor, small size"),
    ("ratio_vs_same_output_2m", "x", "pipeline / same-output floor, small size"),
    ("pipeline_s_2m", "s", "omh ingest, small size"),
    ("peak_rss_mb_2m", "MB", "peak RSS of omh ingest, small size"),
    ("peak_rss_mb_10m", "MB", "peak RSS of omh ingest, large size"),
    ("rss_growth_10m_vs_2m", "x", "peak RSS large / small"),
    ("small_ingest_s", "s", f"omh ingest of {SMALL_ROWS:,} rows"),
    ("gx_import_s", "s", "python -c 'import great_expectations'"),
    ("small_vs_gx_import", "x", "small ingest / GX import"),
    ("skip_s", "s", "omh ingest of the large file again (skipped)"),
    ("dag_parse_s_max", "s", "slowest DAG file parse"),
    ("view_s_max", "s", "slowest view, count(*) over the large warehouse"),
    ("pg_floor_s", "s", "PostgreSQL COPY FROM of the raw CSV"),
    ("pg_pipeline_s", "s", "omh ingest, large file, PostgreSQL warehouse"),
    ("ratio_pg_vs_floor", "x", "PostgreSQL pipeline / PostgreSQL floor (reference)"),
    ("pg_same_output_floor_s", "s", "same-output script + binary COPY of its rows into the indexed table"),
    ("ratio_pg_vs_same_output", "x", "PostgreSQL pipeline / PostgreSQL same-output floor"),
    ("query_during_load_s", "s", "slowest `omh sql` while the small file loads"),
]


def verdict(key: str, value) -> str:
    if key not in TARGETS:
        return ""
    op, limit = TARGETS[key]
    if not isinstance(value, (int, float)):
        return f"{op} {limit:g}  ?"
    ok = value <= limit if op == "<=" else value >= limit
    return f"{op} {limit:g}  {'ok' if ok else 'MISSED'}"


def table(results: dict) -> str:
    sizes = results.get("sizes", {})
    lines = [f"{'key':22} {'value':>12}  {'target':14} what", "-" * 100]
    for key, unit, what in ROWS:
        value = results.get(key)
        if isinstance(value, (int, float)):
            shown = f"{value:,.3f} {unit}" if unit != "MB" else f"{value:,.0f} {unit}"
        elif value is None:
            shown = "-"
        else:
            shown = "ERROR"
        unpublished = {
            "pipeline_s": f"pipeline_{sizes.get('10m')}_published",
            "pipeline_s_2m": f"pipeline_{sizes.get('2m')}_published",
            "pg_pipeline_s": "pg_pipeline_published",
        }
        if key in unpublished and unpublished[key] in results.get("errors", {}):
            what += "  [fact_flow NOT as expected: see errors]"
        lines.append(f"{key:22} {shown:>12}  {verdict(key, value):14} {what}")
    lines.append("-" * 100)
    lines.append(
        f"sizes: small {sizes.get('2m', '?'):,} / large {sizes.get('10m', '?'):,} rows; "
        f"machine: {results['machine'].get('cpu_count')} CPUs, {results['machine'].get('ram_mb')} MB RAM; "
        f"commit {(results.get('git') or {}).get('commit') or '?'}"
    )
    for step, message in results.get("errors", {}).items():
        if not step.endswith("_trace"):
            lines.append(f"error in {step}: {message[:300]}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- probes
# Run in fresh processes by the steps above: ``run.py --_probe NAME ARGS...`` prints one JSON line.


def probe_floor(csv_path: str, target: str) -> dict:
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    started = time.perf_counter()
    con.execute(
        f"COPY (SELECT * FROM read_csv('{csv_path}')) TO '{target}' "
        '(FORMAT parquet, PARTITION_BY ("Año", "Mes"), OVERWRITE_OR_IGNORE)'
    )
    copy_s = time.perf_counter() - started
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{target}/**/*.parquet')").fetchone()[0]
    return {
        "copy_s": round(copy_s, 3),
        "rows": rows,
        "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
    }


def probe_dagbag(dag_file: str) -> dict:
    import importlib
    from pathlib import Path as P

    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.utils.file import iter_airflow_imports

    # What the DAG processor does before it parses (parsing_pre_import_modules, on by default).
    for module in iter_airflow_imports(dag_file):
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    bag = BundleDagBag(
        dag_folder=dag_file, bundle_path=P(dag_file).parent, bundle_name="dags-folder", load_op_links=False
    )
    stats = bag.dagbag_stats
    parse_s = sum(
        s.duration.total_seconds() if hasattr(s.duration, "total_seconds") else s.duration for s in stats
    )
    started = time.perf_counter()
    try:
        from airflow.serialization.serialized_objects import DagSerialization

        for dag in bag.dags.values():
            DagSerialization.to_dict(dag)
    except ImportError:
        pass
    return {
        "parse_s": round(parse_s, 4),
        "serialize_s": round(time.perf_counter() - started, 4),
        "dags": sum(s.dag_num for s in stats),
        "tasks": sum(s.task_num for s in stats),
        "import_errors": {str(k): str(v)[-500:] for k, v in bag.import_errors.items()},
    }


def probe_views(warehouse: str, runs: str, timeout: str) -> dict:
    import threading

    import duckdb

    con = duckdb.connect(warehouse, read_only=True)
    con.execute("SET enable_progress_bar = false")
    fact_rows = con.execute("SELECT count(*) FROM fact_flow").fetchone()[0]
    names = [
        r[0]
        for r in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary ORDER BY view_name"
        ).fetchall()
    ]
    out: dict[str, object] = {}
    rows: dict[str, int] = {}
    for name in names:
        times = []
        for _ in range(int(runs)):
            timer = threading.Timer(float(timeout), con.interrupt)
            timer.start()
            started = time.perf_counter()
            try:
                rows[name] = con.execute(f'SELECT count(*) FROM (SELECT * FROM "{name}")').fetchone()[0]
                times.append(time.perf_counter() - started)
            except Exception as exc:
                elapsed = time.perf_counter() - started
                out[name] = f"error after {elapsed:.1f} s: {exc.__class__.__name__}: {str(exc)[:200]}"
                break
            finally:
                timer.cancel()
            if times[-1] > 10:  # slow: one run says enough
                break
        if times and name not in out:
            out[name] = round(statistics.median(times), 3)
    return {
        "fact_rows": fact_rows,
        "views": out,
        "view_rows": rows,
        "query": "SELECT count(*) FROM (SELECT * FROM <view>)",
        "runs": int(runs),
    }


def probe_same_output(csv_path: str, work: str) -> dict:
    stamp = dt.datetime.now()
    return same_output.run(Path(csv_path), Path(work), stamp.date().isoformat(), stamp.isoformat(sep=" "))


PROBES = {
    "floor": probe_floor,
    "dagbag": probe_dagbag,
    "views": probe_views,
    "same_output": probe_same_output,
}


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="OMH benchmark: pipeline vs floor vs usual approach")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: sizes {QUICK_SIZES[0]:,} and {QUICK_SIZES[1]:,}, 1 run, results/quick.json",
    )
    p.add_argument(
        "--sizes",
        type=lambda s: [int(float(x)) for x in s.split(",")],
        help="the two file sizes in rows, small,large (default 2000000,10000000)",
    )
    p.add_argument("--runs", type=int, help="runs of the repeated measurements (default 3; --quick 1)")
    p.add_argument("--pipeline-runs", type=int, default=1, help="runs of omh ingest at each size (default 1)")
    p.add_argument("--usual-runs", type=int, default=1, help="runs of the usual approach (default 1)")
    p.add_argument(
        "--mem-limit-gb",
        type=float,
        default=None,
        help="kill any measured command whose processes pass this RSS, so that a run cannot starve a shared "
        "machine; recorded as an error (default: 60%% of RAM or 80%% of the memory available at start, "
        "the lower)",
    )
    p.add_argument("--usual-timeout", type=float, default=3600, help="seconds (default 3600)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per command (default 3600)")
    p.add_argument("--view-timeout", type=float, default=300, help="seconds per view query (default 300)")
    p.add_argument("--only", type=lambda s: set(s.split(",")), help=f"steps to run, of {','.join(STEPS)}")
    p.add_argument("--seed", type=int, default=generate.DEFAULT_SEED)
    p.add_argument("--data", type=Path, default=generate.DATA_DIR, help="cache of generated files")
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default bench/results/)")
    p.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results.json)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (homes, logs)")
    p.add_argument("--_probe", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.only and not args.only <= set(STEPS):
        p.error(f"--only: unknown steps {sorted(args.only - set(STEPS))}; known: {','.join(STEPS)}")
    if args.only:
        args.only.add("generate")
    args.sizes = args.sizes or list(QUICK_SIZES if args.quick else FULL_SIZES)
    if len(args.sizes) != 2 or min(args.sizes) < 1:
        p.error("--sizes takes two row counts: small,large")
    args.runs = args.runs or (1 if args.quick else 3)
    args.out = args.out or (RESULTS_DIR / "quick.json" if args.quick else RESULTS_JSON)
    args.work = args.work or RESULTS_DIR
    args.work.mkdir(parents=True, exist_ok=True)
    if args.mem_limit_gb is None:
        mem = meminfo_mb()
        total = mem.get("MemTotal") or 8192
        args.mem_limit_gb = round(min(0.6 * total, 0.8 * mem.get("MemAvailable", total)) / 1024, 1)
    return args


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)  # save what was measured, stop the measured command
    if args._probe:
        name, *rest = args._probe
        print(json.dumps(PROBES[name](*rest)))
        return 0
    try:
        results = Bench(args).run()
    except KeyboardInterrupt:
        print(f"\ninterrupted: what was measured is in {args.out}", file=sys.stderr)
        return 130
    print()
    print(table(results))
    print(f"\nwritten {args.out}")
    if args.out == RESULTS_JSON:  # keep a history of full runs (gitignored)
        stamp = results["started_at"].replace(":", "").replace("-", "")
        shutil.copy2(args.out, RESULTS_DIR / f"results_{stamp}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
