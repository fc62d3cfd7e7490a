"""The usual approach, done honestly: what a team writes first with pandas and GX Core.

Same file, same contract, same two GX suites as ``omh ingest``, the obvious pandas way:

1. ``pandas.read_csv`` of the whole file as text (the raw suite checks the cells as written);
2. the long table of cells (``melt`` of Femenino, Masculino, Indefinido, Total) and GX Core
   ``run_suite`` with ``expectations/raw_col_entradas_extranjeros.json`` on that whole DataFrame;
3. harmonize: numbers parsed, citizenship mapped with ``Series.map`` through
   ``CountryResolver().resolve`` (memoized per label), Spanish month names mapped with
   ``Series.map`` on a dict, periods computed, sexes melted, the remainder of Total kept as sex
   unknown (estimated), as the contract says;
4. GX Core ``run_suite`` with ``expectations/canonical.json`` on the whole canonical DataFrame;
5. ``DataFrame.to_parquet(partition_cols=[reporter_iso3, year, month])``;
6. insert into a DuckDB table ``fact_flow`` (``CREATE TABLE ... AS SELECT * FROM df``).

Runs as its own process (imports included in its time, as for ``omh ingest``) and prints one
JSON line: rows, observations, sum of values (to compare with the pipeline) and stage times.

    .venv/bin/python bench/usual.py FILE --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

SOURCE_ID = "col_entradas_extranjeros"
IDS = {
    "Año": "year",
    "Mes": "month",
    "Nacionalidad": "nationality",
    "Codigo Iso 3166": "iso_code",
    "Latitud - Longitud": "location",
}
VALUE_COLUMNS = ["Femenino", "Masculino", "Indefinido", "Total"]
SEX_OF_COLUMN = {"Femenino": "F", "Masculino": "M", "Indefinido": "_U", "Total": "_U"}
MONTHS_ES = {
    "enero": 1, "febrero": 2, "marzo": 3, "abril": 4, "mayo": 5, "junio": 6, "julio": 7,
    "agosto": 8, "septiembre": 9, "setiembre": 9, "octubre": 10, "noviembre": 11, "diciembre": 12,
}  # fmt: skip


class Refused(Exception):
    pass


def run(path: Path, out: Path) -> dict:
    stages: dict[str, float] = {}
    mark = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        stages[name] = round(now - mark, 3)
        mark = now

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import duckdb
    import numpy as np
    import pandas as pd

    from transforms.contracts.codelists import CountryResolver
    from transforms.stages.validate import load_suite, run_suite

    stage("import")

    # 1. read
    wide = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    wide = wide.rename(columns=IDS)
    wide["source_row"] = np.arange(2, len(wide) + 2, dtype="int64")
    rows = len(wide)
    stage("read_csv")

    # 2. raw suite on the long table of cells
    cells = wide.melt(
        id_vars=[*IDS.values(), "source_row"],
        value_vars=VALUE_COLUMNS,
        var_name="source_column",
        value_name="value_raw",
    )
    cells["cell_role"] = np.where(cells["source_column"] == "Total", "total", "value")
    stage("melt_cells")
    raw = run_suite(load_suite(f"raw_{SOURCE_ID}"), cells)
    del cells
    stage("gx_raw")
    if raw.errors:
        raise Refused("raw suite: " + "; ".join(o.message() for o in raw.errors))

    # 3. harmonize
    for col in VALUE_COLUMNS:
        wide[col] = pd.to_numeric(wide[col].str.replace(",", "", regex=False), errors="coerce")
    resolver = CountryResolver()
    wide["citizenship_iso3"] = wide["iso_code"].map(resolver.resolve)
    wide["month_num"] = wide["month"].str.lower().map(MONTHS_ES)
    if wide["citizenship_iso3"].isna().any() or wide["month_num"].isna().any():
        raise Refused("unknown nationality code or month label")
    wide["year_num"] = wide["year"].astype("int64")
    wide["period_start"] = pd.to_datetime(
        pd.DataFrame({"year": wide["year_num"], "month": wide["month_num"], "day": 1})
    )
    wide["period_end"] = wide["period_start"] + pd.offsets.MonthEnd(0)
    stated = wide[["Femenino", "Masculino", "Indefinido"]].fillna(0).sum(axis=1)
    wide["Total"] = wide["Total"] - stated  # the remainder: persons of unstated sex
    wide["detail"] = "location=" + wide["location"]
    facts = wide.melt(
        id_vars=[
            "citizenship_iso3",
            "period_start",
            "period_end",
            "year_num",
            "month_num",
            "detail",
            "source_row",
        ],
        value_vars=VALUE_COLUMNS,
        var_name="source_column",
        value_name="value",
    )
    del wide
    remainder = facts["source_column"] == "Total"
    facts = facts[facts["value"].notna() & (~remainder | (facts["value"] > 0))].reset_index(drop=True)
    remainder = facts["source_column"] == "Total"
    facts["sex"] = facts["source_column"].map(SEX_OF_COLUMN)
    facts["obs_status"] = np.where(remainder, "E", "A")
    facts.loc[remainder, "detail"] = facts.loc[remainder, "detail"] + "; remainder"
    facts = facts.rename(columns={"year_num": "year", "month_num": "month"})
    facts = facts.assign(
        source_id=SOURCE_ID,
        reporter_iso3="COL",
        reporter_role="destination",
        flow_type="ENT_REG",
        counterpart_iso3="_Z",
        period_type="M",
        age_band="_T",
        unit="events",
        conf_status="F",
        rounding_base=pd.Series(pd.NA, index=facts.index, dtype="Int64"),
        source_sheet=None,
    )
    facts["value"] = facts["value"].astype("float64")
    stage("harmonize")

    # 4. canonical suite
    canonical = run_suite(load_suite("canonical"), facts)
    stage("gx_canonical")
    if canonical.errors:
        raise Refused("canonical suite: " + "; ".join(o.message() for o in canonical.errors))

    # 5. lake
    facts["source_file"] = path.name
    facts["loaded_at"] = pd.Timestamp.now()
    lake = out / "lake"
    facts.to_parquet(lake, partition_cols=["reporter_iso3", "year", "month"], index=False)
    stage("to_parquet")

    # 6. warehouse
    con = duckdb.connect(str(out / "warehouse.duckdb"))
    con.execute("SET enable_progress_bar = false")
    con.register("facts_df", facts)
    con.execute("CREATE TABLE fact_flow AS SELECT * FROM facts_df")
    observations, value_sum = con.execute("SELECT count(*), sum(value) FROM fact_flow").fetchone()
    con.close()
    stage("duckdb_insert")
    return {
        "status": "loaded",
        "rows": rows,
        "observations": int(observations),
        "value_sum": float(value_sum or 0),
        "gx_raw_failed": [o.expectation for o in raw.failed],
        "gx_canonical_failed": [o.expectation for o in canonical.failed],
        "stages_s": stages,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="the usual pandas + GX Core approach, for the benchmark")
    p.add_argument("file", type=Path)
    p.add_argument("--out", type=Path, required=True, help="folder for the lake and warehouse.duckdb")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        summary = run(args.file, args.out)
        code = 0
    except Refused as exc:
        summary, code = {"status": "refused", "reason": str(exc)}, 1
    summary["inner_s"] = round(time.perf_counter() - started, 3)
    print(json.dumps(summary))
    return code


if __name__ == "__main__":
    sys.exit(main())
