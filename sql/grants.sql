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

-- omh_analyst_query(q): the sandbox of `omh sql` and `omh export` on PostgreSQL. SET ROLE alone
-- is not a sandbox when the session's login is a superuser: the query can set the role back
-- (set_config('role', ...) inside query_to_xml) and read server files. This function runs the
-- query as its owner, omh_analyst, in a security-definer context, where PostgreSQL refuses any
-- change of role or session authorization; STABLE: it cannot write either. Each row comes back
-- as JSON text (the query's column names come from the client's describe of the query).
-- Owning it by omh_analyst needs a superuser (or CREATE on the schema for omh_analyst); without
-- that the function is dropped again and `omh sql` refuses to run, saying why.
-- @postgres
DO $do$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'omh_analyst') THEN
        CREATE OR REPLACE FUNCTION omh_analyst_query(q text) RETURNS SETOF text
            LANGUAGE plpgsql STABLE SECURITY DEFINER AS $fn$
            BEGIN
                RETURN QUERY EXECUTE 'SELECT row_to_json(_q)::text FROM (' || q || E'\n) _q';
            END
            $fn$;
        REVOKE ALL ON FUNCTION omh_analyst_query(text) FROM PUBLIC;
        BEGIN
            ALTER FUNCTION omh_analyst_query(text) OWNER TO omh_analyst;
            GRANT EXECUTE ON FUNCTION omh_analyst_query(text) TO omh_analyst;
        EXCEPTION
            WHEN insufficient_privilege THEN
                DROP FUNCTION omh_analyst_query(text);
                RAISE WARNING 'cannot give omh_analyst_query to omh_analyst: omh sql will refuse to run';
        END;
    END IF;
END
$do$;
