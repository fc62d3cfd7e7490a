-- Roles of the PostgreSQL warehouse, applied after the views at every run (idempotent).
-- DuckDB has no roles: its file is protected by file-system permissions.
--
--   omh_analyst: reads every view (v_* and pub_*) of the warehouse schema, and nothing else:
--                no table, no write. Grant it to analysts' login roles:  GRANT omh_analyst TO alice;
--   omh_public:  reads the pub_* views only (disclosure-controlled), e.g. for a public API.
--
-- Creating the roles needs CREATEROLE; without it the warehouse user only warns, and an operator
-- creates them once (CREATE ROLE omh_analyst NOLOGIN; CREATE ROLE omh_public NOLOGIN).

-- @postgres
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['omh_analyst', 'omh_public'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION
                WHEN duplicate_object OR unique_violation THEN NULL;  -- created meanwhile
                WHEN insufficient_privilege THEN
                    RAISE WARNING 'cannot create role %: ask an operator to create it', r;
            END;
        END IF;
    END LOOP;
END
$$;

-- @postgres
DO $$
DECLARE
    s text := current_schema();
    v record;
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['omh_analyst', 'omh_public'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, r);
            EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', s, r);
            FOR v IN SELECT table_name FROM information_schema.views WHERE table_schema = s LOOP
                IF r = 'omh_analyst' OR v.table_name LIKE 'pub\_%' THEN
                    EXECUTE format('GRANT SELECT ON %I.%I TO %I', s, v.table_name, r);
                END IF;
            END LOOP;
        END IF;
    END LOOP;
END
$$;
