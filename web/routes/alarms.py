"""Alarms: the open queue (and history search), one alarm with its timeline, and the operators'
actions: acknowledge, take / take over, release, hand over, hold, calls, checklist, close, annotate.

An action on an alarm another operator handles answers 409 {"detail", "handled_by", "handled_by_name"}
unless the body says {"takeover": true}; closing with checklist items open answers 409
{"detail", "open_items"} unless it gives a "checklist_reason"."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import Field

from console import alarm as alarms
from console import handling, history
from console.alarm import AlarmError
from console.handling import ChecklistOpen, HandledElsewhere
from console.user import User
from dispatch import assignment as assignments
from web import auth, i18n
from web.routes.common import Acting, AlarmId, KuzetJSON, Reader, _Body, _pool, reply

router = APIRouter(prefix="/api", dependencies=[Depends(auth.require())])


Outcome = Literal["real-alarm", "false-alarm", "technical-fault", "test", "owner-cancelled", "other"]


class CloseIn(_Body):
    outcome: Outcome = Field(description="how the alarm ended")
    note: str = Field("", max_length=2000)
    checklist_reason: str = Field("", max_length=2000, description="why checklist items are not done")
    takeover: bool = Field(False, description="close an alarm another operator handles")


class TakeIn(_Body):
    takeover: bool = Field(False, description="take an alarm another operator handles")


class HoldIn(_Body):
    reason: str = Field(min_length=1, max_length=500)
    minutes: float = Field(ge=0.05, le=720, description="how long (the alarm comes back after it)")
    takeover: bool = False


class CallIn(_Body):
    called: str = Field(min_length=1, max_length=200, description="who was called")
    phone: str = Field("", max_length=50)
    answer: Literal["answered", "no-answer", "busy", "wrong-number", "voicemail"]
    password_ok: bool | None = Field(None, description="the password was checked and right (null: not asked)")
    note: str = Field("", max_length=2000)


class CheckIn(_Body):
    done: bool = True


class HandOverIn(_Body):
    to_user_id: int | None = Field(None, ge=1, le=2**63 - 1, description="an operator, or null for the pool")


class NoteIn(_Body):
    note: str = Field(min_length=1, max_length=2000)



def _actor(u: User) -> alarms.Actor:
    return alarms.Actor(u.id, u.username)



async def _alarm_with_history(conn: asyncpg.Connection | asyncpg.Pool, alarm_id: int) -> dict[str, Any]:
    found = await alarms.get(conn, alarm_id)
    if found is None:
        raise HTTPException(404, f"alarm {alarm_id} does not exist")
    return {**found, "history": await alarms.history(conn, alarm_id),
            "checklist": await handling.checklist(conn, alarm_id), "timeline": await handling.timeline(conn, alarm_id),
            "assignments": await assignments.for_alarm(conn, alarm_id)}


def _conflict(exc: AlarmError) -> KuzetJSON:
    """409 with what the page needs to ask the next question ("X handles this — take over?")."""
    body: dict[str, Any] = {"detail": str(exc)}
    if isinstance(exc, HandledElsewhere):
        body |= {"handled_by": exc.username, "handled_by_name": exc.full_name or exc.username}
    if isinstance(exc, ChecklistOpen):
        body |= {"open_items": exc.open_items}
    return reply(body, 409)


CSV_MAX = 100_000  # rows in one CSV export
JSON_MAX = 1000  # rows in one JSON page


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise HTTPException(422, f"{field}: give a time zone (e.g. 2026-01-31T08:00:00+05:00 or ...Z)")
    return value


def _check_limit(limit: int, format: str) -> None:
    if format == "json" and limit > JSON_MAX:
        raise HTTPException(422, f"limit: at most {JSON_MAX} rows per JSON page (format=csv exports up to {CSV_MAX})")


def _rows(rows: list[dict[str, Any]], next_before: int | None, format: str, columns: tuple[str, ...], name: str,
          rename: dict[str, str] | None = None) -> Response:
    """The same rows as JSON (a list) or as CSV with a header row; the next page's cursor in a header."""
    headers = {"cache-control": "no-store"}
    if next_before is not None:
        headers["x-next-before"] = str(next_before)
    if format == "csv":
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        headers["content-disposition"] = f'attachment; filename="kuzet-{name}-{stamp}.csv"'
        # a byte-order mark so that spreadsheet programs read the Cyrillic as UTF-8
        return Response("\ufeff" + history.csv_text(rows, columns, rename), media_type="text/csv; charset=utf-8",
                        headers=headers)
    response = reply(rows)
    response.headers.update(headers)
    return response


def _invalid(exc: ValueError) -> HTTPException:
    """A domain check on a field: 422 naming it ("field: problem")."""
    field, _, problem = str(exc).partition(": ")
    return HTTPException(422, f"{field}: {problem}" if problem else str(exc))


@router.get("/alarms", tags=["alarms"], response_model=None,
            summary="Open alarms, most urgent first; with any filter (or closed=1): history, newest first")
async def list_alarms(
    request: Request, me: Reader, closed: bool = False,
    limit: Annotated[int, Query(ge=1, le=CSV_MAX)] = 200,
    object_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    account: Annotated[str | None, Query(max_length=16, pattern=r"^[0-9A-Za-z]+$")] = None,
    klass: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z-]+$", description="event class")] = None,
    outcome: Outcome | None = None,
    operator: Annotated[str | None, Query(max_length=150, description="username: alarms they acted on")] = None,
    state: Annotated[str | None, Query(pattern=r"^(open|closed|new|acknowledged|dispatched|on-site)$")] = None,
    since: Annotated[datetime | None, Query(alias="from", description="opened at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="opened before (ISO 8601)")] = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="keyset: ids below this")] = None,
    format: Literal["json", "csv"] = "json",
) -> Response:
    """Without a history filter this is the board's open queue, as before. Any of object_id, account,
    klass, outcome, operator, state, from, to, before or closed=1 makes it a history search over all
    alarms (newest first, paged: the `x-next-before` header gives `before` for the next page)."""
    since, until = _aware(since, "from"), _aware(until, "to")
    _check_limit(limit, format)
    pool = _pool(request)
    f = history.AlarmFilter(object_id=object_id, account=account, klass=klass, outcome=outcome, operator=operator,
                            state=state, since=since, until=until)
    searching = closed or before is not None or any(v is not None for v in (
        object_id, account, klass, outcome, operator, state, since, until))
    lang = i18n.pick_lang(me.lang)
    if searching:
        page = await history.alarms(pool, f, before=before, limit=limit, lang=lang)
        rows, next_before = page.rows, page.next_before
    else:
        rows, next_before = await alarms.list_alarms(pool, limit=limit), None
        for r in rows:
            title = r["title"] or {}
            r["title_text"] = title.get(lang) or title.get("ru") or r["klass"]
    return _rows(rows, next_before, format, history.ALARM_CSV, "alarms", {"title": "title_text",
                 "acknowledged_by": "acknowledged_by", "handled_by": "handled_by_name" if not searching else "handled_by"})


@router.get("/alarms/counts", tags=["alarms"], summary="True counts of open alarms (open, per priority, new, on hold)")
async def counts(request: Request, _u: Reader) -> KuzetJSON:
    return reply(await alarms.counts(_pool(request)))


@router.get("/operators", tags=["alarms"], summary="Active operators (hand-over targets, history filter)")
async def operators(request: Request, _u: Reader) -> KuzetJSON:
    rows = await _pool(request).fetch(
        "SELECT id, username, full_name, role FROM users WHERE active AND role IN ('operator', 'admin')"
        " ORDER BY username")
    return reply([dict(r) for r in rows])


@router.get("/alarms/{alarm_id}", tags=["alarms"], summary="One alarm with its history")
async def get_alarm(request: Request, alarm_id: AlarmId, _u: Reader) -> KuzetJSON:
    return reply(await _alarm_with_history(_pool(request), alarm_id))


@router.post("/alarms/handover", tags=["alarms"], summary="Shift change: hand all my open alarms to another operator or the pool")
async def hand_over(request: Request, body: HandOverIn, me: Acting) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        try:
            return reply(await handling.hand_over(conn, _actor(me), body.to_user_id))
        except AlarmError as exc:
            raise HTTPException(422, f"to_user_id: {exc}") from None


@router.post("/alarms/{alarm_id}/ack", tags=["alarms"], summary="Acknowledge a new alarm (and take it)")
async def acknowledge(request: Request, alarm_id: AlarmId, me: Acting, body: TakeIn | None = None) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await _alarm_with_history(conn, alarm_id)  # 404 before 409
        try:
            return reply(await handling.acknowledge(conn, alarm_id, _actor(me), takeover=bool(body and body.takeover)))
        except AlarmError as exc:
            return _conflict(exc)


@router.post("/alarms/{alarm_id}/take", tags=["alarms"], summary="Start handling an alarm (takeover: from another operator)")
async def take(request: Request, alarm_id: AlarmId, me: Acting, body: TakeIn | None = None) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await _alarm_with_history(conn, alarm_id)
        try:
            return reply(await handling.take(conn, alarm_id, _actor(me), takeover=bool(body and body.takeover)))
        except AlarmError as exc:
            return _conflict(exc)


@router.post("/alarms/{alarm_id}/release", tags=["alarms"], summary="Give an alarm I handle back to the pool")
async def release(request: Request, alarm_id: AlarmId, me: Acting) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await _alarm_with_history(conn, alarm_id)
        try:
            return reply(await handling.release(conn, alarm_id, _actor(me)))
        except AlarmError as exc:
            return _conflict(exc)


@router.post("/alarms/{alarm_id}/hold", tags=["alarms"], summary="Put an alarm on hold with a reason and a time limit")
async def hold(request: Request, alarm_id: AlarmId, body: HoldIn, me: Acting) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await _alarm_with_history(conn, alarm_id)
        try:
            return reply(await handling.hold(conn, alarm_id, _actor(me), reason=body.reason, minutes=body.minutes,
                                             takeover=body.takeover))
        except ValueError as exc:
            raise _invalid(exc) from None
        except AlarmError as exc:
            return _conflict(exc)


@router.post("/alarms/{alarm_id}/unhold", tags=["alarms"], summary="End a hold early")
async def unhold(request: Request, alarm_id: AlarmId, me: Acting) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await _alarm_with_history(conn, alarm_id)
        try:
            return reply(await handling.unhold(conn, alarm_id, _actor(me)))
        except AlarmError as exc:
            return _conflict(exc)


@router.post("/alarms/{alarm_id}/calls", tags=["alarms"], summary="Record a call made to a keyholder")
async def add_call(request: Request, alarm_id: AlarmId, body: CallIn, me: Acting) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await _alarm_with_history(conn, alarm_id)
        try:
            await handling.add_call(conn, alarm_id, _actor(me), called=body.called, phone=body.phone,
                                    answer=body.answer, password_ok=body.password_ok, note=body.note)
        except ValueError as exc:
            raise _invalid(exc) from None
        except AlarmError as exc:
            return _conflict(exc)
        return reply(await _alarm_with_history(conn, alarm_id))


@router.get("/alarms/{alarm_id}/checklist", tags=["alarms"], summary="The object's instructions as a checklist")
async def get_checklist(request: Request, alarm_id: AlarmId, _u: Reader) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await _alarm_with_history(conn, alarm_id)
        return reply(await handling.checklist(conn, alarm_id))


@router.post("/alarms/{alarm_id}/checklist/{item_no}", tags=["alarms"], summary="Tick (or untick) a checklist item")
async def tick(request: Request, alarm_id: AlarmId, item_no: Annotated[int, Path(ge=1, le=1000)], me: Acting,
               body: CheckIn | None = None) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await _alarm_with_history(conn, alarm_id)
        try:
            return reply(await handling.tick(conn, alarm_id, _actor(me), item_no, body.done if body else True))
        except ValueError as exc:
            raise _invalid(exc) from None
        except AlarmError as exc:
            return _conflict(exc)


@router.post("/alarms/{alarm_id}/close", tags=["alarms"], summary="Close an acknowledged alarm with an outcome")
async def close(request: Request, alarm_id: AlarmId, body: CloseIn, me: Acting) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await _alarm_with_history(conn, alarm_id)
        try:
            return reply(await handling.close(conn, alarm_id, _actor(me), body.outcome, body.note,
                                              checklist_reason=body.checklist_reason, takeover=body.takeover))
        except AlarmError as exc:
            return _conflict(exc)


@router.post("/alarms/{alarm_id}/note", tags=["alarms"], summary="Add an operator's note to an alarm")
async def note(request: Request, alarm_id: AlarmId, body: NoteIn, me: Acting) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await _alarm_with_history(conn, alarm_id)
        try:
            await alarms.add_note(conn, alarm_id, _actor(me), body.note)
        except AlarmError as exc:
            return _conflict(exc)
        return reply(await _alarm_with_history(conn, alarm_id))

