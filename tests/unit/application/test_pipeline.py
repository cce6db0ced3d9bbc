"""What a part decided while the part before it was still being written carries over."""

from __future__ import annotations

from datetime import date

import pytest

from application.pipeline import Decided, parts
from application.ports import ConcurrencyConflict
from domain.store import Store
from domain.waiting_list import WaitingList

DAY = date(2026, 11, 25)
BEFORE = Decided(DAY, previous=10, last=13, customers=frozenset({"user:a", "user:b"}), trace_ids=frozenset())


def _day(last: int, business_date: date = DAY) -> WaitingList:
    store = Store(id=1, name="Gamja", waiting_open=True)
    return WaitingList(
        store, business_date, last, active_count=5, waiting_count=4, active_customers={"user:z"}
    )


def test_a_read_made_before_the_part_before_committed_gets_what_it_wrote() -> None:
    day = _day(last=10)

    BEFORE.carry_into(day)

    assert (day.last_number, day.active_count, day.waiting_count) == (13, 8, 7)
    assert day.active_customers == {"user:a", "user:b", "user:z"}


def test_a_read_made_after_it_committed_is_taken_as_it_is() -> None:
    day = _day(last=13)

    BEFORE.carry_into(day)

    assert (day.last_number, day.active_count, day.waiting_count, day.active_customers) == (
        13,
        5,
        4,
        {"user:z"},
    )


def test_another_day_is_not_touched() -> None:
    day = _day(last=0, business_date=date(2026, 11, 26))

    BEFORE.carry_into(day)

    assert (day.last_number, day.active_customers) == (0, {"user:z"})


@pytest.mark.parametrize("last", [9, 11, 14])
def test_a_day_that_stands_anywhere_else_was_written_by_someone_else(last: int) -> None:
    with pytest.raises(ConcurrencyConflict):
        BEFORE.carry_into(_day(last=last))


def test_parts_keep_the_order_and_the_last_may_be_short() -> None:
    assert parts([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert parts([], 3) == []
