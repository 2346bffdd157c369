"""Stored signals and the frames the receivers refused."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from console import signal as signals
from web import auth
from web.feed import latest_signals
from web.routes.common import KuzetJSON, Reader, _pool, reply

router = APIRouter(prefix="/api", dependencies=[Depends(auth.require())])


@router.get("/signals", tags=["signals"], summary="Latest stored signals, newest first")
async def list_signals(request: Request, _u: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                       account: Annotated[str | None, Query(max_length=16, pattern=r"^[0-9A-Za-z]+$")] = None,
                       ) -> KuzetJSON:
    return reply(await latest_signals(_pool(request), limit=limit, account=account.upper() if account else None))


@router.get("/rejected", tags=["signals"], summary="Frames the receivers refused (bad CRC, unknown key, ...)")
async def list_rejected(request: Request, _u: Reader,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> KuzetJSON:
    return reply(await signals.rejected(_pool(request), limit=limit))

