"""The board's compliance banner in real Chromium: an operator sees a document about to expire."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from playwright.async_api import Browser, expect

from tests import compliance_post as post
from tests.test_board_browser import browser, watch_errors  # noqa: F401  (the fixture)
from tests.test_web_api import PASSWORDS, Web, web  # noqa: F401  (the fixture)


async def test_the_board_warns_of_an_expiring_document(web: Web, browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    today = dt.date.today()
    async with web.pool.acquire() as conn:
        ids = await post.build(conn, tmp_path, today)
        await conn.execute("UPDATE compliance_documents SET valid_until = $2 WHERE id = $1", ids["radio"],
                           today + dt.timedelta(days=9))
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = await context.new_page()
        errors = watch_errors(page)
        await page.goto(web.url + "/login?next=/board")
        await page.get_by_test_id("login-username").fill("operator")
        await page.get_by_test_id("login-password").fill(PASSWORDS["operator"])
        await page.get_by_test_id("login-submit").click()
        await page.wait_for_url(web.url + "/board")
        banner = page.get_by_test_id("compliance-banner")
        await expect(banner).to_be_visible()
        await expect(page.get_by_test_id("compliance-summary")).to_have_text("1 document(s) expire within 30 days")
        item = page.get_by_test_id("compliance-warning")
        await expect(item).to_have_count(1)
        await expect(item).to_contain_text("Radio subscriber (lease) service contract № R-1")
        await expect(item).to_contain_text(f"until {today + dt.timedelta(days=9)}")
        await page.get_by_test_id("lang-ru").click()
        await expect(item).to_contain_text("Договор абонентского обслуживания радиосвязи")
        await banner.get_by_role("button").click()
        await expect(banner).to_be_hidden()
        assert errors == [], errors
    finally:
        await context.close()
