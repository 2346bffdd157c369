-- A session that ends (logout, expiry sweep, a user disabled, deleted or given another role) is
-- announced on `kuzet_sessions` with the user's id, so the web closes that user's open websockets at
-- once instead of at their next periodic check. Triggers, so every path that ends a session counts.
CREATE FUNCTION kuzet_sessions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'sessions' THEN
        PERFORM pg_notify('kuzet_sessions', OLD.user_id::text);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('kuzet_sessions', OLD.id::text);
    ELSIF OLD.active IS DISTINCT FROM NEW.active OR OLD.role IS DISTINCT FROM NEW.role THEN
        PERFORM pg_notify('kuzet_sessions', NEW.id::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER sessions_ended AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION kuzet_sessions_notify();
CREATE TRIGGER users_sessions_changed AFTER UPDATE OF active, role OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION kuzet_sessions_notify();
