"""Postpone: a WAITING entry steps back past the next entries in queue order; numbers never change."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.customer import Customer
from domain.errors import InvalidTransition, PostponeLimit, ValidationError
from domain.waiting import Waiting, WaitingStatus
from domain.waiting_list import postpone, ranks

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def queue(count: int) -> list[Waiting]:
    return [
        Waiting(
            id=n,
            store_id=1,
            business_date=date(2026, 3, 2),
            number=n,
            customer=Customer.user(f"u{n}"),
            party_size=2,
            trace_id=f"t{n}",
            status_token=f"s{n}",
            created_at=NOW,
        )
        for n in range(1, count + 1)
    ]


def order(waitings: list[Waiting]) -> list[int]:
    """Numbers in queue order."""
    return [w.number for w in sorted(waitings, key=lambda w: w.place)]


def test_a_new_waiting_is_placed_at_its_number() -> None:
    assert [w.place for w in queue(3)] == [1, 2, 3]


def test_stepping_back_two_places_passes_the_next_two() -> None:
    waitings = queue(5)
    mover, behind = waitings[1], waitings[2:]

    passed = postpone(mover, behind, places=2, most=1)

    assert [w.number for w in passed] == [3, 4]
    assert order(waitings) == [1, 3, 4, 2, 5]
    assert sorted(w.place for w in waitings) == [1, 2, 3, 4, 5]  # the same places, handed round
    assert [w.number for w in waitings] == [1, 2, 3, 4, 5]  # numbers never change
    assert (mover.postpones, mover.events) == (1, ["postpone"])
    assert ranks(waitings) == {1: 1, 3: 2, 4: 3, 2: 4, 5: 5}


def test_with_fewer_behind_it_goes_to_the_end() -> None:
    waitings = queue(3)

    passed = postpone(waitings[0], waitings[1:], places=5, most=1)

    assert [w.number for w in passed] == [2, 3]
    assert order(waitings) == [2, 3, 1]


def test_only_waiting_entries_are_passed() -> None:
    waitings = queue(5)
    waitings[2].status = WaitingStatus.CALLED  # number 3 was called: it is not in line any more

    postpone(waitings[0], waitings[1:], places=2, most=1)

    waiting_order = [
        w.number for w in sorted(waitings, key=lambda w: w.place) if w.status is WaitingStatus.WAITING
    ]
    assert waiting_order == [2, 4, 1, 5]
    assert ranks(waitings) == {2: 1, 4: 2, 1: 3, 5: 4}


def test_the_last_in_line_moves_nowhere_and_spends_nothing() -> None:
    waitings = queue(3)

    assert postpone(waitings[2], [], places=1, most=1) == []
    assert (waitings[2].place, waitings[2].postpones) == (3, 0)


def test_a_waiting_postpones_at_most_its_stores_limit() -> None:
    waitings = queue(4)
    postpone(waitings[0], waitings[1:], places=1, most=2)
    postpone(waitings[0], waitings[2:], places=1, most=2)

    with pytest.raises(PostponeLimit):
        postpone(waitings[0], waitings[3:], places=1, most=2)
    assert order(waitings) == [2, 3, 1, 4]
    with pytest.raises(PostponeLimit):
        postpone(waitings[3], [], places=1, most=0)  # 0 turns postponing off


@pytest.mark.parametrize("places", [0, 6, -1])
def test_places_are_1_to_5(places: int) -> None:
    waitings = queue(3)

    with pytest.raises(ValidationError, match="places"):
        postpone(waitings[0], waitings[1:], places=places, most=1)


@pytest.mark.parametrize("status", [WaitingStatus.CALLED, WaitingStatus.SEATED, WaitingStatus.CANCELLED])
def test_only_a_waiting_entry_postpones(status: WaitingStatus) -> None:
    waitings = queue(3)
    waitings[0].status = status

    with pytest.raises(InvalidTransition):
        postpone(waitings[0], waitings[1:], places=1, most=1)
