"""The Kafka broker stopped or frozen, on a private Tansu the test starts, stops and starts again.

V3 answers 503 UNAVAILABLE with Retry-After within the producer's timeout (2 s), nothing queued and
no QUEUED status left behind; V2 and reads keep working (they need no broker); /health/ready names
the queue as DOWN. Once the broker is back, V3 flows again through the same app and consumer.
(This Tansu keeps messages in memory: a restarted broker is empty, so the test creates the topics
again, as `waitline topics create` would on a real Kafka that had lost nothing.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from faultkit import assert_unavailable, container_on_kafka, make_topics, serving, timed

from entrypoints.container import Container
from harness.app import consumer_beside
from harness.httpkit import Api, Tokens
from harness.kafka import PrivateBroker

ANSWERED_WITHIN = 8.0  # the producer gives up at 2 s (3 s with metadata); a hang would be 30 s


@pytest.fixture
def broker() -> Iterator[PrivateBroker]:
    with PrivateBroker() as broker:
        yield broker


@pytest.fixture
def container(broker: PrivateBroker, postgres_url: str, redis_url: str, tmp_path: Path) -> Container:
    return container_on_kafka(tmp_path / "data", postgres_url, redis_url, broker.bootstrap)


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(container) as client, consumer_beside(container):
        yield client


async def test_a_stopped_broker_is_503_at_once_and_v3_flows_again_once_it_is_back(
    broker: PrivateBroker, container: Container, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    api = Api(client, tokens)
    created = await client.post("/stores", json={"name": "Cafe", "waitingOpen": True}, headers=tokens.admin)
    store_id = created.json()["id"]
    before = (await api.join_v3(store_id, "before")).json()["traceId"]
    assert (await api.outcome(before, tokens.admin))["waiting"]["number"] == 1

    broker.stop()
    assert_unavailable(await timed(api.join_v3(store_id, "during")), ANSWERED_WITHIN)
    ready = await client.get("/health/ready")
    assert ready.status_code == 503 and ready.json()["dependencies"]["queue"]["status"] == "DOWN"
    # V2 needs no broker: it is served, and nothing of the refused V3 request is pending.
    assert (await api.join_v2(store_id, "v2")).json()["number"] == 2
    assert await container.queue().pending(store_id) == []

    broker.start()
    await make_topics(container.settings())
    after = (await api.join_v3(store_id, "during")).json()["traceId"]
    decided = await api.outcome(after, tokens.admin, within=60)
    assert decided["waiting"]["number"] == 3  # the refused attempt took no number


async def test_a_frozen_broker_is_503_within_the_timeout_then_recovers(
    broker: PrivateBroker, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    api = Api(client, tokens)
    created = await client.post("/stores", json={"name": "Cafe", "waitingOpen": True}, headers=tokens.admin)
    store_id = created.json()["id"]
    broker.pause()
    try:
        assert_unavailable(await timed(api.join_v3(store_id, "frozen")), ANSWERED_WITHIN)
    finally:
        broker.resume()
    trace = (await api.join_v3(store_id, "thawed")).json()["traceId"]
    assert (await api.outcome(trace, tokens.admin, within=60))["status"] == "REGISTERED"
