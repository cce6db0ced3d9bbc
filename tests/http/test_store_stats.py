"""Day stats (API.md, "Store tools"): `GET /stores/{storeId}/stats?date=YYYY-MM-DD`.

The app runs on a settable clock (11:00 in Seoul, the stores' default time zone), so a day can be
played out minute by minute and then end.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from harness.httpkit import Api, Tokens, assert_problem
from unit.helpers import SettableClock


def seoul(local: str) -> datetime:
    return datetime.fromisoformat(f"2026-03-02T{local}:00+09:00")


async def stats(client: httpx.AsyncClient, store_id: int, headers: dict[str, str], **query: str) -> Any:
    response = await client.get(f"/stores/{store_id}/stats", params=query, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def play_a_day(
    client: httpx.AsyncClient, store_id: int, api: Api, tokens: Tokens, clock: SettableClock
) -> None:
    """Six registrations on both channels, V2 and V3; two seated, a no-show, a cancel by each side,
    and one still waiting. Waits to call: 12, 20 and 30 minutes."""

    async def at(local: str) -> None:
        clock.set(seoul(local))

    async def joined(response: httpx.Response, headers: dict[str, str]) -> int:
        if response.status_code == 202:
            decided = await api.outcome(response.json()["traceId"], headers)
            assert decided["status"] == "REGISTERED", decided
            return int(decided["waiting"]["id"])
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    async def act(waiting_id: int, action: str) -> None:
        response = await api.act(store_id, waiting_id, action)
        assert response.status_code == 200, response.text

    staff = tokens.store(store_id)
    await at("11:00")
    first = await joined(await api.join_v2(store_id, "a"), tokens.customer("a"))
    await at("11:05")
    guest = await joined(await api.join_app_v2(store_id, phone="010-1111-2222"), staff)
    await at("11:10")
    queued = await joined(await api.join_v3(store_id, "b"), tokens.customer("b"))
    await at("11:12")
    await act(first, "call")
    await at("11:15")
    await act(first, "seat")
    await at("11:20")
    queued_guest = await joined(await api.join_app_v3(store_id, phone="010-3333-4444"), staff)
    await at("11:25")
    await act(guest, "call")
    await at("11:35")
    await act(guest, "no-show")
    await at("11:40")
    leaving = await joined(await api.join_v2(store_id, "c"), tokens.customer("c"))
    await act(queued, "call")
    await at("11:45")
    await act(queued, "seat")
    await at("11:50")
    await joined(await api.join_v2(store_id, "d"), tokens.customer("d"))
    await act(queued_guest, "cancel")
    await at("11:55")
    cancelled = await client.post(f"/waitings/{leaving}/cancel", headers=tokens.customer("c"))
    assert cancelled.status_code == 200, cancelled.text


THE_DAY = {
    "businessDate": "2026-03-02",
    "registrations": {"total": 6, "user": 4, "app": 2},
    "seated": 2,
    "cancelled": {"total": 2, "byCustomer": 1, "byStore": 1},
    "noShows": 1,
    "leftOpen": 1,
    "noShowRate": 0.3333,
    "waitToCall": {"calls": 3, "p50Minutes": 20.0, "p90Minutes": 28.0},
    "registrationsPer15Minutes": [
        {"start": "2026-03-02T11:00:00+09:00", "count": 3},
        {"start": "2026-03-02T11:15:00+09:00", "count": 1},
        {"start": "2026-03-02T11:30:00+09:00", "count": 1},
        {"start": "2026-03-02T11:45:00+09:00", "count": 1},
    ],
}


async def test_the_days_figures_as_the_day_goes_and_once_it_is_over(
    client, store, api: Api, tokens: Tokens, clock: SettableClock
) -> None:
    await play_a_day(client, store["id"], api, tokens, clock)
    clock.set(seoul("12:00"))

    today = await stats(client, store["id"], tokens.store(store["id"]))

    assert today == {"storeId": store["id"], "dayOver": False, **THE_DAY}
    assert await stats(client, store["id"], tokens.admin, date="2026-03-02") == today

    clock.advance(timedelta(days=1))  # the next business day: d was left open
    assert await stats(client, store["id"], tokens.admin, date="2026-03-02") == {
        "storeId": store["id"],
        "dayOver": True,
        **THE_DAY,
    }
    tomorrow = await stats(client, store["id"], tokens.admin)
    assert (tomorrow["businessDate"], tomorrow["registrations"]["total"], tomorrow["leftOpen"]) == (
        "2026-03-03",
        0,
        0,
    )


async def test_today_is_the_stores_business_day_which_may_start_at_0430(
    client, store, api: Api, tokens: Tokens, clock: SettableClock
) -> None:
    staff = tokens.store(store["id"])
    changed = await client.patch(f"/stores/{store['id']}", json={"dayStartsAt": "04:30"}, headers=staff)
    assert changed.status_code == 200, changed.text
    clock.set(datetime.fromisoformat("2026-03-03T01:10:00+09:00"))  # past midnight, before 04:30
    assert (await api.join_v2(store["id"], "a")).status_code == 201

    night = await stats(client, store["id"], staff)

    assert (night["businessDate"], night["dayOver"], night["registrations"]["total"]) == (
        "2026-03-02",
        False,
        1,
    )
    assert night["registrationsPer15Minutes"] == [{"start": "2026-03-03T01:00:00+09:00", "count": 1}]
    clock.set(datetime.fromisoformat("2026-03-03T04:30:00+09:00"))
    assert (await stats(client, store["id"], staff, date="2026-03-02"))["dayOver"] is True
    assert (await stats(client, store["id"], staff))["businessDate"] == "2026-03-03"


@pytest.mark.parametrize("day", ["2020-01-01", "2026-03-01", "2026-12-31", "0001-01-01", "9999-12-31"])
async def test_a_day_without_registrations_is_zeros_not_404(
    client, store, api: Api, tokens: Tokens, day: str
) -> None:
    assert (await api.join_v2(store["id"], "a")).status_code == 201  # on another day: 2026-03-02

    empty = await stats(client, store["id"], tokens.store(store["id"]), date=day)

    assert empty == {
        "storeId": store["id"],
        "businessDate": day,
        "dayOver": day < "2026-03-02",
        "registrations": {"total": 0, "user": 0, "app": 0},
        "seated": 0,
        "cancelled": {"total": 0, "byCustomer": 0, "byStore": 0},
        "noShows": 0,
        "leftOpen": 0,
        "noShowRate": None,
        "waitToCall": {"calls": 0, "p50Minutes": None, "p90Minutes": None},
        "registrationsPer15Minutes": [],
    }


@pytest.mark.parametrize(
    "day",
    [
        "",
        "null",
        "yesterday",
        "2026-3-2",
        " 2026-03-02",
        "２０２６-03-02",
        "2026-02-30",
        "2026-13-01",
        "0000-01-01",
        "20260302",
        "2026-03-02T00:00",
        "2026-W10-1",
    ],
)
async def test_a_malformed_date_is_a_validation_error(client, store, tokens: Tokens, day: str) -> None:
    response = await client.get(
        f"/stores/{store['id']}/stats", params={"date": day}, headers=tokens.store(store["id"])
    )

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert [error["field"] for error in problem["errors"]] == ["date"]


async def test_only_the_stores_own_staff_and_admins_read_its_stats(
    client, make_store, tokens: Tokens
) -> None:
    mine, theirs = await make_store(), await make_store(name="Other")
    url = f"/stores/{mine['id']}/stats"

    assert (await client.get(url, headers=tokens.store(mine["id"]))).status_code == 200
    assert (await client.get(url, headers=tokens.admin)).status_code == 200
    assert_problem(await client.get(url, headers=tokens.store(theirs["id"])), 403, "FORBIDDEN")
    assert_problem(await client.get(url, headers=tokens.customer("a")), 403, "FORBIDDEN")
    bad_date = {"date": "yesterday"}  # who asks is checked first, as on the other staff routes
    assert_problem(await client.get(url, params=bad_date, headers=tokens.customer("a")), 403, "FORBIDDEN")
    assert_problem(await client.get(url), 401)
    assert_problem(await client.get("/stores/999/stats", headers=tokens.admin), 404, "STORE_NOT_FOUND")
    assert_problem(await client.get("/stores/0/stats", headers=tokens.admin), 400, "VALIDATION_ERROR")
