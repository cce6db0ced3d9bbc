"""Stores: creation (admin), the public view, opening and closing, the staff's list."""

from __future__ import annotations

import httpx
import pytest

from harness.httpkit import Api, Tokens, assert_problem, assert_waiting

STORE_FIELDS = {
    "id",
    "name",
    "timeZone",
    "waitingOpen",
    "maxPartySize",
    "maxQueueSize",
    "avgServiceMinutes",
    "notifyAtRank",
    "maxPostpones",
    "dayStartsAt",
    "webhookUrl",
}
# What a store gets for the settings only PATCH /stores/{storeId} changes (DOMAIN.md).
TOOL_DEFAULTS = {"notifyAtRank": 3, "maxPostpones": 1, "dayStartsAt": "00:00", "webhookUrl": None}


async def test_admin_creates_a_store_with_the_documented_defaults(client: httpx.AsyncClient, tokens: Tokens):
    response = await client.post("/stores", json={"name": "Cafe Onion"}, headers=tokens.admin)

    assert response.status_code == 201
    store = response.json()
    assert set(store) == STORE_FIELDS
    assert isinstance(store["id"], int) and store["id"] >= 1
    # DOMAIN.md: Asia/Seoul, party size 10, no queue limit, no estimate, and closed unless created open;
    # getting close at rank 3, one postpone, the day starting at midnight, no webhook.
    assert store == TOOL_DEFAULTS | {
        "id": store["id"],
        "name": "Cafe Onion",
        "timeZone": "Asia/Seoul",
        "waitingOpen": False,
        "maxPartySize": 10,
        "maxQueueSize": None,
        "avgServiceMinutes": None,
    }


async def test_every_optional_field_is_kept(client: httpx.AsyncClient, tokens: Tokens):
    body = {
        "name": "Pop-up",
        "timeZone": "Europe/Paris",
        "maxPartySize": 4,
        "maxQueueSize": 30,
        "avgServiceMinutes": 7,
        "waitingOpen": True,
    }
    response = await client.post("/stores", json=body, headers=tokens.admin)

    assert response.status_code == 201
    assert response.json() == {"id": response.json()["id"], **body, **TOOL_DEFAULTS}


async def test_store_ids_are_distinct(make_store):
    first, second = await make_store(name="A"), await make_store(name="B")
    assert first["id"] != second["id"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": 5},
        {"name": "A", "timeZone": "Mars/Olympus"},
        {"name": "A", "timeZone": "../../etc/passwd"},
        {"name": "A", "maxPartySize": 0},
        {"name": "A", "maxPartySize": "4"},
        {"name": "A", "maxQueueSize": 0},
        {"name": "A", "avgServiceMinutes": -1},
        {"name": "A", "waitingOpen": "yes"},
        {"name": "A", "colour": "red"},
    ],
)
async def test_a_malformed_store_is_a_validation_error(client: httpx.AsyncClient, tokens: Tokens, body):
    response = await client.post("/stores", json=body, headers=tokens.admin)
    assert_problem(response, 400, "VALIDATION_ERROR")


async def test_public_view_needs_no_token_and_shows_only_counts(client, store, api: Api):
    await api.join_v2(store["id"], "a")
    await api.join_v2(store["id"], "b")

    response = await client.get(f"/stores/{store['id']}")

    assert response.status_code == 200
    # No waiting (nor anything about one) leaks through the public view.
    assert response.json() == {
        "id": store["id"],
        "name": store["name"],
        "waitingOpen": True,
        "waitingCount": 2,
        "estimatedWaitMinutes": 10,  # a newcomer would be third: 2 x 5 minutes
        "estimateSource": "configured",
    }


async def test_public_count_is_of_waiting_entries_only(client, store, api: Api):
    first = (await api.join_v2(store["id"], "a")).json()
    await api.join_v2(store["id"], "b")
    second_gone = (await api.join_v2(store["id"], "c")).json()
    await api.act(store["id"], first["id"], "call")  # CALLED no longer waits in line
    await api.act(store["id"], second_gone["id"], "cancel")

    view = (await client.get(f"/stores/{store['id']}")).json()

    assert view["waitingCount"] == 1
    assert view["estimatedWaitMinutes"] == 5


async def test_public_estimate_is_null_without_a_service_time(client, make_store):
    store = await make_store(avgServiceMinutes=None)
    view = (await client.get(f"/stores/{store['id']}")).json()
    assert view["waitingCount"] == 0
    assert view["estimatedWaitMinutes"] is None


@pytest.mark.parametrize("who", ["own store", "admin"])
async def test_staff_and_admin_open_and_close_the_list(client, tokens: Tokens, make_store, who):
    store = await make_store(waitingOpen=False)
    headers = tokens.admin if who == "admin" else tokens.store(store["id"])

    opened = await client.post(f"/stores/{store['id']}/waiting/open", headers=headers)
    assert opened.status_code == 200
    assert opened.json() == {**store, "waitingOpen": True}

    closed = await client.post(f"/stores/{store['id']}/waiting/close", headers=headers)
    assert closed.status_code == 200
    assert closed.json() == {**store, "waitingOpen": False}


async def test_opening_twice_is_harmless(client, tokens: Tokens, store):
    for _ in range(2):
        response = await client.post(f"/stores/{store['id']}/waiting/open", headers=tokens.store(store["id"]))
        assert response.status_code == 200
        assert response.json()["waitingOpen"] is True


async def test_closing_stops_registrations_and_opening_resumes_them(client, tokens: Tokens, store, api: Api):
    await client.post(f"/stores/{store['id']}/waiting/close", headers=tokens.admin)
    assert_problem(await api.join_v2(store["id"], "a"), 409, "WAITING_CLOSED")

    await client.post(f"/stores/{store['id']}/waiting/open", headers=tokens.admin)
    response = await api.join_v2(store["id"], "a")
    assert response.status_code == 201
    assert response.json()["number"] == 1  # the refused attempt took no number


async def test_list_of_waiting_is_ordered_by_number_with_ranks(client, tokens: Tokens, store, api: Api):
    ids = [(await api.join_v2(store["id"], sub)).json()["id"] for sub in "abcd"]
    await api.act(store["id"], ids[1], "call")

    response = await client.get(
        f"/stores/{store['id']}/waitings?status=WAITING", headers=tokens.store(store["id"])
    )

    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["number"] for item in items] == [1, 3, 4]
    assert [item["rank"] for item in items] == [1, 2, 3]
    assert [item["estimatedWaitMinutes"] for item in items] == [0, 5, 10]
    for item in items:
        assert_waiting(item, status="WAITING", storeId=store["id"])


async def test_list_without_status_has_the_whole_day(client, tokens: Tokens, store, api: Api):
    ids = [(await api.join_v2(store["id"], sub)).json()["id"] for sub in "abc"]
    await api.act(store["id"], ids[0], "call")
    await api.act(store["id"], ids[2], "cancel")

    items = (await client.get(f"/stores/{store['id']}/waitings", headers=tokens.admin)).json()["items"]

    assert [(item["number"], item["status"]) for item in items] == [
        (1, "CALLED"),
        (2, "WAITING"),
        (3, "CANCELLED"),
    ]
    # Only WAITING entries have a rank, and it counts WAITING entries only.
    assert [item.get("rank") for item in items] == [None, 1, None]


@pytest.mark.parametrize("status", ["CALLED", "SEATED", "CANCELLED", "NO_SHOW"])
async def test_list_filters_by_any_status(client, tokens: Tokens, store, api: Api, status):
    waiting = (await api.join_v2(store["id"], "a")).json()
    await api.join_v2(store["id"], "b")
    path = {
        "CALLED": ["call"],
        "SEATED": ["call", "seat"],
        "CANCELLED": ["cancel"],
        "NO_SHOW": ["call", "no-show"],
    }
    for action in path[status]:
        assert (await api.act(store["id"], waiting["id"], action)).status_code == 200

    response = await client.get(f"/stores/{store['id']}/waitings?status={status}", headers=tokens.admin)

    assert [item["id"] for item in response.json()["items"]] == [waiting["id"]]


async def test_list_shows_guests_in_full_to_the_staff(client, tokens: Tokens, store, api: Api):
    await api.join_app_v2(store["id"], name="김민수", phone="010-1234-5678")
    items = (await client.get(f"/stores/{store['id']}/waitings", headers=tokens.store(store["id"]))).json()[
        "items"
    ]
    assert items[0]["name"] == "김민수"
    assert items[0]["phoneNumber"] == "+821012345678"
    assert items[0]["statusToken"]


async def test_list_of_an_empty_store_is_empty(client, tokens: Tokens, store):
    response = await client.get(f"/stores/{store['id']}/waitings", headers=tokens.admin)
    assert response.json() == {"items": [], "next": None}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/stores/424242"),
        ("POST", "/stores/424242/waiting/open"),
        ("POST", "/stores/424242/waiting/close"),
        ("GET", "/stores/424242/waitings"),
    ],
)
async def test_an_unknown_store_is_store_not_found(client, tokens: Tokens, method, path):
    response = await client.request(method, path, headers=tokens.admin)
    assert_problem(response, 404, "STORE_NOT_FOUND")


async def test_acting_on_a_waiting_of_an_unknown_store_is_404(client, tokens: Tokens):
    response = await client.post("/stores/424242/waitings/1/call", headers=tokens.admin)
    assert_problem(response, 404)


async def test_the_public_view_is_cacheable_and_an_unchanged_one_is_304(client, store, api: Api):
    url = f"/stores/{store['id']}"
    first = await client.get(url)
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=1" and tag.startswith('"')

    unchanged = await client.get(url, headers={"If-None-Match": f'W/"other", {tag}'})
    assert (unchanged.status_code, unchanged.content, unchanged.headers["etag"]) == (304, b"", tag)
    assert (await client.get(url, headers={"If-None-Match": "*"})).status_code == 304

    await api.join_v2(store["id"], "a")  # the count changed: a new version
    changed = await client.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert changed.json()["waitingCount"] == first.json()["waitingCount"] + 1


async def test_the_public_view_of_an_unknown_store_is_still_404(client):
    response = await client.get("/stores/999999", headers={"If-None-Match": "*"})
    assert response.status_code == 404


async def test_the_staff_list_comes_in_pages_each_waiting_once_in_order_with_its_rank(
    client, store, api: Api, tokens: Tokens
):
    ids = [(await api.join_v2(store["id"], f"c{n}")).json()["id"] for n in range(7)]
    await api.act(store["id"], ids[1], "call")  # not WAITING: no rank, and the ranks behind move up
    url = f"/stores/{store['id']}/waitings"
    seen, after, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"after": after} if after else {})}
        page = (await client.get(url, params=params, headers=tokens.store(store["id"]))).json()
        seen += page["items"]
        pages += 1
        after = page["next"]
        if after is None:
            break
        # A change between pages neither repeats nor skips anyone.
        if pages == 1:
            await api.join_v2(store["id"], "late")
    assert pages == 3
    assert [w["number"] for w in seen] == list(range(1, 9))
    assert [w.get("rank") for w in seen] == [1, None, 2, 3, 4, 5, 6, 7]


async def test_the_waiting_only_list_pages_too(client, store, api: Api, tokens: Tokens):
    for n in range(3):
        await api.join_v2(store["id"], f"c{n}")
    url = f"/stores/{store['id']}/waitings"
    first = (await client.get(url, params={"status": "WAITING", "limit": 2}, headers=tokens.admin)).json()
    rest = (
        await client.get(url, params={"status": "WAITING", "after": first["next"]}, headers=tokens.admin)
    ).json()
    assert [w["rank"] for w in first["items"] + rest["items"]] == [1, 2, 3] and rest["next"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": "x"},
        {"after": "bm9wZQ"},
        {"after": "%%%"},
        {"after": "bjotMQ"},
    ],
)
async def test_a_bad_limit_or_cursor_is_400(client, store, tokens: Tokens, params):
    response = await client.get(f"/stores/{store['id']}/waitings", params=params, headers=tokens.admin)
    assert_problem(response, 400, "VALIDATION_ERROR")
