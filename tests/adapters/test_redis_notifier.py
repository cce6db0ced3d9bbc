"""The Redis notifier beyond the port's contract (tests/contracts/test_notifier.py): several
processes, one pub/sub connection per process, slow subscribers, trimming and expiry of the
history, and the pub/sub connection dropping. On the real Redis, under keys of each test's own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from adapters.notify.redis import RedisNotifier
from application.ports import Event, Subscription

Notifiers = Callable[..., RedisNotifier]


@pytest.fixture
async def admin(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def notifiers(redis_url: str, admin: Redis) -> AsyncIterator[Notifiers]:
    """Notifiers under the test's prefix, each with its own connections as a separate process has;
    `name` labels them in CLIENT LIST."""
    prefix = f"test:{uuid.uuid4().hex}:"
    made: list[RedisNotifier] = []
    clients: list[Redis] = []

    def make(name: str | None = None, **options: Any) -> RedisNotifier:
        if name is None:
            made.append(RedisNotifier.from_url(redis_url, prefix=prefix, **options))
        else:
            pool = BlockingConnectionPool.from_url(redis_url, client_name=name, max_connections=100)
            clients.append(Redis.from_pool(pool))
            made.append(RedisNotifier(clients[-1], prefix=prefix, **options))
        return made[-1]

    yield make
    for notifier in made:
        await notifier.close()
    for client in clients:
        await client.aclose()
    async for key in admin.scan_iter(match=f"{prefix}*"):
        await admin.delete(key)


async def _take(subscription: Subscription, count: int, within: float = 2) -> list[Event]:
    events = aiter(subscription)
    return [await asyncio.wait_for(anext(events), within) for _ in range(count)]


async def _listening(admin: Redis, name: str) -> list[int]:
    """How many channels each connection named `name` listens on, for those that listen at all."""
    return [int(c["sub"]) for c in await admin.client_list() if c["name"] == name and int(c["sub"])]


async def test_a_subscriber_on_one_process_gets_what_another_publishes_in_order(notifiers: Notifiers) -> None:
    api, consumer = notifiers(), notifiers()
    async with api.subscribe("store:1", None) as subscription:
        for n in range(20):
            await consumer.publish("store:1", "registered", {"number": n})
        events = await _take(subscription, 20)
    assert [e.data["number"] for e in events] == list(range(20))


async def test_a_reconnect_to_another_process_gets_exactly_what_it_missed(notifiers: Notifiers) -> None:
    first, second, consumer = notifiers(), notifiers(), notifiers()
    async with first.subscribe("waiting:7", None) as subscription:
        await consumer.publish("waiting:7", "rank", {"rank": 3})
        [seen] = await _take(subscription, 1)
    for rank in (2, 1):
        await consumer.publish("waiting:7", "rank", {"rank": rank})
    async with second.subscribe("waiting:7", seen.id) as again:
        assert again.missed is not None
        assert [e.data["rank"] for e in again.missed] == [2, 1]
        assert again.head == again.missed[-1].id
        await consumer.publish("waiting:7", "called", {"status": "CALLED"})
        [called] = await _take(again, 1)
    assert called.type == "called"


async def test_events_published_while_subscribing_are_neither_lost_nor_doubled(notifiers: Notifiers) -> None:
    api, consumer = notifiers(), notifiers()

    async def publish_all() -> None:
        for n in range(300):
            await consumer.publish("store:1", "registered", {"number": n})

    publishing = asyncio.create_task(publish_all())
    await asyncio.sleep(0.02)
    async with api.subscribe("store:1", None) as subscription:
        await publishing
        async with api.subscribe("store:1", subscription.head) as replay:
            assert replay.missed is not None
            expected = [e.data["number"] for e in replay.missed]
        live = await _take(subscription, len(expected))
    assert 0 < len(expected) < 300
    assert [e.data["number"] for e in live] == expected == list(range(300 - len(expected), 300))


async def test_a_thousand_subscribers_share_one_pubsub_connection(notifiers: Notifiers, admin: Redis) -> None:
    name = f"notify-{uuid.uuid4().hex[:12]}"
    api, consumer = notifiers(name), notifiers()
    entered = asyncio.Event()
    ready: list[Subscription] = []

    async def watch(stream: str) -> Event:
        async with api.subscribe(stream, None) as subscription:
            ready.append(subscription)
            if len(ready) == 1000:
                entered.set()
            [event] = await _take(subscription, 1, within=10)
            return event

    watchers = [asyncio.create_task(watch(f"store:{n % 10}")) for n in range(1000)]
    await asyncio.wait_for(entered.wait(), timeout=20)
    assert await _listening(admin, name) == [10]
    for n in range(10):
        await consumer.publish(f"store:{n}", "opened", {"store": n})
    events = await asyncio.wait_for(asyncio.gather(*watchers), timeout=10)
    assert [e.data["store"] for e in events] == [n % 10 for n in range(1000)]
    assert await _listening(admin, name) == []  # the last subscriber out unsubscribed


async def test_a_stuck_subscriber_is_cut_off_without_delaying_the_others(notifiers: Notifiers) -> None:
    api, consumer = notifiers(max_backlog=10), notifiers()
    async with api.subscribe("store:1", None) as stuck, api.subscribe("store:1", None) as reader:
        for n in range(50):
            await consumer.publish("store:1", "registered", {"number": n})
            [event] = await _take(reader, 1, within=1)
            assert event.data["number"] == n
        kept = [event async for event in stuck]  # ends: it was cut off
    assert [e.data["number"] for e in kept] == list(range(10))


async def test_history_keeps_the_last_events_and_the_recent_ones_then_asks_for_a_snapshot(
    notifiers: Notifiers,
) -> None:
    api = notifiers(keep_events=5, keep_seconds=0.5)
    async with api.subscribe("store:1", None) as subscription:
        for n in range(13):
            if n in (6, 7):
                await asyncio.sleep(0.35)  # 0-5 end up old; the stream is never idle that long
            await api.publish("store:1", "registered", {"number": n})
        ids = [e.id for e in await _take(subscription, 13)]
    async with api.subscribe("store:1", ids[5]) as recent:
        assert recent.missed is not None  # 6 is recent: more than keep_events are kept
        assert [e.data["number"] for e in recent.missed] == list(range(6, 13))
    for too_old in (ids[0], ids[4]):
        async with api.subscribe("store:1", too_old) as subscription:
            assert subscription.missed is None


async def test_an_idle_stream_expires_and_a_late_reconnect_replays_only_what_is_known_complete(
    notifiers: Notifiers, admin: Redis
) -> None:
    api = notifiers(keep_seconds=0.3)
    await api.publish("waiting:1", "rank", {"rank": 2})
    assert 0 < await admin.pttl(api.key("waiting:1")) <= 300
    async with api.subscribe("waiting:1", None) as subscription:
        seen_all = subscription.head
    await api.publish("waiting:1", "rank", {"rank": 1})
    async with api.subscribe("waiting:1", None) as subscription:
        newest = subscription.head
    await asyncio.sleep(0.4)
    assert await admin.exists(api.key("waiting:1")) == 0
    async with api.subscribe("waiting:1", None) as gone:
        assert gone.head == newest  # the newest id outlives the stream
    await api.publish("waiting:1", "called", {"status": "CALLED"})
    async with api.subscribe("waiting:1", newest) as late:
        assert late.missed is not None and [e.type for e in late.missed] == ["called"]
    async with api.subscribe("waiting:1", seen_all) as stale:
        assert stale.missed is None  # rank 1 went with the expired stream: a snapshot is needed


async def test_a_dropped_pubsub_connection_ends_subscriptions_and_a_reconnect_catches_up(
    notifiers: Notifiers, admin: Redis
) -> None:
    name = f"dropped-{uuid.uuid4().hex[:12]}"
    api, consumer = notifiers(name), notifiers()
    async with api.subscribe("waiting:1", None) as subscription:
        await consumer.publish("waiting:1", "rank", {"rank": 2})
        [seen] = await _take(subscription, 1)
        for client in await admin.client_list():
            if client["name"] == name and int(client["sub"]):
                await admin.client_kill_filter(_id=client["id"])
        await consumer.publish("waiting:1", "rank", {"rank": 1})
        rest = await asyncio.wait_for(_drain(subscription), timeout=2)
    async with api.subscribe("waiting:1", (rest or [seen])[-1].id) as again:
        assert again.missed is not None
        assert [e.data["rank"] for e in rest + again.missed] == [1]
    assert await _listening(admin, name) == []


async def _drain(subscription: Subscription) -> list[Event]:
    return [event async for event in subscription]


async def test_without_redis_publish_and_subscribe_raise() -> None:
    api = RedisNotifier.from_url("redis://127.0.0.1:1")
    try:
        with pytest.raises(RedisConnectionError):
            await api.publish("store:1", "opened", {})
        with pytest.raises(RedisConnectionError):
            async with api.subscribe("store:1", None):
                pass
    finally:
        await api.close()
