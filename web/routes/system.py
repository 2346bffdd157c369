"""Receivers' health, schema version and counts."""

from __future__ import annotations

import inspect

from fastapi import APIRouter, Depends, Request

from console import db
from web import auth
from web.routes.common import KuzetJSON, Reader, _pool, reply

router = APIRouter(prefix="/api", dependencies=[Depends(auth.require())])


@router.get("/receivers", tags=["system"], summary="Health of every receiver in this process")
async def receivers(request: Request, _u: Reader) -> KuzetJSON:
    health = request.app.state.health
    if health is None:
        return reply([])
    result = health()
    if inspect.isawaitable(result):
        result = await result
    return reply(list(result))


@router.get("/status", tags=["system"], summary="Database schema version and counts; this web node's feed")
async def status(request: Request, _u: Reader) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        result = await db.status(conn, request.app.state.domains)
    hub = request.app.state.hub
    result["web"] = {"board_clients": len(hub.clients), "dropped_clients": hub.dropped,
                     "listening": hub.listening.is_set(), "listener_reconnects": hub.reconnects}
    return reply(result)
