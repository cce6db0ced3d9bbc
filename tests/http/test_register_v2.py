"""V2 registration: decided at once under the store's lock, answered 201 with the Waiting."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from harness.httpkit import Api, assert_problem, assert_waiting


async def test_a_customer_joins_and_gets_number_one(store, api: Api):
    response = await api.join_v2(store["id"], "42", party_size=3)

    assert response.status_code == 201
    waiting = assert_waiting(
        response.json(),
        storeId=store["id"],
        number=1,
        channel="USER",
        status="WAITING",
        partySize=3,
        rank=1,
        estimatedWaitMinutes=0,
        userId="42",
    )
    # A customer's own view carries no guest data and no status token.
    assert not {"name", "phoneNumber", "statusToken"} & set(waiting)


async def test_business_date_is_the_stores_local_day(make_store, api: Api):
    # Pacific/Kiritimati is UTC+14: on most UTC instants its date differs from UTC's.
    store = await make_store(timeZone="Pacific/Kiritimati")
    waiting = (await api.join_v2(store["id"], "a")).json()
    created = datetime.fromisoformat(waiting["createdAt"])
    assert waiting["businessDate"] == created.astimezone(ZoneInfo("Pacific/Kiritimati")).date().isoformat()


async def test_numbers_follow_arrival_and_ranks_and_estimates_follow_numbers(store, api: Api):
    answers = [(await api.join_v2(store["id"], f"c{i}")).json() for i in range(5)]

    assert [w["number"] for w in answers] == [1, 2, 3, 4, 5]
    assert [w["rank"] for w in answers] == [1, 2, 3, 4, 5]
    assert [w["estimatedWaitMinutes"] for w in answers] == [0, 5, 10, 15, 20]
    assert len({w["id"] for w in answers}) == 5


async def test_estimate_is_null_without_a_service_time(make_store, api: Api):
    store = await make_store(avgServiceMinutes=None)
    waiting = (await api.join_v2(store["id"], "a")).json()
    assert waiting["rank"] == 1
    assert waiting["estimatedWaitMinutes"] is None


async def test_stores_count_independently(make_store, api: Api):
    first, second = await make_store(name="A"), await make_store(name="B")
    await api.join_v2(first["id"], "a")
    await api.join_v2(first["id"], "b")

    # The same customer may wait at two stores at once; each store starts at 1.
    response = await api.join_v2(second["id"], "a")

    assert response.status_code == 201
    assert response.json()["number"] == 1


async def test_the_tablet_registers_a_guest_and_gets_a_status_token(store, api: Api):
    response = await api.join_app_v2(store["id"], name="  김민수 ", phone="010-1234-5678", party_size=4)

    assert response.status_code == 201
    waiting = assert_waiting(
        response.json(), channel="APP", number=1, partySize=4, name="김민수", phoneNumber="+821012345678"
    )
    assert "userId" not in waiting
    # Random and unguessable: at least 128 bits, URL-safe so it fits in a link.
    token = waiting["statusToken"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", token)


async def test_status_tokens_differ_per_waiting(store, api: Api):
    first = (await api.join_app_v2(store["id"], phone="010-1111-2222")).json()
    second = (await api.join_app_v2(store["id"], phone="010-3333-4444")).json()
    assert first["statusToken"] != second["statusToken"]


@pytest.mark.parametrize("spelling", ["01012345678", "+82 10-1234-5678", "+821012345678", "010 1234 5678"])
async def test_one_phone_number_however_spelled_is_one_guest(store, api: Api, spelling):
    assert (await api.join_app_v2(store["id"], phone="010-1234-5678")).status_code == 201

    response = await api.join_app_v2(store["id"], name="Someone Else", phone=spelling)

    assert_problem(response, 409, "ALREADY_WAITING")


async def test_a_customer_holds_one_active_waiting_per_store(store, api: Api):
    assert (await api.join_v2(store["id"], "a")).status_code == 201
    assert_problem(await api.join_v2(store["id"], "a"), 409, "ALREADY_WAITING")


async def test_a_called_customer_is_still_active(store, api: Api):
    waiting = (await api.join_v2(store["id"], "a")).json()
    await api.act(store["id"], waiting["id"], "call")
    assert_problem(await api.join_v2(store["id"], "a"), 409, "ALREADY_WAITING")


@pytest.mark.parametrize("ending", [["cancel"], ["call", "seat"], ["call", "no-show"]])
async def test_after_leaving_the_list_a_customer_joins_again_with_a_new_number(store, api: Api, ending):
    first = (await api.join_v2(store["id"], "a")).json()
    await api.join_v2(store["id"], "b")
    for action in ending:
        assert (await api.act(store["id"], first["id"], action)).status_code == 200

    again = await api.join_v2(store["id"], "a")

    assert again.status_code == 201
    assert again.json()["number"] == 3  # numbers are never reused within a day
    assert again.json()["id"] != first["id"]


async def test_a_closed_list_refuses(make_store, api: Api):
    store = await make_store(waitingOpen=False)
    assert_problem(await api.join_v2(store["id"], "a"), 409, "WAITING_CLOSED")
    assert_problem(await api.join_app_v2(store["id"]), 409, "WAITING_CLOSED")


async def test_a_full_list_refuses_and_frees_up_when_someone_leaves(make_store, api: Api):
    store = await make_store(maxQueueSize=2)
    first = (await api.join_v2(store["id"], "a")).json()
    await api.join_v2(store["id"], "b")

    assert_problem(await api.join_v2(store["id"], "c"), 409, "QUEUE_FULL")

    await api.act(store["id"], first["id"], "call")  # CALLED still counts as active
    assert_problem(await api.join_v2(store["id"], "c"), 409, "QUEUE_FULL")
    await api.act(store["id"], first["id"], "seat")
    response = await api.join_v2(store["id"], "c")
    assert response.status_code == 201
    assert response.json()["number"] == 3  # refusals took no number


async def test_closed_wins_over_already_waiting_and_full(client, tokens, make_store, api: Api):
    store = await make_store(maxQueueSize=1)
    await api.join_v2(store["id"], "a")
    await client.post(f"/stores/{store['id']}/waiting/close", headers=tokens.admin)

    # Closed, full and (for "a") already waiting all apply: WAITING_CLOSED comes first.
    assert_problem(await api.join_v2(store["id"], "a"), 409, "WAITING_CLOSED")
    assert_problem(await api.join_v2(store["id"], "b"), 409, "WAITING_CLOSED")


async def test_already_waiting_wins_over_full(make_store, api: Api):
    store = await make_store(maxQueueSize=1)
    await api.join_v2(store["id"], "a")
    assert_problem(await api.join_v2(store["id"], "a"), 409, "ALREADY_WAITING")
    assert_problem(await api.join_v2(store["id"], "b"), 409, "QUEUE_FULL")


async def test_party_size_is_bounded_by_the_store(make_store, api: Api):
    store = await make_store(maxPartySize=4)
    assert (await api.join_v2(store["id"], "a", party_size=4)).status_code == 201
    body = assert_problem(await api.join_v2(store["id"], "b", party_size=5), 400, "VALIDATION_ERROR")
    assert body["errors"][0]["field"] == "partySize"


async def test_unknown_store_is_store_not_found(api: Api):
    assert_problem(await api.join_v2(9999, "a"), 404, "STORE_NOT_FOUND")


async def test_a_tablet_of_a_store_that_does_not_exist_gets_store_not_found(client, tokens):
    body = {"name": "김민수", "phoneNumber": "010-1234-5678", "partySize": 2}
    for version in ("v2", "v3"):
        response = await client.post(
            f"/{version}/app/stores/9999/waitings", json=body, headers=tokens.store(9999)
        )
        assert_problem(response, 404, "STORE_NOT_FOUND")
