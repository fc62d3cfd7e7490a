"""Honest totals (decision 0001): remainders reconcile exactly to the source's totals both ways, a
file whose remainders are a large share of its totals is warned about, naming the rows; and named
checks a contract lowers with a reason that the load records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml

import transforms.contracts.loading as contracts_module
from transforms.contracts.model import Contract
from transforms.ingest.pipeline import check_file, ingest_file
from transforms.stages.extract import extract
from transforms.stages.harmonize import harmonize

ROOT = Path(__file__).resolve().parent.parent
DARIEN = ROOT / "data" / "realdata" / "raw" / "panama_darien_2019-2022_by_nationality_derived.csv"

BASE = {
    "source_id": "test_totals",
    "title": "Test source",
    "agency": "Test agency",
    "reporter": "PAN",
    "landing": {"folder": "TST", "patterns": ["*.csv"]},
    "reader": {"format": "csv"},
    "ids": {"month": "Mes", "nationality": "Nacionalidad"},
    "values": {
        "columns": [
            {"header": "Femenino", "sex": "F"},
            {"header": "Masculino", "sex": "M"},
            {"header": "Total", "role": "total"},
        ]
    },
    "period": {"calendar": "monthly", "year": "2024", "month": {"column": "month"}},
    "fields": {"flow_type": "IRR_TRN", "unit": "persons", "citizenship": {"column": "nationality"}},
    "remainder": {"sex": "_U"},
}

# Venezuela: cells 10 + 20 = 30 under a total of 32 (remainder +2); Perú: rounded cells 5 + 5 = 10
# over a total of 8 (-2, within rounding to 5); Haití: cells equal the total.
ROUNDED = (
    "Mes,Nacionalidad,Femenino,Masculino,Total\n"
    "Enero,Venezuela,10,20,32\n"
    "Enero,Perú,5,5,8\n"
    "Febrero,Haití,100,300,400\n"
)
FILE_TOTAL = 32 + 8 + 400


def _run(tmp_path: Path, text: str, **kw):
    contract = Contract.model_validate({**BASE, **kw})
    path = tmp_path / "file.csv"
    path.write_text(text, encoding="utf-8")
    ex = extract(path, contract)
    return harmonize(contract, ex)


def test_remainders_reconcile_exactly_both_ways(tmp_path):
    hz = _run(tmp_path, ROUNDED, rounding=5)
    assert not hz.errors, [p.message for p in hz.errors]
    f = hz.frame
    assert f["value"].sum() == FILE_TOTAL  # the loaded sum is the source's total, to the unit
    rest = f[f["detail"] == "remainder"].sort_values("source_row")
    assert list(zip(rest["citizenship_iso3"], rest["value"], strict=True)) == [("VEN", 2), ("PER", -2)]
    assert set(rest["obs_status"]) == {"E"} and set(rest["sex"]) == {"_U"}
    for row in hz.controls.itertuples():  # every total equals its leaves plus its remainder
        assert f.loc[f["source_row"] == row.source_row, "value"].sum() == row.total
    (flag,) = [p for p in hz.problems if p.check == "remainder_negative"]
    assert flag.severity == "warning" and flag.rows == [3]
    assert flag.message == (
        "the source's own total 8 is below its cells' sum 10 by 2, within rounding; a remainder of -2 "
        "(status E) is stored so that the loaded sum equals the total"
    )


def test_a_negative_remainder_beyond_rounding_still_refuses(tmp_path):
    hz = _run(tmp_path, ROUNDED.replace("5,5,8", "5,5,2"), rounding=5)
    assert [p.check for p in hz.errors] == ["total_matches"]
    assert "difference -8, beyond the rounding" in hz.errors[0].message


# A contract that skips nearly every row: the skipped rows' figures become the total row's remainder.
SKIPPED = (
    "Nacionalidad,Ene,Feb\nVenezuela,1000000,2058550\nHaití,40000,50000\nPerú,3,4\nTotal,1040003,2108554\n"
)


def _skipping(tmp_path: Path, **kw):
    spec = {
        **BASE,
        "ids": {"nationality": {"col": "A"}},
        "values": {"melt": {"start_col": "B", "names": ["month"]}},
        "rows": {
            "skip": [{"column": "nationality", "in": ["Venezuela", "Haití"]}],
            "total": [{"column": "nationality", "equals": "Total"}],
        },
        "remainder": {"citizenship": "_O"},
        **kw,
    }
    return _run(tmp_path, SKIPPED, **{k: v for k, v in spec.items() if k not in BASE or v != BASE[k]})


def test_remainders_above_the_share_warn_naming_the_rows(tmp_path):
    hz = _skipping(tmp_path)
    assert not hz.errors
    f = hz.frame
    assert f["value"].sum() == 1040003 + 2108554  # still exact
    (warning,) = [p for p in hz.problems if p.check == "remainder_share"]
    assert warning.severity == "warning" and warning.rows == [5]
    assert warning.message == (
        "remainders are 100.0% of the file's totals (3148550 of 3148557), more than remainder_max_share 5%: "
        "the figures of these totals became estimated remainders: row 5 (Feb): 2108550; row 5 (Ene): 1040000; "
        "the contract skipped 2 row(s) of the file; check the contract's rows.skip and values "
        "(or raise remainder_max_share)"
    )
    assert "e+" not in warning.message


def test_the_share_is_the_contracts_to_tune(tmp_path):
    assert not [
        p for p in _skipping(tmp_path, remainder_max_share=1.0).problems if p.check == "remainder_share"
    ]
    fine = _run(tmp_path, ROUNDED, rounding=5)  # 4 of 440: under the default 5%
    assert not [p for p in fine.problems if p.check == "remainder_share"]


# ---------------------------------------------------------------------------- named checks


@pytest.fixture()
def contracts_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "contracts"
    shutil.copytree(ROOT / "contracts", folder)
    monkeypatch.setattr(contracts_module, "CONTRACTS_DIR", folder)
    return folder


def _own_nationals(tmp_path: Path) -> Path:
    """The Darién file with one row of Panama's own citizens (a flow of foreigners only)."""
    text = DARIEN.read_text(encoding="utf-8")
    assert "Otros Paises," in text
    path = tmp_path / "darien_panama.csv"
    path.write_text(text.replace("Otros Paises,", "Panamá,"), encoding="utf-8")
    return path


def test_a_guard_refusal_names_the_setting_and_a_reasoned_override_loads_and_is_recorded(
    tmp_path, contracts_dir, monkeypatch
):
    file = _own_nationals(tmp_path)
    refused = check_file(file, "pan_darien_yearly")
    assert refused.status == "refused"
    assert "count citizens of PAN" in refused.reason
    assert (
        "(check guard.own_citizens; to accept these rows, set severity: "
        "{guard.own_citizens: {level: warning, reason: ...}} in the contract)" in refused.reason
    )

    path = contracts_dir / "pan_darien_yearly.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    reason = "Panamanians returning through the Darién are counted by SENAFRONT"
    spec["severity"] = {"guard.own_citizens": {"level": "warning", "reason": reason}}
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    checked = check_file(file, "pan_darien_yearly")
    assert checked.status == "loaded", checked.reason
    assert any("accepted: guard.own_citizens is a warning" in w for w in checked.warnings)

    home = tmp_path / "home"
    monkeypatch.setenv("OMH_HOME", str(home))
    monkeypatch.delenv("OMH_WAREHOUSE_URL", raising=False)
    result = ingest_file(file, "pan_darien_yearly")
    assert result.status == "loaded", result.reason
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT severity, success, examples FROM dq_result WHERE suite = 'contract' "
            "AND expectation = 'guard.own_citizens'"
        ).fetchall()
        loaded = con.execute(
            "SELECT count(*) FROM fact_flow WHERE citizenship_iso3 = 'PAN' AND reporter_iso3 = 'PAN'"
        ).fetchall()[0][0]
    finally:
        con.close()
    assert len(rows) == 1 and rows[0][:2] == ("warning", True)
    assert json.loads(rows[0][2])[0]["reason"] == reason
    assert loaded > 0
