"""Dispatch through a real uvicorn over the real PostgreSQL: groups on duty, sending a group from an
alarm, the crews' steps through the API the phone uses and over /ws/crew, timers, records.

Two groups (Алматы and Астана) on duty now, each with an owned vehicle and a crew user linked
through its staff record; an alarm on an Almaty object opened by a real signal through the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from console import account, alarm, audit, guarded_object, user
from console.alarm import Actor
from console.config import Settings
from dispatch import group, shift, staff, timers, vehicle
from kuzet.runtime import DOMAINS, UvicornServer
from tests.test_web_api import sig, store_signals
from tests.util import until
from web.app import create_app

PASSWORD = "dispatch-pass-1"
ADMIN = Actor(None, "test")


@dataclass
class Post:
    url: str
    pool: asyncpg.Pool
    app: Any
    users: dict[str, int]
    groups: dict[str, int]
    objects: dict[str, int]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10)

    @contextlib.asynccontextmanager
    async def login(self, username: str) -> AsyncIterator[httpx.AsyncClient]:
        async with self.client() as c:
            r = await c.post("/api/login", json={"username": username, "password": PASSWORD})
            assert r.status_code == 200, r.text
            yield c

    def ws(self, c: httpx.AsyncClient, path: str = "/ws/crew") -> Any:
        token = c.cookies["kuzet_session"]
        return connect(self.url.replace("http", "ws") + path, additional_headers={"Cookie": f"kuzet_session={token}"},
                       open_timeout=5)

    async def alarm(self, number: str = "1001", code: str = "BA", seq: str = "0001") -> int:
        await store_signals(self.pool, [sig(number, code, "003", seq)])
        async with self.pool.acquire() as conn:
            changed = (await alarm.process_batch(conn)).changed
        assert len(changed) == 1
        return changed[0]


@pytest.fixture
async def post(pool: asyncpg.Pool, migrated: str, tmp_path: Path) -> AsyncIterator[Post]:
    ids = {}
    for name, role in (("admin", "admin"), ("operator", "operator"), ("operator2", "operator"),
                       ("auditor", "auditor"), ("crew1", "crew"), ("crew2", "crew"), ("crew3", "crew")):
        ids[name] = await user.create(pool, name, PASSWORD, role, lang="en")
    now = datetime.now(UTC)
    groups: dict[str, int] = {}
    async with pool.acquire() as conn:
        for key, name, lat, lon, plate, crew in (("almaty", "ГБР-1 Алматы", 43.2370, 76.9300, "777 ABK 02", "crew1"),
                                                 ("astana", "ГБР-2 Астана", 51.1690, 71.4160, "123 KZA 01", "crew2")):
            gid = await group.create(conn, ADMIN, name=name, call_sign=key, base_address=name, latitude=lat,
                                     longitude=lon, order_number=f"{len(groups) + 1}-ГБР")
            vid = await vehicle.create(conn, ADMIN, plate=plate, model="Niva", registration_certificate="KZ 00 123456",
                                       group_id=gid)
            sid = await staff.create(conn, ADMIN, full_name=f"Crew of {name}", role="senior", group_id=gid,
                                     user_id=ids[crew])
            await shift.create(conn, ADMIN, group_id=gid, vehicle_id=vid, starts_at=now - timedelta(hours=1),
                               ends_at=now + timedelta(hours=11), staff_ids=[sid])
            groups[key] = gid
        objects = {}
        for number, name, lat, lon in (("1001", "Алматы, филиал банка", 43.2610, 76.9457),
                                       ("1002", "Алматы, школа", 43.2330, 76.9560)):
            oid = await guarded_object.create(conn, name, address="Алматы", latitude=lat, longitude=lon,
                                              instructions="Call the keyholder")
            await guarded_object.add_contact(conn, oid, "Keyholder", "+7 701 555 0000")
            acc = await account.create(conn, number, object_id=oid)
            await guarded_object.add_zone(conn, acc, "003", "Hall PIR")
            objects[number] = oid
    app = create_app(pool, migrated, settings=Settings(home=tmp_path, web_port=0), domains=DOMAINS)
    server = UvicornServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                                          ws_per_message_deflate=False, timeout_graceful_shutdown=3))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Post(f"http://127.0.0.1:{port}", pool, app, ids, groups, objects)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def recv(ws: ClientConnection, want: Any, within: float = 10.0) -> dict[str, Any]:
    """The next message `want` accepts (others, pings included, are skipped)."""
    async def loop() -> dict[str, Any]:
        while True:
            m: dict[str, Any] = json.loads(await ws.recv())
            if want(m):
                return m
    return await asyncio.wait_for(loop(), within)


# -- the whole loop ---------------------------------------------------------------------------------


async def test_groups_suggest_dispatch_steps_and_the_alarm_follows(post: Post) -> None:
    alarm_id = await post.alarm()
    async with post.login("operator") as op, post.login("crew1") as crew:
        groups = (await op.get("/api/groups")).json()
        assert [g["name"] for g in groups] == ["ГБР-1 Алматы", "ГБР-2 Астана"]
        g1 = groups[0]
        assert g1["state"] == "available" and g1["on_duty"] is True and g1["position"] is None
        assert g1["vehicles"][0]["plate"] == "777 ABK 02" and g1["vehicles"][0]["ownership"] == "owned"
        assert g1["crew"][0]["full_name"] == "Crew of ГБР-1 Алматы" and g1["assignment"] is None

        s = (await op.get(f"/api/alarms/{alarm_id}/suggest")).json()
        assert s["suggested"] == post.groups["almaty"]  # a few km against a thousand
        near, far = s["groups"]
        assert near["from"] == "base" and 2 < near["distance_km"] < 6 and far["distance_km"] > 900
        assert near["eta_minutes"] == pytest.approx(near["distance_km"] / 40 * 60)

        # the crew's position now counts instead of the base
        r = await crew.post("/api/crew/position", json={"lat": 43.2600, "lon": 76.9450, "accuracy": 12})
        assert r.status_code == 200 and r.json()["group_id"] == post.groups["almaty"]
        s = (await op.get(f"/api/alarms/{alarm_id}/suggest")).json()
        assert s["groups"][0]["from"] == "position" and s["groups"][0]["distance_km"] < 0.2

        r = await op.post(f"/api/alarms/{alarm_id}/dispatch", json={"group_id": s["suggested"]})
        assert r.status_code == 201, r.text
        a = r.json()
        assert a["status"] == "new" and a["alarm_id"] == alarm_id and a["steps"]["dispatched"]["by"] == "operator"
        al = (await op.get(f"/api/alarms/{alarm_id}")).json()
        assert al["state"] == "dispatched" and al["acknowledged_at"]  # sending a group acknowledges
        assert [x["id"] for x in al["assignments"]] == [a["id"]]
        g1 = (await op.get(f"/api/groups/{post.groups['almaty']}")).json()
        assert g1["state"] == "dispatched" and g1["assignment"]["id"] == a["id"] and g1["position"]["lat"] == 43.26

        # the same group again: busy
        r = await op.post(f"/api/alarms/{alarm_id}/dispatch", json={"group_id": post.groups["almaty"]})
        assert r.status_code == 409 and "not available" in r.json()["detail"]

        card = (await crew.get("/api/crew/assignment")).json()
        assert card["assignment"]["id"] == a["id"] and card["assignment"]["object"]["name"] == "Алматы, филиал банка"
        assert card["assignment"]["object"]["contacts"][0]["phone"] == "+7 701 555 0000"
        assert card["assignment"]["object"]["zones"][0]["name"] == "Hall PIR"
        assert card["assignment"]["navigation"]["geo"].startswith("geo:43.261,76.9457")

        for step, group_state, alarm_state in (("accepted", "accepted", "dispatched"),
                                               ("en-route", "en-route", "dispatched"),
                                               ("on-site", "on-site", "on-site")):
            r = await crew.post(f"/api/assignments/{a['id']}/status", json={"status": step})
            assert r.status_code == 200 and r.json()["status"] == step and r.json()["recorded"] is True
            assert (await op.get(f"/api/groups/{post.groups['almaty']}")).json()["state"] == group_state
            assert (await op.get(f"/api/alarms/{alarm_id}")).json()["state"] == alarm_state
        r = await crew.post(f"/api/assignments/{a['id']}/status", json={"status": "finished"})
        assert r.status_code == 422 and "outcome" in r.json()["detail"]
        assert (await op.post(f"/api/alarms/{alarm_id}/checklist/1")).status_code == 200  # "Call the keyholder"
        r = await crew.post(f"/api/assignments/{a['id']}/status",
                            json={"status": "finished", "outcome": "false-alarm", "report": "Cat in the hall"})
        assert r.status_code == 200, r.text

        a = (await op.get(f"/api/assignments/{a['id']}")).json()
        assert a["status"] == "finished" and a["outcome"] == "false-alarm"
        assert all(a[f"{k}_at"] for k in ("dispatched", "accepted", "en_route", "on_site", "finished"))
        assert list(a["steps"]) == ["dispatched", "accepted", "en-route", "on-site", "finished"]
        assert a["steps"]["on-site"]["by"] == "crew1"
        al = (await op.get(f"/api/alarms/{alarm_id}")).json()
        assert al["state"] == "closed" and al["outcome"] == "false-alarm"  # closed with the crew's outcome
        kinds = [h["kind"] for h in al["history"]]
        assert kinds == ["opened", "acknowledged", "dispatched", "accepted", "en-route", "on-site", "check",
                         "finished", "closed"]
        assert (await op.get(f"/api/groups/{post.groups['almaty']}")).json()["state"] == "returning"

        t = (await op.get(f"/api/records/alarms/{alarm_id}")).json()
        assert all(t["steps"][k] for k in ("received", "acknowledged", "dispatched", "accepted", "en_route",
                                           "on_site", "finished", "closed"))
        assert {e["who"] for e in t["events"] if e["source"] == "assignment"} == {"operator", "crew1"}

    actions = [r["action"] for r in await post.pool.fetch("SELECT action FROM audit_log ORDER BY id")]
    for step in ("dispatched", "accepted", "en-route", "on-site", "finished"):
        assert f"assignment.{step}" in actions
    async with post.pool.acquire() as conn:
        assert (await audit.verify(conn)).ok


async def test_recall_with_a_reason_then_send_another_and_add_a_second(post: Post) -> None:
    alarm_id = await post.alarm()
    async with post.login("operator") as op:
        a1 = (await op.post(f"/api/alarms/{alarm_id}/dispatch", json={"group_id": post.groups["almaty"]})).json()
        r = await op.post(f"/api/assignments/{a1['id']}/recall", json={"reason": ""})
        assert r.status_code == 422 and "reason" in r.text
        r = await op.post(f"/api/assignments/{a1['id']}/recall", json={"reason": "Owner cancelled by phone"})
        assert r.status_code == 200 and r.json()["status"] == "recalled"
        assert r.json()["recall_reason"] == "Owner cancelled by phone"
        assert (await op.get(f"/api/alarms/{alarm_id}")).json()["state"] == "acknowledged"
        assert (await op.get(f"/api/groups/{post.groups['almaty']}")).json()["state"] == "available"
        assert (await op.post(f"/api/assignments/{a1['id']}/recall", json={"reason": "again"})).status_code == 409
        # another group, and then a second one as well
        a2 = await op.post(f"/api/alarms/{alarm_id}/dispatch", json={"group_id": post.groups["astana"]})
        a3 = await op.post(f"/api/alarms/{alarm_id}/dispatch", json={"group_id": post.groups["almaty"]})
        assert a2.status_code == 201 and a3.status_code == 201
        al = (await op.get(f"/api/alarms/{alarm_id}")).json()
        assert [x["status"] for x in al["assignments"]] == ["recalled", "new", "new"]
        assert "recalled" in [h["kind"] for h in al["history"]]
        # the recalled crew's late step is refused; the one already made is answered as made
        async with post.login("crew1") as crew:
            r = await crew.post(f"/api/assignments/{a1['id']}/status", json={"status": "accepted"})
            assert r.status_code == 409
        # the alarm is closed by the operator: no group can be sent any more
        async with post.login("crew2") as crew:
            assert (await crew.post(f"/api/assignments/{a2.json()['id']}/status",
                                    json={"status": "accepted"})).status_code == 200
        await op.post(f"/api/assignments/{a3.json()['id']}/recall", json={"reason": "one is enough"})
        await op.post(f"/api/assignments/{a2.json()['id']}/recall", json={"reason": "closing"})
        r = await op.post(f"/api/alarms/{alarm_id}/close", json={"outcome": "other", "checklist_reason": "test"})
        assert r.status_code == 200, r.text
        r = await op.post(f"/api/alarms/{alarm_id}/dispatch", json={"group_id": post.groups["almaty"]})
        assert r.status_code == 409 and "closed" in r.json()["detail"]


# -- who may do what ---------------------------------------------------------------------------------


async def test_a_crew_cannot_see_or_change_another_groups_assignment(post: Post) -> None:
    alarm_id = await post.alarm()
    async with post.login("operator") as op, post.login("crew1") as c1, post.login("crew2") as c2, \
            post.login("crew3") as c3:
        async with post.ws(c1) as ws1, post.ws(c2) as ws2:
            snap1, snap2 = json.loads(await ws1.recv()), json.loads(await ws2.recv())
            assert snap1["type"] == snap2["type"] == "snapshot"
            assert snap1["group"]["id"] == post.groups["almaty"] and snap1["assignment"] is None
            assert snap2["group"]["id"] == post.groups["astana"]
            a = (await op.post(f"/api/alarms/{alarm_id}/dispatch", json={"group_id": post.groups["almaty"]})).json()
            got = await recv(ws1, lambda m: m["type"] == "assignment")
            assert got["assignment"]["id"] == a["id"] and got["assignment"]["object"]["name"]

            # crew2: 403 on read and on every step, nothing changed
            assert (await c2.get(f"/api/assignments/{a['id']}")).status_code == 403
            for step in ("accepted", "en-route", "on-site"):
                r = await c2.post(f"/api/assignments/{a['id']}/status", json={"status": step})
                assert r.status_code == 403, r.text
            assert (await c2.get("/api/crew/assignment")).json()["assignment"] is None
            assert (await op.get(f"/api/assignments/{a['id']}")).json()["status"] == "new"
            # and over the websocket: crew2's next message is its own group's, not group 1's assignment
            await c2.post("/api/crew/position", json={"lat": 51.17, "lon": 71.42})
            m = await recv(ws2, lambda m: m["type"] != "ping")
            assert m["type"] == "group" and m["group"]["id"] == post.groups["astana"]
            # a crew user in no group gets nothing at all
            assert (await c3.get("/api/crew/assignment")).json() == {"group": None, "assignment": None, "phones": 0}
            assert (await c3.post("/api/crew/position", json={"lat": 1, "lon": 1})).status_code == 403
            async with post.ws(c3) as ws3:
                assert json.loads(await ws3.recv()) == {"type": "snapshot", "group": None, "assignment": None}
        # roles: crews do not see the board's groups; auditors and crews cannot dispatch; operators
        # cannot manage groups; the board's websocket is not a crew's, nor the crew's an operator's
        assert (await c1.get("/api/groups")).status_code == 403
        assert (await c1.post(f"/api/alarms/{alarm_id}/dispatch", json={"group_id": 1})).status_code == 403
        assert (await op.post("/api/groups", json={"name": "X"})).status_code == 403
        assert (await op.post("/api/crew/position", json={"lat": 1, "lon": 1})).status_code == 403
        async with post.ws(op) as wso:
            with pytest.raises(Exception) as closed:
                await asyncio.wait_for(wso.recv(), 5)
            assert closed.value.rcvd.code == 4403  # type: ignore[attr-defined]
    async with post.login("auditor") as aud:
        assert (await aud.post(f"/api/alarms/{alarm_id}/dispatch", json={"group_id": 1})).status_code == 403
        assert (await aud.get("/api/groups")).status_code == 200
        r = await aud.post(f"/api/assignments/{a['id']}/status", json={"status": "accepted"})
        assert r.status_code == 403


async def test_an_out_of_order_step_is_refused(post: Post) -> None:
    alarm_id = await post.alarm()
    async with post.login("operator") as op, post.login("crew1") as crew:
        a = (await op.post(f"/api/alarms/{alarm_id}/dispatch", json={"group_id": post.groups["almaty"]})).json()
        for step in ("en-route", "on-site", "finished"):
            r = await crew.post(f"/api/assignments/{a['id']}/status", json={"status": step, "outcome": "test"})
            assert r.status_code == 409 and "next step is accepted" in r.json()["detail"], r.text
        assert (await crew.post(f"/api/assignments/{a['id']}/status", json={"status": "accepted"})).status_code == 200
        r = await crew.post(f"/api/assignments/{a['id']}/status", json={"status": "on-site"})
        assert r.status_code == 409 and "next step is en-route" in r.json()["detail"]
        r = await crew.post(f"/api/assignments/{a['id']}/status", json={"status": "arrived"})
        assert r.status_code == 422 and "status" in r.text
        assert (await op.get(f"/api/assignments/{a['id']}")).json()["status"] == "accepted"
        n = await post.pool.fetchval("SELECT count(*) FROM assignment_events WHERE assignment_id = $1", a["id"])
        assert n == 2  # dispatched, accepted
        # finished while the operator's checklist is still open: the alarm waits for the operator
        for step in ("en-route", "on-site", "finished"):
            r = await crew.post(f"/api/assignments/{a['id']}/status", json={"status": step, "outcome": "real-alarm"})
            assert r.status_code == 200, r.text
        al = (await op.get(f"/api/alarms/{alarm_id}")).json()
        assert al["state"] == "acknowledged" and al["assignments"][0]["outcome"] == "real-alarm"
        assert al["handled_by"] == post.users["operator"]  # the operator who sent the group handles it


async def test_a_dropped_phone_connection_loses_and_doubles_no_step(post: Post) -> None:
    alarm_id = await post.alarm()
    async with post.login("operator") as op, post.login("crew1") as crew:
        async with post.ws(crew) as ws:
            assert json.loads(await ws.recv())["assignment"] is None
            a = (await op.post(f"/api/alarms/{alarm_id}/dispatch", json={"group_id": post.groups["almaty"]})).json()
            assert (await recv(ws, lambda m: m["type"] == "assignment"))["assignment"]["status"] == "new"
        # the connection is gone; the phone sends "accepted" and its answer is lost, so it sends it again
        step = {"status": "accepted", "request_id": "phone-1-step-1"}
        first, again = await asyncio.gather(crew.post(f"/api/assignments/{a['id']}/status", json=step),
                                            crew.post(f"/api/assignments/{a['id']}/status", json=step))
        assert first.status_code == again.status_code == 200
        assert sorted([first.json()["recorded"], again.json()["recorded"]]) == [False, True]
        retry = await crew.post(f"/api/assignments/{a['id']}/status", json=step)
        assert retry.status_code == 200 and retry.json()["recorded"] is False
        # reconnecting: the current state at once
        async with post.ws(crew) as ws:
            snap = json.loads(await ws.recv())
            assert snap["type"] == "snapshot" and snap["assignment"]["id"] == a["id"]
            assert snap["assignment"]["status"] == "accepted"
            # and what happens next arrives live
            r = await crew.post(f"/api/assignments/{a['id']}/status", json={"status": "en-route"})
            assert r.status_code == 200
            m = await recv(ws, lambda m: m["type"] == "assignment" and m["assignment"]["status"] == "en-route")
            assert m["assignment"]["steps"]["accepted"]["by"] == "crew1"
    kinds = [r["kind"] for r in await post.pool.fetch(
        "SELECT kind FROM assignment_events WHERE assignment_id = $1 ORDER BY id", a["id"])]
    assert kinds == ["dispatched", "accepted", "en-route"]
    history = [r["kind"] for r in await post.pool.fetch(
        "SELECT kind FROM alarm_events WHERE alarm_id = $1 ORDER BY id", alarm_id)]
    assert history.count("accepted") == 1


async def test_two_operators_sending_one_group_at_once_make_one_assignment(post: Post) -> None:
    alarms = [await post.alarm("1001", seq="0001"), await post.alarm("1002", seq="0002")]
    async with post.login("operator") as op1, post.login("operator2") as op2:
        for round_ in range(3):
            gid = post.groups["almaty"]
            # the same alarm from both desks, and two alarms at once
            targets = [(op1, alarms[0]), (op2, alarms[0])] if round_ == 0 else [(op1, alarms[0]), (op2, alarms[1])]
            replies = await asyncio.gather(*(c.post(f"/api/alarms/{al}/dispatch", json={"group_id": gid})
                                             for c, al in targets))
            codes = sorted(r.status_code for r in replies)
            assert codes == [201, 409], [r.text for r in replies]
            loser = next(r for r in replies if r.status_code == 409)
            assert "ГБР-1 Алматы" in loser.json()["detail"]
            n = await post.pool.fetchval("SELECT count(*) FROM assignments WHERE group_id = $1"
                                         " AND status IN ('new', 'accepted', 'en-route', 'on-site')", gid)
            assert n == 1
            winner = next(r for r in replies if r.status_code == 201).json()
            assert (await op1.post(f"/api/assignments/{winner['id']}/recall", json={"reason": "test"})).status_code == 200


# -- timers, records, shifts ------------------------------------------------------------------------


async def test_timers_alert_the_operator_when_a_crew_is_late(post: Post) -> None:
    alarm_id = await post.alarm()
    async with post.login("admin") as adm, post.login("operator") as op, post.login("crew1") as crew:
        r = await adm.patch("/api/dispatch/settings", json={"accept_timeout": 1})
        assert r.status_code == 200 and r.json()["accept_timeout"] == 1
        r = await adm.put(f"/api/objects/{post.objects['1001']}/response-time", json={"response_time": 2})
        assert r.status_code == 200 and r.json()["effective"] == 2
        assert (await op.patch("/api/dispatch/settings", json={"accept_timeout": 5})).status_code == 403
        async with post.ws(op, "/ws/board") as board:
            snap = json.loads(await board.recv())
            assert snap["type"] == "snapshot" and len(snap["groups"]) == 2 and snap["dispatch_warnings"] == []
            a = (await op.post(f"/api/alarms/{alarm_id}/dispatch", json={"group_id": post.groups["almaty"]})).json()
            m = await recv(board, lambda m: m["type"] == "group")
            assert m["group"]["state"] == "dispatched"
            alerts: list[dict[str, Any]] = []

            async def swept(kind: str) -> bool:
                async with post.pool.acquire() as conn:
                    alerts.extend(await timers.sweep(conn))
                return any(x["kind"] == kind for x in alerts)

            await until(lambda: swept("accept-overdue"), "the accept alert")
            m = await recv(board, lambda m: m["type"] == "dispatch-alert")
            assert m["alert"]["kind"] == "accept-overdue" and m["alert"]["assignment_id"] == a["id"]
            assert (await crew.post(f"/api/assignments/{a['id']}/status", json={"status": "accepted"})).status_code == 200
            await until(lambda: swept("arrive-overdue"), "the arrival alert")
            m = await recv(board, lambda m: m["type"] == "dispatch-alert" and m["alert"]["kind"] == "arrive-overdue")
            assert m["alert"]["alarm_id"] == alarm_id
        async with post.pool.acquire() as conn:
            assert await timers.sweep(conn) == []  # each alert once
        kinds = [h["kind"] for h in (await op.get(f"/api/alarms/{alarm_id}")).json()["history"]]
        assert kinds.count("accept-overdue") == 1 and kinds.count("arrive-overdue") == 1
        assert [e["kind"] for e in (await op.get(f"/api/assignments/{a['id']}")).json()["events"]] == [
            "dispatched", "accept-overdue", "accepted", "arrive-overdue"]


async def test_response_records_and_csv(post: Post) -> None:
    async with post.login("operator") as op, post.login("crew1") as crew:
        ids = []
        for i, seq in enumerate(("0001", "0002", "0003")):
            alarm_id = await post.alarm("1001" if i % 2 == 0 else "1002", seq=seq)
            a = (await op.post(f"/api/alarms/{alarm_id}/dispatch", json={"group_id": post.groups["almaty"]})).json()
            for step in ("accepted", "en-route", "on-site"):
                assert (await crew.post(f"/api/assignments/{a['id']}/status", json={"status": step})).status_code == 200
            await crew.post(f"/api/assignments/{a['id']}/status", json={"status": "finished", "outcome": "test"})
            ids.append((alarm_id, a["id"]))
        # known times: received at T, dispatched 60/120/180 s later, on site 300/600/900 s after that
        t = datetime.now(UTC) - timedelta(hours=2)
        for k, (alarm_id, aid) in enumerate(ids, start=1):
            await post.pool.execute("UPDATE alarms SET opened_at = $2 WHERE id = $1", alarm_id, t)
            await post.pool.execute("UPDATE assignments SET dispatched_at = $2, on_site_at = $3 WHERE id = $1", aid,
                                    t + timedelta(seconds=60 * k), t + timedelta(seconds=60 * k + 300 * k))
        r = await op.get("/api/records/response")
        assert r.status_code == 200
        rows = {g["group_name"]: g for g in r.json()["groups"]}
        g1 = rows["ГБР-1 Алматы"]
        assert (g1["count"], g1["finished"], g1["recalled"], g1["arrived"]) == (3, 3, 0, 3)
        assert (g1["dispatch_p50"], g1["dispatch_p90"], g1["dispatch_max"]) == (120.0, 168.0, 180.0)
        assert (g1["arrive_p50"], g1["arrive_p90"], g1["arrive_max"]) == (600.0, 840.0, 900.0)
        assert rows["ГБР-2 Астана"]["count"] == 0 and rows["ГБР-2 Астана"]["arrive_p50"] is None

        r = await op.get("/api/records/response", params={"format": "csv", "group_id": post.groups["almaty"]})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        table = list(csv.DictReader(io.StringIO(r.text)))
        assert len(table) == 1 and table[0]["count"] == "3" and float(table[0]["arrive_p90"]) == 840.0
        # a period with nothing in it, and a bad one
        r = await op.get("/api/records/response", params={"from": "2020-01-01T00:00:00+05:00",
                                                          "to": "2020-02-01T00:00:00+05:00"})
        assert all(g["count"] == 0 for g in r.json()["groups"])
        r = await op.get("/api/records/response", params={"from": "2020-02-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"})
        assert r.status_code == 422 and "to" in r.json()["detail"]
        r = await op.get("/api/records/assignments")
        assert [x["id"] for x in r.json()["assignments"]] == [aid for _, aid in ids]


async def test_shifts_overlaps_eligibility_and_warnings(post: Post) -> None:
    now = datetime.now(UTC)
    async with post.login("admin") as adm, post.login("operator") as op:
        assert (await op.get("/api/dispatch/warnings")).json() == []
        g = (await adm.post("/api/groups", json={"name": "ГБР-3", "order_number": "7-ГБР",
                                                 "order_date": "2026-01-15", "latitude": 43.2, "longitude": 76.9})).json()
        assert g["state"] == "off-duty" and g["order_date"] == "2026-01-15"
        assert (await adm.post("/api/groups", json={"name": "ГБР-3"})).status_code == 409
        assert (await adm.post("/api/groups", json={"name": "ГБР-4", "latitude": 100})).status_code == 422
        v = (await adm.post("/api/vehicles", json={"plate": "001 AAA 02", "registration_certificate": "KZ 02 000001",
                                                   "ownership": "leased", "group_id": g["id"]})).json()
        assert v["ownership"] == "leased"
        r = await adm.post("/api/vehicles", json={"plate": "002 AAA 02", "ownership": "rented"})
        assert r.status_code == 422 and "ownership" in r.text
        s1 = (await adm.post("/api/staff", json={"full_name": "Serik", "role": "senior", "group_id": g["id"]})).json()
        s2 = (await adm.post("/api/staff", json={"full_name": "Aidos", "role": "guard", "group_id": g["id"]})).json()
        # a crew link must be a crew account
        r = await adm.patch(f"/api/staff/{s2['id']}", json={"user_id": post.users["operator"]})
        assert r.status_code == 422 and "user_id" in r.json()["detail"]

        body = {"group_id": g["id"], "starts_at": (now - timedelta(minutes=5)).isoformat(),
                "ends_at": (now + timedelta(hours=8)).isoformat(), "staff_ids": [s1["id"], s2["id"]]}
        # compliance's hook refuses a guard and says why
        reasons = {s2["id"]: "no valid guard certificate"}

        async def check(_conn: asyncpg.Connection, staff_id: int, _s: datetime, _e: datetime) -> str | None:
            return reasons.get(staff_id)

        post.app.state.shift_eligibility = check
        r = await adm.post("/api/shifts", json=body)
        assert r.status_code == 409 and "Aidos" in r.json()["detail"] and "certificate" in r.json()["detail"]
        post.app.state.shift_eligibility = None
        r = await adm.post("/api/shifts", json={**body, "ends_at": body["starts_at"]})
        assert r.status_code == 422 and "ends_at" in r.json()["detail"]
        r = await adm.post("/api/shifts", json={**body, "starts_at": "2026-11-29T10:00:00"})
        assert r.status_code == 422  # a time without a zone is refused
        sh = await adm.post("/api/shifts", json=body)  # no vehicle: the board warns
        assert sh.status_code == 201, sh.text
        warns = (await op.get("/api/dispatch/warnings")).json()
        assert [w["code"] for w in warns] == ["shift-without-vehicle"] and warns[0]["group_id"] == g["id"]
        assert warns[0]["message"]["kk"] and warns[0]["message"]["ru"]
        # overlaps: the same group, the same staff member, the same vehicle
        assert (await adm.post("/api/shifts", json=body)).status_code == 409
        other = (await adm.post("/api/groups", json={"name": "ГБР-5"})).json()
        r = await adm.post("/api/shifts", json={**body, "group_id": other["id"], "staff_ids": [s1["id"]]})
        assert r.status_code == 409 and "Serik" in r.json()["detail"]
        r = await adm.post("/api/shifts", json={**body, "group_id": other["id"], "staff_ids": [],
                                                "vehicle_id": post_vehicle(await op.get("/api/vehicles"), "777 ABK 02")})
        assert r.status_code == 409 and "vehicle" in r.json()["detail"]
        r = await adm.patch(f"/api/shifts/{sh.json()['id']}", json={"vehicle_id": v["id"]})
        assert r.status_code == 200 and r.json()["plate"] == "001 AAA 02"
        assert (await op.get("/api/dispatch/warnings")).json() == []
        g3 = (await op.get(f"/api/groups/{g['id']}")).json()
        assert g3["state"] == "available" and [c["full_name"] for c in g3["crew"]] == ["Serik", "Aidos"]

        # two groups off duty: fewer than two on duty with a vehicle
        for sh_ in (await op.get("/api/shifts")).json():
            if sh_["group_id"] != g["id"]:
                assert (await adm.delete(f"/api/shifts/{sh_['id']}")).status_code == 200
        warns = (await op.get("/api/dispatch/warnings")).json()
        assert [w["code"] for w in warns] == ["few-groups-on-duty"] and warns[0]["on_duty_with_vehicle"] == 1
        assert (await op.get(f"/api/groups/{post.groups['almaty']}")).json()["state"] == "off-duty"
        alarm_id = await post.alarm()
        r = await op.post(f"/api/alarms/{alarm_id}/dispatch", json={"group_id": post.groups["almaty"]})
        assert r.status_code == 409 and "off-duty" in r.json()["detail"]
    actions = {r["action"] for r in await post.pool.fetch("SELECT action FROM audit_log")}
    assert {"group.created", "vehicle.created", "staff.created", "shift.created", "shift.updated",
            "shift.cancelled"} <= actions


def post_vehicle(r: httpx.Response, plate: str) -> int:
    return int(next(v["id"] for v in r.json() if v["plate"] == plate))


# -- the simulated crew ------------------------------------------------------------------------------


async def test_the_simulated_crew_answers_through_the_phone_api_and_stands_aside(post: Post) -> None:
    """`kuzet sim crews` in its own process: it accepts, drives (its position moves toward the
    object), goes on site and finishes; while a phone view of its group is open it does nothing."""
    alarm_id = await post.alarm()
    env = {**os.environ, "KUZET_SIM_PASSWORD": PASSWORD}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kuzet", "sim", "crews", "--url", post.url, "--user", "crew1", "--tick", "0.3",
        "--max-drive", "3", "--on-site", "0.5", "--accept-after", "0.1", "0.2", "--seed", "1",
        stdout=asyncio.subprocess.DEVNULL, stdin=asyncio.subprocess.DEVNULL, env=env)
    try:
        async with post.login("operator") as op, post.login("crew1") as phone:
            async with post.ws(phone) as ws:  # a person has the phone view open: the simulator stands aside
                json.loads(await ws.recv())
                a = (await op.post(f"/api/alarms/{alarm_id}/dispatch", json={"group_id": post.groups["almaty"]})).json()
                await recv(ws, lambda m: m["type"] == "assignment")
                # the person accepts; the simulator, polling meanwhile, has not touched it
                r = await phone.post(f"/api/assignments/{a['id']}/status", json={"status": "accepted"})
                assert r.json()["steps"]["accepted"]["by"] == "crew1" and r.json()["recorded"] is True
                assert (await op.get(f"/api/assignments/{a['id']}")).json()["status"] == "accepted"
            # the page is closed: the simulator carries on to the end
            seen: list[tuple[float, float]] = []

            async def finished() -> bool:
                g = (await op.get(f"/api/groups/{post.groups['almaty']}")).json()
                if g["position"] and (g["position"]["lat"], g["position"]["lon"]) not in seen:
                    seen.append((g["position"]["lat"], g["position"]["lon"]))
                return bool((await op.get(f"/api/assignments/{a['id']}")).json()["status"] == "finished")

            await until(finished, "the simulated crew to finish", deadline=60)
            done = (await op.get(f"/api/assignments/{a['id']}")).json()
            assert list(done["steps"]) == ["dispatched", "accepted", "en-route", "on-site", "finished"]
            assert done["outcome"] in ("false-alarm", "technical-fault", "real-alarm") and done["report"]
        n = await post.pool.fetchval("SELECT count(*) FROM group_positions WHERE group_id = $1", post.groups["almaty"])
        assert n >= 2 and len(seen) >= 1  # it drove: positions were posted on the way
        last = await post.pool.fetchrow("SELECT latitude, longitude FROM group_positions WHERE group_id = $1"
                                        " ORDER BY at DESC LIMIT 1", post.groups["almaty"])
        assert abs(last["latitude"] - 43.2610) < 0.001 and abs(last["longitude"] - 76.9457) < 0.001
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
