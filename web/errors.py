"""Field errors in the user's language.

Every 422/409 the API gives lists its problems as `errors`: `{"field", "type", "msg", "message", "loc"}`
where `type` is pydantic's error type (or the post's own code, e.g. `stale`, `last_admin`), `msg` the
English text and `message` the same in the caller's language (kk/ru/en, from `web/strings/admin.py`
"err.<type>"). Pages show `message` next to the field named by `field`. `detail` stays one English
line for logs and scripts.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from console import edit
from web import auth, i18n

STATUS = {edit.NotFound: 404, edit.Stale: 409, edit.Conflict: 409, edit.Invalid: 422}


def lang_of(request: Request) -> str:
    """The page's language (X-Kuzet-Lang: the pages send what the user picked), else the logged-in
    user's, else the browser's first kk/ru/en, else Kazakh."""
    asked = request.headers.get("x-kuzet-lang", "")
    if asked in i18n.LANGS:
        return asked
    me = auth.scope_user(request.scope)
    if me is not None:
        return i18n.pick_lang(me.lang)
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip()[:2].lower()
        if code in i18n.LANGS:
            return code
    return i18n.DEFAULT_LANG


def _ctx_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def localize(code: str, ctx: dict[str, Any] | None, lang: str, fallback: str = "") -> str:
    key = f"err.{code}"
    if key not in i18n.STRINGS:
        return fallback or i18n.t("err.invalid", lang)
    text = i18n.t(key, lang)
    for k, v in (ctx or {}).items():
        text = text.replace("{" + k + "}", _ctx_text(v))
    return text


def field_of(loc: Any) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    return ".".join(parts)


def _where(loc: Any) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def _plain_ctx(ctx: Any) -> dict[str, Any]:
    """pydantic's context, without exception objects (not JSON)."""
    if not isinstance(ctx, dict):
        return {}
    return {k: v if isinstance(v, int | float | str) else str(v) for k, v in ctx.items() if k != "error"}


async def invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    lang = lang_of(request)
    errors = []
    for e in exc.errors():  # "input" is left out: it may be a password
        ctx = _plain_ctx(e.get("ctx"))
        etype = str(e.get("type", ""))
        msg = str(e.get("msg", ""))
        errors.append({"loc": list(e.get("loc", ())), "field": field_of(e.get("loc", ())), "type": etype, "msg": msg,
                       "ctx": ctx, "message": localize(etype, ctx, lang, msg)})
    message = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
    return JSONResponse({"detail": message, "errors": errors}, status_code=422)


async def edit_failed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, edit.EditError)
    lang = lang_of(request)
    ctx = _plain_ctx(exc.ctx)
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 422)
    error = {"loc": ["body", exc.field] if exc.field else ["body"], "field": exc.field, "type": exc.code,
             "msg": str(exc), "ctx": ctx, "message": localize(exc.code, ctx, lang, str(exc))}
    body: dict[str, Any] = {"detail": str(exc), "errors": [error]}
    if isinstance(exc, edit.Stale):
        body["message"] = error["message"]
        body["current_version"] = exc.ctx.get("current")
    return JSONResponse(body, status_code=status)


def problems(items: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """Import problems ({line, column, code, message, ctx}) with `message` in `lang`."""
    return [{**p, "msg": p["message"], "message": localize(p["code"], p.get("ctx"), lang, p["message"])}
            for p in items]


async def text_refused(request: Request, exc: Exception) -> Response:
    """PostgreSQL refuses a NUL character (or text it cannot encode) in any text value: that is bad
    input, answered 422 like any other, never a 500."""
    lang = lang_of(request)
    error = {"loc": ["body"], "field": "", "type": "value_error", "msg": "text contains a character that cannot be stored",
             "ctx": {}, "message": localize("value_error", {}, lang)}
    return JSONResponse({"detail": error["msg"], "errors": [error]}, status_code=422)


async def data_refused(request: Request, exc: Exception) -> Response:
    """Any other value the database refuses as data (a number out of range, a date it cannot hold)
    that no request model caught: the caller's input, so 422 naming the problem, never a 500."""
    lang = lang_of(request)
    msg = str(exc).split("\n")[0][:300] or "a value cannot be stored"
    error = {"loc": ["body"], "field": "", "type": "value_error", "msg": msg, "ctx": {},
             "message": localize("value_error", {}, lang)}
    return JSONResponse({"detail": f"invalid value: {msg}", "errors": [error]}, status_code=422)
