"""The properties can fail: without the store's lock, hypothesis finds an interleaving that breaks them.

Memory's unique constraints (the database's second line of defence) turn the lost race into a
ConcurrencyConflict, which the burst properties count as a failure: a caller got neither a
number nor a domain refusal.
"""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, Phase, find, settings

from properties.helpers import (
    Ask,
    NoLock,
    Scenario,
    StoreSettings,
    register_concurrently,
    schedules,
    violations,
)

# Three different customers at one open store: every request deserves a number.
ASKS = (Ask(store=0, customer=0), Ask(store=0, customer=1), Ask(store=0, customer=2))
SEARCH = settings(
    max_examples=2000,
    database=None,
    deadline=None,
    phases=[Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)


def burst(schedule: tuple[int, ...]) -> Scenario:
    return Scenario(stores=(StoreSettings(),), asks=ASKS, schedule=schedule)


def breaks_without_lock(schedule: tuple[int, ...]) -> bool:
    return bool(violations(asyncio.run(register_concurrently(burst(schedule), lock=NoLock()))))


def test_without_the_lock_some_interleaving_breaks_the_invariants() -> None:
    schedule = find(schedules(), breaks_without_lock, settings=SEARCH)

    complaints = violations(asyncio.run(register_concurrently(burst(schedule), lock=NoLock())))
    assert any("ConcurrencyConflict" in complaint for complaint in complaints)
    # The very same interleaving is harmless once the lock is back.
    assert violations(asyncio.run(register_concurrently(burst(schedule)))) == []


def test_without_the_lock_and_without_pauses_the_requests_run_one_by_one() -> None:
    # The failure above comes from the drawn interleaving, not from the harness itself.
    assert not breaks_without_lock(())
