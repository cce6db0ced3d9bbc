"""Shared test setup: hypothesis profiles sized for the suite's time budget, the session's PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from adapters.persistence.engine import Limits, make_engine
from adapters.persistence.schema import upgrade
from harness.kafka import kafka_bootstrap_or_private
from harness.postgres import postgres_database, run_apart
from harness.redis import redis_server

# `default` keeps the whole suite within minutes on two cores; `thorough` is for long runs:
# HYPOTHESIS_PROFILE=thorough scripts/test
settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def postgres_server_database() -> Iterator[str]:
    """This session's own database on the real PostgreSQL, migrated to head by `waitline migrate`'s code."""
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url(postgres_server_database: str) -> str:
    async def migrate() -> None:
        engine = make_engine(postgres_server_database, Limits(pool_size=1))
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    run_apart(migrate())
    return postgres_server_database


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The real Redis (or a private one), shared: every test keeps to keys of its own."""
    with redis_server() as url:
        yield url


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A Kafka-protocol broker: WAITLINE_TEST_KAFKA, or a private Tansu. Tests keep to topics of their own."""
    with kafka_bootstrap_or_private() as bootstrap:
        yield bootstrap
