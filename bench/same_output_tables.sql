-- The warehouse's tables the same-output scripts write (bench/same_output.sql on DuckDB,
-- bench/same_output_pg.sql on PostgreSQL), as the pipeline's migrations leave them (schema
-- version 9): the file's load, once, in dim_load; the observations in fact_flow with its load_id.
CREATE TABLE dim_load (
    load_id INTEGER PRIMARY KEY, source_id VARCHAR NOT NULL, source_file VARCHAR NOT NULL,
    source_sha256 VARCHAR NOT NULL, vintage DATE, loaded_at TIMESTAMP NOT NULL
);
CREATE TABLE fact_flow (
    source_id VARCHAR NOT NULL, reporter_iso3 VARCHAR NOT NULL, reporter_role VARCHAR,
    flow_type VARCHAR NOT NULL, citizenship_iso3 VARCHAR NOT NULL, counterpart_iso3 VARCHAR NOT NULL,
    period_start DATE NOT NULL, period_end DATE NOT NULL, period_type VARCHAR NOT NULL,
    sex VARCHAR NOT NULL, age_band VARCHAR NOT NULL, unit VARCHAR NOT NULL, detail VARCHAR NOT NULL,
    value DOUBLE PRECISION, obs_status VARCHAR NOT NULL, conf_status VARCHAR NOT NULL,
    rounding_base INTEGER, load_id INTEGER NOT NULL, source_sheet VARCHAR, source_row BIGINT NOT NULL,
    source_column VARCHAR, year INTEGER NOT NULL, month INTEGER NOT NULL, change VARCHAR
);
