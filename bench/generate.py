"""Deterministic generator of a large file in Migración Colombia's record-level format.

The layout is the one of ``contracts/col_entradas_extranjeros.yaml`` (see the real file in
``data/realdata/raw/``)::

    Año,Mes,Nacionalidad,Codigo Iso 3166,Femenino,Masculino,Indefinido,Total,Latitud - Longitud
    2012,Enero,Venezuela,862,7,24,,31,"(4.815061,-75.736532)"

Each (Año, Mes, Nacionalidad/Codigo, Latitud - Longitud) is unique: the rows are a sample without
replacement of years 2012..2025 x 12 months x the ISO countries of ``data/codelists/countries.csv``
(Spanish name and M49 code, Colombia left out: these are foreigners) x enough entry points, in
the real file's order. Counts are heavy-tailed (Zipf weights of nationality and entry point,
seasonality, log-normal noise); ``Indefinido`` is empty except on a few rows; ``Total`` is
Femenino + Masculino (+ Indefinido), plus a few persons of unstated sex on ~1% of the rows.

Everything is vectorized (numpy for the draws, Arrow compute for the text), so 10 M rows
(~490 MB) take seconds. Files are cached under ``bench/data/`` with a sidecar ``.json``; a file is
reused when its sidecar names the same rows, seed and generator version and the size matches.

    .venv/bin/python bench/generate.py --rows 2000000 --seed 6
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
COUNTRIES_CSV = REPO_ROOT / "data" / "codelists" / "countries.csv"

GENERATOR_VERSION = 1  # bump when the output of a (rows, seed) changes
DEFAULT_SEED = 6
SOURCE_ID = "col_entradas_extranjeros"
YEARS = tuple(range(2012, 2026))
MONTHS_ES = (
    "Enero", "Febrero", "Marzo", "Abril", "Mayo", "Junio",
    "Julio", "Agosto", "Septiembre", "Octubre", "Noviembre", "Diciembre",
)  # fmt: skip
HEADER = "Año,Mes,Nacionalidad,Codigo Iso 3166,Femenino,Masculino,Indefinido,Total,Latitud - Longitud"
REPORTER = "COL"
# Nationalities that dominate entries into Colombia, most frequent first; the others follow in
# code-list order with smaller weights.
TOP_NATIONALITIES = (
    "VEN", "USA", "MEX", "ECU", "PER", "ESP", "BRA", "ARG", "CHL", "PAN", "FRA", "DEU", "CAN", "GBR",
    "ITA", "DOM", "CRI", "NLD", "GTM", "BOL", "CHN", "CUB", "SLV", "HND", "URY", "CHE", "KOR", "ISR",
)  # fmt: skip
# Colombia's bounding box, for entry points (airports, land and river crossings, sea ports).
LAT_RANGE = (-4.2, 12.5)
LON_RANGE = (-79.0, -66.8)
BATCH_ROWS = 1_000_000  # rows turned into text at a time (bounds the generator's memory)


def nationalities() -> list[tuple[str, int, str]]:
    """(Spanish name, M49 code, ISO3) of every ISO country but Colombia, top nationalities first."""
    with COUNTRIES_CSV.open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["kind"] == "iso" and r["m49"] and r["iso3"] != REPORTER]
    by_iso = {r["iso3"]: r for r in rows}
    ordered = [by_iso[c] for c in TOP_NATIONALITIES if c in by_iso]
    ordered += [r for r in rows if r["iso3"] not in TOP_NATIONALITIES]
    return [(r["name_es"], int(r["m49"]), r["iso3"]) for r in ordered]


def entry_points_needed(rows: int, n_nationalities: int) -> int:
    """Entry points so that the combinations exceed ``rows`` by ~5% (at least 20)."""
    cells = len(YEARS) * len(MONTHS_ES) * n_nationalities
    return max(20, math.ceil(rows * 1.05 / cells))


def entry_points(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` distinct "(lat,lon)" labels with six decimals, as the source writes them."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        lat = rng.uniform(*LAT_RANGE)
        lon = rng.uniform(*LON_RANGE)
        label = f"({lat:.6f},{lon:.6f})"
        if label not in seen:
            seen.add(label)
            out.append(label)
    return out


def _zipf(count: int, exponent: float) -> np.ndarray:
    return 1.0 / np.arange(1, count + 1, dtype=np.float64) ** exponent


def _csv_field(text: str) -> str:
    """A text field as the source writes it: quoted only when it has to be."""
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def generate_columns(rows: int, seed: int = DEFAULT_SEED) -> dict:
    """The file's content as numpy arrays plus the small label tables they index.

    Keys: year, month (0..11), nat (index into ``nationalities``), loc (index into ``locations``),
    fem, masc, indef (-1 = empty), total; and the lists nationalities, locations.
    """
    if rows < 1:
        raise ValueError("rows must be >= 1")
    rng = np.random.default_rng(seed)
    nats = nationalities()
    n_loc = entry_points_needed(rows, len(nats))
    locs = entry_points(rng, n_loc)
    shape = (len(YEARS), len(MONTHS_ES), len(nats), n_loc)
    space = int(np.prod(shape))
    # A sample without replacement of the combination space, in the file's order (year, month,
    # nationality, entry point): keys are unique by construction.
    if rows * 2 > space:  # dense: draw the combinations to leave out
        drop = rng.choice(space, size=space - rows, replace=False)
        keep = np.ones(space, dtype=bool)
        keep[drop] = False
        idx = np.flatnonzero(keep)
    else:
        idx = np.sort(rng.choice(space, size=rows, replace=False))
    y, m, n, loc = np.unravel_index(idx, shape)
    del idx

    w_nat = _zipf(len(nats), 1.6)
    w_loc = _zipf(n_loc, 1.3)[rng.permutation(n_loc)]
    season = np.array([1.25, 0.95, 0.95, 0.9, 0.9, 1.2, 1.35, 1.15, 0.85, 0.9, 0.95, 1.3])
    trend = np.linspace(0.6, 1.4, len(YEARS))
    trend[YEARS.index(2020)] *= 0.35  # the pandemic year
    lam = 20_000.0 * w_nat[n] * w_loc[loc] * season[m] * trend[y]
    lam *= rng.lognormal(mean=0.0, sigma=0.6, size=rows)
    known = 1 + rng.poisson(lam)  # a published row has at least one entry
    share_f = np.clip(rng.normal(0.46, 0.08, size=rows), 0.05, 0.95)
    fem = rng.binomial(known, share_f)
    masc = known - fem
    stated_unknown = rng.random(rows) < 0.004
    indef = np.where(stated_unknown, rng.integers(1, 4, size=rows), -1)
    unstated = np.where(rng.random(rows) < 0.01, rng.integers(1, 6, size=rows), 0)
    total = known + np.maximum(indef, 0) + unstated
    return {
        "year": np.asarray(YEARS, dtype=np.int64)[y],
        "month": m.astype(np.int64),
        "nat": n.astype(np.int64),
        "loc": loc.astype(np.int64),
        "fem": fem.astype(np.int64),
        "masc": masc.astype(np.int64),
        "indef": indef.astype(np.int64),
        "total": total.astype(np.int64),
        "nationalities": nats,
        "locations": locs,
    }


def _text_batch(cols: dict, start: int, stop: int, labels: dict):
    """Rows ``start:stop`` as one Arrow buffer of CSV lines (each ending in a newline)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    sl = slice(start, stop)

    def num(values: np.ndarray, empty_below_zero: bool = False):
        arr = pa.array(values[sl])
        text = pc.cast(arr, pa.string())
        if empty_below_zero:
            text = pc.if_else(pc.less(arr, 0), pa.scalar("", pa.string()), text)
        return text

    fields = [
        num(cols["year"]),
        pc.take(labels["month"], pa.array(cols["month"][sl])),
        pc.take(labels["nat_name"], pa.array(cols["nat"][sl])),
        pc.take(labels["nat_code"], pa.array(cols["nat"][sl])),
        num(cols["fem"]),
        num(cols["masc"]),
        num(cols["indef"], empty_below_zero=True),
        num(cols["total"]),
        pc.take(labels["loc"], pa.array(cols["loc"][sl])),
    ]
    line = pc.binary_join_element_wise(*fields, ",")
    line = pc.binary_join_element_wise(line, pa.scalar("", pa.string()), "\n")  # "<line>\n"
    line = line.combine_chunks() if isinstance(line, pa.ChunkedArray) else line
    offsets = np.frombuffer(line.buffers()[1], dtype=np.int32, count=len(line) + 1, offset=line.offset * 4)
    return line.buffers()[2][int(offsets[0]) : int(offsets[-1])]


def write_file(path: Path, rows: int, seed: int = DEFAULT_SEED) -> dict:
    """Write ``rows`` rows to ``path`` (atomically); returns the sidecar metadata."""
    import pyarrow as pa

    started = time.perf_counter()
    cols = generate_columns(rows, seed)
    labels = {
        "month": pa.array(list(MONTHS_ES)),
        "nat_name": pa.array([_csv_field(n) for n, _, _ in cols["nationalities"]]),
        "nat_code": pa.array([str(code) for _, code, _ in cols["nationalities"]]),
        "loc": pa.array([_csv_field(label) for label in cols["locations"]]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with tmp.open("wb") as fh:
        fh.write((HEADER + "\n").encode("utf-8"))
        for start in range(0, rows, BATCH_ROWS):
            fh.write(_text_batch(cols, start, min(rows, start + BATCH_ROWS), labels))
    tmp.replace(path)
    meta = {
        "source_id": SOURCE_ID,
        "rows": rows,
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "bytes": path.stat().st_size,
        "nationalities": len(cols["nationalities"]),
        "entry_points": len(cols["locations"]),
        "years": [YEARS[0], YEARS[-1]],
        "observations_expected": expected_observations(cols),
        "value_sum": int(cols["total"].sum()),
        "generate_s": round(time.perf_counter() - started, 3),
    }
    return meta


def expected_observations(cols: dict) -> int:
    """Canonical observations the contract makes of these rows: F and M always, Indefinido when
    stated, and the remainder of Total (sex unknown) when positive."""
    indef = cols["indef"]
    remainder = cols["total"] - cols["fem"] - cols["masc"] - np.maximum(indef, 0)
    return int(2 * len(indef) + (indef >= 0).sum() + (remainder > 0).sum())


def file_name(rows: int, seed: int) -> str:
    """Matches the contract's landing pattern ``*entradas_de_extranjeros*.csv``."""
    return f"bench_entradas_de_extranjeros_n{rows}_seed{seed}_v{GENERATOR_VERSION}.csv"


def ensure(rows: int, seed: int = DEFAULT_SEED, folder: Path | None = None) -> tuple[Path, dict]:
    """The cached file of (rows, seed), written when missing or stale; returns (path, metadata)."""
    folder = Path(folder or DATA_DIR)
    path = folder / file_name(rows, seed)
    sidecar = path.with_suffix(".json")
    if path.is_file() and sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        if (
            meta.get("rows") == rows
            and meta.get("seed") == seed
            and meta.get("generator_version") == GENERATOR_VERSION
            and meta.get("bytes") == path.stat().st_size
        ):
            return path, {**meta, "cached": True}
    meta = write_file(path, rows, seed)
    sidecar.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path, {**meta, "cached": False}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, action="append", help="rows (repeatable); default 2 M and 10 M")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--out", type=Path, default=DATA_DIR, help="folder (default bench/data)")
    p.add_argument("--force", action="store_true", help="rewrite even when cached")
    args = p.parse_args(argv)
    for rows in args.rows or [2_000_000, 10_000_000]:
        if args.force:
            (args.out / file_name(rows, args.seed)).unlink(missing_ok=True)
        path, meta = ensure(rows, args.seed, args.out)
        state = "cached" if meta["cached"] else f"written in {meta['generate_s']} s"
        print(f"{path}  {rows} rows  {meta['bytes'] / 1e6:.1f} MB  ({state})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
