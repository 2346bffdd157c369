"""Stored signals (the latest, or a history search) and the frames the receivers refused."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from console import history
from console import signal as signals
from web import auth, i18n
from web.feed import latest_signals
from web.routes.alarms import CSV_MAX, _aware, _check_limit, _rows
from web.routes.common import KuzetJSON, Reader, _pool, reply

router = APIRouter(prefix="/api", dependencies=[Depends(auth.require())])


@router.get("/signals", tags=["signals"], response_model=None,
            summary="Stored signals, newest first; filter by object, account, code, time; page; CSV")
async def list_signals(
    request: Request, me: Reader, limit: Annotated[int, Query(ge=1, le=CSV_MAX)] = 100,
    account: Annotated[str | None, Query(max_length=16, pattern=r"^[0-9A-Za-z]+$")] = None,
    object_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    code: Annotated[str | None, Query(max_length=8, pattern=r"^[0-9A-Za-z]+$")] = None,
    since: Annotated[datetime | None, Query(alias="from", description="received at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="received before (ISO 8601)")] = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="keyset: ids below this")] = None,
    format: Literal["json", "csv"] = "json",
) -> Response:
    since, until = _aware(since, "from"), _aware(until, "to")
    _check_limit(limit, format)
    pool = _pool(request)
    if format == "json" and all(v is None for v in (object_id, code, since, until, before)):
        # the board's view, unchanged: the latest signals (optionally one account)
        return reply(await latest_signals(pool, limit=limit, account=account.upper() if account else None))
    page = await history.signals(pool, history.SignalFilter(object_id=object_id, account=account, code=code,
                                                            since=since, until=until),
                                 before=before, limit=limit, lang=i18n.pick_lang(me.lang))
    return _rows(page.rows, page.next_before, format, history.SIGNAL_CSV, "signals",
                 {"description": "description_text"})


@router.get("/rejected", tags=["signals"], summary="Frames the receivers refused (bad CRC, unknown key, ...)")
async def list_rejected(request: Request, _u: Reader,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> KuzetJSON:
    return reply(await signals.rejected(_pool(request), limit=limit))

