"""The engineer's loop, without Airflow: a refused file is not tried again by every later run; a
corrected file, a changed contract, an explicit rerun or a dismissal each settle it.

``delivery.await_delivery`` is what each source DAG's ``discover`` task runs, so these are the
decisions the DAG runs take (tests/test_airflow_e2e.py drives the DAGs themselves).
"""

from __future__ import annotations

import re
import shutil

import pytest

from transforms.config import CONTRACTS_DIR, DATA_DIR, settings
from transforms.contracts import loading as contracts_module
from transforms.ingest.pipeline import ingest_file
from transforms.ops import delivery
from transforms.tools.cli import main

DARIEN = "pan_darien_yearly"
REAL = DATA_DIR / "realdata" / "raw" / "panama_darien_2019-2022_by_nationality_derived.csv"


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("OMH_HOME", str(home))
    monkeypatch.delenv("OMH_WAREHOUSE_URL", raising=False)
    settings(home).ensure()
    return home


def _land(home, name: str, text: str):
    folder = settings(home).landing / "PAN"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _new(home, rerun=None) -> tuple[list[str], str]:
    decision = delivery.await_delivery(DARIEN, None, home=home, rerun=rerun)
    return [f["file"] for f in decision.new], decision.message


def _run(home, rerun=None) -> dict[str, str]:
    """One DAG run: discover, then ingest each new file; the statuses by file."""
    new, _ = _new(home, rerun)
    landing = settings(home).landing / "PAN"
    return {name: ingest_file(landing / name, DARIEN, home).status for name in new}


BAD = "toShow,year,total\nAtlantis,2023,5\nColombia,2023,7\n"


def test_a_refused_file_is_not_tried_again_until_something_changes(home):
    _land(home, "darien_2023.csv", BAD)
    assert _run(home) == {"darien_2023.csv": "refused"}
    new, message = _new(home)
    assert new == [] and "darien_2023.csv (refused under the same contract" in message

    # The corrected file lands: only it is tried, it loads, and the run is green.
    _land(home, "darien_2023_corrected.csv", BAD.replace("Atlantis", "Brasil"))
    assert _run(home) == {"darien_2023_corrected.csv": "loaded"}
    assert _run(home) == {}  # the next run: nothing to do, nothing red


def test_a_changed_contract_tries_the_refused_file_again(home, tmp_path, monkeypatch):
    _land(home, "darien_2023.csv", BAD)
    assert _run(home) == {"darien_2023.csv": "refused"}
    edited = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, edited)
    path = edited / f"{DARIEN}.yaml"
    text = path.read_text(encoding="utf-8")
    # The fix an engineer makes: the unknown label mapped (to "unknown"), in the contract.
    text = re.sub(r'map: \{"Otros Paises": _O\}', 'map: {"Otros Paises": _O, "Atlantis": _U}', text)
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(contracts_module, "CONTRACTS_DIR", edited)
    assert _new(home)[0] == ["darien_2023.csv"]
    assert _run(home) == {"darien_2023.csv": "loaded"}


def test_a_rerun_names_a_refused_file_and_a_dismissal_sets_it_aside(home, capsys):
    bad = _land(home, "darien_2023.csv", BAD)
    assert _run(home) == {"darien_2023.csv": "refused"}
    assert _new(home, rerun=["darien_2023.csv"])[0] == ["darien_2023.csv"]  # the DAG's rerun_files

    assert main(["dismiss", str(bad), "--source", DARIEN, "--reason", "sent by mistake", "--by", "ana"]) == 0
    assert "dismissed by ana" in capsys.readouterr().out
    new, message = _new(home)
    assert new == [] and "dismissed by ana" in message and "sent by mistake" in message
    from transforms.storage.warehouse import open_for_reading

    with open_for_reading(settings(home)) as wh:
        who, why, when = wh.fetchall(
            "SELECT dismissed_by, dismiss_reason, dismissed_at FROM file_manifest WHERE file_name = ?",
            ["darien_2023.csv"],
        )[0]
    assert (who, why) == ("ana", "sent by mistake") and when is not None


def test_only_a_refused_file_can_be_dismissed(home, capsys):
    good = settings(home).landing / "PAN" / REAL.name
    good.parent.mkdir(parents=True)
    shutil.copy2(REAL, good)
    assert ingest_file(good, DARIEN, home).status == "loaded"
    assert main(["dismiss", str(good), "--source", DARIEN, "--reason", "x"]) != 0
    err = capsys.readouterr().err
    assert "not refused" in err and "Traceback" not in err
