"""The checks: does the post meet the qualification requirements over a period, and on what evidence.

One `CheckResult` per requirement row: "3.1".."3.6" are chapter 3's rows (licence and experience,
premises, console and server, radio, mobile groups, weapons); "1" and "2" are chapters 1 and 2 (heads
and guards may hold their positions); "4" appears for a national company (chapter 4: the same rows
apply). Each result has a status, the evidence it rests on (registered documents, figures from the
live data, tables) and a plain-language explanation in kk/ru/en.

Status of a row = the worst of its findings: not-met > insufficient-evidence > warning > met.
Documents count when they are registered and not withdrawn or rejected; one still waiting for its
review makes the row a warning; one valid only for part of the period, or expiring within
`expiry_warn_days`, too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from compliance import document, personnel, row3, row5
from compliance.result import (  # noqa: F401  (re-exported: the contract names them here)
    STATUSES,
    TITLES,
    CheckResult,
    Ctx,
    Evidence,
    Row,
    Text,
    doc_evidence,
    holder_check,
    require_documents,
    t,
    worst,
)
from compliance.settings import ComplianceSettings
from console import audit

TITLES.update({
    "1": {"kk": "1-тарау: басшылар лауазымға сай", "ru": "Глава 1: руководители соответствуют требованиям",
          "en": "Chapter 1: heads meet the requirements"},
    "2": {"kk": "2-тарау: күзетшілер лауазымға сай", "ru": "Глава 2: охранники соответствуют требованиям",
          "en": "Chapter 2: guards meet the requirements"},
    "3.1": {"kk": "Күзет қызметтерін көрсетудегі кемінде бір жылдық жұмыс тәжірибесі (лицензия)",
            "ru": "Опыт оказания охранных услуг не менее одного года (лицензия)",
            "en": "At least one year of experience in security services (licence)"},
    "3.2": {"kk": "Орталықтандырылған күзет пунктіне арналған меншікті немесе жалға алынған кеңсе үй-жайы",
            "ru": "Офисное помещение в собственности или аренде для пункта централизованной охраны",
            "en": "Office premises, owned or leased, for the centralized security post"},
    "3.3": {"kk": "Орталықтандырылған бақылау пульті және меншікті сервер",
            "ru": "Пульт централизованного наблюдения и собственный сервер",
            "en": "Centralized monitoring console and own server"},
    "3.4": {"kk": "Радиобайланыс", "ru": "Радиосвязь", "en": "Radio communication"},
    "3.5": {"kk": "Кемінде екі мобильді топ (жедел ден қою топтары)",
            "ru": "Не менее двух мобильных групп (групп оперативного реагирования)",
            "en": "At least two mobile (rapid response) groups"},
    "3.6": {"kk": "Қызметтік қару", "ru": "Служебное оружие", "en": "Service weapons"},
    "4": {"kk": "4-тарау: ұлттық компанияның күзет ұйымы (1-3-тараулар)",
          "ru": "Глава 4: охранная организация национальной компании (главы 1-3)",
          "en": "Chapter 4: a national company's security organization (chapters 1-3)"},
})


# --- chapter 3 rows whose proof is documents --------------------------------------------------

async def row_licence(ctx: Ctx) -> CheckResult:
    row = Row("3.1")
    what = t("Күзет қызметіне лицензия", "Лицензия на охранную деятельность", "Security licence")
    licences = ctx.of_kind("security_licence")
    valid = require_documents(ctx, row, licences, what, check=holder_check(ctx, what))
    issued = [d["issued_on"] for d in licences if d["issued_on"] is not None]
    if valid and issued:
        first = min(issued)
        days = (ctx.as_of - first).days
        need = ctx.settings.experience_days
        row.figure(t("Лицензия бойынша тәжірибе, күн", "Опыт по лицензии, дней", "Experience by the licence, days"),
                   days, detail={"since": first, "required_days": need})
        if days < need:
            reached = first + dt.timedelta(days=need)
            row.add("not-met", t(f"Тәжірибе {days} күн, кемінде {need} күн қажет ({reached} бастап орындалады).",
                                 f"Опыт {days} дн., нужно не менее {need} дн. (будет выполнено с {reached}).",
                                 f"Experience is {days} days; at least {need} are required (met from {reached})."))
        else:
            row.add("met", t(f"Лицензия {first} берілген: тәжірибе {days} күн.",
                             f"Лицензия выдана {first}: опыт {days} дн.",
                             f"The licence was issued on {first}: {days} days of experience."))
    elif valid:
        row.add("insufficient-evidence", t("Лицензияның берілген күні көрсетілмеген.",
                                           "Не указана дата выдачи лицензии.", "The licence's issue date is missing."))
    first_signal = await ctx.conn.fetchval("SELECT min(received_at) FROM signals")
    if first_signal is not None:
        row.figure(t("Алғашқы қабылданған сигнал", "Первый принятый сигнал", "First signal received"), first_signal)
    return row.result(ctx)


async def row_premises(ctx: Ctx) -> CheckResult:
    row = Row("3.2")
    what = t("ОКП үй-жайына құқық", "Право на помещение ПЦО", "Title to the post's premises")
    docs = ctx.of_kind("premises_ownership", "premises_lease")
    valid = require_documents(ctx, row, docs, what, check=holder_check(ctx, what))
    for d in valid:
        row.figure(t("Үй-жай мекенжайы", "Адрес помещения", "Premises address"), d["detail"].get("address", ""),
                   detail={"right": "ownership" if d["kind"] == "premises_ownership" else "lease",
                           "cadastral_number": d["detail"].get("cadastral_number", "")})
    return row.result(ctx)


async def row_radio(ctx: Ctx) -> CheckResult:
    row = Row("3.4")
    what = t("Радиожиілікке рұқсат немесе абоненттік шарт", "Разрешение на радиочастоты или абонентский договор",
             "Radio frequency permit or subscriber contract")
    require_documents(ctx, row, ctx.of_kind("radio_permit", "radio_contract"), what)
    return row.result(ctx)


async def row_weapons(ctx: Ctx) -> CheckResult:
    row = Row("3.6")
    what = t("Қаруды сақтауға (алып жүруге) рұқсат", "Разрешение на хранение (ношение) оружия",
             "Permit to store (and carry) weapons")

    def storage(d: dict[str, Any]) -> Text | None:
        # An acquisition permit alone does not show that the organization holds service weapons.
        if d["detail"].get("permit_type") == "acquisition":
            return t(f"№ {d['number']} рұқсаты тек сатып алуға.", f"Разрешение № {d['number']} — только на приобретение.",
                     f"Permit No. {d['number']} is for acquisition only.")
        return None

    require_documents(ctx, row, ctx.of_kind("weapons_permit"), what, check=storage)
    return row.result(ctx)


# --- chapters 1 and 2: personnel ------------------------------------------------------------

async def row_personnel(ctx: Ctx, position: str) -> CheckResult:
    row = Row("1" if position == "head" else "2")
    people = [p for p in await personnel.eligibility_all(ctx.conn, as_of=ctx.as_of, settings=ctx.settings)
              if p["position"] == position]
    active = []
    for p in people:
        rec = await personnel.get(ctx.conn, p["person_id"])
        assert rec is not None
        if rec["hired_on"] is None or rec["hired_on"] <= ctx.as_of:
            active.append(p)
    who = t("басшы", "руководитель", "head") if position == "head" else t("күзетші", "охранник", "guard")
    row.table(t("Қызметкерлер және олардың сәйкестігі", "Сотрудники и их соответствие", "Staff and their eligibility"),
              [{"person_id": p["person_id"], "full_name": p["full_name"], "eligible": p["eligible"],
                "problems": [x["text"] for x in p["problems"]], "warnings": [x["text"] for x in p["warnings"]],
                "screenings": p["screenings"]} for p in active])
    if not active:
        row.add("insufficient-evidence", t(f"Тіркелген {who['kk']} жоқ.", f"Не зарегистрирован ни один {who['ru']}.",
                                           f"No {who['en']} is registered."))
        return row.result(ctx)
    bad = [p for p in active if not p["eligible"]]
    for p in bad:
        reasons = {lang: "; ".join(x["text"][lang] for x in p["problems"]) for lang in ("kk", "ru", "en")}
        row.add("not-met", t(f"{p['full_name']}: {reasons['kk']}.", f"{p['full_name']}: {reasons['ru']}.",
                             f"{p['full_name']}: {reasons['en']}."))
    for p in active:
        for w in p["warnings"]:
            row.add("warning", t(f"{p['full_name']}: {w['text']['kk']}.", f"{p['full_name']}: {w['text']['ru']}.",
                                 f"{p['full_name']}: {w['text']['en']}."))
    row.figure(t("Талаптарға сай", "Соответствуют", "Eligible"), f"{len(active) - len(bad)} / {len(active)}")
    if not bad:
        row.add("met", t(f"Барлық {len(active)} қызметкер талаптарға сай.",
                         f"Все {len(active)} сотрудников соответствуют требованиям.",
                         f"All {len(active)} meet the requirements."))
    if position == "guard":
        await row5.on_duty_eligibility(ctx, row)
    return row.result(ctx)


async def row_heads(ctx: Ctx) -> CheckResult:
    return await row_personnel(ctx, "head")


async def row_guards(ctx: Ctx) -> CheckResult:
    return await row_personnel(ctx, "guard")


async def row_console(ctx: Ctx) -> CheckResult:
    row = Row("3.3")
    await row3.check(ctx, row)
    return row.result(ctx)


async def row_groups(ctx: Ctx) -> CheckResult:
    row = Row("3.5")
    await row5.check(ctx, row)
    return row.result(ctx)


ROWS: list[tuple[str, Callable[[Ctx], Awaitable[CheckResult]]]] = [
    ("1", row_heads), ("2", row_guards), ("3.1", row_licence), ("3.2", row_premises), ("3.3", row_console),
    ("3.4", row_radio), ("3.5", row_groups), ("3.6", row_weapons),
]


async def run_all(conn: asyncpg.Connection, *, period_from: dt.date, period_to: dt.date,
                  settings: Any = None) -> list[CheckResult]:
    """Every row's check over [period_from, period_to] (the documents are judged on period_to)."""
    if period_to < period_from:
        raise ValueError("period_to is before period_from")
    s = ComplianceSettings.load(settings)
    ctx = Ctx(conn, period_from, period_to, s, await document.list_documents(conn), dt.datetime.now(dt.UTC))
    results = [await fn(ctx) for _, fn in ROWS]
    if s.national_company:
        status = worst(r.status for r in results)
        results.append(CheckResult("4", TITLES["4"], status, t(
            "Ұлттық компанияның күзет ұйымына 1-3-тараулардың талаптары қолданылады; жалпы күйі — ең нашар жолдың күйі.",
            "К охранной организации национальной компании применяются требования глав 1-3; общий статус — худший из строк.",
            "Chapters 1-3 apply to a national company's security organization; the status is the worst of their rows."),
            [Evidence("figure", t("Жолдар", "Строки", "Rows"), {r.row: r.status for r in results})],
            period_from, period_to))
    return results


def overall(results: list[CheckResult]) -> str:
    return worst(r.status for r in results)


async def store_run(conn: asyncpg.Connection, results: list[CheckResult], *, actor: str,
                    dedupe_minutes: int = 60) -> int:
    """Keep a run for the history. A run identical in statuses to the last one for the same period
    within `dedupe_minutes` is not stored again (the board and the auditor's page poll)."""
    if not results:
        raise ValueError("no results")
    period_from, period_to = results[0].period_from, results[0].period_to
    statuses = {r.row: r.status for r in results}
    async with conn.transaction():
        last = await conn.fetchrow(
            "SELECT id, run_at, results FROM compliance_check_runs WHERE period_from = $1 AND period_to = $2"
            " ORDER BY id DESC LIMIT 1", period_from, period_to)
        if last is not None and last["run_at"] > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=dedupe_minutes) \
                and {r["row"]: r["status"] for r in last["results"]} == statuses:
            return int(last["id"])
        run_id: int = await conn.fetchval(
            "INSERT INTO compliance_check_runs (run_by, period_from, period_to, overall, results)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id", actor, period_from, period_to, overall(results),
            [r.to_dict() for r in results])
        await conn.executemany("INSERT INTO compliance_check_results (run_id, row_id, status) VALUES ($1, $2, $3)",
                               [(run_id, r.row, r.status) for r in results])
        # The system evaluates and keeps the run; who asked is in the detail (an auditor's reading of
        # the checks is not a change they made).
        await audit.append(conn, [audit.Entry("system:compliance", "compliance.checked", "check_run", str(run_id),
                                              {"period_from": period_from, "period_to": period_to,
                                               "statuses": statuses, "requested_by": actor})])
    return run_id


async def history(conn: asyncpg.Connection | asyncpg.Pool, *, limit: int = 50) -> list[dict[str, Any]]:
    """The latest runs, newest first: when, by whom, the period, and each row's status."""
    rows = await conn.fetch(
        "SELECT r.id, r.run_at, r.run_by, r.period_from, r.period_to, r.overall,"
        " jsonb_object_agg(c.row_id, c.status) AS statuses FROM compliance_check_runs r"
        " JOIN compliance_check_results c ON c.run_id = r.id GROUP BY r.id ORDER BY r.id DESC LIMIT $1", limit)
    return [dict(r) for r in rows]


async def get_run(conn: asyncpg.Connection | asyncpg.Pool, run_id: int) -> dict[str, Any] | None:
    r = await conn.fetchrow("SELECT * FROM compliance_check_runs WHERE id = $1", run_id)
    return dict(r) if r else None
