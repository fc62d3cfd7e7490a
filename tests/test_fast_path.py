"""The fast paths give the same figures as the plain paths.

Large delimited files are staged to Parquet by Arrow instead of read by the csv module, and
GX evaluates expectations on projections (distinct values, duplicated keys) instead of whole
tables: both must change nothing but the speed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from transforms.contracts import load_contracts
from transforms.extract import extract
from transforms.harmonize import harmonize
from transforms.validate import build_canonical_suite, build_raw_suite, run_suite, run_suite_sql

RAW = Path(__file__).resolve().parent.parent / "data" / "realdata" / "raw"
CSV_FILES = {
    "usa_cbp_swb_encounters": "usa_cbp_sbo-encounters-fy22-fy25-aug.csv",
    "col_entradas_extranjeros": "colombia_entradas_de_extranjeros_a_colombia_20250803.csv",
    "unhcr_solutions": "unhcr_refugee_data_finder_solutions_extracted_2024-07-19.csv",
    "pan_darien_yearly": "panama_darien_2019-2022_by_nationality_derived.csv",
}


def _observations(source_id: str, monkeypatch, fast: bool) -> tuple[pd.DataFrame, object]:
    monkeypatch.setenv("OMH_FAST_CSV_BYTES", "0" if fast else str(1 << 40))
    contract = load_contracts()[source_id]
    ex = extract(RAW / CSV_FILES[source_id], contract)
    assert (ex.staged is not None) == fast
    hz = harmonize(contract, ex)
    assert not hz.errors
    frame = hz.frame.sort_values(["source_row", "source_column", "detail"]).reset_index(drop=True)
    return frame, ex


@pytest.mark.parametrize("source_id", sorted(CSV_FILES))
def test_staged_csv_gives_the_same_observations(source_id, monkeypatch):
    plain, _ = _observations(source_id, monkeypatch, fast=False)
    fast, ex = _observations(source_id, monkeypatch, fast=True)
    try:
        assert len(fast) == len(plain) > 0
        pd.testing.assert_frame_equal(fast, plain, check_dtype=False)
    finally:
        ex.cleanup()


def test_projected_gx_gives_the_same_verdicts_as_whole_tables(monkeypatch):
    contract = load_contracts()["usa_cbp_swb_encounters"]
    ex = extract(RAW / CSV_FILES["usa_cbp_swb_encounters"], contract)
    hz = harmonize(contract, ex)
    frame = hz.frame
    # Break it in several ways: a negative count, an unknown code, a duplicated key.
    frame.loc[3, "value"] = -5.0
    frame.loc[7, "sex"] = "X"
    frame = pd.concat([frame, frame.iloc[[11]]], ignore_index=True)
    ex.con.register("broken", frame)
    for suite in (build_canonical_suite(), build_raw_suite(contract)):
        table = frame if suite["name"] == "canonical" else ex.table
        relation = "broken" if suite["name"] == "canonical" else ex.view
        whole = run_suite(suite, table)
        projected = run_suite_sql(suite, ex.con, relation)
        assert [o.expectation for o in whole.outcomes] == [o.expectation for o in projected.outcomes]
        assert [o.success for o in whole.outcomes] == [o.success for o in projected.outcomes]
        for w, p in zip(whole.outcomes, projected.outcomes, strict=True):
            if not w.success and w.expectation != "expect_compound_columns_to_be_unique":
                assert w.unexpected_count == p.unexpected_count, w.expectation
    failed = {o.expectation for o in run_suite_sql(build_canonical_suite(), ex.con, "broken").failed}
    assert failed == {
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_compound_columns_to_be_unique",
    }
