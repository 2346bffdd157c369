"""Alarms: the open queue, one alarm with its history, acknowledge, close, annotate."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import Field

from console import alarm as alarms
from console.alarm import AlarmError
from console.user import User
from web import auth
from web.routes.common import Acting, AlarmId, KuzetJSON, Reader, _Body, _pool, reply

router = APIRouter(prefix="/api", dependencies=[Depends(auth.require())])


Outcome = Literal["real-alarm", "false-alarm", "technical-fault", "test", "owner-cancelled", "other"]


class CloseIn(_Body):
    outcome: Outcome = Field(description="how the alarm ended")
    note: str = Field("", max_length=2000)


class NoteIn(_Body):
    note: str = Field(min_length=1, max_length=2000)



def _actor(u: User) -> alarms.Actor:
    return alarms.Actor(u.id, u.username)



async def _alarm_with_history(conn: asyncpg.Connection | asyncpg.Pool, alarm_id: int) -> dict[str, Any]:
    found = await alarms.get(conn, alarm_id)
    if found is None:
        raise HTTPException(404, f"alarm {alarm_id} does not exist")
    return {**found, "history": await alarms.history(conn, alarm_id)}



@router.get("/alarms", tags=["alarms"], summary="Open alarms, most urgent first (closed=1: newest first, with closed)")
async def list_alarms(request: Request, _u: Reader, closed: bool = False,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> KuzetJSON:
    return reply(await alarms.list_alarms(_pool(request), include_closed=closed, limit=limit))


@router.get("/alarms/{alarm_id}", tags=["alarms"], summary="One alarm with its history")
async def get_alarm(request: Request, alarm_id: AlarmId, _u: Reader) -> KuzetJSON:
    return reply(await _alarm_with_history(_pool(request), alarm_id))


@router.post("/alarms/{alarm_id}/ack", tags=["alarms"], summary="Acknowledge a new alarm")
async def acknowledge(request: Request, alarm_id: AlarmId, me: Acting) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await _alarm_with_history(conn, alarm_id)  # 404 before 409
        try:
            return reply(await alarms.acknowledge(conn, alarm_id, _actor(me)))
        except AlarmError as exc:
            raise HTTPException(409, str(exc)) from None


@router.post("/alarms/{alarm_id}/close", tags=["alarms"], summary="Close an acknowledged alarm with an outcome")
async def close(request: Request, alarm_id: AlarmId, body: CloseIn, me: Acting) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await _alarm_with_history(conn, alarm_id)
        try:
            return reply(await alarms.close(conn, alarm_id, _actor(me), body.outcome, body.note))
        except AlarmError as exc:
            raise HTTPException(409, str(exc)) from None


@router.post("/alarms/{alarm_id}/note", tags=["alarms"], summary="Add an operator's note to an alarm")
async def note(request: Request, alarm_id: AlarmId, body: NoteIn, me: Acting) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await _alarm_with_history(conn, alarm_id)
        try:
            await alarms.add_note(conn, alarm_id, _actor(me), body.note)
        except AlarmError as exc:
            raise HTTPException(409, str(exc)) from None
        return reply(await _alarm_with_history(conn, alarm_id))

