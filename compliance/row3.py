"""Chapter 3 row 3: the centralized monitoring console and the own server.

Documents: the staffing table; the technical documentation (inventory numbers, waybills, receipts) of
(1) the computers and software receiving the control panels' signals and (2) the own server.
Live evidence beside them: signals really received from control panels over the period, panels under
supervision answering in time, the data stored on this server, access per user and role, the audit
chain intact, and a recent backup that was restored and checked.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from compliance.result import Ctx, Row, require_documents, t
from console import audit


async def check(ctx: Ctx, row: Row) -> None:
    require_documents(ctx, row, ctx.of_kind("staffing_table"),
                      t("Штаттық кесте", "Штатное расписание", "Staffing table"))
    require_documents(ctx, row, ctx.of_kind("console_equipment"),
                      t("Сигнал қабылдайтын жабдық пен бағдарламаның құжаттамасы",
                        "Документация оборудования и ПО приёма сигналов",
                        "Documentation of the signal-receiving equipment and software"))
    require_documents(ctx, row, ctx.of_kind("server_equipment"),
                      t("Меншікті сервердің құжаттамасы", "Документация собственного сервера",
                        "Documentation of the own server"))
    for d in ctx.of_kind("console_equipment", "server_equipment"):
        row.figure(t("Инвентарлық нөмір", "Инвентарный номер", "Inventory number"),
                   d["detail"].get("inventory_number", ""), detail={"document_id": d["id"], "kind": d["kind"]})
    await signals(ctx, row)
    await supervision(ctx, row)
    await server_data(ctx, row)
    await access(ctx, row)
    await audit_chain(ctx, row)
    await backups(ctx, row)


def _bounds(ctx: Ctx) -> tuple[dt.datetime, dt.datetime]:
    """The period as instants: from the start of period_from to the end of period_to, post time."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(ctx.settings.timezone)
    start = dt.datetime.combine(ctx.period_from, dt.time(), tz)
    end = dt.datetime.combine(ctx.period_to + dt.timedelta(days=1), dt.time(), tz)
    return start, end


async def signals(ctx: Ctx, row: Row) -> None:
    start, end = _bounds(ctx)
    per_day = await ctx.conn.fetch(
        "SELECT (received_at AT TIME ZONE $3)::date AS day, count(*) AS signals, count(DISTINCT account) AS panels"
        " FROM signals WHERE received_at >= $1 AND received_at < $2 GROUP BY 1 ORDER BY 1",
        start, end, ctx.settings.timezone)
    total = sum(r["signals"] for r in per_day)
    panels = await ctx.conn.fetchval(
        "SELECT count(DISTINCT account) FROM signals WHERE received_at >= $1 AND received_at < $2", start, end)
    row.figure(t("Кезеңде қабылданған сигналдар", "Сигналов принято за период", "Signals received in the period"),
               total)
    row.figure(t("Сигнал жіберген аспаптар", "Приборов, приславших сигналы", "Control panels that reported"), panels)
    row.table(t("Күн сайынғы сигналдар", "Сигналы по дням", "Signals per day"),
              [{"day": r["day"], "signals": r["signals"], "panels": r["panels"]} for r in per_day])
    if total == 0:
        row.add("not-met", t("Кезеңде қабылдау-бақылау аспаптарынан бірде-бір сигнал қабылданбаған.",
                             "За период не принято ни одного сигнала от приёмно-контрольных приборов.",
                             "No signal was received from any control panel in the period."))
        return
    today = dt.datetime.now(start.tzinfo).date()
    days = {r["day"] for r in per_day}
    silent = []
    day = ctx.period_from
    while day <= min(ctx.period_to, today):
        if day not in days:
            silent.append(day)
        day += dt.timedelta(days=1)
    if silent:
        listed = ", ".join(str(d) for d in silent[:10]) + (" …" if len(silent) > 10 else "")
        row.add("warning", t(f"{len(silent)} күні сигнал болмаған: {listed}.",
                             f"{len(silent)} дн. без сигналов: {listed}.",
                             f"{len(silent)} day(s) without any signal: {listed}."))
    else:
        row.add("met", t(f"Кезеңнің әр күні сигналдар қабылданды ({total}, {panels} аспаптан).",
                         f"Сигналы принимались каждый день периода ({total} от {panels} приборов).",
                         f"Signals were received every day of the period ({total} from {panels} panels)."))


async def supervision(ctx: Ctx, row: Row) -> None:
    rows = await ctx.conn.fetch(
        "SELECT a.number, a.supervision_interval, a.last_seen_at, a.created_at, o.name AS object FROM accounts a"
        " LEFT JOIN guarded_objects o ON o.id = a.object_id WHERE a.supervision_interval IS NOT NULL ORDER BY a.number")
    total = await ctx.conn.fetchval("SELECT count(*) FROM accounts")
    row.figure(t("Бақылаудағы аспаптар", "Приборов под контролем связи", "Panels under supervision"),
               f"{len(rows)} / {total}")
    if not rows:
        if total:
            row.add("warning", t("Бірде-бір аспаптың байланысы бақыланбайды (тест хабарламаларының аралығы берілмеген).",
                                 "Ни у одного прибора не контролируется связь (не задан интервал тестов).",
                                 "No panel is supervised (no test-report interval is set)."))
        return
    if ctx.period_to < ctx.now.date() - dt.timedelta(days=1):
        return  # a past period: supervision is a present-tense fact, the signals above cover the past
    grace = ctx.settings.supervision_grace
    # a panel that never reported counts from when it was put under supervision
    overdue = [r for r in rows
               if (ctx.now - (r["last_seen_at"] or r["created_at"])).total_seconds() > r["supervision_interval"] * grace]
    if overdue:
        row.table(t("Уақытында хабар бермеген аспаптар", "Приборы, не вышедшие на связь вовремя",
                    "Panels overdue for their test report"),
                  [{"account": r["number"], "object": r["object"], "last_seen_at": r["last_seen_at"],
                    "interval_s": r["supervision_interval"]} for r in overdue[:100]])
        listed = ", ".join(r["number"] for r in overdue[:10]) + (" …" if len(overdue) > 10 else "")
        row.add("warning", t(f"{len(overdue)} аспап уақытында хабар бермеді: {listed}.",
                             f"{len(overdue)} приборов не вышли на связь вовремя: {listed}.",
                             f"{len(overdue)} supervised panel(s) are overdue: {listed}."))
    else:
        row.add("met", t(f"Бақылаудағы {len(rows)} аспаптың бәрі уақытында хабар береді.",
                         f"Все {len(rows)} контролируемых приборов выходят на связь вовремя.",
                         f"All {len(rows)} supervised panels report on time."))


async def server_data(ctx: Ctx, row: Row) -> None:
    r = await ctx.conn.fetchrow(
        "SELECT current_database() AS database, version() AS version, pg_database_size(current_database()) AS bytes,"
        " inet_server_addr()::text AS address, (SELECT count(*) FROM guarded_objects) AS objects,"
        " (SELECT count(*) FROM accounts) AS accounts, (SELECT count(*) FROM signals) AS signals,"
        " (SELECT count(*) FROM alarms) AS alarms, (SELECT min(received_at) FROM signals) AS since")
    row.figure(t("Осы серверде сақталған деректер", "Данные, хранящиеся на этом сервере", "Data stored on this server"),
               f"{r['objects']} / {r['accounts']} / {r['signals']} / {r['alarms']}",
               detail={"database": r["database"], "server": r["version"].split(",")[0],
                       "address": r["address"] or "local socket", "size_bytes": r["bytes"], "objects": r["objects"],
                       "accounts": r["accounts"], "signals": r["signals"], "alarms": r["alarms"],
                       "since": r["since"]})


async def access(ctx: Ctx, row: Row) -> None:
    rows = await ctx.conn.fetch(
        "SELECT role, count(*) FILTER (WHERE active) AS active, count(*) FILTER (WHERE NOT active) AS disabled,"
        " array_agg(username ORDER BY username) FILTER (WHERE active) AS users FROM users GROUP BY role ORDER BY role")
    table: list[dict[str, Any]] = [{"role": r["role"], "active": r["active"], "disabled": r["disabled"],
                                    "users": list(r["users"] or [])} for r in rows]
    row.table(t("Рөлдер бойынша қолжетімділік", "Доступ по ролям", "Access per role"), table,
              detail={"roles": {"admin": "all", "operator": "alarms", "crew": "own assignments",
                                "auditor": "read-only"}})
    if not any(r["role"] == "admin" and r["active"] for r in rows):
        row.add("warning", t("Белсенді әкімші жоқ.", "Нет активного администратора.", "No active administrator."))
    else:
        n = sum(r["active"] for r in rows)
        row.add("met", t(f"Әр пайдаланушының өз есептік жазбасы мен рөлі бар ({n} белсенді).",
                         f"У каждого пользователя своя учётная запись и роль ({n} активных).",
                         f"Every user has a personal account and a role ({n} active)."))


async def audit_chain(ctx: Ctx, row: Row) -> None:
    """Every hash link, and the anchors kept outside the database (`$KUZET_HOME/audit-anchors.jsonl`:
    written at stops, backups and exports), which show a deleted tail or a recomputed chain."""
    anchors: list[audit.Anchor] = []
    if ctx.settings.home:
        path = Path(ctx.settings.home) / audit.ANCHORS_FILE
        if path.exists():
            try:
                anchors = audit.read_anchors(path)
            except (OSError, ValueError, KeyError, TypeError):
                row.add("warning", t("Аудит якорьларының файлы оқылмайды.", "Файл якорей аудита не читается.",
                                     "The audit anchors file cannot be read."))
    v = await audit.verify(ctx.conn, anchors)
    row.figure(t("Аудит журналының тізбегі", "Цепочка журнала аудита", "Audit log chain"),
               "ok" if v.ok else "broken", detail={"entries": v.entries, "first_bad_id": v.first_bad_id,
                                                   "reason": v.reason, "anchors_checked": v.anchors_checked,
                                                   "problems": v.problems[:20]})
    if v.ok:
        row.add("met", t(f"Аудит журналы бүтін: {v.entries} жазбаның хэш-тізбегі және {v.anchors_checked} якорь тексерілді.",
                         f"Журнал аудита цел: проверены хэш-цепочка из {v.entries} записей и {v.anchors_checked} якорей.",
                         f"The audit log is intact: the hash chain of {v.entries} entries and {v.anchors_checked}"
                         " anchors verify."))
    else:
        where = f"{v.first_bad_id}" if v.first_bad_id else "—"
        row.add("not-met", t(f"Аудит журналы бұзылған: {where} жазбасынан бастап ({v.reason}).",
                             f"Журнал аудита нарушен начиная с записи {where} ({v.reason}).",
                             f"The audit log is broken from entry {where} ({v.reason})."))


async def backups(ctx: Ctx, row: Row) -> None:
    last = await ctx.conn.fetchrow("SELECT * FROM compliance_backups WHERE verified ORDER BY finished_at DESC LIMIT 1")
    latest = await ctx.conn.fetchrow("SELECT * FROM compliance_backups ORDER BY finished_at DESC LIMIT 1")
    if last is None:
        row.add("not-met", t("Қалпына келтіру тексерілген сақтық көшірме жоқ.",
                             "Нет резервной копии с проверенным восстановлением.",
                             "There is no backup whose restore was verified."))
        return
    age_h = (ctx.now - last["finished_at"]).total_seconds() / 3600
    row.figure(t("Соңғы тексерілген сақтық көшірме", "Последняя проверенная резервная копия",
                 "Last verified backup"), last["finished_at"],
               detail={"size": last["size"], "sha256": last["sha256"], "audit_entries": last["audit_entries"],
                       "verified_at": last["verified_at"], "age_hours": round(age_h, 1)})
    limit = ctx.settings.backup_max_age_hours
    if age_h > limit:
        row.add("warning", t(f"Соңғы тексерілген сақтық көшірме {age_h:.0f} сағат бұрын жасалған (шек {limit} сағ).",
                             f"Последняя проверенная резервная копия сделана {age_h:.0f} ч назад (предел {limit} ч).",
                             f"The last verified backup is {age_h:.0f} h old (limit {limit} h)."))
    else:
        row.add("met", t(f"Сақтық көшірме {last['finished_at']:%Y-%m-%d %H:%M} UTC жасалып, бөлек дерекқорға қалпына келтіріліп тексерілді.",
                         f"Резервная копия от {last['finished_at']:%Y-%m-%d %H:%M} UTC восстановлена в отдельную базу и проверена.",
                         f"The backup of {last['finished_at']:%Y-%m-%d %H:%M} UTC was restored into a scratch database and checked."))
    if latest is not None and not latest["verified"] and latest["id"] != last["id"]:
        row.add("warning", t("Ең соңғы сақтық көшірме тексеруден өтпеді.", "Последняя резервная копия не прошла проверку.",
                             "The most recent backup failed its verification."))
