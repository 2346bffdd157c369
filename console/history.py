"""History and search: alarms, signals and the audit trail after they leave the board.

Filters combine with AND; every search is newest first and paged by keyset (`before`: the smallest
id of the previous page), so page 500 costs what page 1 costs and rows arriving meanwhile never
shift a page. Times are UTC instants (`from` inclusive, `to` exclusive). `csv_text` turns the rows
of any search into CSV with a header row; the columns are the `*_CSV` tuples below.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from console import eventcodes
from console.account import SIGNAL_ACCOUNT_JOIN

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


@dataclass(slots=True)
class Page:
    rows: list[dict[str, Any]]
    next_before: int | None  # pass as `before` for the next page; None: this was the last


@dataclass(slots=True)
class AlarmFilter:
    object_id: int | None = None
    account: str | None = None
    klass: str | None = None  # event class of the opening signal (burglary, fire, ...)
    outcome: str | None = None
    operator: str | None = None  # a username: alarms that operator acted on
    state: str | None = None  # "open", "closed" or one alarm state
    since: datetime | None = None  # opened at or after
    until: datetime | None = None  # opened before


ALARM_CSV = ("id", "opened_at", "priority", "object_id", "object_name", "account", "kind", "klass", "title",
             "state", "outcome", "signal_count", "acknowledged_at", "acknowledged_by", "closed_at", "closed_by",
             "handled_by", "seconds_to_ack", "seconds_to_close")

SIGNAL_CSV = ("id", "received_at", "account", "object_id", "object_name", "code_kind", "code", "qualifier",
              "zone", "zone_name", "description", "receiver", "protocol", "peer", "encrypted")

AUDIT_CSV = ("id", "at", "actor", "action", "entity", "entity_id", "detail")


async def alarms(conn: Conn, f: AlarmFilter, *, before: int | None = None, limit: int = 200,
                 lang: str = "en") -> Page:
    where = ["($1::bigint IS NULL OR al.id < $1)"]
    args: list[Any] = [before]

    def add(sql: str, value: Any) -> None:
        args.append(value)
        where.append(sql.replace("?", f"${len(args)}"))

    if f.object_id is not None:
        add("al.object_id = ?", f.object_id)
    if f.account:
        add("al.account = ?", f.account.upper())
    if f.klass:
        add("al.klass = ?", f.klass)
    if f.outcome:
        add("al.outcome = ?", f.outcome)
    if f.since is not None:
        add("al.opened_at >= ?", f.since)
    if f.until is not None:
        add("al.opened_at < ?", f.until)
    if f.state == "open":
        where.append("al.state <> 'closed'")
    elif f.state:
        add("al.state = ?", f.state)
    if f.operator:
        add("EXISTS (SELECT 1 FROM alarm_events e JOIN users ou ON ou.id = e.user_id"
            " WHERE e.alarm_id = al.id AND ou.username = ?)", f.operator)
    args.append(limit + 1)
    rows = await conn.fetch(
        "SELECT al.id, al.opened_at, al.priority, al.object_id, o.name AS object_name, al.account, al.kind,"
        " al.klass, al.title, al.state, al.outcome, al.signal_count, al.acknowledged_at, au.username AS acknowledged_by,"
        " al.closed_at, cu.username AS closed_by, hu.username AS handled_by,"
        " extract(epoch FROM al.acknowledged_at - al.opened_at)::float8 AS seconds_to_ack,"
        " extract(epoch FROM al.closed_at - al.opened_at)::float8 AS seconds_to_close"
        " FROM alarms al LEFT JOIN guarded_objects o ON o.id = al.object_id"
        " LEFT JOIN users au ON au.id = al.acknowledged_by LEFT JOIN users cu ON cu.id = al.closed_by"
        " LEFT JOIN users hu ON hu.id = al.handled_by"
        f" WHERE {' AND '.join(where)} ORDER BY al.id DESC LIMIT ${len(args)}", *args)
    out = []
    for r in rows[:limit]:
        d = dict(r)
        title = d["title"] or {}
        d["title_text"] = title.get(lang) or title.get("ru") or title.get("en") or d["klass"]
        out.append(d)
    return Page(out, out[-1]["id"] if len(rows) > limit else None)


@dataclass(slots=True)
class SignalFilter:
    object_id: int | None = None
    account: str | None = None
    code: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def signals(conn: Conn, f: SignalFilter, *, before: int | None = None, limit: int = 100,
                  lang: str = "en") -> Page:
    where = ["($1::bigint IS NULL OR s.id < $1)"]
    args: list[Any] = [before]

    def add(sql: str, value: Any) -> None:
        args.append(value)
        where.append(sql.replace("?", f"${len(args)}"))

    if f.object_id is not None:
        add("a.object_id = ?", f.object_id)
    if f.account:
        add("s.account = ?", f.account.upper())
    if f.code:
        add("s.code = ?", f.code.upper())
    if f.since is not None:
        add("s.received_at >= ?", f.since)
    if f.until is not None:
        add("s.received_at < ?", f.until)
    args.append(limit + 1)
    rows = await conn.fetch(
        "SELECT s.id, s.received_at, s.receiver, s.peer, s.protocol, s.account, s.receiver_no, s.line_no,"
        " s.sequence, s.code_kind, s.code, s.qualifier, s.zone, s.partition, s.user_no, s.text,"
        " s.transmitter_time, s.encrypted, a.object_id, o.name AS object_name, z.name AS zone_name"
        " FROM signals s " + SIGNAL_ACCOUNT_JOIN +
        " LEFT JOIN guarded_objects o ON o.id = a.object_id"
        " LEFT JOIN zones z ON z.account_id = a.id AND z.number = s.zone"
        f" WHERE {' AND '.join(where)} ORDER BY s.id DESC LIMIT ${len(args)}", *args)
    out = []
    for r in rows[:limit]:
        d = dict(r)
        d["description"] = {lg: _describe(d["code_kind"], d["code"], d["qualifier"], lg) for lg in ("kk", "ru", "en")}
        d["description_text"] = d["description"].get(lang, d["description"]["en"])
        out.append(d)
    return Page(out, out[-1]["id"] if len(rows) > limit else None)


def _describe(kind: str, code: str, qualifier: str, lang: str) -> str:
    try:
        return eventcodes.describe(kind, code, qualifier, lang)
    except Exception:  # a code the catalogue does not know: show it raw
        return f"{code}{'/' + qualifier if qualifier else ''}"


@dataclass(slots=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None  # a prefix: "alarm." finds every alarm action
    entity: str | None = None
    entity_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def audit_entries(conn: Conn, f: AuditFilter, *, before: int | None = None, limit: int = 200) -> Page:
    where = ["($1::bigint IS NULL OR id < $1)"]
    args: list[Any] = [before]

    def add(sql: str, value: Any) -> None:
        args.append(value)
        where.append(sql.replace("?", f"${len(args)}"))

    if f.actor:
        add("actor = ?", f.actor)
    if f.action:
        add("starts_with(action, ?)", f.action)
    if f.entity:
        add("entity = ?", f.entity)
    if f.entity_id:
        add("entity_id = ?", f.entity_id)
    if f.since is not None:
        add("at >= ?", f.since)
    if f.until is not None:
        add("at < ?", f.until)
    args.append(limit + 1)
    rows = await conn.fetch(
        "SELECT id, at, actor, action, entity, entity_id, detail FROM audit_log"
        f" WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ${len(args)}", *args)
    out = [dict(r) for r in rows[:limit]]
    return Page(out, out[-1]["id"] if len(rows) > limit else None)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)
    text = str(v)
    if isinstance(v, str) and text[:1] in ("=", "+", "@", "\t", "\r"):
        return "'" + text  # a spreadsheet would run it as a formula
    return text


def csv_text(rows: list[dict[str, Any]], columns: tuple[str, ...], rename: dict[str, str] | None = None) -> str:
    """CSV with a header row (`columns`); `rename` maps a column to the row key it is read from."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get((rename or {}).get(c, c))) for c in columns])
    return out.getvalue()
