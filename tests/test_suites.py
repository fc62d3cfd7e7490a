"""The GX suites in expectations/ are reviewed code: valid for GX, complete and up to date."""

from __future__ import annotations

import json

import pytest

from transforms.config import EXPECTATIONS_DIR
from transforms.contracts.loading import load_contracts
from transforms.stages.validate import build_canonical_suite, build_raw_suite, run_suite

CONTRACTS = load_contracts()
SUITES = sorted(EXPECTATIONS_DIR.glob("*.json"))


def test_one_raw_suite_per_contract_and_the_canonical_suite():
    names = {p.stem for p in SUITES}
    assert names == {"canonical", *(f"raw_{sid}" for sid in CONTRACTS)}


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.stem)
def test_gx_keeps_every_expectation(path):
    # GX drops an invalid expectation with only a log line: count what it kept.
    import great_expectations as gx

    data = json.loads(path.read_text(encoding="utf-8"))
    suite = gx.ExpectationSuite(name=data["name"], expectations=data["expectations"])
    assert len(suite.expectations) == len(data["expectations"]) >= 5


@pytest.mark.parametrize("source_id", sorted(CONTRACTS))
def test_raw_suite_matches_its_contract(source_id):
    on_disk = json.loads((EXPECTATIONS_DIR / f"raw_{source_id}.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(build_raw_suite(CONTRACTS[source_id]))), (
        "contract changed: run `omh suites` and review the diff"
    )


def test_canonical_suite_matches_the_code_lists():
    on_disk = json.loads((EXPECTATIONS_DIR / "canonical.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(build_canonical_suite()))


def test_a_failing_expectation_reports_row_and_file_column():
    import pandas as pd

    suite = {
        "name": "t",
        "expectations": [
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "value", "min_value": 0}},
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "sex", "value_set": ["F", "M"]},
                "severity": "warning",
            },
        ],
    }
    frame = pd.DataFrame({"value": [3.0, -2.0], "sex": ["F", "X"]})
    locate = pd.DataFrame({"source_row": [10, 11], "source_column": ["Total", "Total"]})
    result = run_suite(suite, frame, locate)
    assert [o.success for o in result.outcomes] == [False, False]
    error, warning = result.outcomes
    assert error.severity == "error" and warning.severity == "warning"
    # In the sender's words (issue 16): the value as written, no expectation name.
    assert error.message() == "row 11, column 'Total': -2: outside the range of plausible values"
    assert result.errors == [error]
    overridden = run_suite(suite, frame, locate, {"expect_column_values_to_be_between": "warning"})
    assert overridden.errors == []
