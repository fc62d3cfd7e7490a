"""The landing zone: which files belong to a source, their identity (sha256, release date, a
printable name), what is already loaded, and the quarantine where a refused file is kept."""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import re
import shutil
from pathlib import Path

from transforms.config import Settings
from transforms.config import settings as get_settings
from transforms.contracts.loading import get_contract
from transforms.contracts.model import Contract
from transforms.storage.manifest import rules_fingerprint


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_DATE_IN_NAME = re.compile(r"(?<!\d)(20\d\d)[-_]?(0[1-9]|1[0-2])[-_]?(0[1-9]|[12]\d|3[01])(?!\d)")


def vintage_of(path: Path) -> dt.date:
    """Release date: a date in the file name (agencies name their extracts so), else its mtime."""
    match = _DATE_IN_NAME.search(path.name)
    if match:
        try:
            return dt.date(*(int(x) for x in match.groups()))
        except ValueError:
            pass
    return dt.date.fromtimestamp(path.stat().st_mtime)


def source_files(contract: Contract, cfg: Settings) -> list[Path]:
    """Landing files that belong to a source, by its contract's folder and patterns."""
    folder = cfg.landing / contract.landing.folder
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.iterdir()):
        if (
            path.is_file()
            and not path.is_symlink()  # a link could point anywhere on the worker's disk
            and not path.name.startswith(".")
            and any(fnmatch.fnmatch(path.name.lower(), pat.lower()) for pat in contract.landing.patterns)
        ):
            out.append(path)
    return out


def discover(source_id: str, home=None) -> list[dict]:
    """Landing files of a source with sha256, whether each is already loaded, and ``settled``: why
    a refused file is not to be tried again (same bytes, same rules; or dismissed), else None.

    Reads only: the files are hashed first, then the warehouse is opened read-only just long
    enough to look their sha256 up (a warehouse not created yet has loaded nothing). Migrating the
    schema is left to the loads (``ingest_file``), so listing stays cheap and never writes.
    """
    from transforms.storage.warehouse import open_for_reading

    cfg = get_settings(home)
    contract = get_contract(source_id)
    out = []
    for path in source_files(contract, cfg):
        out.append(
            {
                "source_id": source_id,
                "path": str(path),
                "file": path.name,
                "sha256": sha256_of(path),
                "size": path.stat().st_size,
                "loaded": False,
                "settled": None,
            }
        )
    if not out or (cfg.duckdb_path is not None and not cfg.duckdb_path.exists()):
        return out
    with open_for_reading(cfg) as wh:
        for entry in out:
            entry["loaded"] = wh.is_loaded(source_id, entry["sha256"])
        settled = wh.settled_refusals(source_id, rules_fingerprint(source_id))
    for entry in out:  # refused before, and nothing changed since: not worth another run
        entry["settled"] = None if entry["loaded"] else settled.get(entry["sha256"])
    return out


def _short_name(name: str, limit: int = 160) -> str:
    """A file name that fits beside a prefix and suffix (a name may have up to 255 bytes)."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= limit:
        return name
    suffix = Path(name).suffix.encode("utf-8", "surrogateescape")[:16]
    head = raw[: limit - len(suffix) - 1].decode("utf-8", "ignore")
    return f"{head}~{suffix.decode('utf-8', 'ignore')}"


def display_name(path: Path, full: bool = False) -> str:
    """The file's name (or path) as text: bytes that are not UTF-8 are shown as escapes."""
    text = str(path) if full else path.name
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def quarantine(path: Path, sha: str, cfg: Settings, contract_id: str, reason: dict, name=None) -> Path:
    folder = cfg.quarantine / contract_id
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{sha[:12]}_{_short_name(name or path.name)}"
    if not target.exists():
        shutil.copy2(path, target)
    target.with_name(target.name + ".reason.json").write_text(
        json.dumps(reason, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )
    return target
