"""The distributed topology as users run it, for the full-stack test: two `waitline serve` and two
`waitline consume` processes (entrypoints.stack, as `scripts/stack` starts them) on a PostgreSQL
cluster, a Redis and a Tansu broker of the module's own, which the fault tests stop and start
again. Never the machine's shared servers: a fault only ever harms what the test started.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from stackkit import PARTITIONS, SECRET, Servers

from entrypoints.stack import Stack, Topology
from harness.kafka import TEST_SESSION_TIMEOUT, PrivateBroker
from harness.postgres import PrivateCluster
from harness.redis import PrivateRedis


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    redis = PrivateRedis()
    try:
        redis.start()
        with PrivateCluster() as cluster, PrivateBroker() as broker:
            yield Servers(cluster, redis, broker)
    finally:
        redis.close()


@pytest.fixture(scope="module")
def stack(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "WAITLINE_DATABASE_URL": servers.cluster.url,
        "WAITLINE_REDIS_URL": servers.redis.url,
        "WAITLINE_KAFKA_BOOTSTRAP": servers.broker.bootstrap,
        "WAITLINE_KAFKA_IDEMPOTENCE": "false",  # this Tansu cannot
        "WAITLINE_KAFKA_PARTITIONS": str(PARTITIONS),
        "WAITLINE_KAFKA_SESSION_TIMEOUT_SECONDS": str(TEST_SESSION_TIMEOUT),
        # The broker's answer is awaited 1.5 s: a stopped broker is a 503 within 2 s.
        "WAITLINE_KAFKA_TIMEOUT_SECONDS": "1.5",
        # An outage is answered within about a second.
        "WAITLINE_DB_STATEMENT_TIMEOUT": "1",
        "WAITLINE_DB_CONNECT_TIMEOUT": "1",
        "WAITLINE_DB_POOL_TIMEOUT": "1",
        "WAITLINE_JWT_SECRET": SECRET,
        "WAITLINE_LOG_LEVEL": "INFO",
    }
    folder: Path = tmp_path_factory.mktemp("stack")
    with Stack(Topology(env, folder, apis=2, consumers=2)) as started:
        yield started
    for member in started.members:
        assert "Traceback" not in member.log(), f"{member.name}:\n{member.log()[-5000:]}"
    # A clean stop on SIGTERM (uvicorn re-raises the signal once it has shut down).
    assert all(status in (0, -signal.SIGTERM) for status in started.exits.values()), started.exits
