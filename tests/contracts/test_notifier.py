"""One contract for the live-event notifier, run against every implementation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis

from adapters.notify.local import LocalNotifier
from adapters.notify.redis import RedisNotifier
from application.ports import Event, Notifier, Subscription

Notifiers = Callable[..., Notifier]


@dataclass
class RedisNotifiers:
    """Notifiers on one Redis under a prefix of the test's own, each with its own client, as
    separate processes would have; closed, and their keys deleted, after the test."""

    url: str
    prefix: str = field(default_factory=lambda: f"test:{uuid.uuid4().hex}:")
    made: list[RedisNotifier] = field(default_factory=list)

    def __call__(self, **options: Any) -> RedisNotifier:
        self.made.append(RedisNotifier.from_url(self.url, prefix=self.prefix, **options))
        return self.made[-1]

    async def close(self) -> None:
        for notifier in self.made:
            await notifier.close()
        cleaner = Redis.from_url(self.url)
        async for key in cleaner.scan_iter(match=f"{self.prefix}*"):
            await cleaner.delete(key)
        await cleaner.aclose()


@pytest.fixture(params=["local", "redis"])
async def make_notifier(request: pytest.FixtureRequest) -> AsyncIterator[Notifiers]:
    if request.param == "local":
        yield LocalNotifier
        return
    notifiers = RedisNotifiers(request.getfixturevalue("redis_url"))
    yield notifiers
    await notifiers.close()


def _order(event_id: str) -> tuple[int, ...]:
    """How ids grow: both implementations' ids are numbers joined by dashes, compared in turn."""
    return tuple(int(part) for part in event_id.split("-"))


def _later(event_id: str) -> str:
    """An id no event has had yet: after the given one."""
    *rest, last = event_id.split("-")
    return "-".join([*rest, str(int(last) + 1_000_000)])


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
        ids = [(await _next(subscription)).id for _ in range(3)]
    assert ids == sorted(ids, key=_order) and len(set(ids)) == 3
    async with notifier.subscribe("store:1", None) as later:
        assert later.head == ids[-1]


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
    async with notifier.subscribe("waiting:1", None) as subscription:
        ahead = _later(subscription.head)
    for last_event_id in ("not-a-number", "999999999", "1-2-3", ahead):
        async with notifier.subscribe("waiting:1", last_event_id) as subscription:
            assert subscription.missed is None


async def test_a_reconnect_with_nothing_missed_gets_an_empty_replay(make_notifier: Notifiers) -> None:
    notifier = make_notifier()
    await notifier.publish("waiting:1", "rank", {"rank": 1})
    async with notifier.subscribe("waiting:1", None) as subscription:
        head = subscription.head
    async with notifier.subscribe("waiting:1", head) as again:
        assert again.missed == [] and again.head == head


async def test_at_least_the_last_hundred_events_are_kept(make_notifier: Notifiers) -> None:
    notifier = make_notifier(keep_events=100, keep_seconds=0.5)
    async with notifier.subscribe("store:1", None) as subscription:
        for n in range(150):
            if n in (50, 100):
                # The first fifty end up older than keep_seconds; the stream is never idle that long.
                await asyncio.sleep(0.3)
            await notifier.publish("store:1", "registered", {"number": n})
        ids = [(await _next(subscription)).id for _ in range(150)]
    async with notifier.subscribe("store:1", ids[49]) as recent:
        assert recent.missed is not None
        assert [e.data["number"] for e in recent.missed] == list(range(50, 150))
    async with notifier.subscribe("store:1", ids[0]) as too_old:
        assert too_old.missed is None


async def test_publish_all_delivers_each_event_to_its_stream_in_order(make_notifier: Notifiers) -> None:
    notifier = make_notifier()
    async with notifier.subscribe("waiting:1", None) as one, notifier.subscribe("waiting:2", None) as two:
        await notifier.publish_all(
            [
                ("waiting:1", "rank", {"rank": 3}),
                ("waiting:2", "rank", {"rank": 4}),
                ("waiting:1", "rank", {"rank": 2}),
            ]
        )
        firsts = [await asyncio.wait_for(anext(aiter(one)), 2) for _ in range(2)]
        second = await asyncio.wait_for(anext(aiter(two)), 2)
    assert [e.data["rank"] for e in firsts] == [3, 2]
    assert second.data == {"rank": 4}


async def test_a_subscriber_that_falls_behind_is_cut_off_without_slowing_the_others(
    make_notifier: Notifiers,
) -> None:
    notifier = make_notifier(max_backlog=5)
    async with (
        notifier.subscribe("store:1", None) as slow,
        notifier.subscribe("store:1", None) as fast,
    ):
        fast_seen = []
        for n in range(20):  # the slow one reads nothing meanwhile
            await notifier.publish("store:1", "registered", {"number": n})
            fast_seen.append(await _next(fast))

        async def read_all() -> list[Event]:
            return [event async for event in slow]

        slow_seen = await asyncio.wait_for(read_all(), timeout=1)  # its iteration ends
    assert [e.data["number"] for e in fast_seen] == list(range(20))
    numbers = [e.data["number"] for e in slow_seen]
    assert numbers == list(range(len(numbers))) and len(numbers) <= 5
    # Cut off, it reconnects with its Last-Event-ID and catches up from history.
    async with notifier.subscribe("store:1", slow_seen[-1].id if slow_seen else "0") as again:
        assert again.missed is not None
        assert [e.data["number"] for e in again.missed] == list(range(len(numbers), 20))
