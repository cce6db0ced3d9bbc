"""Fault tests: the app on a PostgreSQL cluster of the test's own, which the test stops, freezes and
starts again. Never the machine's shared server: a fault test only ever harms what it started.

No PostgreSQL binaries on this machine fails these tests (PrivateCluster raises); they never skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from faultkit import SECRET

from adapters.persistence.engine import Limits, make_engine
from adapters.persistence.schema import upgrade
from harness.app import quiet_litestar
from harness.httpkit import Tokens
from harness.postgres import PrivateCluster, run_apart

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    quiet_litestar(items, HERE)


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    """A private cluster, migrated to head the way `waitline migrate` does it; removed afterwards."""
    with PrivateCluster() as cluster:

        async def migrate() -> None:
            engine = make_engine(cluster.url, Limits(pool_size=1))
            try:
                await upgrade(engine)
            finally:
                await engine.dispose()

        run_apart(migrate())
        yield cluster


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(SECRET)
