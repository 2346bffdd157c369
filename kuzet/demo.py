"""The demo post: objects in Almaty and Astana, accounts, zones, contacts, two response groups,
users whose passwords are generated once and kept in `$KUZET_HOME/demo-users.json` (mode 0600)
so every later `kuzet demo` can print them again."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from console import account, guarded_object, user

FIRST_ACCOUNT = 1001
MODBUS_ACCOUNT = "3001"  # the demo's Modbus panel (a pymodbus server on MODBUS_PORT)
MODBUS_PORT = 15020
ENCRYPTED_ACCOUNT = "2001"  # the demo's AES-128 panel, sending over UDP
DEMO_KEY_HEX = "000102030405060708090A0B0C0D0E0F"

OBJECTS: list[dict[str, Any]] = [
    {"name": "Алматы, ТРЦ «Есентай»", "address": "Алматы, пр. Аль-Фараби, 77/8", "lat": 43.2187, "lon": 76.9286, "tv": True},
    {"name": "Алматы, филиал банка", "address": "Алматы, ул. Панфилова, 98", "lat": 43.2610, "lon": 76.9457, "tv": False},
    {"name": "Алматы, школа № 25", "address": "Алматы, мкр. Самал-2, 33", "lat": 43.2330, "lon": 76.9560, "tv": True},
    {"name": "Алматы, аптека «Жанна»", "address": "Алматы, ул. Толе би, 180", "lat": 43.2540, "lon": 76.8890, "tv": False},
    {"name": "Алматы, склад ТОО «Береке»", "address": "Алматы, ул. Бекмаханова, 93", "lat": 43.3120, "lon": 76.9630, "tv": False},
    {"name": "Алматы, ювелирный салон", "address": "Алматы, ул. Жибек Жолы, 50", "lat": 43.2620, "lon": 76.9420, "tv": False},
    {"name": "Астана, бизнес-центр «Нурсая»", "address": "Астана, пр. Достык, 5", "lat": 51.1280, "lon": 71.4300, "tv": True},
    {"name": "Астана, АЗС № 12", "address": "Астана, ш. Коргалжын, 21", "lat": 51.1560, "lon": 71.3870, "tv": True},
    {"name": "Астана, квартира (ЖК «Хайвил»)", "address": "Астана, ул. Сыганак, 10, кв. 45", "lat": 51.1230, "lon": 71.4190, "tv": False},
    {"name": "Астана, детский сад «Балапан»", "address": "Астана, ул. Кенесары, 40", "lat": 51.1660, "lon": 71.4240, "tv": True},
    {"name": "Алматы, офис ТОО «Тау»", "address": "Алматы, пр. Абая, 150", "lat": 43.2400, "lon": 76.8760, "tv": False},
    {"name": "Алматы, магазин электроники", "address": "Алматы, ул. Розыбакиева, 247", "lat": 43.2010, "lon": 76.8930, "tv": False},
]
ZONES = ["Входная дверь", "Окна 1 этаж", "ИК-датчик холл", "ИК-датчик склад", "Тревожная кнопка", "Дымовой датчик"]
INSTRUCTIONS = ("При тревоге: позвонить ответственному лицу по порядку; при отсутствии ответа "
                "направить ГБР. Тревожная кнопка — ГБР немедленно, звонок после выезда.")
USERS = [("admin", "admin", "Администратор", "ru"), ("operator", "operator", "Дежурный оператор", "kk"),
         ("crew1", "crew", "Экипаж ГБР-1", "ru"), ("crew2", "crew", "Экипаж ГБР-2", "kk"),
         ("auditor", "auditor", "Аудитор", "ru")]


async def seed(pool: asyncpg.Pool, home: Path) -> list[dict[str, str]]:
    """Seed the demo post once; return the demo users and their passwords."""
    creds = await _seed(pool, home)
    from kuzet import demo_compliance, demo_dispatch

    # dispatch's first: compliance links its personnel records to dispatch's staff
    creds = await demo_dispatch.seed(pool, home, creds)
    await demo_compliance.seed(pool, home)
    return creds


async def _seed(pool: asyncpg.Pool, home: Path) -> list[dict[str, str]]:
    creds_file = home / "demo-users.json"
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT count(*) FROM users") and creds_file.exists():
            creds: list[dict[str, str]] = json.loads(creds_file.read_text())
            return creds
        g1 = await conn.fetchval("INSERT INTO response_groups (name, call_sign, base_address, latitude, longitude)"
                                 " VALUES ('ГБР-1 Алматы', 'Беркут-1', 'Алматы, ул. Сатпаева, 30', 43.2370, 76.9300)"
                                 " ON CONFLICT (name) DO UPDATE SET call_sign = excluded.call_sign RETURNING id")
        g2 = await conn.fetchval("INSERT INTO response_groups (name, call_sign, base_address, latitude, longitude)"
                                 " VALUES ('ГБР-2 Астана', 'Сұңқар-2', 'Астана, ул. Бейбітшілік, 12', 51.1690, 71.4160)"
                                 " ON CONFLICT (name) DO UPDATE SET call_sign = excluded.call_sign RETURNING id")
        await conn.execute("INSERT INTO vehicles (group_id, plate, model) VALUES ($1, '777 ABK 02', 'Toyota Land Cruiser 200'),"
                           " ($2, '123 KZA 01', 'Lada Niva Travel') ON CONFLICT (plate) DO NOTHING", g1, g2)
        if not await conn.fetchval("SELECT count(*) FROM guarded_objects"):
            for i, o in enumerate(OBJECTS):
                oid = await guarded_object.create(conn, o["name"], address=o["address"], latitude=o["lat"],
                                                  longitude=o["lon"], terror_vulnerable=o["tv"],
                                                  instructions=INSTRUCTIONS)
                acc = await account.create(conn, str(FIRST_ACCOUNT + i), object_id=oid, supervision_interval=300)
                for z, name in enumerate(ZONES, start=1):
                    await guarded_object.add_zone(conn, acc, f"{z:03d}", name)
                await guarded_object.add_contact(conn, oid, "Ответственный", f"+7 701 555 {1000 + i:04d}", call_order=1)
                await guarded_object.add_contact(conn, oid, "Заместитель", f"+7 702 555 {2000 + i:04d}", call_order=2)
                if i == 1:  # the bank branch works Monday to Friday, 09:00-19:00 Almaty time
                    await guarded_object.set_schedule(conn, oid, [(d, dt.time(9), dt.time(19)) for d in range(5)])
            oid = await guarded_object.create(conn, "Алматы, ломбард (AES)", address="Алматы, ул. Гоголя, 39",
                                              latitude=43.2590, longitude=76.9450, instructions=INSTRUCTIONS)
            await account.create(conn, ENCRYPTED_ACCOUNT, object_id=oid, aes_key=DEMO_KEY_HEX, key_format="hex",
                                 supervision_interval=300)
            oid = await guarded_object.create(conn, "Астана, серверная (Modbus)", address="Астана, ул. Мәңгілік Ел, 55",
                                              latitude=51.0900, longitude=71.4180, terror_vulnerable=True,
                                              instructions=INSTRUCTIONS)
            acc = await account.create(conn, MODBUS_ACCOUNT, object_id=oid, protocol="modbus")
            for z in range(1, 9):
                await guarded_object.add_zone(conn, acc, f"{z:03d}", f"Шлейф {z}")
        creds = []
        await conn.execute("DELETE FROM users WHERE username = ANY($1::text[])", [u[0] for u in USERS])
        for username, role, full_name, lang in USERS:
            pw = secrets.token_urlsafe(12)
            await user.create(conn, username, pw, role, full_name=full_name, lang=lang,
                              group_id={"crew1": g1, "crew2": g2}.get(username))
            creds.append({"username": username, "password": pw, "role": role})
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(creds_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f)
    return creds


def receiver_settings(home: Path, modbus_port: int = MODBUS_PORT) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The demo's serial receiver (a Sur-Gard MLR2 emulator on a pty) and Modbus poller."""
    from receivers.sim.modbus_panel import default_points

    serial = [{"name": "surgard-demo", "url": str(home / "surgard-demo.tty"), "format": "mlr2",
               "heartbeat_interval": 90}]
    modbus = [{"name": "modbus-demo", "transport": "tcp", "host": "127.0.0.1", "port": modbus_port,
               "devices": [{"device_id": 1, "account": MODBUS_ACCOUNT, "points": default_points(8)}]}]
    return serial, modbus


def start_line_simulators(home: Path, *, rate: float, modbus_port: int = MODBUS_PORT) -> list[subprocess.Popen[bytes]]:
    """The peers Kuzet connects to (started before it, so the post does not open with a trouble
    alarm): a Sur-Gard MLR2 receiver writing into a pseudo-terminal, and a Modbus panel whose zones
    trip and clear now and then."""
    sim = [sys.executable, "-m", "kuzet", "sim"]
    tty = home / "surgard-demo.tty"
    home.mkdir(parents=True, exist_ok=True)
    script = "; ".join(f"sleep {40 + 7 * (i % 5)}; trip {1 + i % 8}; sleep 25; clear {1 + i % 8}" for i in range(400))
    procs = [
        subprocess.Popen(sim + ["serial", "--link", str(tty), "--format", "mlr2",
                                "--rate", str(max(rate / 10, 0.02)), "--heartbeat", "30"],
                         stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         start_new_session=True),
        subprocess.Popen(sim + ["modbus", "--tcp", f"127.0.0.1:{modbus_port}", "--zones", "8", "--script", script],
                         stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         start_new_session=True),
    ]
    for _ in range(100):  # the pty appears within a second or two
        if tty.exists():
            break
        time.sleep(0.05)
    return procs


def start_panel_simulators(host: str, port: int, *, panels: int, rate: float) -> list[subprocess.Popen[bytes]]:
    """Real DC-09 transmitters in their own processes: plain SIA and Contact ID over TCP, an
    AES-encrypted panel over UDP, and a panel nobody configured."""
    base = [sys.executable, "-m", "kuzet", "sim", "dc09", "--host", host, "--port", str(port)]
    half = max(1, panels // 2)
    cmds = [
        base + ["--accounts", str(half), "--first-account", str(FIRST_ACCOUNT), "--rate", str(rate / 2)],
        base + ["--accounts", str(max(1, panels - half)), "--first-account", str(FIRST_ACCOUNT + half),
                "--rate", str(rate / 2), "--cid"],
        base + ["--accounts", "1", "--first-account", ENCRYPTED_ACCOUNT, "--rate", "0.05", "--udp",
                "--key", DEMO_KEY_HEX],
        # one panel nobody configured: the operator must see it as an unknown account
        base + ["--accounts", "1", "--first-account", "9999", "--rate", "0.01"],
    ]
    # own sessions: Ctrl-C reaches Kuzet only, which stops its receivers before it ends the simulators
    return [subprocess.Popen(c, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
            for c in cmds]
