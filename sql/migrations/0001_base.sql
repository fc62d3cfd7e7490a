-- Schema version 1: the star as the backbone issue created it (fact_flow, dim_*, file_manifest,
-- dq_result). Kept verbatim so that a warehouse created before migrations existed is exactly a
-- version-1 warehouse. Portable types only: the same text runs on DuckDB and PostgreSQL.

CREATE TABLE IF NOT EXISTS dim_country (
    iso3        VARCHAR PRIMARY KEY,
    iso2        VARCHAR,
    m49         VARCHAR,
    name_es     VARCHAR,
    name_en     VARCHAR,
    name_pt     VARCHAR,
    name_fr     VARCHAR,
    is_member   BOOLEAN NOT NULL,
    conference  VARCHAR
);

CREATE TABLE IF NOT EXISTS dim_flow_type (
    code           VARCHAR PRIMARY KEY,
    parent         VARCHAR,
    reporter_role  VARCHAR,
    default_unit   VARCHAR,
    label_es       VARCHAR,
    label_en       VARCHAR,
    label_pt       VARCHAR,
    label_fr       VARCHAR,
    definition_en  VARCHAR
);

CREATE TABLE IF NOT EXISTS dim_sex (
    code VARCHAR PRIMARY KEY, label_es VARCHAR, label_en VARCHAR, label_pt VARCHAR, label_fr VARCHAR
);
CREATE TABLE IF NOT EXISTS dim_age_band (
    code VARCHAR PRIMARY KEY, label_es VARCHAR, label_en VARCHAR, label_pt VARCHAR, label_fr VARCHAR
);
CREATE TABLE IF NOT EXISTS dim_unit (
    code VARCHAR PRIMARY KEY, label_es VARCHAR, label_en VARCHAR, label_pt VARCHAR, label_fr VARCHAR
);
CREATE TABLE IF NOT EXISTS dim_obs_status (
    code VARCHAR PRIMARY KEY, label_es VARCHAR, label_en VARCHAR, label_pt VARCHAR, label_fr VARCHAR
);

CREATE TABLE IF NOT EXISTS dim_source (
    source_id         VARCHAR PRIMARY KEY,
    reporter_iso3     VARCHAR,
    conference        VARCHAR,
    title             VARCHAR,
    agency            VARCHAR,
    language          VARCHAR,
    file_format       VARCHAR,
    contract_version  INTEGER,
    synthetic         BOOLEAN,
    delivery_frequency VARCHAR,
    due_day           INTEGER,
    lag_months        INTEGER
);

-- One row per landing file seen: the manifest that makes reruns skip loaded files.
CREATE TABLE IF NOT EXISTS file_manifest (
    source_id      VARCHAR NOT NULL,
    sha256         VARCHAR NOT NULL,
    file_name      VARCHAR NOT NULL,
    landing_path   VARCHAR,
    size_bytes     BIGINT,
    received_at    TIMESTAMP,
    vintage        DATE,
    status         VARCHAR NOT NULL,   -- loaded | refused
    rows_loaded    BIGINT,
    warnings       INTEGER,
    reason         VARCHAR,
    report_path    VARCHAR,
    processed_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (source_id, sha256)
);

-- The current figures: one row per observation (a source cell, or a total's remainder).
CREATE TABLE IF NOT EXISTS fact_flow (
    source_id         VARCHAR NOT NULL,
    reporter_iso3     VARCHAR NOT NULL,
    reporter_role     VARCHAR,
    flow_type         VARCHAR NOT NULL,
    citizenship_iso3  VARCHAR NOT NULL,
    counterpart_iso3  VARCHAR NOT NULL,
    period_start      DATE NOT NULL,
    period_end        DATE NOT NULL,
    period_type       VARCHAR NOT NULL,
    sex               VARCHAR NOT NULL,
    age_band          VARCHAR NOT NULL,
    unit              VARCHAR NOT NULL,
    detail            VARCHAR NOT NULL,
    value             DOUBLE PRECISION,
    obs_status        VARCHAR NOT NULL,
    conf_status       VARCHAR NOT NULL,
    rounding_base     INTEGER,
    source_file       VARCHAR NOT NULL,
    source_sha256     VARCHAR NOT NULL,
    source_sheet      VARCHAR,
    source_row        BIGINT NOT NULL,
    source_column     VARCHAR,
    vintage           DATE NOT NULL,
    loaded_at         TIMESTAMP NOT NULL,
    year              INTEGER NOT NULL,
    month             INTEGER NOT NULL
);

-- Validation results per file, for the Airflow view and analysts.
CREATE TABLE IF NOT EXISTS dq_result (
    source_id         VARCHAR NOT NULL,
    sha256            VARCHAR NOT NULL,
    file_name         VARCHAR NOT NULL,
    suite             VARCHAR NOT NULL,
    expectation       VARCHAR NOT NULL,
    column_name       VARCHAR,
    severity          VARCHAR NOT NULL,
    success           BOOLEAN NOT NULL,
    unexpected_count  BIGINT,
    examples          VARCHAR,
    run_at            TIMESTAMP NOT NULL
);
