"""Supervision: every supervised account must be heard from in time, every scheduled object armed on time.

State is in the database (migration 0002), so it survives a restart and any number of processes
can share it:

- `accounts.supervision_deadline` = last seen + interval + grace. The signal store moves it in the
  same UPDATE that sets `last_seen_at` (one statement per batch); a trigger sets it for a new
  account or a changed interval. Grace is post-wide (`supervision_settings`): the larger of
  `grace` seconds (default 30) and `grace_ratio` x interval (default 10 %).
- `accounts.comm_failed_at` is set while a failure-to-communicate alarm stands, so an account is
  raised once per outage, also across restarts.
- `guarded_objects.armed / armed_changed_at / arm_signal_id` follow the object's openings and
  closings; `arm_due_at` is the next "must be armed by" instant of its schedule (`object_schedules`).

A sweep (`sweep`, every `sweep_interval` seconds, one transaction, one process at a time through an
advisory lock) does, with batch SQL that touches only the rows concerned:

1. restore: failed accounts that are no longer overdue (a signal or poll moved the deadline past
   now, or supervision was switched off) -> restore the alarm, clear comm_failed_at. "Deadline past
   now" rather than "last_seen_at after comm_failed_at": a poll received just before the failure
   was marked but committed just after it also counts, and failing (deadline < now) and restoring
   (deadline > now) can never flap;
2. failure: accounts past their deadline and not failed (the partial index holds exactly these, so
   only overdue rows are read) -> comm_failed_at, a "failure-to-communicate" alarm;
3. openings/closings: read incrementally from `signals` through a partial index that holds only
   opening/closing codes (`kuzet_openclose` in the migration) and a cursor row; each updates the
   object's arm state once (in id order), and an opening outside the object's schedule raises an
   "opened outside schedule" alarm (kind "schedule");
4. schedules: objects whose arm_by instant (+ `arm_grace`) has passed and that were not armed by
   then raise "failed to arm on time" (kind "schedule"); their next arm_by instant is computed.

Rows being written by the store at that moment are skipped (SKIP LOCKED) and taken at the next
sweep, so the sweep never waits for, nor deadlocks with, the receivers' hot path.

Alarms are opened, joined and restored by the one alarm writer (`console.alarm.write_alarms`), a
whole batch in a fixed number of statements: an outage of the post's uplink makes thousands of
accounts overdue in the same second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from console import audit
from console.alarm import Actor, AlarmRaise, AlarmRestore, write_alarms

log = logging.getLogger("kuzet.supervision")

SUPERVISION_LOCK = 0x73757076  # "supv": one sweep at a time, whatever the number of processes
ACTOR = Actor(None, "system:supervision")

KIND_COMM = "failure-to-communicate"
KIND_SCHEDULE = "schedule"
COMM_TITLE = {"kk": "Байланыс жоқ", "ru": "Нет связи с объектом", "en": "Failure to communicate"}
LATE_ARM_TITLE = {"kk": "Уақытында күзетке қойылмады", "ru": "Объект не поставлен на охрану вовремя",
                  "en": "Failed to arm on time"}
OPEN_OUTSIDE_TITLE = {"kk": "Кестеден тыс күзеттен алынды", "ru": "Снятие с охраны вне расписания",
                      "en": "Opened outside schedule"}

DEFAULT_GRACE = 30.0  # seconds
DEFAULT_GRACE_RATIO = 0.1  # of the interval; the larger of the two applies
DEFAULT_ARM_GRACE = 60.0  # seconds after arm_by before "failed to arm on time" (a closing may be in transit)
CURSOR_SETTLE = 60.0  # seconds: a snapshot's in-progress transactions are assumed ended after this

# -- SQL ------------------------------------------------------------------------------------------

_RESTORE = """
WITH r AS (
    SELECT id, comm_failed_at FROM accounts
    WHERE comm_failed_at IS NOT NULL
      AND (supervision_deadline IS NULL OR supervision_deadline > $1)
    ORDER BY id FOR UPDATE SKIP LOCKED
)
UPDATE accounts a SET comm_failed_at = NULL FROM r WHERE a.id = r.id
RETURNING a.id, a.number, a.object_id, a.last_seen_at, r.comm_failed_at AS failed_at
"""

# An account in service (or on an object in service) is not raised: its period's end gives it a
# fresh interval (_SERVICE_ENDED_*).
_FAIL = """
WITH d AS (
    SELECT a.id FROM accounts a
    WHERE a.supervision_deadline < $1 AND a.comm_failed_at IS NULL
      AND NOT coalesce(a.service_until > $1, false)
      AND NOT coalesce((SELECT o.service_until > $1 FROM guarded_objects o WHERE o.id = a.object_id), false)
    ORDER BY a.supervision_deadline LIMIT $2 FOR UPDATE SKIP LOCKED
)
UPDATE accounts a SET comm_failed_at = $1 FROM d WHERE a.id = d.id
RETURNING a.id, a.number, a.object_id, a.last_seen_at, a.supervision_deadline, a.supervision_interval
"""

# Service periods that have run out: back under guard, and supervised accounts get one full interval
# (+ grace) from now to report, rather than failing at once for the silence of the works.
_SERVICE_ENDED_OBJECTS = """
WITH e AS (SELECT id FROM guarded_objects WHERE service_until <= $1 ORDER BY id FOR UPDATE SKIP LOCKED)
UPDATE guarded_objects o SET service_until = NULL, service_reason = '', version = o.version + 1, updated_at = $1
FROM e WHERE o.id = e.id
RETURNING o.id, o.name
"""

_SERVICE_ENDED_ACCOUNTS = """
WITH e AS (
    SELECT id, service_until IS NOT NULL AS own FROM accounts
    WHERE service_until <= $1 OR (object_id = ANY($2::bigint[]) AND service_until IS NULL)
    ORDER BY id FOR UPDATE SKIP LOCKED
)
UPDATE accounts a SET
    version = a.version + e.own::int,
    updated_at = CASE WHEN e.own THEN $1 ELSE a.updated_at END,
    service_until = NULL, service_reason = '',
    supervision_deadline = CASE WHEN a.supervision_interval IS NULL OR a.comm_failed_at IS NOT NULL
        THEN a.supervision_deadline ELSE greatest(a.supervision_deadline,
        $1 + make_interval(secs => a.supervision_interval + greatest(g.grace_seconds, g.grace_ratio * a.supervision_interval))) END
FROM e, kuzet_supervision_settings() g WHERE a.id = e.id
RETURNING a.id, a.number, e.own
"""

_CURSOR = """
SELECT signal_id, pending_id,
       pending_id IS NOT NULL AND (pending_at < $1 OR NOT EXISTS (
           SELECT 1 FROM pg_snapshot_xip(pending_snapshot) x WHERE pg_xact_status(x) = 'in progress')) AS ready
FROM supervision_cursor
"""

# One statement, so the snapshot returned is the one the rows were read in.
_OPENCLOSE = """
SELECT s.id, s.received_at, s.account, s.oc, a.object_id, o.arm_signal_id, o.service_until,
       s.oc = 1 AND sched.scheduled AND NOT sched.inside AS outside,
       pg_current_snapshot()::text AS snap
FROM (
    SELECT id, received_at, account, receiver_no, line_no, kuzet_openclose(code_kind, code, qualifier) AS oc
    FROM signals WHERE id > $1 AND kuzet_openclose(code_kind, code, qualifier) IS NOT NULL
    ORDER BY id LIMIT $2
) s
LEFT JOIN LATERAL (
    SELECT object_id FROM accounts a
    WHERE a.number = s.account
      AND a.prefix IN ('', 'L' || s.line_no, 'R' || s.receiver_no || 'L' || s.line_no)
    ORDER BY a.prefix = '' LIMIT 1
) a ON true
LEFT JOIN guarded_objects o ON o.id = a.object_id
LEFT JOIN LATERAL (
    SELECT EXISTS (SELECT 1 FROM object_schedules sc WHERE sc.object_id = o.id) AS scheduled,
           EXISTS (
               SELECT 1 FROM object_schedules sc
               WHERE sc.object_id = o.id AND (
                   (sc.weekday = extract(isodow FROM l.t::date)::int - 1 AND l.t::time >= sc.open_from
                    AND (sc.arm_by < sc.open_from OR l.t::time < sc.arm_by))
                   OR (sc.arm_by < sc.open_from AND sc.weekday = extract(isodow FROM l.t::date - 1)::int - 1
                       AND l.t::time < sc.arm_by))
           ) AS inside
    FROM (SELECT s.received_at AT TIME ZONE z.timezone AS t FROM kuzet_supervision_settings() z) l
    WHERE s.oc = 1 AND o.id IS NOT NULL
) sched ON true
ORDER BY s.id
"""

_SAVE_CURSOR = """
INSERT INTO supervision_cursor (id, signal_id, pending_id, pending_snapshot, pending_at)
VALUES (true, $1, $2, $3::text::pg_snapshot, $4)
ON CONFLICT (id) DO UPDATE SET signal_id = excluded.signal_id, pending_id = excluded.pending_id,
    pending_snapshot = excluded.pending_snapshot, pending_at = excluded.pending_at
"""

_ARM_STATE = """
UPDATE guarded_objects o SET armed = v.armed, armed_changed_at = v.at, arm_signal_id = v.signal_id
FROM unnest($1::bigint[], $2::boolean[], $3::timestamptz[], $4::bigint[]) AS v(id, armed, at, signal_id)
WHERE o.id = v.id AND (o.arm_signal_id IS NULL OR o.arm_signal_id < v.signal_id)
"""

# Objects whose arm_by (+ arm_grace) has passed: move them to their next arm_by and say whether they
# were armed in time (armed now, and since no later than arm_by + arm_grace).
_ARM_DUE = """
WITH due AS (
    SELECT id, arm_due_at FROM guarded_objects WHERE arm_due_at <= $1
    ORDER BY arm_due_at LIMIT $2 FOR UPDATE SKIP LOCKED
)
UPDATE guarded_objects o SET arm_due_at = kuzet_next_arm_by(o.id, $1)
FROM due WHERE o.id = due.id
RETURNING o.id, due.arm_due_at AS due, o.armed, o.armed_changed_at, o.service_until,
          coalesce(o.armed AND o.armed_changed_at <= due.arm_due_at + make_interval(secs => $3), false) AS in_time
"""



# -- results and counters -----------------------------------------------------------------------


@dataclass(slots=True)
class SweepResult:
    skipped: bool = False  # another process held the sweep lock
    failed: list[int] = field(default_factory=list)  # accounts that became failed
    restored: list[int] = field(default_factory=list)  # accounts heard from again
    openclose: int = 0  # openings/closings applied to objects
    opened_outside: list[int] = field(default_factory=list)  # signal ids of openings outside schedule
    late_arm: list[int] = field(default_factory=list)  # objects not armed by arm_by
    arm_checked: int = 0  # arm_by instants checked
    alarms: list[int] = field(default_factory=list)  # alarms opened or changed
    failed_now: int = 0  # accounts failed after this sweep
    service_ended_objects: list[int] = field(default_factory=list)  # back under guard after service
    service_ended_accounts: list[int] = field(default_factory=list)


@dataclass(slots=True)
class SupervisionStats:
    sweeps: int = 0
    skipped: int = 0  # sweeps left to another process
    errors: int = 0
    last_sweep_ms: float = 0.0
    max_sweep_ms: float = 0.0
    failed_now: int = 0  # accounts currently failed to communicate
    misses_total: int = 0  # missed deadlines (failures raised) since start
    restores_total: int = 0
    schedule_alarms_total: int = 0
    last_sweep_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["last_sweep_at"] = self.last_sweep_at.isoformat() if self.last_sweep_at else None
        return d


# -- the sweep ------------------------------------------------------------------------------------


async def sweep(conn: asyncpg.Connection, now: datetime, *, arm_grace: float = DEFAULT_ARM_GRACE,
                max_batch: int = 1000) -> SweepResult:
    """One supervision pass at `now` (UTC), in one transaction. Only overdue rows are read: the cost
    of a sweep with nothing due does not grow with the number of accounts. At most `max_batch`
    failures / openings-closings / arm checks per pass; the rest follow at the next one."""
    result = SweepResult()
    async with conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", SUPERVISION_LOCK):
            result.skipped = True
            return result
        raises: list[AlarmRaise] = []
        restores: list[AlarmRestore] = []

        await _end_service(conn, now, result)

        for r in await conn.fetch(_RESTORE, now):
            result.restored.append(r["id"])
            restores.append(AlarmRestore(r["object_id"], r["number"], KIND_COMM, {
                "account_id": r["id"], "last_seen_at": _iso(r["last_seen_at"]), "failed_at": _iso(r["failed_at"])}))

        for r in await conn.fetch(_FAIL, now, max_batch):
            result.failed.append(r["id"])
            raises.append(AlarmRaise(r["object_id"], r["number"], KIND_COMM, "trouble", 2, COMM_TITLE, {
                "account_id": r["id"], "last_seen_at": _iso(r["last_seen_at"]),
                "deadline": _iso(r["supervision_deadline"]), "interval": r["supervision_interval"]}))

        await _openings_closings(conn, now, max_batch, result, raises)

        for r in await conn.fetch(_ARM_DUE, now - timedelta(seconds=arm_grace), max_batch, arm_grace):
            result.arm_checked += 1
            if not r["in_time"] and not (r["service_until"] and r["service_until"] > now):
                result.late_arm.append(r["id"])
                raises.append(AlarmRaise(r["id"], "", KIND_SCHEDULE, "supervisory", 3, LATE_ARM_TITLE, {
                    "violation": "late-arm", "arm_by": _iso(r["due"]), "armed": r["armed"],
                    "armed_changed_at": _iso(r["armed_changed_at"])}))

        # Restores first: an account restored and failed again in one pass keeps that order.
        result.alarms = await write_alarms(conn, [*restores, *raises], now, ACTOR)
        result.failed_now = await conn.fetchval("SELECT count(*) FROM accounts WHERE comm_failed_at IS NOT NULL")
    return result


async def _end_service(conn: asyncpg.Connection, now: datetime, result: SweepResult) -> None:
    """Objects and accounts whose service period has run out are back under guard (audited)."""
    objects = await conn.fetch(_SERVICE_ENDED_OBJECTS, now)
    if not objects and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE service_until <= $1)", now):
        return
    oids = [r["id"] for r in objects]
    accounts = await conn.fetch(_SERVICE_ENDED_ACCOUNTS, now, oids)
    result.service_ended_objects = oids
    result.service_ended_accounts = [r["id"] for r in accounts if r["own"]]
    entries = [audit.Entry(ACTOR.name, "object.service-ended", "object", str(r["id"]), {"name": r["name"]}, now)
               for r in objects]
    entries += [audit.Entry(ACTOR.name, "account.service-ended", "account", str(r["id"]), {"number": r["number"]}, now)
                for r in accounts if r["own"]]
    await audit.append(conn, entries)


async def _openings_closings(conn: asyncpg.Connection, now: datetime, limit: int, result: SweepResult,
                             raises: list[AlarmRaise]) -> None:
    cur = await conn.fetchrow(_CURSOR, now - timedelta(seconds=CURSOR_SETTLE))
    start = cur["signal_id"] if cur else 0
    pending = cur["pending_id"] if cur else None
    ready = bool(cur and cur["ready"])
    rows = await conn.fetch(_OPENCLOSE, start, limit)
    states: dict[int, tuple[bool, datetime, int]] = {}
    for r in rows:
        oid = r["object_id"]
        if oid is None or (r["arm_signal_id"] is not None and r["id"] <= r["arm_signal_id"]):
            continue  # no object, or applied at an earlier sweep
        states[oid] = (r["oc"] == 3, r["received_at"], r["id"])
        result.openclose += 1
        if r["outside"] and not (r["service_until"] and r["service_until"] > r["received_at"]):
            result.opened_outside.append(r["id"])
            raises.append(AlarmRaise(oid, r["account"], KIND_SCHEDULE, "supervisory", 3, OPEN_OUTSIDE_TITLE, {
                "violation": "opened-outside-schedule", "signal_id": r["id"], "at": _iso(r["received_at"])}))
    if states:
        oids = list(states)
        await conn.execute(_ARM_STATE, oids, [states[o][0] for o in oids], [states[o][1] for o in oids],
                           [states[o][2] for o in oids])
    # Everything up to the previous pass's highest id is final once the transactions in progress in
    # that pass's snapshot have ended: only then may the cursor move past it. Until then the same
    # range is read again (and skipped by arm_signal_id) and the pending snapshot is kept.
    if pending is not None and not ready:
        return
    new_start = max(start, pending) if pending is not None else start
    if rows and rows[-1]["id"] > new_start:
        new_pending: tuple[Any, ...] = (rows[-1]["id"], rows[-1]["snap"], now)
    else:
        new_pending = (None, None, None)
    if cur is None or new_start != start or pending is not None or new_pending[0] is not None:
        await conn.execute(_SAVE_CURSOR, new_start, *new_pending)


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


# -- configuration --------------------------------------------------------------------------------


async def configure(conn: asyncpg.Connection, *, grace: float = DEFAULT_GRACE,
                    grace_ratio: float = DEFAULT_GRACE_RATIO, timezone: str = "Asia/Almaty") -> bool:
    """Write the post-wide settings; if they changed, move every deadline (and arm_by instant) to the
    new rule. Returns whether anything changed."""
    if grace < 0 or grace_ratio < 0:
        raise ValueError("grace and grace_ratio must not be negative")
    await conn.fetchval("SELECT now() AT TIME ZONE $1", timezone)  # an unknown zone fails here
    for attempt in range(5):
        try:
            async with conn.transaction():
                old = await conn.fetchrow("SELECT * FROM kuzet_supervision_settings()")
                await conn.execute(
                    "INSERT INTO supervision_settings (id, grace_seconds, grace_ratio, timezone) VALUES (true, $1, $2, $3)"
                    " ON CONFLICT (id) DO UPDATE SET grace_seconds = $1, grace_ratio = $2, timezone = $3",
                    grace, grace_ratio, timezone)
                changed = False
                if (old["grace_seconds"], old["grace_ratio"]) != (grace, grace_ratio):
                    changed = True
                    await conn.execute(
                        "UPDATE accounts SET supervision_deadline = supervision_deadline"
                        " - make_interval(secs => greatest($1::float8, $2::float8 * supervision_interval))"
                        " + make_interval(secs => greatest($3::float8, $4::float8 * supervision_interval))"
                        " WHERE supervision_deadline IS NOT NULL AND supervision_interval IS NOT NULL",
                        old["grace_seconds"], old["grace_ratio"], grace, grace_ratio)
                if old["timezone"] != timezone:
                    changed = True
                    await conn.execute(
                        "UPDATE guarded_objects SET arm_due_at = kuzet_next_arm_by(id, now())"
                        " WHERE id IN (SELECT DISTINCT object_id FROM object_schedules)")
                return changed
        except asyncpg.DeadlockDetectedError:  # the store touched the same accounts: try again
            await asyncio.sleep(0.05 * (attempt + 1))
    raise RuntimeError("could not write the supervision settings")


# -- the service ----------------------------------------------------------------------------------


class Supervisor:
    """Sweeps every `sweep_interval` seconds: a missed deadline is noticed within that interval plus
    one sweep. `stats` are the counters for health pages."""

    def __init__(self, pool: asyncpg.Pool, *, grace: float = DEFAULT_GRACE,
                 grace_ratio: float = DEFAULT_GRACE_RATIO, arm_grace: float = DEFAULT_ARM_GRACE,
                 timezone: str = "Asia/Almaty", sweep_interval: float = 0.5, max_batch: int = 1000) -> None:
        self.pool = pool
        self.grace = grace
        self.grace_ratio = grace_ratio
        self.arm_grace = arm_grace
        self.timezone = timezone
        self.sweep_interval = sweep_interval
        self.max_batch = max_batch
        self.stats = SupervisionStats()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with self.pool.acquire() as conn:
            if await configure(conn, grace=self.grace, grace_ratio=self.grace_ratio, timezone=self.timezone):
                log.info("supervision settings changed: grace %.1f s or %.0f %% of the interval, zone %s",
                         self.grace, self.grace_ratio * 100, self.timezone)
        self._task = asyncio.create_task(self._run(), name="supervisor")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sweep_once(self) -> SweepResult:
        t0 = time.perf_counter()
        async with self.pool.acquire() as conn:
            r = await sweep(conn, datetime.now(UTC), arm_grace=self.arm_grace, max_batch=self.max_batch)
        ms = (time.perf_counter() - t0) * 1000
        st = self.stats
        if r.skipped:
            st.skipped += 1
            return r
        st.sweeps += 1
        st.last_sweep_ms = ms
        st.max_sweep_ms = max(st.max_sweep_ms, ms)
        st.last_sweep_at = datetime.now(UTC)
        st.failed_now = r.failed_now
        st.misses_total += len(r.failed)
        st.restores_total += len(r.restored)
        st.schedule_alarms_total += len(r.late_arm) + len(r.opened_outside)
        if r.failed or r.restored or r.late_arm or r.opened_outside:
            log.info("supervision: %d failed, %d restored, %d late to arm, %d opened outside schedule (%.1f ms)",
                     len(r.failed), len(r.restored), len(r.late_arm), len(r.opened_outside), ms)
        return r

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: the deadlines wait there, try again
                self.stats.errors += 1
                log.warning("supervision sweep failed: %s", exc)
            await asyncio.sleep(max(0.0, self.sweep_interval - (loop.time() - t0)))
