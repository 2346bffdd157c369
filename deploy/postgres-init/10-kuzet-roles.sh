#!/bin/sh
# Runs once, when the database volume is first created (the official image runs
# /docker-entrypoint-initdb.d as its superuser): Kuzet's two roles (README, "Security").
# kuzet_owner owns the database and runs the migrations; kuzet_app is what the running post connects
# as and owns nothing (the migrations grant it what it needs).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v owner_pw="$KUZET_DB_OWNER_PASSWORD" -v app_pw="$KUZET_DB_APP_PASSWORD" -v db="$POSTGRES_DB" <<'SQL'
CREATE ROLE kuzet_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_pw';
CREATE ROLE kuzet_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_pw';
ALTER DATABASE :"db" OWNER TO kuzet_owner;
ALTER SCHEMA public OWNER TO kuzet_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
