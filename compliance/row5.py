"""Chapter 3 row 5: at least two mobile (rapid response) groups answering alarms from the objects.

Documents: the orders forming the groups and assigning staff to them, and the registration
certificates of vehicles held in ownership. Live evidence from dispatch's records: each group formed
by order has its own vehicle, at least two groups were actually on duty through the period, and
every alarm that needed a response was answered, with the times recorded.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from compliance import document
from compliance.result import Ctx, Row, t
from compliance.row3 import _bounds

# The order: "at least two mobile groups (rapid response groups)".
MIN_GROUPS = 2


async def groups_and_vehicles(ctx: Ctx) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    groups = [r["g"] for r in await ctx.conn.fetch("SELECT to_jsonb(g) AS g FROM response_groups g ORDER BY id")
              if r["g"].get("active", True)]
    # to_jsonb: dispatch adds columns (ownership, active) over time; read them when they are there
    vehicles = [r["v"] for r in await ctx.conn.fetch("SELECT to_jsonb(v) AS v FROM vehicles v ORDER BY id")]
    return groups, vehicles


def _owned(ctx: Ctx, d: dict[str, Any], v: dict[str, Any]) -> bool:
    """The certificate shows the vehicle held in ownership (by the organization, when its BIN is set)."""
    if v.get("ownership", "owned") != "owned" or v.get("active") is False:
        return False
    bin_ = ctx.settings.organization_bin.strip()
    if d["detail"].get("ownership", "own") != "own":
        return False
    return not (bin_ and d["holder_bin"] and d["holder_bin"].strip() != bin_)


async def check(ctx: Ctx, row: Row) -> None:
    groups, vehicles = await groups_and_vehicles(ctx)
    orders = ctx.of_kind("group_formation_order")
    assign = ctx.of_kind("staff_assignment_order")
    certs = ctx.of_kind("vehicle_registration")
    for d in orders + assign + certs:
        row.doc(d)
    formed: list[dict[str, Any]] = []
    table = []
    for g in groups:
        order = [d for d in orders if d["group_id"] == g["id"] and document.valid_on(d, ctx.as_of)]
        staff = [d for d in assign if d["group_id"] == g["id"] and document.valid_on(d, ctx.as_of)]
        own = [v for v in vehicles if v["group_id"] == g["id"]
               and any(d["vehicle_id"] == v["id"] and _owned(ctx, d, v) and document.valid_on(d, ctx.as_of)
                       for d in certs)]
        pending = [d for d in order + staff if d["review_status"] != "accepted"] + [
            d for d in certs if d["review_status"] != "accepted" and any(d["vehicle_id"] == v["id"] for v in own)]
        table.append({"group": g["name"], "formation_order": [d["number"] for d in order],
                      "assignment_order": [d["number"] for d in staff], "owned_vehicles": [v["plate"] for v in own]})
        name = g["name"]
        if not order:
            continue
        formed.append(g)
        if not staff:
            row.add("not-met", t(f"«{name}» тобына қызметкерлерді бекіту туралы бұйрық жоқ.",
                                 f"Для группы «{name}» нет приказа о закреплении сотрудников.",
                                 f"Group '{name}' has no order assigning its staff."))
        if not own:
            row.add("not-met", t(f"«{name}» тобының меншіктегі, тіркеу куәлігі бар көлігі жоқ.",
                                 f"У группы «{name}» нет собственного автомобиля со свидетельством о регистрации.",
                                 f"Group '{name}' has no vehicle held in ownership with a registration certificate."))
        if pending:
            row.add("warning", t(f"«{name}» тобының құжаттары әлі тексерілмеген.",
                                 f"Документы группы «{name}» ещё не проверены.",
                                 f"Group '{name}': documents not reviewed yet."))
        for d in order + staff:
            if d["valid_until"] is not None and d["valid_until"] <= ctx.as_of + dt.timedelta(
                    days=ctx.settings.expiry_warn_days):
                row.add("warning", t(f"«{name}»: {d['label']['kk']} {d['valid_until']} аяқталады.",
                                     f"«{name}»: {d['label']['ru']} истекает {d['valid_until']}.",
                                     f"'{name}': {d['label']['en']} expires on {d['valid_until']}."))
    row.table(t("Топтар, бұйрықтар және көліктер", "Группы, приказы и автомобили", "Groups, orders and vehicles"), table)
    row.figure(t("Бұйрықпен құрылған топтар", "Групп, сформированных приказом", "Groups formed by order"), len(formed))
    if len(formed) < MIN_GROUPS:
        row.add("not-met", t(f"Бұйрықпен құрылған топтар саны {len(formed)}, кемінде {MIN_GROUPS} қажет.",
                             f"Приказом сформировано групп: {len(formed)}, нужно не менее {MIN_GROUPS}.",
                             f"{len(formed)} group(s) formed by order; at least {MIN_GROUPS} are required."))
    else:
        row.add("met", t(f"Бұйрықпен {len(formed)} топ құрылған.", f"Приказами сформировано групп: {len(formed)}.",
                         f"{len(formed)} groups are formed by order."))
    await duty(ctx, row, formed)
    await responses(ctx, row)


async def duty(ctx: Ctx, row: Row, formed: list[dict[str, Any]]) -> None:
    """At least two groups actually on duty through the period, from dispatch's shift records."""
    coverage = await duty_coverage(ctx)
    if coverage is None:
        row.add("insufficient-evidence", t("Топтардың кезекшілік есебі (ауысымдар) жүргізілмейді.",
                                           "Учёт дежурств групп (смен) не ведётся.",
                                           "The groups' duty (shift) records are not available."))
        return
    pct, gaps = coverage
    row.figure(t("Кемінде екі топ кезекшілікте болған уақыт, %", "Время с двумя и более группами на дежурстве, %",
                 "Time with at least two groups on duty, %"), round(pct, 2),
               detail={"gaps": gaps[:50]})
    need = ctx.settings.duty_coverage_min_pct
    if pct < need:
        row.add("not-met", t(f"Кемінде екі топ кезеңнің тек {pct:.1f}% кезекшілікте болды (қажет {need}%).",
                             f"Две группы и более дежурили только {pct:.1f}% периода (нужно {need}%).",
                             f"At least two groups were on duty only {pct:.1f}% of the period ({need}% required)."))
    else:
        row.add("met", t(f"Кемінде екі топ кезеңнің {pct:.1f}% кезекшілікте болды.",
                         f"Две группы и более дежурили {pct:.1f}% периода.",
                         f"At least two groups were on duty {pct:.1f}% of the period."))


async def duty_coverage(ctx: Ctx) -> tuple[float, list[dict[str, Any]]] | None:
    """(share of the period with >= MIN_GROUPS groups on duty, the gaps), or None without shift records."""
    if not await ctx.conn.fetchval("SELECT to_regclass('public.duty_shifts') IS NOT NULL"):
        return None
    start, end = _bounds(ctx)
    end = min(end, ctx.now)
    if end <= start:
        return 100.0, []
    rows = await ctx.conn.fetch(
        "SELECT group_id, greatest(starts_at, $1) AS a, least(ends_at, $2) AS b FROM duty_shifts"
        " WHERE cancelled_at IS NULL AND starts_at < $2 AND ends_at > $1", start, end)
    return sweep([(r["group_id"], r["a"], r["b"]) for r in rows], start, end)


def sweep(spans: list[tuple[int, dt.datetime, dt.datetime]], start: dt.datetime,
          end: dt.datetime) -> tuple[float, list[dict[str, Any]]]:
    """Share of [start, end) during which at least MIN_GROUPS distinct groups are on duty, and the gaps."""
    points: list[tuple[dt.datetime, int, int]] = []
    for g, a, b in spans:
        if b > a:
            points += [(a, 1, g), (b, -1, g)]
    points.sort(key=lambda p: (p[0], p[1]))
    on: dict[int, int] = {}
    covered = dt.timedelta()
    gaps: list[dict[str, Any]] = []
    cursor = start
    for at, delta, g in points + [(end, 0, -1)]:
        groups_on = sum(1 for n in on.values() if n > 0)
        if at > cursor:
            if groups_on >= MIN_GROUPS:
                covered += at - cursor
            elif gaps and gaps[-1]["to"] == cursor:
                gaps[-1]["to"] = at
            else:
                gaps.append({"from": cursor, "to": at, "groups_on_duty": groups_on})
            cursor = at
        if delta:
            on[g] = on.get(g, 0) + delta
    total = (end - start).total_seconds()
    return (100.0 * covered.total_seconds() / total if total else 100.0), gaps


async def responses(ctx: Ctx, row: Row) -> None:
    rows = await response_rows(ctx)
    overdue = dt.timedelta(minutes=ctx.settings.ack_overdue_minutes)
    unanswered = [r for r in rows if r["acknowledged_at"] is None and ctx.now - r["opened_at"] > overdue]
    acks = [r["ack_seconds"] for r in rows if r["ack_seconds"] is not None]
    arrivals = [r["arrival_seconds"] for r in rows if r["arrival_seconds"] is not None]
    row.figure(t("Жауап қажет дабылдар", "Тревог, требовавших реагирования", "Alarms needing a response"), len(rows),
               detail={"priority_max": ctx.settings.response_priority_max})
    if acks:
        row.figure(t("Қабылдау уақыты, с (медиана / 90% / макс.)", "Время принятия, с (медиана / 90% / макс.)",
                     "Time to acknowledge, s (median / 90% / max)"),
                   f"{statistics.median(acks):.0f} / {_p90(acks):.0f} / {max(acks):.0f}")
    if arrivals:
        row.figure(t("Топтың келу уақыты, с (медиана / 90% / макс.)", "Время прибытия группы, с (медиана / 90% / макс.)",
                     "Time for the group to arrive, s (median / 90% / max)"),
                   f"{statistics.median(arrivals):.0f} / {_p90(arrivals):.0f} / {max(arrivals):.0f}")
    if unanswered:
        row.table(t("Жауапсыз дабылдар", "Тревоги без реагирования", "Alarms left unanswered"),
                  [{"alarm_id": r["alarm_id"], "opened_at": r["opened_at"], "object": r["object"],
                    "title": r["title"]} for r in unanswered[:100]])
        row.add("not-met", t(f"{len(unanswered)} дабылға жауап берілмеген.",
                             f"{len(unanswered)} тревог осталось без реагирования.",
                             f"{len(unanswered)} alarm(s) needing a response were not answered."))
    elif rows:
        row.add("met", t(f"Жауап қажет {len(rows)} дабылдың бәріне жауап берілген, уақыттары тіркелген.",
                         f"На все {len(rows)} тревог, требовавших реагирования, отреагировали; время записано.",
                         f"All {len(rows)} alarms needing a response were answered, with their times recorded."))
    else:
        row.add("met", t("Кезеңде жауап қажет дабыл болмаған.", "За период тревог, требующих реагирования, не было.",
                         "No alarm needed a response in the period."))


def _p90(values: list[float]) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))]


async def response_rows(ctx: Ctx) -> list[dict[str, Any]]:
    """Every alarm of the period that needed a response, with its times (seconds from opening)."""
    start, end = _bounds(ctx)
    if await ctx.conn.fetchval("SELECT to_regclass('public.assignments') IS NOT NULL"):
        times = ("(SELECT min(a.dispatched_at) FROM assignments a WHERE a.alarm_id = al.id) AS dispatched_at,"
                 " (SELECT min(a.on_site_at) FROM assignments a WHERE a.alarm_id = al.id) AS arrived_at")
    else:
        times = "NULL::timestamptz AS dispatched_at, NULL::timestamptz AS arrived_at"
    rows = await ctx.conn.fetch(
        "SELECT al.id, al.opened_at, al.acknowledged_at, al.closed_at, al.state, al.priority, al.title, al.outcome,"
        f" o.name AS object, {times}"
        " FROM alarms al LEFT JOIN guarded_objects o ON o.id = al.object_id"
        " WHERE al.kind = 'signal' AND al.priority <= $3 AND al.opened_at >= $1 AND al.opened_at < $2"
        " ORDER BY al.opened_at", start, end, ctx.settings.response_priority_max)

    def secs(a: dt.datetime | None, b: dt.datetime | None) -> float | None:
        return None if a is None or b is None else (a - b).total_seconds()

    return [{"alarm_id": r["id"], "opened_at": r["opened_at"], "object": r["object"], "priority": r["priority"],
             "title": r["title"], "state": r["state"], "acknowledged_at": r["acknowledged_at"],
             "dispatched_at": r["dispatched_at"], "arrived_at": r["arrived_at"], "closed_at": r["closed_at"],
             "outcome": r["outcome"], "ack_seconds": secs(r["acknowledged_at"], r["opened_at"]),
             "arrival_seconds": secs(r["arrived_at"], r["opened_at"])} for r in rows]


async def on_duty_eligibility(ctx: Ctx, row: Row) -> None:
    """Staff who served a duty shift in the period while the person linked to them was not eligible
    on that day (dispatch refuses such shifts now; this catches older ones and lapsed evidence)."""
    if not await ctx.conn.fetchval("SELECT to_regclass('public.duty_shift_staff') IS NOT NULL"):
        return
    from compliance import personnel

    start, end = _bounds(ctx)
    rows = await ctx.conn.fetch(
        "SELECT DISTINCT p.id AS person_id, p.full_name, (d.starts_at AT TIME ZONE $3)::date AS day"
        " FROM duty_shifts d JOIN duty_shift_staff ss ON ss.shift_id = d.id"
        " JOIN compliance_personnel p ON p.staff_id = ss.staff_id"
        " WHERE d.cancelled_at IS NULL AND d.starts_at < $2 AND d.ends_at > $1 ORDER BY 3",
        start, end, ctx.settings.timezone)
    unlinked = await ctx.conn.fetch(
        "SELECT DISTINCT s.id, s.full_name FROM duty_shifts d JOIN duty_shift_staff ss ON ss.shift_id = d.id"
        " JOIN staff s ON s.id = ss.staff_id LEFT JOIN compliance_personnel p ON p.staff_id = s.id"
        " WHERE d.cancelled_at IS NULL AND d.starts_at < $2 AND d.ends_at > $1 AND p.id IS NULL ORDER BY s.full_name",
        start, end)
    if unlinked:
        names = ", ".join(r["full_name"] for r in unlinked)
        row.table(t("Жеке іс қағазы жоқ кезекшілер", "Дежурившие без личного дела", "On duty without a personnel record"),
                  [{"staff_id": r["id"], "full_name": r["full_name"]} for r in unlinked])
        row.add("not-met" if ctx.settings.shift_requires_personnel else "warning",
                t(f"Кезекшілікте болған, бірақ жеке іс қағазы жоқ: {names}.",
                  f"Дежурили без личного дела (соответствие не подтверждено): {names}.",
                  f"On duty without a personnel record (eligibility not proven): {names}."))
    bad = []
    for r in rows:
        e = await personnel.eligibility(ctx.conn, r["person_id"], as_of=r["day"], settings=ctx.settings)
        if not e["eligible"]:
            bad.append({"person_id": r["person_id"], "full_name": r["full_name"], "day": r["day"],
                        "problems": [p["text"] for p in e["problems"]]})
    if bad:
        row.table(t("Талапқа сай емес кезде кезекшілікке шыққандар", "Дежурили, не соответствуя требованиям",
                    "On duty while not eligible"), bad[:100])
        names = ", ".join(sorted({b["full_name"] for b in bad}))
        row.add("not-met", t(f"Талаптарға сай емес қызметкерлер кезекшілікте болған: {names}.",
                             f"На дежурстве были сотрудники, не соответствующие требованиям: {names}.",
                             f"Staff served duty shifts while not eligible: {names}."))
