"""The REST API through a real uvicorn on 127.0.0.1 over the real (embedded) PostgreSQL.

Data is seeded through the console functions; alarms come from real signals run through the
alarm engine's `process_batch`, so the API sees exactly what production would.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import typing
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from console import account, alarm, audit, guarded_object, user
from console.config import Settings
from console.signal import Signal
from console.store import RejectedRecord, SignalStore
from kuzet.runtime import DOMAINS, UvicornServer
from web import i18n
from web.app import create_app
from web.routes import alarms as alarm_routes

PASSWORDS = {"admin": "admin-pass-1", "operator": "operator-pass-1", "crew": "crew-pass-1",
             "auditor": "auditor-pass-1"}
RECEIVERS = [{"name": "dc09", "kind": "dc09-tcp+udp", "state": "running", "connections": 2, "accepted": 7,
              "acked": 7, "not_acked": 0, "rejected": 1, "last_minute": 3, "last_signal_at": None}]


@dataclass
class Web:
    url: str
    pool: asyncpg.Pool
    users: dict[str, int]
    app: Any = None  # the FastAPI application (tests/test_roles.py walks its routes)

    def client(self, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, **kw)

    @contextlib.asynccontextmanager
    async def login(self, role: str) -> AsyncIterator[httpx.AsyncClient]:
        async with self.client() as c:
            r = await c.post("/api/login", json={"username": role, "password": PASSWORDS[role]})
            assert r.status_code == 200, r.text
            yield c


@contextlib.asynccontextmanager
async def serve(pool: asyncpg.Pool, migrated: str, tmp_path: Path) -> AsyncIterator[Web]:
    """The app on a real uvicorn with one user per role (also used by other test modules)."""
    ids = {}
    for role, password in PASSWORDS.items():
        ids[role] = await user.create(pool, role, password, role, full_name=f"Test {role}", lang="en")
    app = create_app(pool, migrated, health=lambda: RECEIVERS, settings=Settings(home=tmp_path, web_port=0),
                     domains=DOMAINS)
    server = UvicornServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                                    ws_per_message_deflate=False, timeout_graceful_shutdown=3))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Web(f"http://127.0.0.1:{port}", pool, ids, app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def web(pool: asyncpg.Pool, migrated: str, tmp_path: Path) -> AsyncIterator[Web]:
    async with serve(pool, migrated, tmp_path) as w:
        yield w


def sig(account_no: str = "1234", code: str = "BA", zone: str = "003", seq: str = "0001") -> Signal:
    return Signal(receiver="test", protocol="SIA-DCS", account=account_no, code=code, code_kind="sia",
                  received_at=datetime.now(UTC), raw=f"raw {code}\r".encode(), sequence=seq, zone=zone,
                  line_no="0")


async def store_signals(pool: asyncpg.Pool, signals: list[Signal],
                        rejected: list[RejectedRecord] | None = None) -> None:
    store = SignalStore(pool)
    await store.start()
    try:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        for r in rejected or []:
            store.reject(r)
        store.submit(list(signals), done.set_result)
        assert await asyncio.wait_for(done, 10)
        await store.flush()
    finally:
        await store.stop()


async def seeded_alarm(pool: asyncpg.Pool) -> tuple[int, int]:
    """An object with account 1234 and a burglary alarm on it, through the real engine."""
    object_id = await guarded_object.create(pool, "Алматы, филиал банка", address="Алматы, ул. Панфилова, 98",
                                            latitude=43.261, longitude=76.9457, instructions="Call the keyholder")
    await account.create(pool, "1234", object_id=object_id)
    await store_signals(pool, [sig()])
    async with pool.acquire() as conn:
        result = await alarm.process_batch(conn)
    assert len(result.changed) == 1
    return object_id, result.changed[0]


async def audit_actions(pool: asyncpg.Pool) -> list[tuple[str, str, str]]:
    rows = await pool.fetch("SELECT actor, action, entity_id FROM audit_log ORDER BY id")
    return [(r["actor"], r["action"], r["entity_id"]) for r in rows]


# -- anonymous access -------------------------------------------------------------------------------


async def test_every_api_route_refuses_anonymous_users(web: Web) -> None:
    async with web.login("operator") as c:
        schema = (await c.get("/api/openapi.json")).json()
    paths: dict[str, dict[str, Any]] = schema["paths"]
    expected = {"/api/login", "/api/logout", "/api/me", "/api/alarms", "/api/alarms/{alarm_id}",
                "/api/alarms/{alarm_id}/ack", "/api/alarms/{alarm_id}/close", "/api/alarms/{alarm_id}/note",
                "/api/objects", "/api/objects/{object_id}", "/api/accounts", "/api/signals", "/api/rejected",
                "/api/receivers", "/api/status"}
    assert expected <= set(paths), set(paths) ^ expected
    checked = 0
    async with web.client() as anon:
        for path, methods in paths.items():
            if path == "/api/login":
                continue
            url = re.sub(r"\{[^}]+\}", "1", path)
            for method in methods:
                r = await anon.request(method.upper(), url)
                assert r.status_code == 401, (method, path, r.status_code, r.text)
                assert r.json() == {"detail": "not logged in"}
                checked += 1
        assert checked >= 16
        # the schema itself, routes that do not exist, the board page, the websocket's HTTP twin
        assert (await anon.get("/api/openapi.json")).status_code == 401
        assert (await anon.get("/api/no-such-thing")).status_code == 401
        r = await anon.get("/board")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/board"
        r = await anon.get("/")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert (await anon.get("/docs")).status_code == 303  # no docs page; anonymous goes to the login
        # public: the login page and the static assets, but not the pages through /static
        r = await anon.get("/login")
        assert r.status_code == 200 and 'data-testid="login-form"' in r.text
        assert (await anon.get("/static/board.js")).status_code == 200
        assert (await anon.get("/static/board.html")).status_code == 404
        r = await anon.get("/static/i18n.js")
        assert r.status_code == 200 and "KUZET_I18N" in r.text and "Дабылдар" in r.text


async def test_security_headers_and_cross_origin_refusal(web: Web) -> None:
    async with web.client() as anon:
        r = await anon.get("/login")
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        r = await anon.post("/api/login", json={"username": "operator", "password": PASSWORDS["operator"]},
                            headers={"origin": "http://evil.example"})
        assert r.status_code == 403
    async with web.login("operator") as c:
        r = await c.post("/api/alarms/1/ack", headers={"origin": "http://evil.example"})
        assert r.status_code == 403 and "cross-origin" in r.json()["detail"]
        r = await c.post("/api/alarms/1/ack", headers={"origin": web.url})
        assert r.status_code == 404  # same origin passes the check (and there is no alarm 1)


# -- sessions --------------------------------------------------------------------------------------


async def test_login_logout_sets_and_clears_a_strict_httponly_cookie(web: Web) -> None:
    async with web.client() as c:
        r = await c.post("/api/login", json={"username": "operator", "password": "wrong"})
        assert r.status_code == 401 and r.json()["detail"] == "wrong username or password"
        assert "kuzet_session" not in c.cookies

        r = await c.post("/api/login", json={"username": "operator", "password": PASSWORDS["operator"]})
        assert r.status_code == 200
        me = r.json()
        assert me["username"] == "operator" and me["role"] == "operator" and me["can_act"] is True
        assert me["timezone"] == "Asia/Almaty" and me["outcomes"] == list(alarm.OUTCOMES)
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("kuzet_session=")
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and "path=/" in cookie.lower()
        token = c.cookies["kuzet_session"]

        r = await c.get("/api/me")
        assert r.status_code == 200 and r.json()["id"] == web.users["operator"]
        assert r.headers["cache-control"] == "no-store"
        r = await c.get("/board")
        assert r.status_code == 200 and 'data-testid="alarm-table"' in r.text

        r = await c.post("/api/logout")
        assert r.status_code == 200
        assert 'kuzet_session=""' in r.headers["set-cookie"] or "max-age=0" in r.headers["set-cookie"].lower()
    async with web.client(cookies={"kuzet_session": token}) as stale:
        assert (await stale.get("/api/me")).status_code == 401  # the session is gone server-side
    actions = [a for _, a, _ in await audit_actions(web.pool)]
    assert actions == ["user.login-failed", "user.login", "user.logout"]
    assert (await web.pool.fetchval("SELECT count(*) FROM sessions")) == 0


async def test_repeated_failed_logins_are_throttled(web: Web) -> None:
    async with web.client() as c:
        for _ in range(10):
            r = await c.post("/api/login", json={"username": "nobody", "password": "guess"})
            assert r.status_code == 401
        r = await c.post("/api/login", json={"username": "nobody", "password": "guess"})
        assert r.status_code == 429 and "too many" in r.json()["detail"]
        # guessing at one name does not lock the real operators out
        r = await c.post("/api/login", json={"username": "operator", "password": PASSWORDS["operator"]})
        assert r.status_code == 200


# -- roles -----------------------------------------------------------------------------------------


async def test_roles(web: Web) -> None:
    _object_id, alarm_id = await seeded_alarm(web.pool)
    new_object = {"name": "Астана, АЗС № 12"}
    new_account = {"number": "5678"}

    async with web.login("crew") as crew:
        assert (await crew.get("/api/me")).json()["can_act"] is False
        for path in ("/api/alarms", f"/api/alarms/{alarm_id}", "/api/objects", "/api/signals", "/api/status"):
            assert (await crew.get(path)).status_code == 403, path
        r = await crew.post(f"/api/alarms/{alarm_id}/ack")
        assert r.status_code == 403 and "crew" in r.json()["detail"]
        r = await crew.get("/board")  # the crew's place is the phone view
        assert r.status_code == 303 and r.headers["location"] == "/crew"
        r = await crew.get("/crew")
        assert r.status_code == 200 and "crew.js" in r.text
        for page in ("/dispatch/admin", "/dispatch/records"):
            r = await crew.get(page)
            assert r.status_code == 403 and "no access" in r.text, page

    async with web.login("auditor") as auditor:
        assert (await auditor.get("/api/alarms")).status_code == 200
        assert (await auditor.get(f"/api/alarms/{alarm_id}")).status_code == 200
        assert (await auditor.get("/board")).status_code == 200
        assert (await auditor.get("/dispatch/records")).status_code == 200
        for page in ("/crew", "/dispatch/admin"):
            r = await auditor.get(page)
            assert r.status_code == 403 and "no access" in r.text, page
        assert (await auditor.post(f"/api/alarms/{alarm_id}/ack")).status_code == 403
        r = await auditor.post(f"/api/alarms/{alarm_id}/close", json={"outcome": "test"})
        assert r.status_code == 403
        assert (await auditor.post(f"/api/alarms/{alarm_id}/note", json={"note": "x"})).status_code == 403
        assert (await auditor.post("/api/objects", json=new_object)).status_code == 403

    async with web.login("operator") as op:
        assert (await op.get("/crew")).status_code == 403
        assert (await op.get("/dispatch/admin")).status_code == 403
        assert (await op.get("/dispatch/records")).status_code == 200
        assert (await op.post("/api/objects", json=new_object)).status_code == 403
        assert (await op.post("/api/accounts", json=new_account)).status_code == 403

    async with web.login("admin") as admin:
        assert (await admin.post("/api/objects", json=new_object)).status_code == 201
        assert (await admin.post("/api/accounts", json=new_account)).status_code == 201
        assert (await admin.post(f"/api/alarms/{alarm_id}/ack")).status_code == 200
    row = await web.pool.fetchrow("SELECT state FROM alarms WHERE id = $1", alarm_id)
    assert row["state"] == "acknowledged"  # nobody but the admin changed anything


# -- bad requests ----------------------------------------------------------------------------------


async def test_bad_payloads_get_clear_errors(web: Web) -> None:
    object_id, alarm_id = await seeded_alarm(web.pool)
    async with web.client() as anon:
        r = await anon.post("/api/login", json={"username": "operator"})
        assert r.status_code == 422
        assert r.json()["detail"] == "password: Field required"
        r = await anon.post("/api/login", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422 and "JSON" in r.json()["detail"]
        r = await anon.post("/api/login", json={"username": "operator", "password": 12345})
        assert r.status_code == 422 and "12345" not in r.text  # the input is never echoed

    async with web.login("operator") as op:
        r = await op.post(f"/api/alarms/{alarm_id}/close", json={"outcome": "bogus"})
        assert r.status_code == 422
        body = r.json()
        assert body["detail"].startswith("outcome: Input should be 'real-alarm', 'false-alarm'")
        assert body["errors"][0]["loc"] == ["body", "outcome"]
        r = await op.post(f"/api/alarms/{alarm_id}/close", json={"outcome": "test", "colour": "red"})
        assert r.status_code == 422 and r.json()["detail"].startswith("colour: Extra inputs")
        r = await op.post(f"/api/alarms/{alarm_id}/close", json={"outcome": "test", "note": "x" * 2001})
        assert r.status_code == 422 and "note" in r.json()["detail"]
        r = await op.post(f"/api/alarms/{alarm_id}/note", json={"note": "   "})
        assert r.status_code == 422 and r.json()["detail"].startswith("note: String should have at least 1")
        r = await op.post(f"/api/alarms/{alarm_id}/close")
        assert r.status_code == 422 and r.json()["detail"] == "body: Field required"
        r = await op.get("/api/alarms/abc")
        assert r.status_code == 422 and r.json()["detail"].startswith("path.alarm_id:")
        r = await op.get("/api/alarms?limit=0")
        assert r.status_code == 422 and r.json()["detail"].startswith("query.limit:")
        r = await op.get("/api/alarms/999")
        assert r.status_code == 404 and r.json()["detail"] == "alarm 999 does not exist"
        assert (await op.post("/api/alarms/999/ack")).status_code == 404
        r = await op.get("/api/objects/999")
        assert r.status_code == 404

    async with web.login("admin") as admin:
        r = await admin.post("/api/objects", json={"name": "", "latitude": 123})
        assert r.status_code == 422
        detail = r.json()["detail"]
        assert "name: String should have at least 1 character" in detail and "latitude:" in detail
        r = await admin.post("/api/accounts", json={"number": "12 34"})
        assert r.status_code == 422 and r.json()["detail"].startswith("number: String should match")
        r = await admin.post("/api/accounts", json={"number": "4321", "aes_key": "zz" * 16})
        assert r.status_code == 422 and "aes_key" in r.json()["detail"]
        r = await admin.post("/api/accounts", json={"number": "4321", "aes_key": "00" * 10})
        assert r.status_code == 422 and "16, 24 or 32 bytes" in r.json()["detail"]
        r = await admin.post("/api/accounts", json={"number": "4321", "prefix": "X9"})
        assert r.status_code == 422 and r.json()["detail"].startswith("prefix:")
        r = await admin.post("/api/accounts", json={"number": "4321", "object_id": 999})
        assert r.status_code == 400 and r.json()["detail"] == "object 999 does not exist"
        r = await admin.post("/api/accounts", json={"number": "1234", "object_id": object_id})
        assert r.status_code == 409 and "already exists" in r.json()["detail"]


# -- the alarm flow --------------------------------------------------------------------------------


async def test_acknowledge_close_flow_with_conflicts_history_and_audit(web: Web) -> None:
    object_id, alarm_id = await seeded_alarm(web.pool)
    async with web.login("operator") as op:
        listed = (await op.get("/api/alarms")).json()
        assert [a["id"] for a in listed] == [alarm_id]
        a = listed[0]
        assert a["object_id"] == object_id and a["object_name"] == "Алматы, филиал банка"
        assert a["state"] == "new" and a["kind"] == "signal" and a["last_code"] == "BA"
        assert set(a["title"]) == {"kk", "ru", "en"}
        assert datetime.fromisoformat(a["opened_at"]).tzinfo is not None

        r = await op.post(f"/api/alarms/{alarm_id}/close", json={"outcome": "false-alarm"})
        assert r.status_code == 409 and r.json()["detail"] == f"alarm {alarm_id} is new; cannot closed"

        r = await op.post(f"/api/alarms/{alarm_id}/ack")
        assert r.status_code == 200 and r.json()["state"] == "acknowledged"
        r = await op.post(f"/api/alarms/{alarm_id}/ack")
        assert r.status_code == 409 and "is acknowledged" in r.json()["detail"]

        r = await op.post(f"/api/alarms/{alarm_id}/note", json={"note": "  Keyholder called, on the way  "})
        assert r.status_code == 200
        assert r.json()["history"][-1]["detail"] == {"note": "Keyholder called, on the way"}

        # the object's instructions are a checklist: closing waits for it (or a reason)
        r = await op.post(f"/api/alarms/{alarm_id}/close", json={"outcome": "false-alarm", "note": "cat in the hall"})
        assert r.status_code == 409 and r.json()["open_items"] == ["Call the keyholder"]
        assert "checklist_reason" in r.json()["detail"]
        r = await op.post(f"/api/alarms/{alarm_id}/checklist/1", json={"done": True})
        assert r.status_code == 200 and r.json()[0]["done"] is True and r.json()[0]["by"] == "operator"
        r = await op.post(f"/api/alarms/{alarm_id}/close", json={"outcome": "false-alarm", "note": "cat in the hall"})
        assert r.status_code == 200
        closed = r.json()
        assert closed["state"] == "closed" and closed["outcome"] == "false-alarm"
        r = await op.post(f"/api/alarms/{alarm_id}/close", json={"outcome": "false-alarm"})
        assert r.status_code == 409 and "is closed" in r.json()["detail"]

        assert (await op.get("/api/alarms")).json() == []
        assert [a["id"] for a in (await op.get("/api/alarms?closed=1")).json()] == [alarm_id]
        detail = (await op.get(f"/api/alarms/{alarm_id}")).json()
        assert [h["kind"] for h in detail["history"]] == ["opened", "acknowledged", "note", "check", "closed"]
        assert [h["username"] for h in detail["history"]] == [None, "operator", "operator", "operator", "operator"]

    row = await web.pool.fetchrow("SELECT state, outcome, acknowledged_by, closed_by FROM alarms WHERE id = $1",
                                  alarm_id)
    assert dict(row) == {"state": "closed", "outcome": "false-alarm", "acknowledged_by": web.users["operator"],
                         "closed_by": web.users["operator"]}
    mine = [(actor, action) for actor, action, entity in await audit_actions(web.pool) if entity == str(alarm_id)]
    assert mine == [("system:alarm-engine", "alarm.opened"), ("operator", "alarm.acknowledged"),
                    ("operator", "alarm.note"), ("operator", "alarm.check"), ("operator", "alarm.closed")]
    async with web.pool.acquire() as conn:
        assert (await audit.verify(conn)).ok


# -- objects, accounts, signals, rejected frames, receivers, status --------------------------------


async def test_objects_accounts_and_reading_views(web: Web) -> None:
    key = "000102030405060708090A0B0C0D0E0F"
    async with web.login("admin") as admin:
        r = await admin.post("/api/objects", json={
            "name": "Астана, детский сад «Балапан»", "address": "Астана, ул. Кенесары, 40", "latitude": 51.166,
            "longitude": 71.424, "terror_vulnerable": True, "instructions": "Тревожная кнопка — ГБР немедленно",
            "contacts": [{"name": "Айгүл Серікқызы", "phone": "+7 701 123 45 67", "call_order": 1}]})
        assert r.status_code == 201, r.text
        card = r.json()
        object_id = card["id"]
        assert card["contacts"] == [{"name": "Айгүл Серікқызы", "phone": "+7 701 123 45 67", "role": "keyholder",
                                     "call_order": 1}]
        r = await admin.post("/api/accounts", json={
            "number": "abc1", "object_id": object_id, "prefix": "L0", "aes_key": key, "supervision_interval": 600,
            "zones": [{"number": "001", "name": "Входная дверь"}, {"number": "003", "name": "ИК-датчик холл"}]})
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["number"] == "ABC1" and created["encrypted"] is True and "aes_key" not in created
        assert key not in r.text

    await store_signals(web.pool, [sig("ABC1", "FA", "001", "0007"), sig("9999", "BA", "002", "0008")], [
        RejectedRecord(datetime.now(UTC), "dc09", "10.0.0.9:5000", "crc", "CRC 0000 sent, 1234 computed", "1234",
                       b"\n0000NAK\r", b"\n0000003E\"SIA-DCS\"\x00\xff\r")])

    async with web.login("operator") as op:
        objects = (await op.get("/api/objects")).json()
        assert [o["name"] for o in objects] == ["Астана, детский сад «Балапан»"] and objects[0]["accounts"] == ["ABC1"]
        card = (await op.get(f"/api/objects/{object_id}")).json()
        assert card["terror_vulnerable"] is True and card["instructions"].startswith("Тревожная")
        assert [z["name"] for z in card["zones"]] == ["Входная дверь", "ИК-датчик холл"]
        assert card["accounts"][0]["encrypted"] is True and card["accounts"][0]["last_seen_at"] is not None
        assert [a["number"] for a in (await op.get(f"/api/accounts?object_id={object_id}")).json()] == ["ABC1"]

        signals = (await op.get("/api/signals")).json()
        assert [s["account"] for s in signals] == ["9999", "ABC1"]  # newest first
        fire = signals[1]
        assert fire["object_name"] == "Астана, детский сад «Балапан»" and fire["zone_name"] == "Входная дверь"
        assert set(fire["description"]) == {"kk", "ru", "en"} and "fire" in fire["description"]["en"].lower()
        assert signals[0]["object_id"] is None
        only = (await op.get("/api/signals?account=abc1&limit=5")).json()
        assert [s["code"] for s in only] == ["FA"]

        rejected = (await op.get("/api/rejected")).json()
        assert len(rejected) == 1 and rejected[0]["reason"] == "crc"
        assert rejected[0]["raw"] == '\\n0000003E"SIA-DCS"\\x00\\xff\\r'

        assert (await op.get("/api/receivers")).json() == RECEIVERS
        status = (await op.get("/api/status")).json()
        assert status["signals"] == 2 and status["rejected_frames"] == 1
        assert status["schema_version"] == status["latest_version"]
        assert status["web"]["listening"] is True

    entries = await web.pool.fetch("SELECT action, detail::text AS detail FROM audit_log WHERE actor = 'admin' AND action <> 'user.login'")
    assert [e["action"] for e in entries] == ["object.created", "account.created"]
    assert all(key not in e["detail"] for e in entries)  # the AES key never reaches the audit log


# -- the UI strings ---------------------------------------------------------------------------------


async def test_object_schedule(web: Web) -> None:
    async with web.login("admin") as admin:
        object_id = (await admin.post("/api/objects", json={"name": "Банк"})).json()["id"]
        week = [{"weekday": d, "open_from": "08:30", "arm_by": "19:00"} for d in range(5)]
        r = await admin.put(f"/api/objects/{object_id}/schedule", json={"days": week})
        assert r.status_code == 200, r.text
        assert r.json()[0] == {"weekday": 0, "open_from": "08:30", "arm_by": "19:00"} and len(r.json()) == 5
        r = await admin.put(f"/api/objects/{object_id}/schedule", json={"days": week + [week[0]]})
        assert r.status_code == 422 and "at most once" in r.text
        r = await admin.put(f"/api/objects/{object_id}/schedule", json={"days": [{"weekday": 7, "open_from": "08:00",
                                                                                   "arm_by": "09:00"}]})
        assert r.status_code == 422
        assert (await admin.put("/api/objects/999999/schedule", json={"days": []})).status_code == 404
    async with web.login("operator") as op:
        assert len((await op.get(f"/api/objects/{object_id}/schedule")).json()) == 5
        assert (await op.put(f"/api/objects/{object_id}/schedule", json={"days": []})).status_code == 403
    # the supervision trigger computed when the object must be armed next
    assert await web.pool.fetchval("SELECT arm_due_at FROM guarded_objects WHERE id = $1", object_id) is not None
    assert ("admin", "object.schedule", str(object_id)) in await audit_actions(web.pool)


def test_every_ui_string_exists_in_kazakh_russian_and_english() -> None:
    for key, texts in i18n.STRINGS.items():
        assert set(texts) == set(i18n.LANGS), key
        assert all(t.strip() for t in texts.values()), key
    for outcome in alarm.OUTCOMES:
        assert f"outcome.{outcome}" in i18n.STRINGS
    for state in ("new", "acknowledged", "dispatched", "on-site", "closed"):
        assert f"state.{state}" in i18n.STRINGS
    for role in user.ROLES:
        assert f"role.{role}" in i18n.STRINGS
    assert typing.get_args(alarm_routes.Outcome) == alarm.OUTCOMES
    # every key the pages use is in the table
    static = Path(i18n.__file__).parent / "static"
    used: set[str] = set()
    for name in ("board.html", "login.html"):
        used |= set(re.findall(r'data-i18n(?:-title|-placeholder)?="([^"]+)"', (static / name).read_text()))
    for name in ("board.js", "login.js"):
        used |= set(re.findall(r'\bT\("([a-z_.-]+[a-z])"', (static / name).read_text()))  # not T("state." + s)
    assert used and used <= set(i18n.STRINGS), used - set(i18n.STRINGS)
