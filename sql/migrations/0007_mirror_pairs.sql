-- Schema version 7: mirror pairs (issue 19).
--
-- Two flows reported by two member states that count the same movements (Panama's Darién transit
-- and Costa Rica's entries from Panama; Mexico's returns and those Guatemala or Honduras receive),
-- declared in data/mirror_pairs.yaml and reseeded from it on every load like the other dimensions
-- (transforms/contracts/mirror_pairs.py). The views v_mirror and pub_mirror compare the two sides.
--   *_flow_type      the side's flow type codes, comma-separated (a parent covers its children)
--   *_citizenship_iso3, *_counterpart_iso3   the part of the reporter's flow taken (NULL: all)
--   lag_months       B reports the same movements this many months after A
--   tolerance        the largest absolute asymmetry |A - B| / ((A + B) / 2) taken as a match
CREATE TABLE IF NOT EXISTS dim_mirror_pair (
    pair_id              VARCHAR PRIMARY KEY,
    sort_order           INTEGER NOT NULL,
    label_es             VARCHAR NOT NULL,
    label_en             VARCHAR NOT NULL,
    label_pt             VARCHAR NOT NULL,
    label_fr             VARCHAR NOT NULL,
    a_reporter_iso3      VARCHAR NOT NULL,
    a_flow_type          VARCHAR NOT NULL,
    a_unit               VARCHAR NOT NULL,
    a_citizenship_iso3   VARCHAR,
    a_counterpart_iso3   VARCHAR,
    b_reporter_iso3      VARCHAR NOT NULL,
    b_flow_type          VARCHAR NOT NULL,
    b_unit               VARCHAR NOT NULL,
    b_citizenship_iso3   VARCHAR,
    b_counterpart_iso3   VARCHAR,
    lag_months           INTEGER NOT NULL,
    tolerance            DOUBLE PRECISION NOT NULL,
    note                 VARCHAR
);

-- A source outside the delivery calendar (contract delivery.calendar: false, e.g. a counterpart
-- feed sent on request) has no delivery slots: the completeness grid expects nothing of it.
-- NULL (sources seeded before) counts as on the calendar.
ALTER TABLE dim_source ADD COLUMN on_calendar BOOLEAN;
