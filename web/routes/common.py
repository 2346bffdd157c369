"""What every route module shares: the JSON reply, request-body base, role annotations."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from console.user import User
from web import auth
from web.feed import dumps

STATIC = FilePath(__file__).resolve().parent.parent / "static"


class KuzetJSON(JSONResponse):
    """JSON with datetimes as ISO strings and bytes as escaped text; never cached."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


def reply(content: Any, status: int = 200) -> KuzetJSON:
    return KuzetJSON(content, status_code=status, headers={"cache-control": "no-store"})



def _refuse_nul(value: Any) -> Any:
    """PostgreSQL cannot store U+0000 in text or jsonb: refuse it here, naming the field, instead of
    letting the database fail the request (a 500)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise PydanticCustomError("nul_character", "contains a NUL character (\\0), which cannot be stored")
    elif isinstance(value, dict):
        for k, v in value.items():
            _refuse_nul(k)
            _refuse_nul(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _refuse_nul(v)
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return _refuse_nul(value)



def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool



AlarmId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ObjectId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Reader = Annotated[User, Depends(auth.require(*auth.READ_ROLES))]
Acting = Annotated[User, Depends(auth.require(*auth.ACT_ROLES))]
Admin = Annotated[User, Depends(auth.require(*auth.ADMIN_ROLES))]
Anyone = Annotated[User, Depends(auth.require())]
