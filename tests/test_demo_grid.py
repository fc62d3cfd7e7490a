"""The demo looks like a working observatory on any date: besides the 2024 releases, the samples
are written for the last whole year before the observatory's date, so the completeness grid of the
last 24 months shows a loaded month for every member state."""

from __future__ import annotations

import shutil

import pytest

from transforms.config import today
from transforms.contracts import codelists
from transforms.contracts.loading import bind_to_file, get_contract
from transforms.contracts.model import ContractError
from transforms.ingest.pipeline import check_file, ingest_file
from transforms.ops import observatory
from transforms.tools.samples import SAMPLES, recent_year, write_samples

pytestmark = pytest.mark.slow


def test_every_member_shows_a_loaded_month_in_the_grid_after_the_recent_samples(tmp_path):
    home = tmp_path / "home"
    year = recent_year()
    written = write_samples(tmp_path / "landing", year)
    assert len(written) == len(SAMPLES) == 23
    for sample, path in zip(SAMPLES, written, strict=True):
        assert path.name != sample.file_name  # its own release, beside the 2024 one
        result = ingest_file(path, sample.source_id, home)
        assert result.status == "loaded", result.reason
    grid = observatory.overview(home)["completeness"]
    assert grid["months"][-1] == f"{today():%Y-%m}"
    loaded = {
        c["iso3"]
        for c in grid["countries"]
        if any(cell["status"] in ("loaded", "warnings", "late", "partial") for cell in c["cells"])
    }
    assert loaded == {m["iso3"] for m in codelists.members()}


def test_a_field_read_from_the_file_name(tmp_path):
    contract = get_contract("cri_dgme_entradas_extranjeros")
    assert contract.period.year.file_name  # the year of the release is in its name
    bound = bind_to_file(contract, "DGME_entradas_extranjeros_region_nacionalidad_2031_2032-03-07.xlsx")
    assert bound.period.year.value == "2031" and bound.period.year.file_name is None
    with pytest.raises(ContractError, match=r"period\.year is read from the file name"):
        bind_to_file(contract, "DGME_entradas_extranjeros.xlsx")
    # A file so named is refused with that reason, by `omh check` as by a load.
    (sample,) = [s for s in SAMPLES if s.source_id == contract.source_id]
    (path,) = [p for p in write_samples(tmp_path / "landing") if p.name == sample.file_name]
    renamed = path.with_name("DGME_entradas_extranjeros.xlsx")
    shutil.move(path, renamed)
    result = check_file(renamed, contract.source_id)
    assert result.status == "refused" and "does not match it; rename the file" in result.reason
