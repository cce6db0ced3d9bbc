"""One contract for the live-event notifier, run against every implementation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from adapters.notify.local import LocalNotifier
from application.ports import Event, Notifier, Subscription

Notifiers = Callable[[], Notifier]


@pytest.fixture(params=["local"])
def make_notifier(request: pytest.FixtureRequest) -> Notifiers:
    return LocalNotifier


async def _next(subscription: Subscription) -> Event:
    return await asyncio.wait_for(anext(aiter(subscription)), timeout=1)


async def test_subscribers_get_what_is_published_after_they_subscribe(make_notifier: Notifiers) -> None:
    notifier = make_notifier()
    async with notifier.subscribe("waiting:1", None) as subscription:
        assert subscription.missed is None
        await notifier.publish("waiting:1", "called", {"status": "CALLED"})
        await notifier.publish("waiting:2", "called", {"status": "CALLED"})
        event = await _next(subscription)
    assert (event.type, dict(event.data)) == ("called", {"status": "CALLED"})


async def test_ids_grow_within_a_stream_and_head_names_the_latest(make_notifier: Notifiers) -> None:
    notifier = make_notifier()
    async with notifier.subscribe("store:1", None) as subscription:
        assert subscription.head == "0"
        for n in range(3):
            await notifier.publish("store:1", "registered", {"number": n})
        ids = [int((await _next(subscription)).id) for _ in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    async with notifier.subscribe("store:1", None) as later:
        assert later.head == str(ids[-1])


async def test_a_reconnect_gets_what_it_missed(make_notifier: Notifiers) -> None:
    notifier = make_notifier()
    async with notifier.subscribe("waiting:7", None) as first:
        await notifier.publish("waiting:7", "rank", {"rank": 3})
        seen = await _next(first)
    await notifier.publish("waiting:7", "rank", {"rank": 2})
    await notifier.publish("waiting:7", "called", {"status": "CALLED"})
    async with notifier.subscribe("waiting:7", seen.id) as again:
        assert again.missed is not None
        assert [e.type for e in again.missed] == ["rank", "called"]


async def test_an_unknown_last_event_id_asks_for_a_snapshot(make_notifier: Notifiers) -> None:
    notifier = make_notifier()
    await notifier.publish("waiting:1", "rank", {"rank": 1})
    for last_event_id in ("not-a-number", "999999999"):
        async with notifier.subscribe("waiting:1", last_event_id) as subscription:
            assert subscription.missed is None


async def test_at_least_the_last_hundred_events_are_kept() -> None:
    notifier = LocalNotifier(keep_events=100, keep_seconds=0)
    await notifier.publish("store:1", "registered", {"number": 0})
    async with notifier.subscribe("store:1", None) as subscription:
        first = subscription.head
    for n in range(1, 150):
        await notifier.publish("store:1", "registered", {"number": n})
    async with notifier.subscribe("store:1", str(int(first) + 49)) as recent:
        assert recent.missed is not None and len(recent.missed) == 100
    async with notifier.subscribe("store:1", first) as too_old:
        assert too_old.missed is None
