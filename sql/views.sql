-- Reporting views for analysts. Views never add values of different units: every aggregate
-- groups by unit. Labels come in es/en/pt/fr from the dimensions.

-- Every observation with its labels.
CREATE OR REPLACE VIEW v_flow AS
SELECT f.*,
       r.name_es AS reporter_es, r.name_en AS reporter_en, r.name_pt AS reporter_pt, r.name_fr AS reporter_fr,
       r.conference,
       c.name_es AS citizenship_es, c.name_en AS citizenship_en,
       c.name_pt AS citizenship_pt, c.name_fr AS citizenship_fr,
       ft.label_es AS flow_type_es, ft.label_en AS flow_type_en,
       ft.label_pt AS flow_type_pt, ft.label_fr AS flow_type_fr,
       coalesce(ft.parent, f.flow_type) AS flow_type_root
FROM fact_flow f
LEFT JOIN dim_country r ON r.iso3 = f.reporter_iso3
LEFT JOIN dim_country c ON c.iso3 = f.citizenship_iso3
LEFT JOIN dim_flow_type ft ON ft.code = f.flow_type;

-- Monthly (or the source's own period) totals by reporter, root flow type and unit.
CREATE OR REPLACE VIEW v_flow_by_period AS
SELECT reporter_iso3, reporter_es, reporter_en, conference,
       flow_type_root AS flow_type, unit, period_type, period_start, period_end,
       sum(value) AS value,
       count(*) AS observations,
       count(*) FILTER (WHERE conf_status = 'S') AS suppressed_cells
FROM v_flow
GROUP BY ALL;

-- What each member state has delivered: files, observations, periods covered.
CREATE OR REPLACE VIEW v_reporter_summary AS
SELECT m.iso3 AS reporter_iso3, m.name_es, m.name_en, m.conference,
       count(DISTINCT f.source_id) AS sources,
       count(DISTINCT f.source_sha256) AS files,
       count(f.value) AS observations,
       min(f.period_start) AS first_period,
       max(f.period_end) AS last_period
FROM dim_country m
LEFT JOIN fact_flow f ON f.reporter_iso3 = m.iso3
WHERE m.is_member
GROUP BY ALL;
