"""The evidence bundle end to end: gathered from a real post in the database, verified by the
`kuzet compliance verify` command, and exported by an auditor in real Chromium."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import asyncpg
import pypdf
from playwright.async_api import Browser, expect

from compliance import bundle, check, export, orgkey
from console import audit
from tests import compliance_post as post
from tests.test_board_browser import browser, watch_errors  # noqa: F401  (the fixture)
from tests.test_compliance_bundle import rewrite
from tests.test_web_api import PASSWORDS, Web, web  # noqa: F401  (the fixture)


async def expected_row5(conn: asyncpg.Connection) -> str:
    """Row 5 is proven from dispatch's duty shifts; without them its evidence is insufficient."""
    has = await conn.fetchval("SELECT to_regclass('public.duty_shifts') IS NOT NULL")
    return "met" if has else "insufficient-evidence"


def kuzet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kuzet", *args], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


async def test_a_real_posts_bundle_verifies_and_a_changed_document_is_named(pool: asyncpg.Pool,
                                                                            tmp_path: Path) -> None:
    today = dt.date.today()
    home = tmp_path / "home"
    async with pool.acquire() as conn:
        await post.build(conn, home, today)
        docs = await conn.fetchval("SELECT count(*) FROM compliance_documents WHERE withdrawn_at IS NULL")
        out = tmp_path / "evidence.zip"
        lines: list[str] = []
        manifest = await export.export_bundle(conn, out, home=home, period_from=today - dt.timedelta(days=6),
                                              period_to=today, lang="kk", actor="admin", progress=lines.append)
        entries = await conn.fetchval("SELECT count(*) FROM audit_log")
        row5 = await expected_row5(conn)
        exported = await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'compliance.exported'")
    assert exported == 1 and lines and lines[-1].startswith("done:")

    names = {f["path"] for f in manifest["files"]}
    assert {"report.pdf", "results.json", "audit-anchor.json", "extracts/signals_per_panel_per_day.csv",
            "extracts/duty_coverage_per_group_per_day.csv", "extracts/response_times.csv",
            "extracts/audit_chain.csv"} <= names
    assert len([n for n in names if n.startswith("documents/")]) == docs > 0
    with zipfile.ZipFile(out) as zf:
        results = json.loads(zf.read("results.json"))
        text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(zf.read("report.pdf"))).pages)
        anchor = json.loads(zf.read("audit-anchor.json"))
        chain = zf.read("extracts/audit_chain.csv").decode()
    statuses = {r["row"]: r["status"] for r in results["results"]}
    assert statuses.pop("3.5") == row5 and set(statuses.values()) == {"met"}, statuses
    assert "Біліктілік талаптарына сәйкестік туралы есеп" in text and "Орындалды" in text
    assert "3.5" in text  # every row is in the report
    assert anchor["count"] == entries - 1  # taken before the export's own audit entry
    assert chain.splitlines()[1].split(",")[2] == "True"
    # the anchor is kept outside the database too
    kept = audit.read_anchors(home / audit.ANCHORS_FILE)
    assert kept and kept[-1].count == anchor["count"]

    pub = tmp_path / "org.pub"
    pub.write_bytes(orgkey.public_pem(orgkey.load_or_create(home)))
    ok = kuzet("compliance", "verify", str(out), "--key", str(pub))
    assert ok.returncode == 0 and ok.stdout.startswith("OK:"), ok.stdout + ok.stderr

    doc = sorted(n for n in names if n.startswith("documents/"))[0]
    with zipfile.ZipFile(out) as zf:
        data = bytearray(zf.read(doc))
    data[-1] ^= 0x20
    bad = tmp_path / "tampered.zip"
    rewrite(out, bad, doc, bytes(data))
    failed = kuzet("compliance", "verify", str(bad), "--key", str(pub))
    assert failed.returncode == 1
    assert failed.stdout.splitlines() == [f"FAILED: {doc}: changed: SHA-256 {bundle._sha256(bytes(data))},"
                                          f" manifest says {next(f['sha256'] for f in manifest['files'] if f['path'] == doc)}"]


def test_verify_refuses_what_is_not_a_bundle(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    r = kuzet("compliance", "verify", str(junk))
    assert r.returncode == 1 and r.stdout.startswith("FAILED: junk.zip: not a readable ZIP"), r.stdout


async def test_the_auditor_sees_the_checks_exports_and_changes_nothing(web: Web, browser: Browser,  # noqa: F811
                                                                       tmp_path: Path) -> None:
    today = dt.date.today()
    async with web.pool.acquire() as conn:
        await post.build(conn, tmp_path, today)  # the web's data directory is tmp_path
        row5 = await expected_row5(conn)
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    try:
        page = await context.new_page()
        errors = watch_errors(page)
        await page.goto(web.url + "/login?next=/compliance")
        await page.get_by_test_id("login-username").fill("auditor")
        await page.get_by_test_id("login-password").fill(PASSWORDS["auditor"])
        await page.get_by_test_id("login-submit").click()
        await page.wait_for_url(web.url + "/compliance")
        await expect(page.get_by_test_id("readonly-note")).to_be_visible()
        await expect(page.get_by_test_id("check-3.4").locator(".status")).to_have_attribute("data-status", "met")
        await expect(page.get_by_test_id("check-3.5").locator(".status")).to_have_attribute("data-status", row5)
        # overall: the worst row (row 5 may be met now that dispatch's shifts prove the duty)
        rows = page.locator("[data-testid^='check-'] .status")
        await expect(rows.first).to_be_visible()
        statuses = [await rows.nth(i).get_attribute("data-status") or "" for i in range(await rows.count())]
        await expect(page.get_by_test_id("overall").locator(".status")).to_have_attribute(
            "data-status", check.worst(statuses))
        await expect(page.get_by_test_id("document-row").first).to_be_visible()
        await expect(page.get_by_test_id("person-row").first).to_be_visible()
        licence = page.get_by_test_id("check-3.1")
        await licence.locator("summary").click()
        await expect(licence.locator(".evidence li").first).to_be_visible()

        async with page.expect_download() as dl:
            await page.get_by_test_id("export-button").click()
        download = await dl.value
        saved = tmp_path / download.suggested_filename
        await download.save_as(saved)
        await expect(page.get_by_test_id("export-progress")).to_have_attribute("data-state", "done")
        result = bundle.verify(saved)
        assert result.ok and result.signer == (await page.get_by_test_id("key-fingerprint").inner_text())
        assert saved.name.endswith("-kk.zip")

        # the auditor's session cannot change anything, whatever it sends
        for method, path in (("POST", "/api/objects"), ("POST", "/api/documents"), ("PATCH", "/api/personnel/1"),
                             ("POST", "/api/alarms/1/ack"), ("POST", "/api/users")):
            r = await page.request.fetch(web.url + path, method=method, data={})
            assert r.status == 403, (method, path, r.status)
        assert errors == [], errors
    finally:
        await context.close()
    actions = {r["action"] for r in await web.pool.fetch("SELECT action FROM audit_log WHERE actor = 'auditor'")}
    assert actions <= {"user.login", "compliance.exported"} and "compliance.exported" in actions
