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

Two workers, each on its own copy of the published warehouse, share the corpus (2 cores).
``HOSTILE_TABLE=path`` writes the corpus table (case, outcome, exit, reason, seconds, peak MB).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import hostile_corpus as hc
import pytest

pytestmark = pytest.mark.slow

MAX_SECONDS = 60
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


@pytest.fixture(scope="session")
def pycache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pycache")


@pytest.fixture(scope="module")
def published(tmp_path_factory, pycache) -> Path:
    """A warehouse and lake that publish the real Darién and CBP figures."""
    home = tmp_path_factory.mktemp("published") / "home"
    for path, source in ((hc.DARIEN, "pan_darien_yearly"), (hc.CBP, "usa_cbp_swb_encounters")):
        run = hc.run_omh(["ingest", str(path), "--source", source], hc.omh_env(home, pycache), home.parent / "w")
        assert run.rc == 0, run.output
    (total, per) = hc.figures(home)
    assert dict((s, (n, v)) for s, n, v in per) == {
        "pan_darien_yearly": (28, 404_516),
        "usa_cbp_swb_encounters": (1936, 7_421_677),
    }
    return home


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


@pytest.fixture(scope="module")
def corpus(published, tmp_path_factory, pycache) -> dict[str, Outcome]:
    """Run the whole corpus once (two workers, each on its own copy of the published warehouse)."""
    root = tmp_path_factory.mktemp("hostile")
    homes = []
    for i in range(WORKERS):
        home = root / f"worker{i}" / "home"
        shutil.copytree(published, home)
        homes.append(home)
    # Heavy cases first, spread over the workers, so that both finish at about the same time.
    ordered = sorted(CASES, key=lambda c: not c.heavy)
    queues = [ordered[i::WORKERS] for i in range(WORKERS)]
    results: dict[str, Outcome] = {}
    lock = threading.Lock()

    def work(i: int) -> None:
        for case in queues[i]:
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


def _reason(outcome: Outcome) -> str:
    lines = outcome.run.stderr.splitlines() if outcome.run.rc else outcome.run.stdout.splitlines()
    return lines[0] if lines else ""


def _write_table(path: Path, outcomes: list[Outcome]) -> None:
    status = {0: "loaded (same figures)", 1: "refused", 2: "unreadable"}
    lines = ["| case | file | outcome | exit | reason | s | peak MB |", "|---|---|---|---|---|---|---|"]
    for o in outcomes:
        reason = _reason(o).replace("|", "\\|")
        lines.append(
            f"| {o.case.name} | `{hc_name(o.case.file_name)}` | {status.get(o.run.rc, o.run.rc)} | {o.run.rc} | "
            f"{reason[:160]} | {o.run.seconds:.1f} | {o.run.peak_mb:.0f} |"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="backslashreplace")


def hc_name(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)[1:-1][:60]


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


def test_peak_memory_of_every_run_is_bounded(corpus):
    """The largest ``omh`` of the corpus (each measured alone by RUSAGE_CHILDREN) stays under 2 GB."""
    peak = max(o.run.peak_mb for o in corpus.values())
    slowest = max(o.run.seconds for o in corpus.values())
    assert peak < MAX_PEAK_MB and slowest < MAX_SECONDS, (peak, slowest)


def test_verify_passes_after_the_corpus(corpus, pycache, tmp_path):
    """After every hostile file, lake and warehouse still agree (``omh verify``)."""
    for home in sorted({o.home for o in corpus.values()}):
        run = hc.run_omh(["verify"], hc.omh_env(home, pycache), tmp_path)
        assert run.rc == 0, run.output
