"""Sample landing files: one per member state, byte-identical on every run, each loads by its contract."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest
import xlrd

from transforms.config import settings
from transforms.contracts import codelists
from transforms.contracts.loading import bind_to_file, load_contracts
from transforms.ingest.landing import source_files, vintage_of
from transforms.ingest.pipeline import check_file
from transforms.stages.extract import extract
from transforms.stages.harmonize import harmonize
from transforms.tools.samples import SAMPLES, iom_figures, write_samples

RAW = Path(__file__).resolve().parent.parent / "data" / "realdata" / "raw"
SYNTHETIC_MARK = re.compile(r"sint[ée]tic|synth[ée]ti", re.IGNORECASE)
SEEDED = [s for s in SAMPLES if not s.synthetic]


@pytest.fixture(scope="session")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("samples_home")
    write_samples(home / "landing")
    return home


@pytest.fixture(scope="session")
def landing(home) -> Path:
    return home / "landing"


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _cells(path: Path, reader) -> list[str]:
    """Every cell of a workbook's sheets, or of a delimited file decoded as its contract says."""
    if path.suffix == ".xlsx":
        wb = openpyxl.load_workbook(path, read_only=True)
        try:
            return [
                str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row if v
            ]
        finally:
            wb.close()
    if path.suffix == ".xls":
        book = xlrd.open_workbook(str(path))
        return [
            str(c.value) for ws in book.sheets() for r in range(ws.nrows) for c in ws.row(r) if c.value != ""
        ]
    text = path.read_bytes().decode(reader.encoding)
    return [c for row in csv.reader(io.StringIO(text), delimiter=reader.delimiter) for c in row if c]


def _text(path: Path, reader) -> str:
    return "\n".join(_cells(path, reader))


def test_writing_twice_gives_byte_identical_files(landing, tmp_path):
    again = write_samples(tmp_path)
    assert len(again) == len(SAMPLES)
    assert _digests(tmp_path) == _digests(landing)


def test_workbooks_carry_fixed_timestamps_not_the_time_of_writing(landing):
    workbooks = sorted(landing.rglob("*.xlsx"))
    assert workbooks
    for path in workbooks:
        with zipfile.ZipFile(path) as zf:
            assert {info.date_time for info in zf.infolist()} == {(2025, 1, 1, 0, 0, 0)}, path.name
            core = zf.read("docProps/core.xml").decode("utf-8")
        stamps = re.findall(r"<dcterms:(?:created|modified)[^>]*>([^<]+)<", core)
        assert stamps == ["2025-01-01T00:00:00Z"] * 2, (path.name, stamps)


def test_every_member_state_has_exactly_one_sample(landing):
    members = {m["iso3"] for m in codelists.members()}
    assert len(members) == 23
    files = [p for p in landing.rglob("*") if p.is_file()]
    assert sorted(p.parent.name for p in files) == sorted(members)
    assert sorted(s.iso3 for s in SAMPLES) == sorted(members)
    assert len({s.source_id for s in SAMPLES}) == 23


def test_each_contract_describes_its_sample(landing):
    contracts = load_contracts()
    for sample in SAMPLES:
        contract = contracts[sample.source_id]
        path = sample.path(landing)
        assert contract.reporter == sample.iso3
        assert contract.landing.folder == sample.iso3
        assert contract.synthetic is sample.synthetic, sample.source_id
        # The release date is read from the file name.
        assert vintage_of(path) == sample.vintage, path.name


def test_landing_patterns_keep_samples_and_real_files_apart(home, landing):
    contracts = load_contracts()
    real = {
        "usa_cbp_swb_encounters": "usa_cbp_sbo-encounters-fy22-fy25-aug.csv",
        "col_entradas_extranjeros": "colombia_entradas_de_extranjeros_a_colombia_20250803.csv",
        "can_ircc_asylum_gender": "canada_ircc_EN_ODP-Asylum-PT_Gender.xlsx",
        "unhcr_solutions": "unhcr_refugee_data_finder_solutions_extracted_2024-07-19.csv",
        "pan_darien_yearly": "panama_darien_2019-2022_by_nationality_derived.csv",
    }
    # Real files land beside the samples, in their contracts' folders.
    for source_id, name in real.items():
        folder = landing / contracts[source_id].landing.folder
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(RAW / name, folder / name)
    try:
        cfg = settings(home)
        expected = {s.source_id: [s.file_name] for s in SAMPLES} | {k: [v] for k, v in real.items()}
        for source_id, contract in contracts.items():
            matched = [p.name for p in source_files(contract, cfg)]
            if source_id in expected:
                assert matched == expected[source_id], source_id
            else:
                sample_names = {s.file_name for s in SAMPLES} | set(real.values())
                assert not sample_names & set(matched), source_id
    finally:
        for source_id, name in real.items():
            (landing / contracts[source_id].landing.folder / name).unlink()
        (landing / "UNHCR").rmdir()


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.source_id)
def test_sample_loads_through_its_contract(landing, sample):
    result = check_file(sample.path(landing), sample.source_id)
    assert result.status == "loaded", result.problems
    assert result.reporters == [sample.iso3]
    assert result.rows >= 50


@pytest.mark.parametrize("sample", SEEDED, ids=lambda s: s.source_id)
def test_seeded_samples_hold_the_iom_figures(landing, sample):
    # The contract as it reads this file (a year its name gives becomes a constant).
    contract = bind_to_file(load_contracts()[sample.source_id], sample.path(landing).name)
    ex = extract(sample.path(landing), contract)
    hz = harmonize(contract, ex.table, ex.sheet)
    assert not hz.errors
    figures = iom_figures(sample.iom_series, sample.iso3, sample.iom_months)
    expected = sum(
        v or 0 for code, values in figures.items() if code not in sample.iom_exclude for v in values
    )
    assert expected > 0
    assert hz.frame["value"].sum() == expected
    assert "amerdigest" in _text(sample.path(landing), contract.reader).lower()


def test_formats_mix_encodings_delimiters_and_workbooks(landing):
    contracts = load_contracts()
    readers = {s.source_id: contracts[s.source_id].reader for s in SAMPLES}
    csv_readers = [r for r in readers.values() if r.format == "csv"]
    assert len({codecs.lookup(r.encoding).name for r in csv_readers}) >= 3
    assert len({r.delimiter for r in csv_readers}) >= 2
    assert any(r.thousands == "." for r in csv_readers) and any(r.decimal == "," for r in csv_readers)
    heads = {s.source_id: s.path(landing).read_bytes()[:8] for s in SAMPLES}
    xls = [k for k, r in readers.items() if r.format == "xls" and heads[k].startswith(b"\xd0\xcf\x11\xe0")]
    xlsx = [k for k, r in readers.items() if r.format == "xlsx" and heads[k].startswith(b"PK\x03\x04")]
    assert len(xls) >= 2 and len(xlsx) >= 4
    assert len(xls) + len(xlsx) == sum(r.format != "csv" for r in readers.values())
    # A file in a legacy code page is not UTF-8: its contract's encoding matters.
    for sample in SAMPLES:
        reader = readers[sample.source_id]
        if reader.format == "csv" and codecs.lookup(reader.encoding).name != "utf-8":
            with pytest.raises(UnicodeDecodeError):
                sample.path(landing).read_bytes().decode("utf-8")


def test_samples_use_the_markers_agencies_print(landing):
    contracts = load_contracts()
    cells = {c.strip() for s in SAMPLES for c in _cells(s.path(landing), contracts[s.source_id].reader)}
    assert {"-", "--", "(-)"} <= cells


def test_synthetic_samples_say_so_in_their_data(landing):
    contracts = load_contracts()
    synthetic = [s for s in SAMPLES if s.synthetic]
    assert synthetic and SEEDED
    for sample in synthetic:
        text = _text(sample.path(landing), contracts[sample.source_id].reader)
        assert SYNTHETIC_MARK.search(text), sample.file_name
    for sample in SEEDED:
        text = _text(sample.path(landing), contracts[sample.source_id].reader)
        assert not SYNTHETIC_MARK.search(text), sample.file_name
