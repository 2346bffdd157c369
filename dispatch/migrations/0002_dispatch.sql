-- Dispatch: the order that formed each group, vehicles' papers, staff, duty shifts, assignments
-- (with their append-only step events), crews' positions, timers' settings and objects' response times.

ALTER TABLE response_groups
    ADD COLUMN IF NOT EXISTS order_number text NOT NULL DEFAULT '',   -- the order forming the group (ch. 3 row 5)
    ADD COLUMN IF NOT EXISTS order_date   date,
    ADD COLUMN IF NOT EXISTS active       boolean NOT NULL DEFAULT true,
    ADD COLUMN IF NOT EXISTS created_at   timestamptz NOT NULL DEFAULT now();

ALTER TABLE vehicles
    ADD COLUMN IF NOT EXISTS registration_certificate text NOT NULL DEFAULT '',  -- state registration certificate no.
    ADD COLUMN IF NOT EXISTS ownership text NOT NULL DEFAULT 'owned' CHECK (ownership IN ('owned', 'leased')),
    ADD COLUMN IF NOT EXISTS active    boolean NOT NULL DEFAULT true,
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();

-- A member of a response group. Personal data for eligibility (citizenship, birth date,
-- certificates) is compliance's, in its own tables keyed by staff.id.
CREATE TABLE staff (
    id            bigserial PRIMARY KEY,
    full_name     text NOT NULL,
    role          text NOT NULL DEFAULT 'guard' CHECK (role IN ('senior', 'driver', 'guard')),
    group_id      bigint REFERENCES response_groups(id),
    user_id       bigint UNIQUE REFERENCES users(id) ON DELETE SET NULL,  -- their login for the phone view
    phone         text NOT NULL DEFAULT '',
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX staff_group ON staff (group_id);

-- Who and which vehicle form a group from when to when. A cancelled shift is kept (history).
CREATE TABLE duty_shifts (
    id            bigserial PRIMARY KEY,
    group_id      bigint NOT NULL REFERENCES response_groups(id),
    vehicle_id    bigint REFERENCES vehicles(id),
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    note          text NOT NULL DEFAULT '',
    cancelled_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX duty_shifts_time ON duty_shifts (ends_at, starts_at) WHERE cancelled_at IS NULL;
CREATE INDEX duty_shifts_group ON duty_shifts (group_id, starts_at);

CREATE TABLE duty_shift_staff (
    shift_id      bigint NOT NULL REFERENCES duty_shifts(id) ON DELETE CASCADE,
    staff_id      bigint NOT NULL REFERENCES staff(id),
    PRIMARY KEY (shift_id, staff_id)
);
CREATE INDEX duty_shift_staff_staff ON duty_shift_staff (staff_id);

-- One group sent to one alarm. The row is the projection; assignment_events are the record.
CREATE TABLE assignments (
    id            bigserial PRIMARY KEY,
    alarm_id      bigint NOT NULL REFERENCES alarms(id),
    group_id      bigint NOT NULL REFERENCES response_groups(id),
    shift_id      bigint REFERENCES duty_shifts(id),
    vehicle_id    bigint REFERENCES vehicles(id),
    status        text NOT NULL DEFAULT 'new'
                  CHECK (status IN ('new', 'accepted', 'en-route', 'on-site', 'finished', 'recalled')),
    distance_km   double precision,          -- straight line when dispatched
    eta_minutes   double precision,
    dispatched_at timestamptz NOT NULL DEFAULT now(),
    dispatched_by bigint REFERENCES users(id),
    accepted_at   timestamptz,
    accepted_by   bigint REFERENCES users(id),
    en_route_at   timestamptz,
    en_route_by   bigint REFERENCES users(id),
    on_site_at    timestamptz,
    on_site_by    bigint REFERENCES users(id),
    finished_at   timestamptz,
    finished_by   bigint REFERENCES users(id),
    recalled_at   timestamptz,
    recalled_by   bigint REFERENCES users(id),
    recall_reason text,
    outcome       text,
    report        text,
    accept_alerted_at timestamptz,           -- the "not accepted in time" alert was raised
    arrive_alerted_at timestamptz,           -- the "not on site in time" alert was raised
    arrive_deadline   timestamptz            -- dispatched_at + the object's response time
);
-- A group answers one alarm at a time: the database, not the code, decides between two operators.
CREATE UNIQUE INDEX assignments_one_active_per_group ON assignments (group_id)
    WHERE status IN ('new', 'accepted', 'en-route', 'on-site');
CREATE INDEX assignments_alarm ON assignments (alarm_id);
CREATE INDEX assignments_dispatched ON assignments (dispatched_at);
CREATE INDEX assignments_active ON assignments (status) WHERE status IN ('new', 'accepted', 'en-route', 'on-site');

-- Every step, with who and when. Append-only; a step is recorded at most once per assignment
-- (a phone's retry after a dropped connection is not doubled).
CREATE TABLE assignment_events (
    id            bigserial PRIMARY KEY,
    assignment_id bigint NOT NULL REFERENCES assignments(id),
    at            timestamptz NOT NULL DEFAULT now(),
    kind          text NOT NULL,   -- dispatched accepted en-route on-site finished recalled accept-overdue arrive-overdue
    user_id       bigint REFERENCES users(id),
    actor         text NOT NULL,   -- username or system:<component>
    detail        jsonb NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX assignment_events_once ON assignment_events (assignment_id, kind);

CREATE FUNCTION assignment_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'assignment_events is append-only';
END $$;
CREATE TRIGGER assignment_events_no_change BEFORE UPDATE OR DELETE ON assignment_events
    FOR EACH ROW EXECUTE FUNCTION assignment_events_append_only();

CREATE TABLE group_positions (
    id            bigserial PRIMARY KEY,
    group_id      bigint NOT NULL REFERENCES response_groups(id),
    user_id       bigint REFERENCES users(id),
    latitude      double precision NOT NULL,
    longitude     double precision NOT NULL,
    accuracy      double precision,            -- metres, as the phone reports it
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX group_positions_latest ON group_positions (group_id, at DESC);

-- Post-wide dispatch settings (one row).
CREATE TABLE dispatch_settings (
    id                  smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    accept_timeout      integer NOT NULL DEFAULT 120 CHECK (accept_timeout > 0),     -- s to accept
    response_time       integer NOT NULL DEFAULT 1200 CHECK (response_time > 0),     -- s to be on site, by default
    average_speed_kmh   double precision NOT NULL DEFAULT 40 CHECK (average_speed_kmh > 0),
    position_fresh      integer NOT NULL DEFAULT 600 CHECK (position_fresh > 0),     -- s a position counts as current
    returning_time      integer NOT NULL DEFAULT 900 CHECK (returning_time >= 0),    -- s "returning" after finishing
    min_groups_on_duty  integer NOT NULL DEFAULT 2 CHECK (min_groups_on_duty >= 0)   -- ch. 3 row 5: at least two
);
INSERT INTO dispatch_settings (id) VALUES (1);

-- The response time agreed for an object (contract); none: the post-wide default.
CREATE TABLE object_response_times (
    object_id     bigint PRIMARY KEY REFERENCES guarded_objects(id) ON DELETE CASCADE,
    response_time integer NOT NULL CHECK (response_time > 0)   -- seconds from dispatch to on site
);

-- The record of the response: appended, never changed (the runtime role gets INSERT and SELECT only).
SELECT kuzet_append_only('assignment_events');
SELECT kuzet_append_only('group_positions');
