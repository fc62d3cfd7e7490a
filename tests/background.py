"""Fixtures whose work is ``omh`` child processes only, run in the background beside the other tests.

The hostile corpus (test_hostile.py) and the SIGKILL points (test_faults.py) spend minutes in
``omh`` children on copies of the published warehouse, while the test process only waits for them.
Such a fixture registers its work here (``@job("fixture_name")``) and returns ``result(name)``.
When the first test that is not marked ``before_background`` starts (conftest.py), one background
process (``python tests/background.py``) builds the published warehouse, then runs the registered
work of every fixture that a selected test uses, one after the other, and hands each result back
pickled, while the in-process tests run beside it. The fixture then only waits for the result (or
raises what the work raised).

A process of its own, not a thread of the test process: the work's own Python (copies of the
warehouse, reading its figures, polling the log for a kill point) would otherwise contend for the
test process's GIL with the tests, and both would crawl.

conftest.py runs the tests that use such a fixture after the others, so that the work has had the
time of the whole session, and the tests that measure time (``before_background``) first.
"""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

_JOBS: dict[str, Callable[[Path, Path, Path], object]] = {}  # fixture name -> work(published, pycache, root)


def job(fixture: str):
    """Register ``work(published, pycache, root)`` as the background work of ``fixture``: it runs on
    copies of ``published`` in a folder ``root`` of its own; ``result(fixture)`` is what it returns
    (it must pickle)."""

    def register(work):
        _JOBS[fixture] = work
        return work

    return register


def waits(item) -> bool:
    """Whether a test uses a fixture whose work runs in the background (and so waits for it)."""
    return not _JOBS.keys().isdisjoint(getattr(item, "fixturenames", ()))


class _Background:
    def __init__(self) -> None:
        self.wanted: list[str] | None = None  # the fixtures used by the selected tests
        self.lock = threading.Lock()
        self.root: Path | None = None
        self.process: subprocess.Popen | None = None
        self.published: Future = Future()
        self.results: dict[str, Future] = {}

    def select(self, items) -> None:
        used = {name for item in items for name in getattr(item, "fixturenames", ())}
        self.wanted = [name for name in _JOBS if name in used]

    def pycache(self, tmp_path_factory) -> Path:
        """The session's bytecode cache folder (see conftest.pycache), made once."""
        with self.lock:
            if self.root is None:
                self.root = tmp_path_factory.mktemp("background")
                (self.root / "pycache").mkdir()
            return self.root / "pycache"

    def start(self, tmp_path_factory) -> None:
        """Start the background process (once): the published warehouse, then each wanted fixture's work."""
        pycache = self.pycache(tmp_path_factory)
        with self.lock:
            if self.process is not None:
                return
            names = list(_JOBS) if self.wanted is None else self.wanted
            self.results = {name: Future() for name in names}
            jobs = [f"{name}={_JOBS[name].__module__}" for name in names]
            with (self.root / "background.log").open("wb") as log:
                self.process = subprocess.Popen(
                    [sys.executable, __file__, str(self.root), str(pycache), *jobs],
                    stdout=subprocess.PIPE,
                    stderr=log,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    start_new_session=True,  # stopped with its `omh` children (stop())
                )
        threading.Thread(target=self._read, name="omh-background", daemon=True).start()

    def _read(self) -> None:
        """Settle each future as the background process reports its work done."""
        for line in self.process.stdout:
            name = line.strip()
            if name == "published":
                self.published.set_result(self.root / "published" / "home")
            elif name in self.results:
                with (self.root / f"{name}.pickle").open("rb") as fh:
                    ok, value = pickle.load(fh)
                if ok:
                    self.results[name].set_result(value)
                else:
                    self.results[name].set_exception(value)
        rc = self.process.wait()
        log = (self.root / "background.log").read_text(encoding="utf-8", errors="replace")[-6000:]
        failed = RuntimeError(f"the background process exited with {rc} before its work was done:\n{log}")
        for future in (self.published, *self.results.values()):
            if not future.done():
                future.set_exception(failed)

    def result(self, name: str, tmp_path_factory):
        self.start(tmp_path_factory)  # a fixture asked before any test started it
        if name not in self.results:  # asked by a test that was not selected (getfixturevalue)
            folder = self.root / name
            folder.mkdir()
            return _JOBS[name](self.published.result(), self.pycache(tmp_path_factory), folder)
        return self.results[name].result()

    def published_home(self, tmp_path_factory) -> Path:
        self.start(tmp_path_factory)
        return self.published.result()

    def stop(self) -> None:
        """End the background process and its children if the session ends before they do."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()


BACKGROUND = _Background()


def _main(root: Path, pycache: Path, jobs: list[str]) -> None:
    """The background process: publish, then run each job, pickling its result (or what it raised)."""
    import hostile_corpus as hc

    report, sys.stdout = sys.stdout, sys.stderr  # stdout says only which work is done

    def done(name: str) -> None:
        print(name, file=report, flush=True)

    published = hc.publish(root / "published" / "home", pycache)
    done("published")
    for spec in jobs:
        name, module = spec.split("=", 1)
        importlib.import_module(module)  # registers its work
        folder = root / name
        folder.mkdir()
        try:
            outcome = (True, _JOBS[name](published, pycache, folder))
        except Exception as exc:
            # The background process does not rewrite assertions as pytest does: its traceback
            # goes with the exception (and to background.log).
            traceback.print_exc()
            exc.add_note(f"raised in the background process (tests/background.py):\n{traceback.format_exc()}")
            outcome = (False, exc)
        try:
            data = pickle.dumps(outcome)
        except Exception:  # what does not pickle: the traceback as text
            text = traceback.format_exc() if outcome[0] else "".join(traceback.format_exception(outcome[1]))
            data = pickle.dumps((False, RuntimeError(f"background work {name!r} failed:\n{text}")))
        (root / f"{name}.pickle").write_bytes(data)
        done(name)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import background  # this file as the module that the test modules register their work with

    background._main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
