"""Who is asking: the session cookie, the gate every request passes, and role checks.

The gate is deny-by-default: apart from a short list of public paths (the login page, the login
call, the static assets), every HTTP request and websocket needs a live session, whatever route it
is for, including routes added later. Anonymous API calls get 401, anonymous pages a redirect to
/login, anonymous websockets are accepted and closed at once with code 4401 (so the browser can tell
"log in again" from "network trouble"). Roles are then checked per route by `require(*roles)`.

State-changing requests and websockets that carry a foreign Origin are refused as well (403 /
close 4403): the SameSite=Strict cookie already stops cross-site requests in current browsers, this
is the second lock.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

import asyncpg
from fastapi import HTTPException, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console import user as users
from console.user import User

COOKIE = "kuzet_session"
SCOPE_USER = "kuzet.user"
SCOPE_TOKEN = "kuzet.token"

READ_ROLES = ("admin", "operator", "auditor")  # may watch the board
ACT_ROLES = ("admin", "operator")  # may acknowledge, close and annotate alarms
ADMIN_ROLES = ("admin",)

PUBLIC_PATHS = frozenset({"/login", "/api/login", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return str(v.decode("latin-1"))
    return None


def cookie_token(scope: Scope) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None


def foreign_origin(scope: Scope) -> bool:
    """True when the request says it comes from a page of another site. A reverse proxy that
    rewrites Host should pass the original in X-Forwarded-Host (a page of another site cannot
    add that header without a CORS preflight, which Kuzet never grants)."""
    origin = _header(scope, b"origin")
    if not origin or origin == "null":
        return origin == "null"
    netloc = urlsplit(origin).netloc.lower()
    hosts = {(_header(scope, b"host") or "").lower()}
    forwarded = _header(scope, b"x-forwarded-host")
    if forwarded:
        hosts.add(forwarded.split(",")[0].strip().lower())
    return netloc not in hosts


def safe_next(path: str | None) -> str:
    """A local path to return to after login (never another site)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/board"
    return path


class Gate:
    """ASGI middleware: resolves the session for every request and refuses anonymous ones."""

    def __init__(self, app: ASGIApp, pool_of: Callable[[], asyncpg.Pool]) -> None:
        self.app = app
        self.pool_of = pool_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if kind == "http" and scope.get("method") in UNSAFE_METHODS and foreign_origin(scope):
            await _json(send, 403, b'{"detail":"cross-origin request refused"}')
            return
        if kind == "http" and is_public(path):
            await self.app(scope, receive, send)
            return
        token = cookie_token(scope)
        found: User | None = None
        if token:
            found = await users.session_user(self.pool_of(), token)
        if kind == "websocket":
            if found is None or foreign_origin(scope):
                await _refuse_websocket(receive, send, CLOSE_UNAUTHENTICATED if found is None else CLOSE_FORBIDDEN)
                return
        elif found is None:
            if path.startswith("/api/") or path == "/api":
                await _json(send, 401, b'{"detail":"not logged in"}',
                            extra=[(b"www-authenticate", b'Cookie realm="kuzet"')])
            else:
                query = scope.get("query_string", b"").decode("latin-1")
                target = path + ("?" + query if query else "")
                location = "/login?next=" + quote(safe_next(target), safe="/")
                await _send_simple(send, 303, [(b"location", location.encode("latin-1"))], b"")
            return
        scope[SCOPE_USER] = found
        scope[SCOPE_TOKEN] = token
        await self.app(scope, receive, send)


async def _send_simple(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store"),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await _send_simple(send, status, [(b"content-type", b"application/json"), *(extra or [])], body)


async def _refuse_websocket(receive: Receive, send: Send, code: int) -> None:
    """Accept, then close with an application code the page understands (a plain HTTP 403 on the
    handshake would look like a network failure to the browser)."""
    message: Message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": code,
                "reason": "not logged in" if code == CLOSE_UNAUTHENTICATED else "forbidden"})


def scope_user(scope: Scope) -> User | None:
    u = scope.get(SCOPE_USER)
    return u if isinstance(u, User) else None


def require(*roles: str) -> Callable[[Request], Awaitable[User]]:
    """Dependency: the logged-in user, who must have one of `roles` (any role when none given)."""

    async def dependency(request: Request) -> User:
        found = scope_user(request.scope)
        if found is None:  # the gate normally answers first; this keeps a route safe if mounted elsewhere
            token = request.cookies.get(COOKIE)
            found = await users.session_user(request.app.state.pool, token) if token else None
            if found is None:
                raise HTTPException(401, "not logged in")
        if roles and found.role not in roles:
            raise HTTPException(403, f"role {found.role} may not do this; needs one of: {', '.join(roles)}")
        return found

    return dependency


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(COOKIE, token, max_age=users.SESSION_HOURS * 3600, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


class LoginThrottle:
    """Slows password guessing without letting a stranger lock an operator out.

    Failures are counted per (client address, username) and per client address. After
    `per_user` failures for one name from one address, or `per_address` failures of any names
    from one address, within `window` seconds, that address gets 429 until the window has
    passed. Another workstation can still log in as the same operator.
    """

    def __init__(self, per_user: int = 10, per_address: int = 50, window: float = 600.0,
                 max_keys: int = 10_000) -> None:
        self.per_user = per_user
        self.per_address = per_address
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[str, list[float]] = {}

    @staticmethod
    def _keys(address: str, username: str) -> tuple[str, str]:
        return f"{address}\x00{username.lower()}", address

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, ()) if t > now - self.window]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def blocked(self, address: str, username: str) -> bool:
        now = time.monotonic()
        pair, addr = self._keys(address, username)
        return len(self._recent(pair, now)) >= self.per_user or len(self._recent(addr, now)) >= self.per_address

    def failed(self, address: str, username: str) -> None:
        now = time.monotonic()
        if len(self._failures) >= self.max_keys:  # keep memory bounded under a spray of names
            for key in list(self._failures):
                self._recent(key, now)
            if len(self._failures) >= self.max_keys:
                self._failures.clear()
        for key in self._keys(address, username):
            self._failures.setdefault(key, []).append(now)

    def succeeded(self, address: str, username: str) -> None:
        self._failures.pop(self._keys(address, username)[0], None)
