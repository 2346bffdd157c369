"""The compliance API through a real uvicorn: uploads checked by content, files only through the
role-checked route, the auditor reads everything and changes nothing, operators see warnings only."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
from pathlib import Path

from compliance import document
from tests import compliance_post as post
from tests.test_web_api import Web, web  # noqa: F401  (the fixture)
from tests.test_web_hardening import _status_line

TODAY = dt.date.today()


def form(kind: str = "security_licence", **fields: str) -> dict[str, str]:
    return {"kind": kind, "number": "L-77", "issuer": "MIA", "issued_on": "2023-01-10", **fields}


async def upload(c, content: bytes, name: str = "scan.pdf", ctype: str = "application/pdf", **fields: str):  # type: ignore[no-untyped-def]
    return await c.post("/api/documents", data=form(**fields), files={"file": (name, content, ctype)})


async def test_upload_is_checked_by_content(web: Web, tmp_path: Path) -> None:  # noqa: F811
    async with web.login("admin") as c:
        ok = await upload(c, post.pdf())
        assert ok.status_code == 201, ok.text
        doc = ok.json()
        assert doc["file_type"] == "pdf" and doc["file_sha256"] == hashlib.sha256(post.pdf()).hexdigest()
        assert doc["registered_by"] == "admin" and doc["review_status"] == "pending"
        # a PNG named .pdf and declared as a PDF is stored as what it is: a PNG
        renamed = await upload(c, post.png(), name="licence.pdf", ctype="application/pdf", number="L-78")
        assert renamed.status_code == 201 and renamed.json()["file_type"] == "png"
        # random bytes, a truncated PDF, an HTML page "as PDF": refused, naming the field
        for bad in (os.urandom(4096), post.pdf()[:300], b"%PDF-1.7\n<html><script>alert(1)</script>"):
            r = await upload(c, bad, number="L-79")
            assert r.status_code == 422 and r.json()["detail"].startswith("file:"), r.text
        # an executable renamed .png
        r = await upload(c, b"\x7fELF" + os.urandom(500), name="photo.png", ctype="image/png")
        assert r.status_code == 422
        # bad fields say which
        r = await upload(c, post.pdf(), kind="no_such_kind")
        assert r.status_code == 422 and r.json()["detail"].startswith("kind:")
        r = await upload(c, post.pdf(), kind="vehicle_registration")
        assert r.status_code == 422 and r.json()["detail"].startswith("vehicle_id:")
        r = await upload(c, post.pdf(), issued_on="10.01.2023")
        assert r.status_code == 422 and r.json()["detail"].startswith("issued_on:")
        r = await upload(c, post.pdf(), detail="[1, 2]")
        assert r.status_code == 422 and r.json()["detail"].startswith("detail:")
        r = await upload(c, post.pdf(), issued_on="2024-01-10", valid_until="2023-01-10")
        assert r.status_code == 422 and r.json()["detail"].startswith("valid_until:")
        listed = (await c.get("/api/documents")).json()
        assert {d["number"] for d in listed} == {"L-77", "L-78"}


async def test_upload_size_limit(web: Web, tmp_path: Path) -> None:  # noqa: F811
    # the limit is a setting ([compliance] upload_max_bytes): one byte less than the file
    web.app.state.settings.compliance = {"upload_max_bytes": len(post.pdf()) - 1}
    async with web.login("admin") as c:
        r = await upload(c, post.pdf())
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        assert (await c.get("/api/documents")).json() == []
    # a body declared far over the limit is refused before it is read (web.app.BodyLimit: the default
    # upload_max_bytes, 20 MiB, plus 1 MiB for the form's other fields)
    port = int(web.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /api/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                 b"Content-Length: %d\r\n\r\n" % (22 << 20))
    status, body = await asyncio.wait_for(_status_line(reader), 10)
    writer.close()
    assert status == 413 and json.loads(body)["limit"] == 21 << 20


async def test_files_only_through_the_role_checked_route(web: Web, tmp_path: Path) -> None:  # noqa: F811
    async with web.login("admin") as c:
        doc = (await upload(c, post.png(), name="x.png", ctype="image/png")).json()
        r = await c.get(f"/api/documents/{doc['id']}/file")
        assert r.status_code == 200 and r.content == post.png()
        assert r.headers["content-type"] == "image/png" and "attachment" in r.headers["content-disposition"]
        sha = doc["file_sha256"]
        # not under any static URL
        for url in (f"/static/{sha}", f"/static/../documents/{sha}", f"/documents/{sha}", f"/static/documents/{sha}",
                    f"/static/%2e%2e/documents/{sha}"):
            r = await c.get(url)
            assert r.status_code in (404, 400) or post.png() not in r.content, url
    stored = tmp_path / "documents" / sha
    assert stored.read_bytes() == post.png()
    assert stored.stat().st_mode & 0o777 == 0o600 and stored.parent.stat().st_mode & 0o777 == 0o700
    async with web.login("auditor") as c:
        assert (await c.get(f"/api/documents/{doc['id']}/file")).status_code == 200
    for role in ("operator", "crew"):
        async with web.login(role) as c:
            assert (await c.get(f"/api/documents/{doc['id']}/file")).status_code == 403
            assert (await c.get("/api/documents")).status_code == 403
            assert (await c.get("/api/personnel")).status_code == 403
    async with web.client() as anon:
        assert (await anon.get(f"/api/documents/{doc['id']}/file")).status_code == 401
    # a file changed on disk behind Kuzet's back is not served as the registered document
    stored.write_bytes(post.png() + b"x")
    async with web.login("admin") as c:
        assert (await c.get(f"/api/documents/{doc['id']}/file")).status_code == 409


WRITES = [
    ("POST", "/api/documents/1/review", {"status": "accepted"}),
    ("POST", "/api/documents/1/withdraw", {}),
    ("POST", "/api/personnel", {"full_name": "X", "position": "guard", "birth_date": "1990-01-01"}),
    ("PATCH", "/api/personnel/1", {"note": "x"}),
    ("DELETE", "/api/personnel/1", None),
    ("POST", "/api/personnel/1/screenings", {"kind": "psychiatric", "result": "clear", "obtained_on": "2026-01-01"}),
]


async def test_auditor_reads_everything_and_changes_nothing(web: Web, tmp_path: Path) -> None:  # noqa: F811
    async with web.pool.acquire() as conn:
        ids = await post.build(conn, tmp_path, TODAY)
    async with web.login("auditor") as c:
        r = await upload(c, post.pdf())
        assert r.status_code == 403
        for method, url, body in WRITES:
            url = url.replace("/1", f"/{ids['guard'] if 'personnel' in url else ids['licence']}")
            r = await c.request(method, url, json=body)
            assert r.status_code == 403, (method, url, r.text)
        # everything readable
        checks = await c.get("/api/compliance/checks")
        assert checks.status_code == 200, checks.text
        body = checks.json()
        assert {r["row"] for r in body["results"]} >= {"3.1", "3.3", "3.6"} and body["run_id"]
        assert (await c.get("/api/compliance/checks/history")).json()[0]["id"] == body["run_id"]
        assert (await c.get(f"/api/compliance/checks/runs/{body['run_id']}")).status_code == 200
        people = (await c.get("/api/personnel")).json()
        assert {p["full_name"]: p["eligibility"]["eligible"] for p in people} == {"Head One": True, "Guard One": True}
        one = (await c.get(f"/api/personnel/{ids['guard']}")).json()
        assert one["documents"][0]["kind"] == "training_certificate" and len(one["screenings"]) == 3
        assert (await c.get("/api/compliance/backups")).json()[0]["verified"] is True
        assert (await c.get("/api/documents/kinds")).status_code == 200
        assert (await c.get(f"/api/documents/{ids['licence']}")).json()["number"] == "L-1"
    # nothing changed
    async with web.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM compliance_documents WHERE withdrawn_at IS NOT NULL") == 0
        assert await conn.fetchval("SELECT count(*) FROM compliance_personnel") == 2


async def test_admin_workflow_and_four_eyes(web: Web, tmp_path: Path) -> None:  # noqa: F811
    async with web.login("admin") as c:
        p = await c.post("/api/personnel", json={"full_name": "Young Guard", "position": "guard",
                                                 "birth_date": str(TODAY.replace(year=TODAY.year - 18)),
                                                 "iin": "123"})
        assert p.status_code == 422 and "iin" in p.json()["detail"]
        p = await c.post("/api/personnel", json={"full_name": "Young Guard", "position": "guard",
                                                 "birth_date": str(TODAY.replace(year=TODAY.year - 18))})
        assert p.status_code == 201
        pid = p.json()["id"]
        doc = (await upload(c, post.pdf(), kind="training_certificate", person_id=str(pid))).json()
        # the one who registered cannot also review
        r = await c.post(f"/api/documents/{doc['id']}/review", json={"status": "accepted"})
        assert r.status_code == 409 and "someone other" in r.json()["detail"]
        r = await c.post(f"/api/personnel/{pid}/screenings", json={"kind": "criminal_record", "result": "clear",
                                                                  "obtained_on": str(TODAY)})
        assert r.status_code == 201
        got = (await c.get(f"/api/personnel/{pid}")).json()
        codes = {x["code"] for x in got["eligibility"]["problems"]}
        assert "age" in codes and "screening_missing" in codes
        assert (await c.patch(f"/api/personnel/{pid}", json={"hired_on": "2020-01-01", "dismissed_on": "1999-01-01"})).status_code == 422
        assert (await c.delete(f"/api/personnel/{pid}")).status_code == 409
        w = (await c.post(f"/api/documents/{doc['id']}/withdraw", json={"reason": "wrong person"})).json()
        assert w["withdrawn_by"] == "admin"
        assert (await c.post(f"/api/documents/{doc['id']}/withdraw", json={})).status_code == 409
    async with web.pool.acquire() as conn:
        actions = [r["action"] for r in await conn.fetch("SELECT action FROM audit_log ORDER BY id")]
    assert actions[-4:] == ["person.created", "document.registered", "person.screening", "document.withdrawn"]


async def test_warnings_for_the_board(web: Web, tmp_path: Path) -> None:  # noqa: F811
    async with web.pool.acquire() as conn:
        ids = await post.build(conn, tmp_path, TODAY)
        await conn.execute("UPDATE compliance_documents SET valid_until = $2 WHERE id = $1",
                           ids["training"][ids["guard"]], TODAY + dt.timedelta(days=5))
        await conn.execute("UPDATE compliance_documents SET valid_until = $2 WHERE id = $1", ids["radio"],
                           TODAY + dt.timedelta(days=12))
    async with web.login("admin") as c:
        w = (await c.get("/api/compliance/warnings")).json()
        assert [(d["kind"], d["days_left"]) for d in w["documents"]] == [("training_certificate", 5),
                                                                          ("radio_contract", 12)]
        assert w["documents"][0]["person"] == "Guard One"
        assert w["personnel"][0]["full_name"] == "Guard One"
    async with web.login("operator") as c:
        w = (await c.get("/api/compliance/warnings")).json()
        assert len(w["documents"]) == 2 and w["documents"][0]["person"] is None and w["personnel"] == []
    async with web.login("crew") as c:
        assert (await c.get("/api/compliance/warnings")).status_code == 403
    assert document.KINDS["radio_contract"].row == "3.4"


async def test_dispatch_refuses_an_ineligible_guard_on_a_duty_shift(web: Web, tmp_path: Path) -> None:  # noqa: F811
    async with web.pool.acquire() as conn:
        ids = await post.build(conn, tmp_path, TODAY)
    guard_staff = ids["staff"][1]
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)  # after the shifts the post already has
    n = 0

    def shift(staff: list[int]) -> dict[str, object]:
        nonlocal n
        n += 1
        a = start + dt.timedelta(days=n)
        return {"group_id": ids["groups"][0], "starts_at": a.isoformat(),
                "ends_at": (a + dt.timedelta(hours=12)).isoformat(), "staff_ids": staff}

    async with web.login("admin") as c:
        # dispatch's duty shifts (the path has moved between /api/shifts and /api/duty-shifts)
        url = "/api/shifts"
        r = await c.post(url, json=shift([guard_staff]))
        if r.status_code == 404 and r.json()["detail"] == "Not Found":
            url = "/api/duty-shifts"
            r = await c.post(url, json=shift([guard_staff]))
        assert r.status_code == 201, r.text
        # under 19
        async with web.pool.acquire() as conn:
            await conn.execute("UPDATE compliance_personnel SET birth_date = $2 WHERE id = $1", ids["guard"],
                               TODAY.replace(year=TODAY.year - 18))
        r = await c.post(url, json=shift([guard_staff]))
        assert r.status_code == 409 and "Guard" in r.json()["detail"] and "Under 19" in r.json()["detail"], r.text
        # of age again, but the training certificate has expired
        async with web.pool.acquire() as conn:
            await conn.execute("UPDATE compliance_personnel SET birth_date = '1990-01-01' WHERE id = $1", ids["guard"])
            await conn.execute("UPDATE compliance_documents SET valid_until = $2 WHERE id = $1",
                               ids["training"][ids["guard"]], TODAY - dt.timedelta(days=1))
        r = await c.post(url, json=shift([guard_staff]))
        assert r.status_code == 409 and "No valid certificate" in r.json()["detail"], r.text
        # a staff member nobody entered in the personnel records
        other = (await c.post("/api/staff", json={"full_name": "Nobody Known", "role": "driver",
                                                  "group_id": ids["groups"][0]})).json()
        r = await c.post(url, json=shift([other["id"]]))
        assert r.status_code == 409 and "no personnel record" in r.json()["detail"], r.text
        # linking to a staff member that does not exist is refused, naming the field
        r = await c.patch(f"/api/personnel/{ids['head']}", json={"staff_id": 987654})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "staff_id"
