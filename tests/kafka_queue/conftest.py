"""Kafka fixtures: topics, a group and Redis keys of each test's own, on the session's broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from adapters.queue.kafka import KafkaConfig
from adapters.queue.pending import RedisPendingRequests
from entrypoints.container import Container
from entrypoints.settings import Settings
from harness.httpkit import SECRET
from harness.kafka import TEST_SESSION_TIMEOUT, create_topics
from harness.postgres import empty_database, run_apart

PARTITIONS = 4


@pytest.fixture
async def kafka(kafka_bootstrap: str) -> KafkaConfig:
    name = uuid.uuid4().hex[:12]
    config = KafkaConfig(
        bootstrap=kafka_bootstrap,
        topic=f"requests-{name}",
        dead_letter_topic=f"dlq-{name}",
        group=f"group-{name}",
        idempotence=False,  # Tansu refuses the idempotent producer
        session_timeout=TEST_SESSION_TIMEOUT,
    )
    await create_topics(kafka_bootstrap, [config.topic, config.dead_letter_topic], PARTITIONS)
    return config


@pytest.fixture
def redis_prefix() -> str:
    return f"test:{uuid.uuid4().hex}:"


@pytest.fixture
async def pending(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisPendingRequests]:
    pending = RedisPendingRequests(Redis.from_url(redis_url), prefix=redis_prefix)
    yield pending
    await pending.close()


@pytest.fixture
def settings(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str, kafka: KafkaConfig
) -> Settings:
    """The production profile on this test's topics and keys, the session's database emptied."""
    run_apart(empty_database(postgres_url))
    return Settings(
        data_dir=tmp_path / "data",
        jwt_secret=SECRET,
        database_url=postgres_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        kafka_bootstrap=kafka.bootstrap,
        kafka_topic=kafka.topic,
        kafka_dead_letter_topic=kafka.dead_letter_topic,
        kafka_group=kafka.group,
        kafka_idempotence=False,
        kafka_session_timeout_seconds=TEST_SESSION_TIMEOUT,
    )


def make_container(settings: Settings) -> Container:
    container = Container()
    container.settings.override(settings)
    return container
