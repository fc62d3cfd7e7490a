"""Mirror checks (issue 19, part 3): pairs as data, v_mirror / pub_mirror on both engines, the
regional DAG's warning for a pair out of tolerance.

The facts are small and written here (tests/test_views.py's helpers); the expected asymmetry is
computed in the test from those figures, not read from the view.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest
import yaml
from test_views import JAN, load, obs, rows_of  # `wh`: conftest's warehouse on both engines

from transforms.contracts import codelists
from transforms.contracts.loading import load_contracts
from transforms.contracts.mirror_pairs import PAIRS_FILE, MirrorPairError, load_pairs, pair_frame
from transforms.ops.mirror import KIND, check_mirror, out_of_tolerance, recent_comparisons

FEB, MAR = dt.date(2024, 2, 1), dt.date(2024, 3, 1)
COLUMNS = [
    "pair_id",
    "pair_label_es",
    "pair_label_en",
    "pair_label_pt",
    "pair_label_fr",
    "period_type",
    "period_start",
    "period_end",
    "a_reporter_iso3",
    "a_flow_type",
    "a_unit",
    "a_value",
    "b_reporter_iso3",
    "b_flow_type",
    "b_unit",
    "b_value",
    "difference",
    "asymmetry",
    "tolerance",
    "within_tolerance",
    "note",
]


def asym(a: float, b: float) -> float:
    return (a - b) / ((a + b) / 2)


def fact(source, reporter, citizenship, start, value, flow, unit, counterpart="_Z"):
    return obs(source, reporter, citizenship, start, value, flow=flow, unit=unit) | {
        "counterpart_iso3": counterpart
    }


# Panama and Costa Rica: January within tolerance (0.10), February out (Costa Rica 20 % lower).
DARIEN = [
    fact("pan_snm_transito_irregular_mensual", "PAN", "VEN", JAN, 20_000, "IRR_TRN", "persons"),
    fact("pan_snm_transito_irregular_mensual", "PAN", "HTI", JAN, 5_000, "IRR_TRN", "persons"),
    fact("pan_snm_transito_irregular_mensual", "PAN", "VEN", FEB, 18_000, "IRR_TRN", "persons"),
    fact("cri_dgme_transito_irregular_sur", "CRI", "VEN", JAN, 19_500, "IRR_TRN", "persons"),
    fact("cri_dgme_transito_irregular_sur", "CRI", "HTI", JAN, 4_700, "IRR_TRN", "persons"),
    fact("cri_dgme_transito_irregular_sur", "CRI", "VEN", FEB, 14_400, "IRR_TRN", "persons"),
    # Costa Rica's regular entries are another flow: never in the pair.
    fact("cri_dgme_entradas_extranjeros", "CRI", "VEN", JAN, 99_999, "ENT_REG", "events"),
]
# Mexico's returns by nationality; Guatemala and Honduras count those received, by counterpart.
RETURNS = [
    fact("mex_upm_devoluciones", "MEX", "GTM", JAN, 2_000, "RET_REM", "events", "GTM"),
    fact("mex_upm_devoluciones", "MEX", "HND", JAN, 1_800, "RET_REM", "events", "HND"),
    fact("mex_upm_devoluciones", "MEX", "NIC", JAN, 700, "RET_REM", "events", "NIC"),
    fact("mex_upm_devoluciones", "MEX", "GTM", FEB, 2_100, "RET_REM", "events", "GTM"),
    fact("gtm_igm_retornados", "GTM", "GTM", JAN, 1_950, "RET_RCV", "events", "MEX"),
    fact("gtm_igm_retornados", "GTM", "GTM", JAN, 5_000, "RET_RCV", "events", "USA"),
    fact("gtm_igm_retornados", "GTM", "GTM", FEB, 3, "RET_RCV", "events", "MEX"),  # small: not published
    fact("gtm_igm_retornados", "GTM", "GTM", FEB, 4_800, "RET_RCV", "events", "USA"),
    fact("hnd_inm_retornados", "HND", "HND", JAN, 1_500, "RET_RCV", "events", "MEX"),
    fact("hnd_inm_retornados", "HND", "HND", JAN, 2_500, "RET_RCV", "events", "USA"),
]


def _load(wh, rows) -> None:
    import pandas as pd

    wh.ensure_schema(load_contracts())
    frame = pd.DataFrame(rows)
    for source_id, part in frame.groupby("source_id"):
        load(wh, part.reset_index(drop=True), f"{source_id}.csv")


def _by_key(rows: list[dict]) -> dict[tuple, dict]:
    return {(r["pair_id"], r["period_start"]): r for r in rows}


# ---------------------------------------------------------------------------- the pairs as data


def test_the_pairs_name_codes_of_the_code_lists_and_sources_that_feed_both_sides():
    pairs = load_pairs()
    ids = {p["id"] for p in pairs}
    assert {"darien_pan_cri", "returns_mex_gtm", "returns_mex_hnd"} <= ids
    members = {m["iso3"] for m in codelists.members()}
    flows, units = codelists.codes("flow_types"), codelists.codes("units")
    fed = {
        (c.reporter, t)
        for c in load_contracts().values()
        if (spec := c.fields.get("flow_type")) is not None
        for t in {spec.value, *spec.map.values()}
    }
    for p in pairs:
        for side in (p["a"], p["b"]):
            assert side["reporter"] in members, p["id"]
            assert set(side["flow_types"]) <= flows and side["unit"] in units, p["id"]
            # A contract of that reporter delivers one of the side's flow types.
            assert any((side["reporter"], t) in fed for t in side["flow_types"]), (p["id"], side)
        assert all(p["label"][lang].strip() for lang in ("es", "en", "pt", "fr"))
    assert len(pair_frame()) == len(pairs)


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda p: p["a"].update(flow_types=["IRR_XXX"]), "flow types ['IRR_XXX'] are not in"),
        (lambda p: p["b"].update(reporter="XXX"), "reporter 'XXX' is not a country"),
        (lambda p: p["b"].update(unit="kg"), "unit 'kg' is not in"),
        (lambda p: p.update(tolerance=-1), "tolerance must be"),
        (lambda p: p["label"].pop("fr"), "label needs es, en, pt and fr"),
    ],
)
def test_a_bad_pair_is_refused_naming_the_file_the_pair_and_the_problem(tmp_path, change, problem):
    doc = yaml.safe_load(PAIRS_FILE.read_text(encoding="utf-8"))
    change(doc["pairs"][1])
    path = tmp_path / "mirror_pairs.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(MirrorPairError) as err:
        load_pairs(path)
    assert f"mirror_pairs.yaml, pair 2 ({doc['pairs'][1]['id']})" in str(err.value)
    assert problem in str(err.value)


# ---------------------------------------------------------------------------- the views


def test_v_mirror_lists_the_darien_and_returns_pairs_with_their_asymmetry(wh):
    _load(wh, DARIEN + RETURNS)
    rows = rows_of(wh, "SELECT * FROM v_mirror ORDER BY pair_id, period_start")
    assert list(rows[0]) == COLUMNS
    got = _by_key(rows)
    expected = {
        ("darien_pan_cri", JAN): (25_000, 24_200, 0.10),
        ("darien_pan_cri", FEB): (18_000, 14_400, 0.10),
        ("returns_mex_gtm", JAN): (2_000, 1_950, 0.10),  # Guatemala's returns from the US left out
        ("returns_mex_gtm", FEB): (2_100, 3, 0.10),
        ("returns_mex_hnd", JAN): (1_800, 1_500, 0.15),
    }
    for key, (a, b, tolerance) in expected.items():
        r = got[key]
        assert (r["a_value"], r["b_value"], r["difference"]) == (a, b, a - b), key
        assert r["asymmetry"] == pytest.approx(asym(a, b)), key
        assert r["tolerance"] == pytest.approx(tolerance)
        assert r["within_tolerance"] is (abs(asym(a, b)) <= tolerance), key
        assert r["period_end"] == (dt.date(2024, 1, 31) if key[1] == JAN else dt.date(2024, 2, 29))
    assert got[("darien_pan_cri", JAN)]["within_tolerance"] is True
    assert got[("darien_pan_cri", FEB)]["within_tolerance"] is False
    assert got[("returns_mex_hnd", JAN)]["within_tolerance"] is False  # 0.182 > 0.15
    d = got[("darien_pan_cri", JAN)]
    assert (d["a_reporter_iso3"], d["a_flow_type"], d["a_unit"]) == ("PAN", "IRR_TRN", "persons")
    assert d["pair_label_es"].startswith("Darién") and d["note"]
    # Honduras reported no February: the month shows Mexico's side alone, no asymmetry.
    assert ("returns_mex_hnd", FEB) not in got  # Mexico sent no February return of Hondurans either
    assert not any(r["pair_id"] == "returns_mex_slv" for r in rows)  # no Salvadoran facts here


def test_pub_mirror_leaves_a_suppressed_side_out(wh):
    _load(wh, DARIEN + RETURNS)
    pub = _by_key(rows_of(wh, "SELECT * FROM pub_mirror"))
    assert list(next(iter(pub.values()))) == COLUMNS
    small = pub[("returns_mex_gtm", FEB)]  # Guatemala's 3 received from Mexico: a small count
    assert small["a_value"] == 2_100 and small["b_value"] is None
    assert small["difference"] is None and small["asymmetry"] is None and small["within_tolerance"] is None
    big = pub[("returns_mex_gtm", JAN)]
    assert (big["a_value"], big["b_value"]) == (2_000, 1_950)
    assert big["asymmetry"] == pytest.approx(asym(2_000, 1_950))
    assert pub[("darien_pan_cri", FEB)]["asymmetry"] == pytest.approx(asym(18_000, 14_400))


def test_a_lag_moves_side_b_onto_a_s_period(wh):
    _load(
        wh,
        DARIEN + [fact("cri_dgme_transito_irregular_sur", "CRI", "VEN", MAR, 17_000, "IRR_TRN", "persons")],
    )
    wh.execute("UPDATE dim_mirror_pair SET lag_months = 1 WHERE pair_id = 'darien_pan_cri'")
    got = _by_key(rows_of(wh, "SELECT * FROM v_mirror WHERE pair_id = 'darien_pan_cri'"))
    # Costa Rica's February is compared with Panama's January, its March with February.
    assert (got[("darien_pan_cri", JAN)]["a_value"], got[("darien_pan_cri", JAN)]["b_value"]) == (
        25_000,
        14_400,
    )
    assert (got[("darien_pan_cri", FEB)]["a_value"], got[("darien_pan_cri", FEB)]["b_value"]) == (
        18_000,
        17_000,
    )
    assert got[("darien_pan_cri", FEB)]["period_end"] == dt.date(2024, 2, 29)
    # Costa Rica's January has no Panamanian December: B alone, one month earlier.
    alone = got[("darien_pan_cri", dt.date(2023, 12, 1))]
    assert alone["a_value"] is None and alone["b_value"] == 24_200 and alone["within_tolerance"] is None
    assert alone["period_end"] == dt.date(2023, 12, 31)


# ---------------------------------------------------------------------------- the warning


def test_a_pair_pushed_out_of_tolerance_raises_the_warning(wh, tmp_path, caplog):
    within = [r for r in DARIEN + RETURNS if r["period_start"] == JAN and r["reporter_iso3"] != "HND"]
    _load(wh, within)
    home = tmp_path / "home"
    report = check_mirror(home, wh=wh)
    assert report["out_of_tolerance"] == [] and report["pairs"] == ["darien_pan_cri", "returns_mex_gtm"]
    assert report["compared"] == len(recent_comparisons(wh))
    # Costa Rica's January pushed 30 % down: the Darién pair leaves its tolerance.
    wh.execute(
        "UPDATE fact_flow SET value = value * 0.7 WHERE reporter_iso3 = 'CRI' AND flow_type = 'IRR_TRN'"
    )
    b = (19_500 + 4_700) * 0.7
    with caplog.at_level(logging.WARNING, logger="omh.mirror"):
        report = check_mirror(home, wh=wh)
    darien = [w for w in report["out_of_tolerance"] if w["pair_id"] == "darien_pan_cri"]
    assert len(darien) == 1 and darien[0]["period"] == "2024-01"
    assert darien[0]["asymmetry"] == pytest.approx(asym(25_000, b), abs=1e-6)
    warned = [
        r for r in caplog.records if r.levelno == logging.WARNING and "darien_pan_cri" in r.getMessage()
    ]
    assert len(warned) == 1 and "outside ±0.100" in warned[0].getMessage()
    saved = json.loads((home / "reports" / "mirror.json").read_text(encoding="utf-8"))
    assert [w["pair_id"] for w in saved["out_of_tolerance"]] == [
        w["pair_id"] for w in report["out_of_tolerance"]
    ]
    alerts = [json.loads(line) for line in (home / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(a["kind"], a["pair_id"], a["period"]) for a in alerts] == [(KIND, "darien_pan_cri", "2024-01")]
    check_mirror(home, wh=wh)  # the same warning again: logged, not written twice
    assert len((home / "alerts.jsonl").read_text(encoding="utf-8").splitlines()) == 1


def test_only_recent_periods_are_checked(wh):
    old = dt.date(2022, 6, 1)
    rows = DARIEN + [
        fact("pan_snm_transito_irregular_mensual", "PAN", "VEN", old, 1_000, "IRR_TRN", "persons"),
        fact("cri_dgme_transito_irregular_sur", "CRI", "VEN", old, 100, "IRR_TRN", "persons"),
    ]
    _load(wh, rows)
    recent = recent_comparisons(wh, months=12)
    assert {(r["pair_id"], r["period_start"]) for r in out_of_tolerance(recent)} == {("darien_pan_cri", FEB)}
    everything = recent_comparisons(wh, months=36)
    assert ("darien_pan_cri", old) in {
        (r["pair_id"], r["period_start"]) for r in out_of_tolerance(everything)
    }


def test_the_regional_dag_runs_the_mirror_checks_after_the_refresh():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "dags" / "omh_regional.py"
    spec = importlib.util.spec_from_file_location("omh_regional_for_mirror_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    task = module.dag.task_dict["mirror_checks"]
    assert task.upstream_task_ids == {"refresh_views"}
    assert "check_mirror()" in path.read_text(encoding="utf-8")


def test_the_counterpart_feeds_are_outside_the_delivery_calendar(wh):
    from transforms.tools.samples_mirror import MIRROR_SAMPLES

    contracts = load_contracts()
    wh.ensure_schema(contracts)
    feeds = {s.source_id for s in MIRROR_SAMPLES}
    assert all(contracts[f].delivery.calendar is False for f in feeds)
    slotted = {r[0] for r in wh.fetchall("SELECT DISTINCT source_id FROM delivery_slot")}
    assert not feeds & slotted  # the completeness grid expects nothing of them
    assert "cri_dgme_entradas_extranjeros" in slotted  # the member states' own sources still are
