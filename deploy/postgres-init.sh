#!/usr/bin/env bash
# First start of the PostgreSQL container (docker-entrypoint-initdb.d): the observatory's warehouse
# beside Airflow's metadata database. Role omh owns database omh; its password is OMH_DB_PASSWORD
# from .env (docker-compose.yml passes it to this container). The analysts' roles are created here
# so that the warehouse user needs no CREATEROLE (sql/grants.sql grants them the views).
set -euo pipefail
: "${OMH_DB_PASSWORD:?OMH_DB_PASSWORD must be set (see .env.example)}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v omh_password="$OMH_DB_PASSWORD" <<'SQL'
CREATE ROLE omh LOGIN PASSWORD :'omh_password';
CREATE DATABASE omh OWNER omh;
CREATE ROLE omh_analyst NOLOGIN;
CREATE ROLE omh_public NOLOGIN;
SQL
