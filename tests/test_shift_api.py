"""Handling alarms over a shift, history search with CSV, shift figures and true counts, through the
real API on a real PostgreSQL (the web fixture of test_web_api)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx

from console import account, alarm, audit, guarded_object, user
from console.alarm import Actor
from tests.test_web_api import Web, seeded_alarm, sig, store_signals, web  # noqa: F401
from tests.util import until
from web import feed

__all__ = ["web"]


async def second_operator(w: Web) -> None:
    w.users["operator2"] = await user.create(w.pool, "operator2", "operator2-pass", "operator", full_name="Второй оператор")


@contextlib.asynccontextmanager
async def login_as(w: Web, username: str, password: str) -> AsyncIterator[httpx.AsyncClient]:
    async with w.client() as c:
        r = await c.post("/api/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        yield c


async def test_take_takeover_hold_calls_checklist_and_handover(web: Web) -> None:  # noqa: F811
    await second_operator(web)
    _object_id, alarm_id = await seeded_alarm(web.pool)
    await web.pool.execute("UPDATE guarded_objects SET instructions = $1",
                           "1. Позвонить ответственному\n- Проверить пароль\n\n  Направить ГБР при отсутствии ответа")
    async with web.login("operator") as op, login_as(web, "operator2", "operator2-pass") as op2:
        r = await op.post(f"/api/alarms/{alarm_id}/ack")  # acknowledging takes it
        assert r.status_code == 200 and r.json()["handled_by_name"] == "operator"

        # the second operator is told who handles it, and takes over only on purpose
        for path, body in ((f"/api/alarms/{alarm_id}/take", {}),
                           (f"/api/alarms/{alarm_id}/hold", {"reason": "ждём ответа", "minutes": 5}),
                           (f"/api/alarms/{alarm_id}/close", {"outcome": "test", "checklist_reason": "учения"})):
            r = await op2.post(path, json=body)
            assert r.status_code == 409, (path, r.text)
            assert r.json()["handled_by"] == "operator" and r.json()["handled_by_name"] == "Test operator"
        r = await op2.post(f"/api/alarms/{alarm_id}/take", json={"takeover": True})
        assert r.status_code == 200 and r.json()["handled_by_name"] == "operator2"
        r = await op.post(f"/api/alarms/{alarm_id}/take", json={"takeover": True})
        assert r.status_code == 200 and r.json()["handled_by_name"] == "operator"

        # bad holds name the field
        r = await op.post(f"/api/alarms/{alarm_id}/hold", json={"reason": "", "minutes": 5})
        assert r.status_code == 422 and "reason" in r.json()["detail"]
        r = await op.post(f"/api/alarms/{alarm_id}/hold", json={"reason": "x", "minutes": 721})
        assert r.status_code == 422 and "minutes" in r.json()["detail"]
        r = await op.post(f"/api/alarms/{alarm_id}/hold", json={"reason": "ждём хозяина", "minutes": 0.05})
        assert r.status_code == 200 and r.json()["hold_until"] and r.json()["hold_reason"] == "ждём хозяина"
        # the engine's sweep brings it back (on its own, a few seconds later)
        async with web.pool.acquire() as conn:
            async def back() -> bool:
                await alarm.release_expired_holds(conn)
                return await conn.fetchval("SELECT hold_until IS NULL AND recalled_at IS NOT NULL"
                                           " FROM alarms WHERE id = $1", alarm_id)
            await until(back, "the hold to run out")

        # a call made
        r = await op.post(f"/api/alarms/{alarm_id}/calls", json={"called": "Айгүл", "phone": "+7 701 000 00 00",
                                                                  "answer": "answered", "password_ok": True})
        assert r.status_code == 200 and r.json()["history"][-1]["kind"] == "call"
        assert r.json()["history"][-1]["detail"]["password_ok"] is True
        r = await op.post(f"/api/alarms/{alarm_id}/calls", json={"called": "Айгүл", "answer": "maybe"})
        assert r.status_code == 422 and "answer" in r.json()["detail"]

        # the checklist gates closing
        items = (await op.get(f"/api/alarms/{alarm_id}/checklist")).json()
        assert [i["text"] for i in items] == ["Позвонить ответственному", "Проверить пароль",
                                              "Направить ГБР при отсутствии ответа"]
        r = await op.post(f"/api/alarms/{alarm_id}/close", json={"outcome": "false-alarm"})
        assert r.status_code == 409 and len(r.json()["open_items"]) == 3
        await op.post(f"/api/alarms/{alarm_id}/checklist/1")
        await op.post(f"/api/alarms/{alarm_id}/checklist/2")
        r = await op.post(f"/api/alarms/{alarm_id}/checklist/9")
        assert r.status_code == 422 and "item" in r.json()["detail"]
        r = await op.post(f"/api/alarms/{alarm_id}/close", json={"outcome": "false-alarm"})
        assert r.status_code == 409 and r.json()["open_items"] == ["Направить ГБР при отсутствии ответа"]
        r = await op.post(f"/api/alarms/{alarm_id}/close",
                          json={"outcome": "false-alarm", "checklist_reason": "хозяин на месте, ГБР не нужна"})
        assert r.status_code == 200 and r.json()["state"] == "closed"

        timeline = (await op.get(f"/api/alarms/{alarm_id}")).json()["timeline"]
        assert [t["kind"] for t in timeline] == [
            "opened", "acknowledged", "taken-over", "taken-over", "hold", "hold-expired", "call", "check", "check",
            "checklist-skipped", "closed"]

        # hand-over at shift change: three new alarms, all mine, go to operator2 in one action
        ids = []
        for n in ("6001", "6002", "6003"):
            await store_signals(web.pool, [sig(n, "BA", "001")])
            async with web.pool.acquire() as conn:
                ids += (await alarm.process_batch(conn)).changed
        for i in ids[:2]:
            assert (await op.post(f"/api/alarms/{i}/ack")).status_code == 200
        r = await op.post("/api/alarms/handover", json={"to_user_id": web.users["operator2"]})
        assert r.status_code == 200 and r.json() == {"count": 2, "alarm_ids": sorted(ids[:2]), "to": "operator2"}
        r = await op.post("/api/alarms/handover", json={"to_user_id": web.users["auditor"]})
        assert r.status_code == 422 and "to_user_id" in r.json()["detail"]
        r = await op2.post("/api/alarms/handover", json={"to_user_id": None})
        assert r.status_code == 200 and r.json()["count"] == 2 and r.json()["to"] is None
        assert await web.pool.fetchval("SELECT count(*) FROM alarms WHERE handled_by IS NOT NULL AND state <> 'closed'") == 0

    async with web.login("auditor") as aud:  # an auditor reads, changes nothing
        assert (await aud.post(f"/api/alarms/{ids[2]}/take")).status_code == 403
        assert (await aud.post("/api/alarms/handover", json={"to_user_id": None})).status_code == 403
    actions = [r["action"] for r in await web.pool.fetch("SELECT action FROM audit_log WHERE entity_id = $1 ORDER BY id",
                                                         str(alarm_id))]
    assert actions.count("alarm.taken-over") == 2 and "alarm.hold" in actions and "alarm.hold-expired" in actions
    assert "alarm.call" in actions and "alarm.checklist-skipped" in actions
    assert await web.pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'alarm.hand-over'") == 2
    async with web.pool.acquire() as conn:
        assert (await audit.verify(conn)).ok


def parse_csv(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")  # the byte-order mark spreadsheets need for Cyrillic
    return list(csv.DictReader(io.StringIO(text[1:])))


async def test_history_search_by_object_and_time_with_csv_and_paging(web: Web) -> None:  # noqa: F811
    bank = await guarded_object.create(web.pool, "=Банк", address="Алматы")
    shop = await guarded_object.create(web.pool, "Магазин", address="Астана")
    await account.create(web.pool, "1111", object_id=bank)
    await account.create(web.pool, "2222", object_id=shop)
    actor = Actor(web.users["operator"], "operator")
    opened = []
    for i in range(5):  # five alarms on the bank, closed one after the other, one on the shop
        await store_signals(web.pool, [sig("1111", "BA", f"00{i}", seq=f"{i:04d}")])
        async with web.pool.acquire() as conn:
            (aid,) = (await alarm.process_batch(conn)).changed
            await alarm.acknowledge(conn, aid, actor)
            await alarm.close(conn, aid, actor, "false-alarm")
        opened.append(aid)
    await store_signals(web.pool, [sig("2222", "FA", "001")])
    async with web.pool.acquire() as conn:
        await alarm.process_batch(conn)
    # put the first two in the past, so a time range can leave them out
    await web.pool.execute("UPDATE alarms SET opened_at = now() - interval '2 days' WHERE id = ANY($1)", opened[:2])
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    end = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    async with web.login("operator") as op:
        q = {"object_id": bank, "from": start, "to": end}
        found = (await op.get("/api/alarms", params=q)).json()
        assert [a["id"] for a in found] == sorted(opened[2:], reverse=True)
        assert all(a["object_name"] == "=Банк" and a["state"] == "closed" for a in found)

        r = await op.get("/api/alarms", params={**q, "format": "csv"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        rows = parse_csv(r.text)
        assert [int(x["id"]) for x in rows] == [a["id"] for a in found]
        for x, a in zip(rows, found, strict=True):
            assert x["object_name"] == "'=Банк"  # a spreadsheet formula is defused
            assert x["outcome"] == a["outcome"] and x["klass"] == a["klass"] and x["state"] == a["state"]
            assert datetime.fromisoformat(x["opened_at"]) == datetime.fromisoformat(a["opened_at"])
            assert x["closed_by"] == "operator" and x["title"] == a["title"]["en"]

        # keyset pages: 2 + 2 + 1 over the bank's five, nothing repeated or lost
        seen: list[int] = []
        before = None
        while True:
            params: dict[str, str | int] = {"object_id": bank, "limit": 2}
            if before:
                params["before"] = before
            r = await op.get("/api/alarms", params=params)
            seen += [a["id"] for a in r.json()]
            before = r.headers.get("x-next-before")
            if not before:
                break
        assert seen == sorted(opened, reverse=True)

        # other filters: outcome, operator, class; the open queue is unchanged without filters
        assert len((await op.get("/api/alarms", params={"outcome": "false-alarm"})).json()) == 5
        assert len((await op.get("/api/alarms", params={"operator": "operator"})).json()) == 5
        assert len((await op.get("/api/alarms", params={"operator": "admin"})).json()) == 0
        assert [a["klass"] for a in (await op.get("/api/alarms", params={"klass": "fire"})).json()] == ["fire"]
        assert [a["object_name"] for a in (await op.get("/api/alarms")).json()] == ["Магазин"]

        # signals: by object and time, the same rows in CSV
        sq = {"object_id": bank, "from": start, "to": end}
        sigs = (await op.get("/api/signals", params=sq)).json()
        assert len(sigs) == 5 and all(s["object_name"] == "=Банк" for s in sigs)
        srows = parse_csv((await op.get("/api/signals", params={**sq, "format": "csv"})).text)
        assert [int(x["id"]) for x in srows] == [s["id"] for s in sigs]
        assert [x["code"] for x in srows] == [s["code"] for s in sigs]

        # bad input names the field
        r = await op.get("/api/alarms", params={"from": "yesterday"})
        assert r.status_code == 422 and "from" in r.json()["detail"]
        r = await op.get("/api/alarms", params={"from": "2026-01-01T00:00:00"})
        assert r.status_code == 422 and "from: give a time zone" in r.json()["detail"]
        r = await op.get("/api/alarms", params={"limit": 5000})
        assert r.status_code == 422 and "limit" in r.json()["detail"]
        assert (await op.get("/api/audit")).status_code == 403  # the audit trail: admins and auditors

    async with web.login("auditor") as aud:
        trail = (await aud.get("/api/audit", params={"action": "alarm.closed"})).json()
        assert len(trail) == 5 and all(t["actor"] == "operator" for t in trail)
        rows = parse_csv((await aud.get("/api/audit", params={"action": "alarm.closed", "format": "csv"})).text)
        assert [int(x["id"]) for x in rows] == [t["id"] for t in trail]
    async with web.login("crew") as crew:
        assert (await crew.get("/api/alarms", params={"object_id": bank})).status_code == 403
        assert (await crew.get("/api/audit")).status_code == 403


async def test_shift_report_figures_and_csv(web: Web) -> None:  # noqa: F811
    _o, alarm_id = await seeded_alarm(web.pool)
    await web.pool.execute("UPDATE guarded_objects SET instructions = ''")
    async with web.login("operator") as op:
        await op.post(f"/api/alarms/{alarm_id}/ack")
        await op.post(f"/api/alarms/{alarm_id}/close", json={"outcome": "test"})
        await web.pool.execute("UPDATE alarms SET opened_at = acknowledged_at - interval '30 seconds' WHERE id = $1",
                               alarm_id)
        rep = (await op.get("/api/shifts/report")).json()  # the current shift
        assert rep["shift"] in ("08:00-20:00", "20:00-08:00")
        me = next(o for o in rep["operators"] if o["username"] == "operator")
        assert me["logins"] >= 1 and me["logged_in_now"] is True
        assert me["acknowledged"] == {"count": 1, "p50": 30.0, "p90": 30.0, "max": 30.0}
        assert me["closed"]["count"] == 1 and 30.0 <= me["closed"]["max"] < 40.0
        assert rep["totals"]["acknowledged"]["count"] == 1
        frm = rep["from"]
        to = rep["to"]
        rows = parse_csv((await op.get("/api/shifts/report", params={"from": frm, "to": to, "format": "csv"})).text)
        assert [x["username"] for x in rows][-1] == "*" and "operator" in [x["username"] for x in rows]
        r = await op.get("/api/shifts/report", params={"from": to, "to": frm})
        assert r.status_code == 422 and "to" in r.json()["detail"]
        r = await op.get("/api/shifts/report", params={"day": "2026-01-10", "shift": 1})
        assert r.status_code == 200 and r.json()["from"].startswith("2026-01-10T20:00:00")
        assert r.json()["to"].startswith("2026-01-11T08:00:00")


async def test_true_counts_beyond_the_snapshot(web: Web) -> None:  # noqa: F811
    """1,050 open alarms over 1,050 objects (> the snapshot's 1,000): counts are the true totals."""
    n = feed.SNAPSHOT_ALARMS + 50
    await web.pool.execute(
        "INSERT INTO alarms (account, kind, klass, priority, title) SELECT 'A' || g, 'signal', 'burglary',"
        " CASE WHEN g <= 10 THEN 1 ELSE 2 END, '{\"en\": \"Burglary\"}' FROM generate_series(1, $1) g", n)
    async with web.login("operator") as op:
        counts = (await op.get("/api/alarms/counts")).json()
        assert counts["open"] == n and counts["by_priority"] == {"1": 10, "2": n - 10} and counts["new"] == n
    hub = feed.Hub(web.pool, "")
    snap = json.loads(await hub.snapshot())
    assert snap["shown"] == feed.SNAPSHOT_ALARMS == len(snap["alarms"])
    assert snap["counts"]["open"] == n and snap["counts"]["by_priority"]["2"] == n - 10
    assert [a["priority"] for a in snap["alarms"][:10]] == [1] * 10  # the most urgent are the ones shown
