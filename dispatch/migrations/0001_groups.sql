-- Dispatch: response groups and their vehicles.
-- IF NOT EXISTS: databases made before dispatch had its own migrations have these from the core's.
CREATE TABLE IF NOT EXISTS response_groups (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    call_sign     text NOT NULL DEFAULT '',
    base_address  text NOT NULL DEFAULT '',
    latitude      double precision,
    longitude     double precision
);

CREATE TABLE IF NOT EXISTS vehicles (
    id            bigserial PRIMARY KEY,
    group_id      bigint REFERENCES response_groups(id),
    plate         text NOT NULL UNIQUE,
    model         text NOT NULL DEFAULT ''
);
