"""Every command the documents show runs as printed.

The shell lines of the README, the analysts' guide and the DAGs' README (```bash blocks), the
commands ``make demo`` prints at its end, and the analysts' guide's SQL examples are read from the
documents at test time, so a command added to a document is run here too. Each shell line runs
with ``bash`` from a folder laid out like a fresh clone after ``make demo``: ``.venv``, ``data`` and
``contracts`` of this checkout, and ``var`` a copy of a home that publishes real figures. A line
the suite cannot run here is listed in ``NOT_RUN`` with the reason.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from transforms.config import REPO_ROOT

DOCS = ("README.md", "docs/analysts.md", "dags/README.md")
# Lines that start so are not run here, and why.
NOT_RUN = {
    "make ": "sets up the venv, runs the suite, the demo, the benchmarks or a server: CI runs "
    "`make setup` and `make test`; the demo and Airflow are driven by tests/test_airflow_e2e.py",
    "TOKEN=": "needs the API server `make airflow` starts (tests/test_airflow_e2e.py uses the same API)",
    "curl ": "needs the API server `make airflow` starts (tests/test_airflow_e2e.py uses the same API)",
}
_FENCE = re.compile(r"^```(\w*)\s*$")


def _blocks(text: str, language: str) -> list[tuple[int, str]]:
    """(first line number, body) of each fenced block of ``language``."""
    out, body, start, inside = [], [], 0, None
    for number, line in enumerate(text.splitlines(), 1):
        fence = _FENCE.match(line.strip())
        if fence and inside is None:
            inside, start, body = fence.group(1), number + 1, []
        elif fence:
            if inside == language:
                out.append((start, "\n".join(body)))
            inside = None
        elif inside is not None:
            body.append(line)
    return out


def _shell_lines(body: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blanks left out."""
    lines, pending = [], ""
    for raw in body.splitlines():
        pending += raw.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.strip() and not pending.lstrip().startswith("#"):
            lines.append(pending.strip())
        pending = ""
    return lines


def _demo_lines() -> list[str]:
    from transforms.config import settings
    from transforms.tools.demo import print_howto

    out = io.StringIO()
    home = REPO_ROOT / "var"
    print_howto(settings(home), out)
    # The demo prints its home's absolute path; in the clone below that home is ./var.
    text = out.getvalue().replace(str(home), "var")
    return [line.strip() for line in text.splitlines() if line.strip().startswith(".venv/bin/omh")]


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for start, body in _blocks((REPO_ROOT / doc).read_text(encoding="utf-8"), "bash"):
            found += [(f"{doc}:{start}", line) for line in _shell_lines(body)]
    found += [("make demo's closing text", line) for line in _demo_lines()]
    return found


def documented_queries() -> list[tuple[str, str]]:
    text = (REPO_ROOT / "docs/analysts.md").read_text(encoding="utf-8")
    return [(f"docs/analysts.md:{start}", body) for start, body in _blocks(text, "sql")]


def _not_run(line: str) -> str | None:
    return next((why for prefix, why in NOT_RUN.items() if line.startswith(prefix)), None)


DOCUMENTED = documented_commands()
COMMANDS = [(where, line) for where, line in DOCUMENTED if not _not_run(line)]
QUERIES = documented_queries()


@pytest.fixture(scope="module")
def clone(published, tmp_path_factory) -> Path:
    """A folder laid out as a fresh clone after ``make demo``, its ``var`` a copy of a home that
    publishes the real Darién and CBP figures."""
    work = tmp_path_factory.mktemp("clone")
    for name in (".venv", "data", "contracts", "expectations", "sql"):
        (work / name).symlink_to(REPO_ROOT / name)
    shutil.copytree(published, work / "var", symlinks=True)
    return work


def _run(line: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("OMH_HOME", "OMH_WAREHOUSE_URL")}
    env["PATH"] = f"{Path(sys.executable).parent.parent / 'bin'}:{env.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_the_documents_show_commands_and_queries():
    # The lines not run here are the servers, the builds and the suite itself, nothing else.
    skipped = [line for _, line in DOCUMENTED if _not_run(line)]
    assert all(line.split()[0] in ("make", "curl") or line.startswith("TOKEN=") for line in skipped)
    assert any(line.startswith("make demo") for line in skipped)
    docs = {where.split(":")[0] for where, _ in COMMANDS}
    assert {"README.md", "docs/analysts.md", "make demo's closing text"} <= docs
    assert any("read_parquet" in line for _, line in COMMANDS)  # the lake query is among them
    assert any(" export " in line for _, line in COMMANDS) and len(QUERIES) >= 5


@pytest.mark.parametrize(("where", "line"), COMMANDS, ids=[f"{w}: {line[:60]}" for w, line in COMMANDS])
def test_every_documented_command_runs_as_printed(where, line, clone):
    run = _run(line, clone)
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"{where}: {line}\n{output}"
    assert run.stdout.strip(), f"{where}: {line} printed nothing"
    assert "Traceback" not in output and "Error" not in run.stderr, f"{where}: {line}\n{output}"


@pytest.mark.parametrize(("where", "query"), QUERIES, ids=[w for w, _ in QUERIES])
def test_every_documented_query_runs(where, query, clone):
    from transforms.config import Settings
    from transforms.storage.warehouse import open_for_reading
    from transforms.tools.export import read_only_query

    home = clone / "var"
    cwd = Path.cwd()
    os.chdir(clone)  # the guide's lake paths are relative to the repository
    try:
        with open_for_reading(Settings(home, f"duckdb:///{home / 'warehouse.duckdb'}")) as wh:
            cols, _ = read_only_query(wh, query)
    finally:
        os.chdir(cwd)
    assert cols, f"{where}: {query}"
