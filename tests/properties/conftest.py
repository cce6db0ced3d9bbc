"""The concurrency properties run on both stores: the memory unit of work and real PostgreSQL."""

from __future__ import annotations

import pytest

from properties.storage import MemoryStorage, PostgresStorage, StorageFactory


@pytest.fixture(scope="session", params=["memory", "postgresql"])
def storage(request: pytest.FixtureRequest) -> StorageFactory:
    """A fresh storage per hypothesis example (session-scoped: hypothesis reuses it across examples)."""
    if request.param == "memory":
        return MemoryStorage
    url: str = request.getfixturevalue("postgres_url")
    return lambda: PostgresStorage(url)
