"""Day stats (DOMAIN.md, "Day stats"): the figures of one store's business day, from its waitings.

The waitings are built as the service leaves them (times in UTC); the store's time zone and the
start of its day decide the quarter hours and whether the day is over.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

import pytest

from application.stats import QuarterHour, day_stats
from domain.customer import Customer
from domain.store import Store
from domain.waiting import Canceller, Waiting, WaitingStatus

DAY = date(2026, 3, 2)
SEOUL = Store(id=7, name="Cafe Onion")
DURING_THE_DAY = datetime.fromisoformat("2026-03-02T20:00:00+09:00")
NEXT_DAY = datetime.fromisoformat("2026-03-03T12:00:00+09:00")

_numbers = itertools.count(1)


def at(local: str) -> datetime:
    """A moment given in Seoul's local time, as the service stores it (UTC)."""
    return datetime.fromisoformat(f"{local}+09:00").astimezone(UTC)


def waiting(
    created: str = "2026-03-02T11:00",
    *,
    status: WaitingStatus = WaitingStatus.WAITING,
    guest: bool = False,
    called_after: float | None = None,
    cancelled_by: Canceller | None = None,
    store: Store = SEOUL,
) -> Waiting:
    """A waiting of `store`'s day, registered at `created` (Seoul time), called `called_after` minutes later."""
    number = next(_numbers)
    created_at = at(created)
    return Waiting(
        id=number,
        store_id=store.id,
        business_date=DAY,
        number=number,
        customer=Customer.guest("김민수", f"+8210{number:08d}") if guest else Customer.user(f"u{number}"),
        party_size=2,
        trace_id=f"trace-{number}",
        status_token=f"token-{number}",
        created_at=created_at,
        status=status,
        called_at=None if called_after is None else created_at + timedelta(minutes=called_after),
        cancelled_by=cancelled_by,
    )


def test_each_figure_counts_the_days_waitings_by_channel_and_status() -> None:
    day = [
        waiting(status=WaitingStatus.SEATED, called_after=5),
        waiting(status=WaitingStatus.SEATED, called_after=5, guest=True),
        waiting(status=WaitingStatus.SEATED, called_after=5),
        waiting(status=WaitingStatus.NO_SHOW, called_after=5, guest=True),
        waiting(status=WaitingStatus.CANCELLED, cancelled_by=Canceller.CUSTOMER),
        waiting(status=WaitingStatus.CANCELLED, cancelled_by=Canceller.CUSTOMER, guest=True),
        waiting(status=WaitingStatus.CANCELLED, cancelled_by=Canceller.STORE),
        waiting(status=WaitingStatus.CANCELLED),  # cancelled before the service recorded by whom
        waiting(status=WaitingStatus.WAITING, guest=True),
        waiting(status=WaitingStatus.CALLED, called_after=5),
    ]

    stats = day_stats(SEOUL, DAY, day, DURING_THE_DAY)

    assert (stats.store_id, stats.business_date) == (SEOUL.id, DAY)
    assert (stats.registrations.total, stats.registrations.user, stats.registrations.app) == (10, 6, 4)
    assert (stats.seated, stats.no_shows, stats.left_open) == (3, 1, 2)
    assert (stats.cancelled.total, stats.cancelled.by_customer, stats.cancelled.by_store) == (4, 2, 1)
    assert stats.no_show_rate == 0.25  # 1 / (3 + 1)


@pytest.mark.parametrize(
    ("seated", "no_shows", "rate"),
    [(0, 0, None), (0, 2, 1.0), (3, 0, 0.0), (2, 1, 0.3333), (1, 2, 0.6667)],
)
def test_the_no_show_rate_is_no_shows_over_seated_and_no_shows(
    seated: int, no_shows: int, rate: float | None
) -> None:
    day = [waiting(status=WaitingStatus.SEATED, called_after=1) for _ in range(seated)]
    day += [waiting(status=WaitingStatus.NO_SHOW, called_after=1) for _ in range(no_shows)]
    day += [waiting(status=WaitingStatus.CANCELLED), waiting()]  # neither counts

    assert day_stats(SEOUL, DAY, day, DURING_THE_DAY).no_show_rate == rate


def test_the_wait_to_call_is_interpolated_between_the_closest_ranks() -> None:
    # 1..10 minutes, in no particular order: p50 = 5.5, p90 = 9 + 0.1 x (10 - 9) (numpy's default).
    day = [waiting(status=WaitingStatus.SEATED, called_after=m) for m in (7, 1, 10, 4, 2, 9, 3, 8, 6, 5)]

    wait = day_stats(SEOUL, DAY, day, DURING_THE_DAY).wait_to_call

    assert (wait.calls, wait.p50_minutes, wait.p90_minutes) == (10, 5.5, 9.1)


def test_every_waiting_that_was_called_counts_whatever_became_of_it() -> None:
    day = [
        waiting(status=WaitingStatus.CALLED, called_after=1.5),  # 90 seconds
        waiting(status=WaitingStatus.SEATED, called_after=10),
        waiting(status=WaitingStatus.NO_SHOW, called_after=20),
        waiting(status=WaitingStatus.CANCELLED, called_after=40, cancelled_by=Canceller.STORE),
        waiting(status=WaitingStatus.CANCELLED, cancelled_by=Canceller.CUSTOMER),  # never called
        waiting(),  # still waiting
    ]

    wait = day_stats(SEOUL, DAY, day, DURING_THE_DAY).wait_to_call

    # p50 halfway between 10 and 20; p90 at 2.7 of 0..3: 20 + 0.7 x 20.
    assert (wait.calls, wait.p50_minutes, wait.p90_minutes) == (4, 15.0, 34.0)


def test_a_call_a_moment_before_its_registration_by_another_clock_waited_0_minutes() -> None:
    early = waiting(status=WaitingStatus.CALLED, called_after=-0.01)  # two processes' clocks disagree

    wait = day_stats(SEOUL, DAY, [early], DURING_THE_DAY).wait_to_call

    assert (wait.calls, wait.p50_minutes, wait.p90_minutes) == (1, 0.0, 0.0)


def test_one_call_is_both_percentiles_and_none_is_neither() -> None:
    one = day_stats(SEOUL, DAY, [waiting(status=WaitingStatus.CALLED, called_after=12.25)], DURING_THE_DAY)
    none = day_stats(SEOUL, DAY, [waiting(), waiting(status=WaitingStatus.CANCELLED)], DURING_THE_DAY)

    assert (one.wait_to_call.calls, one.wait_to_call.p50_minutes, one.wait_to_call.p90_minutes) == (
        1,
        12.2,  # to one decimal, half to even
        12.2,
    )
    assert (none.wait_to_call.calls, none.wait_to_call.p50_minutes, none.wait_to_call.p90_minutes) == (
        0,
        None,
        None,
    )


def test_registrations_fall_in_quarter_hours_of_the_stores_local_time() -> None:
    created = ["2026-03-02T11:52", "2026-03-02T11:00", "2026-03-02T11:14:59", "2026-03-02T11:15"]

    slots = day_stats(SEOUL, DAY, [waiting(c) for c in created], DURING_THE_DAY).registrations_per_15_minutes

    # From the first registration's quarter to the last's, the empty one between them included.
    assert [(s.start.isoformat(), s.count) for s in slots] == [
        ("2026-03-02T11:00:00+09:00", 2),
        ("2026-03-02T11:15:00+09:00", 1),
        ("2026-03-02T11:30:00+09:00", 0),
        ("2026-03-02T11:45:00+09:00", 1),
    ]


def test_quarter_hours_follow_the_stores_own_time_zone() -> None:
    kathmandu = Store(id=8, name="Momo", time_zone="Asia/Kathmandu")  # UTC+05:45
    # 11:07 in Seoul is 07:52 in Kathmandu.
    day = [waiting("2026-03-02T11:07", store=kathmandu), waiting("2026-03-02T11:16", store=kathmandu)]

    slots = day_stats(kathmandu, DAY, day, DURING_THE_DAY).registrations_per_15_minutes

    assert slots == [
        QuarterHour(datetime.fromisoformat("2026-03-02T07:45:00+05:45"), 1),
        QuarterHour(datetime.fromisoformat("2026-03-02T08:00:00+05:45"), 1),
    ]
    assert [s.start.utcoffset() for s in slots] == [timedelta(hours=5, minutes=45)] * 2


def test_a_day_that_starts_at_0430_runs_past_midnight_and_ends_then() -> None:
    late = Store(id=9, name="Night Owl", day_starts_at=time(4, 30))
    day = [
        waiting("2026-03-02T04:30", store=late),  # the day's first minute
        waiting("2026-03-02T23:50", store=late),
        waiting("2026-03-03T00:05", store=late),
        waiting("2026-03-03T04:29:59", store=late),  # its last second
    ]

    stats = day_stats(late, DAY, day, datetime.fromisoformat("2026-03-03T04:29:59+09:00"))
    slots = stats.registrations_per_15_minutes

    assert not stats.day_over
    assert (slots[0].start.isoformat(), slots[0].count) == ("2026-03-02T04:30:00+09:00", 1)
    assert (slots[-1].start.isoformat(), slots[-1].count) == ("2026-03-03T04:15:00+09:00", 1)
    assert len(slots) == 24 * 4  # every quarter of the business day, in order
    counted = {s.start.isoformat(): s.count for s in slots if s.count}
    assert counted == {
        "2026-03-02T04:30:00+09:00": 1,
        "2026-03-02T23:45:00+09:00": 1,
        "2026-03-03T00:00:00+09:00": 1,
        "2026-03-03T04:15:00+09:00": 1,
    }
    assert day_stats(late, DAY, day, datetime.fromisoformat("2026-03-03T04:30:00+09:00")).day_over


def test_a_day_with_a_clock_change_has_its_quarters_once_each() -> None:
    new_york = Store(id=10, name="Deli", time_zone="America/New_York")
    # 2026-11-01: at 02:00 EDT the clocks go back to 01:00 EST; 01:50 comes twice.
    first = datetime.fromisoformat("2026-11-01T01:50:00-04:00")
    again = datetime.fromisoformat("2026-11-01T01:05:00-05:00")
    day = [waiting(store=new_york), waiting(store=new_york)]
    day[0].created_at, day[1].created_at = first.astimezone(UTC), again.astimezone(UTC)

    slots = day_stats(new_york, date(2026, 11, 1), day, NEXT_DAY).registrations_per_15_minutes

    assert [(s.start.isoformat(), s.count) for s in slots] == [
        ("2026-11-01T01:45:00-04:00", 1),
        ("2026-11-01T01:00:00-05:00", 1),
    ]


def test_a_day_without_registrations_is_all_zeros() -> None:
    stats = day_stats(SEOUL, DAY, [], NEXT_DAY)

    assert stats.day_over
    assert (stats.registrations.total, stats.registrations.user, stats.registrations.app) == (0, 0, 0)
    assert (stats.seated, stats.no_shows, stats.left_open) == (0, 0, 0)
    assert (stats.cancelled.total, stats.cancelled.by_customer, stats.cancelled.by_store) == (0, 0, 0)
    assert stats.no_show_rate is None
    assert (stats.wait_to_call.calls, stats.wait_to_call.p50_minutes, stats.wait_to_call.p90_minutes) == (
        0,
        None,
        None,
    )
    assert stats.registrations_per_15_minutes == []


@pytest.mark.parametrize(
    ("now", "over"),
    [
        ("2026-03-02T00:00:00+09:00", False),  # its first moment
        ("2026-03-02T23:59:59+09:00", False),
        ("2026-03-03T00:00:00+09:00", True),
        ("2026-03-01T12:00:00+09:00", False),  # a day still to come
    ],
)
def test_a_day_is_over_once_the_stores_next_business_day_has_begun(now: str, over: bool) -> None:
    assert day_stats(SEOUL, DAY, [waiting()], datetime.fromisoformat(now)).day_over is over
