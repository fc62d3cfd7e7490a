"""The benchmark's generator: deterministic, unique keys, and a file the contract accepts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

from transforms.contracts.codelists import CountryResolver
from transforms.ingest.pipeline import check_file

ROOT = Path(__file__).resolve().parent.parent
KEY = ["Año", "Mes", "Nacionalidad", "Codigo Iso 3166", "Latitud - Longitud"]


def _load_generator():
    spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> tuple[Path, dict]:
    return gen.ensure(5_000, seed=11, folder=tmp_path_factory.mktemp("bench_gen"))


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a, _ = gen.ensure(3_000, seed=5, folder=tmp_path / "a")
    b, _ = gen.ensure(3_000, seed=5, folder=tmp_path / "b")
    c, _ = gen.ensure(3_000, seed=7, folder=tmp_path / "c")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_cached_file_is_reused(tmp_path):
    path, meta = gen.ensure(1_000, seed=3, folder=tmp_path)
    assert not meta["cached"]
    mtime = path.stat().st_mtime_ns
    again, meta2 = gen.ensure(1_000, seed=3, folder=tmp_path)
    assert again == path and meta2["cached"] and path.stat().st_mtime_ns == mtime


def test_format_keys_and_totals(small_file):
    path, meta = small_file
    assert path.read_text(encoding="utf-8").splitlines()[0] == gen.HEADER
    frame = _read(path)
    assert len(frame) == meta["rows"] == 5_000
    assert not frame.duplicated(KEY).any()
    assert not frame.duplicated(["Año", "Mes", "Codigo Iso 3166", "Latitud - Longitud"]).any()
    assert set(frame["Mes"]) <= set(gen.MONTHS_ES)
    assert frame["Año"].astype(int).between(2012, 2025).all()
    counts = {c: pd.to_numeric(frame[c]) for c in ("Femenino", "Masculino", "Total")}
    indef = pd.to_numeric(frame["Indefinido"].replace("", None))
    assert indef.isna().mean() > 0.9  # mostly empty, as in the real file
    stated = counts["Femenino"] + counts["Masculino"] + indef.fillna(0)
    assert (counts["Total"] >= stated).all() and (counts["Total"] > stated).any()
    assert (counts["Total"] >= 1).all()
    # one name per code, and every code resolves to the country it names
    assert frame.groupby("Codigo Iso 3166")["Nacionalidad"].nunique().max() == 1
    resolver = CountryResolver()
    by_code = {str(code): iso3 for _, code, iso3 in gen.nationalities()}
    for code in frame["Codigo Iso 3166"].unique():
        assert resolver.resolve(code) == by_code[code]


def test_generated_file_passes_the_contract(small_file):
    path, meta = small_file
    result = check_file(path, gen.SOURCE_ID)
    assert result.status == "loaded", result.problems
    assert result.rows == meta["observations_expected"]
    assert result.reporters == ["COL"]
