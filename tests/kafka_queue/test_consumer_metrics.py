"""`waitline consume` serves Prometheus text on WAITLINE_METRICS_PORT: what it decided (by channel
and outcome), its dead letters, and how far behind each partition it is."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from application.access import Actor, Role
from application.stores import NewStore
from entrypoints.container import Container
from entrypoints.settings import Settings
from kafka_queue.conftest import PARTITIONS, make_container
from kafka_queue.kit import request, until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Container]:
    container = make_container(settings)
    yield container
    await container.queue().close()
    await container.pending().close()
    await container.engine().dispose()


async def scrape(client: httpx.AsyncClient, url: str) -> Samples:
    try:
        response = await client.get(url)
    except httpx.TransportError:
        return {}
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def test_the_consumer_serves_its_decisions_dead_letters_and_lag(
    api: Container, settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = dict(os.environ)
    env.update({f"WAITLINE_{name.upper()}": str(value) for name, value in settings if value is not None})
    env["WAITLINE_METRICS_PORT"] = str(port)
    store = await api.create_store()(Actor(Role.ADMIN, "admin"), NewStore(name="Watched", waiting_open=True))
    queue = api.queue()
    for accepted in (
        request(store["id"], 1),
        request(store["id"], 1, "again"),
        request(store["id"] + 1000, 2),
    ):
        await queue.publish(accepted)

    log = tmp_path / "consume.log"
    with log.open("wb") as output:
        consumer = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "entrypoints", "consume", env=env, stdout=output, stderr=subprocess.STDOUT
        )
    url, samples = f"http://127.0.0.1:{port}/metrics", {}
    try:
        async with httpx.AsyncClient(timeout=5) as client:

            async def decided_all() -> bool:
                nonlocal samples
                samples = await scrape(client, url)
                return samples.get(("waitline_consumer_decided_total", frozenset())) == 3

            await until(decided_all, within=90, what=f"three decisions on {url}")
    finally:
        consumer.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            returned = await consumer.wait()
    assert returned == 0, log.read_text()

    def v3(outcome: str) -> float | None:
        labels = {("version", "v3"), ("channel", "USER"), ("outcome", outcome)}
        return samples.get(("waitline_registrations_total", frozenset(labels)))

    assert (v3("REGISTERED"), v3("ALREADY_WAITING"), v3("STORE_NOT_FOUND")) == (1, 1, 1)
    assert samples[("waitline_consumer_dead_letters_total", frozenset())] == 0
    lag = {
        dict(labels)["partition"]: value
        for (name, labels), value in samples.items()
        if name == "waitline_consumer_lag" and dict(labels)["topic"] == settings.kafka_topic
    }
    assert lag and set(lag) <= {str(partition) for partition in range(PARTITIONS)}
    assert set(lag.values()) == {0}
    assert samples[("waitline_lock_wait_seconds_count", frozenset({("outcome", "acquired")}))] >= 1
