"""The same-output floor (issue 17): what the pipeline's output costs when written by hand.

``bench/same_output.sql`` turns the bench file into exactly the fact rows, the load row and the
hive lake ``omh ingest`` produces (same columns, values, remainders, lineage), in plain DuckDB
with no project code; ``bench/same_output_pg.sql`` is the index of the warehouse tables the
PostgreSQL counterpart COPYs the same canonical rows into. Both create their tables with
``bench/same_output_tables.sql`` (the warehouse's ``dim_load`` and ``fact_flow``). ``bench/run.py`` times both (``same_output``
step, and ``pg_same_output_floor_s`` in its ``pg`` step) and the ratios of the pipeline to them;
``tests/test_bench_tools.py`` proves the output is the pipeline's, row for row.

    .venv/bin/python bench/same_output.py FILE.csv WORKDIR [--vintage D --loaded-at TS] [--pg-url URL]

prints one JSON line: ``{"sql_s": ..., "rows": ..., "sum": ..., "lake_rows": ..., "db": ...}``
(and ``"pg": {"copy_s": ..., "rows": ..., "sum": ...}`` with ``--pg-url``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
CODELISTS = BENCH.parent / "data" / "codelists"
SQL = BENCH / "same_output.sql"
PG_SQL = BENCH / "same_output_pg.sql"
TABLES_SQL = BENCH / "same_output_tables.sql"
MEMORY_LIMIT = "400MB"  # the pipeline's default DuckDB limit (OMH_DUCKDB_MEMORY), so both spill alike


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def render(template: Path, **params: str) -> str:
    """The script with its ``${name}`` parameters filled in (quotes doubled: they land in literals)."""
    text = template.read_text(encoding="utf-8")
    for name, value in params.items():
        text = text.replace("${" + name + "}", str(value).replace("'", "''"))
    if "${" in text:
        raise ValueError(f"{template.name}: a parameter is left unfilled: {text[text.index('${') :][:40]}")
    return text


def run(csv: Path, work: Path, vintage: str, loaded_at: str, memory_limit: str = MEMORY_LIMIT) -> dict:
    """Run the script in a fresh DuckDB file under ``work``; the database and the lake stay there."""
    import duckdb

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    script = TABLES_SQL.read_text(encoding="utf-8") + render(
        SQL,
        csv=csv.resolve(),
        lake=work / "lake",
        codelists=CODELISTS,
        source_file=csv.name,
        sha256=sha256_of(csv),
        vintage=vintage,
        loaded_at=loaded_at,
    )
    con = duckdb.connect(str(work / "same_output.duckdb"))
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = '{work / 'spill'}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    started = time.perf_counter()
    con.execute(script)
    con.execute("CHECKPOINT")
    sql_s = time.perf_counter() - started
    rows, total = con.execute("SELECT count(*), sum(value) FROM fact_flow").fetchone()
    lake_rows = con.execute(f"SELECT count(*) FROM read_parquet('{work / 'lake'}/**/*.parquet')").fetchone()[
        0
    ]
    con.close()
    return {
        "sql_s": round(sql_s, 3),
        "rows": rows,
        "sum": total,
        "lake_rows": lake_rows,
        "db": str(work / "same_output.duckdb"),
    }


def pg_copy(db: Path, pg_url: str, batch_rows: int = 100_000) -> dict:
    """COPY the canonical rows of a ``run`` into ``bench/same_output_pg.sql``'s indexed table on
    ``pg_url`` (a fresh database), in PostgreSQL's binary format as the pipeline writes them
    (pgpq encodes the Arrow batches); times the COPY alone, the rows read from DuckDB as it goes."""
    import duckdb
    import pgpq
    import psycopg

    con = duckdb.connect(str(db), read_only=True)
    load = con.execute("SELECT * FROM dim_load").fetchall()  # before the stream: one result at a time
    reader = con.sql("SELECT * FROM fact_flow").to_arrow_reader(batch_rows)
    encoder = pgpq.ArrowToPostgresBinaryEncoder(reader.schema)
    with psycopg.connect(pg_url, autocommit=True) as pg:
        pg.execute(TABLES_SQL.read_text(encoding="utf-8") + PG_SQL.read_text(encoding="utf-8"))
        cols = ", ".join(reader.schema.names)
        started = time.perf_counter()
        with pg.cursor() as cur:
            cur.executemany("INSERT INTO dim_load VALUES (%s, %s, %s, %s, %s, %s)", load)
        with pg.cursor() as cur, cur.copy(f"COPY fact_flow ({cols}) FROM STDIN (FORMAT binary)") as copy:
            copy.write(encoder.write_header())
            for batch in reader:
                copy.write(encoder.write_batch(batch))
            copy.write(encoder.finish())
        copy_s = time.perf_counter() - started
        rows, total = pg.execute("SELECT count(*), sum(value) FROM fact_flow").fetchone()
    con.close()
    return {"copy_s": round(copy_s, 3), "rows": rows, "sum": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--vintage", default=dt.date.today().isoformat())
    parser.add_argument("--loaded-at", default=dt.datetime.now().isoformat(sep=" ", timespec="microseconds"))
    parser.add_argument("--pg-url", help="also COPY the rows into this (fresh) PostgreSQL database")
    args = parser.parse_args()
    result = run(args.csv, args.work, args.vintage, args.loaded_at)
    if args.pg_url:
        result["pg"] = pg_copy(Path(result["db"]), args.pg_url)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
