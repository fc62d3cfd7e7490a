"""Fast path for large delimited files: stream the file into a staging table with Arrow.

The plain reader (csv_reader) holds every cell as a Python string: fine for agency tables, not
for record-level files of millions of rows. Here the header (and any preamble) is found by the
plain reader's rules on the first lines only, then Arrow parses the data section in blocks and
DuckDB stores them, as they come, in a table of the connection's scratch database: columns
c0..cN (text, trimmed as every later pass reads them), ``source_row`` (physical line) and
``_blank`` (every cell empty or whitespace: the plain reader's rule for blank rows), with bounded
memory. Every later pass scans that table: its labels are dictionary-coded, so a pass over the
distinct labels of ten million rows takes milliseconds, where re-reading and re-trimming a
Parquet grid took one to four seconds a pass (measured at 10 M rows).
"""

from __future__ import annotations

import codecs
import copy
import csv
import io
from dataclasses import dataclass
from pathlib import Path

from transforms.readers.csv_reader import MAX_FIELD, PREFIX_BYTES, decode_prefix, resolve_encoding
from transforms.readers.grid import ReadError, check_width, find_header, ragged_row_error

BLOCK_SIZE = 8 << 20


@dataclass
class StagedGrid:
    table: str
    header_levels: list[list[str]]
    width: int
    rows: int
    first_data_line: int
    # Where the data ends when the contract stops at a blank row: the first row of blanks only
    # (None: no such row, or the contract reads past them).
    first_blank: int | None = None


def _header_levels(rows: list[list[str]], header_idx: list[int]) -> list[list[str]]:
    from transforms.readers.grid import fill_header_levels

    width = max(len(rows[i]) for i in header_idx)
    return fill_header_levels([rows[i] + [""] * (width - len(rows[i])) for i in header_idx])


def _transcode(src: Path, dst: Path, encoding: str, name: str) -> None:
    """Copy ``src`` (in ``encoding``, BOM included) to ``dst`` in UTF-8, 1 MB at a time."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with src.open("rb") as fin, dst.open("wb") as fout:
        while True:
            chunk = fin.read(1 << 20)
            try:
                fout.write(decoder.decode(chunk, final=not chunk).encode("utf-8"))
            except UnicodeDecodeError as exc:
                raise ReadError(
                    f"{name}: byte {offset + max(exc.start, 0)} is not valid {encoding}; "
                    "fix 'reader.encoding' in the contract or the file's encoding"
                ) from exc
            if not chunk:
                return
            offset += len(chunk)


def stage_csv(
    path: Path, spec, con, table: str, name: str | None = None, scratch: Path | None = None
) -> StagedGrid:
    """Stream ``path`` (a delimited file read as ``spec`` says) into the new table ``table`` of
    ``con`` (a qualified, quoted name); ``name`` is the file's name in messages (default:
    ``path``'s), ``scratch`` a folder for a transcoded copy (default: the system's). On a
    refusal the table does not exist.

    The steps: the header, by the plain reader's rules on the file's first bytes (``_Prefix``);
    the data section's bytes (``_data_span``); Arrow's parse of it, in blocks, trimmed and
    numbered, stored by DuckDB as it streams (``_store``); then the rows Arrow skipped, refused
    as the plain reader would refuse them (``_refuse_skipped``)."""
    name = name or path.name
    with path.open("rb") as fh:
        head = fh.read(PREFIX_BYTES)
    encoding = resolve_encoding(head, spec.encoding)
    if encoding.startswith("utf-16"):
        return _stage_transcoded(path, spec, con, table, name, scratch, encoding)
    prefix = _Prefix.read(head, encoding, spec, name)
    start, end, header_end_line = _data_span(path, spec, prefix.header_end_line, encoding, name)
    section = _Section(path, start, end, header_end_line, prefix.width, prefix.trailing, spec, encoding)
    rows = _store(con, table, section, name)
    # Looked up once: the checks below and extract's view all stop there.
    first_blank = (
        con.execute(f"SELECT min(source_row) FROM {table} WHERE _blank").fetchone()[0]
        if spec.stop_at_blank_row
        else None
    )
    _refuse_skipped(con, table, section, first_blank, name)
    if prefix.trailing:
        con.execute(f"ALTER TABLE {table} DROP COLUMN _extra")
    return StagedGrid(table, prefix.levels, prefix.width, rows, header_end_line + 1, first_blank)


def _stage_transcoded(path: Path, spec, con, table: str, name: str, scratch: Path | None, encoding: str):
    """Arrow reads UTF-8: the file is transcoded in blocks to a scratch copy (same lines), so a
    large UTF-16 file is staged with bounded memory like any other."""
    import tempfile

    from transforms.engine import temp_name

    folder = Path(scratch or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    utf8 = folder / f"{temp_name('utf8')}.csv"
    try:
        _transcode(path, utf8, encoding, name)
        return stage_csv(utf8, spec.model_copy(update={"encoding": "utf-8"}), con, table, name=name)
    finally:
        utf8.unlink(missing_ok=True)


@dataclass
class _Prefix:
    """The header, read by the plain reader's rules from the file's first bytes."""

    levels: list[list[str]]
    width: int
    header_end_line: int  # the physical line the header ends on
    # A trailing delimiter on every data row (an empty field beyond the header's), which the plain
    # reader allows: Arrow then reads one column more, which must be blank wherever it is read.
    trailing: bool

    @classmethod
    def read(cls, head: bytes, encoding: str, spec, name: str) -> _Prefix:
        text, complete = decode_prefix(head, encoding, name)
        csv.field_size_limit(MAX_FIELD)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=spec.delimiter, quotechar=spec.quotechar)
        records: list[list[str]] = []
        ends: list[int] = []  # physical line on which each record ends
        try:
            for row in reader:
                records.append(row)
                ends.append(reader.line_num)
        except csv.Error as exc:
            raise ReadError(f"{name}: line {reader.line_num}: {exc}") from exc
        if not complete and records:  # the last record of the prefix may be cut
            records.pop()
            ends.pop()
        if spec.header_find:
            header_idx = [find_header(records[:500], spec.header_find, name)]
        else:
            header_idx = [r - 1 for r in spec.header_lines()]
        if not records or max(header_idx) >= len(records):
            raise ReadError(f"{name}: the file has no header row where the contract expects one")
        levels = _header_levels(records, header_idx)
        width = len(levels[0])
        check_width(width, name)
        header_end_line = ends[max(header_idx)]
        if width < 2:
            raise ReadError(
                f"{name}: line {header_end_line}: the header has one column; is the delimiter {spec.delimiter!r} right?"
            )
        data = _prefix_data_rows(records[max(header_idx) + 1 :], spec.stop_at_blank_row)
        trailing = bool(data) and all(len(r) == width + 1 and not r[width].strip() for r in data)
        return cls(levels, width, header_end_line, trailing)


def _prefix_data_rows(records: list[list[str]], stop_at_blank_row: bool) -> list[list[str]]:
    """The data rows the prefix holds, as the plain reader reads them."""
    data: list[list[str]] = []
    for record in records:
        if any(c.strip() for c in record):
            data.append(record)
        elif data and stop_at_blank_row:
            break
    return data


def _data_span(path: Path, spec, header_end_line: int, encoding: str, name: str) -> tuple[int, int, int]:
    """(first byte, end byte, the line before the first data line) of the data section. The file
    is read in blocks, never mapped or held whole: a mapped file's pages count in the process's
    resident memory (a 600 MB file made the 10 M-row ingest peak at 1.4 GB)."""
    with path.open("rb") as fh:
        start = _offset_of_line(fh, header_end_line)
        # Blank rows between the header and the data are skipped, as the plain reader skips them
        # (only a blank row after data ends the data).
        empty = (spec.delimiter + spec.quotechar + " \t\r\n").encode("utf-8")
        fh.seek(start)
        for line in fh:
            if line.strip(empty):
                break
            start, header_end_line = start + len(line), header_end_line + 1
        nul, end = _scan(fh, start, spec.stop_at_blank_row)
        if nul >= 0:
            raise ReadError(
                f"{name}: line {_line_of(fh, nul)}: NUL byte; this is not a text file in {encoding}"
            )
    return start, end, header_end_line


class _Section:
    """The data section as Arrow parses it: its options, its rows counted by how the plain reader
    sees those Arrow skips (``counts``), and a new stream of its bytes on each ``open``."""

    def __init__(
        self,
        path: Path,
        start: int,
        end: int,
        header_end_line: int,
        width: int,
        trailing: bool,
        spec,
        encoding: str,
    ):
        import pyarrow as pa
        import pyarrow.csv as pacsv

        self.path, self.start, self.end = path, start, end
        self.header_end_line, self.width, self.trailing, self.spec = header_end_line, width, trailing, spec
        self.fields = width + 1 if trailing else width
        self.counts = {"blank": 0, "plain": 0, "bad": 0}
        names = [f"c{i}" for i in range(self.fields)]
        self.read_opts = pacsv.ReadOptions(
            column_names=names,
            encoding="utf8" if encoding in ("utf-8", "utf-8-sig") else encoding,
            block_size=BLOCK_SIZE,
            use_threads=True,
        )
        self.parse_opts = pacsv.ParseOptions(
            delimiter=spec.delimiter,
            quote_char=spec.quotechar,
            newlines_in_values=False,
            ignore_empty_lines=False,
            invalid_row_handler=self._on_invalid,
        )
        self.convert_opts = pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )

    def open(self):
        return _FileSlice(self.path, self.start, self.end)

    def classify(self, row) -> str:
        """An Arrow row whose field count is not ``fields``, as the plain reader sees it: a line of
        blanks only, a row it reads ('plain': at least the header's fields, any beyond them
        blank), or a ragged row ('bad')."""
        spec = self.spec
        text = row.text or ""
        if not text.strip(spec.delimiter + " \t\r\n"):
            return "blank"
        cells = next(csv.reader([text], delimiter=spec.delimiter, quotechar=spec.quotechar), [])
        return (
            "plain" if len(cells) >= self.width and not any(c.strip() for c in cells[self.width :]) else "bad"
        )

    def _on_invalid(self, row) -> str:
        self.counts[self.classify(row)] += 1
        return "skip"

    def first_skipped(self, wanted) -> tuple[int, int]:
        return _first_skipped(self.open, self.read_opts, self.parse_opts, wanted)


def _store(con, table: str, section: _Section, name: str) -> int:
    """Parse the data section with Arrow in blocks and store it as DuckDB reads the stream: cells
    trimmed (by Arrow as they stream, the same characters as DuckDB's trim, which the rows and
    long views apply: ~1.4 s less at 10 M rows), numbered by physical line, with the blank-row
    flag (cells empty or whitespace only, as the plain reader sees them). Returns the rows read."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from transforms.engine import temp_name

    names = [f"c{i}" for i in range(section.fields)]
    first_line = section.header_end_line + 1
    schema = pa.schema([*(pa.field(n, pa.string()) for n in names), pa.field("source_row", pa.int64())])
    rows = [0]
    failure: list[BaseException] = []  # Arrow's own error, which DuckDB would only paraphrase

    def numbered():
        try:
            batches = pacsv.open_csv(
                section.open(), section.read_opts, section.parse_opts, section.convert_opts
            )
            for batch in batches:
                n = batch.num_rows
                if not n:
                    continue
                # numpy, not a Python range: 10 M Python ints cost ~2.6 s on the reading thread.
                numbers = pa.array(np.arange(first_line + rows[0], first_line + rows[0] + n, dtype=np.int64))
                rows[0] += n
                cells = [pc.utf8_trim(c, SPACE_SEPARATORS) for c in batch.columns]
                yield pa.RecordBatch.from_arrays([*cells, numbers], schema=schema)
        except BaseException as exc:
            failure.append(exc)
            raise

    stream = temp_name("csv_stream")
    con.register(stream, pa.RecordBatchReader.from_batches(schema, numbered()))
    width, fields = section.width, section.fields
    cells = ", ".join(f"c{i}" for i in range(width))
    others = " AND ".join(_whitespace_sql(f"c{i}") for i in range(1, fields)) or "true"
    blank_sql = f"CASE WHEN {_whitespace_sql('c0')} THEN {others} ELSE false END"
    extra_sql = f", NOT ({_whitespace_sql(f'c{width}')}) AS _extra" if section.trailing else ""
    try:
        con.execute(
            f"CREATE TABLE {table} AS SELECT {cells}, source_row, ({blank_sql}) AS _blank{extra_sql} FROM {stream}"
        )
    except BaseException as exc:
        con.execute(f"DROP TABLE IF EXISTS {table}")
        cause = failure[0] if failure else exc
        if isinstance(cause, (pa.ArrowInvalid, UnicodeDecodeError)):
            raise ReadError(f"{name}: {str(cause).splitlines()[0][:300]}") from cause
        if failure and cause is not exc:
            raise cause from exc
        raise
    finally:
        con.unregister(stream)
    return rows[0]


def _refuse_skipped(con, table: str, section: _Section, first_blank: int | None, name: str) -> None:
    """Rows Arrow skipped would shift the physical line numbers of every later row: refused as
    the plain reader refuses them (ragged rows, blank lines among the data), and the table
    dropped. Rows skipped after the blank row that ends the data do not count."""
    counts = section.counts
    if (
        any(counts.values())
        and first_blank is not None
        and section.header_end_line + section.first_skipped(lambda row: True)[0] > first_blank
    ):
        # Every row Arrow skipped comes after the blank row that ends the data (footnotes of
        # another field count): the plain reader never reads them, and they shift no line number
        # of the data.
        counts = dict.fromkeys(counts, 0)
    extra = _filled_extra(con, table, first_blank) if section.trailing else (0, 0)
    if counts["bad"] or counts["blank"] or counts["plain"] or extra[1]:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    if counts["bad"] or extra[1]:
        # Ragged rows, as the plain reader counts them: rows Arrow could not read with the file's
        # field count, and rows it read whose field beyond the header's is filled.
        first = []
        if counts["bad"]:
            line, found = section.first_skipped(lambda row: section.classify(row) == "bad")
            first.append((section.header_end_line + line, found))
        if extra[1]:
            first.append((extra[0], section.width + 1))
        line, found = min(first)
        raise ragged_row_error(name, line, found, section.width, counts["bad"] + extra[1])
    if counts["blank"] or counts["plain"]:
        why = "lines of blanks only" if counts["blank"] else "rows with other counts of trailing delimiters"
        raise ReadError(f"{name}: {why} among the data: the plain reader reads this file")


def _filled_extra(con, table: str, first_blank: int | None) -> tuple[int, int]:
    """(first line, count) of the rows whose field beyond the header's is filled, up to
    ``first_blank`` where the data ends there (the plain reader reads no further)."""
    before = f" AND source_row < {int(first_blank)}" if first_blank is not None else ""
    first, count = con.execute(
        f"SELECT min(source_row), count(*) FROM {table} WHERE _extra{before}"
    ).fetchone()
    return int(first or 0), int(count)


# What DuckDB's trim() removes from either end of a text: the Unicode space separators (Zs).
SPACE_SEPARATORS = (
    "\u0020\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
)

# What Python's str.strip() removes (the plain reader's test of a blank row), in RE2.
_WHITESPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f\x{85}\pZ]*"


def _whitespace_sql(col: str) -> str:
    """SQL: ``col`` is empty or whitespace only, as the plain reader sees a blank cell. The
    regular expression runs only on a cell that starts with a space or a non-ASCII character."""
    return (
        f"CASE WHEN {col} = '' THEN true WHEN ascii({col}) BETWEEN 33 AND 126 THEN false "
        f"ELSE regexp_full_match({col}, '{_WHITESPACE}') END"
    )


def _first_skipped(data, read_opts, parse_opts, wanted) -> tuple[int, int]:
    """(line within the data section, fields) of the first row Arrow skips that ``wanted(row)``
    picks ((0, 0): none); ``data()`` opens a new stream of the data section. A second,
    single-threaded parse (Arrow numbers rows only then), run only when rows were skipped."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    found: list[tuple[int, int]] = []

    def on_invalid(row) -> str:
        if wanted(row):
            found.append((row.number, row.actual_columns))
            return "error"  # the first is enough: stop reading
        return "skip"

    opts, sequential = copy.copy(read_opts), copy.copy(parse_opts)
    opts.use_threads = False
    sequential.invalid_row_handler = on_invalid
    try:
        for _ in pacsv.open_csv(data(), opts, sequential):
            pass
    except pa.ArrowInvalid:
        pass
    return found[0] if found else (0, 0)


SCAN_BYTES = 8 << 20


class _FileSlice(io.RawIOBase):
    """Bytes ``start`` to ``end`` of a file, as a stream read in blocks (for Arrow's CSV reader)."""

    def __init__(self, path: Path, start: int, end: int):
        super().__init__()
        self._fh = path.open("rb")
        self._fh.seek(start)
        self._left = end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self._left)
        if n <= 0:
            return 0
        got = self._fh.readinto(memoryview(buffer)[:n])
        self._left -= got
        return got

    def close(self) -> None:
        self._fh.close()
        super().close()


def _offset_of_line(fh, line: int) -> int:
    """Byte offset just after the end of physical line ``line`` (1-based)."""
    fh.seek(0)
    pos = 0
    for _ in range(line):
        chunk = fh.readline()
        if not chunk:
            break
        pos += len(chunk)
    return pos


def _scan(fh, start: int, stop_at_blank: bool) -> tuple[int, int]:
    """(offset of the first NUL byte from ``start`` or -1, end of the data), in one pass of
    blocks to the end of the file. The data ends at EOF, or with ``stop_at_blank`` at the first
    empty line (footnotes follow it; a data section that begins with an empty line is empty)."""
    fh.seek(start)
    end, pos, tail = None, start, b""
    while block := fh.read(SCAN_BYTES):
        nul = block.find(b"\x00")
        if nul >= 0:
            return pos + nul, -1
        if stop_at_blank and end is None:
            window = tail + block
            if pos == start and window[:1] in (b"\n", b"\r"):
                end = start
            hits = [h for h in (window.find(b"\n\n"), window.find(b"\n\r\n")) if h >= 0]
            if hits and end is None:
                end = pos - len(tail) + min(hits) + 1
        tail = block[-2:]
        pos += len(block)
    return -1, pos if end is None else end


def _line_of(fh, offset: int) -> int:
    """Physical line (1-based) of byte ``offset``."""
    fh.seek(0)
    lines, pos = 1, 0
    while pos < offset:
        block = fh.read(min(SCAN_BYTES, offset - pos))
        if not block:
            break
        lines += block.count(b"\n")
        pos += len(block)
    return lines
