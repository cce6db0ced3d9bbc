"""V3 under a burst: concurrent submissions, a worker deciding in batches, and redeliveries."""

from __future__ import annotations

import asyncio

from hypothesis import given

from properties.helpers import Scenario, queue_concurrently, queue_violations, scenarios, violations
from properties.storage import StorageFactory


@given(scenario=scenarios(stores=3, requests=20, redelivery=True))
def test_queued_bursts_keep_every_rule_and_decide_each_trace_id_once(
    scenario: Scenario, storage: StorageFactory
) -> None:
    run = asyncio.run(queue_concurrently(scenario, storage()))

    assert violations(run) + queue_violations(run, scenario) == []


@given(scenario=scenarios(stores=1, requests=20, redelivery=True))
def test_a_queued_burst_at_one_store_numbers_in_acceptance_order(
    scenario: Scenario, storage: StorageFactory
) -> None:
    run = asyncio.run(queue_concurrently(scenario, storage()))

    assert violations(run) + queue_violations(run, scenario) == []
