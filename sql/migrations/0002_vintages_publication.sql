-- Schema version 2: vintages and revisions, file coverage, configuration, the delivery calendar
-- and the dimensions the reporting views label with. See docs/decisions/0003-warehouse.md.
--
-- A statement preceded by "-- @postgres" (or "-- @duckdb") runs on that engine only; everything
-- else is the same text on both.

-- Every state an observation has had: fact_flow holds the rows of this table whose valid_to is
-- NULL. A row is added when an observation first appears or its figure changes (value, status,
-- rounding); a file that restates a figure unchanged adds nothing. valid_from / valid_to are the
-- warehouse's load timestamps, so "as published on date X" is
--   valid_from <= X AND (valid_to IS NULL OR valid_to > X).
CREATE TABLE fact_flow_history (
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
    month             INTEGER NOT NULL,
    valid_from        TIMESTAMP NOT NULL,
    valid_to          TIMESTAMP,
    change            VARCHAR NOT NULL,   -- new | added | revised: how this state arrived
    closed_as         VARCHAR,            -- revised | withdrawn: how it ended (NULL while current)
    closed_by_sha256  VARCHAR             -- the file whose load ended it
);

INSERT INTO fact_flow_history
SELECT source_id, reporter_iso3, reporter_role, flow_type, citizenship_iso3, counterpart_iso3,
       period_start, period_end, period_type, sex, age_band, unit, detail, value, obs_status,
       conf_status, rounding_base, source_file, source_sha256, source_sheet, source_row,
       source_column, vintage, loaded_at, year, month,
       loaded_at, NULL, 'new', NULL, NULL
FROM fact_flow;

-- Which periods each loaded file covered, per reporter: the completeness view reads it.
CREATE TABLE file_coverage (
    source_id      VARCHAR NOT NULL,
    sha256         VARCHAR NOT NULL,
    reporter_iso3  VARCHAR NOT NULL,
    period_start   DATE NOT NULL,
    period_end     DATE NOT NULL,
    observations   BIGINT NOT NULL
);

INSERT INTO file_coverage
SELECT source_id, source_sha256, reporter_iso3, period_start, period_end, count(*)
FROM fact_flow
GROUP BY source_id, source_sha256, reporter_iso3, period_start, period_end;

-- What a load did, and whether the lake was written after it.
ALTER TABLE file_manifest ADD COLUMN rows_new BIGINT;
ALTER TABLE file_manifest ADD COLUMN rows_revised BIGINT;
ALTER TABLE file_manifest ADD COLUMN rows_withdrawn BIGINT;
ALTER TABLE file_manifest ADD COLUMN rows_unchanged BIGINT;
ALTER TABLE file_manifest ADD COLUMN lake_written_at TIMESTAMP;
UPDATE file_manifest SET rows_new = rows_loaded, lake_written_at = processed_at WHERE status = 'loaded';

-- Settings the views read. Change with UPDATE; the views follow at once.
CREATE TABLE config (
    key          VARCHAR PRIMARY KEY,
    value        VARCHAR NOT NULL,
    description  VARCHAR
);
INSERT INTO config VALUES
    ('disclosure_threshold', '5',
     'pub_* views: a count from 1 to threshold - 1 is suppressed, with secondary suppression'),
    ('completeness_months', '24',
     'v_completeness: months back from the current month that the delivery calendar covers');

-- Internal bookkeeping (e.g. the checksum of the views that are installed).
CREATE TABLE schema_meta (
    key    VARCHAR PRIMARY KEY,
    value  VARCHAR NOT NULL
);

-- Regions of the regional totals: the two conferences and all member states.
CREATE TABLE dim_conference (
    code VARCHAR PRIMARY KEY, label_es VARCHAR, label_en VARCHAR, label_pt VARCHAR, label_fr VARCHAR
);

CREATE TABLE dim_delivery_status (
    code VARCHAR PRIMARY KEY, label_es VARCHAR, label_en VARCHAR, label_pt VARCHAR, label_fr VARCHAR,
    sort_order INTEGER NOT NULL
);
INSERT INTO dim_delivery_status VALUES
    ('on_time',   'Recibido a tiempo', 'Received on time', 'Recebido no prazo', 'Reçu à temps', 1),
    ('late',      'Recibido con retraso', 'Received late', 'Recebido com atraso', 'Reçu en retard', 2),
    ('refused',   'Archivo rechazado', 'File refused', 'Arquivo recusado', 'Fichier refusé', 3),
    ('missing',   'Faltante', 'Missing', 'Em falta', 'Manquant', 4),
    ('not_due',   'Aún no vence', 'Not yet due', 'Ainda não vencido', 'Pas encore dû', 5),
    ('no_source', 'Sin fuente', 'No source', 'Sem fonte', 'Aucune source', 6);

-- The delivery calendar of every source (from its contract), rebuilt at every run.
-- window_end: a refused file received after period_end and up to window_end is counted for
-- this period.
CREATE TABLE delivery_slot (
    source_id     VARCHAR NOT NULL,
    period_start  DATE NOT NULL,
    period_end    DATE NOT NULL,
    due_date      DATE NOT NULL,
    window_end    DATE NOT NULL,
    PRIMARY KEY (source_id, period_start)
);

-- Calendar months of the completeness grid, rebuilt at every run.
CREATE TABLE dim_month (
    month_start  DATE PRIMARY KEY,
    month_end    DATE NOT NULL,
    year         INTEGER NOT NULL,
    month        INTEGER NOT NULL
);

-- PostgreSQL: indexes for the loads (the periods a file covers, the open history rows).
-- Deliberately no unique index on the 11-column observation key: maintaining it costs more than
-- the COPY itself on large files; the canonical suite refuses duplicate keys and `omh verify`
-- looks for them. DuckDB scans with zone maps and needs none.
-- @postgres
CREATE INDEX fact_flow_scope ON fact_flow (source_id, period_start, period_end);
-- @postgres
CREATE INDEX fact_flow_history_open ON fact_flow_history (source_id, period_start, period_end)
    WHERE valid_to IS NULL;
-- @postgres
CREATE INDEX file_coverage_source ON file_coverage (source_id, reporter_iso3, period_start);
