"""What one write of the observations costs in DuckDB, column by column (``make bench-storage``).

The 10 M-row benchmark file becomes ~20 M observations, and on the DuckDB warehouse the pipeline
writes them once, into ``fact_flow`` (27 columns, 18 of them text). This measures that write
alone, on synthetic observations shaped like the benchmark's (cardinalities of the bench file's
facts: 250 citizenships, 3 sexes, ~500 details, 14 years x 12 months, ~3,000 distinct values,
13 text columns constant per file), in a fresh DuckDB file with the pipeline's settings:

==================  =====================================================================
insert_s            ``INSERT ... SELECT`` of all 27 columns of a fact row (the file's lineage
                    on every row, as ``fact_flow`` held it before schema version 9; the
                    source pre-materialized: the write alone)
insert_lean_s       the same observations into ``fact_flow`` as the migrations leave it today
                    (schema version 9: the four lineage columns replaced by one ``load_id``,
                    as the pipeline's ``FactSink`` writes them)
per_column_s        each column alone into a one-column table (what each one adds)
text_columns_s      sum of ``per_column_s`` over the text columns
insert_enum_s       the same insert with the 12 code columns as one DuckDB ENUM of codes
insert_int_keys_s   the same insert with every text column as a small integer key (a star
                    schema's surrogate keys)
==================  =====================================================================

It writes ``bench/results/storage.json``; nothing here changes the warehouse. The point is
the floor under the pipeline: each text column costs about as much as the file's whole CSV
parse, constant or not (docs/decisions/0006-throughput.md, session 7).

    .venv/bin/python bench/storage.py --rows 20000000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))

# The code columns a DuckDB ENUM could hold (values from closed code lists).
CODE_COLUMNS = (
    "reporter_iso3",
    "reporter_role",
    "flow_type",
    "citizenship_iso3",
    "counterpart_iso3",
    "period_type",
    "sex",
    "age_band",
    "unit",
    "obs_status",
    "conf_status",
    "change",
)


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def source_sql(rows: int, countries: int) -> str:
    """Observations shaped like the benchmark's facts (two per file row, F and M)."""
    return f"""
        SELECT 'col_entradas_extranjeros' AS source_id, 'COL' AS reporter_iso3,
               'destination' AS reporter_role, 'ENT_REG' AS flow_type,
               c.iso3 AS citizenship_iso3, '_Z' AS counterpart_iso3,
               make_date(2012 + (r // 2 % 168) // 12, 1 + (r // 2 % 168) % 12, 1) AS period_start,
               last_day(make_date(2012 + (r // 2 % 168) // 12, 1 + (r // 2 % 168) % 12, 1)) AS period_end,
               'M' AS period_type, CASE WHEN r % 2 = 0 THEN 'F' ELSE 'M' END AS sex, '_T' AS age_band,
               'events' AS unit, 'location=(' || (hash(r // 2) % 508)::VARCHAR || ')' AS detail,
               (hash(r) % 3000)::DOUBLE AS value, CASE WHEN hash(r) % 100 = 0 THEN 'E' ELSE 'A' END AS obs_status,
               'F' AS conf_status, CAST(NULL AS INTEGER) AS rounding_base,
               'bench_entradas_de_extranjeros.csv' AS source_file,
               '9f2c4d1e0b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d' AS source_sha256,
               CAST(NULL AS VARCHAR) AS source_sheet, 2 + r // 2 AS source_row,
               CASE WHEN r % 2 = 0 THEN 'Femenino' ELSE 'Masculino' END AS source_column,
               DATE '2026-01-31' AS vintage, TIMESTAMP '2026-11-28 12:00:00' AS loaded_at,
               2012 + (r // 2 % 168) // 12 AS year, 1 + (r // 2 % 168) % 12 AS month, 'new' AS change
        FROM range({rows}) t(r)
        JOIN (SELECT iso3, row_number() OVER (ORDER BY iso3) - 1 AS i FROM countries) c
          ON c.i = hash(r // 2) % {countries}"""


def main(argv: list[str] | None = None) -> int:
    import duckdb

    from transforms.contracts.codelists import codes as codelist
    from transforms.engine import MEMORY_LIMIT
    from transforms.storage.warehouse import (
        FACT_COLUMNS,
        MIGRATIONS_DIR,
        STORED_COLUMNS,
        _sql_type,
        fact_schema,
        split_statements,
    )

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=20_000_000, help="observations (default 20 M)")
    ap.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "storage.json")
    args = ap.parse_args(argv)
    iso3 = sorted(c for c in codelist("countries") if not c.startswith("_"))[:250]
    out: dict = {"rows": args.rows, "memory_limit": MEMORY_LIMIT, "duckdb": duckdb.__version__}
    with tempfile.TemporaryDirectory(prefix="omh-storage-") as tmp:
        con = duckdb.connect(str(Path(tmp) / "w.duckdb"))
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        con.execute("SET preserve_insertion_order = false")
        con.execute(f"SET temp_directory = '{tmp}/spill'")
        for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
            for stmt in split_statements(path.read_text(encoding="utf-8"), "duckdb"):
                con.execute(stmt)
        con.execute("CREATE TEMP TABLE countries (iso3 VARCHAR)")
        con.executemany("INSERT INTO countries VALUES (?)", [[c] for c in iso3])
        con.execute(f"ATTACH '{tmp}/src.duckdb' AS src")
        con.execute(f"CREATE TABLE src.obs AS {source_sql(args.rows, len(iso3))}")
        con.execute("CHECKPOINT")
        # The row as it travels (and as the lake keeps it): every fact column, lineage included.
        types = {f.name: _sql_type(f.type).replace("DOUBLE PRECISION", "DOUBLE") for f in fact_schema()}
        types["change"] = "VARCHAR"
        cols = [*FACT_COLUMNS, "change"]
        con.execute(f"CREATE TABLE fact_wide ({', '.join(f'{c} {types[c]}' for c in cols)})")

        def timed(sql: str) -> float:
            con.execute("BEGIN")
            start = time.perf_counter()
            con.execute(sql)
            con.execute("COMMIT")
            return round(time.perf_counter() - start, 3)

        out["insert_s"] = timed(
            f"INSERT INTO fact_wide ({', '.join(cols)}) SELECT {', '.join(cols)} FROM src.obs"
        )
        lean = [*STORED_COLUMNS, "change"]
        out["insert_lean_s"] = timed(
            f"INSERT INTO fact_flow ({', '.join(lean)}) "
            f"SELECT {', '.join('1' if c == 'load_id' else c for c in lean)} FROM src.obs"
        )
        written = con.execute("SELECT count(*), count(DISTINCT citizenship_iso3) FROM fact_wide").fetchall()[
            0
        ]
        if written[0] != args.rows:
            raise SystemExit(f"storage bench: {written[0]} observations written, {args.rows} asked")
        out["citizenships"] = written[1]
        per: dict[str, float] = {}
        for col in cols:
            con.execute(f"CREATE TABLE one_{col} ({col} {types[col]})")
            per[col] = timed(f"INSERT INTO one_{col} SELECT {col} FROM src.obs")
            con.execute(f"DROP TABLE one_{col}")
        out["per_column_s"] = per
        text = [c for c in cols if types[c] == "VARCHAR"]
        out["text_columns"] = len(text)
        out["text_columns_s"] = round(sum(per[c] for c in text), 3)
        out["other_columns_s"] = round(sum(v for c, v in per.items() if c not in text), 3)

        enum = sorted(
            {*iso3, "_Z", "_T", "_U", "COL", "destination", "ENT_REG", "M", "F", "events", "A", "E", "new"}
        )
        con.execute(f"CREATE TYPE code AS ENUM ({', '.join(_quoted(c) for c in enum)})")
        defs = ", ".join(f"{c} {'code' if c in CODE_COLUMNS else types[c]}" for c in cols)
        con.execute(f"CREATE TABLE fact_enum ({defs})")
        out["insert_enum_s"] = timed(f"INSERT INTO fact_enum SELECT {', '.join(cols)} FROM src.obs")
        # Surrogate keys: the keys are computed beforehand (a load would map each distinct label
        # once, as harmonize maps labels), so the timing is the write alone.
        keyed = ", ".join(
            f"(hash({c}) % 30000)::{'INTEGER' if c == 'detail' else 'SMALLINT'} AS {c}" if c in text else c
            for c in cols
        )
        con.execute(f"CREATE TABLE src.keyed AS SELECT {keyed} FROM src.obs")
        con.execute("CHECKPOINT")
        defs = ", ".join(
            f"{c} {('INTEGER' if c == 'detail' else 'SMALLINT') if c in text else types[c]}" for c in cols
        )
        con.execute(f"CREATE TABLE fact_keys ({defs})")
        out["insert_int_keys_s"] = timed(f"INSERT INTO fact_keys SELECT {', '.join(cols)} FROM src.keyed")
        con.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    width = max(len(k) for k in out)
    for k, v in out.items():
        if k != "per_column_s":
            print(f"{k:<{width}}  {v}")
    print("per column (s): " + ", ".join(f"{c} {v}" for c, v in per.items()))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
