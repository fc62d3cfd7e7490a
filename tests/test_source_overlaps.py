"""Two sources of the same events (issue 18): declared in a contract, flagged at load, counted once.

A statistics office's yearbook and the border agency's monthly release count the same entries of
Costa Rica. Both load and are kept; the reporting views use the monthly release where its months
cover the year (the contract prefers it) and the yearbook where they do not, say which source each
row used, and keep the other source's figures in v_flow_all_sources.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
import yaml
from test_views import load, obs, rows_of

from transforms.config import CONTRACTS_DIR
from transforms.contracts import loading as contracts_loading
from transforms.contracts import model as contracts_module
from transforms.contracts.loading import load_contract, load_contracts, overlap_rules
from transforms.contracts.model import ContractError
from transforms.ingest import overlaps
from transforms.ingest.pipeline import ingest_file

MONTHLY, YEARLY = "tst_ovl_cri_mensual", "tst_ovl_cri_anuario"

# The monthly release: every month of 2023 and January to March 2024, two nationalities.
MONTHLY_ROWS = [(2023, m, "NIC", 1_000 + m) for m in range(1, 13)] + [
    (2023, m, "VEN", 200 + m) for m in range(1, 13)
]
MONTHLY_ROWS += [(2024, m, "NIC", 2_000 + m) for m in (1, 2, 3)]
# The yearbook: the same entries for 2023 (with a late revision of 12), and 2024 whole.
YEARLY_ROWS = [(2023, "NIC", 12_078 + 12), (2023, "VEN", 2_478), (2024, "NIC", 25_000), (2024, "VEN", 3_100)]
MONTHLY_2023 = sum(v for y, _, _, v in MONTHLY_ROWS if y == 2023)  # 14_556
YEARLY_2023 = sum(v for y, _, v in YEARLY_ROWS if y == 2023)  # 14_568
YEARLY_2024 = sum(v for y, _, v in YEARLY_ROWS if y == 2024)  # 28_100
MONTHLY_2024 = sum(v for y, _, _, v in MONTHLY_ROWS if y == 2024)  # 6_006


def _contract(source_id: str, title: str, calendar: str, overlaps_key=None) -> dict:
    period = {"calendar": calendar, "year": {"column": "year"}}
    ids = {"year": "Año", "iso": "ISO"}
    if calendar == "monthly":
        period["month"] = {"column": "month"}
        ids["month"] = "Mes"
    out = {
        "source_id": source_id,
        "title": title,
        "agency": "Dirección General de Migración y Extranjería de Costa Rica (test)",
        "reporter": "CRI",
        "synthetic": True,
        "landing": {"folder": "CRI", "patterns": [f"{source_id}*.csv"]},
        "reader": {"format": "csv", "header_row": 1},
        "ids": ids,
        "values": {"columns": [{"header": "Total"}]},
        "period": period,
        "fields": {"flow_type": "ENT_REG", "unit": "events", "citizenship": {"column": "iso"}},
    }
    if overlaps_key is not None:
        out["overlaps"] = overlaps_key
    return out


@pytest.fixture()
def overlap_contracts(tmp_path, monkeypatch) -> Path:
    """The project's contracts and the two test sources; the yearbook declares the overlap."""
    folder = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, folder)
    monthly = _contract(MONTHLY, "Entradas por mes (prueba)", "monthly")
    yearly = _contract(
        YEARLY,
        "Anuario: entradas por año (prueba)",
        "yearly",
        [{"source": MONTHLY, "flows": ["ENT_REG"], "prefer": "other", "note": "the same entries"}],
    )
    for c in (monthly, yearly):
        (folder / f"{c['source_id']}.yaml").write_text(
            yaml.safe_dump(c, allow_unicode=True), encoding="utf-8"
        )
    monkeypatch.setattr(contracts_loading, "CONTRACTS_DIR", folder)
    return folder


def _write(path: Path, header: str, rows) -> Path:
    path.write_text(
        header + "\n" + "\n".join(",".join(str(x) for x in r) for r in rows) + "\n", encoding="utf-8"
    )
    return path


def test_two_overlapping_files_load_flagged_and_are_counted_once(overlap_contracts, omh_home, tmp_path):
    landing = tmp_path / "files"
    landing.mkdir()
    monthly = _write(landing / f"{MONTHLY}_2024-04.csv", "Año,Mes,ISO,Total", MONTHLY_ROWS)
    yearly = _write(landing / f"{YEARLY}_2024.csv", "Año,ISO,Total", YEARLY_ROWS)

    first = ingest_file(monthly, MONTHLY, omh_home)
    assert first.status == "loaded" and first.rows == len(MONTHLY_ROWS)
    assert not [w for w in first.warnings if "overlap" in w]  # nothing else loaded yet
    second = ingest_file(yearly, YEARLY, omh_home)
    assert second.status == "loaded" and second.rows == len(YEARLY_ROWS)

    # Flagged: a warning in the load's record, and an alert.
    flagged = [w for w in second.warnings if "overlap" in w]
    assert len(flagged) == 1, second.warnings
    assert f"source {MONTHLY}" in flagged[0] and "declared in contract tst_ovl_cri_anuario" in flagged[0]
    assert f"use {MONTHLY} where it covers the period" in flagged[0]
    alerts = [json.loads(x) for x in (omh_home / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    alert = [a for a in alerts if a["kind"] == "source_overlap"]
    assert len(alert) == 1 and alert[0]["other_source_id"] == MONTHLY and alert[0]["declared"] is True
    assert (alert[0]["reporter_iso3"], alert[0]["flow_type"], alert[0]["other_observations"]) == (
        "CRI",
        "ENT_REG",
        len(MONTHLY_ROWS),
    )

    from transforms.config import settings
    from transforms.storage.warehouse import open_for_reading

    with open_for_reading(settings(omh_home)) as wh:
        # Both sources are kept, whole.
        kept = dict(wh.fetchall("SELECT source_id, sum(value) FROM fact_flow GROUP BY source_id"))
        assert kept == {MONTHLY: MONTHLY_2023 + MONTHLY_2024, YEARLY: YEARLY_2023 + YEARLY_2024}
        # Counted once: 2023 from the monthly release (its months cover the year), 2024 from the
        # yearbook (three months do not; they yield to it).
        total = wh.fetchall("SELECT sum(value) FROM v_flow WHERE reporter_iso3 = 'CRI'")[0][0]
        assert total == MONTHLY_2023 + YEARLY_2024
        by_year = rows_of(
            wh,
            "SELECT EXTRACT(YEAR FROM period_start) AS y, sum(value) AS v, "
            "string_agg(DISTINCT source_used, ',') AS used FROM v_flow_by_period "
            "WHERE reporter_iso3 = 'CRI' GROUP BY 1 ORDER BY 1",
        )
        assert [(int(r["y"]), r["v"], r["used"]) for r in by_year] == [
            (2023, MONTHLY_2023, MONTHLY),
            (2024, YEARLY_2024, YEARLY),
        ]
        regional = rows_of(
            wh,
            "SELECT sum(value) AS v, string_agg(DISTINCT source_used, ',') AS used "
            "FROM v_regional_totals WHERE region = 'ALL' AND flow_type = 'ENT_REG'",
        )[0]
        assert regional["v"] == MONTHLY_2023 + YEARLY_2024
        summary = rows_of(wh, "SELECT * FROM v_reporter_summary WHERE reporter_iso3 = 'CRI'")[0]
        assert summary["sources"] == 2 and summary["sources_used"] == f"{YEARLY}, {MONTHLY}"
        assert summary["observations_overridden"] == 2 + 3  # the 2023 yearbook rows, the 2024 months
        # The other source's figures stay queryable, with the source used instead.
        other = rows_of(
            wh,
            "SELECT source_id, period_type, sum(value) AS v, max(overridden_by) AS by "
            "FROM v_flow_all_sources WHERE NOT used GROUP BY source_id, period_type ORDER BY source_id",
        )
        assert [(r["source_id"], r["v"], r["by"]) for r in other] == [
            (YEARLY, YEARLY_2023, MONTHLY),
            (MONTHLY, MONTHLY_2024, YEARLY),
        ]
        declared = rows_of(wh, "SELECT * FROM dim_source_overlap WHERE declared_by = ?", [YEARLY])
        assert [(r["source_id"], r["preferred_source_id"], r["flow_type"]) for r in declared] == [
            (YEARLY, MONTHLY, "ENT_REG")
        ]


def _seed(wh, rules: list[dict]) -> None:
    contracts = dict(load_contracts())
    base = contracts["mex_upm_eventos_irregulares"]  # two sources of Mexico's irregular events
    contracts["tst_ovl_b"] = base.model_copy(update={"source_id": "tst_ovl_b", "overlaps": []})
    contracts["tst_ovl_a"] = base.model_copy(
        update={"source_id": "tst_ovl_a", "overlaps": [contracts_module.Overlap(**r) for r in rules]}
    )
    wh.ensure_schema(contracts)


def test_precedence_by_flow_and_period_on_both_engines(wh):
    """On DuckDB and PostgreSQL: the rule holds for its flow types and periods only; children of
    a flow type count under its root; an undeclared overlap is flagged and counted twice."""
    _seed(wh, [{"source": "tst_ovl_b", "flows": ["IRR_ENC"], "prefer": "this", "since": dt.date(2024, 1, 1)}])
    jan23, jan24 = dt.date(2023, 1, 1), dt.date(2024, 1, 1)
    a = [
        obs("tst_ovl_a", "MEX", "HND", jan24, 900, flow="IRR_ENC.APP", unit="events"),
        obs("tst_ovl_a", "MEX", "HND", jan23, 800, flow="IRR_ENC.APP", unit="events"),
    ]
    b = [
        obs("tst_ovl_b", "MEX", "HND", jan24, 950, flow="IRR_ENC", unit="events"),
        obs("tst_ovl_b", "MEX", "HND", jan23, 850, flow="IRR_ENC", unit="events"),
        obs("tst_ovl_b", "MEX", "HND", jan24, 70, flow="RET_REM", unit="events"),  # another flow
    ]
    load(wh, a, "a.csv")
    load(wh, b, "b.csv")
    got = {
        (r["source_id"], r["period_start"].year, r["flow_type"]): r["used"]
        for r in rows_of(wh, "SELECT source_id, period_start, flow_type, used FROM v_fact_precedence")
    }
    assert got == {
        ("tst_ovl_a", 2024, "IRR_ENC.APP"): True,
        ("tst_ovl_b", 2024, "IRR_ENC"): False,  # yields to a, from 2024 on
        ("tst_ovl_a", 2023, "IRR_ENC.APP"): True,
        ("tst_ovl_b", 2023, "IRR_ENC"): True,  # before the rule: no overlap declared, both count
        ("tst_ovl_b", 2024, "RET_REM"): True,  # not a flow type of the rule
    }
    sha_b = wh.fetchall("SELECT DISTINCT source_sha256 FROM v_fact WHERE source_id = 'tst_ovl_b'")[0][0]
    found = overlaps.find(wh, "tst_ovl_b", sha_b)
    assert [
        (o["other_source_id"], o["flow_type"], o["declared"], o["preferred_source_id"]) for o in found
    ] == [("tst_ovl_a", "IRR_ENC", True, "tst_ovl_a")]
    # Without the declaration the same figures are flagged as undeclared (and both count).
    _seed(wh, [])
    found = overlaps.find(wh, "tst_ovl_b", sha_b)
    assert [(o["declared"], o["preferred_source_id"]) for o in found] == [(False, None)]
    assert "NOT declared" in overlaps.message(found[0], "b.csv")
    assert wh.fetchall("SELECT count(*) FROM v_flow_all_sources WHERE NOT used")[0][0] == 0


def test_a_contract_overlap_is_checked(tmp_path):
    monthly = _contract(MONTHLY, "m", "monthly", [{"source": YEARLY, "prefer": "this"}])
    yearly = _contract(YEARLY, "y", "yearly", [{"source": MONTHLY, "prefer": "this"}])
    for c in (monthly, yearly):
        (tmp_path / f"{c['source_id']}.yaml").write_text(yaml.safe_dump(c), encoding="utf-8")
    with pytest.raises(ContractError, match=r"each prefer a different source for every flow type"):
        load_contracts(tmp_path)
    (tmp_path / f"{YEARLY}.yaml").write_text(
        yaml.safe_dump(_contract(YEARLY, "y", "yearly", [{"source": "nowhere", "prefer": "other"}])),
        encoding="utf-8",
    )
    with pytest.raises(ContractError, match=r"tst_ovl_cri_anuario.yaml: overlaps: unknown source 'nowhere'"):
        load_contracts(tmp_path)
    (tmp_path / f"{YEARLY}.yaml").write_text(
        yaml.safe_dump(_contract(YEARLY, "y", "yearly", [{"source": MONTHLY, "prefer": "other"}])),
        encoding="utf-8",
    )
    rules = overlap_rules(load_contracts(tmp_path))  # the two say the same: one rule
    assert [(r["source_id"], r["preferred_source_id"], r["flow_type"]) for r in rules] == [
        (YEARLY, MONTHLY, None)
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(_contract("tst_bad", "b", "yearly", [{"source": MONTHLY, "prefer": "sometimes"}])),
        encoding="utf-8",
    )
    with pytest.raises(ContractError, match=r"bad.yaml: (line \d+: )?overlaps.0.prefer"):
        load_contract(bad)


def test_the_real_panama_overlap_is_declared():
    rules = overlap_rules(load_contracts())
    assert {
        "source_id": "pan_darien_yearly",
        "preferred_source_id": "pan_snm_transito_irregular_mensual",
        "flow_type": "IRR_TRN",
    }.items() <= next(r for r in rules if r["source_id"] == "pan_darien_yearly").items()


def test_two_real_releases_of_the_same_encounters_are_flagged_undeclared(omh_home):
    """CBP's southwest-border release and OHSS's nationwide Border Patrol tables share the Border
    Patrol's southwest encounters, and neither holds the other (CBP adds the ports of entry, OHSS
    the other borders): no contract can say one replaces the other, so the overlap stays
    undeclared, both count, and the load says so."""
    raw = Path(__file__).resolve().parent.parent / "data" / "realdata" / "raw"
    cbp = ingest_file(raw / "usa_cbp_sbo-encounters-fy22-fy25-aug.csv", "usa_cbp_swb_encounters", omh_home)
    assert cbp.status == "loaded" and not [w for w in cbp.warnings if "overlap" in w]
    usbp = ingest_file(
        raw / "usa_ohss_KHSM_Encounters_USBP_fy25m11.xlsx", "usa_ohss_usbp_encounters_citizenship", omh_home
    )
    assert usbp.status == "loaded"
    flagged = [w for w in usbp.warnings if "overlap" in w]
    assert len(flagged) == 1 and "source usa_cbp_swb_encounters" in flagged[0], usbp.warnings
    assert "IRR_ENC figures of USA (events)" in flagged[0] and "NOT declared" in flagged[0]
    alerts = [json.loads(x) for x in (omh_home / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(a["source_id"], a["other_source_id"], a["declared"]) for a in alerts] == [
        ("usa_ohss_usbp_encounters_citizenship", "usa_cbp_swb_encounters", False)
    ]
