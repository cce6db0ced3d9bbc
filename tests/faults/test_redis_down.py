"""Redis stopped mid-run, on a private redis-server the test starts, stops and starts again, with
Kafka configured: V3 keeps accepting (the broker has the request), V2 answers 503 at once (the
stores' lock is on Redis), and once Redis is back every accepted request is decided, in order, and
V2 is served again; nothing is lost."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from faultkit import assert_unavailable, serving, timed

from entrypoints.container import Container
from entrypoints.settings import Settings
from harness.app import consumer_beside
from harness.httpkit import SECRET, Api, Tokens
from harness.kafka import TEST_SESSION_TIMEOUT, create_topics
from harness.postgres import empty_database, run_apart
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
    run_apart(empty_database(postgres_url))
    name = uuid.uuid4().hex
    settings = Settings(
        data_dir=tmp_path / "data",
        jwt_secret=SECRET,
        database_url=postgres_url,
        redis_url=redis.url,
        kafka_bootstrap=kafka_bootstrap,
        kafka_topic=f"requests-{name}",
        kafka_dead_letter_topic=f"dlq-{name}",
        kafka_group=f"group-{name}",
        kafka_idempotence=False,
        kafka_session_timeout_seconds=TEST_SESSION_TIMEOUT,
        lock_wait_seconds=2.0,
    )
    run_apart(create_topics(kafka_bootstrap, [settings.kafka_topic, settings.kafka_dead_letter_topic], 4))
    container = Container()
    container.settings.override(settings)
    return container


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
