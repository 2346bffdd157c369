"""The ASGI application: API, board websocket, pages and static assets behind the session gate.

`create_app(pool, dsn, health=..., settings=...)` is called by the composition root
(`kuzet.runtime.System`), which passes the domains whose schema it migrated. Its lifespan starts the board feed's single PostgreSQL listener on
`dsn` and stops it on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console import edit
from console.config import Settings
from console.user import User
from web import auth, errors, feed, i18n, routes

STATIC = Path(__file__).parent / "static"
Health = Callable[[], Any]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class SecurityHeaders:
    """Adds the usual protective headers to every HTTP response."""

    HEADERS = [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=(self)"),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in self.HEADERS if k not in present]
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
    app.state.throttle = auth.LoginThrottle()
    app.add_exception_handler(RequestValidationError, errors.invalid_request)
    app.add_exception_handler(edit.EditError, errors.edit_failed)

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
        if me.role not in auth.READ_ROLES:
            lang = i18n.pick_lang(me.lang)
            text = i18n.t("forbidden", lang)
            return HTMLResponse(
                f'<!doctype html><html lang="{lang}"><meta charset="utf-8"><title>Kuzet</title>'
                f'<link rel="stylesheet" href="/static/board.css"><body class="plain">'
                f'<main class="notice"><h1>403</h1><p>{text}</p>'
                f'<p><a href="/login">{i18n.t("login.title", lang)}</a></p></main></body></html>',
                status_code=403, headers={"cache-control": "no-store"})
        return _page("board.html")

    @app.get("/static/i18n.js", include_in_schema=False)
    async def i18n_js() -> Response:
        return Response(_I18N_JS, media_type="text/javascript; charset=utf-8", headers={"cache-control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", _Assets(directory=STATIC), name="static")

    app.add_middleware(auth.Gate, pool_of=lambda: pool)
    app.add_middleware(SecurityHeaders)  # outermost: also covers the gate's own answers
    return app


_I18N_JS = i18n.javascript()
