"""The ASGI application: API, board websocket, pages and static assets behind the session gate.

`create_app(pool, dsn, health=..., settings=...)` is called by the composition root
(`kuzet.runtime.System`), which passes the domains whose schema it migrated. Its lifespan starts the board feed's single PostgreSQL listener on
`dsn` and stops it on shutdown.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import asyncpg
import uvicorn
from fastapi import Depends, FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from compliance import personnel
from compliance.settings import ComplianceSettings
from console import edit
from console.config import Settings
from console.user import User
from web import auth, errors, feed, i18n, routes

STATIC = Path(__file__).parent / "static"
Health = Callable[[], Any]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


MiB = 1 << 20

# Request body limits by path prefix, above the default (`[web] body_limit`, 1 MiB). A route that
# takes uploads adds its prefix here; the longest matching prefix wins.
BODY_LIMITS: dict[str, int] = {
    "/api/documents": 20 * MiB,
    "/api/import": 10 * MiB,
}

HSTS = b"max-age=31536000"  # a year; sent only on responses that went over HTTPS


class BodyLimit:
    """Refuses request bodies over the limit for their path before they are read: a declared
    Content-Length is checked up front, a chunked body is counted as it streams. The answer is 413
    with a JSON message; the application sees the client as gone and its own answer is dropped."""

    def __init__(self, app: ASGIApp, default: int = MiB, limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.limits = BODY_LIMITS if limits is None else limits  # by reference: later additions count

    def limit_for(self, path: str) -> int:
        best, limit = -1, self.default
        for prefix, n in self.limits.items():
            if path.startswith(prefix) and len(prefix) > best:
                best, limit = len(prefix), n
        return limit

    @staticmethod
    async def _refuse(send: Send, status: int, detail: str, limit: int) -> None:
        body = json.dumps({"detail": detail, "limit": limit}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"cache-control", b"no-store"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.limit_for(path)
        too_large = f"request body too large: at most {limit} bytes ({limit / MiB:g} MiB) for {path}"
        declared = None
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                declared = v
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await self._refuse(send, 400, "invalid Content-Length header", limit)
                return
            if length > limit:
                await self._refuse(send, 413, too_large, limit)
                return
        received = 0
        refused = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await self._refuse(send, 413, too_large, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused and not started:
                return  # our 413 went out instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:
                raise  # the application's "client disconnected" after a refusal is expected


class SecurityHeaders:
    """Adds the usual protective headers to every HTTP response (and HSTS to those over HTTPS)."""

    HEADERS = [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=(self)"),
    ]

    def __init__(self, app: ASGIApp, img_origin: str = "") -> None:
        self.app = app
        if img_origin:  # the configured map tile server ([web] map_tiles): the only outside host allowed
            csp = CSP.replace("img-src 'self' data:", f"img-src 'self' data: {img_origin}")
            self.HEADERS = [(b"content-security-policy", csp.encode()), *self.HEADERS[1:]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in self.HEADERS if k not in present]
                if scope.get("scheme") == "https" and b"strict-transport-security" not in present:
                    headers.append((b"strict-transport-security", HSTS))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _Assets(StaticFiles):
    """Static assets (scripts, styles, icons). Pages are served by their own routes, behind the gate,
    so the .html files are not reachable here."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.endswith(".html"):
            raise HTTPException(404)
        response = await super().get_response(path, scope)
        response.headers["cache-control"] = "no-cache"  # revalidate (ETag): a new release shows at once
        return response


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html; charset=utf-8", headers={"cache-control": "no-store"})


def _forbidden(me: User) -> HTMLResponse:
    """The 403 page, in the user's language, with the way back to the login page."""
    lang = i18n.pick_lang(me.lang)
    text = i18n.t("forbidden", lang)
    return HTMLResponse(
        f'<!doctype html><html lang="{lang}"><meta charset="utf-8"><title>Kuzet</title>'
        f'<link rel="stylesheet" href="/static/board.css"><body class="plain">'
        f'<main class="notice"><h1>403</h1><p>{text}</p>'
        f'<p><a href="/login">{i18n.t("login.title", lang)}</a></p></main></body></html>',
        status_code=403, headers={"cache-control": "no-store"})


def create_app(pool: asyncpg.Pool, dsn: str, *, health: Health | None = None,
               settings: Settings | None = None, domains: Sequence[str] = ("console",)) -> FastAPI:
    """The web application over `pool`; `dsn` is for the board feed's listener connection;
    `health()` returns the receivers' state (a list of dicts) for /api/receivers."""
    hub = feed.Hub(pool, dsn)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    app = FastAPI(title="Kuzet", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None, summary="Central monitoring station: alarms, objects, signals")
    app.state.pool = pool
    app.state.dsn = dsn
    app.state.health = health
    app.state.settings = settings or Settings()
    app.state.hub = hub
    app.state.domains = tuple(domains)
    # dispatch asks this before putting staff on a duty shift (it does not import compliance)
    app.state.shift_eligibility = personnel.shift_eligibility(app.state.settings)
    app.state.throttle = auth.LoginThrottle()
    app.add_exception_handler(RequestValidationError, errors.invalid_request)
    app.add_exception_handler(edit.EditError, errors.edit_failed)
    for refused in (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError):
        app.add_exception_handler(refused, errors.text_refused)
    app.add_exception_handler(asyncpg.DataError, errors.data_refused)  # the most specific handler wins

    for r in routes.PUBLIC + routes.ROUTERS:
        app.include_router(r)
    app.include_router(feed.router)

    @app.get("/api/openapi.json", include_in_schema=False)
    async def openapi(_u: Annotated[User, Depends(auth.require())]) -> JSONResponse:
        return JSONResponse(app.openapi(), headers={"cache-control": "no-store"})

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/board", status_code=303)

    @app.get("/login", include_in_schema=False)
    async def login_page() -> FileResponse:
        return _page("login.html")

    @app.get("/board", include_in_schema=False, response_model=None)
    async def board_page(me: Annotated[User, Depends(auth.require())]) -> Response:
        if me.role == "crew":  # a crew member's place is the phone view
            return RedirectResponse("/crew", status_code=303)
        if me.role not in auth.READ_ROLES:
            return _forbidden(me)
        return _page("board.html")

    @app.get("/crew", include_in_schema=False, response_model=None)
    async def crew_page(me: Annotated[User, Depends(auth.require())]) -> Response:
        return _page("crew.html") if me.role == "crew" else _forbidden(me)

    @app.get("/dispatch/admin", include_in_schema=False, response_model=None)
    async def dispatch_admin_page(me: Annotated[User, Depends(auth.require())]) -> Response:
        return _page("dispatch-admin.html") if me.role in auth.ADMIN_ROLES else _forbidden(me)

    @app.get("/dispatch/records", include_in_schema=False, response_model=None)
    async def dispatch_records_page(me: Annotated[User, Depends(auth.require())]) -> Response:
        return _page("dispatch-records.html") if me.role in auth.READ_ROLES else _forbidden(me)

    @app.get("/static/i18n.js", include_in_schema=False)
    async def i18n_js() -> Response:
        return Response(_I18N_JS, media_type="text/javascript; charset=utf-8", headers={"cache-control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", _Assets(directory=STATIC), name="static")

    app.add_middleware(auth.Gate, pool_of=lambda: pool)
    # Document uploads: the compliance setting upload_max_bytes, plus room for the form's other fields
    limits = {**BODY_LIMITS, "/api/documents": ComplianceSettings.load(app.state.settings).upload_max_bytes + MiB}
    app.add_middleware(BodyLimit, default=app.state.settings.body_limit, limits=limits)
    tiles = urlsplit(app.state.settings.map_tiles)  # the tile server, if any, is the one outside image host
    app.add_middleware(SecurityHeaders, img_origin=f"{tiles.scheme}://{tiles.netloc}" if tiles.netloc else "")
    if app.state.settings.trusted_proxies:
        # Outermost: the client address (login throttle, audit) and the scheme (HSTS, secure cookie)
        # come from X-Forwarded-For/-Proto only when the peer is a configured proxy. The server must
        # not do this itself (uvicorn's proxy_headers trusts 127.0.0.1 by default): see runtime.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(app.state.settings.trusted_proxies))
    return app


def server_config(app: FastAPI, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """How the web is served (the runtime and the tests): forwarded headers are left to the app
    (trusted proxies only), TLS when [web] tls_cert/tls_key are set, small websocket messages."""
    kw: dict[str, Any] = {
        "host": settings.web_host, "port": settings.web_port, "log_level": "warning", "lifespan": "on",
        "ws_per_message_deflate": False, "ws_max_size": MiB, "timeout_graceful_shutdown": 3,
        "proxy_headers": False, "server_header": False,
    }
    if settings.tls_cert and settings.tls_key:
        kw.update(ssl_certfile=settings.tls_cert, ssl_keyfile=settings.tls_key)
    kw.update(overrides)
    return uvicorn.Config(app, **kw)


_I18N_JS = i18n.javascript()
