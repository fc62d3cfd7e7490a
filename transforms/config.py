"""Where things live: OMH_HOME layout, the warehouse URL and the repository's own data.

Everything is derived from two environment variables so that the same code runs on a laptop
(embedded DuckDB, local lake) and in production (PostgreSQL, object storage).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# OMH_CONTRACTS_DIR lets an operator try a contract change without touching the deployed tree.
CONTRACTS_DIR = Path(os.environ.get("OMH_CONTRACTS_DIR") or REPO_ROOT / "contracts")
EXPECTATIONS_DIR = REPO_ROOT / "expectations"
SQL_DIR = REPO_ROOT / "sql"
DATA_DIR = REPO_ROOT / "data"


def today() -> dt.date:
    """The observatory's date: ``OMH_TODAY`` (YYYY-MM-DD) when set, else the system's.

    The delivery calendar, the completeness grid and its statuses (missing / not due) follow it,
    so a test or a demo pins the grid of a given day and gets the same answer on any day.
    """
    pinned = os.environ.get("OMH_TODAY", "").strip()
    if not pinned:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(pinned)
    except ValueError:
        raise ValueError(f"OMH_TODAY must be a date written YYYY-MM-DD, not {pinned!r}") from None


def pinned_today() -> dt.date | None:
    """The date ``OMH_TODAY`` pins, or None when the observatory follows the system's clock."""
    return today() if os.environ.get("OMH_TODAY", "").strip() else None


@dataclass(frozen=True)
class Settings:
    """Resolved locations of one observatory installation."""

    home: Path
    warehouse_url: str
    # OMH_LAKE_URL: empty (the folder ``lake``), a folder, or ``s3://bucket/prefix`` (an Iceberg
    # table on object storage: ``transforms.storage.lakestore``).
    lake_url: str = ""

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def lake(self) -> Path:
        """The folder lake's root (unused when the lake is in object storage)."""
        if self.lake_url and "://" not in self.lake_url:
            return Path(self.lake_url).expanduser().resolve()
        return self.home / "lake"

    @property
    def lake_in_object_storage(self) -> bool:
        return self.lake_url.startswith("s3://")

    @property
    def quarantine(self) -> Path:
        return self.home / "quarantine"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def duckdb_path(self) -> Path | None:
        """The DuckDB file when the warehouse is embedded, else None."""
        url = self.warehouse_url
        if url.startswith("duckdb:///"):
            return Path(url[len("duckdb:///") :])
        if url.startswith("duckdb://"):
            return Path(url[len("duckdb://") :])
        if "://" not in url:
            return Path(url)
        return None

    def ensure(self) -> Settings:
        for path in (self.landing, self.lake, self.quarantine, self.reports, self.logs):
            path.mkdir(parents=True, exist_ok=True)
        return self


def settings(home: str | os.PathLike | None = None) -> Settings:
    """Settings from the environment; an explicit ``home`` wins over ``OMH_HOME``."""
    root = Path(home or os.environ.get("OMH_HOME") or "var").expanduser().resolve()
    url = os.environ.get("OMH_WAREHOUSE_URL") or f"duckdb:///{root / 'warehouse.duckdb'}"
    return Settings(home=root, warehouse_url=url, lake_url=os.environ.get("OMH_LAKE_URL", "").strip())


# ---------------------------------------------------------------------------- secrets in text

MASK = "<masked>"
# user:password@ after a scheme; greedy up to the last "@" of the token (a password may hold "@").
_URL_USERINFO = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@'\"]*:)(?P<secret>[^\s'\"]+)(?=@)", re.IGNORECASE
)
_KEY_VALUE_PW = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd)\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|[^\s&;'\"]+)", re.IGNORECASE
)


def mask_secrets(text) -> str:
    """``text`` with the password of any URL (``postgresql://omh:<password>@host``) and any
    ``password=...`` pair replaced by ``<masked>``: for messages and logs that may quote a connection."""
    text = _URL_USERINFO.sub(lambda m: m.group("head") + MASK, str(text))
    return _KEY_VALUE_PW.sub(lambda m: m.group("head") + MASK, text)


class MaskSecrets(logging.Filter):
    """A handler filter that masks passwords in a record's message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        return True


def url_password(url: str) -> str | None:
    """The password of a URL (``postgresql://omh:<password>@db/omh``), decoded, or None."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def mask_in_airflow() -> None:
    """Register the warehouse password with Airflow's secrets masker (task logs redact it,
    whatever prints it). For tasks; a no-op outside Airflow or without a password."""
    password = url_password(os.environ.get("OMH_WAREHOUSE_URL") or "")
    if not password:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:
        return
    mask_secret(password)  # no name: a name must look sensitive ("password") to count
