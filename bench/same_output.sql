-- The same-output floor (issue 17): the bench file turned, by hand, into exactly the rows and
-- the lake `omh ingest` produces for it, with the pipeline's schema of the day and no project code.
-- It knows the one layout of the bench file (the `col_entradas_extranjeros` contract) and checks
-- nothing: the pipeline's extra cost over it is the price of being general and of checking.
-- Parameters (substituted by bench/run.py, `same_output` step): ${csv} ${lake} ${codelists}
-- ${source_file} ${sha256} ${vintage} ${loaded_at}. Run in a fresh DuckDB database file, after
-- bench/same_output_tables.sql (the tables, shared with the PostgreSQL counterpart).

-- The code lists the contract needs: M49 -> ISO 3166 alpha-3, Spanish month names -> number.
CREATE TEMP TABLE m49 AS
SELECT CAST(m49 AS INTEGER) AS m49, iso3
FROM read_csv('${codelists}/countries.csv', all_varchar = true) WHERE m49 IS NOT NULL AND m49 <> '';
CREATE TEMP TABLE month_no AS
SELECT CAST(month AS INTEGER) AS month, label_es FROM read_csv('${codelists}/months.csv', all_varchar = true);

-- The file as it is, in file order (the only statement that needs it): a row's rowid + 2 is its
-- line in the file (the header is line 1). Typed by hand: the bench file writes plain integers.
SET preserve_insertion_order = true;
CREATE TABLE raw AS
SELECT * FROM read_csv('${csv}', header = true, delim = ',', quote = '"', auto_detect = false,
    columns = {'Año': 'INTEGER', 'Mes': 'VARCHAR', 'Nacionalidad': 'VARCHAR', 'Codigo Iso 3166': 'INTEGER',
               'Femenino': 'DOUBLE', 'Masculino': 'DOUBLE', 'Indefinido': 'DOUBLE', 'Total': 'DOUBLE',
               'Latitud - Longitud': 'VARCHAR'});
SET preserve_insertion_order = false;

-- The file's load: the first of a fresh warehouse.
INSERT INTO dim_load VALUES (1, 'col_entradas_extranjeros', '${source_file}', '${sha256}', DATE '${vintage}',
                             TIMESTAMP '${loaded_at}');
-- The observations: one per stated cell, and the remainder of Total kept as sex unknown (_U),
-- estimated (E), in the Total column's lineage; the code lists joined once per row, a row's cells
-- unnested in the projection. No index: the DuckDB warehouse has none (it scans by zone maps; the
-- scope index is PostgreSQL's). The ART index this script built took 26 s for the 2 M-row file's
-- 4 M observations and 125 s for 20 M under the 400 MB memory limit (a shared, loaded machine):
-- the likeliest cause of the crawl at 10 M rows (not re-run at 10 M), and not the pipeline's output.
INSERT INTO fact_flow
SELECT 'col_entradas_extranjeros', 'COL', 'destination', 'ENT_REG', c.iso3, '_Z',
       c.period_start, last_day(c.period_start), 'M', c.sex, '_T', 'events',
       CASE WHEN c.remainder THEN 'location=' || c.location || '; remainder' ELSE 'location=' || c.location END,
       c.value, c.obs_status, 'F', CAST(NULL AS INTEGER), 1, CAST(NULL AS VARCHAR),
       c.source_row, c.source_column, c.year, c.month, 'new'
FROM (
    SELECT m.iso3, make_date(r."Año", mn.month, 1) AS period_start, r."Latitud - Longitud" AS location,
           r.rowid + 2 AS source_row, r."Año" AS year, mn.month,
           unnest([
               {'sex': 'F', 'value': r."Femenino", 'obs_status': 'A', 'source_column': 'Femenino', 'remainder': false},
               {'sex': 'M', 'value': r."Masculino", 'obs_status': 'A', 'source_column': 'Masculino', 'remainder': false},
               {'sex': '_U', 'value': r."Indefinido", 'obs_status': 'A', 'source_column': 'Indefinido', 'remainder': false},
               {'sex': '_U', 'value': r."Total" - (r."Femenino" + r."Masculino" + coalesce(r."Indefinido", 0)),
                'obs_status': 'E', 'source_column': 'Total', 'remainder': true}
           ], recursive := true)
    FROM raw r
    JOIN m49 m ON m.m49 = r."Codigo Iso 3166"
    JOIN month_no mn ON mn.label_es = lower(r."Mes")
) c
WHERE c.value IS NOT NULL AND (NOT c.remainder OR c.value <> 0);  -- a remainder both ways (decision 0001)

-- The lake: one Parquet file per reporter, year and month, the partition keys in the path only;
-- self-describing: the load's lineage by name in every row, no surrogate key.
COPY (
    SELECT f.source_id, f.reporter_iso3, f.reporter_role, f.flow_type, f.citizenship_iso3, f.counterpart_iso3,
           f.period_start, f.period_end, f.period_type, f.sex, f.age_band, f.unit, f.detail, f.value,
           f.obs_status, f.conf_status, f.rounding_base, l.source_file, l.source_sha256, f.source_sheet,
           f.source_row, f.source_column, l.vintage, l.loaded_at, f.year, f.month
    FROM fact_flow f JOIN dim_load l ON l.load_id = f.load_id
) TO '${lake}' (
    FORMAT parquet, COMPRESSION zstd, PARTITION_BY (reporter_iso3, year, month),
    FILENAME_PATTERN 'col_entradas_extranjeros_{i}', OVERWRITE_OR_IGNORE
);
