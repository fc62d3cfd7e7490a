-- The same-output floor (issue 17): the bench file turned, by hand, into exactly the rows and
-- the lake `omh ingest` produces for it, with the pipeline's schema of the day and no project code.
-- It knows the one layout of the bench file (the `col_entradas_extranjeros` contract) and checks
-- nothing: the pipeline's extra cost over it is the price of being general and of checking.
-- Parameters (substituted by bench/run.py, `same_output` step): ${csv} ${lake} ${codelists}
-- ${source_file} ${sha256} ${vintage} ${loaded_at}. Run in a fresh DuckDB database file.

-- The code lists the contract needs: M49 -> ISO 3166 alpha-3, Spanish month names -> number.
CREATE TEMP TABLE m49 AS
SELECT CAST(m49 AS INTEGER) AS m49, iso3
FROM read_csv('${codelists}/countries.csv', all_varchar = true) WHERE m49 IS NOT NULL AND m49 <> '';
CREATE TEMP TABLE month_no AS
SELECT CAST(month AS INTEGER) AS month, label_es FROM read_csv('${codelists}/months.csv', all_varchar = true);

-- The file, its data rows numbered as the file numbers its lines (the header is line 1).
CREATE TEMP TABLE raw AS
SELECT *, CAST(row_number() OVER () + 1 AS BIGINT) AS source_row
FROM read_csv('${csv}', header = true, all_varchar = true, delim = ',', quote = '"');

-- One row per data row with its dimensions resolved and its cells as numbers.
CREATE TEMP TABLE rows AS
SELECT r.source_row,
       m.iso3 AS citizenship_iso3,
       make_date(CAST(r."Año" AS INTEGER), mn.month, 1) AS period_start,
       'location=' || r."Latitud - Longitud" AS detail,
       CAST(replace(r."Femenino", ',', '') AS DOUBLE) AS f,
       CAST(replace(r."Masculino", ',', '') AS DOUBLE) AS m,
       CAST(nullif(replace(r."Indefinido", ',', ''), '') AS DOUBLE) AS u,
       CAST(replace(r."Total", ',', '') AS DOUBLE) AS total
FROM raw r
JOIN m49 m ON m.m49 = CAST(r."Codigo Iso 3166" AS INTEGER)
JOIN month_no mn ON mn.label_es = lower(r."Mes");

-- The observations: one per stated cell, and the remainder of Total kept as sex unknown (_U),
-- estimated (E), in the Total column's lineage.
CREATE TEMP TABLE obs AS
SELECT source_row, citizenship_iso3, period_start, detail, 'F' AS sex, f AS value, 'A' AS obs_status,
       'Femenino' AS source_column FROM rows
UNION ALL
SELECT source_row, citizenship_iso3, period_start, detail, 'M', m, 'A', 'Masculino' FROM rows
UNION ALL
SELECT source_row, citizenship_iso3, period_start, detail, '_U', u, 'A', 'Indefinido' FROM rows
WHERE u IS NOT NULL
UNION ALL
SELECT source_row, citizenship_iso3, period_start, detail || '; remainder', '_U',
       total - (f + m + coalesce(u, 0)), 'E', 'Total' FROM rows
WHERE total - (f + m + coalesce(u, 0)) > 0;

-- fact_flow as the warehouse holds it (27 columns, the scope index).
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
INSERT INTO fact_flow
SELECT 'col_entradas_extranjeros', 'COL', 'destination', 'ENT_REG', citizenship_iso3, '_Z',
       period_start, last_day(period_start), 'M', sex, '_T', 'events', detail, value, obs_status, 'F',
       CAST(NULL AS INTEGER), '${source_file}', '${sha256}', CAST(NULL AS VARCHAR), source_row,
       source_column, DATE '${vintage}', TIMESTAMP '${loaded_at}',
       year(period_start), month(period_start), 'new'
FROM obs;
CREATE INDEX fact_flow_scope ON fact_flow (source_id, period_start, period_end);

-- The lake: one Parquet file per reporter, year and month, the partition keys in the path only.
COPY (
    SELECT * EXCLUDE (change) FROM fact_flow
) TO '${lake}' (
    FORMAT parquet, COMPRESSION zstd, PARTITION_BY (reporter_iso3, year, month),
    FILENAME_PATTERN 'col_entradas_extranjeros_{i}', OVERWRITE_OR_IGNORE
);
