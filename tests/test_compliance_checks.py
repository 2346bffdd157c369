"""The checks over a real database: a post that meets every row, then one that fails each row in
turn (the check says so, with the evidence that shows it), documents about to expire, history."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from compliance import check, document, personnel
from compliance.settings import ComplianceSettings
from tests import compliance_post as post

TODAY = dt.date.today()
PERIOD = {"period_from": TODAY - dt.timedelta(days=post.DAYS - 1), "period_to": TODAY}


async def run(conn: asyncpg.Connection, **settings: Any) -> dict[str, check.CheckResult]:
    results = await check.run_all(conn, settings=ComplianceSettings(**settings), **PERIOD)
    return {r.row: r for r in results}


def text(r: check.CheckResult) -> str:
    return json.dumps(r.to_dict(), ensure_ascii=False)


async def has_shifts(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass('public.duty_shifts') IS NOT NULL"))


async def test_a_post_that_meets_every_row(pool: asyncpg.Pool, tmp_path: Path) -> None:
    async with pool.acquire() as conn:
        await post.build(conn, tmp_path, TODAY)
        got = await run(conn)
        assert set(got) == {"1", "2", "3.1", "3.2", "3.3", "3.4", "3.5", "3.6"}
        for row, r in got.items():
            if row == "3.5" and not await has_shifts(conn):
                # without dispatch's shift records the duty through the period cannot be proven
                assert r.status == "insufficient-evidence", text(r)
                assert "duty" in r.explanation["en"]
                continue
            assert r.status == "met", text(r)
            for lang in ("kk", "ru", "en"):
                assert r.explanation[lang] and r.title[lang]
        # the evidence names the documents and the live figures
        licence = got["3.1"]
        assert any(e.kind == "document" and e.detail["number"] == "L-1" for e in licence.evidence)
        assert any(e.kind == "figure" and e.value >= 365 for e in licence.evidence if e.label["en"].startswith("Exper"))
        console = got["3.3"]
        figures = {e.label["en"]: e for e in console.evidence}
        assert figures["Signals received in the period"].value == post.DAYS
        assert figures["Audit log chain"].value == "ok"
        assert "Last verified backup" in figures
        assert figures["Access per role"].kind == "table"
        groups = got["3.5"]
        assert any(e.label["en"] == "Groups formed by order" and e.value == 2 for e in groups.evidence)
        assert any(e.label["en"] == "Alarms needing a response" and e.value == 1 for e in groups.evidence)
        # JSON-serialisable as the bundle needs it
        json.dumps([r.to_dict() for r in got.values()])


async def _withdraw(conn: asyncpg.Connection, doc_id: int) -> None:
    await document.withdraw(conn, doc_id, actor=post.REVIEWER)


FAILURES = ["1-training", "2-age", "3.1-experience", "3.2-premises", "3.3-signals", "3.3-audit", "3.3-backup",
            "3.4-expired", "3.5-one-group", "3.5-vehicle", "3.5-unanswered", "3.6-acquisition-only"]


@pytest.mark.parametrize("case", FAILURES)
async def test_a_post_failing_one_row(pool: asyncpg.Pool, owner_dsn: str, tmp_path: Path, case: str) -> None:
    # what the running post may not do (truncate history, rewrite the audit log) is done as the owner,
    # standing for someone with database access behind the application's back
    owner = await asyncpg.connect(owner_dsn)
    async with pool.acquire() as conn:
        ids = await post.build(conn, tmp_path, TODAY)
        row, what = case.split("-", 1)
        expect: str  # words the English explanation must contain
        if case == "1-training":
            await _withdraw(conn, ids["training"][ids["head"]])
            expect = "Head One: No valid certificate of a specialized training centre"
        elif case == "2-age":
            young = TODAY.replace(year=TODAY.year - 18)
            await conn.execute("UPDATE compliance_personnel SET birth_date = $2 WHERE id = $1", ids["guard"], young)
            expect = "Guard One: Under 19"
        elif case == "3.1-experience":
            await conn.execute("UPDATE compliance_documents SET issued_on = $2 WHERE id = $1", ids["licence"],
                               TODAY - dt.timedelta(days=100))
            expect = "at least 365 are required"
        elif case == "3.2-premises":
            await _withdraw(conn, ids["premises"])
            expect = "no document is registered"
        elif case == "3.3-signals":
            await owner.execute("TRUNCATE signals CASCADE")
            expect = "No signal was received"
        elif case == "3.3-audit":
            # someone with database access rewrites history behind the application's back
            await owner.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
            await owner.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = 2")
            await owner.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change")
            expect = "audit log is broken from entry 2"
        elif case == "3.3-backup":
            await owner.execute("TRUNCATE compliance_backups")
            expect = "no backup whose restore was verified"
        elif case == "3.4-expired":
            await conn.execute("UPDATE compliance_documents SET valid_until = $2 WHERE id = $1", ids["radio"],
                               TODAY - dt.timedelta(days=1))
            expect = f"expired on {TODAY - dt.timedelta(days=1)}"
        elif case == "3.5-one-group":
            await _withdraw(conn, ids["formation"][1])
            expect = "1 group(s) formed by order; at least 2 are required"
        elif case == "3.5-vehicle":
            await _withdraw(conn, ids["vehicle_cert"][0])
            expect = "Group 'G1' has no vehicle held in ownership"
        elif case == "3.5-unanswered":
            await conn.execute(
                "INSERT INTO alarms (account, kind, klass, priority, title, opened_at) VALUES"
                " ('1001', 'signal', 'alarm', 2, '{}'::jsonb, now() - interval '1 hour')")
            expect = "1 alarm(s) needing a response were not answered"
        elif case == "3.6-acquisition-only":
            await conn.execute("UPDATE compliance_documents SET detail = '{\"permit_type\": \"acquisition\"}'"
                               " WHERE id = $1", ids["weapons"])
            expect = "is for acquisition only"
        await owner.close()
        got = await run(conn)
        r = got[row]
        assert r.status == "not-met", text(r)
        assert expect in r.explanation["en"], text(r)
        for lang in ("kk", "ru"):
            assert r.explanation[lang] != r.explanation["en"]
        others = {k: v.status for k, v in got.items() if k != row and not (k == "3.5" and not await has_shifts(conn))}
        assert set(others.values()) == {"met"}, others


async def test_the_unanswered_alarm_is_listed(pool: asyncpg.Pool, tmp_path: Path) -> None:
    async with pool.acquire() as conn:
        await post.build(conn, tmp_path, TODAY)
        aid = await conn.fetchval(
            "INSERT INTO alarms (account, kind, klass, priority, title, opened_at) VALUES"
            " ('1001', 'signal', 'alarm', 2, '{\"en\": \"Burglary\"}'::jsonb, now() - interval '1 hour') RETURNING id")
        # a fresh one is being handled now: not (yet) unanswered
        await conn.execute("INSERT INTO alarms (account, kind, klass, priority, title, opened_at) VALUES"
                           " ('1001', 'signal', 'alarm', 2, '{}'::jsonb, now())")
        r = (await run(conn))["3.5"]
        table = next(e for e in r.evidence if e.label["en"] == "Alarms left unanswered")
        assert [x["alarm_id"] for x in table.value] == [aid]


async def test_a_document_about_to_expire_warns_before_it_expires(pool: asyncpg.Pool, tmp_path: Path) -> None:
    async with pool.acquire() as conn:
        ids = await post.build(conn, tmp_path, TODAY)
        ends = TODAY + dt.timedelta(days=10)
        await conn.execute("UPDATE compliance_documents SET valid_until = $2 WHERE id = $1", ids["radio"], ends)
        r = (await run(conn, expiry_warn_days=30))["3.4"]
        assert r.status == "warning", text(r)
        assert f"expires on {ends}" in r.explanation["en"]
        assert (await run(conn, expiry_warn_days=5))["3.4"].status == "met"
        warned = await document.warnings(conn, today=TODAY, warn_days=30)
        assert [(w["document_id"], w["days_left"], w["expired"]) for w in warned] == [(ids["radio"], 10, False)]
        # once a renewed contract is registered, the old one no longer warns
        await post.register(conn, tmp_path, "radio_contract", number="R-2", issued_on=ends,
                            valid_until=ends + dt.timedelta(days=365))
        assert await document.warnings(conn, today=TODAY, warn_days=30) == []
        assert (await run(conn))["3.4"].status == "met"


async def test_a_document_waiting_for_review_is_a_warning(pool: asyncpg.Pool, tmp_path: Path) -> None:
    async with pool.acquire() as conn:
        ids = await post.build(conn, tmp_path, TODAY)
        await _withdraw(conn, ids["weapons"])
        await post.register(conn, tmp_path, "weapons_permit", accept=False, number="WP-2",
                            issued_on=TODAY - dt.timedelta(days=30), detail={"permit_type": "storage"})
        r = (await run(conn))["3.6"]
        assert r.status == "warning" and "not reviewed yet" in r.explanation["en"], text(r)
        assert any(e.kind == "document" and e.detail["review_status"] == "pending" for e in r.evidence)


async def test_runs_are_kept_for_the_history(pool: asyncpg.Pool, tmp_path: Path) -> None:
    async with pool.acquire() as conn:
        ids = await post.build(conn, tmp_path, TODAY)
        first = await check.store_run(conn, await check.run_all(conn, **PERIOD), actor="auditor")
        # polling again with the same outcome does not pile up runs
        assert await check.store_run(conn, await check.run_all(conn, **PERIOD), actor="auditor") == first
        await _withdraw(conn, ids["premises"])
        second = await check.store_run(conn, await check.run_all(conn, **PERIOD), actor="auditor")
        assert second != first
        h = await check.history(conn)
        assert [x["id"] for x in h] == [second, first]
        assert h[0]["statuses"]["3.2"] == "not-met" and h[1]["statuses"]["3.2"] == "met"
        stored = await check.get_run(conn, second)
        assert stored is not None and {r["row"] for r in stored["results"]} >= {"3.1", "3.6"}
        actions = [r["action"] for r in await conn.fetch("SELECT action FROM audit_log WHERE action = 'compliance.checked'")]
        assert len(actions) == 2


async def test_national_company_adds_chapter_4(pool: asyncpg.Pool, tmp_path: Path) -> None:
    async with pool.acquire() as conn:
        ids = await post.build(conn, tmp_path, TODAY)
        await _withdraw(conn, ids["premises"])
        got = await run(conn, national_company=True)
        assert got["4"].status == "not-met"
        assert "4" not in await run(conn)


async def test_eligibility_windows(pool: asyncpg.Pool, tmp_path: Path) -> None:
    """The one-year and three-year windows of chapters 1-2 (rows 7-10), computed from the event date."""
    async with pool.acquire() as conn:
        ids = await post.build(conn, tmp_path, TODAY)
        gid = ids["guard"]
        hired = TODAY - dt.timedelta(days=300)

        async def eligible(on: dt.date = TODAY) -> dict[str, Any]:
            return await personnel.eligibility(conn, gid, as_of=on)

        assert (await eligible())["eligible"]
        # an administrative offence under an article NOT in the list: no effect
        await personnel.add_screening(conn, gid, kind="admin_offence", result="hit", obtained_on=TODAY,
                                      event_date=hired - dt.timedelta(days=100), article="610", actor="clerk")
        assert (await eligible())["eligible"]
        # a listed article (434) more than a year before hiring: no effect; within the year: blocks
        await personnel.add_screening(conn, gid, kind="admin_offence", result="hit", obtained_on=TODAY,
                                      event_date=hired - dt.timedelta(days=400), article="434", actor="clerk")
        assert (await eligible())["eligible"]
        await personnel.add_screening(conn, gid, kind="admin_offence", result="hit", obtained_on=TODAY,
                                      event_date=hired - dt.timedelta(days=200), article="434", actor="clerk")
        e = await eligible()
        assert not e["eligible"] and e["problems"][0]["code"] == "screening_hit"
        await conn.execute("DELETE FROM compliance_screenings WHERE kind = 'admin_offence'")
        # dismissed on negative grounds two years ago: blocked until three years have passed
        dismissed = TODAY - dt.timedelta(days=2 * 365)
        await personnel.add_screening(conn, gid, kind="negative_dismissal", result="hit", obtained_on=TODAY,
                                      event_date=dismissed, actor="clerk")
        e = await eligible()
        assert not e["eligible"] and e["eligible_from"] == personnel.add_years(dismissed, 3)
        assert (await eligible(personnel.add_years(dismissed, 3) + dt.timedelta(days=1)))["problems"] != e["problems"]
        await conn.execute("DELETE FROM compliance_screenings WHERE kind = 'negative_dismissal'")
        # an external result older than the allowed age no longer counts
        old = await eligible(TODAY + dt.timedelta(days=400))
        assert not old["eligible"] and {p.get("kind") for p in old["problems"]} >= {"criminal_record"}
        # a head without the document proving the qualification
        await _withdraw(conn, ids["diploma"])
        h = await personnel.eligibility(conn, ids["head"], as_of=TODAY)
        assert [p["code"] for p in h["problems"]] == ["qualification"]
        # a non-citizen
        await conn.execute("UPDATE compliance_personnel SET citizenship = 'RU' WHERE id = $1", gid)
        assert [p["code"] for p in (await eligible())["problems"]] == ["citizenship"]


async def test_shift_eligibility_for_dispatch(pool: asyncpg.Pool, tmp_path: Path) -> None:
    """The callable the web hands to dispatch: a guard under 19, or whose training certificate has
    expired (or expires during the shift), may not be put on a shift; an unknown staff member neither."""
    async with pool.acquire() as conn:
        ids = await post.build(conn, tmp_path, TODAY)
        staff = ids["staff"][1]  # dispatch's staff member linked to the guard
        check_shift = personnel.shift_eligibility(ComplianceSettings())
        now = dt.datetime.now(dt.UTC)
        shift = (now, now + dt.timedelta(hours=12))
        assert await check_shift(conn, staff, *shift) is None
        why = await check_shift(conn, 9999, *shift)
        assert why is not None and "no personnel record" in why
        assert await personnel.shift_eligibility(ComplianceSettings(shift_requires_personnel=False))(
            conn, 9999, *shift) is None
        # the training certificate lapses tomorrow: a shift into the day after is refused
        await conn.execute("UPDATE compliance_documents SET valid_until = $2 WHERE id = $1",
                           ids["training"][ids["guard"]], TODAY + dt.timedelta(days=1))
        assert await check_shift(conn, staff, *shift) is None
        why = await check_shift(conn, staff, now + dt.timedelta(days=1), now + dt.timedelta(days=2, hours=1))
        assert why is not None and "No valid certificate of a specialized training centre" in why
        # under 19
        await conn.execute("UPDATE compliance_personnel SET birth_date = $2 WHERE id = $1", ids["guard"],
                           TODAY.replace(year=TODAY.year - 18))
        why = await check_shift(conn, staff, *shift)
        assert why is not None and "Under 19" in why


def test_duty_coverage_sweep() -> None:
    """Share of the period with at least two groups on duty, and the gaps, from shift spans."""
    from compliance import row5

    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    h = dt.timedelta(hours=1)
    # group 1 all day; group 2 from 02:00 to 20:00; group 3 (second shift of group 2's crew) 21:00-24:00
    spans = [(1, t0, t0 + 24 * h), (2, t0 + 2 * h, t0 + 20 * h), (3, t0 + 21 * h, t0 + 24 * h)]
    pct, gaps = row5.sweep(spans, t0, t0 + 24 * h)
    assert round(pct, 3) == round(100 * 21 / 24, 3)
    assert [(g["from"], g["to"], g["groups_on_duty"]) for g in gaps] == [
        (t0, t0 + 2 * h, 1), (t0 + 20 * h, t0 + 21 * h, 1)]
    # the same group twice at once counts once
    pct, _ = row5.sweep([(1, t0, t0 + 24 * h), (1, t0, t0 + 24 * h)], t0, t0 + 24 * h)
    assert pct == 0.0


async def test_extracts_for_the_bundle(pool: asyncpg.Pool, tmp_path: Path) -> None:
    from compliance import extracts

    async with pool.acquire() as conn:
        ids = await post.build(conn, tmp_path, TODAY)
        per_day = await extracts.signals_per_panel_per_day(conn, **PERIOD)
        assert len(per_day) == post.DAYS and {r["account"] for r in per_day} == {"1001"}
        assert all(r["signals"] == 1 for r in per_day) and per_day[-1]["day"] == TODAY.isoformat()
        times = await extracts.response_times(conn, **PERIOD)
        assert [(r["alarm_id"], r["ack_seconds"]) for r in times] == [(ids["alarm"], 40.0)]
        chain = await extracts.audit_chain(conn)
        assert chain[0]["intact"] is True and chain[0]["entries"] > 20 and len(chain[0]["last_hash"]) == 64
        coverage = await extracts.duty_coverage_per_group_per_day(conn, **PERIOD)
        if await has_shifts(conn):
            assert {r["group"] for r in coverage} == {"G1", "G2"}
            assert all(r["two_groups_pct"] == 100.0 for r in coverage)
        else:
            assert coverage == []


async def test_overdue_supervised_panels_are_a_warning(pool: asyncpg.Pool, tmp_path: Path) -> None:
    async with pool.acquire() as conn:
        await post.build(conn, tmp_path, TODAY)
        await conn.execute("INSERT INTO accounts (number, supervision_interval, last_seen_at, created_at)"
                           " VALUES ('2002', 300, now() - interval '1 hour', now() - interval '2 days')")
        # put under supervision a minute ago and not heard from yet: not overdue
        await conn.execute("INSERT INTO accounts (number, supervision_interval, created_at)"
                           " VALUES ('2003', 300, now() - interval '1 minute')")
        r = (await run(conn))["3.3"]
        assert r.status == "warning" and "1 supervised panel(s) are overdue: 2002." in r.explanation["en"], text(r)
        table = next(e for e in r.evidence if e.label["en"] == "Panels overdue for their test report")
        assert [x["account"] for x in table.value] == ["2002"]
