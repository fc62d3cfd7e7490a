-- Reporting views for analysts (docs/analysts.md). The same text runs on DuckDB and PostgreSQL:
-- no GROUP BY ALL, explicit casts for divisions, dates compared as DATE.
--
-- Rules every view keeps:
--   * values of different units are never added: every aggregate groups by unit;
--   * labels come in es/en/pt/fr from the dimensions (reporter_*, flow_type_*, unit_*, ...);
--   * views hold no data: transforms/storage/warehouse/ drops and recreates them all when this file
--     changes (its sha256 is kept in schema_meta), in one transaction.
-- Views whose name starts with pub_ are public outputs: their value column never holds a count from
-- 1 to (disclosure_threshold - 1), see v_disclosure.

-- Every current figure with its load's lineage by name (dim_load): the columns fact_flow had before
-- the load dimension (schema version 9), in the same order. The views below read the lineage here.
CREATE VIEW v_fact AS
SELECT f.source_id, f.reporter_iso3, f.reporter_role, f.flow_type, f.citizenship_iso3, f.counterpart_iso3,
       f.period_start, f.period_end, f.period_type, f.sex, f.age_band, f.unit, f.detail, f.value,
       f.obs_status, f.conf_status, f.rounding_base, l.source_file, l.source_sha256, f.source_sheet,
       f.source_row, f.source_column, l.vintage, l.loaded_at, f.year, f.month, f.change
FROM fact_flow f
JOIN dim_load l ON l.load_id = f.load_id;

-- Sources that count the same events (issue 18): dim_source_overlap, from the contracts'
-- `overlaps`, says which source a sum uses. Every fact, with `used` (a sum counts it) and
-- `overridden_by` (the source used instead where it is not). Compared per reporter, root flow
-- type, unit and period: a period of the yielding source is overridden when the preferred source's
-- periods cover it whole (one holds it, or those inside it add up to its days); where they do
-- not, the yielding source's figure is kept and the preferred source's periods inside it yield.
-- Only the sources named in dim_source_overlap are compared (no overlap declared: nothing to do).
CREATE VIEW v_fact_precedence AS
WITH p AS (
    SELECT DISTINCT f.source_id, f.reporter_iso3, coalesce(ft.parent, f.flow_type) AS flow_root, f.unit,
           f.period_start, f.period_end
    FROM fact_flow f
    LEFT JOIN dim_flow_type ft ON ft.code = f.flow_type
    WHERE f.source_id IN (SELECT source_id FROM dim_source_overlap
                          UNION SELECT preferred_source_id FROM dim_source_overlap)
),
pair AS (
    SELECT DISTINCT p.source_id, p.reporter_iso3, p.flow_root, p.unit, p.period_start, p.period_end,
           o.preferred_source_id
    FROM p
    JOIN dim_source_overlap o
      ON o.source_id = p.source_id AND (o.flow_type IS NULL OR o.flow_type = p.flow_root)
     AND (o.period_from IS NULL OR p.period_end >= o.period_from)
     AND (o.period_to IS NULL OR p.period_start <= o.period_to)
),
cov AS (
    SELECT x.source_id, x.reporter_iso3, x.flow_root, x.unit, x.period_start, x.period_end,
           x.preferred_source_id,
           max(CASE WHEN w.period_start <= x.period_start AND w.period_end >= x.period_end THEN 1 ELSE 0 END)
               AS contained,
           sum(CASE WHEN w.period_start >= x.period_start AND w.period_end <= x.period_end
                    THEN w.period_end - w.period_start + 1 ELSE 0 END) AS days_inside
    FROM pair x
    JOIN p w
      ON w.source_id = x.preferred_source_id AND w.reporter_iso3 = x.reporter_iso3
     AND w.flow_root = x.flow_root AND w.unit = x.unit
     AND w.period_start <= x.period_end AND w.period_end >= x.period_start
    GROUP BY x.source_id, x.reporter_iso3, x.flow_root, x.unit, x.period_start, x.period_end,
             x.preferred_source_id
),
judged AS (
    SELECT cov.*,
           contained = 1 OR days_inside >= period_end - period_start + 1 AS covered
    FROM cov
),
y AS (
    SELECT source_id, reporter_iso3, flow_root, unit, period_start, period_end,
           preferred_source_id AS used_instead
    FROM judged
    WHERE covered
    UNION ALL
    SELECT w.source_id, w.reporter_iso3, w.flow_root, w.unit, w.period_start, w.period_end,
           k.source_id AS used_instead
    FROM judged k
    JOIN p w
      ON NOT k.covered AND w.source_id = k.preferred_source_id AND w.reporter_iso3 = k.reporter_iso3
     AND w.flow_root = k.flow_root AND w.unit = k.unit
     AND w.period_start <= k.period_end AND w.period_end >= k.period_start
),
yielded AS (
    SELECT source_id, reporter_iso3, flow_root, unit, period_start, period_end,
           min(used_instead) AS overridden_by
    FROM y
    GROUP BY source_id, reporter_iso3, flow_root, unit, period_start, period_end
)
SELECT f.*, d.overridden_by IS NULL AS used, d.overridden_by
FROM v_fact f
LEFT JOIN dim_flow_type ft ON ft.code = f.flow_type
LEFT JOIN yielded d
       ON d.source_id = f.source_id AND d.reporter_iso3 = f.reporter_iso3
      AND d.flow_root = coalesce(ft.parent, f.flow_type) AND d.unit = f.unit
      AND d.period_start = f.period_start AND d.period_end = f.period_end;

-- Every current observation of every source, with its labels, `used` and `overridden_by`
-- (v_fact_precedence): the figures a sum does not use are here, not in v_flow.
CREATE VIEW v_flow_all_sources AS
SELECT f.*,
       r.name_es AS reporter_es, r.name_en AS reporter_en, r.name_pt AS reporter_pt, r.name_fr AS reporter_fr,
       r.conference,
       c.name_es AS citizenship_es, c.name_en AS citizenship_en,
       c.name_pt AS citizenship_pt, c.name_fr AS citizenship_fr,
       ft.label_es AS flow_type_es, ft.label_en AS flow_type_en,
       ft.label_pt AS flow_type_pt, ft.label_fr AS flow_type_fr,
       coalesce(ft.parent, f.flow_type) AS flow_type_root,
       u.label_es AS unit_es, u.label_en AS unit_en, u.label_pt AS unit_pt, u.label_fr AS unit_fr,
       CASE WHEN f.period_type = 'M' THEN mn.label_es END AS month_es,
       CASE WHEN f.period_type = 'M' THEN mn.label_en END AS month_en,
       CASE WHEN f.period_type = 'M' THEN mn.label_pt END AS month_pt,
       CASE WHEN f.period_type = 'M' THEN mn.label_fr END AS month_fr,
       CASE WHEN s.calendar LIKE 'us_fiscal%'
            THEN f.year + CASE WHEN f.month >= 10 THEN 1 ELSE 0 END END AS us_fiscal_year
FROM v_fact_precedence f
LEFT JOIN dim_country r ON r.iso3 = f.reporter_iso3
LEFT JOIN dim_country c ON c.iso3 = f.citizenship_iso3
LEFT JOIN dim_flow_type ft ON ft.code = f.flow_type
LEFT JOIN dim_unit u ON u.code = f.unit
LEFT JOIN dim_month_name mn ON mn.month = f.month
LEFT JOIN dim_source s ON s.source_id = f.source_id;

-- Every current observation a sum uses, with its labels: one source per overlap (the other's are
-- in v_flow_all_sources). Its source_id is the source used.
CREATE VIEW v_flow AS
SELECT * FROM v_flow_all_sources WHERE used;

-- Totals by reporter, root flow type, unit and the source's own period (any period type). The
-- root is the flow type itself when dim_flow_type.parent is NULL (a top-level type): never '' there,
-- or every top-level type of a reporter and period would be added into one row.
-- (Facts are aggregated first, labels joined to the few totals: the same rows as grouping v_flow.)
CREATE VIEW v_flow_by_period AS
WITH a AS (
    SELECT reporter_iso3, source_id, flow_type, unit, period_type, period_start, period_end,
           sum(value) AS value,
           count(*) AS observations,
           count(*) FILTER (WHERE conf_status = 'S') AS suppressed_cells
    FROM v_fact_precedence
    WHERE used
    GROUP BY reporter_iso3, source_id, flow_type, unit, period_type, period_start, period_end
),
b AS (
    SELECT a.reporter_iso3, coalesce(ft.parent, a.flow_type) AS flow_type, a.unit, a.period_type,
           a.period_start, a.period_end, sum(a.value) AS value,
           CAST(sum(a.observations) AS BIGINT) AS observations,
           CAST(sum(a.suppressed_cells) AS BIGINT) AS suppressed_cells,
           string_agg(DISTINCT a.source_id, ', ' ORDER BY a.source_id) AS source_used
    FROM a
    LEFT JOIN dim_flow_type ft ON ft.code = a.flow_type
    GROUP BY a.reporter_iso3, coalesce(ft.parent, a.flow_type), a.unit, a.period_type, a.period_start, a.period_end
)
SELECT b.reporter_iso3, r.name_es AS reporter_es, r.name_en AS reporter_en, r.conference,
       b.flow_type, b.unit, b.period_type, b.period_start, b.period_end,
       b.value, b.observations, b.suppressed_cells, b.source_used,
       mn.label_es AS month_es, mn.label_en AS month_en, mn.label_pt AS month_pt, mn.label_fr AS month_fr
FROM b
LEFT JOIN dim_country r ON r.iso3 = b.reporter_iso3
-- A month's name on monthly rows only (NULL for quarters and years).
LEFT JOIN dim_month_name mn
       ON b.period_type = 'M' AND mn.month = CAST(EXTRACT(MONTH FROM b.period_start) AS INTEGER);

-- What each member state has delivered: files, observations, periods covered (every source);
-- sources_used: the sources the sums use, observations_overridden: those of an overlapping
-- source that they do not (v_fact_precedence).
CREATE VIEW v_reporter_summary AS
WITH f AS (
    SELECT reporter_iso3, source_id, source_sha256, count(value) AS observations,
           count(value) FILTER (WHERE NOT used) AS overridden,
           max(CASE WHEN used THEN source_id END) AS used_source,
           min(period_start) AS first_period, max(period_end) AS last_period
    FROM v_fact_precedence
    GROUP BY reporter_iso3, source_id, source_sha256
)
SELECT m.iso3 AS reporter_iso3, m.name_es, m.name_en, m.conference,
       count(DISTINCT f.source_id) AS sources,
       count(DISTINCT f.source_sha256) AS files,
       CAST(coalesce(sum(f.observations), 0) AS BIGINT) AS observations,
       CAST(coalesce(sum(f.overridden), 0) AS BIGINT) AS observations_overridden,
       string_agg(DISTINCT f.used_source, ', ' ORDER BY f.used_source) AS sources_used,
       min(f.first_period) AS first_period,
       max(f.last_period) AS last_period
FROM dim_country m
LEFT JOIN f ON f.reporter_iso3 = m.iso3
WHERE m.is_member
GROUP BY m.iso3, m.name_es, m.name_en, m.conference;

-- Monthly flows by reporter, source and flow type (monthly sources only; see v_flow_by_period
-- for quarterly and yearly ones). The figures a sum uses: one source per overlap.
CREATE VIEW v_flow_monthly AS
WITH a AS (
    SELECT reporter_iso3, source_id, flow_type, unit, year, month, period_start, period_end,
           sum(value) AS value,
           count(*) AS observations,
           count(*) FILTER (WHERE conf_status = 'S') AS suppressed_cells,
           count(*) FILTER (WHERE obs_status <> 'A') AS flagged_cells
    FROM v_fact_precedence
    WHERE period_type = 'M' AND used
    GROUP BY reporter_iso3, source_id, flow_type, unit, year, month, period_start, period_end
)
SELECT a.reporter_iso3,
       r.name_es AS reporter_es, r.name_en AS reporter_en, r.name_pt AS reporter_pt, r.name_fr AS reporter_fr,
       r.conference,
       a.source_id, a.flow_type, coalesce(ft.parent, a.flow_type) AS flow_type_root,
       ft.label_es AS flow_type_es, ft.label_en AS flow_type_en,
       ft.label_pt AS flow_type_pt, ft.label_fr AS flow_type_fr,
       a.unit, u.label_es AS unit_es, u.label_en AS unit_en, u.label_pt AS unit_pt, u.label_fr AS unit_fr,
       a.year, a.month,
       mn.label_es AS month_es, mn.label_en AS month_en, mn.label_pt AS month_pt, mn.label_fr AS month_fr,
       CASE WHEN s.calendar LIKE 'us_fiscal%'
            THEN a.year + CASE WHEN a.month >= 10 THEN 1 ELSE 0 END END AS us_fiscal_year,
       a.period_start, a.period_end,
       a.value, a.observations, a.suppressed_cells, a.flagged_cells
FROM a
LEFT JOIN dim_country r ON r.iso3 = a.reporter_iso3
LEFT JOIN dim_flow_type ft ON ft.code = a.flow_type
LEFT JOIN dim_unit u ON u.code = a.unit
LEFT JOIN dim_month_name mn ON mn.month = a.month
LEFT JOIN dim_source s ON s.source_id = a.source_id;

-- Corridor matrix: citizenship -> reporter, per flow type, unit and period.
CREATE VIEW v_corridor AS
WITH a AS (
    SELECT citizenship_iso3, reporter_iso3, flow_type, unit, period_type, period_start, period_end, year,
           sum(value) AS value,
           count(*) AS observations,
           string_agg(DISTINCT source_id, ', ' ORDER BY source_id) AS source_used
    FROM v_fact_precedence
    WHERE used
    GROUP BY citizenship_iso3, reporter_iso3, flow_type, unit, period_type, period_start, period_end, year
)
SELECT a.citizenship_iso3,
       c.name_es AS citizenship_es, c.name_en AS citizenship_en,
       c.name_pt AS citizenship_pt, c.name_fr AS citizenship_fr,
       c.conference AS citizenship_conference,
       a.reporter_iso3,
       r.name_es AS reporter_es, r.name_en AS reporter_en, r.name_pt AS reporter_pt, r.name_fr AS reporter_fr,
       r.conference AS reporter_conference,
       a.flow_type, ft.label_es AS flow_type_es, ft.label_en AS flow_type_en,
       ft.label_pt AS flow_type_pt, ft.label_fr AS flow_type_fr,
       a.unit, u.label_es AS unit_es, u.label_en AS unit_en, u.label_pt AS unit_pt, u.label_fr AS unit_fr,
       a.period_type, a.period_start, a.period_end, a.year,
       a.value, a.observations, a.source_used
FROM a
LEFT JOIN dim_country c ON c.iso3 = a.citizenship_iso3
LEFT JOIN dim_country r ON r.iso3 = a.reporter_iso3
LEFT JOIN dim_flow_type ft ON ft.code = a.flow_type
LEFT JOIN dim_unit u ON u.code = a.unit;

-- Regional totals: CRM, CSM and ALL (every member state), per flow type, unit and period.
CREATE VIEW v_regional_totals AS
WITH a AS (
    SELECT reporter_iso3, source_id, flow_type, unit, period_type, period_start, period_end,
           sum(value) AS value, count(*) AS observations
    FROM v_fact_precedence
    WHERE used
    GROUP BY reporter_iso3, source_id, flow_type, unit, period_type, period_start, period_end
),
m AS (
    SELECT a.reporter_iso3, a.source_id, c.conference, a.flow_type, a.unit, a.period_type, a.period_start,
           a.period_end, a.value, a.observations
    FROM a
    JOIN dim_country c ON c.iso3 = a.reporter_iso3
    WHERE c.is_member
),
t AS (
    SELECT conference AS region, flow_type, unit, period_type, period_start, period_end,
           sum(value) AS value, count(DISTINCT reporter_iso3) AS reporters,
           CAST(sum(observations) AS BIGINT) AS observations,
           string_agg(DISTINCT source_id, ', ' ORDER BY source_id) AS source_used
    FROM m
    GROUP BY conference, flow_type, unit, period_type, period_start, period_end
    UNION ALL
    SELECT 'ALL' AS region, flow_type, unit, period_type, period_start, period_end,
           sum(value) AS value, count(DISTINCT reporter_iso3) AS reporters,
           CAST(sum(observations) AS BIGINT) AS observations,
           string_agg(DISTINCT source_id, ', ' ORDER BY source_id) AS source_used
    FROM m
    GROUP BY flow_type, unit, period_type, period_start, period_end
),
members AS (
    SELECT conference AS region, count(*) AS member_states FROM dim_country WHERE is_member GROUP BY conference
    UNION ALL
    SELECT 'ALL' AS region, count(*) AS member_states FROM dim_country WHERE is_member
)
SELECT t.region, g.label_es AS region_es, g.label_en AS region_en, g.label_pt AS region_pt, g.label_fr AS region_fr,
       t.flow_type, ft.label_es AS flow_type_es, ft.label_en AS flow_type_en,
       ft.label_pt AS flow_type_pt, ft.label_fr AS flow_type_fr,
       t.unit, u.label_es AS unit_es, u.label_en AS unit_en, u.label_pt AS unit_pt, u.label_fr AS unit_fr,
       t.period_type, t.period_start, t.period_end,
       t.value, t.reporters, n.member_states, t.observations, t.source_used
FROM t
LEFT JOIN members n ON n.region = t.region
LEFT JOIN dim_conference g ON g.code = t.region
LEFT JOIN dim_flow_type ft ON ft.code = t.flow_type
LEFT JOIN dim_unit u ON u.code = t.unit;

-- Year-over-year change: each period against the same period one year earlier, per reporter,
-- source, flow type and unit.
CREATE VIEW v_flow_yoy AS
WITH a AS (
    SELECT reporter_iso3, source_id, flow_type, unit, period_type, period_start, period_end,
           sum(value) AS value
    FROM v_fact_precedence
    WHERE used
    GROUP BY reporter_iso3, source_id, flow_type, unit, period_type, period_start, period_end
)
SELECT c.reporter_iso3,
       r.name_es AS reporter_es, r.name_en AS reporter_en, r.name_pt AS reporter_pt, r.name_fr AS reporter_fr,
       c.source_id, c.flow_type, ft.label_es AS flow_type_es, ft.label_en AS flow_type_en,
       ft.label_pt AS flow_type_pt, ft.label_fr AS flow_type_fr,
       c.unit, u.label_es AS unit_es, u.label_en AS unit_en, u.label_pt AS unit_pt, u.label_fr AS unit_fr,
       c.period_type, c.period_start, c.period_end,
       c.value, p.value AS value_previous_year,
       c.value - p.value AS change,
       CASE WHEN p.value > 0 THEN CAST(100 AS DOUBLE PRECISION) * (c.value - p.value) / p.value END
           AS change_pct
FROM a c
LEFT JOIN a p
       ON p.reporter_iso3 = c.reporter_iso3 AND p.source_id = c.source_id AND p.flow_type = c.flow_type
      AND p.unit = c.unit AND p.period_type = c.period_type
      AND p.period_start = CAST(c.period_start - INTERVAL '1 year' AS DATE)
LEFT JOIN dim_country r ON r.iso3 = c.reporter_iso3
LEFT JOIN dim_flow_type ft ON ft.code = c.flow_type
LEFT JOIN dim_unit u ON u.code = c.unit;

-- Every state every observation has had: the current ones (fact_flow, valid_to NULL) and the
-- ones that ended (fact_flow_closed). "As published on date X" is
--   valid_from <= X AND (valid_to IS NULL OR valid_to > X).
CREATE VIEW fact_flow_history AS
SELECT source_id, reporter_iso3, reporter_role, flow_type, citizenship_iso3, counterpart_iso3,
       period_start, period_end, period_type, sex, age_band, unit, detail, value, obs_status,
       conf_status, rounding_base, source_file, source_sha256, source_sheet, source_row,
       source_column, vintage, loaded_at, year, month,
       loaded_at AS valid_from, CAST(NULL AS TIMESTAMP) AS valid_to, change,
       CAST(NULL AS VARCHAR) AS closed_as, CAST(NULL AS VARCHAR) AS closed_by_sha256
FROM v_fact
UNION ALL
SELECT c.source_id, c.reporter_iso3, c.reporter_role, c.flow_type, c.citizenship_iso3, c.counterpart_iso3,
       c.period_start, c.period_end, c.period_type, c.sex, c.age_band, c.unit, c.detail, c.value, c.obs_status,
       c.conf_status, c.rounding_base, l.source_file, l.source_sha256, c.source_sheet, c.source_row,
       c.source_column, l.vintage, l.loaded_at, c.year, c.month,
       c.valid_from, c.valid_to, c.change, c.closed_as, b.source_sha256 AS closed_by_sha256
FROM fact_flow_closed c
JOIN dim_load l ON l.load_id = c.load_id
JOIN dim_load b ON b.load_id = c.closed_by_load_id;

-- What changed between vintages and by how much: one row per revised, added or withdrawn
-- observation. "revised": a resent file changed its figure or flags; "added": it appeared in a
-- resent file for a period the source had already published; "withdrawn": a resent file covering
-- its period no longer carries it.
CREATE VIEW v_revisions AS
WITH r AS (
    SELECT n.source_id, n.reporter_iso3, n.flow_type, n.citizenship_iso3, n.counterpart_iso3,
           n.period_start, n.period_end, n.sex, n.age_band, n.unit, n.detail,
           n.valid_from AS revised_at, n.change,
           o.value AS previous_value, n.value,
           coalesce(n.value, 0) - coalesce(o.value, 0) AS difference,
           o.obs_status AS previous_obs_status, n.obs_status,
           o.conf_status AS previous_conf_status, n.conf_status,
           o.vintage AS previous_vintage, n.vintage,
           o.source_file AS previous_file, n.source_file AS file,
           o.source_sha256 AS previous_sha256, n.source_sha256 AS sha256
    FROM fact_flow_history n
    LEFT JOIN (SELECT * FROM fact_flow_history WHERE valid_to IS NOT NULL) o
           ON o.closed_as = 'revised' AND o.valid_to = n.valid_from
          AND o.source_id = n.source_id AND o.reporter_iso3 = n.reporter_iso3
          AND o.flow_type = n.flow_type AND o.citizenship_iso3 = n.citizenship_iso3
          AND o.counterpart_iso3 = n.counterpart_iso3 AND o.period_start = n.period_start
          AND o.period_end = n.period_end AND o.sex = n.sex AND o.age_band = n.age_band
          AND o.unit = n.unit AND o.detail = n.detail
    WHERE n.change IN ('revised', 'added')
    UNION ALL
    SELECT o.source_id, o.reporter_iso3, o.flow_type, o.citizenship_iso3, o.counterpart_iso3,
           o.period_start, o.period_end, o.sex, o.age_band, o.unit, o.detail,
           o.valid_to AS revised_at, 'withdrawn' AS change,
           o.value AS previous_value, CAST(NULL AS DOUBLE PRECISION) AS value,
           -coalesce(o.value, 0) AS difference,
           o.obs_status AS previous_obs_status, CAST(NULL AS VARCHAR) AS obs_status,
           o.conf_status AS previous_conf_status, CAST(NULL AS VARCHAR) AS conf_status,
           o.vintage AS previous_vintage, m.vintage,
           o.source_file AS previous_file, m.file_name AS file,
           o.source_sha256 AS previous_sha256, o.closed_by_sha256 AS sha256
    FROM (SELECT * FROM fact_flow_history WHERE valid_to IS NOT NULL) o
    LEFT JOIN file_manifest m ON m.source_id = o.source_id AND m.sha256 = o.closed_by_sha256
    WHERE o.closed_as = 'withdrawn'
)
SELECT r.*,
       CASE WHEN r.previous_value > 0
            THEN CAST(100 AS DOUBLE PRECISION) * r.difference / r.previous_value END AS difference_pct,
       c.name_es AS reporter_es, c.name_en AS reporter_en, c.name_pt AS reporter_pt, c.name_fr AS reporter_fr,
       ft.label_es AS flow_type_es, ft.label_en AS flow_type_en,
       ft.label_pt AS flow_type_pt, ft.label_fr AS flow_type_fr
FROM r
LEFT JOIN dim_country c ON c.iso3 = r.reporter_iso3
LEFT JOIN dim_flow_type ft ON ft.code = r.flow_type;

-- Reporting completeness per reporter, source and delivery period, from each contract's delivery
-- calendar (delivery_slot): received (any file), validated (figures loaded), refused, late (first
-- loaded file received after the due date), missing (due date passed, no figures).
CREATE VIEW v_completeness AS
WITH slot AS (
    SELECT s.source_id, coalesce(d.reporter_iso3, x.reporter_iso3) AS reporter_iso3,
           d.delivery_frequency, s.period_start, s.period_end, s.due_date, s.window_end
    FROM delivery_slot s
    JOIN dim_source d ON d.source_id = s.source_id
    LEFT JOIN (SELECT DISTINCT source_id, reporter_iso3 FROM file_coverage) x
           ON d.reporter_iso3 IS NULL AND x.source_id = s.source_id
),
loaded AS (
    SELECT s.source_id, s.reporter_iso3, s.period_start,
           count(DISTINCT c.sha256) AS files_loaded,
           min(m.received_at) AS first_received_at
    FROM slot s
    JOIN file_coverage c
      ON c.source_id = s.source_id AND c.reporter_iso3 = s.reporter_iso3
     AND c.period_start <= s.period_end AND c.period_end >= s.period_start
    JOIN file_manifest m ON m.source_id = c.source_id AND m.sha256 = c.sha256 AND m.status = 'loaded'
    GROUP BY s.source_id, s.reporter_iso3, s.period_start
),
refused AS (
    SELECT s.source_id, s.period_start, count(*) AS files_refused
    FROM delivery_slot s
    JOIN file_manifest m
      ON m.source_id = s.source_id AND m.status = 'refused'
     AND CAST(m.received_at AS DATE) > s.period_end AND CAST(m.received_at AS DATE) <= s.window_end
    GROUP BY s.source_id, s.period_start
),
-- The observatory's date: the system's, or the one an operator or a test pinned (OMH_TODAY, stored
-- by the warehouse as config 'clock_today'), so the grid of a given day can be shown on any day.
clock AS (
    SELECT coalesce(max(CAST(value AS DATE)), current_date) AS today FROM config WHERE key = 'clock_today'
),
st AS (
    SELECT s.reporter_iso3, s.source_id, s.delivery_frequency, s.period_start, s.period_end, s.due_date,
           k.today,
           coalesce(l.files_loaded, 0) AS files_loaded,
           coalesce(f.files_refused, 0) AS files_refused,
           l.first_received_at,
           CASE WHEN l.files_loaded > 0 THEN
                     CASE WHEN CAST(l.first_received_at AS DATE) > s.due_date THEN 'late' ELSE 'on_time' END
                WHEN f.files_refused > 0 THEN 'refused'
                WHEN s.due_date < k.today THEN 'missing'
                ELSE 'not_due' END AS status
    FROM slot s
    CROSS JOIN clock k
    LEFT JOIN loaded l
           ON l.source_id = s.source_id AND l.reporter_iso3 = s.reporter_iso3 AND l.period_start = s.period_start
    LEFT JOIN refused f ON f.source_id = s.source_id AND f.period_start = s.period_start
    WHERE s.reporter_iso3 IS NOT NULL
)
SELECT st.reporter_iso3,
       r.name_es AS reporter_es, r.name_en AS reporter_en, r.name_pt AS reporter_pt, r.name_fr AS reporter_fr,
       r.conference,
       st.source_id, st.delivery_frequency, st.period_start, st.period_end, st.due_date,
       st.files_loaded + st.files_refused AS files_received,
       st.files_loaded + st.files_refused > 0 AS received,
       st.files_loaded > 0 AS validated,
       st.files_refused > 0 AS refused,
       st.status = 'late' AS late,
       st.files_loaded = 0 AND st.due_date < st.today AS missing,
       st.files_loaded, st.files_refused, st.first_received_at,
       st.status,
       ds.label_es AS status_es, ds.label_en AS status_en, ds.label_pt AS status_pt, ds.label_fr AS status_fr
FROM st
LEFT JOIN dim_country r ON r.iso3 = st.reporter_iso3
LEFT JOIN dim_delivery_status ds ON ds.code = st.status;

-- The completeness grid: every member state x calendar month (dim_month), with the delivery
-- periods of all its sources that cover the month; status is the worst of them.
CREATE VIEW v_completeness_by_month AS
WITH g AS (
    SELECT c.iso3 AS reporter_iso3, c.conference, m.month_start, m.month_end, m.year, m.month
    FROM dim_country c
    CROSS JOIN dim_month m
    WHERE c.is_member
),
x AS (
    SELECT g.reporter_iso3, g.conference, g.month_start, g.month_end, g.year, g.month,
           count(v.source_id) AS sources_expected,
           count(*) FILTER (WHERE v.received) AS received,
           count(*) FILTER (WHERE v.validated) AS validated,
           count(*) FILTER (WHERE v.refused) AS refused,
           count(*) FILTER (WHERE v.status = 'late') AS late,
           count(*) FILTER (WHERE v.status = 'missing') AS missing,
           count(*) FILTER (WHERE v.status = 'not_due') AS not_due
    FROM g
    LEFT JOIN v_completeness v
           ON v.reporter_iso3 = g.reporter_iso3
          AND v.period_start <= g.month_end AND v.period_end >= g.month_start
    GROUP BY g.reporter_iso3, g.conference, g.month_start, g.month_end, g.year, g.month
),
s AS (
    SELECT x.*,
           CASE WHEN sources_expected = 0 THEN 'no_source'
                WHEN missing > 0 THEN 'missing'
                WHEN refused > validated AND refused > 0 THEN 'refused'
                WHEN late > 0 THEN 'late'
                WHEN validated > 0 THEN 'on_time'
                ELSE 'not_due' END AS status
    FROM x
)
SELECT s.reporter_iso3,
       r.name_es AS reporter_es, r.name_en AS reporter_en, r.name_pt AS reporter_pt, r.name_fr AS reporter_fr,
       s.conference, s.year, s.month, s.month_start, s.month_end,
       s.sources_expected, s.received, s.validated, s.refused, s.late, s.missing, s.not_due,
       s.status,
       ds.label_es AS status_es, ds.label_en AS status_en, ds.label_pt AS status_pt, ds.label_fr AS status_fr
FROM s
LEFT JOIN dim_country r ON r.iso3 = s.reporter_iso3
LEFT JOIN dim_delivery_status ds ON ds.code = s.status;

-- Disclosure control for the pub_* views (docs/decisions/0003-warehouse.md).
-- Published figures form one tree per (flow type, unit, period):
--   all member states (level all) > conference (level conference) > reporter (level reporter)
--   > citizenship within the reporter (level citizenship);
-- a reporter that is not a member state is a tree of its own. Per node:
--   * primary: a value from 1 to threshold - 1 (config.disclosure_threshold) is suppressed;
--   * secondary, under a published parent: if any sibling is primary, the suppressed siblings are
--     at least two and sum to at least the threshold (the smallest other cells are added), so the
--     parent minus the published siblings never gives back a small count;
--   * under a suppressed parent: at least one non-zero child is suppressed, so the parent cannot
--     be rebuilt from its children.
-- Levels are resolved top-down, so a secondary suppression cascades to the level below.
-- suppression: primary | secondary | source (the agency itself suppressed the cell: value NULL).
CREATE VIEW v_disclosure AS
WITH k AS (
    SELECT CAST(value AS DOUBLE PRECISION) AS k FROM config WHERE key = 'disclosure_threshold'
),
cell AS (
    SELECT reporter_iso3, citizenship_iso3, flow_type, unit, period_type, period_start, period_end,
           sum(value) AS value
    FROM v_fact_precedence
    WHERE used
    GROUP BY reporter_iso3, citizenship_iso3, flow_type, unit, period_type, period_start, period_end
),
rep AS (
    SELECT x.reporter_iso3, c.conference, coalesce(c.is_member, false) AS is_member,
           x.flow_type, x.unit, x.period_type, x.period_start, x.period_end, sum(x.value) AS value
    FROM cell x
    LEFT JOIN dim_country c ON c.iso3 = x.reporter_iso3
    GROUP BY x.reporter_iso3, c.conference, c.is_member, x.flow_type, x.unit, x.period_type,
             x.period_start, x.period_end
),
l0 AS (
    SELECT CAST('ALL' AS VARCHAR) AS region, r.flow_type, r.unit, r.period_type, r.period_start,
           r.period_end, sum(r.value) AS value
    FROM rep r
    WHERE r.is_member
    GROUP BY r.flow_type, r.unit, r.period_type, r.period_start, r.period_end
),
l0s AS (
    SELECT l0.*, coalesce(l0.value > 0 AND l0.value < k.k, false) AS is_primary,
           coalesce(l0.value > 0 AND l0.value < k.k, false) AS suppressed
    FROM l0 CROSS JOIN k
),
l1 AS (
    SELECT r.conference AS region, r.flow_type, r.unit, r.period_type, r.period_start, r.period_end,
           sum(r.value) AS value
    FROM rep r
    WHERE r.is_member
    GROUP BY r.conference, r.flow_type, r.unit, r.period_type, r.period_start, r.period_end
),
l1c AS (
    SELECT x.*, k.k, p.suppressed AS parent_suppressed,
           coalesce(x.value > 0 AND x.value < k.k, false) AS is_primary,
           coalesce(x.value > 0, false) AS is_candidate
    FROM l1 x
    CROSS JOIN k
    JOIN l0s p
      ON p.flow_type = x.flow_type AND p.unit = x.unit AND p.period_type = x.period_type
     AND p.period_start = x.period_start AND p.period_end = x.period_end
),
l1w AS (
    SELECT x.*,
           max(CASE WHEN x.is_primary THEN 1 ELSE 0 END) OVER (
               PARTITION BY x.flow_type, x.unit, x.period_type, x.period_start, x.period_end) AS group_primary,
           coalesce(sum(CASE WHEN x.is_candidate THEN 1 ELSE 0 END) OVER (
               PARTITION BY x.flow_type, x.unit, x.period_type, x.period_start, x.period_end
               ORDER BY x.is_primary DESC, x.value ASC NULLS LAST, x.region
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS n_before,
           coalesce(sum(CASE WHEN x.is_candidate THEN x.value ELSE 0 END) OVER (
               PARTITION BY x.flow_type, x.unit, x.period_type, x.period_start, x.period_end
               ORDER BY x.is_primary DESC, x.value ASC NULLS LAST, x.region
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS s_before
    FROM l1c x
),
l1s AS (
    SELECT region, flow_type, unit, period_type, period_start, period_end, value, is_primary,
           is_primary OR (is_candidate AND (
               (parent_suppressed AND n_before < 1)
               OR (NOT parent_suppressed AND group_primary = 1 AND NOT (n_before >= 2 AND s_before >= k))
           )) AS suppressed
    FROM l1w
),
l2c AS (
    SELECT x.*, k.k,
           p.region IS NOT NULL AS has_parent,
           coalesce(p.suppressed, false) AS parent_suppressed,
           coalesce(x.value > 0 AND x.value < k.k, false) AS is_primary,
           coalesce(x.value > 0, false) AS is_candidate,
           coalesce(x.conference, x.reporter_iso3) AS grp
    FROM rep x
    CROSS JOIN k
    LEFT JOIN l1s p
      ON x.is_member AND p.region = x.conference
     AND p.flow_type = x.flow_type AND p.unit = x.unit AND p.period_type = x.period_type
     AND p.period_start = x.period_start AND p.period_end = x.period_end
),
l2w AS (
    SELECT x.*,
           max(CASE WHEN x.is_primary THEN 1 ELSE 0 END) OVER (
               PARTITION BY x.grp, x.flow_type, x.unit, x.period_type, x.period_start, x.period_end)
               AS group_primary,
           coalesce(sum(CASE WHEN x.is_candidate THEN 1 ELSE 0 END) OVER (
               PARTITION BY x.grp, x.flow_type, x.unit, x.period_type, x.period_start, x.period_end
               ORDER BY x.is_primary DESC, x.value ASC NULLS LAST, x.reporter_iso3
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS n_before,
           coalesce(sum(CASE WHEN x.is_candidate THEN x.value ELSE 0 END) OVER (
               PARTITION BY x.grp, x.flow_type, x.unit, x.period_type, x.period_start, x.period_end
               ORDER BY x.is_primary DESC, x.value ASC NULLS LAST, x.reporter_iso3
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS s_before
    FROM l2c x
),
l2s AS (
    SELECT reporter_iso3, conference, flow_type, unit, period_type, period_start, period_end, value,
           is_primary,
           is_primary OR (is_candidate AND has_parent AND (
               (parent_suppressed AND n_before < 1)
               OR (NOT parent_suppressed AND group_primary = 1 AND NOT (n_before >= 2 AND s_before >= k))
           )) AS suppressed
    FROM l2w
),
l3c AS (
    SELECT x.*, k.k, p.conference,
           p.suppressed AS parent_suppressed,
           coalesce(x.value > 0 AND x.value < k.k, false) AS is_primary,
           coalesce(x.value > 0, false) AS is_candidate
    FROM cell x
    CROSS JOIN k
    JOIN l2s p
      ON p.reporter_iso3 = x.reporter_iso3
     AND p.flow_type = x.flow_type AND p.unit = x.unit AND p.period_type = x.period_type
     AND p.period_start = x.period_start AND p.period_end = x.period_end
),
l3w AS (
    SELECT x.*,
           max(CASE WHEN x.is_primary THEN 1 ELSE 0 END) OVER (
               PARTITION BY x.reporter_iso3, x.flow_type, x.unit, x.period_type, x.period_start, x.period_end)
               AS group_primary,
           coalesce(sum(CASE WHEN x.is_candidate THEN 1 ELSE 0 END) OVER (
               PARTITION BY x.reporter_iso3, x.flow_type, x.unit, x.period_type, x.period_start, x.period_end
               ORDER BY x.is_primary DESC, x.value ASC NULLS LAST, x.citizenship_iso3
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS n_before,
           coalesce(sum(CASE WHEN x.is_candidate THEN x.value ELSE 0 END) OVER (
               PARTITION BY x.reporter_iso3, x.flow_type, x.unit, x.period_type, x.period_start, x.period_end
               ORDER BY x.is_primary DESC, x.value ASC NULLS LAST, x.citizenship_iso3
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS s_before
    FROM l3c x
),
l3s AS (
    SELECT reporter_iso3, conference, citizenship_iso3, flow_type, unit, period_type, period_start,
           period_end, value, is_primary,
           is_primary OR (is_candidate AND (
               (parent_suppressed AND n_before < 1)
               OR (NOT parent_suppressed AND group_primary = 1 AND NOT (n_before >= 2 AND s_before >= k))
           )) AS suppressed
    FROM l3w
),
u AS (
    SELECT 'all' AS level, region, CAST(NULL AS VARCHAR) AS reporter_iso3,
           CAST(NULL AS VARCHAR) AS citizenship_iso3, flow_type, unit, period_type, period_start,
           period_end, value, is_primary, suppressed
    FROM l0s
    UNION ALL
    SELECT 'conference', region, CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), flow_type, unit,
           period_type, period_start, period_end, value, is_primary, suppressed
    FROM l1s
    UNION ALL
    SELECT 'reporter', conference, reporter_iso3, CAST(NULL AS VARCHAR), flow_type, unit,
           period_type, period_start, period_end, value, is_primary, suppressed
    FROM l2s
    UNION ALL
    SELECT 'citizenship', conference, reporter_iso3, citizenship_iso3, flow_type, unit,
           period_type, period_start, period_end, value, is_primary, suppressed
    FROM l3s
)
SELECT level, region, reporter_iso3, citizenship_iso3, flow_type, unit, period_type, period_start,
       period_end, value AS true_value,
       CASE WHEN suppressed THEN CAST(NULL AS DOUBLE PRECISION) ELSE value END AS value,
       suppressed OR value IS NULL AS suppressed,
       CASE WHEN value IS NULL THEN 'source'
            WHEN is_primary THEN 'primary'
            WHEN suppressed THEN 'secondary' END AS suppression
FROM u;

-- Public: reporter totals per flow type, unit and period (any period type); source_used: the
-- sources whose figures the row adds (one source per overlap).
CREATE VIEW pub_flow_by_period AS
SELECT d.reporter_iso3,
       r.name_es AS reporter_es, r.name_en AS reporter_en, r.name_pt AS reporter_pt, r.name_fr AS reporter_fr,
       d.region AS conference,
       d.flow_type, ft.label_es AS flow_type_es, ft.label_en AS flow_type_en,
       ft.label_pt AS flow_type_pt, ft.label_fr AS flow_type_fr,
       d.unit, u.label_es AS unit_es, u.label_en AS unit_en, u.label_pt AS unit_pt, u.label_fr AS unit_fr,
       d.period_type, d.period_start, d.period_end,
       d.value, d.suppressed, d.suppression, su.source_used
FROM v_disclosure d
LEFT JOIN dim_country r ON r.iso3 = d.reporter_iso3
LEFT JOIN dim_flow_type ft ON ft.code = d.flow_type
LEFT JOIN dim_unit u ON u.code = d.unit
LEFT JOIN (
    SELECT reporter_iso3, flow_type, unit, period_type, period_start, period_end,
           string_agg(DISTINCT source_id, ', ' ORDER BY source_id) AS source_used
    FROM v_fact_precedence
    WHERE used
    GROUP BY reporter_iso3, flow_type, unit, period_type, period_start, period_end
) su ON su.reporter_iso3 = d.reporter_iso3 AND su.flow_type = d.flow_type AND su.unit = d.unit
    AND su.period_type = d.period_type AND su.period_start = d.period_start AND su.period_end = d.period_end
WHERE d.level = 'reporter';

-- Public: monthly flows by reporter and flow type.
CREATE VIEW pub_flow_monthly AS
SELECT p.*, mn.label_es AS month_es, mn.label_en AS month_en, mn.label_pt AS month_pt, mn.label_fr AS month_fr
FROM pub_flow_by_period p
LEFT JOIN dim_month_name mn ON mn.month = CAST(EXTRACT(MONTH FROM p.period_start) AS INTEGER)
WHERE p.period_type = 'M';

-- Public: corridor matrix, citizenship -> reporter.
CREATE VIEW pub_corridor AS
SELECT d.citizenship_iso3,
       c.name_es AS citizenship_es, c.name_en AS citizenship_en,
       c.name_pt AS citizenship_pt, c.name_fr AS citizenship_fr,
       d.reporter_iso3,
       r.name_es AS reporter_es, r.name_en AS reporter_en, r.name_pt AS reporter_pt, r.name_fr AS reporter_fr,
       d.region AS reporter_conference,
       d.flow_type, ft.label_es AS flow_type_es, ft.label_en AS flow_type_en,
       ft.label_pt AS flow_type_pt, ft.label_fr AS flow_type_fr,
       d.unit, u.label_es AS unit_es, u.label_en AS unit_en, u.label_pt AS unit_pt, u.label_fr AS unit_fr,
       d.period_type, d.period_start, d.period_end,
       d.value, d.suppressed, d.suppression
FROM v_disclosure d
LEFT JOIN dim_country c ON c.iso3 = d.citizenship_iso3
LEFT JOIN dim_country r ON r.iso3 = d.reporter_iso3
LEFT JOIN dim_flow_type ft ON ft.code = d.flow_type
LEFT JOIN dim_unit u ON u.code = d.unit
WHERE d.level = 'citizenship';

-- Public: regional totals (CRM, CSM, ALL).
CREATE VIEW pub_regional_totals AS
SELECT d.region, g.label_es AS region_es, g.label_en AS region_en, g.label_pt AS region_pt, g.label_fr AS region_fr,
       d.flow_type, ft.label_es AS flow_type_es, ft.label_en AS flow_type_en,
       ft.label_pt AS flow_type_pt, ft.label_fr AS flow_type_fr,
       d.unit, u.label_es AS unit_es, u.label_en AS unit_en, u.label_pt AS unit_pt, u.label_fr AS unit_fr,
       d.period_type, d.period_start, d.period_end,
       d.value, d.suppressed, d.suppression
FROM v_disclosure d
LEFT JOIN dim_conference g ON g.code = d.region
LEFT JOIN dim_flow_type ft ON ft.code = d.flow_type
LEFT JOIN dim_unit u ON u.code = d.unit
WHERE d.level IN ('all', 'conference');

-- Public: year-over-year change, computed only from published figures (a suppressed figure on
-- either side gives no change).
-- Each period and the same period a year before: pub_flow_by_period computed once (MATERIALIZED:
-- inlined twice, its disclosure computation ran twice; 1.25 s -> 0.76 s on 20 M facts).
CREATE VIEW pub_flow_yoy AS
WITH b AS MATERIALIZED (SELECT * FROM pub_flow_by_period)
SELECT c.reporter_iso3, c.reporter_es, c.reporter_en, c.reporter_pt, c.reporter_fr, c.conference,
       c.flow_type, c.flow_type_es, c.flow_type_en, c.flow_type_pt, c.flow_type_fr,
       c.unit, c.unit_es, c.unit_en, c.unit_pt, c.unit_fr,
       c.period_type, c.period_start, c.period_end,
       c.value, c.suppressed,
       p.value AS value_previous_year, p.suppressed AS suppressed_previous_year,
       c.value - p.value AS change,
       CASE WHEN p.value > 0 THEN CAST(100 AS DOUBLE PRECISION) * (c.value - p.value) / p.value END
           AS change_pct
FROM b c
LEFT JOIN b p
       ON p.reporter_iso3 = c.reporter_iso3 AND p.flow_type = c.flow_type AND p.unit = c.unit
      AND p.period_type = c.period_type
      AND p.period_start = CAST(c.period_start - INTERVAL '1 year' AS DATE);

-- Mirror pairs (data/mirror_pairs.yaml, dim_mirror_pair): each side's figure per period, the
-- period of side B moved back by the pair's lag onto A's. A side takes the facts of its reporter
-- and unit whose flow type (or its parent) is one of the side's, and only its citizenship and
-- counterpart when the pair names them. rest: the reporter's figure for the other counterparts
-- (pub_mirror needs it to publish a counterpart's part safely).
CREATE VIEW v_mirror_sides AS
WITH s AS (
    SELECT pair_id, 'A' AS side, a_reporter_iso3 AS reporter_iso3, a_flow_type AS flow_types, a_unit AS unit,
           a_citizenship_iso3 AS citizenship_iso3, a_counterpart_iso3 AS counterpart_iso3, 0 AS lag_months
    FROM dim_mirror_pair
    UNION ALL
    SELECT pair_id, 'B' AS side, b_reporter_iso3, b_flow_type, b_unit, b_citizenship_iso3,
           b_counterpart_iso3, lag_months
    FROM dim_mirror_pair
),
f AS (
    SELECT s.pair_id, s.side, s.reporter_iso3, s.flow_types, s.unit, s.citizenship_iso3,
           s.counterpart_iso3 AS wanted_counterpart, s.lag_months,
           f.counterpart_iso3, f.period_type, f.period_start, f.period_end, f.value
    FROM s
    JOIN fact_flow f
      ON f.reporter_iso3 = s.reporter_iso3 AND f.unit = s.unit
     AND (s.citizenship_iso3 IS NULL OR f.citizenship_iso3 = s.citizenship_iso3)
    LEFT JOIN dim_flow_type ft ON ft.code = f.flow_type
    WHERE position(',' || f.flow_type || ',' IN ',' || s.flow_types || ',') > 0
       OR position(',' || coalesce(ft.parent, f.flow_type) || ',' IN ',' || s.flow_types || ',') > 0
),
t AS (
    SELECT pair_id, side, reporter_iso3, flow_types, unit, citizenship_iso3, wanted_counterpart,
           lag_months, period_type, period_start, period_end,
           sum(value) FILTER (WHERE wanted_counterpart IS NULL OR counterpart_iso3 = wanted_counterpart)
               AS value,
           count(*) FILTER (WHERE wanted_counterpart IS NULL OR counterpart_iso3 = wanted_counterpart)
               AS observations,
           sum(value) FILTER (WHERE counterpart_iso3 <> wanted_counterpart) AS rest
    FROM f
    GROUP BY pair_id, side, reporter_iso3, flow_types, unit, citizenship_iso3, wanted_counterpart,
             lag_months, period_type, period_start, period_end
)
SELECT pair_id, side, reporter_iso3, flow_types, unit, citizenship_iso3,
       wanted_counterpart AS counterpart_iso3, period_type,
       CAST(period_start - lag_months * INTERVAL '1 month' AS DATE) AS period_start,
       CAST(CAST(period_end + INTERVAL '1 day' AS DATE) - lag_months * INTERVAL '1 month' - INTERVAL '1 day'
            AS DATE) AS period_end,
       period_start AS reported_period_start,
       value, observations, rest
FROM t
WHERE observations > 0;

-- Each side's value as compared, twice: the true figure (published = false) and the published one
-- (published = true). A published side is NULL when any figure it adds is suppressed in
-- v_disclosure (level citizenship when the pair names a citizenship, else reporter); a
-- counterpart's part of a reporter's flow (not in the disclosure tree) is published only when it
-- and the rest of the reporter's figure are each 0 or at least the disclosure threshold.
CREATE VIEW v_mirror_side_values AS
WITH k AS (
    SELECT CAST(value AS DOUBLE PRECISION) AS k FROM config WHERE key = 'disclosure_threshold'
),
d AS (
    SELECT s.pair_id, s.side, s.period_type, s.reported_period_start,
           max(CASE WHEN v.suppressed THEN 1 ELSE 0 END) AS suppressed
    FROM v_mirror_sides s
    JOIN v_disclosure v
      ON v.reporter_iso3 = s.reporter_iso3 AND v.unit = s.unit AND v.period_type = s.period_type
     AND v.period_start = s.reported_period_start
     AND ((s.citizenship_iso3 IS NULL AND v.level = 'reporter')
          OR (v.level = 'citizenship' AND v.citizenship_iso3 = s.citizenship_iso3))
    LEFT JOIN dim_flow_type ft ON ft.code = v.flow_type
    WHERE position(',' || v.flow_type || ',' IN ',' || s.flow_types || ',') > 0
       OR position(',' || coalesce(ft.parent, v.flow_type) || ',' IN ',' || s.flow_types || ',') > 0
    GROUP BY s.pair_id, s.side, s.period_type, s.reported_period_start
),
ps AS (
    SELECT s.pair_id, s.side, s.period_type, s.period_start, s.period_end,
           CASE WHEN coalesce(d.suppressed, 1) = 1 THEN CAST(NULL AS DOUBLE PRECISION)
                WHEN s.counterpart_iso3 IS NOT NULL
                     AND NOT ((s.value = 0 OR s.value >= k.k)
                              AND (coalesce(s.rest, 0) = 0 OR s.rest >= k.k)) THEN CAST(NULL AS DOUBLE PRECISION)
                ELSE CAST(s.value AS DOUBLE PRECISION) END AS value
    FROM v_mirror_sides s
    CROSS JOIN k
    LEFT JOIN d
           ON d.pair_id = s.pair_id AND d.side = s.side AND d.period_type = s.period_type
          AND d.reported_period_start = s.reported_period_start
)
SELECT false AS published, pair_id, side, period_type, period_start, period_end,
       CAST(value AS DOUBLE PRECISION) AS value
FROM v_mirror_sides
UNION ALL
SELECT true AS published, pair_id, side, period_type, period_start, period_end, value
FROM ps;

-- The comparison of the two sides, once for the true and once for the published values: both
-- sides per period (A's period), the difference A - B and the asymmetry index
-- (A - B) / ((A + B) / 2), within the pair's tolerance or not (NULL when a side is missing).
CREATE VIEW v_mirror_compared AS
WITH j AS (
    SELECT coalesce(a.published, b.published) AS published,
           coalesce(a.pair_id, b.pair_id) AS pair_id, coalesce(a.period_type, b.period_type) AS period_type,
           coalesce(a.period_start, b.period_start) AS period_start,
           coalesce(a.period_end, b.period_end) AS period_end,
           a.value AS a_value, b.value AS b_value
    FROM (SELECT * FROM v_mirror_side_values WHERE side = 'A') a
    FULL JOIN (SELECT * FROM v_mirror_side_values WHERE side = 'B') b
           ON b.published = a.published AND b.pair_id = a.pair_id AND b.period_type = a.period_type
          AND b.period_start = a.period_start
),
x AS (
    SELECT j.*, j.a_value - j.b_value AS difference,
           CASE WHEN j.a_value + j.b_value = 0 THEN CAST(0 AS DOUBLE PRECISION)
                WHEN j.a_value + j.b_value > 0 THEN (j.a_value - j.b_value) / ((j.a_value + j.b_value) / 2) END
               AS asymmetry
    FROM j
)
SELECT x.published, x.pair_id, p.label_es AS pair_label_es, p.label_en AS pair_label_en,
       p.label_pt AS pair_label_pt, p.label_fr AS pair_label_fr, x.period_type, x.period_start, x.period_end,
       p.a_reporter_iso3, p.a_flow_type, p.a_unit, x.a_value,
       p.b_reporter_iso3, p.b_flow_type, p.b_unit, x.b_value,
       x.difference, x.asymmetry, p.tolerance,
       CASE WHEN x.asymmetry IS NOT NULL THEN abs(x.asymmetry) <= p.tolerance END AS within_tolerance,
       p.note
FROM x
JOIN dim_mirror_pair p ON p.pair_id = x.pair_id;

-- Mirror checks on the true figures: for analysts; pub_mirror is the published comparison.
CREATE VIEW v_mirror AS
SELECT pair_id, pair_label_es, pair_label_en, pair_label_pt, pair_label_fr, period_type, period_start,
       period_end, a_reporter_iso3, a_flow_type, a_unit, a_value, b_reporter_iso3, b_flow_type, b_unit,
       b_value, difference, asymmetry, tolerance, within_tolerance, note
FROM v_mirror_compared WHERE NOT published;

-- Public mirror checks: the same comparison of the published figures (v_mirror_side_values).
CREATE VIEW pub_mirror AS
SELECT pair_id, pair_label_es, pair_label_en, pair_label_pt, pair_label_fr, period_type, period_start,
       period_end, a_reporter_iso3, a_flow_type, a_unit, a_value, b_reporter_iso3, b_flow_type, b_unit,
       b_value, difference, asymmetry, tolerance, within_tolerance, note
FROM v_mirror_compared WHERE published;
