"""V2 under a burst: concurrent RegisterWaiting calls, interleaved by hypothesis, keep every rule."""

from __future__ import annotations

import asyncio

from hypothesis import given

from properties.helpers import Scenario, register_concurrently, scenarios, violations
from properties.storage import StorageFactory


@given(scenario=scenarios(stores=1, requests=20))
def test_a_burst_at_one_store_keeps_numbers_unique_gapless_and_in_order(
    scenario: Scenario, storage: StorageFactory
) -> None:
    run = asyncio.run(register_concurrently(scenario, storage=storage()))

    assert violations(run) == []


@given(scenario=scenarios(stores=3, requests=20))
def test_bursts_at_several_stores_keep_each_stores_own_sequence(
    scenario: Scenario, storage: StorageFactory
) -> None:
    run = asyncio.run(register_concurrently(scenario, storage=storage()))

    assert violations(run) == []
