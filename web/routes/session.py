"""Log in, log out, who am I."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import Field

from console import alarm as alarms
from console import audit
from console import user as users
from console.user import User
from web import auth
from web.routes.common import Anyone, KuzetJSON, _Body, _pool, reply


class LoginIn(_Body):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1024)



def me_dict(u: User, request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    return {"id": u.id, "username": u.username, "full_name": u.full_name, "role": u.role, "lang": u.lang,
            "group_id": u.group_id, "can_act": u.role in auth.ACT_ROLES, "can_admin": u.role in auth.ADMIN_ROLES,
            "timezone": settings.timezone, "outcomes": list(alarms.OUTCOMES), "map_url": settings.map_url}


public = APIRouter(prefix="/api", tags=["session"])
router = APIRouter(prefix="/api", dependencies=[Depends(auth.require())])


@public.post("/login", summary="Log in: sets the session cookie, returns the user")
async def login(body: LoginIn, request: Request) -> KuzetJSON:
    pool = _pool(request)
    throttle: auth.LoginThrottle = request.app.state.throttle
    peer = request.client.host if request.client else ""
    if throttle.blocked(peer, body.username):
        raise HTTPException(429, "too many failed logins; try again later")
    found = await users.authenticate(pool, body.username, body.password)
    if found is None:
        throttle.failed(peer, body.username)
        async with pool.acquire() as conn, conn.transaction():
            await audit.append(conn, [audit.Entry("system:web", "user.login-failed", "user", "",
                                                  {"username": body.username, "peer": peer})])
        raise HTTPException(401, "wrong username or password")
    throttle.succeeded(peer, body.username)
    async with pool.acquire() as conn:
        old = request.cookies.get(auth.COOKIE)
        if old and (previous := await users.session_user(conn, old)) is not None:
            await users.close_session(conn, old, previous)
        token = await users.open_session(conn, found)
    response = reply(me_dict(found, request))
    auth.set_session_cookie(request, response, token)
    return response


@router.post("/logout", tags=["session"], summary="End this session")
async def logout(request: Request, me: Anyone) -> KuzetJSON:
    token = request.scope.get(auth.SCOPE_TOKEN) or request.cookies.get(auth.COOKIE)
    if token:
        async with _pool(request).acquire() as conn:
            await users.close_session(conn, token, me)
    response = reply({"ok": True})
    auth.clear_session_cookie(request, response)
    return response


@router.get("/me", tags=["session"], summary="The logged-in user and what they may do")
async def me(request: Request, me: Anyone) -> KuzetJSON:
    return reply(me_dict(me, request))

