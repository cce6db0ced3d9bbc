"""Redis stopped mid-run, on a private redis-server the test starts, stops and starts again, with
Kafka configured: V3 keeps accepting (the broker has the request), V2 answers 503 at once (the
stores' lock is on Redis), and once Redis is back every accepted request is decided, in order, and
V2 is served again; nothing is lost."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from faultkit import assert_unavailable, container_on_kafka, serving, timed

from entrypoints.container import Container
from harness.app import consumer_beside
from harness.httpkit import Api, Tokens
from harness.redis import PrivateRedis

ANSWERED_WITHIN = 8.0


@pytest.fixture
def redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def container(redis: PrivateRedis, postgres_url: str, kafka_bootstrap: str, tmp_path: Path) -> Container:
    return container_on_kafka(
        tmp_path / "data", postgres_url, redis.url, kafka_bootstrap, lock_wait_seconds=2.0
    )


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(container) as client, consumer_beside(container):
        yield client


async def test_with_redis_away_v3_keeps_accepting_and_everything_is_decided_once_it_is_back(
    redis: PrivateRedis, client: httpx.AsyncClient, tokens: Tokens
) -> None:
    api = Api(client, tokens)
    created = await client.post("/stores", json={"name": "Cafe", "waitingOpen": True}, headers=tokens.admin)
    store_id = created.json()["id"]
    first = (await api.join_v3(store_id, "first")).json()["traceId"]
    assert (await api.outcome(first, tokens.admin))["waiting"]["number"] == 1

    redis.stop()
    accepted = []
    for customer in ("a", "b", "c"):
        answer = await timed(api.join_v3(store_id, customer))
        assert answer.response.status_code == 202, answer.response.text
        accepted.append(answer.response.json()["traceId"])
    assert_unavailable(
        await timed(api.join_v2(store_id, "v2")), ANSWERED_WITHIN, ("UNAVAILABLE", "LOCK_TIMEOUT")
    )

    redis.start()
    numbers = [(await api.outcome(trace, tokens.admin, within=60))["waiting"]["number"] for trace in accepted]
    assert numbers == [2, 3, 4]  # in the order they were accepted
    assert (await api.join_v2(store_id, "v2")).json()["number"] == 5
