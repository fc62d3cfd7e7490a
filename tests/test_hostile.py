"""Hostile files through ``omh ingest`` against a warehouse that already publishes real figures.

The corpus (tests/hostile_corpus.py) is written fresh into a temporary folder: empty and
header-only files, truncated rows, wrong delimiters and encodings, UTF-16 and BOMs, NUL bytes,
binary junk, a 50 MB line, a CSV named .xlsx, broken and zip-bomb workbooks, duplicate rows, text,
negative and implausible counts, periods in 2091, another country's file, formula labels,
person-level files, and file names a shell would love. Every file goes through the real command
(a child process, never a shell) against a copy of a warehouse pre-loaded with the real Darién and
CBP files, and must:

* exit 1 (refused) or 2 (unreadable) with a one-line reason on stderr and no traceback, be copied to
  ``quarantine/<source>/`` with its reason, and leave ``fact_flow`` and every lake file unchanged;
* or, when a reader can decode it (UTF-16 with its BOM, a UTF-8 BOM), load with exactly the figures
  of the original (every observation unchanged, the lake untouched);
* take under 60 s and under 2 GB: each ``omh`` runs under a small launcher that reports its own
  ``resource.getrusage(RUSAGE_CHILDREN)``, i.e. the peak RSS of that one ``omh`` process.

Two workers, each on its own copy of the published warehouse, share the corpus (2 cores); it runs
in the background from the start of the session, beside the other tests (tests/background.py).
``HOSTILE_TABLE=path`` writes the corpus table (case, outcome, exit, reason, seconds, CPU seconds, peak MB).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import hostile_corpus as hc
import pytest
from background import BACKGROUND, job

MAX_SECONDS = 240  # bounded (no hang): generous, the machine may be shared
MAX_PEAK_MB = 2048
WORKERS = 2
EXIT = {"refused": (1,), "unreadable": (2,), "nonzero": (1, 2), "same": (0,)}
CASES = hc.cases()


@dataclass
class Outcome:
    case: hc.Case
    run: hc.Run
    home: Path
    before: tuple
    after: tuple
    lake_before: dict
    lake_after: dict
    obs_before: list | None
    obs_after: list | None
    new_quarantine: list[Path]
    sentinels: list[Path]


# ``published`` (the real Darién and CBP figures, loaded by ``omh ingest``) and ``pycache`` are
# those of the background work (tests/background.py), shared with test_faults.py.


def _quarantined(home: Path) -> set[Path]:
    folder = home / "quarantine"
    return {p for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else set()


def _run_case(case: hc.Case, home: Path, work: Path, pycache: Path) -> Outcome:
    incoming = work / "incoming"
    path = case.write(incoming)
    before, lake_before = hc.figures(home), hc.lake_state(home)
    original_source = hc.SOURCE_OF.get(case.original)
    obs_before = hc.observations(home, original_source) if original_source else None
    quarantine_before = _quarantined(home)
    run = hc.run_omh(["ingest", str(path), "--source", case.source], hc.omh_env(home, pycache), work / "out")
    sentinels = [p for p in (work, work / "out", incoming, home, Path.cwd()) if (p / "OMH_PWNED").exists()]
    outcome = Outcome(
        case,
        run,
        home,
        before,
        hc.figures(home),
        lake_before,
        hc.lake_state(home),
        obs_before,
        hc.observations(home, original_source) if original_source else None,
        sorted(_quarantined(home) - quarantine_before),
        sentinels,
    )
    if case.heavy:  # tens of MB: not kept once judged
        path.unlink(missing_ok=True)
    return outcome


@job("corpus")
def run_corpus(published: Path, pycache: Path, root: Path) -> dict[str, Outcome]:
    """Run the whole corpus once (two workers, each on its own copy of the published warehouse),
    in the background (tests/background.py), beside the other tests."""
    homes = []
    for i in range(WORKERS):
        home = root / f"worker{i}" / "home"
        shutil.copytree(published, home)
        homes.append(home)
    # Heavy cases first, each worker taking the next case when it is free, so that both finish at
    # about the same time (the cases take from 2 s to a minute).
    pending: queue.SimpleQueue[hc.Case] = queue.SimpleQueue()
    for case in sorted(CASES, key=lambda c: not c.heavy):
        pending.put(case)
    results: dict[str, Outcome] = {}
    lock = threading.Lock()

    def work(i: int) -> None:
        while True:
            try:
                case = pending.get_nowait()
            except queue.Empty:
                return
            outcome = _run_case(case, homes[i], root / f"worker{i}", pycache)
            with lock:
                results[case.name] = outcome

    with ThreadPoolExecutor(WORKERS) as pool:
        for future in [pool.submit(work, i) for i in range(WORKERS)]:
            future.result()
    table = os.environ.get("HOSTILE_TABLE")
    if table:
        _write_table(Path(table), [results[c.name] for c in CASES])
    return results


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Outcome]:
    """The corpus's outcomes (``run_corpus``, started in the background with the session)."""
    return BACKGROUND.result("corpus", tmp_path_factory)


def _reason(outcome: Outcome) -> str:
    lines = outcome.run.stderr.splitlines() if outcome.run.rc else outcome.run.stdout.splitlines()
    return lines[0] if lines else ""


def _write_table(path: Path, outcomes: list[Outcome]) -> None:
    status = {0: "loaded (same figures)", 1: "refused", 2: "unreadable"}
    lines = [
        "| case | file | outcome | exit | reason | s | CPU s | peak MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        reason = _reason(o).replace("|", "\\|")
        lines.append(
            f"| {o.case.name} | `{hc_name(o.case.file_name)}` | {status.get(o.run.rc, o.run.rc)} | {o.run.rc} | "
            f"{reason[:160]} | {o.run.seconds:.1f} | {o.run.cpu_seconds:.1f} | {o.run.peak_mb:.0f} |"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="backslashreplace")


def hc_name(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)[1:-1][:60]


@pytest.mark.slow
@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_hostile_file(name, corpus):
    o = corpus[name]
    case, run = o.case, o.run
    where = f"{name}: exit {run.rc}, {run.seconds:.1f} s, {run.peak_mb:.0f} MB\n{run.output[-2000:]}"
    assert not run.timed_out and run.seconds < MAX_SECONDS, where
    assert run.peak_mb < MAX_PEAK_MB, where
    assert "Traceback" not in run.output and "Logging error" not in run.output, where
    assert run.rc in EXIT[case.expect], where
    assert not o.sentinels, f"a file name reached a shell: {o.sentinels}"

    if case.expect == "same":
        # Decoded correctly: it loads, and every published figure is what it was.
        assert o.after == o.before, where
        assert o.obs_after == o.obs_before, where
        assert o.lake_after == o.lake_before, where
        return

    # Refused: one line (and the report's path), nothing on stdout, quarantined, nothing changed.
    lines = run.stderr.splitlines()
    assert run.stdout == "" and 1 <= len(lines) <= 2, where
    assert lines[0].strip() and (len(lines) == 1 or lines[1].startswith("report: ")), where
    if case.says:
        assert case.says.casefold() in lines[0].casefold(), where
    assert o.after == o.before, f"published figures changed\n{where}"
    assert o.lake_after == o.lake_before, f"the lake changed\n{where}"
    copies = [p for p in o.new_quarantine if not p.name.endswith(".reason.json")]
    assert len(copies) == 1, f"quarantine got {o.new_quarantine}\n{where}"
    copy = copies[0]
    assert copy.parent == o.home / "quarantine" / case.source, copy
    assert copy.stat().st_size == (case.path.stat().st_size if case.path.exists() else copy.stat().st_size)
    if case.path.exists():
        assert copy.read_bytes() == case.path.read_bytes()
    reason = json.loads(copy.with_name(copy.name + ".reason.json").read_text(encoding="utf-8"))
    assert reason["reason"]


@pytest.mark.slow
def test_person_level_data_stays_in_quarantine(corpus):
    """A person-level file is refused with a reason that says so, and none of its identifiers is
    copied anywhere but quarantine: not the reason, the report, the log, the manifest, the
    validation results, the lake or the scratch folders."""
    cases = [c for c in CASES if c.keep_out]
    assert len(cases) >= 4
    for case in cases:
        o = corpus[case.name]
        assert o.run.rc == 1 and "person-level data" in _reason(o), o.run.output
        assert "aggregates only" in _reason(o)
        for value in case.keep_out:
            assert value in case.build().decode("utf-8"), value  # the test looks for real values
            assert value not in o.run.output
            for path in o.home.rglob("*"):
                if path.is_file() and "quarantine" not in path.relative_to(o.home).parts:
                    assert value.encode() not in path.read_bytes(), f"{value!r} leaked into {path}"
            con = duckdb.connect(str(o.home / "warehouse.duckdb"), read_only=True)
            try:
                leaks = con.execute(
                    "SELECT count(*) FROM file_manifest WHERE reason LIKE '%' || ? || '%'", [value]
                ).fetchall()[0][0]
                leaks += con.execute(
                    "SELECT count(*) FROM dq_result WHERE examples LIKE '%' || ? || '%'", [value]
                ).fetchall()[0][0]
            finally:
                con.close()
            assert leaks == 0, value


@pytest.mark.slow
def test_peak_memory_of_every_run_is_bounded(corpus):
    """The largest ``omh`` of the corpus (each measured alone by RUSAGE_CHILDREN) stays under 2 GB."""
    peak = max(o.run.peak_mb for o in corpus.values())
    slowest = max(o.run.seconds for o in corpus.values())
    assert peak < MAX_PEAK_MB and slowest < MAX_SECONDS, (peak, slowest)


@pytest.mark.slow
def test_verify_passes_after_the_corpus(corpus, pycache, tmp_path):
    """After every hostile file, lake and warehouse still agree (``omh verify``)."""
    for home in sorted({o.home for o in corpus.values()}):
        run = hc.run_omh(["verify"], hc.omh_env(home, pycache), tmp_path)
        assert run.rc == 0, run.output


# ---------------------------------------------------------------------------- queries and exports

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def small_home(tmp_path_factory) -> Path:
    """A warehouse publishing the Darién file (loaded in this process)."""
    from transforms.ingest.pipeline import ingest_file

    home = tmp_path_factory.mktemp("small") / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("OMH_HOME", str(home))
    mp.delenv("OMH_WAREHOUSE_URL", raising=False)
    try:
        assert ingest_file(hc.DARIEN, "pan_darien_yearly").status == "loaded"
    finally:
        mp.undo()
    return home


def test_omh_sql_is_read_only(small_home, pycache, tmp_path):
    before = hc.figures(small_home), hc.lake_state(small_home)
    run = hc.run_omh(["sql", "DELETE FROM fact_flow"], hc.omh_env(small_home, pycache), tmp_path)
    assert run.rc == 1 and "Traceback" not in run.output, run.output
    assert len(run.stderr.splitlines()) == 1 and "read-only" in run.stderr
    assert (hc.figures(small_home), hc.lake_state(small_home)) == before


@pytest.mark.parametrize(
    "attack",
    [
        "DELETE FROM fact_flow",
        "UPDATE fact_flow SET value = 0",
        "SELECT 1; DELETE FROM fact_flow",
        "DROP VIEW v_flow",
        "CREATE TABLE stolen AS SELECT * FROM fact_flow",
        "COPY fact_flow TO '{tmp}/leak.csv'",
        "ATTACH '{tmp}/other.duckdb' AS other",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_blob('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM read_parquet('{tmp}/../*.parquet')",
        "COPY (SELECT 1) TO '{tmp}/leak.parquet' (FORMAT parquet)",
        "SET disabled_filesystems = ''",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
    ],
)
def test_analyst_queries_cannot_write_or_reach_files(attack, small_home, tmp_path):
    """The same connection ``omh sql`` and ``omh export`` use: read-only, no file system access."""
    from transforms.config import Settings
    from transforms.storage.warehouse import Warehouse
    from transforms.tools.export import read_only_query

    before = hc.figures(small_home)
    settings = Settings(small_home, f"duckdb:///{small_home / 'warehouse.duckdb'}")
    with Warehouse(settings, read_only=True) as wh, pytest.raises(duckdb.Error):
        read_only_query(wh, attack.format(tmp=tmp_path))
    assert hc.figures(small_home) == before
    assert not list(tmp_path.iterdir())


def test_sql_csv_neutralizes_formula_cells(small_home, pycache, tmp_path):
    import csv
    import io

    query = (
        "SELECT '=HYPERLINK(\"http://x\")' AS \"=header\", '+1' AS p, '-2+3' AS m, '@SUM(A1)' AS a, "
        "chr(9) || '=1' AS t, 'Brasil' AS plain, -5 AS negative, 2.5 AS number"
    )
    run = hc.run_omh(["sql", query, "--csv"], hc.omh_env(small_home, pycache), tmp_path)
    assert run.rc == 0, run.output
    header, row = list(csv.reader(io.StringIO(run.stdout)))
    assert header[0] == "'=header"
    assert row == ['\'=HYPERLINK("http://x")', "'+1", "'-2+3", "'@SUM(A1)", "'\t=1", "Brasil", "-5", "2.5"]


def test_exports_neutralize_formula_cells(small_home, pycache, tmp_path):
    import openpyxl

    env = hc.omh_env(small_home, pycache)
    query = "SELECT '=1+1' AS f, '@x' AS a, 'Haití' AS label, -5 AS n, DATE '2022-01-01' AS d"
    xlsx = tmp_path / "out.xlsx"
    run = hc.run_omh(["export", str(xlsx), "--query", query], env, tmp_path / "w")
    assert run.rc == 0, run.output
    ws = openpyxl.load_workbook(xlsx).active
    cells = [c for row in ws.iter_rows() for c in row]
    assert not [c for c in cells if c.data_type == "f"], "a formula reached the workbook"
    assert [c.value for c in cells][:5] == ["f", "a", "label", "n", "d"]
    assert [c.value for c in cells][5:9] == ["'=1+1", "'@x", "Haití", -5]
    # A published view, to CSV.
    out = tmp_path / "pub.csv"
    run = hc.run_omh(["export", str(out), "--view", "pub_flow_by_period"], env, tmp_path / "w")
    assert run.rc == 0, run.output
    assert out.read_text(encoding="utf-8").startswith("reporter_iso3,")
    # Anything but a view name is refused, in one line.
    run = hc.run_omh(["export", str(out), "--view", "fact_flow; DROP TABLE x"], env, tmp_path / "w")
    assert run.rc == 1 and len(run.stderr.splitlines()) == 1, run.output


@pytest.mark.postgres
def test_read_only_query_on_postgres(tmp_path):
    """PostgreSQL runs several statements in one simple query ("COMMIT; SET ...; COMMIT; CREATE"),
    which escapes a read-only session default: the analyst's query runs alone in a read-only
    transaction that is rolled back."""
    import psycopg
    from test_warehouse import postgres_schema

    from transforms.config import Settings
    from transforms.storage.warehouse import Warehouse
    from transforms.tools.export import read_only_query

    with postgres_schema() as url:
        with Warehouse(Settings(tmp_path, url)) as wh:
            wh.ensure_schema()
        with Warehouse(Settings(tmp_path, url), read_only=True) as wh:
            assert read_only_query(wh, "SELECT count(*) FROM v_flow")[1] == [(0,)]
            for attack in (
                "COMMIT; SET default_transaction_read_only = off; COMMIT; CREATE TABLE stolen (i int)",
                "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; COMMIT; CREATE TABLE stolen (i int)",
                "CREATE TABLE stolen (i int)",
                "DELETE FROM fact_flow",
            ):
                with pytest.raises((psycopg.Error, ValueError)):  # ValueError: returns no rows
                    read_only_query(wh, attack)
        with psycopg.connect(url, autocommit=True) as con:
            assert con.execute("SELECT to_regclass('stolen')").fetchone() == (None,)


def test_neutralize_prefixes_exactly_the_formula_starts():
    from hypothesis import given
    from hypothesis import strategies as st

    from transforms.stages.guard import FORMULA_START, neutralize

    @given(st.text(max_size=20))
    def check(text):
        out = neutralize(text)
        if text.startswith(FORMULA_START):
            assert out == "'" + text
        else:
            assert out == text

    check()
    assert neutralize(-5) == -5 and neutralize(None) is None and neutralize(2.5) == 2.5


# ---------------------------------------------------------------------------- secrets

_SKIP_DIRS = {
    ".venv",
    ".venv-moto",  # moto's own virtualenv (make setup), like .venv: installed packages, not ours
    "var",
    ".git",
    ".hypothesis",
    ".pytest_cache",
    ".ruff_cache",
    "__pycache__",
    "node_modules",
}
_TEXT = {".py", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".sql", ".md", ".txt", ".json", ".sh", ".env", ""}
# Built from pieces so that this file does not match itself. A value that is a reference (${VAR},
# {name}, <placeholder>, %s, a psql :'variable') is not a credential.
_NOT_LITERAL = "(?![$]\\{|\\{|<|%|:)"
SECRET_PATTERNS = {
    "a literal password or token": "(?i)\\b(pass(word|wd)?|pwd|secret|token|api[_-]?key|fernet[_-]?key)\\b[\"']?"
    "[ \\t]*[:=][ \\t]*[\"']" + _NOT_LITERAL + "[^\"'\\s]{4,}[\"']",
    "a URL with a password": "(?i)\\b[a-z][a-z0-9+.-]*://[^/\\s:@'\"]+:" + _NOT_LITERAL + "[^@\\s/'\"]+@",
    "an unquoted password setting": "(?m)^[ \\t]*(export[ \\t]+|ENV[ \\t]+)?[A-Z0-9_]*(PASSWORD|SECRET|TOKEN|API_KEY)"
    "[A-Z0-9_]*[ \\t]*=[ \\t]*(?![$\\s'\"{<%:])\\S+",
    "an AWS key": "AKIA" + "[0-9A-Z]{16}",
    "a private key": "-----BEGIN [A-Z ]*" + "PRIVATE KEY-----",
    "a GitHub token": "gh[pousr]_" + "[A-Za-z0-9]{36}",
}
# Tests start throwaway servers with throwaway passwords: only real-looking keys count there.
_TEST_ONLY = ("an AWS key", "a private key", "a GitHub token", "a URL with a password")


def _repo_files():
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in _SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if rel.parts[:2] in (("bench", "data"), ("bench", "results")) or rel.parts[:1] == ("data",):
            continue
        if path.is_file() and (path.suffix in _TEXT or path.name in ("Dockerfile", "Makefile")):
            yield path


def test_no_credentials_in_the_repository():
    import re

    hits = []
    for path in _repo_files():
        rel = path.relative_to(ROOT)
        text = path.read_text(encoding="utf-8", errors="replace")
        for what, pattern in SECRET_PATTERNS.items():
            if rel.parts[0] == "tests" and what not in _TEST_ONLY:
                continue
            for m in re.finditer(pattern, text):
                if re.search(r"\s:'\w+'$", m.group(0)):  # psql's :'variable'
                    continue
                hits.append(f"{rel}: {what}: {m.group(0)[:60]}")
    assert not hits, "\n".join(hits)
    assert not (ROOT / ".env").exists(), ".env holds the real secrets: it is never committed"


def test_compose_takes_every_secret_from_the_environment():
    import re

    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    secret_name = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|JWT|(^|_)KEY$", re.I)
    required = re.compile(r"^\$\{[A-Z0-9_]+:\?[^}]*\}$")
    checked = 0

    def walk(node, where):
        nonlocal checked
        if isinstance(node, dict):
            for key, value in node.items():
                key = str(key)
                if isinstance(value, str) and "://" in value and "@" in value:
                    # A URL's credential comes from ${VAR:?...}.
                    checked += 1
                    for cred in re.findall(r"://[^/@\s]*@", value):
                        assert ":${" in cred and ":?" in cred, f"{where}.{key}: {value}"
                elif isinstance(value, str) and secret_name.search(key) and not key.upper().endswith("_FILE"):
                    checked += 1
                    assert required.match(value), f"{where}.{key} = {value!r}: use ${{VAR:?message}}"
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]")

    walk(compose, "compose")
    assert checked >= 5
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    for line in example.splitlines():
        if "=" in line and not line.startswith("#") and secret_name.search(line.split("=")[0].strip()):
            value = line.split("=", 1)[1]
            assert value == "" or "${" in value, f".env.example gives a value: {line}"


def test_a_warehouse_password_never_reaches_output_or_log(pycache, tmp_path):
    password = "pw-" + os.urandom(6).hex()
    home = tmp_path / "home"
    env = hc.omh_env(home, pycache, OMH_WAREHOUSE_URL=f"postgresql://omh:{password}@127.0.0.1:1/omh")
    for args in (["sql", "SELECT 1"], ["ingest", str(hc.DARIEN), "--source", "pan_darien_yearly"]):
        run = hc.run_omh(args, env, tmp_path / "w")
        assert run.rc != 0 and "Traceback" not in run.output, run.output
        assert password not in run.output
    logs = (
        "".join(p.read_text(errors="replace") for p in (home / "logs").glob("*"))
        if (home / "logs").exists()
        else ""
    )
    assert password not in logs


# ---------------------------------------------------------------------------- landing file names


def test_no_code_hands_anything_to_a_shell():
    """Landing file names travel as Python paths and argv lists only: no shell=True, os.system,
    os.popen, nor a command given as one string, anywhere in the pipeline, the DAGs or the plugins."""
    import ast

    bad = []
    for folder in ("transforms", "dags", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = ast.unparse(node.func)
                if name in ("os.system", "os.popen", "commands.getoutput") or name.endswith("BashOperator"):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
                if name.startswith("subprocess.") or name.endswith(("Popen", "check_output", "check_call")):
                    if any(k.arg == "shell" and ast.unparse(k.value) != "False" for k in node.keywords):
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}(shell=...)")
                    if node.args and isinstance(node.args[0], (ast.Constant, ast.JoinedStr)):
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name} with a command string")
    assert not bad, bad


def test_landing_files_never_escape_their_folder(tmp_path, monkeypatch):
    """Shell characters and ``..`` in names, a symbolic link out of the landing zone, ``..`` in a
    source id: every copy, report and reason stays in its folder, and no name runs anything."""
    from transforms.contracts.model import ContractError
    from transforms.ingest.landing import source_files
    from transforms.ingest.pipeline import ingest_file, ingest_source

    home = tmp_path / "home"
    monkeypatch.setenv("OMH_HOME", str(home))
    monkeypatch.delenv("OMH_WAREHOUSE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    landing = home / "landing" / "PAN"
    landing.mkdir(parents=True)
    negative = hc.replace_once(hc.darien(), "Cuba,2021,17603", "Cuba,2021,-1").encode()
    secret = tmp_path / "outside" / "secret_darien.csv"
    secret.parent.mkdir()
    secret.write_bytes(negative + b"# not for the landing zone\n")
    names = ["x darien; touch PWNED.csv", "darien..\\..\\x.csv", "darien$(touch PWNED).csv", "darien`id`.csv"]
    for name in names:
        (landing / name).write_bytes(negative)
    (landing / "link_darien.csv").symlink_to(secret)

    from transforms.config import settings
    from transforms.contracts.loading import get_contract

    found = [p.name for p in source_files(get_contract("pan_darien_yearly"), settings())]
    assert sorted(found) == sorted(names), "a symbolic link out of the landing zone was taken"
    results = ingest_source("pan_darien_yearly")
    assert [r.status for r in results] == ["refused"] * len(names)
    # A path with ``..`` resolves to a real file; its copies still land in the source's folder.
    dotted = landing / ".." / ".." / ".." / "outside" / "secret_darien.csv"
    assert ingest_file(dotted, "pan_darien_yearly").status in ("refused", "unreadable")
    with pytest.raises(ContractError):
        ingest_file(landing / names[0], "../../../tmp")

    quarantine = home / "quarantine"
    for path in quarantine.rglob("*"):
        assert path.resolve().is_relative_to(quarantine / "pan_darien_yearly"), path
    for path in (home / "reports").rglob("*"):
        assert path.resolve().is_relative_to(home / "reports" / "pan_darien_yearly"), path
    assert len([p for p in quarantine.rglob("*.csv")]) == len(names) + 1
    assert not list(tmp_path.rglob("PWNED")) and not (ROOT / "PWNED").exists()
    assert secret.read_bytes().endswith(b"# not for the landing zone\n")  # landing files stay as sent
    assert all((landing / n).exists() for n in names)


# ---------------------------------------------------------------------------- person-level headers


@pytest.mark.parametrize(
    "header,kind",
    [
        ("Pasaporte", "document"),
        ("Nº de documento", "document"),
        ("Número de pasaporte", "document"),
        ("Cédula", "document"),
        ("DNI", "document"),
        ("CURP", "document"),
        ("Passport number", "document"),
        ("Passaporte", "document"),
        ("Paspoortnummer", "document"),
        ("Fecha de nacimiento", "birth"),
        ("Date of birth", "birth"),
        ("Data de nascimento", "birth"),
        ("Geboortedatum", "birth"),
        ("Nombre", "name"),
        ("Apellidos", "name"),
        ("Primer apellido", "name"),
        ("Nombre completo", "name"),
        ("Full name", "name"),
        ("Prénom", "name"),
        ("Sobrenome", "name"),
        ("Voornaam", "name"),
    ],
)
def test_person_level_headers_are_named(header, kind):
    from transforms.stages.guard import header_findings

    found = header_findings(["País", header, "Total"], "f.csv")
    assert len(found) == 1 and repr(header) in found[0] and "aggregates only" in found[0]
    assert {"document": "document number", "birth": "birth date", "name": "person's name"}[kind] in found[0]


def test_aggregate_headers_are_not_person_level():
    """The headers of the real files and of typical aggregate tables, and a column the contract
    itself reads (a contract reading "Nombre" as a country's name has been reviewed)."""
    import csv
    import io

    from transforms.stages.guard import contract_headers, header_findings

    headers = [
        *next(csv.reader(io.StringIO(hc.text(hc.COLOMBIA)))),
        *next(csv.reader(io.StringIO(hc.text(hc.CBP)))),
        *next(csv.reader(io.StringIO(hc.darien()))),
        "Country of origin (ISO)",
        "Country of asylum (ISO)",
        "Returned refugees",
        "Naturalisation",
        "Nacionalidad",
        "Nombre del país",
        "Country name",
        "Nom du pays",
        "Tipo de documento",
        "Document type",
        "Año de nacimiento",
        "Sexo",
        "Grupo de edad",
        "Puesto de control",
        "Nationaliteit",
        "País de nacimiento",
        "Lugar de nacimiento",
        "Fecha",
        "Mes",
        "Total general",
    ]
    assert header_findings(headers, "f.csv") == []

    class Col:
        header, aliases = "Nombre", ["Name"]

    class Contract:
        ids = {"country": Col()}

        class values:
            columns = []

    assert header_findings(["Nombre", "Total"], "f.csv", contract_headers(Contract())) == []
