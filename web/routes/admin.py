"""The admin pages (/admin): admins only; every other role gets a 403 page in their language."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, HTMLResponse, Response

from console.user import User
from web import auth, i18n
from web.routes.common import STATIC

router = APIRouter()


def forbidden_page(me: User) -> HTMLResponse:
    lang = i18n.pick_lang(me.lang)
    return HTMLResponse(
        f'<!doctype html><html lang="{lang}"><meta charset="utf-8"><title>Kuzet</title>'
        f'<link rel="stylesheet" href="/static/board.css"><body class="plain">'
        f'<main class="notice"><h1>403</h1><p>{i18n.t("forbidden", lang)}</p>'
        f'<p><a href="/login">{i18n.t("login.title", lang)}</a></p></main></body></html>',
        status_code=403, headers={"cache-control": "no-store"})


@router.get("/admin", include_in_schema=False, response_model=None)
async def admin_page(me: Annotated[User, Depends(auth.require())]) -> Response:
    if me.role not in auth.ADMIN_ROLES:
        return forbidden_page(me)
    return FileResponse(STATIC / "admin.html", media_type="text/html; charset=utf-8",
                        headers={"cache-control": "no-store"})
