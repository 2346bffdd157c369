"""A post that meets every row of chapters 1-3, built through the compliance functions over the real
database (documents are real PDF / PNG files, signals and alarms are real rows), for the check tests."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from compliance import backup, document, personnel
from console import user
from kuzet import demo_compliance

CLERK, REVIEWER = "clerk", "admin"
TZ = ZoneInfo("Asia/Almaty")
DAYS = 7


@functools.cache
def pdf(title: str = "Document") -> bytes:
    return demo_compliance.sample_pdf(title, ["test"])


@functools.cache
def png(title: str = "Scan") -> bytes:
    return demo_compliance.sample_png(title)


async def register(conn: asyncpg.Connection, home: Path, kind: str, *, accept: bool = True, image: bool = False,
                   **kw: Any) -> dict[str, Any]:
    doc = await document.register(conn, home, kind=kind, content=png() if image else pdf(), actor=CLERK,
                                  max_bytes=20 << 20, file_name="x.pdf", **kw)
    if accept:
        doc = await document.review(conn, doc["id"], status="accepted", actor=REVIEWER)
    return doc


async def build(conn: asyncpg.Connection, home: Path, today: dt.date) -> dict[str, Any]:
    """Everything rows 1-6 need over the period [today - DAYS + 1, today]; returns the ids made."""
    ids: dict[str, Any] = {}
    if not await conn.fetchval("SELECT 1 FROM users WHERE username = 'admin'"):
        await user.create(conn, "admin", "admin-pass-1", "admin")
    g = [await conn.fetchval("INSERT INTO response_groups (name) VALUES ($1) RETURNING id", n) for n in ("G1", "G2")]
    v = [await conn.fetchval("INSERT INTO vehicles (group_id, plate) VALUES ($1, $2) RETURNING id", gid, p)
         for gid, p in zip(g, ("111 AAA 02", "222 BBB 02"), strict=True)]
    ids["groups"], ids["vehicles"] = g, v
    ago = lambda n: today - dt.timedelta(days=n)  # noqa: E731
    ids["licence"] = (await register(conn, home, "security_licence", number="L-1", issued_on=ago(800)))["id"]
    ids["premises"] = (await register(conn, home, "premises_lease", number="P-1", issued_on=ago(100),
                                      valid_until=ago(-300), detail={"address": "Almaty, Satpaev 30"}))["id"]
    ids["staffing"] = (await register(conn, home, "staffing_table", number="S-1", issued_on=ago(90)))["id"]
    ids["console"] = (await register(conn, home, "console_equipment", number="W-1", issued_on=ago(300),
                                     detail={"inventory_number": "000231"}))["id"]
    ids["server"] = (await register(conn, home, "server_equipment", number="F-1", issued_on=ago(300),
                                    detail={"inventory_number": "000232"}, image=True))["id"]
    ids["radio"] = (await register(conn, home, "radio_contract", number="R-1", issued_on=ago(100),
                                   valid_until=ago(-200)))["id"]
    ids["weapons"] = (await register(conn, home, "weapons_permit", number="WP-1", issued_on=ago(100),
                                     valid_until=ago(-300), detail={"permit_type": "storage_and_carrying"}))["id"]
    ids["formation"], ids["assignment"], ids["vehicle_cert"] = [], [], []
    for gid, vid in zip(g, v, strict=True):
        ids["formation"].append((await register(conn, home, "group_formation_order", number=f"O-{gid}",
                                                issued_on=ago(200), group_id=gid))["id"])
        ids["assignment"].append((await register(conn, home, "staff_assignment_order", number=f"A-{gid}",
                                                 issued_on=ago(200), group_id=gid))["id"])
        ids["vehicle_cert"].append((await register(conn, home, "vehicle_registration", number=f"V-{vid}",
                                                   issued_on=ago(500), vehicle_id=vid, image=True))["id"])
    # personnel: one head, one guard, each with what eligibility rests on
    staff_ids: list[int | None] = [None, None]
    if await conn.fetchval("SELECT to_regclass('public.staff') IS NOT NULL"):
        staff_ids = [await conn.fetchval("INSERT INTO staff (full_name, group_id) VALUES ($1, $2) RETURNING id",
                                         n, g[0]) for n in ("Head", "Guard")]
    head = await personnel.create(conn, {"full_name": "Head One", "position": "head", "birth_date": dt.date(1975, 1, 1),
                                         "hired_on": ago(400), "qualification": "legal_higher_education"}, actor=CLERK)
    guard = await personnel.create(conn, {"full_name": "Guard One", "position": "guard",
                                          "birth_date": dt.date(1995, 5, 5), "hired_on": ago(300),
                                          "staff_id": staff_ids[1]}, actor=CLERK)
    ids["head"], ids["guard"], ids["staff"] = head["id"], guard["id"], staff_ids
    ids["diploma"] = (await register(conn, home, "diploma", number="D-1", issued_on=dt.date(1998, 6, 1),
                                     person_id=head["id"]))["id"]
    ids["training"] = {}
    for p in (head, guard):
        ids["training"][p["id"]] = (await register(conn, home, "training_certificate", number=f"T-{p['id']}",
                                                   issued_on=ago(500), person_id=p["id"]))["id"]
        for kind in personnel.REQUIRED_SCREENINGS:
            await personnel.add_screening(conn, p["id"], kind=kind, result="clear", obtained_on=ago(30), actor=CLERK)
    # the console: a supervised panel that reported every day of the period, one panic alarm answered
    await conn.execute("INSERT INTO accounts (number, supervision_interval, last_seen_at) VALUES ('1001', 300, now())")
    for n in range(DAYS):
        at = dt.datetime.combine(ago(n), dt.time(12), TZ)
        await add_signal(conn, at)
    opened = dt.datetime.combine(ago(1), dt.time(12), TZ)
    ids["alarm"] = await conn.fetchval(
        "INSERT INTO alarms (account, kind, klass, priority, title, state, opened_at, acknowledged_at, closed_at,"
        " outcome) VALUES ('1001', 'signal', 'panic', 1, '{}'::jsonb, 'closed', $1, $2, $3, 'false-alarm') RETURNING id",
        opened, opened + dt.timedelta(seconds=40), opened + dt.timedelta(minutes=20))
    now = dt.datetime.now(dt.UTC)
    await backup.record(conn, started=now, finished=now, file=home / "b.dump", size=1, sha256="0" * 64,
                        verified=True, audit_entries=1, detail={}, actor="test")
    # the groups on duty through the period (dispatch's shifts)
    if await conn.fetchval("SELECT to_regclass('public.duty_shifts') IS NOT NULL"):
        start = dt.datetime.combine(ago(60), dt.time(), TZ)  # covers the pages' default period (30 days)
        for gid, vid in zip(g, v, strict=True):
            await conn.execute("INSERT INTO duty_shifts (group_id, vehicle_id, starts_at, ends_at) VALUES ($1, $2, $3, $4)",
                               gid, vid, start, now + dt.timedelta(days=1))
    return ids


async def add_signal(conn: asyncpg.Connection, at: dt.datetime, account: str = "1001") -> None:
    raw = f"{account} {at.isoformat()}".encode()
    await conn.execute(
        "INSERT INTO signals (received_at, receiver, protocol, account, code_kind, code, raw, dedup_key)"
        " VALUES ($1, 'test', 'SIA-DCS', $2, 'sia', 'RP', $3, $4)", at, account, raw, hashlib.sha256(raw).digest())
