"""Ranks and counts are of the current business day: yesterday's leftovers count for nothing today.

The app's clock is a settable one, so a test can end a business day with entries left WAITING.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from harness.httpkit import Api, Tokens
from unit.helpers import SettableClock


async def test_yesterdays_leftover_waitings_count_neither_in_todays_ranks_nor_in_its_count(
    clock: SettableClock, client: httpx.AsyncClient, store: dict[str, Any], api: Api, tokens: Tokens
) -> None:
    yesterday = [(await api.join_v2(store["id"], name)).json() for name in ("a", "b", "c")]
    assert [w["rank"] for w in yesterday] == [1, 2, 3]
    clock.advance(timedelta(days=1))  # the three are left WAITING when their day ends

    first = (await api.join_v2(store["id"], "d")).json()
    second = (await api.join_v2(store["id"], "e")).json()
    # Still WAITING from yesterday, yet not refused today (active means today).
    again = await api.join_v2(store["id"], "a")

    assert (first["number"], first["rank"], first["estimatedWaitMinutes"]) == (1, 1, 0)
    assert (second["number"], second["rank"], second["estimatedWaitMinutes"]) == (2, 2, 5)
    assert again.status_code == 201, again.text
    assert (again.json()["number"], again.json()["rank"]) == (3, 3)
    assert first["businessDate"] != yesterday[0]["businessDate"]

    public = (await client.get(f"/stores/{store['id']}")).json()
    assert (public["waitingCount"], public["estimatedWaitMinutes"]) == (3, 15)
    own = await client.get(f"/waitings/{second['id']}", headers=tokens.customer("e"))
    assert own.json()["rank"] == 2
    listed = await client.get(f"/stores/{store['id']}/waitings", headers=tokens.store(store["id"]))
    assert [(w["number"], w["rank"]) for w in listed.json()["items"]] == [(1, 1), (2, 2), (3, 3)]
    # Yesterday's entries are still there, still WAITING, ranked among themselves.
    old = await client.get(f"/waitings/{yesterday[2]['id']}", headers=tokens.customer("c"))
    assert (old.json()["status"], old.json()["rank"]) == ("WAITING", 3)


async def test_the_queued_path_ignores_yesterdays_leftovers_too(
    clock: SettableClock, client: httpx.AsyncClient, store: dict[str, Any], api: Api, tokens: Tokens
) -> None:
    await api.join_v2(store["id"], "a")
    await api.join_v2(store["id"], "b")
    clock.advance(timedelta(days=1))

    trace = (await api.join_v3(store["id"], "a")).json()["traceId"]
    outcome = await api.outcome(trace, tokens.admin)

    assert outcome["status"] == "REGISTERED", outcome
    assert (outcome["waiting"]["number"], outcome["waiting"]["rank"]) == (1, 1)
    public = (await client.get(f"/stores/{store['id']}")).json()
    assert public["waitingCount"] == 1
