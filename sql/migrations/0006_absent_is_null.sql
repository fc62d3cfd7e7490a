-- Schema version 6: an absent value is NULL in every dimension, never '' (issue 16).
--
-- Warehouses seeded before version 4 hold '' where a code list's cell is empty. As the parent of a
-- top-level flow type, '' made every grouping on the root flow type (coalesce(parent, code)) add the
-- top-level types together: entries and exits of Colombia in one row under a blank flow type.
-- Fixed in place: the dimensions keep their rows (the facts are not touched); the next seeding
-- writes NULL itself (transforms/storage/warehouse.py, _absent_as_null). A value of blanks only is as
-- absent as an empty one. Codes (the primary keys) are never blank.
UPDATE dim_country SET
    iso2 = CASE WHEN trim(iso2) = '' THEN NULL ELSE iso2 END,
    m49 = CASE WHEN trim(m49) = '' THEN NULL ELSE m49 END,
    name_es = CASE WHEN trim(name_es) = '' THEN NULL ELSE name_es END,
    name_en = CASE WHEN trim(name_en) = '' THEN NULL ELSE name_en END,
    name_pt = CASE WHEN trim(name_pt) = '' THEN NULL ELSE name_pt END,
    name_fr = CASE WHEN trim(name_fr) = '' THEN NULL ELSE name_fr END,
    conference = CASE WHEN trim(conference) = '' THEN NULL ELSE conference END;

UPDATE dim_flow_type SET
    parent = CASE WHEN trim(parent) = '' THEN NULL ELSE parent END,
    reporter_role = CASE WHEN trim(reporter_role) = '' THEN NULL ELSE reporter_role END,
    default_unit = CASE WHEN trim(default_unit) = '' THEN NULL ELSE default_unit END,
    label_es = CASE WHEN trim(label_es) = '' THEN NULL ELSE label_es END,
    label_en = CASE WHEN trim(label_en) = '' THEN NULL ELSE label_en END,
    label_pt = CASE WHEN trim(label_pt) = '' THEN NULL ELSE label_pt END,
    label_fr = CASE WHEN trim(label_fr) = '' THEN NULL ELSE label_fr END,
    definition_en = CASE WHEN trim(definition_en) = '' THEN NULL ELSE definition_en END;

UPDATE dim_sex SET
    label_es = CASE WHEN trim(label_es) = '' THEN NULL ELSE label_es END,
    label_en = CASE WHEN trim(label_en) = '' THEN NULL ELSE label_en END,
    label_pt = CASE WHEN trim(label_pt) = '' THEN NULL ELSE label_pt END,
    label_fr = CASE WHEN trim(label_fr) = '' THEN NULL ELSE label_fr END;

UPDATE dim_age_band SET
    label_es = CASE WHEN trim(label_es) = '' THEN NULL ELSE label_es END,
    label_en = CASE WHEN trim(label_en) = '' THEN NULL ELSE label_en END,
    label_pt = CASE WHEN trim(label_pt) = '' THEN NULL ELSE label_pt END,
    label_fr = CASE WHEN trim(label_fr) = '' THEN NULL ELSE label_fr END;

UPDATE dim_unit SET
    label_es = CASE WHEN trim(label_es) = '' THEN NULL ELSE label_es END,
    label_en = CASE WHEN trim(label_en) = '' THEN NULL ELSE label_en END,
    label_pt = CASE WHEN trim(label_pt) = '' THEN NULL ELSE label_pt END,
    label_fr = CASE WHEN trim(label_fr) = '' THEN NULL ELSE label_fr END;

UPDATE dim_obs_status SET
    label_es = CASE WHEN trim(label_es) = '' THEN NULL ELSE label_es END,
    label_en = CASE WHEN trim(label_en) = '' THEN NULL ELSE label_en END,
    label_pt = CASE WHEN trim(label_pt) = '' THEN NULL ELSE label_pt END,
    label_fr = CASE WHEN trim(label_fr) = '' THEN NULL ELSE label_fr END;

UPDATE dim_conference SET
    label_es = CASE WHEN trim(label_es) = '' THEN NULL ELSE label_es END,
    label_en = CASE WHEN trim(label_en) = '' THEN NULL ELSE label_en END,
    label_pt = CASE WHEN trim(label_pt) = '' THEN NULL ELSE label_pt END,
    label_fr = CASE WHEN trim(label_fr) = '' THEN NULL ELSE label_fr END;

-- dim_source is seeded from the contracts only when a run has them (`omh verify` seeds without):
-- fixed here, it does not wait for the next ingest.
UPDATE dim_source SET
    reporter_iso3 = CASE WHEN trim(reporter_iso3) = '' THEN NULL ELSE reporter_iso3 END,
    conference = CASE WHEN trim(conference) = '' THEN NULL ELSE conference END,
    title = CASE WHEN trim(title) = '' THEN NULL ELSE title END,
    agency = CASE WHEN trim(agency) = '' THEN NULL ELSE agency END,
    language = CASE WHEN trim(language) = '' THEN NULL ELSE language END,
    file_format = CASE WHEN trim(file_format) = '' THEN NULL ELSE file_format END,
    delivery_frequency = CASE WHEN trim(delivery_frequency) = '' THEN NULL ELSE delivery_frequency END,
    calendar = CASE WHEN trim(calendar) = '' THEN NULL ELSE calendar END;
