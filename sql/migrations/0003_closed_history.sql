-- Schema version 3: the history table keeps the closed states only.
--
-- Version 2 wrote every current figure twice: once in fact_flow and once in fact_flow_history as
-- an open row (valid_to NULL). A first load of a 10 M-row file spent half of its warehouse time on
-- that copy. Now fact_flow is the only home of the current state (with the `change` that brought
-- it: new | added | revised), fact_flow_closed holds the states that ended (revised or withdrawn),
-- and fact_flow_history is a view over both, with the same columns and rows as the version-2
-- table (sql/views.sql). See docs/decisions/0003-warehouse.md.

CREATE TABLE fact_flow_closed (
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
    valid_to          TIMESTAMP NOT NULL,
    change            VARCHAR NOT NULL,   -- new | added | revised: how this state arrived
    closed_as         VARCHAR NOT NULL,   -- revised | withdrawn: how it ended
    closed_by_sha256  VARCHAR NOT NULL    -- the file whose load ended it
);

INSERT INTO fact_flow_closed
SELECT source_id, reporter_iso3, reporter_role, flow_type, citizenship_iso3, counterpart_iso3,
       period_start, period_end, period_type, sex, age_band, unit, detail, value, obs_status,
       conf_status, rounding_base, source_file, source_sha256, source_sheet, source_row,
       source_column, vintage, loaded_at, year, month,
       valid_from, valid_to, change, closed_as, closed_by_sha256
FROM fact_flow_history
WHERE valid_to IS NOT NULL;

-- How the current state arrived (the open history row said it).
ALTER TABLE fact_flow ADD COLUMN change VARCHAR;

UPDATE fact_flow SET change = h.change
FROM fact_flow_history h
WHERE h.valid_to IS NULL
  AND h.source_id = fact_flow.source_id AND h.reporter_iso3 = fact_flow.reporter_iso3
  AND h.flow_type = fact_flow.flow_type AND h.citizenship_iso3 = fact_flow.citizenship_iso3
  AND h.counterpart_iso3 = fact_flow.counterpart_iso3 AND h.period_start = fact_flow.period_start
  AND h.period_end = fact_flow.period_end AND h.sex = fact_flow.sex
  AND h.age_band = fact_flow.age_band AND h.unit = fact_flow.unit AND h.detail = fact_flow.detail;

UPDATE fact_flow SET change = 'new' WHERE change IS NULL;

-- The views that read the table go with it (installed again over the new view, sql/views.sql).
-- @postgres
DROP TABLE fact_flow_history CASCADE;
-- @duckdb
DROP TABLE fact_flow_history;
