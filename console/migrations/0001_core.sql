-- Kuzet core schema: guarded objects, accounts, signals, alarms, users, audit.
-- Times are UTC timestamptz; shown in the post's time zone by the front-ends.

CREATE TABLE guarded_objects (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL,
    address       text NOT NULL DEFAULT '',
    latitude      double precision,
    longitude     double precision,
    terror_vulnerable boolean NOT NULL DEFAULT false,  -- "terrorist-vulnerable object" (Order 959)
    instructions  text NOT NULL DEFAULT '',             -- what the operator does on an alarm
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- A receiver is one input of the post: a DC-09 listener, a serial line, a Modbus poller.
CREATE TABLE receivers (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    kind          text NOT NULL,            -- dc09-tcp, dc09-udp, serial, modbus
    config        jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts (
    id            bigserial PRIMARY KEY,
    number        text NOT NULL,            -- as the panel sends it, upper-case
    prefix        text NOT NULL DEFAULT '', -- receiver/line prefix ("R1L0", "L0"); '' matches any line
    protocol      text NOT NULL DEFAULT 'dc09',
    aes_key       text,                     -- as configured; NULL for a plain account
    key_format    text NOT NULL DEFAULT 'hex' CHECK (key_format IN ('hex', 'ascii')),
    supervision_interval integer,          -- seconds between expected test reports / polls; NULL = unsupervised
    object_id     bigint REFERENCES guarded_objects(id) ON DELETE SET NULL,
    last_seen_at  timestamptz,             -- last signal or poll from this account
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (prefix, number)
);
CREATE INDEX accounts_object ON accounts (object_id);

CREATE TABLE zones (
    id            bigserial PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    number        text NOT NULL,
    name          text NOT NULL,
    UNIQUE (account_id, number)
);

CREATE TABLE contacts (
    id            bigserial PRIMARY KEY,
    object_id     bigint NOT NULL REFERENCES guarded_objects(id) ON DELETE CASCADE,
    name          text NOT NULL,
    phone         text NOT NULL DEFAULT '',
    role          text NOT NULL DEFAULT 'keyholder',
    call_order    integer NOT NULL DEFAULT 1
);

-- Signals are immutable: never updated, never deleted by the application.
CREATE TABLE signals (
    id            bigserial PRIMARY KEY,
    received_at   timestamptz NOT NULL,
    receiver      text NOT NULL,
    peer          text NOT NULL DEFAULT '',
    protocol      text NOT NULL,
    account       text NOT NULL,
    receiver_no   text NOT NULL DEFAULT '',
    line_no       text NOT NULL DEFAULT '',
    sequence      text NOT NULL DEFAULT '',
    code_kind     text NOT NULL,
    code          text NOT NULL,
    qualifier     text NOT NULL DEFAULT '',
    zone          text NOT NULL DEFAULT '',
    partition     text NOT NULL DEFAULT '',
    user_no       text NOT NULL DEFAULT '',
    text          text NOT NULL DEFAULT '',
    xdata         jsonb,
    transmitter_time timestamptz,
    encrypted     boolean NOT NULL DEFAULT false,
    event_index   smallint NOT NULL DEFAULT 0,
    raw           bytea NOT NULL,
    dedup_key     bytea NOT NULL
);
CREATE INDEX signals_account ON signals (account, id);
CREATE INDEX signals_received ON signals USING brin (received_at);

-- Natural keys of recently stored messages: a panel's retry within the window is stored once.
CREATE TABLE signal_dedup (
    dedup_key     bytea PRIMARY KEY,
    seen_at       timestamptz NOT NULL,
    signal_id     bigint NOT NULL
);

-- Signals the alarm engine has not processed yet (a durable work queue, filled in the same
-- transaction as the signal).
CREATE TABLE signal_inbox (
    signal_id     bigint PRIMARY KEY
);

CREATE TABLE rejected_frames (
    id            bigserial PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    receiver      text NOT NULL,
    peer          text NOT NULL DEFAULT '',
    reason        text NOT NULL,
    detail        text NOT NULL DEFAULT '',
    account       text NOT NULL DEFAULT '',
    reply         bytea,
    raw           bytea NOT NULL
);
CREATE INDEX rejected_frames_received ON rejected_frames (received_at);

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    full_name     text NOT NULL DEFAULT '',
    role          text NOT NULL CHECK (role IN ('admin', 'operator', 'crew', 'auditor')),
    password_hash text NOT NULL,
    lang          text NOT NULL DEFAULT 'ru' CHECK (lang IN ('kk', 'ru', 'en')),
    group_id      bigint,                  -- for crew: their response group
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    token_hash    bytea PRIMARY KEY,       -- sha256 of the cookie value; the value itself is not kept
    user_id       bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);

CREATE TABLE alarms (
    id            bigserial PRIMARY KEY,
    object_id     bigint REFERENCES guarded_objects(id),
    account       text NOT NULL,
    kind          text NOT NULL,           -- signal | unknown-account | failure-to-communicate | receiver-trouble | schedule
    klass         text NOT NULL,           -- event class of the opening signal
    priority      smallint NOT NULL,
    title         jsonb NOT NULL,          -- {"kk":..,"ru":..,"en":..}
    state         text NOT NULL DEFAULT 'new'
                  CHECK (state IN ('new', 'acknowledged', 'dispatched', 'on-site', 'closed')),
    opened_at     timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    first_signal_id bigint,
    last_signal_id  bigint,
    signal_count  integer NOT NULL DEFAULT 0,
    restored      boolean NOT NULL DEFAULT false,
    acknowledged_by bigint REFERENCES users(id),
    acknowledged_at timestamptz,
    closed_by     bigint REFERENCES users(id),
    closed_at     timestamptz,
    outcome       text
);
CREATE INDEX alarms_open ON alarms (object_id, kind, account) WHERE state <> 'closed';
CREATE INDEX alarms_opened ON alarms (opened_at DESC);

-- Every change of an alarm is an appended event; the alarm row is a projection of them.
CREATE TABLE alarm_events (
    id            bigserial PRIMARY KEY,
    alarm_id      bigint NOT NULL REFERENCES alarms(id),
    at            timestamptz NOT NULL DEFAULT now(),
    kind          text NOT NULL,           -- opened | signal | restore | acknowledged | closed | note
    signal_id     bigint,
    user_id       bigint REFERENCES users(id),
    detail        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alarm_events_alarm ON alarm_events (alarm_id, id);

-- Append-only, hash-chained: hash = sha256(prev_hash || canonical JSON of the entry).
CREATE TABLE audit_log (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL,           -- username, or "system:<component>"
    action        text NOT NULL,
    entity        text NOT NULL,
    entity_id     text NOT NULL DEFAULT '',
    detail        jsonb NOT NULL DEFAULT '{}',
    prev_hash     bytea NOT NULL,
    hash          bytea NOT NULL UNIQUE
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE FUNCTION signals_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'signals are immutable';
END $$;
CREATE TRIGGER signals_no_update BEFORE UPDATE ON signals
    FOR EACH ROW EXECUTE FUNCTION signals_immutable();
