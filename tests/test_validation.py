"""Validation engineers can act on: refusals that name file, row, column and value; a contract fix
and a rerun load the refused file; format versions; severities raised or lowered by the contract."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
import yaml

import transforms.contracts.loading as contracts_module
from transforms.contracts.loading import load_contracts
from transforms.contracts.model import Contract
from transforms.ingest.pipeline import check_file, ingest_file
from transforms.stages.extract import extract

ROOT = Path(__file__).resolve().parent.parent
CBP = ROOT / "data" / "realdata" / "raw" / "usa_cbp_sbo-encounters-fy22-fy25-aug.csv"
COLOMBIA = ROOT / "data" / "realdata" / "raw" / "colombia_entradas_de_extranjeros_a_colombia_20250803.csv"


def _variant(tmp_path: Path, name: str, old: bytes, new: bytes, count: int = 1) -> Path:
    data = CBP.read_bytes()
    assert old in data
    path = tmp_path / name
    path.write_bytes(data.replace(old, new, count))
    return path


@pytest.fixture()
def contracts_dir(tmp_path, monkeypatch) -> Path:
    """A private copy of the contracts, so a test can change one as an engineer would."""
    folder = tmp_path / "contracts"
    shutil.copytree(ROOT / "contracts", folder)
    monkeypatch.setattr(contracts_module, "CONTRACTS_DIR", folder)
    return folder


def test_three_broken_copies_are_refused_naming_file_and_place(tmp_path):
    negative = _variant(tmp_path, "neg.csv", b"Inadmissibles,66\r", b"Inadmissibles,-66\r")
    label = _variant(tmp_path, "label.csv", b",Guatemala,", b",Guatemaltecolandia,")
    renamed = _variant(tmp_path, "renamed.csv", b"Encounter Count", b"Encounters")
    results = {p.name: check_file(p, "usa_cbp_swb_encounters") for p in (negative, label, renamed)}
    assert {r.status for r in results.values()} == {"refused"}
    assert results["neg.csv"].reason.startswith("neg.csv: row ")
    assert "column 'Encounter Count'" in results["neg.csv"].reason and "-66" in results["neg.csv"].reason
    assert "'Guatemaltecolandia'" in results["label.csv"].reason
    assert "column 'Citizenship Grouping'" in results["label.csv"].reason
    assert (
        "'Encounter Count'" in results["renamed.csv"].reason
        and "'Encounters'" in results["renamed.csv"].reason
    )


def test_an_alias_in_the_contract_then_a_rerun_loads_the_refused_file(tmp_path, monkeypatch, contracts_dir):
    home = tmp_path / "home"
    monkeypatch.setenv("OMH_HOME", str(home))
    monkeypatch.delenv("OMH_WAREHOUSE_URL", raising=False)
    landing = home / "landing" / "USA"
    landing.mkdir(parents=True)
    bad = landing / "usa_cbp_sbo-encounters-relabelled.csv"
    bad.write_bytes(CBP.read_bytes().replace(b",Guatemala,", b",Guatemaltecolandia,"))

    first = ingest_file(bad, "usa_cbp_swb_encounters")
    assert first.status == "refused" and "'Guatemaltecolandia'" in first.reason
    assert list((home / "quarantine" / "usa_cbp_swb_encounters").glob("*relabelled.csv"))

    # The engineer adds the label to the contract's citizenship map.
    path = contracts_dir / "usa_cbp_swb_encounters.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["fields"]["citizenship"]["map"]["Guatemaltecolandia"] = "GTM"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")

    second = ingest_file(bad, "usa_cbp_swb_encounters")
    assert second.status == "loaded", second.reason
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        gtm = con.execute("SELECT sum(value) FROM fact_flow WHERE citizenship_iso3 = 'GTM'").fetchone()[0]
        statuses = con.execute("SELECT status FROM file_manifest").fetchall()
    finally:
        con.close()
    assert gtm > 0
    assert statuses == [("loaded",)]


def test_a_file_is_matched_to_the_format_version_it_fits(tmp_path):
    renamed = tmp_path / "entradas_de_extranjeros_m49.csv"
    renamed.write_bytes(COLOMBIA.read_bytes().replace(b"Codigo Iso 3166", b"Codigo Pais M49", 1))
    data = load_contracts()["col_entradas_extranjeros"].model_dump(
        mode="json", by_alias=True, exclude={"path"}
    )
    data["ids"]["iso_code"] = {"header": "Codigo Iso 3166"}
    data["versions"] = [
        {"version": 2, "note": "2026 exports", "ids": {**data["ids"], "iso_code": "Codigo Pais M49"}}
    ]
    contract = Contract.model_validate(data)
    ex = extract(renamed, contract)
    assert ex.version == 2
    assert "matched format version 2 of the contract" in ex.drift[0]
    ex_old = extract(COLOMBIA, contract)
    assert ex_old.version == contract.version and not any("format version" in d for d in ex_old.drift)


def test_a_contract_lowers_or_raises_a_severity(tmp_path, contracts_dir):
    negative = _variant(tmp_path, "neg.csv", b"Inadmissibles,66\r", b"Inadmissibles,-66\r")
    path = contracts_dir / "usa_cbp_swb_encounters.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["severity"] = {
        "expect_column_values_to_be_between": {
            "level": "warning",
            "reason": "negative counts are corrections",
        },
        "jump": {"level": "error", "reason": "a jump here is a unit change"},
    }
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    result = check_file(negative, "usa_cbp_swb_encounters")
    # The negative count is now a warning, but the 2025 drop in apprehensions (a real one) is an error.
    assert result.status == "refused"
    assert "more than 10x away" in result.reason
    assert not any("expect_column_values_to_be_between" in p for p in result.problems)
