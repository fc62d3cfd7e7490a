"""Scratch space of one process, and the sweep of what killed processes left behind.

A load writes scratch files: the work database of a file's tables (``_omh_work_*.duckdb``, with
the staging table of a large CSV), the canonical observations when written as Parquet
(``_omh_canon_*``), a transcoded copy of a large UTF-16 CSV and DuckDB's spill files. A process removes its own when it ends
normally; one killed with SIGKILL cannot. So every process works in a folder of its own, named
after its host and pid (``omh-<host>-<pid>``): under ``$OMH_HOME/tmp`` for the staging files, and
under ``omh-duckdb-spill`` for DuckDB's spill. Each run of ``ingest_file`` first removes the
folders of this host whose process is dead; a folder of a live process (whatever it is doing),
or of another host sharing the volume, is never touched.

Loose ``_omh_<prefix>_<pid>_<n>`` files (written by earlier versions straight into the folder)
are removed when their pid is dead and they are older than a day (their host is unknown).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import time
from pathlib import Path

log = logging.getLogger("omh.scratch")

SPILL = "omh-duckdb-spill"
LOOSE_FILE_AGE_S = 24 * 3600
_OWNED = re.compile(r"^omh-(?P<host>.+)-(?P<pid>\d+)$")
_LOOSE = re.compile(r"^_omh_[a-z_]+?_(?P<pid>\d+)_\d+")


def host() -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", socket.gethostname())[:64] or "host"


def owner_name(pid: int | None = None) -> str:
    """The name of a process's scratch folder: ``omh-<host>-<pid>``."""
    return f"omh-{host()}-{os.getpid() if pid is None else pid}"


def process_dir(base: str | os.PathLike) -> Path:
    """This process's scratch folder under ``base`` (created)."""
    folder = Path(base) / owner_name()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def alive(pid: int) -> bool:
    """Whether a process of this host has ``pid`` (one of another user counts as alive)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def sweep(*bases: str | os.PathLike) -> list[Path]:
    """Remove, under each of ``bases`` and its ``omh-duckdb-spill``, the scratch folders of dead
    processes of this host (and old loose files of dead pids); returns what was removed."""
    removed: list[Path] = []
    here = host()
    now = time.time()
    for base in bases:
        for folder in (Path(base), Path(base) / SPILL):
            try:
                entries = list(folder.iterdir())
            except OSError:
                continue
            for entry in entries:
                try:
                    if (m := _OWNED.match(entry.name)) and entry.is_dir() and not entry.is_symlink():
                        if m["host"] == here and not alive(int(m["pid"])):
                            shutil.rmtree(entry, ignore_errors=True)
                            removed.append(entry)
                    elif (m := _LOOSE.match(entry.name)) and entry.is_file() and not entry.is_symlink():
                        if not alive(int(m["pid"])) and now - entry.stat().st_mtime > LOOSE_FILE_AGE_S:
                            entry.unlink(missing_ok=True)
                            removed.append(entry)
                except OSError:  # gone meanwhile (another run swept it): fine
                    continue
    if removed:
        log.info("removed scratch files of ended processes: %s", ", ".join(p.name for p in removed))
    return removed


__all__ = ["SPILL", "alive", "owner_name", "process_dir", "sweep"]
