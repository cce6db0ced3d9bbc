"""Store tools (API.md): settings by PATCH, pause with its automatic end, the business day's start.

The app runs on a settable clock (11:00 in Seoul, the stores' default time zone), so a pause can
end and a night can pass within a test.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from harness.httpkit import Api, Tokens, assert_problem, sse
from unit.helpers import SettableClock

JSON = {"Content-Type": "application/json"}


async def patch(
    client: httpx.AsyncClient, store_id: int, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await client.patch(f"/stores/{store_id}", json=body, headers=headers)


async def pause(
    client: httpx.AsyncClient, store_id: int, headers: dict[str, str], minutes: Any
) -> httpx.Response:
    return await client.post(f"/stores/{store_id}/waiting/pause", json={"minutes": minutes}, headers=headers)


# --- settings -------------------------------------------------------------------------------------


async def test_the_store_changes_only_the_settings_it_names(client, store, tokens: Tokens) -> None:
    response = await patch(
        client, store["id"], tokens.store(store["id"]), notifyAtRank=5, maxPostpones=2, dayStartsAt="04:30"
    )

    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["notifyAtRank"], changed["maxPostpones"], changed["dayStartsAt"]) == (5, 2, "04:30")
    assert {k: v for k, v in changed.items() if k not in ("notifyAtRank", "maxPostpones", "dayStartsAt")} == {
        k: v for k, v in store.items() if k not in ("notifyAtRank", "maxPostpones", "dayStartsAt")
    }
    kept = await patch(client, store["id"], tokens.store(store["id"]))  # nothing named: nothing changes
    assert kept.json() == changed


async def test_null_clears_a_setting_or_puts_it_back_to_its_default(
    client, make_store, tokens: Tokens
) -> None:
    store = await make_store(maxQueueSize=30, maxPartySize=4)
    admin = tokens.admin
    await patch(client, store["id"], admin, maxPostpones=3, dayStartsAt="05:00")

    response = await patch(
        client,
        store["id"],
        admin,
        maxQueueSize=None,
        avgServiceMinutes=None,
        notifyAtRank=None,
        maxPartySize=None,
        maxPostpones=None,
        dayStartsAt=None,
    )

    assert response.status_code == 200, response.text
    cleared = response.json()
    assert (cleared["maxQueueSize"], cleared["avgServiceMinutes"], cleared["notifyAtRank"]) == (
        None,
        None,
        None,
    )
    assert (cleared["maxPartySize"], cleared["maxPostpones"], cleared["dayStartsAt"]) == (10, 1, "00:00")
    public = (await client.get(f"/stores/{store['id']}")).json()
    assert (public["estimatedWaitMinutes"], public["estimateSource"]) == (None, None)


@pytest.mark.parametrize(
    "body",
    [
        {"name": None},
        {"name": ""},
        {"notifyAtRank": 0},
        {"notifyAtRank": 101},
        {"maxPostpones": -1},
        {"maxPostpones": 11},
        {"maxPostpones": True},
        {"dayStartsAt": "24:00"},
        {"dayStartsAt": "4:30"},
        {"dayStartsAt": "04:30:00"},
        {"maxPartySize": 0},
        {"colour": "red"},
        {"webhookUrl": "ftp://example.com/hook"},
        {"webhookUrl": "not a url"},
    ],
)
async def test_a_bad_setting_is_a_validation_error_and_changes_nothing(
    client, store, tokens: Tokens, body: dict[str, Any]
) -> None:
    response = await client.patch(f"/stores/{store['id']}", json=body, headers=tokens.admin)

    assert_problem(response, 400, "VALIDATION_ERROR")
    assert (await patch(client, store["id"], tokens.admin)).json() == store


async def test_only_the_stores_own_staff_and_admins_change_its_settings(
    client, make_store, tokens: Tokens
) -> None:
    store, other = await make_store(), await make_store(name="Other")

    assert_problem(await patch(client, store["id"], tokens.customer("c1"), notifyAtRank=2), 403, "FORBIDDEN")
    assert_problem(
        await patch(client, store["id"], tokens.store(other["id"]), notifyAtRank=2), 403, "FORBIDDEN"
    )
    assert_problem(await client.patch(f"/stores/{store['id']}", json={"notifyAtRank": 2}), 401)
    assert_problem(await patch(client, 999_999, tokens.admin, notifyAtRank=2), 404, "STORE_NOT_FOUND")
    assert (await patch(client, store["id"], tokens.store(store["id"]), notifyAtRank=2)).status_code == 200


@pytest.mark.waitline(webhook_allow_insecure=False)
@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/waitline",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://printer.local/hook",
        "https://intranet/hook",
    ],
)
async def test_a_webhook_must_be_https_to_a_public_address(client, store, tokens: Tokens, url: str) -> None:
    response = await patch(client, store["id"], tokens.admin, webhookUrl=url)

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert problem["errors"][0]["field"] == "webhookUrl"


async def test_a_new_webhook_answers_its_secret_once(client, store, tokens: Tokens) -> None:
    staff = tokens.store(store["id"])

    first = (await patch(client, store["id"], staff, webhookUrl="https://hooks.example.com/w")).json()
    again = (await patch(client, store["id"], staff, webhookUrl="https://hooks.example.com/w")).json()
    other = (await patch(client, store["id"], staff, webhookUrl="https://hooks.example.com/v2")).json()
    listed = (await patch(client, store["id"], staff)).json()
    cleared = (await patch(client, store["id"], staff, webhookUrl=None)).json()

    assert first["webhookUrl"] == "https://hooks.example.com/w"
    assert len(first["webhookSecret"]) >= 32
    assert "webhookSecret" not in again  # the same URL: no new secret, and the old one is not shown
    assert other["webhookSecret"] != first["webhookSecret"]  # a new URL gets a new secret
    assert "webhookSecret" not in listed and listed["webhookUrl"] == "https://hooks.example.com/v2"
    assert cleared["webhookUrl"] is None and "webhookSecret" not in cleared


@pytest.mark.waitline(webhook_allow_insecure=True)
async def test_local_webhooks_are_accepted_when_insecure_ones_are_allowed(
    client, store, tokens: Tokens
) -> None:
    response = await patch(client, store["id"], tokens.admin, webhookUrl="http://127.0.0.1:9/hook")

    assert response.status_code == 200, response.text
    assert response.json()["webhookUrl"] == "http://127.0.0.1:9/hook"


# --- pause ----------------------------------------------------------------------------------------


async def test_a_pause_refuses_registrations_until_it_ends_by_itself(
    client, store, api: Api, tokens: Tokens, clock: SettableClock
) -> None:
    response = await pause(client, store["id"], tokens.store(store["id"]), 30)

    assert response.status_code == 200, response.text
    until = datetime.fromisoformat(response.json()["pausedUntil"])
    assert until == clock.now() + timedelta(minutes=30)
    public = (await client.get(f"/stores/{store['id']}")).json()
    assert (public["waitingOpen"], datetime.fromisoformat(public["pausedUntil"])) == (True, until)
    assert_problem(await api.join_v2(store["id"], "a"), 409, "WAITING_PAUSED")
    queued = (await api.join_v3(store["id"], "b")).json()
    outcome = await api.outcome(queued["traceId"], tokens.admin)
    assert (outcome["status"], outcome["reason"]) == ("REJECTED", "WAITING_PAUSED")

    clock.advance(timedelta(minutes=29, seconds=59))
    assert_problem(await api.join_v2(store["id"], "c"), 409, "WAITING_PAUSED")
    clock.advance(timedelta(seconds=1))  # no job ends it: the clock does
    joined = await api.join_v2(store["id"], "d")
    assert joined.status_code == 201, joined.text
    assert joined.json()["number"] == 1  # refusals took no number
    assert "pausedUntil" not in (await client.get(f"/stores/{store['id']}")).json()


async def test_opening_or_closing_ends_a_pause(client, store, api: Api, tokens: Tokens) -> None:
    staff = tokens.store(store["id"])
    await pause(client, store["id"], staff, 60)

    reopened = await client.post(f"/stores/{store['id']}/waiting/open", headers=staff)

    assert reopened.status_code == 200 and "pausedUntil" not in reopened.json()
    assert (await api.join_v2(store["id"], "a")).status_code == 201
    await pause(client, store["id"], staff, 60)
    await client.post(f"/stores/{store['id']}/waiting/close", headers=staff)
    await client.post(f"/stores/{store['id']}/waiting/open", headers=staff)
    assert (await api.join_v2(store["id"], "b")).status_code == 201


async def test_closed_comes_before_paused_and_paused_before_already_waiting(
    client, make_store, api: Api, tokens: Tokens
) -> None:
    store = await make_store(maxQueueSize=1)
    staff = tokens.store(store["id"])
    assert (await api.join_v2(store["id"], "a")).status_code == 201  # the list is full now

    await pause(client, store["id"], staff, 10)
    assert_problem(await api.join_v2(store["id"], "a"), 409, "WAITING_PAUSED")  # not ALREADY_WAITING
    assert_problem(await api.join_v2(store["id"], "b"), 409, "WAITING_PAUSED")  # not QUEUE_FULL
    await client.post(f"/stores/{store['id']}/waiting/close", headers=staff)
    assert_problem(await api.join_v2(store["id"], "a"), 409, "WAITING_CLOSED")


@pytest.mark.parametrize("minutes", [0, 241, -5, 1.5, "10", None, True])
async def test_a_pause_is_1_to_240_minutes(client, store, tokens: Tokens, minutes: Any) -> None:
    assert_problem(await pause(client, store["id"], tokens.admin, minutes), 400, "VALIDATION_ERROR")


async def test_a_closed_list_cannot_be_paused(client, make_store, tokens: Tokens) -> None:
    store = await make_store(waitingOpen=False)

    assert_problem(await pause(client, store["id"], tokens.admin, 10), 409, "WAITING_CLOSED")


async def test_the_store_stream_hears_a_pause_and_a_change_of_settings(client, store, tokens: Tokens) -> None:
    staff = tokens.store(store["id"])
    async with sse(client, f"/stores/{store['id']}/events", staff) as events:
        await events.expect("snapshot")
        await pause(client, store["id"], staff, 15)
        paused = await events.expect("paused")
        await patch(client, store["id"], staff, notifyAtRank=4)
        updated = await events.expect("updated")

    assert "pausedUntil" in paused.data and paused.data["waitingOpen"] is True
    assert updated.data["notifyAtRank"] == 4


# --- the business day -----------------------------------------------------------------------------


async def test_a_store_open_past_midnight_keeps_its_day_until_it_starts_again(
    client, store, api: Api, tokens: Tokens, clock: SettableClock
) -> None:
    await patch(client, store["id"], tokens.admin, dayStartsAt="04:30")
    clock.set(datetime.fromisoformat("2026-03-02T23:30:00+09:00"))
    evening = (await api.join_v2(store["id"], "a")).json()

    clock.set(datetime.fromisoformat("2026-03-03T04:29:00+09:00"))  # past midnight, before 04:30
    night = (await api.join_v2(store["id"], "b")).json()
    clock.set(datetime.fromisoformat("2026-03-03T04:30:00+09:00"))  # a new business day
    morning = (await api.join_v2(store["id"], "c")).json()

    assert (evening["businessDate"], evening["number"]) == ("2026-03-02", 1)
    assert (night["businessDate"], night["number"], night["rank"]) == ("2026-03-02", 2, 2)
    assert (morning["businessDate"], morning["number"], morning["rank"]) == ("2026-03-03", 1, 1)
    again = await api.join_v2(store["id"], "a")  # active means today: yesterday's "a" no longer counts
    assert again.status_code == 201, again.text


# --- estimates from history -----------------------------------------------------------------------


async def test_estimates_follow_the_days_pace_of_calls_once_it_has_one(
    client, store, api: Api, tokens: Tokens, clock: SettableClock
) -> None:
    joined = [(await api.join_v2(store["id"], f"c{i}")).json() for i in range(9)]
    for waiting in joined[:5]:  # five calls, four intervals: not a pace yet
        clock.advance(timedelta(minutes=2))
        await api.act(store["id"], waiting["id"], "call")
    public = (await client.get(f"/stores/{store['id']}")).json()
    assert (public["estimateSource"], public["estimatedWaitMinutes"]) == ("configured", 4 * 5)

    clock.advance(timedelta(minutes=2))
    await api.act(store["id"], joined[5]["id"], "call")  # the fifth interval: 2 minutes each

    public = (await client.get(f"/stores/{store['id']}")).json()
    assert (public["waitingCount"], public["estimateSource"], public["estimatedWaitMinutes"]) == (
        3,
        "history",
        3 * 2,
    )
    last = await client.get(f"/waitings/{joined[8]['id']}", headers=tokens.customer("c8"))
    assert (last.json()["rank"], last.json()["estimatedWaitMinutes"]) == (3, 4)
    newcomer = (await api.join_v2(store["id"], "late")).json()
    assert (newcomer["rank"], newcomer["estimatedWaitMinutes"]) == (4, 6)
    listed = await client.get(f"/stores/{store['id']}/waitings?status=WAITING", headers=tokens.admin)
    assert [w["estimatedWaitMinutes"] for w in listed.json()["items"]] == [0, 2, 4, 6]


# --- postpone -------------------------------------------------------------------------------------


async def postpone_own(
    client: httpx.AsyncClient, waiting_id: int, headers: dict[str, str], places: Any
) -> httpx.Response:
    return await client.post(f"/waitings/{waiting_id}/postpone", json={"places": places}, headers=headers)


async def test_a_customer_steps_back_and_the_queue_follows(client, store, api: Api, tokens: Tokens) -> None:
    joined = [(await api.join_v2(store["id"], f"c{i}")).json() for i in range(1, 6)]

    async with sse(client, f"/waitings/{joined[2]['id']}/events", tokens.customer("c3")) as passed_events:
        await passed_events.expect("snapshot")
        response = await postpone_own(client, joined[1]["id"], tokens.customer("c2"), 2)
        moved_up = await passed_events.expect("rank")

    assert response.status_code == 200, response.text
    moved = response.json()
    assert (moved["number"], moved["rank"], moved["estimatedWaitMinutes"]) == (2, 4, 15)
    assert moved_up.data == {"rank": 2, "estimatedWaitMinutes": 5}
    listed = (await client.get(f"/stores/{store['id']}/waitings", headers=tokens.admin)).json()["items"]
    assert [(w["number"], w["rank"]) for w in listed] == [(1, 1), (3, 2), (4, 3), (2, 4), (5, 5)]
    own = (await client.get(f"/waitings/{joined[4]['id']}", headers=tokens.customer("c5"))).json()
    assert own["rank"] == 5
    # The next registration still goes last, with the next number.
    newcomer = (await api.join_v2(store["id"], "c6")).json()
    assert (newcomer["number"], newcomer["rank"]) == (6, 6)


async def test_calls_and_pages_follow_queue_order_after_a_postpone(
    client, store, api: Api, tokens: Tokens
) -> None:
    joined = [(await api.join_v2(store["id"], f"c{i}")).json() for i in range(1, 5)]
    await postpone_own(client, joined[0]["id"], tokens.customer("c1"), 5)  # to the end

    first_page = (await client.get(f"/stores/{store['id']}/waitings?limit=2", headers=tokens.admin)).json()
    second_page = (
        await client.get(
            f"/stores/{store['id']}/waitings?limit=2&after={first_page['next']}", headers=tokens.admin
        )
    ).json()
    await api.act(store["id"], joined[1]["id"], "call")
    last = (await client.get(f"/waitings/{joined[0]['id']}", headers=tokens.customer("c1"))).json()

    assert [w["number"] for w in first_page["items"] + second_page["items"]] == [2, 3, 4, 1]
    assert second_page["next"] is None
    assert last["rank"] == 3


async def test_a_guest_postpones_through_the_link(client, store, tokens: Tokens) -> None:
    staff = tokens.store(store["id"])
    guest = await client.post(
        f"/v2/app/stores/{store['id']}/waitings",
        json={"name": "김민수", "phoneNumber": "010-1234-5678", "partySize": 2},
        headers=staff,
    )
    await client.post(
        f"/v2/app/stores/{store['id']}/waitings",
        json={"name": "이영희", "phoneNumber": "010-2222-3333", "partySize": 2},
        headers=staff,
    )
    link = guest.json()["statusToken"]

    response = await client.post(f"/guest/waitings/{link}/postpone", json={"places": 1})

    assert response.status_code == 200, response.text
    assert (response.json()["rank"], response.json()["name"]) == (2, "김*수")
    assert "statusToken" not in response.json()
    assert_problem(
        await client.post(f"/guest/waitings/{link}/postpone", json={"places": 1}), 409, "POSTPONE_LIMIT"
    )
    assert_problem(await client.post("/guest/waitings/not-a-token/postpone", json={"places": 1}), 404)


async def test_postpones_are_limited_by_the_store(client, store, api: Api, tokens: Tokens) -> None:
    joined = [(await api.join_v2(store["id"], f"c{i}")).json() for i in range(1, 5)]
    me = tokens.customer("c1")

    assert (await postpone_own(client, joined[0]["id"], me, 1)).status_code == 200
    assert_problem(await postpone_own(client, joined[0]["id"], me, 1), 409, "POSTPONE_LIMIT")
    await patch(client, store["id"], tokens.admin, maxPostpones=0)
    assert_problem(
        await postpone_own(client, joined[1]["id"], tokens.customer("c2"), 1), 409, "POSTPONE_LIMIT"
    )


async def test_only_a_waiting_customer_postpones_their_own(client, store, api: Api, tokens: Tokens) -> None:
    mine = (await api.join_v2(store["id"], "c1")).json()
    await api.join_v2(store["id"], "c2")

    assert_problem(await postpone_own(client, mine["id"], tokens.customer("c2"), 1), 404)
    assert_problem(await postpone_own(client, mine["id"], tokens.store(store["id"]), 1), 403)
    for places in (0, 6, "1", None):
        assert_problem(
            await postpone_own(client, mine["id"], tokens.customer("c1"), places), 400, "VALIDATION_ERROR"
        )
    await api.act(store["id"], mine["id"], "call")
    assert_problem(
        await postpone_own(client, mine["id"], tokens.customer("c1"), 1), 409, "INVALID_TRANSITION"
    )
