"""The staff move waitings along: call, seat, no-show, cancel; anything else is INVALID_TRANSITION."""

from __future__ import annotations

import asyncio

import pytest

from harness.httpkit import Api, Tokens, assert_problem, assert_waiting

# The transition table of DOMAIN.md: (path of actions leading to a status, the action, allowed?)
SETUPS = {"WAITING": [], "CALLED": ["call"], "SEATED": ["call", "seat"], "CANCELLED": ["cancel"]}
SETUPS["NO_SHOW"] = ["call", "no-show"]
RESULT = {"call": "CALLED", "seat": "SEATED", "no-show": "NO_SHOW", "cancel": "CANCELLED"}
ALLOWED = {
    ("WAITING", "call"),
    ("WAITING", "cancel"),
    ("CALLED", "seat"),
    ("CALLED", "no-show"),
    ("CALLED", "cancel"),
}


@pytest.mark.parametrize("status", list(SETUPS))
@pytest.mark.parametrize("action", list(RESULT))
async def test_every_transition_follows_the_table(store, api: Api, status, action):
    waiting = (await api.join_v2(store["id"], "a")).json()
    for step in SETUPS[status]:
        assert (await api.act(store["id"], waiting["id"], step)).status_code == 200

    response = await api.act(store["id"], waiting["id"], action)

    if (status, action) in ALLOWED:
        assert response.status_code == 200
        assert_waiting(response.json(), id=waiting["id"], status=RESULT[action])
    else:
        assert_problem(response, 409, "INVALID_TRANSITION")


async def test_each_transition_stamps_its_time(store, api: Api):
    waiting = (await api.join_v2(store["id"], "a")).json()
    called = (await api.act(store["id"], waiting["id"], "call")).json()
    seated = (await api.act(store["id"], waiting["id"], "seat")).json()
    assert "calledAt" in called and "seatedAt" not in called
    assert seated["calledAt"] == called["calledAt"] and "seatedAt" in seated


async def test_the_staff_answer_shows_a_guest_in_full(store, api: Api):
    guest = (await api.join_app_v2(store["id"], name="김민수")).json()
    called = (await api.act(store["id"], guest["id"], "call")).json()
    assert called["name"] == "김민수" and called["phoneNumber"] == "+821012345678"


async def test_admin_may_act_for_any_store(client, store, api: Api, tokens: Tokens):
    waiting = (await api.join_v2(store["id"], "a")).json()
    response = await client.post(f"/stores/{store['id']}/waitings/{waiting['id']}/call", headers=tokens.admin)
    assert response.json()["status"] == "CALLED"


async def test_a_waiting_of_another_store_is_not_found_under_this_one(
    client, make_store, api: Api, tokens: Tokens
):
    store, other = await make_store(), await make_store(name="Other")
    waiting = (await api.join_v2(store["id"], "a")).json()

    response = await client.post(f"/stores/{other['id']}/waitings/{waiting['id']}/call", headers=tokens.admin)

    assert_problem(response, 404, "NOT_FOUND")
    assert (await client.get(f"/waitings/{waiting['id']}", headers=tokens.admin)).json()[
        "status"
    ] == "WAITING"


async def test_an_unknown_waiting_is_not_found(store, api: Api):
    assert_problem(await api.act(store["id"], 424242, "call"), 404, "NOT_FOUND")


async def test_racing_moves_on_one_waiting_leave_one_consistent_outcome(
    client, store, api: Api, tokens: Tokens
):
    # The staff call, seat and cancel while the customer cancels, all at once: each answer is a
    # success or INVALID_TRANSITION (never a 5xx), and the final state is one the table allows.
    waiting = (await api.join_v2(store["id"], "a")).json()
    moves = []
    for _ in range(3):
        moves += [
            api.act(store["id"], waiting["id"], action) for action in ("call", "seat", "cancel", "no-show")
        ]
        moves.append(client.post(f"/waitings/{waiting['id']}/cancel", headers=tokens.customer("a")))
    responses = await asyncio.gather(*moves)

    for response in responses:
        if response.status_code != 200:
            assert_problem(response, 409, "INVALID_TRANSITION")
    final = (await client.get(f"/waitings/{waiting['id']}", headers=tokens.admin)).json()["status"]
    successes = [r.json()["status"] for r in responses if r.status_code == 200]
    assert successes, "some move must have won"
    # What succeeded is one path through the table, ending where the waiting now is.
    paths = {
        ("CALLED",): "CALLED",
        ("CALLED", "SEATED"): "SEATED",
        ("CALLED", "NO_SHOW"): "NO_SHOW",
        ("CALLED", "CANCELLED"): "CANCELLED",
        ("CANCELLED",): "CANCELLED",
    }
    path = tuple(sorted(set(successes), key=["CALLED", "SEATED", "NO_SHOW", "CANCELLED"].index))
    assert paths.get(path) == final, (successes, final)
    # Each status was reached at most once: a move never applied twice.
    assert len(successes) == len(set(successes))
