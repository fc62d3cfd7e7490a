"""One writer at a time on the embedded warehouse, and readers that never wait for it.

DuckDB lets one process hold a database file for writing, and a process holding it for writing
shuts out every other, readers included. So a writer never opens the published file
(``warehouse.duckdb``): it takes the writers' lock, copies the published file to a private
shadow beside it, works there for as long as it takes, and when it is done (its connections
closed, the shadow checkpointed and synced) renames the shadow over the published file in one
step. A reader opens the published file read-only at any time, from any tool, and sees the state
of the last finished write: before a load or after it, never a part of one. A reader that holds
the file open keeps the state it opened (the rename gives the name to a new file; the old one
lives until its last reader closes it). Decision: docs/decisions/0007-concurrent-warehouse.md.

Writers queue on an OS file lock (``fcntl.flock`` on ``<warehouse>.writer``), which the kernel
releases when its process ends, however it ends: a writer killed with SIGKILL leaves no lock,
only its shadow, which the next writer removes. A writer that finds the lock held says once
what it waits for (the holder writes one line into the lock file) and waits up to
``OMH_WRITE_WAIT`` seconds (``omh ingest --wait``), then gives up with a plain message.

Within one process, writers nest: a second writer of the same warehouse (a test holding one
open while it ingests) joins the first one's shadow, and the last to close publishes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from transforms import scratch

log = logging.getLogger("omh.writelock")

WAIT_ENV = "OMH_WRITE_WAIT"
# Long enough for a queue of large loads (a 10 M-row file takes ~70 s here), short enough that a
# stuck script is noticed within the hour.
DEFAULT_WAIT_S = 1800.0
POLL_S = 0.2
ANYONE = "another write to the warehouse"


class WarehouseBusy(RuntimeError):
    """The writers' lock was not free within the wait the user allows."""


def wait_seconds() -> float:
    """How long a writer waits for the lock: ``OMH_WRITE_WAIT`` seconds, 1800 by default."""
    raw = os.environ.get(WAIT_ENV, "").strip()
    if not raw:
        return DEFAULT_WAIT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{WAIT_ENV}={raw!r}: give a number of seconds, such as 600 (0: do not wait)")
    return value


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".writer")


def _shadow_prefix(db: Path) -> str:
    return f".{db.name}.shadow-"


_serial = [0]


def shadow_path(db: Path) -> Path:
    """A new private copy of ``db`` for this process (named after host and pid, so that the next
    writer can tell a dead writer's shadow from a live one's; numbered, so that a DuckDB instance
    of an earlier write still cached in this process is never taken for it)."""
    _serial[0] += 1
    return db.with_name(f"{_shadow_prefix(db)}{scratch.owner_name()}-{_serial[0]}")


@dataclass
class _Held:
    fd: int
    shadow: Path
    count: int


_HELD: dict[Path, _Held] = {}
_GUARD = threading.RLock()


def begin(db: Path, purpose: str | None = None) -> Path:
    """Take the writers' lock of ``db`` (waiting in line), make the shadow copy and return its
    path, the file this writer opens. Nested calls in one process share the shadow."""
    db = Path(db).absolute()
    with _GUARD:
        held = _HELD.get(db)
        if held is not None:
            held.count += 1
            return held.shadow
        fd = _acquire(db, purpose or ANYONE)
        try:
            shadow = _make_shadow(db)
        except BaseException:
            _release(fd)
            raise
        _HELD[db] = _Held(fd, shadow, 1)
        return shadow


@contextlib.contextmanager
def quiet(db: Path, purpose: str) -> Iterator[None]:
    """Hold the writers' lock without writing (waiting in line like a writer): no load changes
    the warehouse or the lake meanwhile (``omh verify`` compares the two)."""
    db = Path(db).absolute()
    if db in _HELD:  # this process is the writer already
        yield
        return
    fd = _acquire(db, purpose)
    try:
        yield
    finally:
        _release(fd)


def outermost(db: Path) -> bool:
    """Whether the writer about to close is the last one of this process on ``db``."""
    held = _HELD.get(Path(db).absolute())
    return held is not None and held.count == 1


def end(db: Path) -> None:
    """One writer of ``db`` closed its connection; the last one publishes the shadow (renames it
    over the published file) and releases the lock. Called even after a failure: what the
    writer committed is kept, as DuckDB would have kept it in place."""
    db = Path(db).absolute()
    with _GUARD:
        held = _HELD.get(db)
        if held is None:
            return
        held.count -= 1
        if held.count:
            return
        del _HELD[db]
        try:
            _publish(held.shadow, db)
        except BaseException:
            _discard(held.shadow)  # nothing of it is published: no copy left on the disk
            raise
        finally:
            _release(held.fd)


def _acquire(db: Path, purpose: str) -> int:
    path = lock_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    try:
        if not _try_lock(fd):
            _wait(fd, db, path)
        # The line the next writer shows while it waits for this one.
        os.ftruncate(fd, 0)
        os.pwrite(fd, purpose.encode("utf-8", "backslashreplace"), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wait(fd: int, db: Path, path: Path) -> None:
    limit = wait_seconds()
    holder = _holder(path)
    if limit:
        message = f"waiting for {holder} to finish (at most {limit:g} s; --wait or {WAIT_ENV} sets it)"
        print(f"omh: {message}", file=sys.stderr, flush=True)
        log.info("%s: %s", db.name, message)
    deadline = time.monotonic() + limit
    while True:
        if _try_lock(fd):
            return
        if time.monotonic() >= deadline:
            waited = f", for longer than {limit:g} s" if limit else ""
            raise WarehouseBusy(
                f"the warehouse is busy with {_holder(path)}{waited}; nothing was changed: run the "
                f"command again later, or let it wait longer with --wait SECONDS or {WAIT_ENV}"
            )
        time.sleep(POLL_S)


def _holder(path: Path) -> str:
    """What the lock's holder said it is doing (one line), or a neutral phrase."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ANYONE
    text = " ".join(text.split())[:300]
    return text if text.isprintable() and text else ANYONE


def _release(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _make_shadow(db: Path) -> Path:
    """Copy the published file (and a WAL left by a writer of an earlier version, which DuckDB
    replays on opening the copy) to this process's shadow, after removing dead writers' shadows."""
    sweep_shadows(db)
    shadow = shadow_path(db)
    if db.exists():
        started = time.perf_counter()
        try:
            shutil.copyfile(db, shadow)  # in the kernel (sendfile), no pass through Python
            wal = Path(f"{db}.wal")
            if wal.exists():
                shutil.copyfile(wal, f"{shadow}.wal")
        except BaseException:  # a full disk: the part copied goes
            _discard(shadow)
            raise
        log.info(
            "%s: copied for writing in %.2f s (%d MB)",
            db.name,
            time.perf_counter() - started,
            shadow.stat().st_size >> 20,
        )
    return shadow


def _discard(shadow: Path) -> None:
    for suffix in ("", ".wal"):
        Path(f"{shadow}{suffix}").unlink(missing_ok=True)


_SHADOW_OWNER = re.compile(r"omh-(?P<host>[^-]+)-(?P<pid>\d+)-\d+(\.wal)?$")


def sweep_shadows(db: Path) -> list[Path]:
    """Remove the shadows of ``db`` left by writers of this host that are no longer running."""
    removed = []
    prefix = _shadow_prefix(db)
    try:
        entries = list(db.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        m = _SHADOW_OWNER.match(entry.name[len(prefix) :])
        if m and m["host"] == scratch.host() and not scratch.alive(int(m["pid"])):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    if removed:
        log.info("removed the copies of ended writers: %s", ", ".join(p.name for p in removed))
    return removed


def _publish(shadow: Path, db: Path) -> None:
    """Make the shadow the published file: synced, then renamed over it (atomic on POSIX)."""
    wal = Path(f"{shadow}.wal")
    if wal.exists():  # a connection of this process still open: fold its log into the file
        import duckdb

        con = duckdb.connect(str(shadow))
        try:
            con.execute("CHECKPOINT")
        finally:
            con.close()
    if wal.exists():
        raise RuntimeError(f"{db.name}: the write could not be completed (its log is still open)")
    if not shadow.exists():  # the writer never opened it (nothing to publish)
        return
    with open(shadow, "rb+") as fh:
        os.fsync(fh.fileno())
    # A log left beside the published file (by a writer of an earlier version) was replayed into
    # the copy; left there, it would not match the new file and DuckDB would refuse to open it.
    Path(f"{db}.wal").unlink(missing_ok=True)
    os.replace(shadow, db)
    dir_fd = os.open(db.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    log.info("%s: published", db.name)


__all__ = [
    "WAIT_ENV",
    "WarehouseBusy",
    "begin",
    "end",
    "lock_path",
    "outermost",
    "quiet",
    "shadow_path",
    "sweep_shadows",
    "wait_seconds",
]
