-- Setting up a post (console-setup): optimistic concurrency, service (maintenance) periods, and the
-- signals received while an account or object was in service.

-- version: every edit carries the version it read; a stale edit changes nothing (409). updated_at:
-- when it last changed. Both move together on every UPDATE made by the admin functions.
ALTER TABLE guarded_objects
    ADD COLUMN version        integer NOT NULL DEFAULT 1,
    ADD COLUMN updated_at     timestamptz NOT NULL DEFAULT now(),
    -- In service (maintenance, repairs, the owner's own works) until this instant: signals from its
    -- accounts are stored and marked but open no alarm; supervision raises nothing for it.
    ADD COLUMN service_until  timestamptz,
    ADD COLUMN service_reason text NOT NULL DEFAULT '';
ALTER TABLE accounts
    ADD COLUMN version        integer NOT NULL DEFAULT 1,
    ADD COLUMN updated_at     timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN service_until  timestamptz,
    ADD COLUMN service_reason text NOT NULL DEFAULT '';
ALTER TABLE users
    ADD COLUMN version        integer NOT NULL DEFAULT 1,
    ADD COLUMN updated_at     timestamptz NOT NULL DEFAULT now();

-- The supervision sweep ends service periods whose time has come (few rows: partial indexes).
CREATE INDEX guarded_objects_service ON guarded_objects (service_until) WHERE service_until IS NOT NULL;
CREATE INDEX accounts_service ON accounts (service_until) WHERE service_until IS NOT NULL;

-- Signals received while their account or object was in service: stored like any other (signals
-- are immutable), marked here by the alarm engine instead of opening an alarm.
CREATE TABLE service_signals (
    signal_id     bigint PRIMARY KEY REFERENCES signals(id),
    account_id    bigint REFERENCES accounts(id) ON DELETE SET NULL,
    object_id     bigint REFERENCES guarded_objects(id) ON DELETE SET NULL,
    service_until timestamptz NOT NULL,
    reason        text NOT NULL DEFAULT ''
);
