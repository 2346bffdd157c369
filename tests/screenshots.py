"""The README's dispatch screenshots, taken with Playwright against a running System seeded with the
demo post: the operator's board with the group panel (a burglary answered by the first group, which
is on its way), and the crew's phone view of that assignment.

    .venv/bin/python -m tests.screenshots            # writes docs/screenshots/board-groups.png, crew-phone.png

Not a test (nothing is asserted beyond the pages getting there); run it after changing the pages.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from playwright.async_api import Page, async_playwright, expect

from console.alarm import Actor
from console.config import Dc09Config, Settings
from dispatch import group, shift, staff
from kuzet import demo
from kuzet.runtime import System
from tests.util import CHROMIUM_ARGS, chromium, send_frame, sia_frame

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
ADMIN = Actor(None, "screenshots")
# the first group's phone on its way from its base (ул. Сатпаева) to the mall on Al-Farabi
ON_THE_WAY = (43.2265, 76.9291)


async def on_duty(pool: asyncpg.Pool, creds: dict[str, str]) -> dict[str, int]:
    """Every demo group on a shift now, crew users linked (the demo's own seeding may have done it)."""
    now = datetime.now(UTC)
    found: dict[str, int] = {}
    async with pool.acquire() as conn:
        groups = await group.list_groups(conn)
        for i, g in enumerate(groups[:2], start=1):
            found[f"crew{i}"] = g["id"]
            if g["on_duty"]:
                continue
            crew_user = await conn.fetchval("SELECT id FROM users WHERE username = $1", f"crew{i}")
            people = [await staff.create(conn, ADMIN, full_name=f"Старший {g['call_sign']}", role="senior",
                                         group_id=g["id"], user_id=crew_user if f"crew{i}" in creds else None),
                      await staff.create(conn, ADMIN, full_name=f"Водитель {g['call_sign']}", role="driver",
                                         group_id=g["id"])]
            vehicle = g["vehicles"][0]["id"] if g["vehicles"] else None
            await shift.create(conn, ADMIN, group_id=g["id"], vehicle_id=vehicle, starts_at=now - timedelta(hours=2),
                               ends_at=now + timedelta(hours=22), staff_ids=people)
    return found


async def login(page: Page, url: str, username: str, password: str) -> None:
    await page.goto(url + "/login")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(url + ("/crew" if username.startswith("crew") else "/board"))


async def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="kuzet-screens-", dir="/tmp"))
    system = System(Settings(home=home, web_port=0, dc09=[Dc09Config(port=0, udp=False)]))
    try:
        await system.start()
        assert system.pool is not None
        creds = {c["username"]: c["password"] for c in await demo.seed(system.pool, home)}
        groups = await on_duty(system.pool, creds)
        url = f"http://127.0.0.1:{system.web_port}"
        port = system.receivers[0].port
        await asyncio.sleep(1.5)  # the receiver's account directory picks the demo accounts up
        for seq, (acc, code, zone) in enumerate([("1001", "BA", "003"), ("1006", "FA", "006"), ("1004", "TA", "001")], 1):
            await send_frame(port, sia_frame(acc, seq, code, zone))

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium(), headless=True, args=CHROMIUM_ARGS)
            desk = await browser.new_context(viewport={"width": 1600, "height": 900}, locale="ru-RU")
            board = await desk.new_page()
            await login(board, url, "operator", creds["operator"])
            await board.get_by_test_id("lang-ru").click()
            row = board.get_by_test_id("alarm-row").filter(has_text="Есентай")
            await expect(row).to_have_count(1, timeout=15000)

            phone = await browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True,
                                              device_scale_factor=2, locale="ru-RU", permissions=["geolocation"],
                                              geolocation={"latitude": 43.2372, "longitude": 76.9302})
            crew = await phone.new_page()
            await login(crew, url, "crew1", creds["crew1"])
            await crew.get_by_test_id("lang-ru").click()
            if "crew2" in creds:  # the second group's phone reports too, so both show a position
                crew2 = await (await browser.new_context(permissions=["geolocation"], geolocation={
                    "latitude": 51.1702, "longitude": 71.4175})).new_page()
                await login(crew2, url, "crew2", creds["crew2"])

            await row.click()
            await row.get_by_test_id("ack-button").click()
            card = board.get_by_test_id("object-card")
            await card.get_by_test_id("dispatch-open").click()
            await expect(card.get_by_test_id("dispatch-suggested")).to_have_attribute("data-group-id", str(groups["crew1"]))
            await card.get_by_test_id("dispatch-send").click()
            job = crew.get_by_test_id("crew-assignment")
            await job.get_by_test_id("crew-step-button").click()
            await expect(job).to_have_attribute("data-status", "accepted")
            await job.get_by_test_id("crew-step-button").click()
            await expect(job).to_have_attribute("data-status", "en-route")
            await phone.set_geolocation({"latitude": ON_THE_WAY[0], "longitude": ON_THE_WAY[1]})
            pos = board.locator(f'[data-testid="group-row"][data-group-id="{groups["crew1"]}"] [data-testid="group-position"]')
            await expect(pos).to_have_attribute("data-lat", str(ON_THE_WAY[0]), timeout=15000)
            await board.wait_for_timeout(1500)  # let the position's age tick a little
            await card.get_by_test_id("dispatch-section").scroll_into_view_if_needed()

            OUT.mkdir(parents=True, exist_ok=True)
            await board.screenshot(path=str(OUT / "board-groups.png"))
            await crew.screenshot(path=str(OUT / "crew-phone.png"))
            await browser.close()
        print(f"wrote {OUT / 'board-groups.png'} and {OUT / 'crew-phone.png'}")
    finally:
        await system.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
