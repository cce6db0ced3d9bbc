"""Rank: a WAITING entry's place in the queue, and the wait it suggests."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.customer import Customer
from domain.estimates import Pace
from domain.store import Store
from domain.waiting import Waiting, WaitingStatus
from domain.waiting_list import ranks

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def waiting(number: int, status: WaitingStatus = WaitingStatus.WAITING, id_: int | None = None) -> Waiting:
    return Waiting(
        id=100 + number if id_ is None else id_,
        store_id=1,
        business_date=date(2026, 3, 2),
        number=number,
        customer=Customer.user(f"u{number}"),
        party_size=2,
        trace_id=f"t{number}",
        status_token=f"s{number}",
        created_at=NOW,
        status=status,
    )


def test_ranks_follow_numbers_whatever_the_order_given() -> None:
    assert ranks([waiting(3), waiting(1), waiting(2)]) == {101: 1, 102: 2, 103: 3}


@pytest.mark.parametrize(
    "status", [WaitingStatus.CALLED, WaitingStatus.SEATED, WaitingStatus.CANCELLED, WaitingStatus.NO_SHOW]
)
def test_only_waiting_entries_have_a_rank(status: WaitingStatus) -> None:
    assert ranks([waiting(1), waiting(2, status), waiting(3)]) == {101: 1, 103: 2}


def test_rank_is_one_plus_the_waiting_entries_with_a_smaller_number() -> None:
    statuses = [WaitingStatus.CALLED, WaitingStatus.WAITING, WaitingStatus.CANCELLED, WaitingStatus.WAITING]
    day = [waiting(n, s) for n, s in enumerate(statuses, start=1)] + [waiting(5), waiting(7)]

    rank_of = ranks(day)

    for w in day:
        if w.status is WaitingStatus.WAITING:
            ahead = sum(1 for o in day if o.status is WaitingStatus.WAITING and o.number < w.number)
            assert rank_of[w.id or 0] == 1 + ahead
    assert sorted(rank_of.values()) == [1, 2, 3, 4]


def test_an_empty_queue_has_no_ranks() -> None:
    assert ranks([]) == {}
    assert ranks([waiting(1, WaitingStatus.SEATED)]) == {}


@pytest.mark.parametrize(("rank", "minutes"), [(1, 0), (2, 7), (5, 28)])
def test_the_estimated_wait_is_rank_minus_one_times_the_service_time(rank: int, minutes: int) -> None:
    assert Pace.of(Store(id=1, name="x", avg_service_minutes=7), None).wait(rank) == minutes


def test_there_is_no_estimate_without_a_service_time() -> None:
    assert Pace.of(Store(id=1, name="x"), None) == Pace(None, None)
    assert Pace.of(Store(id=1, name="x"), None).wait(5) is None


def test_a_zero_service_time_estimates_no_wait() -> None:
    assert Pace.of(Store(id=1, name="x", avg_service_minutes=0), None).wait(5) == 0
