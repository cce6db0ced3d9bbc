"""Plumbing for the fault tests: the app on a given database, served on the test's own loop,
tokens, and the answers' timing."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from entrypoints.container import Container
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from harness.app import lifespan_of
from harness.httpkit import PROBLEM_JSON, SECRET
from harness.kafka import TEST_SESSION_TIMEOUT, create_topics
from harness.postgres import PrivateCluster, empty_database, run_apart

# Small timeouts, so that an outage is answered within about a second.
TIMEOUTS: dict[str, Any] = {
    "db_statement_timeout": 1.0,
    "db_connect_timeout": 1.0,
    "db_pool_timeout": 1.0,
    "lock_wait_seconds": 2.0,
    "db_pool_size": 4,
}


def container_on(cluster: PrivateCluster, data_dir: Path, **overrides: Any) -> Container:
    settings = Settings(
        data_dir=data_dir, jwt_secret=SECRET, database_url=cluster.url, **{**TIMEOUTS, **overrides}
    )
    container = Container()
    container.settings.override(settings)
    return container


def container_on_kafka(
    data_dir: Path, postgres_url: str, redis_url: str, bootstrap: str, **overrides: Any
) -> Container:
    """The production profile (the session's database emptied) on topics, a group and Redis keys of
    its own, the topics made; for the fault tests that stop the broker or Redis."""
    run_apart(empty_database(postgres_url))
    name = uuid.uuid4().hex
    settings = Settings(
        data_dir=data_dir,
        jwt_secret=SECRET,
        database_url=postgres_url,
        redis_url=redis_url,
        redis_prefix=f"test:{name}:",
        kafka_bootstrap=bootstrap,
        kafka_topic=f"requests-{name}",
        kafka_dead_letter_topic=f"dlq-{name}",
        kafka_group=f"group-{name}",
        kafka_idempotence=False,
        kafka_session_timeout_seconds=TEST_SESSION_TIMEOUT,
        **overrides,
    )
    run_apart(make_topics(settings))
    container = Container()
    container.settings.override(settings)
    return container


async def make_topics(settings: Settings) -> None:
    """As `waitline topics create` would (again, after a Tansu restart lost them)."""
    assert settings.kafka_bootstrap
    await create_topics(settings.kafka_bootstrap, [settings.kafka_topic, settings.kafka_dead_letter_topic], 4)


@contextlib.asynccontextmanager
async def serving(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (the queue's workers included), and a client on this loop."""
    app = create_app(container)
    async with lifespan_of(app, stop_within=15):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@dataclass
class Timed:
    response: httpx.Response
    seconds: float


async def timed(call: Any, limit: float = 30.0) -> Timed:
    """Await one request, bounded (a hang fails rather than stalls the test), and say how long it took."""
    started = time.perf_counter()
    async with asyncio.timeout(limit):
        response = await call
    return Timed(response, time.perf_counter() - started)


def assert_unavailable(answer: Timed, within: float, codes: tuple[str, ...] = ("UNAVAILABLE",)) -> None:
    """503 UNAVAILABLE as a problem, with Retry-After, in time: never a 500, never a hang."""
    response = answer.response
    where = f"{response.request.method} {response.request.url.path}"
    assert response.status_code == 503, (where, response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON), (where, response.headers)
    assert response.json()["code"] in codes, (where, response.text)
    assert int(response.headers["retry-after"]) >= 1, (where, response.headers)
    assert answer.seconds < within, f"{where} took {answer.seconds:.2f} s"
