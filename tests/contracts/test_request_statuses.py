"""One contract for the request-status store, run against every implementation; then what only
the Redis store promises: sharing between processes, one pub/sub connection, expiry."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from adapters.status.local import LocalRequestStatuses
from adapters.status.redis import RedisRequestStatuses
from application.ports import RequestStatusStore
from application.requests import RequestState, RequestStatus

Stores = Callable[[], RequestStatusStore]
QUEUED = RequestStatus("t-1", 1, RequestState.QUEUED, user_id="42")


@dataclass
class RedisStores:
    """Stores on one Redis under a prefix of the test's own, each with its own client, as
    separate processes would have; closed after the test."""

    url: str
    prefix: str = field(default_factory=lambda: f"test:{uuid.uuid4().hex}:")
    made: list[RedisRequestStatuses] = field(default_factory=list)
    clients: list[Redis] = field(default_factory=list)

    def __call__(self, **options: Any) -> RedisRequestStatuses:
        self.made.append(RedisRequestStatuses.from_url(self.url, prefix=self.prefix, **options))
        return self.made[-1]

    def named(self, name: str) -> RedisRequestStatuses:
        """A store whose connections all carry `name`, to find them in CLIENT LIST."""
        client = Redis.from_pool(BlockingConnectionPool.from_url(self.url, client_name=name))
        self.clients.append(client)
        self.made.append(RedisRequestStatuses(client, prefix=self.prefix))
        return self.made[-1]

    def client(self, **options: Any) -> Redis:
        self.clients.append(Redis.from_url(self.url, decode_responses=True, **options))
        return self.clients[-1]

    async def close(self) -> None:
        for statuses in self.made:
            await statuses.close()
        cleaner = self.client()
        async for key in cleaner.scan_iter(match=f"{self.prefix}*"):
            await cleaner.delete(key)
        for client in self.clients:
            await client.aclose()


@pytest.fixture(params=["local", "redis"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    if request.param == "local":
        yield LocalRequestStatuses
        return
    stores = RedisStores(request.getfixturevalue("redis_url"))
    yield stores
    await stores.close()


@pytest.fixture
async def redis_stores(redis_url: str) -> AsyncIterator[RedisStores]:
    stores = RedisStores(redis_url)
    yield stores
    await stores.close()


async def test_put_then_get(make_store: Stores) -> None:
    statuses = make_store()
    await statuses.put(QUEUED)
    assert await statuses.get("t-1") == QUEUED
    assert await statuses.get("t-2") is None


async def test_every_field_comes_back(make_store: Stores) -> None:
    statuses = make_store()
    await statuses.put(QUEUED.registered(9))
    await statuses.put(RequestStatus("t-2", 2, RequestState.REJECTED, reason="QUEUE_FULL"))
    assert await statuses.get("t-1") == QUEUED.registered(9)
    assert await statuses.get("t-2") == RequestStatus("t-2", 2, RequestState.REJECTED, reason="QUEUE_FULL")


async def test_a_waiter_wakes_when_the_outcome_arrives(make_store: Stores) -> None:
    statuses = make_store()
    await statuses.put(QUEUED)
    waiter = asyncio.create_task(statuses.wait_decided("t-1", within=5))
    await asyncio.sleep(0.01)
    await statuses.put(QUEUED.registered(9))
    decided = await asyncio.wait_for(waiter, timeout=1)
    assert decided is not None and (decided.state, decided.waiting_id) == (RequestState.REGISTERED, 9)


async def test_an_outcome_already_known_is_answered_at_once(make_store: Stores) -> None:
    statuses = make_store()
    await statuses.put(QUEUED.rejected("QUEUE_FULL"))
    assert await asyncio.wait_for(statuses.wait_decided("t-1", within=5), 1) == QUEUED.rejected("QUEUE_FULL")


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


async def test_a_failure_replaces_queued_and_wakes_its_waiter(make_store: Stores) -> None:
    statuses = make_store()
    await statuses.put(QUEUED)
    waiter = asyncio.create_task(statuses.wait_decided("t-1", within=5))
    await asyncio.sleep(0.01)
    await statuses.put(QUEUED.failed("poison"))
    assert await asyncio.wait_for(waiter, timeout=1) == QUEUED.failed("poison")
    assert await statuses.get("t-1") == QUEUED.failed("poison")


async def test_a_failure_never_hides_an_outcome(make_store: Stores) -> None:
    statuses = make_store()
    await statuses.put(QUEUED.registered(9))
    await statuses.put(QUEUED.failed("poison"))
    assert await statuses.get("t-1") == QUEUED.registered(9)


async def test_a_replay_queues_a_failed_request_again_and_may_decide_it(make_store: Stores) -> None:
    statuses = make_store()
    await statuses.put(QUEUED.failed("poison"))
    await statuses.put(QUEUED)
    assert await statuses.get("t-1") == QUEUED
    await statuses.put(QUEUED.registered(9))
    assert await statuses.get("t-1") == QUEUED.registered(9)


async def test_forget(make_store: Stores) -> None:
    statuses = make_store()
    await statuses.put(QUEUED)
    await statuses.forget("t-1")
    assert await statuses.get("t-1") is None


async def test_a_waiter_wakes_when_another_process_puts_the_outcome(redis_stores: RedisStores) -> None:
    api, consumer = redis_stores(), redis_stores()
    await api.put(QUEUED)
    waiter = asyncio.create_task(api.wait_decided("t-1", within=5))
    await asyncio.sleep(0.05)
    await consumer.put(QUEUED.registered(9))
    assert await asyncio.wait_for(waiter, timeout=1) == QUEUED.registered(9)
    assert await api.get("t-1") == QUEUED.registered(9)


async def test_many_waiters_share_one_pubsub_connection(redis_stores: RedisStores) -> None:
    name = f"waiters-{uuid.uuid4().hex[:12]}"
    api, consumer, admin = redis_stores.named(name), redis_stores(), redis_stores.client()
    trace_ids = [f"t-{n}" for n in range(200)]
    waiters = [asyncio.create_task(api.wait_decided(trace_id, within=10)) for trace_id in trace_ids]
    await until(lambda: subscriptions(admin, name), [200])
    await asyncio.gather(
        *(consumer.put(RequestStatus(t, 1, RequestState.REGISTERED, waiting_id=1)) for t in trace_ids)
    )
    woken = await asyncio.wait_for(asyncio.gather(*waiters), timeout=2)
    assert all(status is not None and status.decided for status in woken)
    await until(lambda: subscriptions(admin, name), [])


async def test_a_status_expires(redis_stores: RedisStores) -> None:
    statuses, admin = redis_stores(ttl_seconds=60), redis_stores.client()
    await statuses.put(QUEUED)
    assert 0 < await admin.pttl(statuses.key("t-1")) <= 60_000


async def test_a_cancelled_waiter_leaves_no_subscription(redis_stores: RedisStores) -> None:
    statuses, admin = redis_stores(), redis_stores.client()
    channel = statuses.key("t-1")
    waiter = asyncio.create_task(statuses.wait_decided("t-1", within=5))
    await until(lambda: listeners(admin, channel), 1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await until(lambda: listeners(admin, channel), 0)


async def test_waiters_wake_after_the_pubsub_connection_was_dropped(redis_stores: RedisStores) -> None:
    name = f"dropped-{uuid.uuid4().hex[:12]}"
    api, consumer, admin = redis_stores.named(name), redis_stores(), redis_stores.client()
    waiter = asyncio.create_task(api.wait_decided("t-1", within=10))
    await until(lambda: subscriptions(admin, name), [1])
    for client in await admin.client_list():
        if client["name"] == name and int(client["sub"]):
            await admin.client_kill_filter(_id=client["id"])
    await until(lambda: subscriptions(admin, name), [1])  # subscribed again, on a new connection
    await consumer.put(QUEUED.registered(9))
    assert await asyncio.wait_for(waiter, timeout=2) == QUEUED.registered(9)


async def subscriptions(admin: Redis, name: str) -> list[int]:
    """How many channels each connection named `name` listens on, for those that listen at all."""
    clients = await admin.client_list()
    return [int(c["sub"]) for c in clients if c["name"] == name and int(c["sub"])]


async def listeners(admin: Redis, channel: str) -> int:
    [(_, count)] = await admin.pubsub_numsub(channel)
    return int(count)


async def until(probe: Callable[[], Any], expected: object, within: float = 3.0) -> None:
    """Wait for Redis to show what is expected: subscriptions change on another connection."""
    async with asyncio.timeout(within):
        while True:
            if await probe() == expected:
                return
            await asyncio.sleep(0.01)


async def test_forget_keeps_a_decided_status(make_store: Stores) -> None:
    """An accept that failed forgets its QUEUED status; a consumer's outcome, if quicker, stays."""
    statuses = make_store()
    await statuses.put(QUEUED.registered(3))
    await statuses.forget("t-1")
    known = await statuses.get("t-1")
    assert known is not None and known.waiting_id == 3


async def test_put_all_keeps_each_and_wakes_its_waiter(make_store: Stores) -> None:
    statuses = make_store()
    queued = [RequestStatus(f"b-{n}", 1, RequestState.QUEUED, user_id="42") for n in range(50)]
    await statuses.put_all(queued)
    waiter = asyncio.create_task(statuses.wait_decided("b-7", within=5))
    await asyncio.sleep(0.05)
    await statuses.put_all([status.registered(n) for n, status in enumerate(queued)])
    woken = await asyncio.wait_for(waiter, timeout=2)
    assert woken is not None and woken.waiting_id == 7
    assert [await statuses.get(f"b-{n}") for n in (0, 49)] == [
        queued[0].registered(0),
        queued[49].registered(49),
    ]
