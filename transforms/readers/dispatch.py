"""The dispatch from a contract's reader spec to the reader of its format."""

from __future__ import annotations

from pathlib import Path

from transforms.readers.csv_reader import read_csv_grid
from transforms.readers.excel_reader import read_excel_grid
from transforms.readers.grid import Grid, ReadError


def read_grid(path: str | Path, spec) -> Grid:
    """Read ``path`` with a contract's ``ReaderSpec``; raises ReadError with file and place."""
    path = Path(path)
    if not path.is_file():
        raise ReadError(f"{path.name}: no such file")
    if spec.format == "csv":
        return read_csv_grid(path, spec)
    if spec.format in ("xlsx", "xls"):
        return read_excel_grid(path, spec)
    raise ReadError(f"{path.name}: no reader for format '{spec.format}'")
