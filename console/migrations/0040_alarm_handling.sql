-- Handling alarms over a shift: who handles an alarm, holds with a reason and a time limit.
-- Calls to keyholders and checklist ticks are alarm_events rows (kinds "call", "check"), so the
-- alarm's timeline holds them with everything else.

ALTER TABLE alarms
    ADD COLUMN handled_by    bigint REFERENCES users(id),  -- the operator working on it (NULL: the pool)
    ADD COLUMN handled_since timestamptz,
    ADD COLUMN hold_until    timestamptz,                  -- on hold until then (NULL: not on hold)
    ADD COLUMN hold_reason   text,
    ADD COLUMN recalled_at   timestamptz;                  -- a hold ran out: back on top until someone acts

-- True counts for the board (open per priority) and the hold sweep.
CREATE INDEX alarms_open_priority ON alarms (priority) WHERE state <> 'closed';
CREATE INDEX alarms_on_hold ON alarms (hold_until) WHERE hold_until IS NOT NULL;
-- History search: alarms by object and time, closed ones by who closed them.
CREATE INDEX alarms_object_opened ON alarms (object_id, opened_at DESC);
CREATE INDEX alarm_events_user ON alarm_events (user_id, at) WHERE user_id IS NOT NULL;
CREATE INDEX audit_log_at ON audit_log USING brin (at);
