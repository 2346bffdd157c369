"""Importing objects from the old console's CSV (the same check and transaction as `kuzet import objects`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from console import importer
from web import auth, errors
from web.routes.common import Admin, KuzetJSON, _pool, reply

router = APIRouter(prefix="/api", dependencies=[Depends(auth.require())])

MAX_BYTES = 10 * 1024 * 1024  # the body limit for /api/import in web.app.BODY_LIMITS; some 30,000 objects


@router.post("/import/objects", tags=["objects"], summary="Import objects from CSV (admin): all rows or none",
             description="The body is the CSV itself (text/csv) or a multipart form with the file in `file`."
                         " 200 {imported}; 422 {problems: [{line, column, code, message}]} and nothing imported.")
async def import_objects(request: Request, me: Admin) -> KuzetJSON:
    lang = errors.lang_of(request)
    ctype = request.headers.get("content-type", "")
    declared = int(request.headers.get("content-length") or 0)
    too_large = [{"line": 0, "column": "", "code": "too_large", "message": "the file is too large",
                  "ctx": {"max_mb": MAX_BYTES // (1024 * 1024)}}]
    if declared > MAX_BYTES:
        return reply({"detail": "the file is too large", "problems": errors.problems(too_large, lang)}, 413)
    source = "upload"
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=5)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            missing = [{"line": 0, "column": "file", "code": "missing", "message": "no file", "ctx": {}}]
            return reply({"detail": "file: no file in the form", "problems": errors.problems(missing, lang)}, 422)
        data = await upload.read(MAX_BYTES + 1)
        source = upload.filename or source
    else:
        data = b""
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_BYTES:
                break
    if len(data) > MAX_BYTES:
        return reply({"detail": "the file is too large", "problems": errors.problems(too_large, lang)}, 413)
    async with _pool(request).acquire() as conn:
        result = await importer.import_csv(conn, importer.decode(data), me.username, source=source)
    if not result.ok:
        listed = errors.problems([p.as_dict() for p in result.problems], lang)
        return reply({"detail": f"nothing imported: {len(result.problems) + result.more_problems} problem(s)",
                      "imported": 0, "rows": result.rows, "problems": listed, "more_problems": result.more_problems},
                     422)
    return reply({"imported": result.imported, "rows": result.rows})
