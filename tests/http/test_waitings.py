"""A customer's own waiting: reading it (rank, estimate) and cancelling it; strangers see nothing."""

from __future__ import annotations

import pytest

from harness.httpkit import Api, Tokens, assert_problem, assert_waiting


async def test_the_customer_reads_their_waiting_with_rank_and_estimate(
    client, store, api: Api, tokens: Tokens
):
    await api.join_v2(store["id"], "a")
    mine = (await api.join_v2(store["id"], "b")).json()

    response = await client.get(f"/waitings/{mine['id']}", headers=tokens.customer("b"))

    assert response.status_code == 200
    assert_waiting(response.json(), id=mine["id"], number=2, rank=2, estimatedWaitMinutes=5, userId="b")


async def test_rank_moves_up_when_someone_ahead_leaves(client, store, api: Api, tokens: Tokens):
    ahead = [(await api.join_v2(store["id"], sub)).json() for sub in "abc"]
    mine = (await api.join_v2(store["id"], "d")).json()
    await api.act(store["id"], ahead[0]["id"], "call")  # called: no longer ahead in line
    await client.post(f"/waitings/{ahead[1]['id']}/cancel", headers=tokens.customer("b"))

    view = (await client.get(f"/waitings/{mine['id']}", headers=tokens.customer("d"))).json()

    assert (view["number"], view["rank"], view["estimatedWaitMinutes"]) == (4, 2, 5)


async def test_a_called_waiting_has_no_rank(client, store, api: Api, tokens: Tokens):
    mine = (await api.join_v2(store["id"], "a")).json()
    await api.act(store["id"], mine["id"], "call")

    view = (await client.get(f"/waitings/{mine['id']}", headers=tokens.customer("a"))).json()

    assert_waiting(view, status="CALLED")
    assert "rank" not in view and "estimatedWaitMinutes" not in view
    assert "calledAt" in view


async def test_staff_and_admin_read_a_guest_in_full(client, store, api: Api, tokens: Tokens):
    guest = (await api.join_app_v2(store["id"], name="김민수", phone="010-1234-5678")).json()

    for headers in (tokens.store(store["id"]), tokens.admin):
        view = (await client.get(f"/waitings/{guest['id']}", headers=headers)).json()
        assert_waiting(
            view, name="김민수", phoneNumber="+821012345678", statusToken=guest["statusToken"], rank=1
        )


async def test_the_customer_cancels_their_waiting(client, store, api: Api, tokens: Tokens):
    mine = (await api.join_v2(store["id"], "a")).json()

    response = await client.post(f"/waitings/{mine['id']}/cancel", headers=tokens.customer("a"))

    assert response.status_code == 200
    view = assert_waiting(response.json(), id=mine["id"], status="CANCELLED")
    assert "cancelledAt" in view and "rank" not in view


async def test_a_called_customer_may_still_cancel(client, store, api: Api, tokens: Tokens):
    mine = (await api.join_v2(store["id"], "a")).json()
    await api.act(store["id"], mine["id"], "call")
    response = await client.post(f"/waitings/{mine['id']}/cancel", headers=tokens.customer("a"))
    assert response.json()["status"] == "CANCELLED"


@pytest.mark.parametrize("ending", [["cancel"], ["call", "seat"], ["call", "no-show"]])
async def test_cancelling_a_finished_waiting_is_an_invalid_transition(
    client, store, api: Api, tokens, ending
):
    mine = (await api.join_v2(store["id"], "a")).json()
    for action in ending:
        await api.act(store["id"], mine["id"], action)

    response = await client.post(f"/waitings/{mine['id']}/cancel", headers=tokens.customer("a"))

    assert_problem(response, 409, "INVALID_TRANSITION")


async def test_another_customers_waiting_is_not_found_not_forbidden(client, store, api: Api, tokens: Tokens):
    theirs = (await api.join_v2(store["id"], "a")).json()
    stranger = tokens.customer("b")

    # 404, exactly like a waiting that does not exist: existence is not leaked.
    missing = await client.get("/waitings/999999", headers=stranger)
    for response in (
        await client.get(f"/waitings/{theirs['id']}", headers=stranger),
        await client.post(f"/waitings/{theirs['id']}/cancel", headers=stranger),
        await client.get(f"/waitings/{theirs['id']}/events", headers=stranger),
        missing,
    ):
        assert_problem(response, 404, "NOT_FOUND")
    # And the waiting was not touched.
    assert (await client.get(f"/waitings/{theirs['id']}", headers=tokens.customer("a"))).json()[
        "status"
    ] == "WAITING"


async def test_another_stores_token_is_told_not_found(client, make_store, api: Api, tokens: Tokens):
    store, other = await make_store(), await make_store(name="Other")
    waiting = (await api.join_v2(store["id"], "a")).json()

    response = await client.get(f"/waitings/{waiting['id']}", headers=tokens.store(other["id"]))

    assert_problem(response, 404, "NOT_FOUND")


async def test_only_the_customer_cancels_through_this_endpoint(client, store, api: Api, tokens: Tokens):
    waiting = (await api.join_v2(store["id"], "a")).json()
    # Staff have their own cancel under /stores/{id}/waitings/{id}/cancel.
    assert_problem(
        await client.post(f"/waitings/{waiting['id']}/cancel", headers=tokens.store(store["id"])), 403
    )


async def test_an_unknown_waiting_is_not_found(client, tokens: Tokens):
    assert_problem(await client.get("/waitings/424242", headers=tokens.admin), 404, "NOT_FOUND")
    assert_problem(await client.post("/waitings/424242/cancel", headers=tokens.customer()), 404, "NOT_FOUND")
