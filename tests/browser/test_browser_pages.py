"""The tablet and guest pages in a real browser, against a real server: what a store's staff and
their guests see and do, live, without reloading."""

from __future__ import annotations

import re
import time
from typing import Any

import jwt
from playwright.sync_api import Page, expect

from harness.browser import Server, Shop
from harness.httpkit import SECRET
from harness.tcp_proxy import CuttableProxy

# Pause and postpone (and the day's stats) belong to the store tools: the pages show them only
# where the server offers them, so these tests check whichever is the case.
PAUSE = ("POST", "/stores/{storeId}/waiting/pause")
STATS = ("GET", "/stores/{storeId}/stats")
POSTPONE = ("POST", "/guest/waitings/{statusToken}/postpone")


def open_tablet(tablet: Any, link: str) -> Page:
    page: Page = tablet.new_page()
    page.goto(link)
    expect(page.locator("#store-state")).to_be_visible()
    return page


def register(page: Page, name: str, phone: str, party: int) -> None:
    page.fill("#guest-name", name)
    page.fill("#guest-phone", phone)
    page.fill("#guest-party", str(party))
    page.click("#register-submit")


def registered_link(page: Page, number: int) -> str:
    expect(page.locator("#registered-number")).to_have_attribute("data-number", str(number))
    return page.locator("#guest-link").inner_text()


def row(page: Page, number: int) -> Any:
    return page.locator(f"#rows tr[data-number='{number}']")


def open_guest(phone: Any, link: str) -> Page:
    page: Page = phone.new_page()
    page.goto(link)
    expect(page.locator("#card")).to_be_visible()
    page.evaluate("window.sameDocument = true")  # gone if the page ever reloads
    return page


def test_a_guest_registered_at_the_tablet_follows_their_place_live(
    server: Server, shop: Shop, tablet: Any, phone: Any, screenshot: Any
) -> None:
    store = shop.store()
    link = shop.tablet_link(store["id"])
    assert link.startswith(f"{server.base}/tablet#token=")
    staff = open_tablet(tablet, link)
    expect(staff.locator("#store-state")).to_have_attribute("data-state", "open")
    expect(staff.locator("#store-name")).to_have_text(store["name"])

    register(staff, "김민수", "010-1234-5678", 3)
    first = registered_link(staff, 1)
    assert re.fullmatch(rf"{re.escape(server.base)}/w/[A-Za-z0-9_-]{{22,}}", first)
    qr = staff.locator("#qr svg")
    expect(qr).to_have_attribute("aria-label", first)
    modules = int(qr.get_attribute("data-modules") or 0)
    assert modules >= 21 and (modules - 17) % 4 == 0  # a QR code's size: version 1 and up
    register(staff, "Alice Kim", "010 2222 3333", 2)
    second = registered_link(staff, 2)
    expect(staff.locator("#rows tr")).to_have_count(2)
    expect(row(staff, 1)).to_contain_text("010-1234-5678")

    called = open_guest(phone, first)
    waiting = open_guest(phone, second)
    expect(called.locator("#status")).to_have_attribute("data-status", "WAITING")
    expect(called.locator("#number")).to_have_text("1")
    expect(called.locator("#name")).to_have_text("김*수")
    expect(called.locator("#store-name")).to_have_text(store["name"])
    expect(waiting.locator("#rank")).to_have_text("2번째")
    expect(waiting.locator("#estimate")).to_have_text("약 5분")

    row(staff, 1).locator(".act-call").click()

    expect(called.locator("#status")).to_have_attribute("data-status", "CALLED")
    expect(called.locator("#status")).to_have_text("입장 차례입니다! 매장 입구로 와 주세요.")
    expect(waiting.locator("#rank")).to_have_text("1번째")  # moved up as number 1 left the line
    expect(row(staff, 1)).to_have_attribute("data-status", "CALLED")
    assert called.evaluate("window.sameDocument") is True, "the guest page was reloaded"
    if shop.offers(*STATS):  # read again after the list changed
        expect(staff.locator("#stats .tile[data-key='registrations'] strong")).to_have_text("2")
        expect(staff.locator("#stats .tile[data-key='waitToCall.calls'] strong")).to_have_text("1")
    screenshot(staff, "tablet")
    screenshot(waiting, "guest")
    screenshot(called, "guest-called")

    waiting.click("#cancel")
    waiting.click("#cancel-yes")

    expect(waiting.locator("#status")).to_have_attribute("data-status", "CANCELLED")
    expect(waiting.locator("#cancel")).to_be_hidden()
    expect(row(staff, 2)).to_have_count(0)
    expect(staff.locator("#done-rows tr[data-number='2']")).to_have_attribute("data-status", "CANCELLED")
    expect(staff.locator("#counts")).to_have_text("0 waiting · 1 called")
    assert waiting.evaluate("window.sameDocument") is True


def test_the_staff_seat_and_mark_no_shows_with_a_second_tap(shop: Shop, tablet: Any) -> None:
    store = shop.store()
    for name, phone in [("Seo", "010-3000-0001"), ("Kang", "010-3000-0002")]:
        shop.join(store["id"], name, phone)
    staff = open_tablet(tablet, shop.tablet_link(store["id"]))
    expect(staff.locator("#rows tr")).to_have_count(2)

    row(staff, 1).locator(".act-call").click()
    row(staff, 1).locator(".act-seat").click()
    row(staff, 2).locator(".act-call").click()
    row(staff, 2).locator(".act-no_show").click()
    expect(row(staff, 2).locator(".act-no_show")).to_have_text("Tap again")
    expect(row(staff, 2)).to_have_attribute("data-status", "CALLED")  # one tap changes nothing
    row(staff, 2).locator(".act-no_show").click()

    expect(staff.locator("#rows tr")).to_have_count(0)
    expect(staff.locator("#empty")).to_be_visible()
    expect(staff.locator("#done-summary")).to_have_text("2 done (seated 1 · cancelled 0 · no-show 1)")
    expect(staff.locator("#done-rows tr[data-number='1']")).to_have_attribute("data-status", "SEATED")
    expect(staff.locator("#done-rows tr[data-number='2']")).to_have_attribute("data-status", "NO_SHOW")


def test_a_closed_list_and_a_full_list_are_said_in_words(shop: Shop, tablet: Any) -> None:
    store = shop.store(waitingOpen=False, maxQueueSize=1)
    staff = open_tablet(tablet, shop.tablet_link(store["id"]))

    expect(staff.locator("#store-state")).to_have_attribute("data-state", "closed")
    expect(staff.locator("#register-notice")).to_have_text("The list is closed: open it to register guests.")
    expect(staff.locator("#register-submit")).to_be_disabled()

    staff.click("#open")
    expect(staff.locator("#store-state")).to_have_attribute("data-state", "open")
    expect(staff.locator("#register-notice")).to_be_hidden()
    register(staff, "Park", "010-5555-0001", 2)
    registered_link(staff, 1)
    register(staff, "Choi", "010-5555-0002", 2)
    expect(staff.locator("#register-message")).to_have_text(
        "The list is full: no more registrations for now."
    )
    register(staff, "Park again", "010-5555-0001", 2)
    expect(staff.locator("#register-message")).to_have_text("This mobile number is already waiting today.")
    register(staff, "Lee", "12345", 2)
    expect(staff.locator("#register-message")).to_contain_text("Please check the form. Mobile number:")

    staff.click("#close")
    expect(staff.locator("#store-state")).to_have_attribute("data-state", "closed")
    expect(staff.locator("#register-notice")).to_be_visible()


def test_pause_stats_and_postpone_show_only_where_the_server_offers_them(
    shop: Shop, tablet: Any, phone: Any
) -> None:
    store = shop.store()
    ahead = shop.join(store["id"], "Han", "010-7000-0001")
    shop.join(store["id"], "Yoon", "010-7000-0002")
    staff = open_tablet(tablet, shop.tablet_link(store["id"]))
    guest = open_guest(phone, f"{shop.server.base}/w/{ahead['statusToken']}")
    expect(staff.locator("#rows tr")).to_have_count(2)

    if shop.offers(*STATS):
        expect(staff.locator("#stats-box")).to_be_visible()
        expect(staff.locator("#stats .tile").first).to_be_visible()
    else:
        expect(staff.locator("#stats-box")).to_be_hidden()

    if shop.offers(*PAUSE):
        staff.select_option("#pause-minutes", "30")
        staff.click("#pause")
        expect(staff.locator("#store-state")).to_have_attribute("data-state", "paused")
        expect(staff.locator("#register-notice")).to_contain_text("Registrations are paused until")
        expect(staff.locator("#register-submit")).to_be_disabled()
        staff.click("#open")  # opening ends a pause
        expect(staff.locator("#store-state")).to_have_attribute("data-state", "open")
    else:
        expect(staff.locator("#pause-box")).to_be_hidden()

    expect(guest.locator("#rank")).to_have_text("1번째")
    if shop.offers(*POSTPONE):
        guest.select_option("#postpone-places", "1")
        guest.click("#postpone")
        expect(guest.locator("#rank")).to_have_text("2번째")
        expect(staff.locator("#rows tr").first).to_have_attribute("data-number", "2")  # the line follows
    else:
        expect(guest.locator("#postpone-box")).to_be_hidden()


# The day's stats in the shape GET /stores/{storeId}/stats answers, for a server without it.
DAY_STATS = {
    "storeId": 1,
    "businessDate": "2026-11-26",
    "dayOver": False,
    "registrations": {"total": 8, "user": 5, "app": 3},
    "seated": 4,
    "cancelled": {"total": 2, "byCustomer": 1, "byStore": 1},
    "noShows": 1,
    "leftOpen": 1,
    "noShowRate": 0.2,
    "waitToCall": {"calls": 5, "p50Minutes": 12.0, "p90Minutes": 31.5},
    "registrationsPer15Minutes": [
        {"start": f"2026-11-26T11:{minute:02d}:00+09:00", "count": count}
        for minute, count in zip((0, 15, 30, 45), (1, 4, 2, 1), strict=True)
    ],
}


def test_the_days_stats_are_a_chart_where_the_server_offers_them(shop: Shop, tablet: Any) -> None:
    store = shop.store()
    shop.join(store["id"], "Jung", "010-9000-0001")
    staff: Page = tablet.new_page()
    faked = not shop.offers(*STATS)
    if faked:
        document = shop.http.get("/schema/openapi.json").json()
        document["paths"][STATS[1]] = {"get": {}}
        staff.route("**/schema/openapi.json", lambda route: route.fulfill(json=document))
        staff.route(f"**/stores/{store['id']}/stats", lambda route: route.fulfill(json=DAY_STATS))

    staff.goto(shop.tablet_link(store["id"]))

    expect(staff.locator("#stats-box")).to_be_visible()
    tile = staff.locator("#stats .tile[data-key='registrations']")
    expect(tile.locator("strong")).to_have_text("8" if faked else "1")
    expect(tile.locator("small")).to_have_text("app 5 · tablet 3" if faked else "app 0 · tablet 1")
    expect(staff.locator("#stats .tile[data-key='storeId']")).to_have_count(0)
    expect(staff.locator("#stats svg.chart rect")).to_have_count(4 if faked else 1)
    if faked:
        expect(staff.locator("#stats .tile[data-key='noShowRate'] strong")).to_have_text("20%")
        expect(staff.locator("#stats .tile[data-key='waitToCall.p90Minutes'] strong")).to_have_text("31.5")
        expect(staff.locator("#stats svg.chart text").first).to_have_text("11:00")


def test_a_bad_link_is_said_in_words(server: Server, shop: Shop, tablet: Any, phone: Any) -> None:
    store = shop.store()

    def tablet_at(url: str) -> Page:
        page: Page = tablet.new_page()  # a new fragment alone would not load the page again
        page.goto(url)
        return page

    def refused(page: Page) -> Any:
        return page.locator("#refused")

    expect(refused(tablet_at(f"{server.base}/tablet"))).to_contain_text(
        "Open this page with the store's link"
    )

    claims = {"role": "store", "sub": "t", "storeId": store["id"], "exp": int(time.time()) - 60}
    page = tablet_at(f"{server.base}/tablet#token={jwt.encode(claims, SECRET)}")
    expect(refused(page)).to_have_attribute("data-reason", "error.expired")
    expect(refused(page)).to_have_text("This tablet's sign-in has expired. Open a new link to go on.")

    claims["exp"] = int(time.time()) + 600
    forged = jwt.encode(claims, "not the server's secret, and long enough for HS256")
    expect(refused(tablet_at(f"{server.base}/tablet#token={forged}"))).to_have_attribute(
        "data-reason", "error.badToken"
    )
    expect(refused(tablet_at(shop.tablet_link(999_999)))).to_have_attribute(
        "data-reason", "error.storeMissing"
    )

    # A sign-in that runs out while the tablet is in use says so, without waiting for a tap.
    page = tablet_at(shop.tablet_link(store["id"], "--ttl", "3"))
    expect(page.locator("#store-state")).to_be_visible()
    expect(refused(page)).to_have_attribute("data-reason", "error.expired")
    expect(page.locator("#work")).to_be_hidden()

    guest: Page = phone.new_page()
    guest.goto(f"{server.base}/w/no-such-token")
    expect(refused(guest)).to_have_text("유효하지 않은 링크입니다. 링크가 잘못되었거나 만료되었습니다.")
    expect(guest.locator("#card")).to_be_hidden()
    guest.click("#lang")
    expect(refused(guest)).to_have_text("This link is not valid: it is mistyped or has expired.")


# Read by the pages' own reader (live.js), fed a few bytes at a time: line ends (CRLF, LF, CR)
# and Korean letters cut between chunks, comments, a final CR, an event left without its blank line.
STREAM = (
    'retry: 3000\r\n\r\nid: 7\r\nevent: snapshot\r\ndata: {"name":"김민수"}\r\n\r\n'
    ': keep-alive\r\n\r\nid: 8\nevent: called\ndata: {"a":1}\n\ndata: x\rdata: y\r\rdata: lost\n'
)
READ = """async ([text, size]) => {
  const { readEvents } = await import("/static/live.js");
  const bytes = new TextEncoder().encode(text);
  const body = new ReadableStream({
    start(controller) {
      for (let i = 0; i < bytes.length; i += size) controller.enqueue(bytes.slice(i, i + size));
      controller.close();
    },
  });
  const seen = { events: [], ids: [], retries: [] };
  await readEvents(body, (e) => seen.events.push(e), (r) => seen.retries.push(r), (i) => seen.ids.push(i));
  return seen;
}"""


def test_the_pages_read_server_sent_events_as_a_browser_would(server: Server, phone: Any) -> None:
    page: Page = phone.new_page()
    page.goto(f"{server.base}/w/any")
    for size in (1, 2, 3, 7, 4096):
        seen = page.evaluate(READ, [STREAM, size])
        assert seen == {
            "events": [
                {"type": "snapshot", "data": '{"name":"김민수"}'},
                {"type": "called", "data": '{"a":1}'},
                {"type": "message", "data": "x\ny"},
            ],
            "ids": ["7", "8"],
            "retries": [3000],
        }, size


def test_a_dropped_connection_catches_up_with_last_event_id(
    server: Server, shop: Shop, tablet: Any, phone: Any
) -> None:
    store = shop.store()
    first = shop.join(store["id"], "김민수", "010-8000-0001")
    with CuttableProxy(server.port).running() as proxy:
        base = f"http://127.0.0.1:{proxy.port}"
        staff = open_tablet(tablet, shop.tablet_link(store["id"], "--base-url", base))
        guest = open_guest(phone, f"{base}/w/{first['statusToken']}")
        expect(staff.locator("#rows tr")).to_have_count(1)
        expect(guest.locator("#status")).to_have_attribute("data-status", "WAITING")
        staff.evaluate("window.sameDocument = true")

        # The streams drop, and stay away while the list moves on without them.
        proxy.refuse()
        proxy.cut()
        expect(staff.locator("#banner")).to_have_text("Connection lost. Reconnecting…")
        expect(guest.locator("#banner")).to_have_text("연결이 끊겼습니다. 다시 연결하는 중…")
        since = len(proxy.connections)
        second = shop.join(store["id"], "Alice Kim", "010-8000-0002")
        shop.move(store["id"], first["id"], "call")
        proxy.admit()

        expect(row(staff, 2)).to_have_attribute("data-status", "WAITING")
        expect(row(staff, 1)).to_have_attribute("data-status", "CALLED")
        expect(guest.locator("#status")).to_have_attribute("data-status", "CALLED")
        expect(staff.locator("#banner")).to_be_hidden()
        assert staff.evaluate("window.sameDocument") is True
        assert guest.evaluate("window.sameDocument") is True

        # Each came back with the id of the last event it had, and was sent what it missed
        # rather than a fresh snapshot.
        back = proxy.connections[since:]
        store_stream = _stream(back, f"GET /stores/{store['id']}/events")
        assert re.search(rb"(?i)\r\nlast-event-id: \d+\r\n", store_stream.sent), store_stream.sent
        assert b"event: registered" in store_stream.answered
        assert f'"id":{second["id"]}'.encode() in store_stream.answered
        assert b"event: snapshot" not in store_stream.answered
        guest_stream = _stream(back, f"GET /guest/waitings/{first['statusToken']}/events")
        assert re.search(rb"(?i)\r\nlast-event-id: \d+\r\n", guest_stream.sent)
        assert b"event: called" in guest_stream.answered
        assert b"event: snapshot" not in guest_stream.answered


def _stream(connections: list[Any], request: str) -> Any:
    found = [c for c in connections if request.encode() in c.sent]
    assert found, f"no {request} after the cut"
    return found[-1]
