"""Who may do what, proved over every route the application has (iterating `app.routes`, so a route
added later is covered the day it lands): an operator administers nothing, an auditor changes
nothing, a crew member reaches only their own view.

The expected roles per route are in ONE place, `RULES` below: the first rule whose method and path
match decides. A route no rule matches fails the test and must be added here. A new route that
follows the house's convention (reads for the board's readers, writes for admins) needs no rule of
its own.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.test_web_api import PASSWORDS, Web, serve
from web import auth

ROLES = ("admin", "operator", "auditor", "crew")
ANY = frozenset(ROLES)
READ = frozenset(auth.READ_ROLES)  # admin, operator, auditor: the board and its history
ACT = frozenset(auth.ACT_ROLES)  # admin, operator: acting on alarms
ADMIN = frozenset(auth.ADMIN_ROLES)
COMPLIANCE = frozenset({"admin", "auditor"})
CREW = frozenset({"crew"})
WRITE_METHODS = "POST|PUT|PATCH|DELETE"
# The only writes a crew member makes: their own group's steps, and their phone's position.
CREW_WRITES = {r"/api/assignments/\{assignment_id\}/status", r"/api/crew/position"}

# (methods, path) -> the roles that may call it. First match wins; the last two are the convention.
RULES: list[tuple[str, str, frozenset[str]]] = [
    ("GET|POST", r"/api/(me|logout)", ANY),  # every logged-in user, crews included
    ("GET", r"/api/openapi\.json", ANY),
    (WRITE_METHODS, r"/api/alarms/\{alarm_id\}/(ack|close|note|take|release|hold|unhold|calls|checklist/\{item_no\})", ACT),
    ("POST", r"/api/alarms/handover", ACT),  # an operator's own alarms at shift change
    ("GET", r"/api/audit", frozenset({"admin", "auditor"})),  # the audit trail
    ("GET", r"/history", READ),
    ("GET", r"/board", READ),  # a crew member is sent to /crew instead (see REDIRECTS)
    ("GET", r"/crew", frozenset({"crew"})),  # the crews' phone view
    ("GET", r"/dispatch/admin", ADMIN),
    ("GET", r"/dispatch/records", READ),
    ("WS", r"/ws/board", READ),
    ("GET", r"/admin", ADMIN),
    # dispatch: operators send and recall groups; the crew's phone moves its own group's work
    # (an operator may record a step a crew reported by radio)
    ("POST", r"/api/alarms/\{alarm_id\}/dispatch", ACT),
    ("POST", r"/api/assignments/\{assignment_id\}/recall", ACT),
    ("POST", r"/api/assignments/\{assignment_id\}/status", ACT | CREW),
    ("POST", r"/api/crew/position", CREW),
    ("GET", r"/api/crew/assignment", CREW),
    ("GET", r"/api/assignments/\{assignment_id\}", READ | CREW),
    ("WS", r"/ws/crew", CREW),
    ("GET", r"/api/users(/.*)?", ADMIN),  # user lists are for admins only
    # compliance: documents and personnel files hold personal data; operators get the warnings only
    ("GET", r"/api/(documents|personnel)(/.*)?", frozenset({"admin", "auditor"})),
    ("GET", r"/api/compliance/(checks|backups)(/.*)?", frozenset({"admin", "auditor"})),
    ("GET", r"/compliance", COMPLIANCE),  # the auditor's page
    ("GET", r"/api/compliance/(key|export)", COMPLIANCE),
    # the convention for everything else under /api
    ("GET", r"/api/.*", READ),
    (WRITE_METHODS, r"/api/.*", ADMIN),
]
# A role refused by being sent to its own page: (role, method, path) -> where to.
REDIRECTS = {("crew", "GET", "/board"): "/crew"}
# No session needed (the gate's public list) or only a redirect/asset.
PUBLIC = {("POST", "/api/login"), ("GET", "/login"), ("GET", "/"), ("GET", "/favicon.ico"),
          ("GET", "/static/i18n.js")}


@pytest.fixture
async def site(pool: asyncpg.Pool, migrated: str, tmp_path: Path) -> AsyncIterator[Web]:
    async with serve(pool, migrated, tmp_path) as w:
        yield w


def expected_roles(method: str, path: str) -> frozenset[str] | None:
    for methods, pattern, roles in RULES:
        if re.fullmatch(methods, method) and re.fullmatch(pattern, path):
            return roles
    return None


def app_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route, through included routers (FastAPI keeps those as one entry)."""
    found: list[tuple[str, str]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for r in routes:
            if isinstance(r, Mount):
                continue  # static assets: public by design
            if hasattr(r, "original_router"):  # an included router
                walk(r.original_router.routes, prefix + getattr(r.include_context, "prefix", ""))
            elif isinstance(r, APIWebSocketRoute):
                found.append(("WS", prefix + r.path))
            elif isinstance(r, APIRoute):
                found.extend((m, prefix + r.path) for m in sorted(r.methods - {"HEAD"}))

    walk(app.routes, "")
    return found


def test_the_rules_never_let_an_auditor_or_crew_write() -> None:
    for methods, pattern, roles in RULES:
        if re.search(r"POST|PUT|PATCH|DELETE", methods) and pattern != r"/api/(me|logout)":
            assert "auditor" not in roles, pattern
            assert "crew" not in roles or pattern in CREW_WRITES, pattern


async def login(site: Web, role: str) -> httpx.AsyncClient:
    c = site.client()
    r = await c.post("/api/login", json={"username": role, "password": PASSWORDS[role]})
    assert r.status_code == 200, r.text
    return c


async def test_every_route_allows_exactly_its_roles(site: Web) -> None:
    app = site.app
    routes = app_routes(app)
    unruled = [(m, p) for m, p in routes if (m, p) not in PUBLIC and expected_roles(m, p) is None]
    assert not unruled, f"routes without an expected role set: add them to RULES in {__file__}: {unruled}"
    assert len(routes) >= 30
    clients = {role: await login(site, role) for role in ROLES}
    problems: list[str] = []
    try:
        # logout last: it ends the session the other calls use
        for method, path in sorted(routes, key=lambda mp: mp[1] == "/api/logout"):
            if (method, path) in PUBLIC:
                continue
            allowed = expected_roles(method, path)
            assert allowed is not None
            url = re.sub(r"\{[^}]+\}", "999999999", path)  # nothing real: allowed calls end in 404/422
            for role in ROLES:
                c = clients[role]
                if method == "WS":
                    got = await ws_close_code(site.url, url, c)
                    ok = got is None if role in allowed else got == auth.CLOSE_FORBIDDEN
                    if not ok:
                        problems.append(f"{role} {method} {path}: close code {got}")
                    continue
                kwargs: dict[str, Any] = {"json": {}} if method != "GET" else {}
                r = await c.request(method, url, **kwargs)
                if role in allowed:
                    if r.status_code in (401, 403):
                        problems.append(f"{role} {method} {path}: {r.status_code}, expected to be let in")
                elif (role, method, path) in REDIRECTS:
                    if r.status_code != 303 or r.headers.get("location") != REDIRECTS[role, method, path]:
                        problems.append(f"{role} {method} {path}: {r.status_code}, expected a redirect")
                elif r.status_code != 403:
                    problems.append(f"{role} {method} {path}: {r.status_code}, expected 403")
    finally:
        for c in clients.values():
            await c.aclose()
    assert not problems, "\n".join(problems)
    # nothing was written by a role that may not write
    rows = await site.pool.fetch("SELECT DISTINCT actor, action FROM audit_log WHERE actor IN ('auditor', 'crew')")
    assert {r["action"] for r in rows} <= {"user.login", "user.logout"}, rows


async def ws_close_code(base: str, path: str, c: httpx.AsyncClient) -> int | None:
    """None if the socket stays open and sends the snapshot; else the close code."""
    cookie = "; ".join(f"{k}={v}" for k, v in c.cookies.items())
    url = base.replace("http://", "ws://") + path
    try:
        async with connect(url, additional_headers={"cookie": cookie, "origin": base}, open_timeout=10) as ws:
            await ws.recv(decode=True)
            return None
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else -1
