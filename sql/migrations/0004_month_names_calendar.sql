-- Schema version 4: what analysts group on beside the codes (issue 16).
--
-- The calendar a source reports in (monthly, us_fiscal_monthly, ...), so the views can give the
-- US fiscal year only where a source counts by it; seeded from the contracts like the rest of
-- dim_source.
ALTER TABLE dim_source ADD COLUMN calendar VARCHAR;

-- Month names in the four languages of the observatory, seeded from data/codelists/months.csv.
CREATE TABLE IF NOT EXISTS dim_month_name (
    month     INTEGER PRIMARY KEY,
    label_es  VARCHAR NOT NULL,
    label_en  VARCHAR NOT NULL,
    label_pt  VARCHAR NOT NULL,
    label_fr  VARCHAR NOT NULL
);
