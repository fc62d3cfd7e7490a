"""The contract schema: one source (the models of transforms/contracts/model.py), every key documented in
docs/contracts.md, every contract checked against it with the line and the closest valid key, and
every key the schema accepts read by the pipeline."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import transforms.contracts.loading as contracts_loading
import transforms.contracts.model as contracts_module
from transforms.contracts.checks import CHECKS
from transforms.contracts.docs import DOC_PATH, keys, render, undocumented
from transforms.contracts.loading import contract_problems, load_contract
from transforms.contracts.model import ContractError, ReaderSpec
from transforms.stages.extract import extract
from transforms.tools.cli import main

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = sorted((ROOT / "contracts").glob("*.yaml"))
COLOMBIA = ROOT / "data" / "realdata" / "raw" / "colombia_entradas_de_extranjeros_a_colombia_20250803.csv"


@pytest.fixture()
def contracts_dir(tmp_path, monkeypatch) -> Path:
    """A private copy of the contracts, so a test can break one as an engineer would."""
    folder = tmp_path / "contracts"
    shutil.copytree(ROOT / "contracts", folder)
    monkeypatch.setattr(contracts_loading, "CONTRACTS_DIR", folder)
    return folder


def _misspell(path: Path, old: str, new: str) -> int:
    """Replace the first line holding ``old`` by ``new``; the 1-based line number."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if old in line)
    lines[number] = lines[number].replace(old, new, 1)
    path.write_text("".join(lines), encoding="utf-8")
    return number + 1


def test_a_misspelled_key_fails_omh_check_with_exit_2_naming_key_line_and_closest(contracts_dir, capsys):
    path = contracts_dir / "col_entradas_extranjeros.yaml"
    line = _misspell(path, "  delimiter:", "  delimter:")
    code = main(["check", str(COLOMBIA), "--source", "col_entradas_extranjeros"])
    err = capsys.readouterr().err
    assert code == 2
    assert "col_entradas_extranjeros.yaml" in err
    assert f"line {line}: reader.delimter: unknown key 'delimter'; did you mean 'delimiter'?" in err


def test_a_misplaced_key_names_the_section_where_it_was_found(tmp_path):
    data = yaml.safe_load((ROOT / "contracts" / "col_entradas_extranjeros.yaml").read_text(encoding="utf-8"))
    data["stop_at_blank_row"] = False  # belongs under reader
    path = tmp_path / "misplaced.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    _, problems = contract_problems(path)
    assert len(problems) == 1
    line = 1 + next(
        i for i, t in enumerate(path.read_text(encoding="utf-8").splitlines()) if t.startswith("stop_at")
    )
    assert problems[0].startswith(f"misplaced.yaml: line {line}: stop_at_blank_row: unknown key")
    with pytest.raises(ContractError, match="stop_at_blank_row"):
        load_contract(path)


def test_every_problem_of_a_contract_is_listed_with_its_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        """source_id: bad_one
title: t
agency: a
reporter: ARG
landing: {folder: X, patterns: ["*.csv"]}
reader:
  format: csv
  stop_at_blank_rows: false
ids: {year: Year}
values:
  columns:
    - header: Count
      sexx: F
rows:
  skip:
    - {column: year, equal: TOTAL}
period: {calendar: yearly, year: {column: year}}
fields: {flow_type: ENT_REG, unit: events, citizenship: {colum: x}}
""",
        encoding="utf-8",
    )
    _, problems = contract_problems(path)

    def valid(model) -> str:  # every key the schema accepts there, in the model's order (layouts add keys)
        return ", ".join(model.model_fields)

    assert problems == [
        "bad.yaml: line 8: reader.stop_at_blank_rows: unknown key 'stop_at_blank_rows'; did you mean "
        f"'stop_at_blank_row'? (valid here: {valid(ReaderSpec)})",
        "bad.yaml: line 13: values.columns.0.sexx: unknown key 'sexx'; did you mean 'sex'? (valid here: "
        "header, role, fields, aliases, reporter, reporter_role, flow_type, citizenship, counterpart, sex, "
        "age_band, unit, obs_status)",
        "bad.yaml: line 16: rows.skip.0.equal: unknown key 'equal'; did you mean 'equals'? "
        "(valid here: column, equals, matches, in, empty)",
        "bad.yaml: line 18: fields.citizenship.colum: unknown key 'colum'; did you mean 'column'? "
        "(valid here: value, column, file_name, map, pattern, codelist, default)",
    ]
    assert "stop_at_blank_row" in valid(ReaderSpec)


def test_an_unknown_canonical_field_and_an_unknown_check_name_the_closest(tmp_path):
    data = yaml.safe_load((ROOT / "contracts" / "col_entradas_extranjeros.yaml").read_text(encoding="utf-8"))
    data["fields"]["citizenshp"] = data["fields"].pop("citizenship")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (problem,) = contract_problems(path)[1]
    assert re.search(
        r"line \d+: fields: unknown canonical field 'citizenshp'; did you mean 'citizenship'", problem
    )
    data["fields"]["citizenship"] = data["fields"].pop("citizenshp")
    data["severity"] = {"jumps": {"level": "warning", "reason": "seasonal series"}}
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (problem,) = contract_problems(path)[1]
    assert "severity: unknown check 'jumps'; did you mean 'jump'?" in problem


def test_a_severity_override_needs_a_reason_and_a_locked_check_cannot_be_lowered(tmp_path, capsys):
    data = yaml.safe_load((ROOT / "contracts" / "col_entradas_extranjeros.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "c.yaml"
    data["severity"] = {"guard.own_citizens": {"level": "warning"}}
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert main(["contract", "lint", str(path)]) == 2
    assert "severity.guard.own_citizens.reason: Field required" in capsys.readouterr().err
    data["severity"] = {"guard.own_citizens": "warning"}  # the old shorthand carries no reason
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert main(["contract", "lint", str(path)]) == 2
    data["severity"] = {"guard.person_level": {"level": "warning", "reason": "names of consulates"}}
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert main(["contract", "lint", str(path)]) == 2
    assert "check 'guard.person_level' cannot be lowered" in capsys.readouterr().err
    data["severity"] = {
        "guard.own_citizens": {"level": "warning", "reason": "returning citizens are counted"}
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert main(["contract", "lint", str(path)]) == 0


def test_every_contract_lints_clean():
    result = subprocess.run(
        [sys.executable, "-m", "transforms.tools.cli", "contract", "lint", *map(str, CONTRACTS)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok") == len(CONTRACTS) >= 28


def test_the_documentation_is_up_to_date_and_documents_every_key():
    assert undocumented() == []
    doc = (ROOT / DOC_PATH).read_text(encoding="utf-8")
    assert doc == render(), "run .venv/bin/python scripts/contract_docs.py"
    for model, names in keys().items():
        section = doc.split(f"## {model}\n", 1)[1].split("\n## ", 1)[0]
        for name in names:
            assert f"| `{name}` |" in section, (model, name)
    for name in CHECKS:
        assert f"| `{name}` |" in doc
    assert "stop_at_blank_row" in doc and "remainder_max_share" in doc


def test_the_readme_links_the_contract_reference():
    assert "docs/contracts.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_key_the_schema_accepts_is_read_by_the_pipeline():
    """A key accepted and ignored is a contract that lies: each key is read as an attribute (or
    by name) somewhere in the pipeline's code, not only declared."""
    code = "\n".join(
        p.read_text(encoding="utf-8")
        for folder in ("transforms", "dags", "plugins")
        for p in (ROOT / folder).rglob("*.py")
        if p.name != "contract_docs.py"
    )
    unread = [
        f"{model}.{name}"
        for model, names in keys().items()
        for name in names
        if not re.search(rf"\.{name}\b|\"{name}\"", code.replace(f"{name}: ", ""))
    ]
    assert unread == []


# ---------------------------------------------------------------------------- keys that change behaviour

BLANK = "year,country,count\n2024,Total,5\n\n2024,Venezuela,3\n2024,Haiti,2\n"


def _reader_contract(tmp_path: Path, **reader):
    data = {
        "source_id": "test_blank",
        "title": "t",
        "agency": "a",
        "reporter": "PAN",
        "landing": {"folder": "TST", "patterns": ["*.csv"]},
        "reader": {"format": "csv", **reader},
        "ids": {"year": "year", "country": "country"},
        "values": {"columns": [{"header": "count"}]},
        "rows": {"skip": [{"column": "country", "equals": "Total"}]},
        "period": {"calendar": "yearly", "year": {"column": "year"}},
        "fields": {"flow_type": "IRR_TRN", "unit": "persons", "citizenship": {"column": "country"}},
    }
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_contract(path)


def test_stop_at_blank_row_is_honoured_and_the_no_data_message_names_it(tmp_path):
    from transforms.stages.harmonize import harmonize

    file = tmp_path / "f.csv"
    file.write_text(BLANK, encoding="utf-8")
    stopping = _reader_contract(tmp_path)
    ex = extract(file, stopping)
    assert ex.rows_read == 1
    hz = harmonize(stopping, ex)
    (problem,) = [p for p in hz.errors if p.check == "not_empty"]
    assert problem.message == (
        "the file holds no data rows: 1 row(s) read after the header, 1 of them skipped by the contract's "
        "rows.skip; reading stops at the first blank row after the data (row 3), and rows after it are not "
        "read: set reader.stop_at_blank_row: false in the contract to read on"
    )
    from transforms.messages import translate

    assert "ponga reader.stop_at_blank_row: false en el contrato" in translate(problem.message, "es")
    reading_on = _reader_contract(tmp_path, stop_at_blank_row=False)
    hz = harmonize(reading_on, extract(file, reading_on))
    assert not hz.errors and hz.frame["value"].sum() == 5


def test_the_format_note_is_reported_with_the_version_that_matched(tmp_path):
    contract = load_contract(ROOT / "contracts" / "col_entradas_extranjeros.yaml")
    data = contract.model_dump(mode="json", by_alias=True)
    renamed = tmp_path / "renamed.csv"
    renamed.write_bytes(COLOMBIA.read_bytes().replace(b"Codigo Iso 3166", b"Codigo Pais M49", 1))
    data["ids"]["iso_code"] = {"header": "Codigo Iso 3166"}
    data["versions"] = [
        {"version": 2, "note": "2026 exports", "ids": {**data["ids"], "iso_code": "Codigo Pais M49"}}
    ]
    ex = extract(renamed, contracts_module.Contract.model_validate(data))
    assert ex.drift[0] == "matched format version 2 of the contract (2026 exports)"
