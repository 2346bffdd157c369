"""Users, for admins: list, create, edit (role, name, language, active), reset a password."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from console import user as users
from web import auth
from web.routes.common import Admin, KuzetJSON, ObjectId, _Body, _pool, reply

router = APIRouter(prefix="/api", dependencies=[Depends(auth.require())])

Role = Literal["admin", "operator", "crew", "auditor"]
Lang = Literal["kk", "ru", "en"]


class UserIn(_Body):
    username: str = Field(min_length=2, max_length=64, pattern=users.USERNAME.pattern)
    full_name: str = Field("", max_length=200)
    role: Role
    lang: Lang = "ru"
    group_id: int | None = Field(None, ge=1, le=2**63 - 1, description="a crew member's response group")
    password: str | None = Field(None, min_length=users.PASSWORD_MIN, max_length=users.PASSWORD_MAX,
                                 description="omit to have one generated (returned once)")


class UserPatch(_Body):
    version: int = Field(ge=1, le=2**31 - 1)
    full_name: str | None = Field(None, max_length=200)
    role: Role | None = None
    lang: Lang | None = None
    active: bool | None = Field(None, description="false disables the user and ends their sessions")


class PasswordIn(_Body):
    version: int | None = Field(None, ge=1, le=2**31 - 1)
    password: str | None = Field(None, min_length=users.PASSWORD_MIN, max_length=users.PASSWORD_MAX,
                                 description="omit to have one generated (returned once)")


@router.get("/users", tags=["users"], summary="Users (admin)")
async def list_users(request: Request, _me: Admin) -> KuzetJSON:
    return reply(await users.list_users(_pool(request)))


@router.post("/users", tags=["users"], status_code=201, summary="Create a user (admin)")
async def create_user(request: Request, body: UserIn, me: Admin) -> KuzetJSON:
    password = body.password or users.generate_password()
    async with _pool(request).acquire() as conn:
        created = await users.add(conn, me.username, body.username, password, body.role, full_name=body.full_name,
                                  lang=body.lang, group_id=body.group_id)
    if body.password is None:
        created["password"] = password  # shown once, never stored in the clear
    return reply(created, 201)


@router.patch("/users/{user_id}", tags=["users"], summary="Edit a user (admin; carries the version read)")
async def patch_user(request: Request, user_id: ObjectId, body: UserPatch, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        return reply(await users.update(conn, me.username, user_id, body.version, full_name=body.full_name,
                                        role=body.role, lang=body.lang, active=body.active))


@router.post("/users/{user_id}/password", tags=["users"], summary="Set or generate a new password (admin)")
async def reset_password(request: Request, user_id: ObjectId, body: PasswordIn, me: Admin) -> KuzetJSON:
    password = body.password or users.generate_password()
    async with _pool(request).acquire() as conn:
        changed = await users.set_password(conn, me.username, user_id, password, body.version)
    if body.password is None:
        changed["password"] = password
    return reply(changed)
