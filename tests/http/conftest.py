"""HTTP fixtures: a fresh app per test (own data folder), a client on the test's loop, tokens.

Every test runs twice: embedded (SQLite, in-process lock) and as in production (the session's
PostgreSQL database, emptied before each test, and the Redis lock). A module that sets
`PROFILES = (..., "kafka")` also runs on Kafka: V3 goes through topics of the test's own on the
session's broker, and a consumer (`waitline consume`'s) works them beside the app. Tests that need
other settings mark themselves, e.g. `@pytest.mark.waitline(lock_wait_seconds=0.05)`; the keywords
are `Settings` fields; `@pytest.mark.profiles("sqlite", ...)` keeps a test to the profiles named.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from dependency_injector import providers

from entrypoints.container import Container
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from harness.app import consumer_beside, lifespan_of, quiet_litestar
from harness.httpkit import SECRET, Api, InLoopTransport, Tokens
from harness.kafka import TEST_SESSION_TIMEOUT, create_topics
from harness.postgres import empty_database, run_apart
from unit.helpers import SettableClock

HERE = Path(__file__).parent


DEFAULT_PROFILES = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "waitline(**settings): Settings fields for this test's app")
    config.addinivalue_line("markers", "profiles(*names): run this test on these profiles only")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    quiet_litestar(items, HERE)
    kept, dropped = [], []
    for item in items:
        profile = getattr(item, "callspec", None) and item.callspec.params.get("profile")
        (kept if profile is None or profile in _profiles_of(item) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _profiles_of(item: pytest.Item) -> tuple[str, ...]:
    marker = item.get_closest_marker("profiles")
    if marker is not None:
        return tuple(marker.args)
    return tuple(getattr(item.module, "PROFILES", DEFAULT_PROFILES))


@pytest.fixture(params=["sqlite", "postgresql", "kafka"])
def profile(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Embedded: the SQLite file (migrated by the app as it starts) and the in-process lock.
    Production: PostgreSQL (emptied) and the Redis lock (keys of this test's own); on Kafka too,
    with topics and a consumer group of this test's own."""
    if request.param == "sqlite":
        return {}
    url: str = request.getfixturevalue("postgres_url")
    run_apart(empty_database(url))
    name = uuid.uuid4().hex
    production = {
        "database_url": url,
        "redis_url": request.getfixturevalue("redis_url"),
        "redis_prefix": f"test:{name}:",
    }
    if request.param == "postgresql":
        return production
    bootstrap: str = request.getfixturevalue("kafka_bootstrap")
    topics = {"kafka_topic": f"requests-{name}", "kafka_dead_letter_topic": f"dlq-{name}"}
    run_apart(create_topics(bootstrap, topics.values(), partitions=4))
    return {
        **production,
        **topics,
        "kafka_bootstrap": bootstrap,
        "kafka_group": f"group-{name}",
        "kafka_idempotence": False,  # Tansu refuses the idempotent producer
        "kafka_session_timeout_seconds": TEST_SESSION_TIMEOUT,
    }


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest, profile: dict[str, Any]) -> Settings:
    overrides: dict[str, Any] = dict(profile)
    for marker in reversed(list(request.node.iter_markers("waitline"))):
        overrides.update(marker.kwargs)
    return Settings(data_dir=tmp_path / "data", jwt_secret=SECRET, **overrides)


@pytest.fixture
def container(settings: Settings) -> Container:
    container = Container()
    container.settings.override(settings)
    return container


@pytest.fixture
def serve() -> Callable[[Container], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]:
    """Start an app from a container (its lifespan included) and give a client for it."""

    @contextlib.asynccontextmanager
    async def start(container: Container) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(container)
        transport = InLoopTransport(app)
        async with lifespan_of(app), consumer_beside(container):
            try:
                # Any single request (or gap between two chunks of a body) beyond 60 s fails the test.
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://testserver", timeout=60
                ) as client:
                    yield client
            finally:
                # Streams a test left open must not outlive the app's database.
                await transport.cancel_all()

    return start


@pytest.fixture
def clock(container: Container) -> SettableClock:
    """The app's clock made settable (11:00 in Seoul, the stores' default time zone), for a test
    that ends a pause or a business day: a test that asks for it gets an app started on it."""
    settable = SettableClock()
    container.clock.override(providers.Object(settable))
    return settable


@pytest.fixture
async def client(
    request: pytest.FixtureRequest,
    container: Container,
    serve: Callable[[Container], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
) -> AsyncIterator[httpx.AsyncClient]:
    if "clock" in request.fixturenames:
        request.getfixturevalue("clock")  # overridden before the app starts, not after
    async with serve(container) as client:
        yield client


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(SECRET)


StoreMaker = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def make_store(client: httpx.AsyncClient, tokens: Tokens) -> StoreMaker:
    """Create a store as admin; open, named and with a 5-minute service time unless told otherwise."""

    async def make(**fields: Any) -> dict[str, Any]:
        body = {"name": "Cafe Onion", "waitingOpen": True, "avgServiceMinutes": 5, **fields}
        response = await client.post("/stores", json=body, headers=tokens.admin)
        assert response.status_code == 201, response.text
        store: dict[str, Any] = response.json()
        return store

    return make


@pytest.fixture
async def store(make_store: StoreMaker) -> dict[str, Any]:
    """An open store most tests register at."""
    return await make_store()


@pytest.fixture
def api(client: httpx.AsyncClient, tokens: Tokens) -> Api:
    return Api(client, tokens)
