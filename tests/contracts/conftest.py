"""Real servers the contract suites run against (see tests/harness)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.postgres import postgres_database


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url
