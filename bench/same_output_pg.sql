-- The PostgreSQL counterpart of bench/same_output.sql: fact_flow as the warehouse holds it on
-- PostgreSQL (27 columns, the scope index), into which bench/run.py COPYs the same canonical rows.
CREATE TABLE fact_flow (
    source_id VARCHAR NOT NULL, reporter_iso3 VARCHAR NOT NULL, reporter_role VARCHAR,
    flow_type VARCHAR NOT NULL, citizenship_iso3 VARCHAR NOT NULL, counterpart_iso3 VARCHAR NOT NULL,
    period_start DATE NOT NULL, period_end DATE NOT NULL, period_type VARCHAR NOT NULL,
    sex VARCHAR NOT NULL, age_band VARCHAR NOT NULL, unit VARCHAR NOT NULL, detail VARCHAR NOT NULL,
    value DOUBLE PRECISION, obs_status VARCHAR NOT NULL, conf_status VARCHAR NOT NULL,
    rounding_base INTEGER, source_file VARCHAR NOT NULL, source_sha256 VARCHAR NOT NULL,
    source_sheet VARCHAR, source_row BIGINT NOT NULL, source_column VARCHAR, vintage DATE NOT NULL,
    loaded_at TIMESTAMP NOT NULL, year INTEGER NOT NULL, month INTEGER NOT NULL, change VARCHAR
);
CREATE INDEX fact_flow_scope ON fact_flow (source_id, period_start, period_end);
