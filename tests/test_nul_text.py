"""U+0000 cannot be stored in PostgreSQL text: the API refuses it with a 422 naming the field (the
fuzzer found it as a 500), whether it arrives in a JSON body or in a query parameter."""

from __future__ import annotations

from tests.test_web_api import Web, web  # noqa: F401  (the fixture)


async def test_a_nul_in_a_body_is_refused_naming_the_field(web: Web) -> None:  # noqa: F811
    anon = web.client()
    try:
        r = await anon.post("/api/login", json={"username": "adm\u0000in", "password": "x"})
    finally:
        await anon.aclose()
    assert r.status_code == 422, r.text
    assert [(e["field"], e["type"]) for e in r.json()["errors"]] == [("username", "nul_character")]
    async with web.login("admin") as c:
        r = await c.post("/api/objects", json={"name": "Bank", "address": "Abai\u0000 1"}, headers={"x-kuzet-lang": "ru"})
        assert r.status_code == 422, r.text
        err = r.json()["errors"][0]
        assert err["field"] == "address" and "NUL" in err["message"] and "нельзя" in err["message"]
        assert await web.pool.fetchval("SELECT count(*) FROM guarded_objects") == 0


async def test_a_nul_in_a_query_is_a_422_not_a_500(web: Web) -> None:  # noqa: F811
    async with web.login("operator") as c:
        r = await c.get("/api/alarms", params={"operator": "op\u0000", "from": "2026-01-01T00:00:00Z"})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["type"] == "value_error"  # the database refused it (web.errors.text_refused)


async def test_an_id_beyond_the_database_range_is_a_422_naming_it(web: Web) -> None:  # noqa: F811
    """The fuzzer's case: a group id past int64 reached the database as a 500."""
    async with web.login("admin") as c:
        r = await c.post("/api/shifts", json={"group_id": 183501700978138316800, "starts_at": "2026-07-03T05:09:49Z",
                                              "ends_at": "2026-07-04T05:09:49Z"})
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == ["group_id"]
