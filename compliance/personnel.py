"""Personnel (chapters 1 and 2 of the qualification requirements): heads and guards, and whether
each may hold the position.

What Kuzet computes: citizenship from the identity card's data, a guard's age (at least 19), the
training certificate's validity, the one-year window of rows 7-8 (misdemeanours and the listed
administrative offences within a year before hiring or while employed) and the three-year window of
rows 9-10 (dismissal on negative grounds, termination under Labour Code Art. 52). What it cannot
compute (the psychiatric and narcological registers, criminal records: the licensor takes them from
state digital systems) it shows as the external result with the date it was obtained, and a result
older than `screening_max_age_days` no longer counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from compliance import document
from compliance.settings import ComplianceSettings
from console import audit

Text = dict[str, str]

# Order 959 ch. 2 row 2 and Law "On security activity" Art. 10(4): a guard is at least 19.
GUARD_MIN_AGE = 19
# Rows 7-8 of chapters 1-2: "within one year before being hired ... or during the period of holding it".
PRIOR_WINDOW_YEARS = 1
# Rows 9-10: "three years have not passed" since the dismissal / termination.
DISMISSAL_WINDOW_YEARS = 3
# Row 8, the Code on Administrative Offences articles: chapter 2's list (chapter 1's repeats 665
# where 653 belongs, an apparent typo of the order; the chapter 2 list is used for both).
ADMIN_OFFENCE_ARTICLES = frozenset(str(a) for a in (
    149, 434, 436, 438, 439, 440, 443, 450, 453, 462, 463, 464, 469, 470, 476, 477, 478, 479, 481, 482, 483, 484,
    485, 486, 487, 488, 489, 490, 494, 495, 496, 504, 506, 653, 654, 658, 659, 665, 667, 669, 670, 673, 675))

POSITIONS = ("head", "guard")
SCREENING_KINDS: dict[str, Text] = {
    "psychiatric": {"kk": "Психиатриялық есеп", "ru": "Психиатрический учёт", "en": "Psychiatric register"},
    "narcology": {"kk": "Наркологиялық есеп", "ru": "Наркологический учёт", "en": "Narcological register"},
    "criminal_record": {"kk": "Соттылық", "ru": "Судимость", "en": "Criminal record"},
    "liability_release": {"kk": "Қылмыстық жауаптылықтан босату", "ru": "Освобождение от уголовной ответственности",
                          "en": "Release from criminal liability"},
    "misdemeanour": {"kk": "Қылмыстық теріс қылық", "ru": "Уголовный проступок", "en": "Criminal misdemeanour"},
    "admin_offence": {"kk": "Әкімшілік құқық бұзушылық", "ru": "Административное правонарушение",
                      "en": "Administrative offence"},
    "negative_dismissal": {"kk": "Жағымсыз себептермен жұмыстан шығарылу", "ru": "Увольнение по отрицательным мотивам",
                           "en": "Dismissal on negative grounds"},
    "labour_termination": {"kk": "Еңбек шартын бұзу (ЕК 52-бабы)", "ru": "Расторжение трудового договора (ст. 52 ТК)",
                           "en": "Employment contract terminated (Labour Code Art. 52)"},
}
# The results the order names documents for (medical certificates, criminal-record certificate):
# without a current clear result a person's eligibility is not proven.
REQUIRED_SCREENINGS = ("psychiatric", "narcology", "criminal_record")

_FIELDS = ("full_name", "iin", "position", "job_title", "citizenship", "birth_date", "hired_on", "dismissed_on",
           "qualification", "staff_id", "note")


class PersonError(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year + years, day=28)


def age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _check(data: dict[str, Any]) -> None:
    if data.get("position") not in POSITIONS:
        raise PersonError("position", "must be head or guard")
    iin = data.get("iin") or ""
    if iin and (len(iin) != 12 or not iin.isdigit()):
        raise PersonError("iin", "an IIN is 12 digits")
    if iin and data.get("birth_date"):
        b = data["birth_date"]
        if iin[:6] != b.strftime("%y%m%d"):  # the IIN starts with the date of birth, YYMMDD
            raise PersonError("iin", "does not match the date of birth")
    hired, dismissed = data.get("hired_on"), data.get("dismissed_on")
    if hired and dismissed and dismissed < hired:
        raise PersonError("dismissed_on", "is before the hiring date")


async def create(conn: asyncpg.Connection, data: dict[str, Any], *, actor: str) -> dict[str, Any]:
    data = {k: v for k, v in data.items() if k in _FIELDS}
    _check(data)
    cols = list(data)
    async with conn.transaction():
        try:
            pid: int = await conn.fetchval(
                f"INSERT INTO compliance_personnel ({', '.join(cols)}) VALUES"
                f" ({', '.join(f'${i + 1}' for i in range(len(cols)))}) RETURNING id", *data.values())
        except asyncpg.UniqueViolationError as e:
            raise PersonError("staff_id", "already linked to another person") from e
        except asyncpg.ForeignKeyViolationError as e:
            raise PersonError("staff_id", "no such staff member in dispatch") from e
        await audit.append(conn, [audit.Entry(actor, "person.created", "person", str(pid),
                                              {"full_name": data.get("full_name"), "position": data.get("position")})])
    got = await get(conn, pid)
    assert got is not None
    return got


async def update(conn: asyncpg.Connection, person_id: int, changes: dict[str, Any], *, actor: str) -> dict[str, Any]:
    changes = {k: v for k, v in changes.items() if k in _FIELDS}
    async with conn.transaction():
        current = await conn.fetchrow("SELECT * FROM compliance_personnel WHERE id = $1 FOR UPDATE", person_id)
        if current is None:
            raise LookupError(person_id)
        merged = {**dict(current), **changes}
        _check(merged)
        if changes:
            sets = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(changes))
            try:
                await conn.execute(f"UPDATE compliance_personnel SET {sets}, updated_at = now() WHERE id = $1",
                                   person_id, *changes.values())
            except asyncpg.UniqueViolationError as e:
                raise PersonError("staff_id", "already linked to another person") from e
            except asyncpg.ForeignKeyViolationError as e:
                raise PersonError("staff_id", "no such staff member in dispatch") from e
            await audit.append(conn, [audit.Entry(actor, "person.updated", "person", str(person_id),
                                                  {"changes": changes})])
    got = await get(conn, person_id)
    assert got is not None
    return got


async def get(conn: asyncpg.Connection | asyncpg.Pool, person_id: int) -> dict[str, Any] | None:
    r = await conn.fetchrow("SELECT * FROM compliance_personnel WHERE id = $1", person_id)
    return dict(r) if r else None


async def list_personnel(conn: asyncpg.Connection | asyncpg.Pool, *, include_dismissed: bool = True) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM compliance_personnel WHERE $1 OR dismissed_on IS NULL"
                            " ORDER BY position, full_name, id", include_dismissed)
    return [dict(r) for r in rows]


async def add_screening(conn: asyncpg.Connection, person_id: int, *, kind: str, result: str, obtained_on: dt.date,
                        actor: str, event_date: dt.date | None = None, blocks_until: dt.date | None = None,
                        article: str = "", source: str = "", reference: str = "",
                        document_id: int | None = None) -> dict[str, Any]:
    if kind not in SCREENING_KINDS:
        raise PersonError("kind", f"must be one of {', '.join(SCREENING_KINDS)}")
    if result not in ("clear", "hit"):
        raise PersonError("result", "must be clear or hit")
    if result == "hit" and event_date is None and kind not in REQUIRED_SCREENINGS + ("liability_release",):
        raise PersonError("event_date", "an adverse result needs the date of the decision or dismissal")
    if obtained_on > dt.date.today() + dt.timedelta(days=1):
        raise PersonError("obtained_on", "is in the future")
    async with conn.transaction():
        if not await conn.fetchval("SELECT 1 FROM compliance_personnel WHERE id = $1", person_id):
            raise LookupError(person_id)
        if document_id is not None and not await conn.fetchval(
                "SELECT 1 FROM compliance_documents WHERE id = $1 AND person_id = $2", document_id, person_id):
            raise PersonError("document_id", "no such document of this person")
        r = await conn.fetchrow(
            "INSERT INTO compliance_screenings (person_id, kind, result, obtained_on, event_date, blocks_until, article,"
            " source, reference, document_id, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            " RETURNING *", person_id, kind, result, obtained_on, event_date, blocks_until, article, source,
            reference, document_id, actor)
        await audit.append(conn, [audit.Entry(actor, "person.screening", "person", str(person_id),
                                              {"kind": kind, "result": result, "obtained_on": obtained_on,
                                               "event_date": event_date})])
    return dict(r)


async def screenings(conn: asyncpg.Connection | asyncpg.Pool, person_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM compliance_screenings WHERE person_id = $1"
                            " ORDER BY kind, obtained_on DESC, id DESC", person_id)
    return [dict(r) for r in rows]


def _p(code: str, kk: str, ru: str, en: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "text": {"kk": kk, "ru": ru, "en": en}, **extra}


def evaluate(person: dict[str, Any], docs: list[dict[str, Any]], checks: list[dict[str, Any]], *,
             as_of: dt.date, settings: ComplianceSettings) -> dict[str, Any]:
    """Eligibility of one person on `as_of` from their record, documents and external results.
    `problems` block (the person may not hold the position, or it is not proven); `warnings` are
    evidence that runs out within `expiry_warn_days`."""
    problems: list[dict[str, Any]] = []
    warns: list[dict[str, Any]] = []
    horizon = as_of + dt.timedelta(days=settings.expiry_warn_days)
    eligible_from: dt.date | None = None

    if person["dismissed_on"] is not None and person["dismissed_on"] <= as_of:
        d = person["dismissed_on"].isoformat()
        problems.append(_p("dismissed", f"{d} жұмыстан шығарылған", f"Уволен {d}", f"Dismissed on {d}"))
    if (person["citizenship"] or "").upper() != "KZ":
        problems.append(_p("citizenship", "Қазақстан Республикасының азаматы емес",
                           "Не гражданин Республики Казахстан", "Not a citizen of the Republic of Kazakhstan"))
    age = age_on(person["birth_date"], as_of)
    if person["position"] == "guard" and age < GUARD_MIN_AGE:
        from_day = add_years(person["birth_date"], GUARD_MIN_AGE)
        eligible_from = from_day
        problems.append(_p("age", f"19 жасқа толмаған ({age} жас; {from_day} бастап)",
                           f"Моложе 19 лет ({age}; с {from_day})", f"Under 19 ({age}; eligible from {from_day})"))
    if person["position"] == "head":
        basis = person["qualification"]
        proof = "diploma" if basis == "legal_higher_education" else "employment_record"
        if not basis or not any(d["kind"] == proof and document.usable(d) for d in docs):
            problems.append(_p("qualification",
                               "Жоғары заң білімі немесе басшы лауазымдардағы үш жылдық өтілі құжатпен расталмаған",
                               "Не подтверждены документом высшее юридическое образование или три года стажа на"
                               " командных (руководящих) должностях",
                               "Neither higher legal education nor three years in command or managerial positions"
                               " is proven by a registered document"))

    training = [d for d in docs if d["kind"] == "training_certificate" and document.usable(d)]
    ends: list[dt.date | None] = []  # the end of each certificate valid on as_of (None: open-ended)
    for d in training:
        end = d["valid_until"]
        if end is None and settings.training_validity_years and d["issued_on"]:
            end = add_years(d["issued_on"], settings.training_validity_years)
        if (d["issued_on"] is None or d["issued_on"] <= as_of) and (end is None or end >= as_of):
            ends.append(end)
    ok_training = bool(ends)
    best_end = None if not ends or None in ends else max(e for e in ends if e is not None)
    if not ok_training:
        problems.append(_p("training", "Мамандандырылған оқу орталығының жарамды куәлігі жоқ",
                           "Нет действующего свидетельства специализированного учебного центра",
                           "No valid certificate of a specialized training centre"))
    elif best_end is not None and best_end <= horizon:
        warns.append(_p("training_expiring", f"Оқу куәлігі {best_end} аяқталады",
                        f"Свидетельство об обучении истекает {best_end}",
                        f"The training certificate expires on {best_end}", until=best_end))

    latest: dict[str, dict[str, Any]] = {}
    for chk in sorted(checks, key=lambda c: (c["obtained_on"], c["id"])):
        latest[chk["kind"]] = chk  # the newest result of each kind stands
    oldest_ok = as_of - dt.timedelta(days=settings.screening_max_age_days)
    for kind in REQUIRED_SCREENINGS:
        label = SCREENING_KINDS[kind]
        found = latest.get(kind)
        if found is None or found["obtained_on"] < oldest_ok:
            n = settings.screening_max_age_days
            problems.append(_p("screening_missing",
                               f"«{label['kk']}» нәтижесі жоқ немесе {n} күннен ескі",
                               f"Нет результата «{label['ru']}» или он старше {n} дн.",
                               f"No '{label['en']}' result, or it is older than {n} days", kind=kind))
        elif found["result"] == "clear":
            stale = found["obtained_on"] + dt.timedelta(days=settings.screening_max_age_days)
            if stale <= horizon:
                warns.append(_p("screening_stale", f"«{label['kk']}» нәтижесі {stale} ескіреді",
                                f"Результат «{label['ru']}» устареет {stale}",
                                f"The '{label['en']}' result goes stale on {stale}", kind=kind, until=stale))
    hired = person["hired_on"] or as_of
    for c in checks:
        if c["result"] != "hit":
            continue
        kind, label = c["kind"], SCREENING_KINDS[c["kind"]]
        when = c["event_date"]
        blocking, until = False, None
        if kind in REQUIRED_SCREENINGS:
            blocking = latest.get(kind) is c
        elif kind == "liability_release":
            until = c["blocks_until"]
            blocking = until is None or until > as_of
        elif kind in ("misdemeanour", "admin_offence") and when is not None:
            in_list = kind == "misdemeanour" or not c["article"] or c["article"].strip() in ADMIN_OFFENCE_ARTICLES
            blocking = in_list and add_years(hired, -PRIOR_WINDOW_YEARS) <= when <= as_of
        elif kind in ("negative_dismissal", "labour_termination") and when is not None:
            until = add_years(when, DISMISSAL_WINDOW_YEARS)
            blocking = until > as_of
        if blocking:
            if until is not None:
                eligible_from = max(eligible_from or until, until)
            d = when.isoformat() if when else c["obtained_on"].isoformat()
            tail = (f"; {until} бастап", f"; с {until}", f"; until {until}") if until else ("", "", "")
            problems.append(_p("screening_hit", f"«{label['kk']}»: {d} күнгі теріс нәтиже{tail[0]}",
                               f"«{label['ru']}»: отрицательный результат от {d}{tail[1]}",
                               f"'{label['en']}': adverse result of {d}{tail[2]}", kind=kind))

    for d in docs:  # any of the person's documents that lapses soon
        if document.usable(d) and d["valid_until"] is not None and as_of <= d["valid_until"] <= horizon \
                and d["kind"] != "training_certificate":
            warns.append(_p("document_expiring", f"{d['label']['kk']}: {d['valid_until']} аяқталады",
                            f"{d['label']['ru']}: истекает {d['valid_until']}",
                            f"{d['label']['en']}: expires on {d['valid_until']}", until=d["valid_until"]))
    return {"person_id": person["id"], "full_name": person["full_name"], "position": person["position"],
            "as_of": as_of, "age": age, "eligible": not problems, "problems": problems, "warnings": warns,
            "eligible_from": eligible_from,
            "screenings": [{"kind": k, "label": SCREENING_KINDS[k], "result": c["result"],
                            "obtained_on": c["obtained_on"], "source": c["source"], "reference": c["reference"]}
                           for k, c in sorted(latest.items())]}


async def eligibility(conn: asyncpg.Connection | asyncpg.Pool, person_id: int, *, as_of: dt.date,
                      settings: ComplianceSettings | None = None) -> dict[str, Any]:
    s = ComplianceSettings.load(settings)
    person = await get(conn, person_id)
    if person is None:
        raise LookupError(person_id)
    docs = await document.list_documents(conn, person_id=person_id)
    return evaluate(person, docs, await screenings(conn, person_id), as_of=as_of, settings=s)


async def eligibility_all(conn: asyncpg.Connection | asyncpg.Pool, *, as_of: dt.date,
                          settings: ComplianceSettings | None = None,
                          include_dismissed: bool = False) -> list[dict[str, Any]]:
    s = ComplianceSettings.load(settings)
    people = await list_personnel(conn, include_dismissed=include_dismissed)
    docs = [d for d in await document.list_documents(conn) if d["person_id"] is not None]
    checks = [dict(r) for r in await conn.fetch("SELECT * FROM compliance_screenings")]
    out = []
    for p in people:
        out.append(evaluate(p, [d for d in docs if d["person_id"] == p["id"]],
                            [c for c in checks if c["person_id"] == p["id"]], as_of=as_of, settings=s))
    return out


async def staff_eligibility(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int, *, on: dt.date,
                            settings: ComplianceSettings | None = None) -> dict[str, Any] | None:
    """Eligibility of the person linked to dispatch's staff member `staff_id` (None: nobody linked)."""
    pid = await conn.fetchval("SELECT id FROM compliance_personnel WHERE staff_id = $1", staff_id)
    if pid is None:
        return None
    return await eligibility(conn, pid, as_of=on, settings=settings)


ShiftCheck = Callable[[asyncpg.Connection, int, dt.datetime, dt.datetime], Awaitable[str | None]]


def shift_eligibility(settings: Any = None) -> ShiftCheck:
    """The check dispatch runs for each staff member put on a duty shift (dispatch does not import
    compliance; the web hands this to it as `app.state.shift_eligibility`): why they may not serve
    from `starts_at` to `ends_at`, or None. Eligibility is judged on the shift's first and last day
    (post time), so a certificate that lapses during the shift refuses it too. A staff member with
    no personnel record is refused unless `shift_requires_personnel` is off: nothing proves they
    may serve."""
    s = ComplianceSettings.load(settings)

    async def check(conn: asyncpg.Connection, staff_id: int, starts_at: dt.datetime,
                    ends_at: dt.datetime) -> str | None:
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(s.timezone)
        days = sorted({starts_at.astimezone(tz).date(), ends_at.astimezone(tz).date()})
        for day in days:
            e = await staff_eligibility(conn, staff_id, on=day, settings=s)
            if e is None:
                if s.shift_requires_personnel:
                    return "no personnel record in compliance (citizenship, age, training and certificates unknown)"
                return None
            if not e["eligible"]:
                return f"not eligible on {day}: " + "; ".join(p["text"]["en"] for p in e["problems"])
        return None

    return check
