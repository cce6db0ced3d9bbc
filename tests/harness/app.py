"""The Litestar app started as uvicorn would (its lifespan: database, queue workers), for tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar import Litestar

from entrypoints.container import Container


@contextlib.asynccontextmanager
async def lifespan_of(app: Litestar, *, stop_within: float = 10) -> AsyncIterator[None]:
    """Inside: the app has started. One task enters and leaves the lifespan: pytest-asyncio may tear
    a fixture down in another task than it set it up in, and anyio's task groups refuse that."""
    ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    stopping = asyncio.Event()

    async def run() -> None:
        try:
            async with app.lifespan():
                ready.set_result(None)
                await stopping.wait()
        except BaseException as error:
            if ready.done():
                raise  # failed while stopping: the teardown below reports it
            ready.set_exception(error)  # failed while starting: the setup reports it

    task = asyncio.create_task(run())
    async with asyncio.timeout(10):
        await ready
    try:
        yield
    finally:
        stopping.set()
        async with asyncio.timeout(stop_within):
            await task


@contextlib.asynccontextmanager
async def consumer_beside(container: Container, *, join_within: float = 60) -> AsyncIterator[None]:
    """With Kafka configured: `waitline consume`'s consumer runs inside, its group joined before the
    block starts (the app's own resources, started by its lifespan, are shared with it)."""
    if not container.settings().kafka_bootstrap:
        yield
        return
    consumer, process, stopping = container.consumer(), container.process(), asyncio.Event()
    task = asyncio.create_task(consumer.run(process, process.give_up, stopping))
    try:
        async with asyncio.timeout(join_within):
            while not consumer.joined.is_set():
                if task.done():
                    task.result()  # failed to start: say why
                await asyncio.sleep(0.05)
        yield
    finally:
        stopping.set()
        async with asyncio.timeout(30):
            await task


def quiet_litestar(items: list[pytest.Item], folder: Path) -> None:
    """Litestar repeats the same deprecation notes about the handlers' signatures (inferred
    dependencies) for every app it builds: dozens per test, drowning real failures."""
    quiet = [
        pytest.mark.filterwarnings("ignore::litestar.exceptions.LitestarDeprecationWarning"),
        pytest.mark.filterwarnings("ignore:Deprecated '(header|query)' parameter:DeprecationWarning"),
    ]
    for item in items:
        if folder in item.path.parents:
            for mark in quiet:
                item.add_marker(mark)
