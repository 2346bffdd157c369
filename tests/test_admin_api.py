"""The admin API over a real server and database: users, objects, accounts, zones, contacts, service
periods and the CSV import; field errors in the user's language; two admins editing the same object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from tests.test_setup_cli import BAD, GOOD
from tests.test_web_api import Web, serve


@pytest.fixture
async def site(pool: asyncpg.Pool, migrated: str, tmp_path: Path) -> AsyncIterator[Web]:
    async with serve(pool, migrated, tmp_path) as w:
        yield w


async def test_users_are_created_edited_and_disabled(site: Web) -> None:
    async with site.login("admin") as admin:
        r = await admin.post("/api/users", json={"username": "aigul", "full_name": "Айгүл", "role": "operator",
                                                 "lang": "kk"})
        assert r.status_code == 201, r.text
        created = r.json()
        password = created.pop("password")
        assert created["role"] == "operator" and created["version"] == 1 and "password_hash" not in created
        async with site.client() as op:
            assert (await op.post("/api/login", json={"username": "aigul", "password": password})).status_code == 200
            assert (await op.get("/api/me")).json()["lang"] == "kk"

            r = await admin.post("/api/users", json={"username": "AIGUL", "role": "operator", "password": "x" * 12})
            assert r.status_code == 409 and r.json()["errors"][0]["field"] == "username"
            assert r.json()["errors"][0]["message"] == "this user already exists"

            r = await admin.patch(f"/api/users/{created['id']}", json={"version": 1, "role": "auditor",
                                                                      "full_name": "Айгүл Серікқызы"})
            assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["role"] == "auditor"
            r = await admin.patch(f"/api/users/{created['id']}", json={"version": 1, "active": False})
            assert r.status_code == 409 and r.json()["errors"][0]["type"] == "stale"
            r = await admin.patch(f"/api/users/{created['id']}", json={"version": 2, "active": False})
            assert r.status_code == 200 and r.json()["active"] is False
            assert (await op.get("/api/me")).status_code == 401  # disabled: the session is over at once

        r = await admin.post(f"/api/users/{site.users['operator']}/password", json={})
        new_password = r.json()["password"]
        async with site.client() as op2:
            r = await op2.post("/api/login", json={"username": "operator", "password": new_password})
            assert r.status_code == 200

        # the last active admin can be neither demoted nor disabled
        me = (await admin.get("/api/users")).json()
        mine = next(u for u in me if u["username"] == "admin")
        r = await admin.patch(f"/api/users/{mine['id']}", json={"version": mine["version"], "role": "operator"})
        assert r.status_code == 409 and r.json()["errors"][0]["type"] == "last_admin"

    detail = await site.pool.fetchval("SELECT detail FROM audit_log WHERE action = 'user.updated' ORDER BY id LIMIT 1")
    assert detail["before"] == {"full_name": "Айгүл", "role": "operator"}
    assert detail["after"] == {"full_name": "Айгүл Серікқызы", "role": "auditor"}
    actions = [r["action"] for r in await site.pool.fetch("SELECT action FROM audit_log WHERE actor = 'admin'")]
    assert {"user.created", "user.updated", "user.disabled", "user.password-set"} <= set(actions)


async def test_field_errors_name_the_field_in_the_users_language(site: Web) -> None:
    async with site.login("admin") as admin:
        await admin.patch(f"/api/users/{site.users['admin']}", json={"version": 1, "lang": "ru"})
        r = await admin.post("/api/objects", json={"name": "", "latitude": 100, "longitude": "east",
                                                   "colour": "red"})
        assert r.status_code == 422
        by_field = {e["field"]: e["message"] for e in r.json()["errors"]}
        assert by_field == {"name": "не короче 1 симв.", "latitude": "не больше 90", "longitude": "нужно число",
                            "colour": "неизвестное поле"}
        r = await admin.post("/api/accounts", json={"number": "12 34", "aes_key": "0011223344556677889900112233445Z",
                                                    "supervision_interval": 5})
        assert r.status_code == 422
        fields = {e["field"]: e for e in r.json()["errors"]}
        assert set(fields) == {"number", "aes_key", "supervision_interval"}
        assert fields["number"]["message"] == "неверный формат"
        assert fields["aes_key"]["type"] == "aes_key" and fields["aes_key"]["message"].startswith("ключ AES")
        assert fields["supervision_interval"]["message"] == "не меньше 10"
        assert await site.pool.fetchval("SELECT count(*) FROM guarded_objects") == 0
    async with site.login("operator") as op:  # lang en
        r = await op.get("/api/alarms", params={"limit": 0})
        assert r.json()["errors"][0] | {"ctx": None} == {
            "loc": ["query", "limit"], "field": "limit", "type": "greater_than_equal", "ctx": None,
            "msg": "Input should be greater than or equal to 1", "message": "at least 1"}


async def test_two_admins_editing_one_object(site: Web) -> None:
    async with site.login("admin") as admin:
        r = await admin.post("/api/users", json={"username": "admin2", "role": "admin", "password": "second-admin-1"})
        assert r.status_code == 201
        r = await admin.post("/api/objects", json={"name": "Алматы, филиал банка", "address": "Панфилова, 98"})
        obj = r.json()
        assert obj["version"] == 1
        async with site.client() as admin2:
            await admin2.post("/api/login", json={"username": "admin2", "password": "second-admin-1"})
            seen_by_2 = (await admin2.get(f"/api/objects/{obj['id']}")).json()
            r = await admin.patch(f"/api/objects/{obj['id']}", json={"version": 1, "address": "Панфилова, 100",
                                                                     "instructions": "1. Call\n2. Send the crew"})
            assert r.status_code == 200 and r.json()["version"] == 2
            r = await admin2.patch(f"/api/objects/{obj['id']}", json={"version": seen_by_2["version"],
                                                                      "name": "Банк (закрыт)"})
            assert r.status_code == 409
            assert r.json()["current_version"] == 2
            assert r.json()["message"].startswith("Эту запись уже изменил кто-то другой")  # admin2 reads Russian
            r = await admin2.put(f"/api/objects/{obj['id']}/contacts", json={
                "version": 1, "contacts": [{"name": "Нурлан", "phone": "+7 777 555 98 76"}]})
            assert r.status_code == 409
        row = await site.pool.fetchrow("SELECT name, address, version FROM guarded_objects WHERE id = $1", obj["id"])
        assert tuple(row) == ("Алматы, филиал банка", "Панфилова, 100", 2)

        r = await admin.put(f"/api/objects/{obj['id']}/contacts", json={"version": 2, "contacts": [
            {"name": "Айгүл", "phone": "+7 701 555 12 34"}, {"name": "Охрана", "phone": "+7 727 000", "role": "contact"}]})
        assert r.status_code == 200 and r.json()["version"] == 3
        assert [c["name"] for c in r.json()["contacts"]] == ["Айгүл", "Охрана"]

        # an account with zones, edited, taken out for service and back
        r = await admin.post("/api/accounts", json={"number": "1234", "object_id": obj["id"], "supervision_interval": 600,
                                                    "zones": [{"number": "001", "name": "Дверь"}]})
        acc = r.json()
        r = await admin.patch(f"/api/accounts/{acc['id']}", json={"version": 1, "supervision_interval": 3600,
                                                                  "aes_key": "000102030405060708090A0B0C0D0E0F"})
        assert r.status_code == 200 and r.json()["encrypted"] is True and r.json()["version"] == 2
        r = await admin.put(f"/api/accounts/{acc['id']}/zones", json={"version": 2, "zones": [
            {"number": "001", "name": "Входная дверь"}, {"number": "002", "name": "Окна"}]})
        assert r.status_code == 200 and [z["name"] for z in r.json()["zones"]] == ["Входная дверь", "Окна"]
        r = await admin.put(f"/api/accounts/{acc['id']}/service", json={
            "version": 3, "until": (datetime.now(UTC) - timedelta(hours=1)).isoformat(), "reason": "panel"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "until"
        until = datetime.now(UTC) + timedelta(hours=3)
        r = await admin.put(f"/api/accounts/{acc['id']}/service", json={"version": 3, "until": until.isoformat(),
                                                                         "reason": "замена прибора"})
        assert r.status_code == 200 and r.json()["service_reason"] == "замена прибора"
        r = await admin.put(f"/api/objects/{obj['id']}/service", json={"version": 3, "until": until.isoformat(),
                                                                       "reason": ""})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    key_audit = await site.pool.fetchval("SELECT detail FROM audit_log WHERE action = 'account.updated'")
    assert key_audit["after"]["aes_key"] == "(set)" and "0001020304" not in str(key_audit)


async def test_import_upload(site: Web) -> None:
    async with site.login("admin") as admin:
        r = await admin.post("/api/import/objects", files={"file": ("bad.csv", BAD.encode(), "text/csv")})
        assert r.status_code == 422
        got = [(p["line"], p["column"], p["code"]) for p in r.json()["problems"]]
        assert got == [(3, "name", "required"), (3, "latitude", "out_of_range"), (4, "longitude", "both_coordinates"),
                       (4, "account", "duplicate_in_file"), (5, "aes_key", "aes_key"),
                       (6, "supervision_interval", "out_of_range")]
        assert r.json()["problems"][3]["message"] == "the account is also on line 2"
        assert await site.pool.fetchval("SELECT count(*) FROM guarded_objects") == 0
        r = await admin.post("/api/import/objects", content=GOOD.encode(), headers={"content-type": "text/csv"})
        assert r.status_code == 200 and r.json() == {"imported": 2, "rows": 2}
        assert await site.pool.fetchval("SELECT count(*) FROM accounts") == 2
    async with site.login("operator") as op:
        r = await op.post("/api/import/objects", content=GOOD.encode(), headers={"content-type": "text/csv"})
        assert r.status_code == 403


async def test_a_nul_character_is_bad_input_not_a_server_error(site: Web) -> None:
    async with site.login("admin") as admin:
        r = await admin.post("/api/objects", json={"name": "Bank\u0000"})
        assert r.status_code == 422, r.text
        r = await admin.get("/api/audit", params={"action": "\u0000"})
        assert r.status_code in (200, 422), r.text
