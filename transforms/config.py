"""Where things live: OMH_HOME layout, the warehouse URL and the repository's own data.

Everything is derived from two environment variables so that the same code runs on a laptop
(embedded DuckDB, local lake) and in production (PostgreSQL, object storage).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# OMH_CONTRACTS_DIR lets an operator try a contract change without touching the deployed tree.
CONTRACTS_DIR = Path(os.environ.get("OMH_CONTRACTS_DIR") or REPO_ROOT / "contracts")
EXPECTATIONS_DIR = REPO_ROOT / "expectations"
SQL_DIR = REPO_ROOT / "sql"
DATA_DIR = REPO_ROOT / "data"


@dataclass(frozen=True)
class Settings:
    """Resolved locations of one observatory installation."""

    home: Path
    warehouse_url: str

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def lake(self) -> Path:
        return self.home / "lake"

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
    return Settings(home=root, warehouse_url=url)
