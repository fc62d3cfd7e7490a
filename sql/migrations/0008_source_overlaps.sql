-- Schema version 8: sources that count the same events (issue 18). Seeded from the contracts'
-- `overlaps` key (transforms/contracts/model.py, Overlap) with the other dimensions: one row per pair
-- of sources and root flow type. Both sources' facts stay in fact_flow; the reporting views sum
-- one of them per overlap (sql/views.sql, v_fact_precedence) and v_flow_all_sources shows both.
CREATE TABLE IF NOT EXISTS dim_source_overlap (
    source_id            VARCHAR NOT NULL,   -- the source that yields where the other covers it
    preferred_source_id  VARCHAR NOT NULL,   -- the source a sum uses
    flow_type            VARCHAR,            -- a root flow type; NULL: every flow type
    period_from          DATE,               -- NULL: no lower bound
    period_to            DATE,               -- NULL: no upper bound
    declared_by          VARCHAR NOT NULL,   -- the contract that says so
    note                 VARCHAR
);
