"""SDMX output (issue 19, part 2): ``omh sdmx`` read back by pysdmx.

The structure parses (validated against the SDMX-ML 3.0 schemas), the data validates against it,
and each file's observation count and OBS_VALUE sum equal the pub_* view it came from, on both
engines. The facts are small and written here: small counts that the disclosure control
suppresses, a provisional figure, a child flow type (IRR_ENC.APP, whose dot SDMX does not allow),
a quarter and a fiscal year.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from lxml import etree
from test_views import JAN, load, obs

from transforms.contracts import codelists
from transforms.contracts.loading import load_contracts
from transforms.publish.sdmx import DATAFLOWS, compare, read_back, sdmx_code, write_sdmx_files

FACTS = [
    obs("tst_sdmx_pan", "PAN", "VEN", JAN, 20_000),
    obs("tst_sdmx_pan", "PAN", "HTI", JAN, 3),  # small: suppressed, and a partner with it
    obs("tst_sdmx_pan", "PAN", "ECU", JAN, 900),
    obs("tst_sdmx_pan", "PAN", "VEN", dt.date(2024, 2, 1), 18_000) | {"obs_status": "P"},
    obs("tst_sdmx_pan", "PAN", "COL", JAN, 3, flow="RET_REM"),  # a small reporter total
    obs("tst_sdmx_cri", "CRI", "VEN", JAN, 19_000),
    obs("tst_sdmx_cri", "CRI", "CUB", JAN, 2),
    obs("tst_sdmx_mex", "MEX", "HND", JAN, 9_000, flow="IRR_ENC.APP", unit="events"),
    obs("tst_sdmx_mex", "MEX", "GTM", JAN, 4, flow="IRR_ENC.APP", unit="events"),
    obs("tst_sdmx_bra", "BRA", "VEN", dt.date(2024, 1, 1), 7_000, flow="ASY_APP", ptype="Q")
    | {"period_end": dt.date(2024, 3, 31)},
    obs("tst_sdmx_usa", "USA", "MEX", dt.date(2023, 10, 1), 120_000, flow="IRR_ENC", unit="events", ptype="Y")
    | {"period_end": dt.date(2024, 9, 30)},
]
SDMX = "http://www.sdmx.org/resources/sdmxml/schemas/v3_0/"


@pytest.fixture()
def loaded(wh):
    wh.ensure_schema(load_contracts())
    frame = pd.DataFrame(FACTS)
    for source_id, part in frame.groupby("source_id"):
        load(wh, part.reset_index(drop=True), f"{source_id}.csv")
    return wh


def test_the_data_read_back_validates_and_equals_the_pub_views(loaded, tmp_path):
    written = write_sdmx_files(tmp_path, wh=loaded)
    read = read_back(tmp_path)
    assert compare(written, read) == []
    assert read["structure"]["dsd"] == ["DataStructure=OMH:DSD_OMH_MIG(1.0)"]
    assert sorted(read["structure"]["dataflows"]) == sorted(DATAFLOWS)
    for fid, flow in DATAFLOWS.items():
        count, total, hidden = loaded.fetchall(
            f"SELECT count(*), sum(value), count(*) FILTER (WHERE suppressed) FROM {flow.view}"
        )[0]
        assert hidden > 0, flow.view  # the case has suppressed cells in both views
        for ext in ("csv", "xml"):
            r = read[f"{fid}.{ext}"]
            assert r["problems"] == [], (fid, ext)
            assert (r["observations"], r["sum"]) == (count, pytest.approx(float(total))), (fid, ext)
        assert written[fid]["suppressed"] == hidden


def test_suppressed_cells_are_missing_with_conf_status_c_and_flags_come_from_the_facts(loaded, tmp_path):
    from pysdmx.io import get_datasets

    write_sdmx_files(tmp_path, wh=loaded)
    for ext in ("csv", "xml"):
        (ds,) = get_datasets(tmp_path / f"DF_CORRIDOR.{ext}", tmp_path / "structure.xml")
        frame = ds.data.astype(str)
        frame["OBS_VALUE"] = pd.to_numeric(frame["OBS_VALUE"], errors="coerce")
        hti = frame[(frame.REF_AREA == "PAN") & (frame.CITIZENSHIP == "HTI")].iloc[0]
        assert pd.isna(hti.OBS_VALUE) and hti.CONF_STATUS == "C"
        ven = frame[(frame.REF_AREA == "PAN") & (frame.CITIZENSHIP == "VEN")].set_index("TIME_PERIOD")
        assert ven.loc["2024-01", "OBS_VALUE"] == 20_000 and ven.loc["2024-01", "CONF_STATUS"] == "F"
        assert ven.loc["2024-01", "OBS_STATUS"] == "A" and ven.loc["2024-02", "OBS_STATUS"] == "P"
        assert set(frame[frame.REF_AREA == "MEX"].FLOW_TYPE) == {"IRR_ENC_APP"}
        periods = dict(zip(frame.REF_AREA + frame.FREQ, frame.TIME_PERIOD, strict=True))
        assert periods["BRAQ"] == "2024-Q1" and periods["USAA"] == "2023-10-01/P1Y"
        assert set(frame.SEX) == set(frame.AGE) == set(frame.COUNTERPART_AREA) == {"_T"}


def test_the_structure_holds_the_code_lists_with_names_in_four_languages(loaded, tmp_path):
    from pysdmx.io import read_sdmx

    write_sdmx_files(tmp_path, wh=loaded, flows=["DF_FLOW_BY_PERIOD"])
    msg = read_sdmx(tmp_path / "structure.xml", validate=True)
    (dsd,) = msg.get_data_structure_definitions()
    assert [c.id for c in dsd.components.dimensions] == [
        "REF_AREA",
        "FLOW_TYPE",
        "CITIZENSHIP",
        "COUNTERPART_AREA",
        "SEX",
        "AGE",
        "UNIT_MEASURE",
        "FREQ",
        "TIME_PERIOD",
    ]
    assert [c.id for c in dsd.components.attributes] == ["OBS_STATUS", "CONF_STATUS"]
    assert [c.id for c in dsd.components.measures] == ["OBS_VALUE"]
    lists = {cl.id: cl for cl in msg.get_codelists()}
    flows = [r["code"] for r in codelists.load("flow_types")]
    assert {c.id for c in lists["CL_FLOW_TYPE"]} == {sdmx_code(f) for f in flows}
    assert {c.id for c in lists["CL_OBS_STATUS"]} == codelists.codes("obs_status")
    assert {c.id for c in lists["CL_AREA"]} >= codelists.codes("countries") | {"_T"}
    assert [d.id for d in msg.get_dataflows()] == ["DF_FLOW_BY_PERIOD"]
    # Every code's name in es/en/pt/fr, from data/codelists/.
    root = etree.parse(str(tmp_path / "structure.xml"))
    lang = "{http://www.w3.org/XML/1998/namespace}lang"
    ven = root.find(f".//{{{SDMX}structure}}Codelist[@id='CL_AREA']/{{{SDMX}structure}}Code[@id='VEN']")
    names = {n.get(lang): n.text for n in ven.findall(f"{{{SDMX}common}}Name")}
    row = next(r for r in codelists.load("countries") if r["iso3"] == "VEN")
    assert names == {x: row[f"name_{x}"] for x in ("es", "en", "pt", "fr")}
    irr = root.find(f".//{{{SDMX}structure}}Code[@id='IRR_TRN']")
    assert {n.get(lang) for n in irr.findall(f"{{{SDMX}common}}Name")} == {"es", "en", "pt", "fr"}


def test_a_file_that_does_not_match_the_structure_or_the_view_is_caught(loaded, tmp_path):
    written = write_sdmx_files(tmp_path, wh=loaded, flows=["DF_FLOW_BY_PERIOD"])
    path = tmp_path / "DF_FLOW_BY_PERIOD.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    cells = lines[1].split(",")
    assert lines[0].split(",")[3] == "REF_AREA"
    lines[1] = ",".join([*cells[:3], "XXX", *cells[4:]])  # a reporter not in CL_AREA
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")  # and an observation lost
    problems = compare(written, read_back(tmp_path, ["DF_FLOW_BY_PERIOD"]))
    assert any("DF_FLOW_BY_PERIOD.csv: REF_AREA: codes not in CL_AREA: ['XXX']" in p for p in problems)
    assert any(
        "DF_FLOW_BY_PERIOD.csv:" in p and "observations, pub_flow_by_period has" in p for p in problems
    )
    assert not any(p.startswith("DF_FLOW_BY_PERIOD.xml") for p in problems)
