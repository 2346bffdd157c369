"""The auditor's page (/compliance), the organization's public key, and the evidence export.

Exporting changes nothing operational, so it is a GET the auditor may call (every write route
answers 403 to an auditor); it is audited all the same (who exported which period) and leaves an
audit anchor in the data directory, like a backup does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.background import BackgroundTask

from compliance import export, orgkey
from console.user import User
from web import auth, i18n
from web.routes.common import KuzetJSON, _pool, reply

STATIC = Path(__file__).resolve().parent.parent / "static"
ROLES = ("admin", "auditor")
Viewer = Annotated[User, Depends(auth.require(*ROLES))]
MAX_PERIOD_DAYS = 3 * 366

router = APIRouter(dependencies=[Depends(auth.require())])


@router.get("/compliance", include_in_schema=False, response_model=None)
async def compliance_page(me: Annotated[User, Depends(auth.require())]) -> Response:
    if me.role not in ROLES:
        lang = i18n.pick_lang(me.lang)
        return HTMLResponse(
            f'<!doctype html><html lang="{lang}"><meta charset="utf-8"><title>Kuzet</title>'
            f'<link rel="stylesheet" href="/static/compliance.css"><body><main><h1>403</h1>'
            f'<p>{i18n.t("forbidden", lang)}</p></main></body></html>',
            status_code=403, headers={"cache-control": "no-store"})
    return FileResponse(STATIC / "compliance.html", media_type="text/html; charset=utf-8",
                        headers={"cache-control": "no-store"})


@router.get("/api/compliance/key", tags=["compliance"], summary="The organization's public key (PEM) and fingerprint")
async def public_key(request: Request, _u: Viewer) -> KuzetJSON:
    key = await asyncio.to_thread(orgkey.load_or_create, request.app.state.settings.home)
    return reply({"fingerprint": orgkey.fingerprint(key), "pem": orgkey.public_pem(key).decode()})


@router.get("/api/compliance/export", tags=["compliance"], response_class=FileResponse,
            summary="The signed evidence bundle (ZIP) for a period; a read: it changes nothing but the audit log")
async def export_bundle(request: Request, me: Viewer, period_from: Annotated[dt.date, Query(alias="from")],
                        period_to: Annotated[dt.date, Query(alias="to")],
                        lang: Annotated[Literal["kk", "ru", "en"], Query()] = "kk") -> FileResponse:
    if period_from > period_to:
        raise HTTPException(422, "from: is after to")
    if (period_to - period_from).days > MAX_PERIOD_DAYS:
        raise HTTPException(422, f"from: the period is longer than {MAX_PERIOD_DAYS} days")
    home: Path = request.app.state.settings.home
    tmp = Path(tempfile.mkdtemp(prefix="kuzet-export-"))
    name = f"kuzet-evidence-{period_from}-{period_to}-{lang}.zip"
    out = tmp / name
    try:
        async with _pool(request).acquire() as conn:
            await export.export_bundle(conn, out, home=home, period_from=period_from,
                                       period_to=period_to, lang=lang,
                                       settings=request.app.state.settings, actor=me.username)
    except RuntimeError as exc:
        _cleanup(tmp)
        raise HTTPException(409, str(exc)) from None
    return FileResponse(out, media_type="application/zip", filename=name,
                        headers={"cache-control": "no-store"}, background=BackgroundTask(_cleanup, tmp))


def _cleanup(folder: Path) -> None:
    for p in folder.glob("*"):
        p.unlink(missing_ok=True)
    folder.rmdir()
