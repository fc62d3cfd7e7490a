-- The PostgreSQL counterpart of bench/same_output.sql: run after bench/same_output_tables.sql,
-- the index the PostgreSQL warehouse keeps on fact_flow; bench/run.py then COPYs the same
-- canonical rows (and their one dim_load row) in.
CREATE INDEX fact_flow_scope ON fact_flow (source_id, period_start, period_end);
