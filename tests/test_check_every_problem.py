"""`omh check` for the people who send the files: every problem of a file in one run, in plain
words, with a suggestion for a misspelled country; the exit code says whether it would load."""

from __future__ import annotations

import re

from transforms.tools.cli import main

DARIEN = "pan_darien_yearly"
FIVE_MISTAKES = (
    "toShow,year,total\n"
    "Colombai,2021,5\n"  # a misspelled country
    "Brasil,2021,-14\n"  # a negative count
    "Haiti,2021,abc\n"  # not a number
    "Cuba,1890,7\n"  # a year out of range
    "Venezuela,2021,12\n"
)


def test_check_names_every_mistake_in_one_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMH_HOME", str(tmp_path / "home"))
    bad = tmp_path / "darien_2021.csv"
    bad.write_text(FIVE_MISTAKES, encoding="utf-8")
    assert main(["check", str(bad), "--source", DARIEN, "--lang", "en"]) == 1
    out = capsys.readouterr().out
    assert "would be refused" in out
    assert "row 2, column 'toShow': unknown citizenship label 'Colombai'; did you mean 'Colombia'?" in out
    assert "row 3, column 'total': -14:" in out and "-14.0" not in out
    assert "row 4, column 'total': 'abc': not a number" in out
    assert "row 5, column 'year': '1890'" in out
    assert not re.search(r"expect_|value_raw|source_row", out), out
    # The sender's own fixes apart from the labels the observatory could map.
    fixes, labels = out.split("Fix in your file:")[1].split("Labels the contract does not know")
    assert "Colombai" in labels and "Colombai" not in fixes and "-14" in fixes


def test_check_speaks_the_contracts_language_unless_told(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMH_HOME", str(tmp_path / "home"))
    bad = tmp_path / "darien_2021.csv"
    bad.write_text(FIVE_MISTAKES, encoding="utf-8")
    assert main(["check", str(bad), "--source", DARIEN]) == 1  # the Darién contract is in Spanish
    out = capsys.readouterr().out
    assert "sería rechazado: 6 problema(s)" in out and "Corrija en su archivo:" in out
    assert (
        "fila 2, columna 'toShow': etiqueta de nacionalidad desconocida 'Colombai'; ¿quiso decir 'Colombia'?"
        in out
    )
    assert "fila 3, columna 'total': -14: fuera del rango de valores plausibles" in out
    assert "row " not in out and not re.search(r"expect_|value_raw", out)
    assert main(["check", str(bad), "--source", DARIEN, "--lang", "fr"]) == 1
    assert "vouliez-vous dire 'Colombia' ?" in capsys.readouterr().out


def test_a_good_file_still_says_it_would_load(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMH_HOME", str(tmp_path / "home"))
    good = tmp_path / "darien_2021.csv"
    good.write_text("toShow,year,total\nColombia,2021,5\nBrasil,2021,14\n", encoding="utf-8")
    assert main(["check", str(good), "--source", DARIEN, "-v", "--lang", "en"]) == 0  # -v after it too
    assert "would load 2 observations" in capsys.readouterr().out


def test_the_report_is_a_page_a_person_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("OMH_HOME", str(tmp_path / "home"))
    bad = tmp_path / "darien_2021.csv"
    bad.write_text(FIVE_MISTAKES, encoding="utf-8")
    report = tmp_path / "report.html"
    assert main(["check", str(bad), "--source", DARIEN, "--report", str(report)]) == 1
    page = report.read_text(encoding="utf-8")
    assert '<html lang="es">' in page and "Rechazado: 6 problema(s)" in page
    assert page.count("<tr><td>") >= 6 and "¿quiso decir &#x27;Colombia&#x27;?" in page
    assert '[{"value"' not in page  # examples as cells, not JSON
    good = tmp_path / "darien_ok.csv"
    good.write_text("toShow,year,total\nColombia,2021,5\n", encoding="utf-8")
    assert main(["check", str(good), "--source", DARIEN, "--report", str(report), "--lang", "en"]) == 0
    page = report.read_text(encoding="utf-8")
    assert "Loads" in page and "Refused" not in page and "Problems" not in page


def _problem_lines(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.startswith("  ")]


def test_every_problem_of_the_file_is_worded_in_each_language(tmp_path, monkeypatch, capsys):
    """No problem line stays in English when the sender reads Spanish, Portuguese or French: a
    wording the pipeline adds without its phrase in data/messages.yaml fails here."""
    monkeypatch.setenv("OMH_HOME", str(tmp_path / "home"))
    bad = tmp_path / "darien_2021.csv"
    bad.write_text(FIVE_MISTAKES, encoding="utf-8")
    assert main(["check", str(bad), "--source", DARIEN, "--lang", "en"]) == 1
    english = _problem_lines(capsys.readouterr().out)
    assert len(english) >= 6
    for lang, row_word in (("es", "fila"), ("pt", "linha"), ("fr", "ligne")):
        assert main(["check", str(bad), "--source", DARIEN, "--lang", lang]) == 1
        lines = _problem_lines(capsys.readouterr().out)
        assert len(lines) == len(english), lang
        untranslated = [line for line in lines if line in english or re.search(r"\brow \d", line)]
        assert untranslated == [], (lang, untranslated)
        assert sum(line.startswith(f"{row_word} ") for line in lines) >= 5, (lang, lines)
    assert main(["check", str(bad), "--source", DARIEN, "--lang", "pt"]) == 1
    out = capsys.readouterr().out
    assert "seria recusado: 6 problema(s)" in out and "Corrija no seu arquivo:" in out


def test_a_file_with_hundreds_of_problems_lists_fifty_and_counts_the_rest(tmp_path, monkeypatch, capsys):
    from transforms.tools.cli import SHOWN_PROBLEMS

    monkeypatch.setenv("OMH_HOME", str(tmp_path / "home"))
    bad = tmp_path / "darien_2021.csv"
    rows = "".join(f"Colombia,2021,x{i}\n" for i in range(300))  # 300 cells that are not numbers
    bad.write_text("toShow,year,total\n" + rows, encoding="utf-8")
    assert main(["check", str(bad), "--source", DARIEN, "--lang", "en"]) == 1
    out = capsys.readouterr().out
    listed = [line for line in _problem_lines(out) if line.startswith("row ")]
    assert len(listed) == SHOWN_PROBLEMS == 50
    more = re.search(r"… and (\d+) more \(the report lists them\)", out)
    assert more, out[-500:]
    total = int(re.search(r"would be refused: (\d+) problem", out).group(1))
    assert total >= 300 and int(more.group(1)) == total - SHOWN_PROBLEMS
