"""One contract for the request-status store, run against every implementation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from adapters.status.local import LocalRequestStatuses
from application.ports import RequestStatusStore
from application.requests import RequestState, RequestStatus

Stores = Callable[[], RequestStatusStore]
QUEUED = RequestStatus("t-1", 1, RequestState.QUEUED, user_id="42")


@pytest.fixture(params=["local"])
def make_store(request: pytest.FixtureRequest) -> Stores:
    return LocalRequestStatuses


async def test_put_then_get(make_store: Stores) -> None:
    statuses = make_store()
    await statuses.put(QUEUED)
    assert await statuses.get("t-1") == QUEUED
    assert await statuses.get("t-2") is None


async def test_a_waiter_wakes_when_the_outcome_arrives(make_store: Stores) -> None:
    statuses = make_store()
    await statuses.put(QUEUED)
    waiter = asyncio.create_task(statuses.wait_decided("t-1", within=5))
    await asyncio.sleep(0.01)
    await statuses.put(QUEUED.registered(9))
    decided = await asyncio.wait_for(waiter, timeout=1)
    assert decided is not None and (decided.state, decided.waiting_id) == (RequestState.REGISTERED, 9)


async def test_waiting_gives_up_after_its_time(make_store: Stores) -> None:
    statuses = make_store()
    await statuses.put(QUEUED)
    assert await statuses.wait_decided("t-1", within=0.01) == QUEUED


async def test_a_late_queued_never_hides_an_outcome(make_store: Stores) -> None:
    statuses = make_store()
    await statuses.put(QUEUED.rejected("QUEUE_FULL"))
    await statuses.put(QUEUED)
    known = await statuses.get("t-1")
    assert known is not None and known.reason == "QUEUE_FULL"


async def test_forget(make_store: Stores) -> None:
    statuses = make_store()
    await statuses.put(QUEUED)
    await statuses.forget("t-1")
    assert await statuses.get("t-1") is None
