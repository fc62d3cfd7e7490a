"""Fuzzing the readers with the real agency files: random bytes, mutations, meaning-preserving rewrites.

Whatever the bytes, reading a file ends in one of two ways: it loads, or it is refused with a
ReadError, an ExtractError or a Refused (the reason the user reads). Any other exception is a bug.
Rewrites that keep the file's meaning (encodings with their BOM, line endings, quoting, row order,
blank lines at the end, zip member order and compression) must load with the file's own total.

Bounded for CI: a few hundred examples in well under a minute, derandomized (the same examples
each run; OMH_FUZZ_EXAMPLES=5000 OMH_FUZZ_RANDOM=1 explores further by hand).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import random
import zipfile
from pathlib import Path

import hostile_corpus as hc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms.contracts.loading import get_contract
from transforms.ingest.check import check as check_stages
from transforms.ingest.results import Refused
from transforms.readers import ReadError
from transforms.stages.extract import ExtractError, extract
from transforms.stages.harmonize import harmonize

SCALE = int(os.environ.get("OMH_FUZZ_EXAMPLES", "0")) or None
FUZZ = settings(
    max_examples=SCALE or 80,
    deadline=None,
    derandomize=not os.environ.get("OMH_FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
FEW = settings(FUZZ, max_examples=SCALE or 12)

DARIEN_TOTAL, CBP_TOTAL, CANADA_TOTAL = 404_516, 7_421_677, 734_415
REFUSALS = (ReadError, ExtractError, Refused)


def _read(path: Path, source_id: str):
    """Extract and harmonize (no GX: fast). Returns the total, or None when the file is refused."""
    contract = get_contract(source_id)
    try:
        ex = extract(path, contract)
    except (ReadError, ExtractError):
        return None
    try:
        hz = harmonize(contract, ex)
        if hz.errors:
            return None
        return float(hz.frame["value"].sum())
    finally:
        ex.cleanup()


def _full(path: Path, source_id: str):
    """The whole check of ``omh check`` (guards and both GX suites): the total, or None if refused."""
    try:
        checked = check_stages(path, get_contract(source_id))
    except Refused:
        return None
    try:
        return float(checked.facts()["value"].sum())
    finally:
        checked.close()


# ---------------------------------------------------------------------------- mutations

SPECIALS = [
    b'"',
    b",",
    b";",
    b"\n",
    b"\r",
    b"\r\n",
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\t",
    b"=",
    b"-",
    b" ",
]


@st.composite
def mutated(draw, original: bytes, max_ops: int = 4):
    """``original`` with a few edits: byte flips, special bytes inserted, a cut, a duplicated slice."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate", "replace_digit"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(SPECIALS))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
        elif op == "duplicate" and data:
            end = min(len(data), pos + draw(st.integers(1, 200)))
            data[end:end] = data[pos:end]
        elif op == "replace_digit":
            digits = [i for i, b in enumerate(data) if 48 <= b <= 57]
            if digits:
                i = digits[draw(st.integers(0, len(digits) - 1))]
                data[i] = draw(st.sampled_from(b"0123456789-.,e"))
    return bytes(data)


DARIEN = hc.DARIEN.read_bytes()
CBP_HEAD = b"".join(hc.CBP.read_bytes().splitlines(keepends=True)[:120])
CANADA = hc.CANADA.read_bytes()


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_are_refused_cleanly(data, tmp_path):
    path = tmp_path / "darien_random.csv"
    path.write_bytes(data)
    for source in ("pan_darien_yearly", "usa_cbp_swb_encounters", "can_ircc_asylum_gender"):
        _read(path, source)  # any exception but a refusal fails the test


@FUZZ
@given(data=mutated(DARIEN))
def test_mutated_darien_loads_or_is_refused(data, tmp_path):
    path = tmp_path / "darien_mutated.csv"
    path.write_bytes(data)
    total = _read(path, "pan_darien_yearly")
    if data == DARIEN:
        assert total == DARIEN_TOTAL


@FUZZ
@given(data=mutated(CBP_HEAD, max_ops=3))
def test_mutated_cbp_loads_or_is_refused(data, tmp_path):
    path = tmp_path / "sbo-encounters-mutated.csv"
    path.write_bytes(data)
    _read(path, "usa_cbp_swb_encounters")


@FEW
@given(data=mutated(DARIEN))
def test_mutated_files_through_the_whole_check(data, tmp_path):
    """Guards, both GX suites and harmonization: a refusal or a load, nothing else."""
    path = tmp_path / "darien_mutated.csv"
    path.write_bytes(data)
    _full(path, "pan_darien_yearly")


# ---------------------------------------------------------------------------- meaning kept


@st.composite
def rewritten_darien(draw) -> bytes:
    rows = list(csv.reader(io.StringIO(hc.darien())))
    header, body = rows[0], rows[1:]
    body = draw(st.permutations(body))
    buf = io.StringIO()
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    writer = csv.writer(buf, quoting=quoting, lineterminator=newline)
    writer.writerow(header)
    for row in body:
        writer.writerow([row[0], row[1], int(row[2])] if quoting == csv.QUOTE_NONNUMERIC else row)
    text = buf.getvalue() + newline * draw(st.integers(0, 3))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le-bom", "utf-16-be-bom"]))
    if encoding == "utf-16-le-bom":
        return codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    if encoding == "utf-16-be-bom":
        return codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    return text.encode(encoding)


@FUZZ
@given(data=rewritten_darien())
def test_rewrites_that_keep_the_meaning_keep_the_total(data, tmp_path):
    path = tmp_path / "darien_rewritten.csv"
    path.write_bytes(data)
    assert _read(path, "pan_darien_yearly") == DARIEN_TOTAL


@FEW
@given(data=rewritten_darien(), fast=st.booleans())
def test_rewrites_keep_the_total_through_the_whole_check_and_both_readers(data, fast, tmp_path, monkeypatch):
    """The same rewrites through guards and suites, on the plain reader and on the Arrow fast path."""
    if fast:
        monkeypatch.setenv("OMH_FAST_CSV_BYTES", "1")
    else:
        monkeypatch.delenv("OMH_FAST_CSV_BYTES", raising=False)
    path = tmp_path / "darien_rewritten.csv"
    path.write_bytes(data)
    assert _full(path, "pan_darien_yearly") == DARIEN_TOTAL


# ---------------------------------------------------------------------------- XLSX


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


CANADA_MEMBERS = _members(CANADA)


@FUZZ
@given(data=mutated(CANADA, max_ops=3))
def test_mutated_workbook_bytes_are_refused_cleanly(data, tmp_path):
    path = tmp_path / "Asylum_Gender_mutated.xlsx"
    path.write_bytes(data)
    _read(path, "can_ircc_asylum_gender")


@st.composite
def mutated_sheet(draw) -> bytes:
    """The workbook with edits inside its XML (cells, strings, markup), re-zipped validly."""
    members = dict(CANADA_MEMBERS)
    name = draw(st.sampled_from(["xl/worksheets/sheet1.xml", "xl/sharedStrings.xml", "xl/workbook.xml"]))
    xml = members[name]
    window = draw(st.integers(0, len(xml) - 1))
    piece = draw(
        st.sampled_from(
            [
                b"<",
                b">",
                b"&",
                b"</c>",
                b"<v>-5</v>",
                b"<v>1e308</v>",
                b"<v>NaN</v>",
                b'"',
                b"\xff",
                b"=1+1",
                b"",
            ]
        )
    )
    cut = draw(st.integers(0, 12))
    members[name] = xml[:window] + piece + xml[window + cut :]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, content in members.items():
            zf.writestr(member, content)
    return buf.getvalue()


@FUZZ
@given(data=mutated_sheet())
def test_mutated_workbook_xml_loads_or_is_refused(data, tmp_path):
    path = tmp_path / "Asylum_Gender_xml.xlsx"
    path.write_bytes(data)
    _read(path, "can_ircc_asylum_gender")


@settings(FEW, max_examples=SCALE or 8)
@given(order=st.permutations(sorted(CANADA_MEMBERS)), level=st.integers(0, 9), stored=st.booleans())
def test_rezipped_workbook_keeps_the_total(order, level, stored, tmp_path):
    buf = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buf, "w", method, compresslevel=None if stored else level) as zf:
        for name in order:
            zf.writestr(name, CANADA_MEMBERS[name])
    path = tmp_path / "Asylum_Gender_rezipped.xlsx"
    path.write_bytes(buf.getvalue())
    assert _read(path, "can_ircc_asylum_gender") == CANADA_TOTAL


def test_the_originals_load_with_their_totals(tmp_path):
    assert _read(hc.DARIEN, "pan_darien_yearly") == DARIEN_TOTAL
    assert _read(hc.CBP, "usa_cbp_swb_encounters") == CBP_TOTAL
    assert _read(hc.CANADA, "can_ircc_asylum_gender") == CANADA_TOTAL


@pytest.mark.parametrize("seed", range(3))
def test_seeded_byte_noise_on_every_real_file(seed, tmp_path):
    """Every real file with a few hundred random bytes overwritten: a load or a refusal."""
    rng = random.Random(seed)
    for path, source in hc.SOURCE_OF.items():
        data = bytearray(path.read_bytes())
        for _ in range(200):
            data[rng.randrange(len(data))] = rng.randrange(256)
        target = tmp_path / f"noisy_{path.name}"
        target.write_bytes(bytes(data))
        _read(target, source)
