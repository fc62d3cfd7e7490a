"""The alerts file, ``$OMH_HOME/alerts.jsonl``: one JSON line per alert, appended under a lock.

Written by the pipeline (a load that overlaps another source), the DAGs (late files, mirror
pairs) and read by the Observatory; what an alert says and where it is sent is ``alerts``.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

ALERTS_FILE = "alerts.jsonl"


def alerts_path(home=None) -> Path:
    from transforms.config import settings

    return settings(home).home / ALERTS_FILE


def write_alert(alert: dict, home=None) -> dict:
    """Append one alert to ``$OMH_HOME/alerts.jsonl`` (a whole line at a time, under a file lock)."""
    path = alerts_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(alert, ensure_ascii=False, default=str) + "\n"
    with path.open("a", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.write(line)
            fh.flush()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    return alert


def read_alerts(home=None, limit: int = 500) -> list[dict]:
    """The newest ``limit`` alerts, newest first (unreadable lines are skipped)."""
    path = alerts_path(home)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out[::-1][:limit]
