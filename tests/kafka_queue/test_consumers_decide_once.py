"""The whole V3 path on Kafka with the real use cases, PostgreSQL and the Redis lock: consumers that
join mid-burst or are SIGKILLed while they drain still decide every request exactly once, numbered
in the order the broker took them."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from application.access import Actor, Role
from application.requests import RegistrationRequest, RequestState
from application.stores import NewStore
from entrypoints.container import Container, start, stop
from entrypoints.settings import Settings
from kafka_queue.conftest import make_container
from kafka_queue.kit import request, until

ADMIN = Actor(Role.ADMIN, "admin")
WAITLINE = Path(sys.executable).with_name("waitline")


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Container]:
    container = make_container(settings)
    await start(container)
    yield container
    await stop(container)


async def _open_store(api: Container) -> int:
    store = await api.create_store()(ADMIN, NewStore(name="Hot", waiting_open=True))
    return int(store["id"])


async def _queue(api: Container, store_id: int, n: int, prefix: str = "t") -> list[str]:
    queue, traces = api.queue(), []
    for i in range(n):
        accepted = request(store_id, i, trace=f"{prefix}-{i:05d}")
        await queue.publish(accepted)
        traces.append(accepted.trace_id)
    return traces


async def _decided(api: Container, traces: list[str]) -> dict[str, int]:
    """Each decided traceId's number (all of them REGISTERED)."""
    async with api.uow() as uow:
        statuses = await uow.requests.decided(traces)
        numbers = {}
        for trace, status in statuses.items():
            assert status.state is RequestState.REGISTERED, status
            assert status.waiting_id is not None
            waiting = await uow.waitings.get(status.waiting_id)
            assert waiting is not None
            numbers[trace] = waiting.number
    return numbers


async def _count(api: Container, traces: list[str]) -> int:
    async with api.uow() as uow:
        return len(await uow.requests.decided(traces))


async def test_a_consumer_joining_mid_burst_takes_over_partitions_and_nothing_is_lost_or_doubled(
    api: Container, settings: Settings
) -> None:
    stores = [await _open_store(api) for _ in range(4)]
    traces = {store_id: await _queue(api, store_id, 150, f"s{store_id}") for store_id in stores}
    everything = [trace for batch in traces.values() for trace in batch]
    settings = settings.model_copy(update={"batch_size": 10})
    first, second = make_container(settings), make_container(settings)
    for container in (first, second):
        await start(container)
    stopping, runs = asyncio.Event(), []
    process = first.process()
    second_consumer = second.consumer()

    async def slow_until_the_second_joins(batch: Sequence[RegistrationRequest]) -> object:
        if not second_consumer.joined.is_set():
            await asyncio.sleep(0.2)  # so that the rebalance comes mid-burst
        return await process(batch)

    try:
        runs.append(
            asyncio.create_task(first.consumer().run(slow_until_the_second_joins, process.give_up, stopping))
        )
        await until(_some(api, everything, 20), what="the first consumer under way")
        process_b = second.process()
        runs.append(asyncio.create_task(second_consumer.run(process_b, process_b.give_up, stopping)))
        await until(_some(api, everything, len(everything)), within=120, what="every request decided")
    finally:
        stopping.set()
        await asyncio.gather(*runs)
        for container in (first, second):
            await stop(container)
    assert first.consumer().stats.decided > 0 and second_consumer.stats.decided > 0
    numbers = await _decided(api, everything)
    for batch in traces.values():
        assert [numbers[trace] for trace in batch] == list(range(1, len(batch) + 1))


def _some(api: Container, traces: list[str], at_least: int) -> Callable[[], Awaitable[bool]]:
    async def enough() -> bool:
        return await _count(api, traces) >= at_least

    return enough


def _environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"WAITLINE_{name.upper()}"] = str(value)
    env["WAITLINE_BATCH_SIZE"] = "100"
    return env


async def test_consumers_killed_while_draining_leave_every_request_decided_once_in_order(
    api: Container, settings: Settings, tmp_path: Path
) -> None:
    store_id = await _open_store(api)
    traces = await _queue(api, store_id, 2000)
    env, rng = _environment(settings), random.Random(20261126)
    killed_mid_drain = 0
    for kill, share in enumerate((0.15, 0.45, 0.75)):
        decided = await _count(api, traces)
        if decided == len(traces):
            break  # the consumer before drained the rest between the last poll and its kill
        with (tmp_path / f"consumer-{kill}.log").open("wb") as log:
            consumer = await asyncio.create_subprocess_exec(
                str(WAITLINE), "consume", env=env, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                wanted = int(share * len(traces)) + rng.randrange(50)
                target = min(len(traces), max(decided + 1, wanted))
                await until(_some(api, traces, target), within=90, what=f"{target} decided before the kill")
            finally:
                consumer.send_signal(signal.SIGKILL)
                await consumer.wait()
        killed_mid_drain += await _count(api, traces) < len(traces)
    assert killed_mid_drain >= 1, "no consumer was killed while requests were left to decide"
    # The last one drains what is left (if the last kill came late, nothing), and stops cleanly on
    # SIGTERM once it runs (one still starting up has no handler yet and dies of it).
    last_log = tmp_path / "consumer-last.log"
    with last_log.open("wb") as log:
        consumer = await asyncio.create_subprocess_exec(
            str(WAITLINE), "consume", env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        await until(
            _some(api, traces, len(traces)), within=120, what="every request decided after the crashes"
        )
        await until(
            lambda: "working partitions" in last_log.read_text(), within=60, what="the last one joined"
        )
    finally:
        consumer.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await consumer.wait() == 0
    numbers = await _decided(api, traces)
    assert [numbers[trace] for trace in traces] == list(range(1, len(traces) + 1))
    assert await api.queue().pending(store_id) == []
