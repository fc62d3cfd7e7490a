"""Fast path for large delimited files: stream the file into a staging Parquet grid with Arrow.

The plain reader (csv_reader) holds every cell as a Python string: fine for agency tables, not
for record-level files of millions of rows. Here the header (and any preamble) is found by the
plain reader's rules on the first lines only, then Arrow parses the data section in blocks and
writes a Parquet file with columns c0..cN (text) and source_row (physical line), with bounded
memory. DuckDB scans that file for every later pass.
"""

from __future__ import annotations

import codecs
import copy
import csv
import io
import mmap
from dataclasses import dataclass
from pathlib import Path

from transforms.readers.csv_reader import MAX_FIELD, decode_prefix, resolve_encoding
from transforms.readers.grid import ReadError, check_width, find_header, ragged_row_error

PREFIX_BYTES = 256 * 1024
BLOCK_SIZE = 8 << 20


@dataclass
class StagedGrid:
    parquet: Path
    header_levels: list[list[str]]
    width: int
    rows: int
    first_data_line: int


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


def stage_csv(path: Path, spec, out: Path, name: str | None = None) -> StagedGrid:
    """Stream ``path`` (a delimited file read as ``spec`` says) into the Parquet grid ``out``;
    ``name`` is the file's name in messages (default: ``path``'s)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    name = name or path.name
    with path.open("rb") as fh:
        head = fh.read(PREFIX_BYTES)
    encoding = resolve_encoding(head, spec.encoding)
    if encoding.startswith("utf-16"):
        # Arrow reads UTF-8: the file is transcoded in blocks to a scratch copy (same lines), so a
        # large UTF-16 file is staged with bounded memory like any other.
        utf8 = out.with_name(out.name + ".utf8.csv")
        try:
            _transcode(path, utf8, encoding, name)
            return stage_csv(utf8, spec.model_copy(update={"encoding": "utf-8"}), out, name=name)
        finally:
            utf8.unlink(missing_ok=True)
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

    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        start = _offset_of_line(mm, header_end_line)
        nul = mm.find(b"\x00", start)
        if nul >= 0:
            line = mm[:nul].count(b"\n") + 1
            raise ReadError(f"{name}: line {line}: NUL byte; this is not a text file in {encoding}")
        # Blank rows between the header and the data are skipped, as the plain reader skips them
        # (only a blank row after data ends the data).
        empty = (spec.delimiter + spec.quotechar + " \t\r\n").encode("utf-8")
        while start < len(mm):
            nxt = mm.find(b"\n", start)
            nxt = len(mm) if nxt < 0 else nxt + 1
            if mm[start:nxt].strip(empty):
                break
            start, header_end_line = nxt, header_end_line + 1
        end = len(mm)
        if spec.stop_at_blank_row:
            end = _first_blank_line(mm, start, end)
        data = mm[start:end]

    bad = [0]  # rows whose field count is not the header's
    blank = [0]  # lines of blanks only (" "): the plain reader skips them

    def on_invalid(row) -> str:
        if not (row.text or "").strip(spec.delimiter + " \t\r\n"):
            blank[0] += 1
        else:
            bad[0] += 1
        return "skip"

    names = [f"c{i}" for i in range(width)]
    read_opts = pacsv.ReadOptions(
        column_names=names,
        encoding="utf8" if encoding in ("utf-8", "utf-8-sig") else encoding,
        block_size=BLOCK_SIZE,
        use_threads=True,
    )
    parse_opts = pacsv.ParseOptions(
        delimiter=spec.delimiter,
        quote_char=spec.quotechar,
        newlines_in_values=False,
        ignore_empty_lines=False,
        invalid_row_handler=on_invalid,
    )
    convert_opts = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    rows = 0
    first_line = header_end_line + 1
    writer = None
    try:
        stream = pacsv.open_csv(pa.py_buffer(data), read_opts, parse_opts, convert_opts)
        for batch in stream:
            n = batch.num_rows
            if not n:
                continue
            numbers = pa.array(range(first_line + rows, first_line + rows + n), type=pa.int64())
            table = pa.Table.from_batches([batch]).append_column("source_row", numbers)
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema, compression="zstd", compression_level=1)
            writer.write_table(table)
            rows += n
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise ReadError(f"{name}: {str(exc).splitlines()[0][:300]}") from exc
    finally:
        if writer is not None:
            writer.close()
    if bad[0]:
        line, found = _first_ragged(data, read_opts, parse_opts, spec.delimiter)
        raise ragged_row_error(name, header_end_line + line, found, width, bad[0])
    if blank[0]:
        # Skipped rows would shift the physical line numbers of every later row.
        raise ReadError(f"{name}: lines of blanks only among the data: the plain reader reads this file")
    if writer is None:
        empty = pa.table(
            {**{n: pa.array([], pa.string()) for n in names}, "source_row": pa.array([], pa.int64())}
        )
        pq.write_table(empty, out)
    return StagedGrid(out, levels, width, rows, first_line)


def _first_ragged(data, read_opts, parse_opts, delimiter: str) -> tuple[int, int]:
    """(line within ``data``, fields) of the first row whose field count is not the header's: a
    second, single-threaded parse (Arrow numbers rows only then), on the way to a refusal."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    found: list[tuple[int, int]] = []

    def on_invalid(row) -> str:
        if (row.text or "").strip(delimiter + " \t\r\n"):
            found.append((row.number, row.actual_columns))
            return "error"  # the first is enough: stop reading
        return "skip"

    opts, sequential = copy.copy(read_opts), copy.copy(parse_opts)
    opts.use_threads = False
    sequential.invalid_row_handler = on_invalid
    try:
        for _ in pacsv.open_csv(pa.py_buffer(data), opts, sequential):
            pass
    except pa.ArrowInvalid:
        pass
    return found[0] if found else (0, 0)


def _offset_of_line(mm, line: int) -> int:
    """Byte offset just after the end of physical line ``line`` (1-based)."""
    pos = 0
    for _ in range(line):
        nxt = mm.find(b"\n", pos)
        if nxt < 0:
            return len(mm)
        pos = nxt + 1
    return pos


def _first_blank_line(mm, start: int, end: int) -> int:
    """Offset of the first empty line after ``start`` (footnotes follow it), else ``end``."""
    found = end
    for pattern in (b"\n\n", b"\n\r\n"):
        hit = mm.find(pattern, start, end)
        if hit >= 0:
            found = min(found, hit + 1)
    if start < end and mm[start : start + 1] in (b"\n", b"\r"):
        return start
    return found


__all__ = ["StagedGrid", "stage_csv"]
