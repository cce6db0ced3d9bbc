"""The checker itself: a broken outcome must be reported, or a green property would mean nothing."""

from __future__ import annotations

import asyncio
import dataclasses

from properties.helpers import Ask, Scenario, StoreSettings, register_concurrently, violations

CALM = Scenario(
    stores=(StoreSettings(),),
    asks=(Ask(store=0, customer=0), Ask(store=0, customer=1), Ask(store=0, customer=2)),
)


def test_a_calm_burst_has_no_violations() -> None:
    assert violations(asyncio.run(register_concurrently(CALM))) == []


def test_a_gap_in_the_numbers_is_reported() -> None:
    run = asyncio.run(register_concurrently(CALM))
    last = max(run.db.waitings.values(), key=lambda w: w.number)
    last.number += 1

    assert any("has numbers [1, 2, 4]" in complaint for complaint in violations(run))


def test_a_later_request_with_a_smaller_number_is_reported() -> None:
    # One after another (a request combined with others ends with them: FIFO has nothing to say).
    one_by_one = dataclasses.replace(
        CALM, asks=tuple(Ask(store=0, customer=n, delay=200 * n) for n in range(3))
    )
    run = asyncio.run(register_concurrently(one_by_one))
    assert run.attempts[0].ended < run.attempts[1].started
    first, second = run.attempts[0], run.attempts[1]
    first.number, second.number = second.number, first.number
    for waiting in run.db.waitings.values():
        waiting.number = {1: 2, 2: 1}.get(waiting.number, waiting.number)

    assert any(complaint.startswith("FIFO") for complaint in violations(run))


def test_a_second_active_waiting_of_one_customer_is_reported() -> None:
    run = asyncio.run(register_concurrently(CALM))
    one, other = list(run.db.waitings.values())[:2]
    run.db.waitings[other.id or 0] = dataclasses.replace(other, customer=one.customer)

    assert any("two active waitings" in complaint for complaint in violations(run))
