"""Delimited text files: encodings (UTF-8, Latin-1, CP850, UTF-16 with BOM), delimiters, preambles."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

from transforms.readers.grid import Grid, ReadError, build_grid, find_header, ragged_row_error

# Fields longer than this are not statistics: refuse instead of holding them in memory.
MAX_FIELD = 100_000
# The bytes read first to sniff a file (and, below this size, the whole of it).
PREFIX_BYTES = 256 * 1024
PREAMBLE_SCAN = 500

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def resolve_encoding(head: bytes, encoding: str) -> str:
    """The encoding to decode with: a BOM says more than the contract."""
    for bom, enc in _BOMS:
        if head.startswith(bom):
            return enc
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        return "utf-8-sig"
    return encoding


def decode_prefix(head: bytes, encoding: str, name: str) -> tuple[str, bool]:
    """Decode the first bytes of a file; returns (text, whether the prefix is the whole file)."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)()
    except LookupError as exc:
        raise ReadError(f"{name}: unknown encoding '{encoding}' in the contract") from exc
    complete = len(head) < PREFIX_BYTES
    try:
        return decoder.decode(head, final=complete), complete
    except UnicodeDecodeError as exc:
        line = head[: exc.start].count(b"\n") + 1
        raise ReadError(
            f"{name}: line {line}: byte {head[exc.start : exc.start + 1]!r} is not valid {encoding}; "
            "fix 'reader.encoding' in the contract or the file's encoding"
        ) from exc


def decode(raw: bytes, encoding: str, name: str) -> str:
    """Bytes -> text with the contract's encoding; a BOM says more than the contract."""
    encoding = resolve_encoding(raw[:4], encoding)
    if b"\x00" in raw and not encoding.startswith("utf-16"):
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise ReadError(f"{name}: line {line}: NUL byte; this is not a text file in {encoding}")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        # utf-8-sig reports offsets after the BOM it strips.
        data = exc.object if isinstance(exc.object, bytes) else raw
        line = data[: exc.start].count(b"\n") + 1
        raise ReadError(
            f"{name}: line {line}: byte {data[exc.start : exc.start + 1]!r} is not valid {encoding}; "
            "fix 'reader.encoding' in the contract or the file's encoding"
        ) from exc
    except LookupError as exc:
        raise ReadError(f"{name}: unknown encoding '{encoding}' in the contract") from exc


def _check_ragged(rows: list[list[str]], header_idx: list[int], lines: list[int], spec, name: str) -> None:
    """A data row whose field count is not the header's is refused, as the Arrow fast path
    refuses it (``grid.ragged_row_error``, the same message): a short row was cut short or lost a
    field (padding it would withdraw or shift a figure), a row with filled fields beyond the
    header has a delimiter inside a value ("17,603"). A row that is entirely empty is skipped;
    empty trailing fields beyond the header (a trailing delimiter) are allowed."""
    width = max(len(rows[i]) for i in header_idx)
    ragged: list[int] = []
    seen_data = False
    for idx in range(max(header_idx) + 1, len(rows)):
        row = rows[idx]
        if not any(c.strip() for c in row):
            if spec.stop_at_blank_row and seen_data:
                break
            continue
        seen_data = True
        if len(row) < width or any(c.strip() for c in row[width:]):
            ragged.append(idx)
    if ragged:
        first = ragged[0]
        raise ragged_row_error(name, lines[first], len(rows[first]), width, len(ragged))


def read_csv_grid(path: Path, spec) -> Grid:
    """Read a delimited file into a Grid of text cells."""
    name = path.name
    text = decode(path.read_bytes(), spec.encoding, name)
    csv.field_size_limit(MAX_FIELD)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=spec.delimiter, quotechar=spec.quotechar)
    rows: list[list[str]] = []
    lines: list[int] = []  # physical line on which each record starts
    lines_read = 0
    try:
        for row in reader:
            lines.append(lines_read + 1)
            rows.append(row)
            lines_read = reader.line_num
    except csv.Error as exc:
        raise ReadError(f"{name}: line {reader.line_num}: {exc}") from exc
    if spec.header_find:
        start = find_header(rows[:PREAMBLE_SCAN], spec.header_find, name)
        header_idx = [start]
    else:
        header_idx = [r - 1 for r in spec.header_lines()]
    grid = build_grid(rows, header_idx, 1, spec.stop_at_blank_row, None, name)
    # build_grid numbers records; a quoted field may span lines, so map records to physical lines.
    grid.row_numbers = [lines[n - 1] for n in grid.row_numbers]
    width = len(grid.header_levels[0])
    if width < 2:
        raise ReadError(
            f"{name}: line {lines[header_idx[-1]]}: the header has one column; "
            f"is the delimiter {spec.delimiter!r} right?"
        )
    _check_ragged(rows, header_idx, lines, spec, name)
    return grid
