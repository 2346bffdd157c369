-- Supervision: every supervised account has a deadline by which it must be heard from, and every
-- scheduled object a time by which it must be armed. Deadlines and state live here, not in memory,
-- so they survive a restart of Kuzet and are shared by every process (see console/supervision.py).

-- Post-wide settings, one row. An account's grace = greatest(grace_seconds, grace_ratio * interval):
-- 30 s or 10 % of the interval, whichever is longer (a 20 s poll is overdue after 50 s, a daily test
-- report after 26 h 24 min). The Supervisor writes its configuration here at start.
CREATE TABLE supervision_settings (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    grace_seconds double precision NOT NULL DEFAULT 30 CHECK (grace_seconds >= 0),
    grace_ratio   double precision NOT NULL DEFAULT 0.1 CHECK (grace_ratio >= 0),
    timezone      text NOT NULL DEFAULT 'Asia/Almaty'   -- the post's zone: schedules are local times
);
INSERT INTO supervision_settings DEFAULT VALUES;

-- The settings as exactly one row, with the defaults above if the table is empty. The store's hot
-- path reads it as one function scan per batch (never per row).
CREATE FUNCTION kuzet_supervision_settings(OUT grace_seconds double precision, OUT grace_ratio double precision,
                                           OUT timezone text)
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT s.grace_seconds FROM supervision_settings s), 30),
           coalesce((SELECT s.grace_ratio FROM supervision_settings s), 0.1),
           coalesce((SELECT s.timezone FROM supervision_settings s), 'Asia/Almaty')
$$;

-- supervision_deadline = last_seen_at (or the moment supervision began) + interval + grace; NULL for
-- an unsupervised account. The store moves it with last_seen_at, in the same UPDATE.
-- comm_failed_at: set (to the sweep's time) while a failure-to-communicate alarm stands.
ALTER TABLE accounts
    ADD COLUMN supervision_deadline timestamptz,
    ADD COLUMN comm_failed_at timestamptz;

-- A sweep reads only the overdue end of this index: supervised accounts that are not failed yet.
CREATE INDEX accounts_supervision_due ON accounts (supervision_deadline)
    WHERE comm_failed_at IS NULL AND supervision_deadline IS NOT NULL;
-- The failed accounts (few), checked every sweep for a sign of life.
CREATE INDEX accounts_comm_failed ON accounts (comm_failed_at) WHERE comm_failed_at IS NOT NULL;

-- A new supervised account, or a changed interval, gets its deadline here; the store's update of
-- last_seen_at does not fire this trigger (it does not set supervision_interval).
CREATE FUNCTION accounts_supervision_deadline() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    g record;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.supervision_interval IS NOT DISTINCT FROM OLD.supervision_interval THEN
        RETURN NEW;
    END IF;
    IF NEW.supervision_interval IS NULL THEN
        NEW.supervision_deadline := NULL;
    ELSE
        SELECT * INTO g FROM kuzet_supervision_settings();
        NEW.supervision_deadline := coalesce(NEW.last_seen_at, now()) + make_interval(secs => NEW.supervision_interval
            + greatest(g.grace_seconds, g.grace_ratio * NEW.supervision_interval));
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_supervision BEFORE INSERT OR UPDATE OF supervision_interval ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_supervision_deadline();

-- Accounts that existed before: supervision begins now (not at an old last_seen_at, which would
-- raise a failure for every account the moment this version starts).
UPDATE accounts a SET supervision_deadline = now() + make_interval(secs => a.supervision_interval
                                                                 + greatest(g.grace_seconds, g.grace_ratio * a.supervision_interval))
FROM kuzet_supervision_settings() g
WHERE a.supervision_interval IS NOT NULL;

-- Opening and closing codes: 1 = opening (disarmed), 3 = closing (armed), NULL = neither.
-- Contact ID (qualifier 1 = opening, 3 = closing): 400 O/C, 401 O/C by user, 402 group O/C,
-- 403 automatic O/C, 407 remote arm/disarm, 408 quick arm, 409 keyswitch O/C, 441 armed stay,
-- 442 keyswitch armed stay, 443 armed with trouble override, 444 armed night stay.
-- SIA DC-03 openings: OP OA OB OG OH OJ OK OL OQ OR OS; closings: CL CA CB CF CG CJ CK CP CQ CS NF NL.
-- Reports about the schedule itself (CID 404-406, 450-455; SIA CD CI CT OI OT ...), cancels and
-- point (zone) openings are not state changes and are left out. IMMUTABLE: changing this list is a
-- new migration that replaces the function and rebuilds signals_openclose.
CREATE FUNCTION kuzet_openclose(code_kind text, code text, qualifier text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (CASE
        WHEN code_kind = 'cid' AND code IN ('400', '401', '402', '403', '407', '408', '409', '441', '442', '443', '444')
            THEN CASE qualifier WHEN '1' THEN 1 WHEN '3' THEN 3 END
        WHEN code_kind = 'sia' AND code IN ('OP', 'OA', 'OB', 'OG', 'OH', 'OJ', 'OK', 'OL', 'OQ', 'OR', 'OS') THEN 1
        WHEN code_kind = 'sia' AND code IN ('CL', 'CA', 'CB', 'CF', 'CG', 'CJ', 'CK', 'CP', 'CQ', 'CS', 'NF', 'NL') THEN 3
    END)::smallint
$$;

-- Only openings and closings are in this index (a few per object a day), so the sweep reads them
-- incrementally without scanning the stream of alarms, tests and polls.
CREATE INDEX signals_openclose ON signals (id) WHERE kuzet_openclose(code_kind, code, qualifier) IS NOT NULL;

-- Where the sweep has read openings/closings up to. Signals may commit out of id order when several
-- store writers run at once, so the cursor advances to `pending_id` only once the transactions that
-- were in progress in `pending_snapshot` have ended (or `pending_at` is a minute old); until then the
-- sweep rereads from `signal_id` and skips what it has applied (guarded_objects.arm_signal_id).
CREATE TABLE supervision_cursor (
    id               boolean PRIMARY KEY DEFAULT true CHECK (id),
    signal_id        bigint NOT NULL,
    pending_id       bigint,
    pending_snapshot pg_snapshot,
    pending_at       timestamptz
);
INSERT INTO supervision_cursor (signal_id) SELECT coalesce(max(id), 0) FROM signals;

-- Arm state of an object, from its latest opening/closing (any of its accounts).
ALTER TABLE guarded_objects
    ADD COLUMN armed            boolean,       -- true after a closing, false after an opening, NULL = not known yet
    ADD COLUMN armed_changed_at timestamptz,   -- received_at of that signal
    ADD COLUMN arm_signal_id    bigint,        -- that signal: signals are applied once, in id order
    ADD COLUMN arm_due_at       timestamptz;   -- the next arm_by instant to check; NULL = no schedule
CREATE INDEX guarded_objects_arm_due ON guarded_objects (arm_due_at) WHERE arm_due_at IS NOT NULL;

-- Open/close schedule, local times of the post's zone. One window per weekday (0 = Monday ... 6 =
-- Sunday): the object may be opened from open_from and must be armed (closed) by arm_by. If arm_by
-- is earlier than open_from the window runs past midnight and arm_by is on the next day. A weekday
-- without a row is a closed day: any opening is outside the schedule. An object without rows is not
-- scheduled at all.
CREATE TABLE object_schedules (
    object_id     bigint NOT NULL REFERENCES guarded_objects(id) ON DELETE CASCADE,
    weekday       smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    open_from     time NOT NULL,
    arm_by        time NOT NULL,
    PRIMARY KEY (object_id, weekday),
    CHECK (open_from <> arm_by)
);

-- The first arm_by instant after p_after for an object (NULL without a schedule).
CREATE FUNCTION kuzet_next_arm_by(p_object bigint, p_after timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT min(c.t) FROM (
        SELECT ((d.day + s.arm_by + CASE WHEN s.arm_by < s.open_from THEN interval '1 day' ELSE interval '0' END)
                AT TIME ZONE z.timezone) AS t
        FROM kuzet_supervision_settings() z
        CROSS JOIN generate_series(-1, 7) AS k(n)
        CROSS JOIN LATERAL (SELECT (p_after AT TIME ZONE z.timezone)::date + k.n AS day) d
        JOIN object_schedules s ON s.object_id = p_object AND s.weekday = extract(isodow FROM d.day)::int - 1
    ) c
    WHERE c.t > p_after
$$;

CREATE FUNCTION object_schedules_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE guarded_objects SET arm_due_at = kuzet_next_arm_by(id, now()) WHERE id = OLD.object_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE guarded_objects SET arm_due_at = kuzet_next_arm_by(id, now()) WHERE id = NEW.object_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER object_schedules_arm_due AFTER INSERT OR UPDATE OR DELETE ON object_schedules
    FOR EACH ROW EXECUTE FUNCTION object_schedules_changed();
