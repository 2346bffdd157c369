-- Kuzet's runtime connects as a role that owns nothing (README, "Security"): the migration runner
-- (console.db.migrate) gives it SELECT, INSERT, UPDATE, DELETE on the tables and USAGE on the
-- sequences, by default privileges and by kuzet_grant_runtime() after every migration run. It never
-- gets TRUNCATE, REFERENCES or TRIGGER, and as it owns no table it cannot disable a trigger.

-- Tables whose rows the runtime may add and read but never change, delete or truncate.
CREATE TABLE kuzet_append_only (
    table_name    text PRIMARY KEY
);

-- A migration marks its append-only table with `SELECT kuzet_append_only('my_table');`: the table is
-- recorded (so later grants keep it append-only) and UPDATE, DELETE and TRUNCATE are revoked from
-- every role but its owner. Works whatever the runtime role is called, and when none exists yet.
CREATE FUNCTION kuzet_append_only(tbl regclass) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    g oid;
BEGIN
    INSERT INTO kuzet_append_only (table_name) VALUES (tbl::text) ON CONFLICT DO NOTHING;
    FOR g IN SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
             WHERE c.oid = tbl AND a.grantee <> c.relowner AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
    LOOP
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %s FROM %s', tbl,
                       CASE WHEN g = 0 THEN 'PUBLIC' ELSE g::regrole::text END);
    END LOOP;
END $$;
REVOKE EXECUTE ON FUNCTION kuzet_append_only(regclass) FROM PUBLIC;

-- The runtime role's grants: what it lacks on every table of the schema (tables made before the
-- default privileges were set), read-only on the bookkeeping tables, append-only where registered.
-- A table on which the runtime already has some grant is left as its migration made it.
CREATE FUNCTION kuzet_grant_runtime(runtime regrole) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t record;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %s', runtime);
    FOR t IN SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v')
               AND NOT EXISTS (SELECT FROM aclexplode(c.relacl) a WHERE a.grantee = runtime)
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %s', t.name, runtime);
    END LOOP;
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %s', runtime);
    EXECUTE format('REVOKE ALL ON schema_migrations, kuzet_append_only FROM %s', runtime);
    EXECUTE format('GRANT SELECT ON schema_migrations, kuzet_append_only TO %s', runtime);
    FOR t IN SELECT to_regclass(table_name) AS name FROM kuzet_append_only LOOP
        IF t.name IS NOT NULL THEN
            PERFORM kuzet_append_only(t.name);
        END IF;
    END LOOP;
END $$;
REVOKE EXECUTE ON FUNCTION kuzet_grant_runtime(regrole) FROM PUBLIC;

-- The history: signals are stored once and kept; the audit log and the alarms' events are appended.
SELECT kuzet_append_only('signals');
SELECT kuzet_append_only('audit_log');
SELECT kuzet_append_only('alarm_events');
