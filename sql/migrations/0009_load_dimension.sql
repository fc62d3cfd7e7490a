-- Schema version 9: a load dimension; the facts carry load_id instead of their file's lineage.
--
-- What is constant for a loaded file (its source, name, sha256, vintage and the instant it was
-- loaded) was written on every one of its rows: four columns, two of them long text, repeated
-- millions of times. dim_load holds them once per load; fact_flow and fact_flow_closed keep
-- `load_id`, and a closed state keeps the load that closed it (`closed_by_load_id`). The views
-- give the lineage back by name (v_fact, fact_flow_history, v_revisions): analysts and the lake
-- see codes, never the surrogate key. source_id stays on the facts: every load's statements and
-- the PostgreSQL index are bounded by (source_id, period), and the lake is cut by it.
-- See docs/decisions/0003-warehouse.md.

CREATE TABLE dim_load (
    load_id        INTEGER PRIMARY KEY,
    source_id      VARCHAR NOT NULL,
    source_file    VARCHAR NOT NULL,
    source_sha256  VARCHAR NOT NULL,
    vintage        DATE,
    loaded_at      TIMESTAMP NOT NULL
);

-- Every load the facts name, in the order they were loaded. A load that only closed figures (a
-- resend withdrawing them all) left no row of its own: its manifest row gives its name and
-- vintage, the states it closed its instant. A load that left no trace in the facts (a file
-- without observations) is taken from the manifest with processed_at for loaded_at.
INSERT INTO dim_load (load_id, source_id, source_file, source_sha256, vintage, loaded_at)
SELECT row_number() OVER (ORDER BY loaded_at, source_id, source_sha256, source_file, vintage),
       source_id, source_file, source_sha256, vintage, loaded_at
FROM (
    SELECT source_id, source_file, source_sha256, vintage, loaded_at FROM fact_flow
    UNION
    SELECT source_id, source_file, source_sha256, vintage, loaded_at FROM fact_flow_closed
    UNION
    SELECT c.source_id, coalesce(m.file_name, c.closed_by_sha256), c.closed_by_sha256, m.vintage, c.valid_to
    FROM (SELECT DISTINCT source_id, closed_by_sha256, valid_to FROM fact_flow_closed) c
    LEFT JOIN file_manifest m ON m.source_id = c.source_id AND m.sha256 = c.closed_by_sha256
    WHERE NOT EXISTS (SELECT 1 FROM fact_flow f
                      WHERE f.source_id = c.source_id AND f.source_sha256 = c.closed_by_sha256)
      AND NOT EXISTS (SELECT 1 FROM fact_flow_closed o
                      WHERE o.source_id = c.source_id AND o.source_sha256 = c.closed_by_sha256)
    UNION
    SELECT m.source_id, m.file_name, m.sha256, m.vintage, m.processed_at
    FROM file_manifest m
    WHERE m.status = 'loaded'
      AND NOT EXISTS (SELECT 1 FROM fact_flow f WHERE f.source_id = m.source_id AND f.source_sha256 = m.sha256)
      AND NOT EXISTS (SELECT 1 FROM fact_flow_closed o
                      WHERE o.source_id = m.source_id
                        AND (o.source_sha256 = m.sha256 OR o.closed_by_sha256 = m.sha256))
) loads;

-- The current figures, lean: the same rows, each naming its load.
CREATE TABLE fact_flow_lean (
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
    load_id           INTEGER NOT NULL,
    source_sheet      VARCHAR,
    source_row        BIGINT NOT NULL,
    source_column     VARCHAR,
    year              INTEGER NOT NULL,
    month             INTEGER NOT NULL,
    change            VARCHAR
);

INSERT INTO fact_flow_lean
SELECT f.source_id, f.reporter_iso3, f.reporter_role, f.flow_type, f.citizenship_iso3,
       f.counterpart_iso3, f.period_start, f.period_end, f.period_type, f.sex, f.age_band, f.unit,
       f.detail, f.value, f.obs_status, f.conf_status, f.rounding_base, l.load_id, f.source_sheet,
       f.source_row, f.source_column, f.year, f.month, f.change
FROM fact_flow f
JOIN dim_load l
  ON l.source_id = f.source_id AND l.source_sha256 = f.source_sha256 AND l.source_file = f.source_file
 AND l.vintage = f.vintage AND l.loaded_at = f.loaded_at;

-- The states that ended, lean: their own load, and the load that ended them (the load of the
-- closing file at the instant the state ended, as the load wrote it).
CREATE TABLE fact_flow_closed_lean (
    source_id          VARCHAR NOT NULL,
    reporter_iso3      VARCHAR NOT NULL,
    reporter_role      VARCHAR,
    flow_type          VARCHAR NOT NULL,
    citizenship_iso3   VARCHAR NOT NULL,
    counterpart_iso3   VARCHAR NOT NULL,
    period_start       DATE NOT NULL,
    period_end         DATE NOT NULL,
    period_type        VARCHAR NOT NULL,
    sex                VARCHAR NOT NULL,
    age_band           VARCHAR NOT NULL,
    unit               VARCHAR NOT NULL,
    detail             VARCHAR NOT NULL,
    value              DOUBLE PRECISION,
    obs_status         VARCHAR NOT NULL,
    conf_status        VARCHAR NOT NULL,
    rounding_base      INTEGER,
    load_id            INTEGER NOT NULL,
    source_sheet       VARCHAR,
    source_row         BIGINT NOT NULL,
    source_column      VARCHAR,
    year               INTEGER NOT NULL,
    month              INTEGER NOT NULL,
    valid_from         TIMESTAMP NOT NULL,
    valid_to           TIMESTAMP NOT NULL,
    change             VARCHAR NOT NULL,
    closed_as          VARCHAR NOT NULL,
    closed_by_load_id  INTEGER NOT NULL
);

INSERT INTO fact_flow_closed_lean
SELECT c.source_id, c.reporter_iso3, c.reporter_role, c.flow_type, c.citizenship_iso3,
       c.counterpart_iso3, c.period_start, c.period_end, c.period_type, c.sex, c.age_band, c.unit,
       c.detail, c.value, c.obs_status, c.conf_status, c.rounding_base, l.load_id, c.source_sheet,
       c.source_row, c.source_column, c.year, c.month, c.valid_from, c.valid_to, c.change,
       c.closed_as, coalesce(at_end.load_id, latest.load_id)
FROM fact_flow_closed c
JOIN dim_load l
  ON l.source_id = c.source_id AND l.source_sha256 = c.source_sha256 AND l.source_file = c.source_file
 AND l.vintage = c.vintage AND l.loaded_at = c.loaded_at
LEFT JOIN (SELECT source_id, source_sha256, loaded_at, max(load_id) AS load_id
           FROM dim_load GROUP BY source_id, source_sha256, loaded_at) at_end
       ON at_end.source_id = c.source_id AND at_end.source_sha256 = c.closed_by_sha256
      AND at_end.loaded_at = c.valid_to
LEFT JOIN (SELECT source_id, source_sha256, max(load_id) AS load_id
           FROM dim_load GROUP BY source_id, source_sha256) latest
       ON latest.source_id = c.source_id AND latest.source_sha256 = c.closed_by_sha256;

-- The views that read the tables go with them (installed again by sql/views.sql).
-- @postgres
DROP TABLE fact_flow CASCADE;
-- @duckdb
DROP TABLE fact_flow;
-- @postgres
DROP TABLE fact_flow_closed CASCADE;
-- @duckdb
DROP TABLE fact_flow_closed;
ALTER TABLE fact_flow_lean RENAME TO fact_flow;
ALTER TABLE fact_flow_closed_lean RENAME TO fact_flow_closed;

-- PostgreSQL: the loads' index (the periods a file covers), a file's load found by its hash, and
-- the numbers of the loads to come.
-- @postgres
CREATE INDEX fact_flow_scope ON fact_flow (source_id, period_start, period_end);
-- @postgres
CREATE INDEX dim_load_file ON dim_load (source_id, source_sha256);
-- @postgres
CREATE SEQUENCE dim_load_seq;
-- @postgres
SELECT setval('dim_load_seq', (SELECT coalesce(max(load_id), 0) + 1 FROM dim_load), false);
