"""The demo post's compliance records: real files, reviewed documents, eligible personnel, so the
document-based rows are met as soon as `kuzet demo` starts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import asyncpg

from compliance import check, document, filecheck
from kuzet import demo, demo_compliance
from tests import compliance_post as post


async def test_demo_post_has_its_documents_and_personnel(pool: asyncpg.Pool, tmp_path: Path) -> None:
    await demo.seed(pool, tmp_path)
    await demo.seed(pool, tmp_path)  # a second start adds nothing
    async with pool.acquire() as conn:
        docs = await document.list_documents(conn)
        kinds = {d["kind"] for d in docs}
        assert {"security_licence", "premises_lease", "staffing_table", "console_equipment", "server_equipment",
                "radio_contract", "weapons_permit", "group_formation_order", "staff_assignment_order",
                "vehicle_registration", "training_certificate"} <= kinds
        assert all(d["review_status"] == "accepted" and d["reviewed_by"] != d["registered_by"] for d in docs)
        for d in docs:  # every file is really what it says, stored under its hash
            content = document.file_path(tmp_path, d).read_bytes()
            assert filecheck.sniff(content) == d["file_type"]
        today = dt.date.today()
        # the past month's daily test reports are there; today's come from the running simulators
        assert await conn.fetchval("SELECT count(DISTINCT received_at::date) FROM signals") == demo_compliance.HISTORY_DAYS
        await post.add_signal(conn, dt.datetime.now(dt.UTC))
        got = {r.row: r for r in await check.run_all(conn, period_from=today - dt.timedelta(days=29),
                                                         period_to=today)}
        for row in ("1", "2", "3.1", "3.2", "3.4", "3.6"):
            assert got[row].status == "met", got[row].to_dict()
        # row 3's documents are there; its live part waits for the panels' signals and a backup
        assert "Staffing table: present and valid" in got["3.3"].explanation["en"]
        assert "Signals were received every day of the period" in got["3.3"].explanation["en"]
        assert "groups are formed by order" in got["3.5"].explanation["en"]
        # the two groups' past month of duty (dispatch's shifts) and their crews' records
        assert got["3.5"].status == "met", got["3.5"].to_dict()
        assert got["2"].status == "met", got["2"].to_dict()
