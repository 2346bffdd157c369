"""Kuzet's web front: REST API, the live board websocket, login sessions, and the static pages.

`web.app.create_app(pool, dsn, health=..., settings=...)` builds the ASGI application; the
composition root (`kuzet.runtime.System`) serves it with uvicorn.
"""
