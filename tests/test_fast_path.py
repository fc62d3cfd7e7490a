"""The fast paths give the same figures as the plain paths.

Large delimited files are staged by Arrow into a DuckDB table of trimmed cells instead of read
by the csv module, and GX evaluates expectations on projections (distinct values, duplicated
keys) instead of whole tables: both must change nothing but the speed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from transforms.contracts.loading import load_contracts
from transforms.stages.extract import extract
from transforms.stages.harmonize import harmonize
from transforms.stages.validate import build_canonical_suite, build_raw_suite, run_suite, run_suite_sql

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


# ---------------------------------------------------------------------------- ragged rows

DARIEN = RAW / CSV_FILES["pan_darien_yearly"]


def _darien_variant(kind: str) -> bytes:
    text = DARIEN.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    if kind == "short row":  # line 4 lost its figure
        return text.replace("Brasil,2021,8370", "Brasil,2021", 1).encode()
    if kind == "two short rows":
        return (
            text.replace("Brasil,2021,8370", "Brasil,2021", 1)
            .replace("Brasil,2022,3047", "Brasil,2022", 1)
            .encode()
        )
    if kind == "empty last field":  # "Brasil,2021," has its 3 fields (the figure empty): not short
        return text.replace("Brasil,2021,8370", "Brasil,2021,", 1).encode()
    if kind == "cut mid-row":  # the transfer stopped inside the last row
        return "".join(lines[:-1]).encode() + lines[-1].split(",")[0].encode()
    if kind == "one field":
        return text.replace("Brasil,2020,262", "Brasil", 1).encode()
    if kind == "empty row":  # an entirely empty row ends the data (footnotes follow), on both paths
        return ("".join(lines[:3]) + ",,\n" + "".join(lines[3:])).encode()
    if kind == "empty row before the data":
        return (lines[0] + ",,\n" + "".join(lines[1:])).encode()
    if kind == "long row":
        return text.replace("Brasil,2021,8370", "Brasil,2021,8,370", 1).encode()
    if kind == "blank line then footnotes":  # a true empty line ends the data (CRLF here)
        return ("".join(lines[:10]) + "\r\nFuente: SNM, 2022\r\nNota: cifras preliminares\r\n").encode()
    if kind == "padded cells":  # spaces (one a no-break space) around labels and figures: trimmed alike
        return text.replace("Brasil,2021,8370", "\u00a0 Brasil , 2021 ,8370  ", 1).encode()
    if kind == "row of spaces":  # cells of spaces only: not an empty row before trimming
        return ("".join(lines[:3]) + " , ,  \n" + "".join(lines[3:])).encode()
    if kind == "NUL byte":
        return text.replace("Brasil,2021,8370", "Brasil,2021,83\x0070", 1).encode()
    # A trailing delimiter (an empty field beyond the header's), which the plain reader allows.
    ended = "".join(lines[:1] + [x.rstrip("\r\n") + ",\n" if x.strip() else x for x in lines[1:]])
    if kind == "trailing delimiter on every row":
        return ended.encode()
    if kind == "trailing delimiter, header too":
        return (lines[0].rstrip("\r\n") + ",\n" + ended.split("\n", 1)[1]).encode()
    if kind == "trailing delimiter, one row filled":  # a fourth field with a figure: ragged
        return ended.replace("Brasil,2021,8370,", "Brasil,2021,8370,5", 1).encode()
    if kind == "trailing delimiter, two filled rows after an empty row":  # the data ended before them
        tail = "".join(x.rstrip("\r\n") + ",9\n" for x in lines[3:5])
        return (ended + ",,,\n" + tail).encode()
    if kind == "trailing delimiter, one row without":  # the plain reader reads both kinds of row
        return ended.replace("Brasil,2021,8370,", "Brasil,2021,8370", 1).encode()
    if kind == "trailing delimiter on one row only":
        return text.replace("Brasil,2021,8370", "Brasil,2021,8370,", 1).encode()
    if kind == "two trailing delimiters on one row":
        return ended.replace("Brasil,2021,8370,", "Brasil,2021,8370, ,", 1).encode()
    if kind == "footnotes after a row of delimiters":  # the data ended at that row
        return (
            "".join(lines[:10]) + ",,\nFuente: SNM 2022\nNota: cifras, preliminares, de 2022, y 2023\n"
        ).encode()
    if kind == "NUL byte in the footnotes":
        return ("".join(lines[:10]) + "\nFuente: SNM\x00\n").encode()
    raise AssertionError(kind)


RAGGED = {
    "short row": (4, 2, 1),
    "two short rows": (4, 2, 2),
    "empty last field": "same",
    "cut mid-row": (29, 1, 1),
    "one field": (3, 1, 1),
    "empty row": 2,
    "empty row before the data": 28,
    "long row": (4, 4, 1),
    "blank line then footnotes": 9,
    "padded cells": 28,
    "row of spaces": "same",
    "NUL byte": "NUL",
    "NUL byte in the footnotes": "NUL",
    "footnotes after a row of delimiters": 9,
    "trailing delimiter on every row": 28,
    "trailing delimiter, header too": "same",
    "trailing delimiter, one row filled": (4, 4, 1),
    "trailing delimiter, two filled rows after an empty row": 28,
    "trailing delimiter, one row without": 28,
    "trailing delimiter on one row only": 28,
    "two trailing delimiters on one row": 28,
}
# Files the fast path hands to the plain reader (rows it cannot number without it).
PLAIN_READS = {
    "trailing delimiter, one row without",
    "trailing delimiter on one row only",
    "two trailing delimiters on one row",
}


def _verdict(path: Path, monkeypatch, fast: bool, staged: bool | None = None):
    """Refused (with the message) or loaded (with the observations) through one CSV path;
    ``staged``: whether the file must be staged by Arrow (default: when ``fast``)."""
    from transforms.readers import ReadError

    monkeypatch.setenv("OMH_FAST_CSV_BYTES", "1" if fast else str(1 << 40))
    contract = load_contracts()["pan_darien_yearly"]
    try:
        ex = extract(path, contract)
    except ReadError as exc:
        return "refused", str(exc)
    try:
        assert (ex.staged is not None) == (fast if staged is None else staged)
        hz = harmonize(contract, ex)
        frame = hz.frame.sort_values(["source_row", "source_column"]).reset_index(drop=True)
        return "loaded", frame[["source_row", "citizenship_iso3", "period_start", "value"]].to_dict("records")
    finally:
        ex.cleanup()


@pytest.mark.parametrize("kind", sorted(RAGGED))
@pytest.mark.parametrize("block", [5, 1 << 20])
def test_both_csv_paths_give_the_same_verdict_on_ragged_rows(kind, block, tmp_path, monkeypatch):
    """The plain reader and the Arrow fast path (OMH_FAST_CSV_BYTES=1) agree: a truncated or
    long row is refused with the same message (file, physical line, fields expected and found);
    an entirely empty row is skipped; an empty line ends the data; a NUL byte anywhere is
    refused. The fast path scans the file in blocks: 5-byte blocks put every pattern across
    a block boundary somewhere."""
    from transforms.readers import staging

    monkeypatch.setattr(staging, "SCAN_BYTES", block)
    path = tmp_path / "darien_ragged.csv"
    path.write_bytes(_darien_variant(kind))
    plain = _verdict(path, monkeypatch, fast=False)
    fast = _verdict(path, monkeypatch, fast=True, staged=kind not in PLAIN_READS)
    expected = RAGGED[kind]
    assert plain == fast
    if expected == "NUL":
        assert plain[0] == "refused" and ": NUL byte; this is not a text file" in plain[1]
        return
    if expected == "same":  # whatever the later checks say, both paths say it
        return
    if isinstance(expected, int):  # loads that many observations
        assert plain[0] == "loaded" and len(plain[1]) == expected
        return
    line, found, count = expected
    assert plain[0] == "refused"
    assert plain[1].startswith(f"darien_ragged.csv: line {line}: {found} fields where the header has 3; ")
    assert plain[1].endswith(f"(rows like this: {count})")


def test_a_truncated_row_is_refused_through_the_pipeline(tmp_path, monkeypatch):
    from transforms.ingest.pipeline import check_file

    path = tmp_path / "darien_ragged.csv"
    path.write_bytes(_darien_variant("short row"))
    for threshold in ("1", str(1 << 40)):
        monkeypatch.setenv("OMH_FAST_CSV_BYTES", threshold)
        result = check_file(path, "pan_darien_yearly")
        assert result.status == "unreadable"
        assert "line 4: 2 fields where the header has 3; the row is cut short" in result.reason


def test_the_fast_path_trims_cells_as_duckdb_trims_them(tmp_path, monkeypatch):
    """The Arrow fast path trims cells as they stream, where the plain path's views use DuckDB's
    trim: the characters removed are the same (every code point is tried), and labels padded
    with each of them, or with a tab (which neither removes), give both paths the same verdict."""
    import duckdb

    from transforms.readers.staging import SPACE_SEPARATORS

    removed = duckdb.sql(
        "SELECT cp FROM range(1, 1114112) t(cp) "
        "WHERE (cp < 55296 OR cp > 57343) AND trim(chr(CAST(cp AS INTEGER)) || 'a' || chr(CAST(cp AS INTEGER))) = 'a'"
    ).fetchall()
    assert {chr(cp) for (cp,) in removed} == set(SPACE_SEPARATORS)
    # One file: data row i padded with separator i (label at both ends, value before), and the
    # last rows with several at once; then one with tabs.
    lines = DARIEN.read_text(encoding="utf-8").splitlines()
    pads = [*SPACE_SEPARATORS, "\u00a0 \u3000", " \u2009 "]
    assert len(lines) > len(pads)
    padded = [lines[0]]
    for i, line in enumerate(lines[1:]):
        label, year, value = line.split(",")
        pad = pads[i % len(pads)]
        padded.append(f"{pad}{label}{pad},{year},{pad}{value}")
    tabbed = [lines[0], *(f"\t{x}" for x in lines[1:3]), *lines[3:]]
    for rows, loads in ((padded, True), (tabbed, False)):
        path = tmp_path / "darien_padded.csv"
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        plain = _verdict(path, monkeypatch, fast=False)
        fast = _verdict(path, monkeypatch, fast=True)
        assert plain == fast
        if loads:
            assert plain[0] == "loaded" and len(plain[1]) == len(lines) - 1, plain
