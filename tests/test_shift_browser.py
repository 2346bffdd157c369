"""A shift in two real Chromium windows against the whole running system: operator 1 takes an alarm,
operator 2 sees who handles it and is warned before taking it over; a short hold comes back by
itself; the checklist gates closing; the history page finds the alarm by object and time range,
shows its whole timeline and exports a CSV with the same rows as the JSON; the offline map draws
the objects without asking any outside host. Screenshots of the board, the object card and the
history page land in test-artifacts/ (copied to docs/screenshots/ for the README).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from playwright.async_api import Browser, BrowserContext, Page, expect

from console import user
from tests.test_board_browser import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    PASSWORD,
    Post,
    browser,
    post,
    row_of,
    send_alarm,
    watch_errors,
)
from tests.util import sia_frame

INSTRUCTIONS = ("1. Позвонить ответственному лицу по порядку\n"
                "2. Спросить пароль\n"
                "3. При отсутствии ответа направить ГБР")


async def login(chromium: Browser, url: str, username: str, password: str,
                outside: list[str]) -> tuple[BrowserContext, Page]:
    context = await chromium.new_context(viewport={"width": 1600, "height": 900}, locale="ru-RU",
                                         accept_downloads=True)
    page = await context.new_page()
    # every request the page makes: nothing may go to another host
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(
        (url, url.replace("http://", "ws://"), "data:")) else None)
    await page.goto(url + "/login?next=/board")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(url + "/board")
    await expect(page.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "online")
    return context, page


async def test_two_operators_take_over_hold_checklist_history_and_map(post: Post, browser: Browser) -> None:  # noqa: F811
    pool = post.system.pool
    assert pool is not None
    await user.create(pool, "operator2", PASSWORD, "operator", full_name="Второй оператор", lang="ru")
    await pool.execute("UPDATE guarded_objects SET instructions = $1 WHERE name LIKE '%Есентай%'", INSTRUCTIONS)
    object_id = await pool.fetchval("SELECT id FROM guarded_objects WHERE name LIKE '%Есентай%'")
    outside: list[str] = []
    ctx1, one = await login(browser, post.url, "operator", PASSWORD, outside)
    ctx2, two = await login(browser, post.url, "operator2", PASSWORD, outside)
    errors1, errors2 = watch_errors(one), watch_errors(two)
    started = datetime.now(UTC)

    await send_alarm(post.dc09_port, sia_frame("1234", 41, "BA", "003"))
    row1, row2 = row_of(one, "Есентай"), row_of(two, "Есентай")
    await expect(row1).to_have_count(1)
    await expect(row2).to_have_count(1)
    alarm_id = int(await row1.get_attribute("data-alarm-id") or 0)
    await expect(row1.get_by_test_id("alarm-wait")).to_have_text(re.compile(r"^\d+:\d\d$"))  # the waiting time ticks

    # operator 1 acknowledges, and so takes it; operator 2 sees who handles it
    await row1.click()
    await row1.get_by_test_id("ack-button").click()
    await expect(row1).to_have_attribute("data-handled-by", "operator")
    await expect(row2).to_have_attribute("data-handled-by", "operator")
    await expect(row2.get_by_test_id("alarm-handler")).to_have_text("Дежурный оператор")

    # operator 2 tries to take it: warned first; saying no changes nothing
    await row2.click()
    await expect(two.get_by_test_id("card-handler")).to_contain_text("Дежурный оператор")
    await two.get_by_test_id("card-take-button").click()
    await expect(two.get_by_test_id("takeover-dialog")).to_be_visible()
    await expect(two.get_by_test_id("takeover-text")).to_have_text("Эту тревогу обрабатывает Дежурный оператор — перехватить?")
    await two.get_by_test_id("takeover-cancel").click()
    await expect(two.get_by_test_id("takeover-dialog")).to_be_hidden()
    assert await pool.fetchval("SELECT handled_by FROM alarms WHERE id = $1", alarm_id) == post.operator_id
    # ... and saying yes takes it over, which operator 1 sees at once
    await two.get_by_test_id("card-take-button").click()
    await two.get_by_test_id("takeover-confirm").click()
    await expect(row1).to_have_attribute("data-handled-by", "operator2")
    await expect(row2).to_have_attribute("data-handled-by", "operator2")

    # a call made, from the card (keyboard: l)
    await two.keyboard.press("l")
    await expect(two.get_by_test_id("call-dialog")).to_be_visible()
    await expect(two.get_by_test_id("call-who")).to_have_value("Айгүл Серікқызы")
    await two.get_by_test_id("call-answer").select_option("answered")
    await two.get_by_test_id("call-password").select_option("yes")
    await two.get_by_test_id("call-confirm").click()
    await expect(two.get_by_test_id("card-history")).to_contain_text("Айгүл Серікқызы")

    # a short hold (3 s): the row goes down, then comes back by itself
    await two.get_by_test_id("card-hold-button").click()
    await two.get_by_test_id("hold-reason").fill("ждём перезвона ответственного")
    await two.get_by_test_id("hold-minutes").fill("0.05")
    await two.get_by_test_id("hold-confirm").click()
    await expect(row1).to_have_attribute("data-held", "true")
    await expect(row1.get_by_test_id("hold-marker")).to_be_visible()
    await expect(row1).to_have_attribute("data-held", "false", timeout=20_000)
    await expect(row1.get_by_test_id("recalled-marker")).to_be_visible(timeout=20_000)
    assert await pool.fetchval("SELECT count(*) FROM alarm_events WHERE alarm_id = $1 AND kind = 'hold-expired'",
                               alarm_id) == 1

    # the checklist gates closing: refused with the open items, then closed with one ticked and a reason
    await expect(two.get_by_test_id("checklist-item")).to_have_count(3)
    await two.get_by_test_id("checklist-item").nth(0).check()
    await expect(two.get_by_test_id("checklist-progress")).to_have_text("1/3")
    await two.keyboard.press("c")
    await expect(two.get_by_test_id("close-dialog")).to_be_visible()
    await two.get_by_test_id("outcome-select").select_option("false-alarm")
    await two.get_by_test_id("close-checklist-reason").fill("")
    await two.get_by_test_id("close-confirm").click()
    await expect(two.get_by_test_id("close-error")).to_have_text("Чек-лист не выполнен")
    await expect(two.get_by_test_id("close-checklist-items")).to_contain_text("Спросить пароль")
    assert await pool.fetchval("SELECT state FROM alarms WHERE id = $1", alarm_id) == "acknowledged"
    await two.get_by_test_id("close-checklist-reason").fill("ответственный на месте, ГБР не нужна")
    await two.get_by_test_id("close-confirm").click()
    await expect(two.get_by_test_id("close-dialog")).to_be_hidden()
    await expect(row1).to_have_count(0)
    assert await pool.fetchval("SELECT closed_by FROM alarms WHERE id = $1", alarm_id) != post.operator_id

    # keyboard help is on the page
    await one.keyboard.press("?")
    await expect(one.get_by_test_id("help-dialog")).to_contain_text("j / ↓")
    await one.keyboard.press("Escape")

    # a busy board for the screenshots; the map draws every object offline
    for seq, (acc, code, zone) in enumerate([("2345", "FA", "006"), ("5678", "PA", "005"), ("3456", "BA", "001"),
                                             ("4567", "AT", "000"), ("1234", "BA", "002"), ("1234", "BA", "004")]):
        await send_alarm(post.dc09_port, sia_frame(acc, 50 + seq, code, zone))
    await expect(one.get_by_test_id("alarm-row")).to_have_count(5)
    folded = row_of(one, "Есентай")
    await expect(folded.get_by_test_id("alarm-count")).to_contain_text("×2")  # a flood folds into one row
    await expect(folded.get_by_test_id("alarm-last-signal")).to_be_visible()
    await expect(one.get_by_test_id("alarm-count").first).to_be_visible()
    await expect(one.get_by_test_id("map-object")).to_have_count(5)
    await expect(one.get_by_test_id("map-outline")).to_have_count(1)
    await row_of(one, "аптека").get_by_test_id("ack-button").click()
    await folded.click()
    await expect(one.get_by_test_id("checklist-item")).to_have_count(3)
    await expect(one.get_by_test_id("shift-acked")).not_to_contain_text(": 0 ")  # live shift figures
    ARTIFACTS.mkdir(exist_ok=True)
    await one.screenshot(path=str(ARTIFACTS / "shift-board.png"))
    await folded.get_by_test_id("ack-button").click()  # the card of an alarm in handling, for its screenshot
    await expect(one.get_by_test_id("card-release-button")).to_be_visible()
    await one.set_viewport_size({"width": 1600, "height": 2000})
    await expect(one.get_by_test_id("card-contacts")).to_be_visible()
    await one.get_by_test_id("object-card").screenshot(path=str(ARTIFACTS / "object-card.png"))
    await one.set_viewport_size({"width": 1600, "height": 900})
    await expect(one.get_by_test_id("map-scale")).to_contain_text("km")  # the whole country
    await one.get_by_test_id("card-map-button").click()  # zooms the offline map to the object
    await expect(one.get_by_test_id("map-scale")).to_contain_text(re.compile(r"^\d+ m$"))

    # history: find the closed alarm by object and time range, open its timeline, export the CSV
    await one.get_by_test_id("history-link").click()
    await one.wait_for_url(post.url + "/history")
    await one.get_by_test_id("filter-object_id").select_option(str(object_id))
    await one.get_by_test_id("search-button").click()
    hist_row = one.locator(f'[data-testid="history-row"][data-id="{alarm_id}"]')
    await expect(hist_row).to_have_count(1)
    await hist_row.click()
    timeline = one.get_by_test_id("timeline")
    for kind in ("opened", "acknowledged", "taken-over", "call", "hold", "hold-expired", "check",
                 "checklist-skipped", "closed"):
        await expect(timeline.locator(f'li[data-kind="{kind}"]')).to_have_count(1)
    await one.screenshot(path=str(ARTIFACTS / "history.png"))

    async with one.expect_download() as info:
        await one.get_by_test_id("export-csv").click()
    download = await info.value
    text = Path(await download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    href = await one.get_by_test_id("export-csv").get_attribute("href") or ""
    params = dict(p.split("=", 1) for p in href.split("?", 1)[1].split("&"))
    assert "from" in params and params["object_id"] == str(object_id)
    json_rows = await (await one.request.get(post.url + href.replace("format=csv", "format=json").replace("limit=100000", "limit=1000"))).json()
    assert [int(r["id"]) for r in rows] == [a["id"] for a in json_rows]
    assert alarm_id in [a["id"] for a in json_rows]
    assert {r["object_name"] for r in rows} == {"Алматы, ТРЦ «Есентай»"}

    # the same search by an explicit time range through the API: in range found, out of range not
    q = {"object_id": object_id, "from": (started - timedelta(minutes=1)).isoformat(),
         "to": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
    found = await (await one.request.get(f"{post.url}/api/alarms?{urlencode(q)}")).json()
    assert alarm_id in [a["id"] for a in found]
    q["to"] = (started - timedelta(seconds=30)).isoformat()
    assert await (await one.request.get(f"{post.url}/api/alarms?{urlencode(q)}")).json() == []

    # the shift report tab
    await one.get_by_test_id("tab-shift").click()
    await expect(one.get_by_test_id("shift-row").filter(has_text="operator2")).to_have_count(1)

    # a storm: 1,050 more open alarms than the board's snapshot holds; the counters are true counts
    await pool.execute(
        "INSERT INTO alarms (account, kind, klass, priority, title) SELECT 'S' || g, 'signal', 'alarm', 2,"
        " '{\"kk\": \"Дабыл\", \"ru\": \"Тревога\", \"en\": \"Alarm\"}' FROM generate_series(1, 1050) g")
    open_total = await pool.fetchval("SELECT count(*) FROM alarms WHERE state <> 'closed'")
    open_p2 = await pool.fetchval("SELECT count(*) FROM alarms WHERE state <> 'closed' AND priority = 2")
    await one.goto(post.url + "/board")
    counter = one.locator("#alarm-count")
    await expect(counter).to_have_attribute("data-open", str(open_total))
    await expect(counter).to_have_attribute("data-shown", "300")  # rows in the page: the most urgent
    await expect(counter).to_contain_text(f"{open_total} открыто")
    await expect(one.get_by_test_id("counter-p2")).to_have_text(f"P2 {open_p2}")
    assert await one.get_by_test_id("alarm-row").count() == 300
    assert await one.get_by_test_id("alarm-row").first.get_attribute("data-priority") == "1"

    assert not outside, outside
    errors = errors1 + errors2
    # 409s are the refusals asserted above
    assert not [e for e in errors if not re.search(r"status of (401|409)", e)], errors
    await ctx1.close()
    await ctx2.close()
