"""What happens to one file, as the pipeline reports it: the result of a load, the refusal that
stops it, and the time and memory each step took (in the log)."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field

log = logging.getLogger("omh.pipeline")

STATUS_LOADED, STATUS_SKIPPED, STATUS_REFUSED, STATUS_UNREADABLE = (
    "loaded",
    "skipped",
    "refused",
    "unreadable",
)


@dataclass
class IngestResult:
    """What happened to one file."""

    source_id: str
    file: str
    sha256: str
    status: str
    rows: int = 0
    reason: str = ""
    report: str | None = None
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reporters: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in (STATUS_LOADED, STATUS_SKIPPED)

    def to_dict(self) -> dict:
        return asdict(self)


class Refused(Exception):
    """The file is refused; ``reason`` is the one line for the user."""

    def __init__(self, reason: str, problems=None, unreadable: bool = False, outcomes=None):
        reason = _clip(reason)  # a refused value may be a 100 kB field: not into logs and tables
        super().__init__(reason)
        self.reason = reason
        self.problems = [_clip(p) for p in problems] if problems else [reason]
        self.unreadable = unreadable
        self.outcomes = outcomes or []
        for o in self.outcomes:
            o.examples = [{k: _clip(v, 200) for k, v in e.items()} for e in o.examples or []]


@contextlib.contextmanager
def timed(step: str, name: str):
    """Log how long a step of a file took, the process's resident memory after it and its peak
    so far (the operator's view of where a slow load spends its time; ``omh -v`` shows it)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        log.info(
            "%s: %s took %.2f s (rss %d MB, peak %d MB)",
            name,
            step,
            time.perf_counter() - start,
            _rss_mb(),
            _rss_mb("VmHWM:"),
        )


def _rss_mb(field: str = "VmRSS:") -> int:
    """Resident memory (VmRSS) or its peak so far (VmHWM), in MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def _clip(value, limit: int = 1000):
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 1] + "…"
    return value
