"""The guest's status link: no account, the token is the key; name and phone masked."""

from __future__ import annotations

import secrets

import pytest

from harness.httpkit import Api, assert_problem, assert_waiting


async def test_the_link_shows_the_waiting_masked_and_without_the_token(client, store, api: Api):
    await api.join_v2(store["id"], "ahead")
    guest = (await api.join_app_v2(store["id"], name="김민수", phone="010-1234-5678")).json()

    # No Authorization header: holding the token is enough.
    response = await client.get(f"/guest/waitings/{guest['statusToken']}")

    assert response.status_code == 200
    view = assert_waiting(response.json(), id=guest["id"], number=2, rank=2, estimatedWaitMinutes=5)
    assert view["name"] == "김*수"
    assert view["phoneNumber"] == "010-****-5678"
    assert "statusToken" not in view


@pytest.mark.parametrize(
    ("name", "masked"),
    [("김민수", "김*수"), ("이안", "이*"), ("김", "김"), ("남궁민수", "남**수"), ("Alice", "A***e")],
)
async def test_names_are_masked_keeping_first_and_last(client, store, api: Api, name, masked):
    guest = (await api.join_app_v2(store["id"], name=name)).json()
    view = (await client.get(f"/guest/waitings/{guest['statusToken']}")).json()
    assert view["name"] == masked


@pytest.mark.parametrize("phone", ["010-9876-5432", "+82 10 9876 5432", "01098765432"])
async def test_the_phone_is_masked_in_national_form_however_it_was_typed(client, store, api: Api, phone):
    guest = (await api.join_app_v2(store["id"], phone=phone)).json()
    view = (await client.get(f"/guest/waitings/{guest['statusToken']}")).json()
    assert view["phoneNumber"] == "010-****-5432"


async def test_the_guest_cancels_through_the_link(client, store, api: Api):
    guest = (await api.join_app_v2(store["id"])).json()

    response = await client.post(f"/guest/waitings/{guest['statusToken']}/cancel")

    assert response.status_code == 200
    view = assert_waiting(response.json(), status="CANCELLED", name="김*수", phoneNumber="010-****-5678")
    assert "statusToken" not in view
    # Cancelling twice is refused, and the number is not given back.
    assert_problem(
        await client.post(f"/guest/waitings/{guest['statusToken']}/cancel"), 409, "INVALID_TRANSITION"
    )
    again = (await api.join_app_v2(store["id"])).json()
    assert again["number"] == 2


async def test_the_link_keeps_working_after_the_waiting_ends(client, store, api: Api):
    guest = (await api.join_app_v2(store["id"])).json()
    await api.act(store["id"], guest["id"], "call")
    await api.act(store["id"], guest["id"], "seat")

    view = (await client.get(f"/guest/waitings/{guest['statusToken']}")).json()

    assert view["status"] == "SEATED" and "rank" not in view


@pytest.mark.parametrize(
    "token",
    [secrets.token_urlsafe(24), "x", "0", "%00", "..%2F..", "' OR 1=1 --", "a" * 128],
)
async def test_an_unknown_token_is_not_found(client, store, api: Api, token):
    await api.join_app_v2(store["id"])  # a real token exists; these are not it
    for response in (
        await client.get(f"/guest/waitings/{token}"),
        await client.post(f"/guest/waitings/{token}/cancel"),
        await client.get(f"/guest/waitings/{token}/events"),
    ):
        assert_problem(response, 404, "NOT_FOUND")


async def test_a_near_miss_of_a_real_token_is_not_found(client, store, api: Api):
    token = (await api.join_app_v2(store["id"])).json()["statusToken"]
    for near in (token[:-1], token + "A", token.swapcase(), token[1:] + token[0]):
        assert_problem(await client.get(f"/guest/waitings/{near}"), 404, "NOT_FOUND")


async def test_a_customers_waiting_has_no_link(client, store, api: Api, tokens):
    waiting = (await api.join_v2(store["id"], "a")).json()
    view = (await client.get(f"/waitings/{waiting['id']}", headers=tokens.admin)).json()
    # USER-channel waitings are followed with the customer's own token, not a link.
    assert "statusToken" not in view
