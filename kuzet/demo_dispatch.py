"""The demo's response groups: the orders that formed them, an owned vehicle each with its
registration certificate, staff (the crew users crew1 / crew2 among them), a duty shift covering
now, and the simulated crews (`kuzet sim crews`, one process per group) that answer through the
phone's API. Run at every `kuzet demo` start: a shift that ran out is replaced by a new one."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg

from console import user
from console.alarm import Actor
from dispatch import shift, staff

ACTOR = Actor(None, "system:demo")

# (group name as kuzet.demo makes it, order number, order date, vehicle plate, certificate, crew user, staff)
GROUPS: list[dict[str, Any]] = [
    {"name": "ГБР-1 Алматы", "order": "14-ГБР", "date": dt.date(2026, 1, 12), "plate": "777 ABK 02",
     "certificate": "02 ТС 348812", "crew": "crew1",
     "staff": [("Серік Жұмабаев", "senior"), ("Айдос Мұратов", "driver"), ("Ерлан Сейітов", "guard")]},
    {"name": "ГБР-2 Астана", "order": "15-ГБР", "date": dt.date(2026, 1, 12), "plate": "123 KZA 01",
     "certificate": "01 ТС 552907", "crew": "crew2",
     "staff": [("Дмитрий Ким", "senior"), ("Нұрлан Оспанов", "driver"), ("Асель Бекова", "guard")]},
]
CREW_USERS = {"crew1": "Экипаж ГБР-1", "crew2": "Экипаж ГБР-2"}
SHIFT_HOURS = 24


async def seed(pool: asyncpg.Pool, home: Path, creds: list[dict[str, str]]) -> list[dict[str, str]]:
    """Make the demo's groups ready to answer; returns the demo users (crew2 added if an older demo
    home lacks it)."""
    creds = list(creds)
    have = {c["username"] for c in creds}
    now = dt.datetime.now(dt.UTC)
    async with pool.acquire() as conn, conn.transaction():
        for g in GROUPS:
            gid = await conn.fetchval("SELECT id FROM response_groups WHERE name = $1", g["name"])
            if gid is None:
                continue
            await conn.execute("UPDATE response_groups SET order_number = $2, order_date = $3 WHERE id = $1"
                               " AND order_number = ''", gid, g["order"], g["date"])
            vid = await conn.fetchval(
                "UPDATE vehicles SET registration_certificate = CASE WHEN registration_certificate = '' THEN $2"
                " ELSE registration_certificate END, ownership = 'owned', group_id = coalesce(group_id, $3)"
                " WHERE plate = $1 RETURNING id", g["plate"], g["certificate"], gid)
            uid = await conn.fetchval("SELECT id FROM users WHERE username = $1", g["crew"])
            if uid is None:
                password = secrets.token_urlsafe(12)
                uid = await user.create(conn, g["crew"], password, "crew", full_name=CREW_USERS[g["crew"]],
                                        lang="ru", group_id=gid)
                if g["crew"] not in have:
                    creds.append({"username": g["crew"], "password": password, "role": "crew"})
            members = []
            for i, (full_name, role) in enumerate(g["staff"]):
                sid = await conn.fetchval("SELECT id FROM staff WHERE full_name = $1 AND group_id = $2",
                                          full_name, gid)
                if sid is None:
                    linked = uid if i == 0 and not await conn.fetchval(
                        "SELECT 1 FROM staff WHERE user_id = $1", uid) else None
                    sid = await staff.create(conn, ACTOR, full_name=full_name, role=role, group_id=gid,
                                             user_id=linked, phone=f"+7 705 555 {1000 + gid * 10 + i:04d}")
                members.append(sid)
            covering = await conn.fetchval(
                "SELECT 1 FROM duty_shifts WHERE group_id = $1 AND cancelled_at IS NULL AND starts_at <= $2"
                " AND ends_at > $2 + interval '1 hour'", gid, now)
            if not covering:
                # a shift that may still run (ends within the hour) blocks a new one: start after it
                ends = await conn.fetchval(
                    "SELECT max(ends_at) FROM duty_shifts WHERE group_id = $1 AND cancelled_at IS NULL"
                    " AND ends_at > $2", gid, now)
                start = ends or now - dt.timedelta(minutes=5)
                await shift.create(conn, ACTOR, group_id=gid, vehicle_id=vid, starts_at=start,
                                   ends_at=start + dt.timedelta(hours=SHIFT_HOURS), staff_ids=members,
                                   note="demo")
    if len(creds) != len(have):
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(home / "demo-users.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(creds, f)
    return creds


def start_crew_simulators(url: str, creds: list[dict[str, str]]) -> list[subprocess.Popen[bytes]]:
    """One simulated crew per demo crew user; the password goes by environment, not the command line."""
    procs = []
    for c in creds:
        if c["username"] not in CREW_USERS:
            continue
        env = {**os.environ, "KUZET_SIM_PASSWORD": c["password"]}
        procs.append(subprocess.Popen([sys.executable, "-m", "kuzet", "sim", "crews", "--url", url,
                                       "--user", c["username"], "--quiet"], env=env, stdout=subprocess.DEVNULL,
                                      stdin=subprocess.DEVNULL, start_new_session=True))
    return procs
