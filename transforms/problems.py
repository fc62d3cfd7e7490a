"""A finding about a file, as every stage words it: what, where (rows, column) and how grave."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Problem:
    """One finding about a file, with enough to act on it."""

    severity: str  # "error" refuses the file, "warning" travels with it
    check: str
    message: str
    column: str | None = None
    label: str | None = None
    count: int = 0
    rows: list[int] = field(default_factory=list)

    def one_line(self, file_name: str) -> str:
        where = f"row {self.rows[0]}" if self.rows else ""
        col = f"column {self.column!r}" if self.column else ""
        loc = ", ".join(x for x in (where, col) if x)
        return f"{file_name}: {loc + ': ' if loc else ''}{self.message}"
