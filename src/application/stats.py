"""A store's business day in figures (DOMAIN.md, "Day stats"): what its staff look back on.

`day_stats` is the arithmetic, on the day's waitings as they are; `ReadDayStats` loads them.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from application.access import Actor
from application.ports import Clock, UnitOfWorkFactory
from application.stores import existing_store
from domain.customer import Channel
from domain.store import Store, zone
from domain.waiting import Canceller, Waiting, WaitingStatus

SLOT = timedelta(minutes=15)
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Registrations:
    total: int
    user: int
    app: int


@dataclass(frozen=True)
class Cancellations:
    """`total` also counts waitings cancelled before the service recorded who cancelled them."""

    total: int
    by_customer: int
    by_store: int


@dataclass(frozen=True)
class WaitToCall:
    """Minutes from registration to call, over every waiting of the day that was called."""

    calls: int
    p50_minutes: float | None
    p90_minutes: float | None


@dataclass(frozen=True)
class QuarterHour:
    """A quarter of an hour of the store's local clock, from `start`."""

    start: datetime
    count: int


@dataclass(frozen=True)
class DayStats:
    store_id: int
    business_date: date
    day_over: bool
    registrations: Registrations
    seated: int
    cancelled: Cancellations
    no_shows: int
    left_open: int
    no_show_rate: float | None
    wait_to_call: WaitToCall
    registrations_per_15_minutes: list[QuarterHour]


def day_stats(store: Store, day: date, waitings: Sequence[Waiting], now: datetime) -> DayStats:
    """The figures of `store`'s business `day`, from all its waitings; `now` tells whether the day is over."""
    statuses = Counter(w.status for w in waitings)
    channels = Counter(w.channel for w in waitings)
    cancellers = Counter(w.cancelled_by for w in waitings if w.status is WaitingStatus.CANCELLED)
    seated, no_shows = statuses[WaitingStatus.SEATED], statuses[WaitingStatus.NO_SHOW]
    return DayStats(
        store_id=store.id,
        business_date=day,
        day_over=day < store.business_date(now),
        registrations=Registrations(len(waitings), channels[Channel.USER], channels[Channel.APP]),
        seated=seated,
        cancelled=Cancellations(
            statuses[WaitingStatus.CANCELLED], cancellers[Canceller.CUSTOMER], cancellers[Canceller.STORE]
        ),
        no_shows=no_shows,
        left_open=statuses[WaitingStatus.WAITING] + statuses[WaitingStatus.CALLED],
        no_show_rate=round(no_shows / (seated + no_shows), 4) if seated + no_shows else None,
        wait_to_call=_wait_to_call(waitings),
        registrations_per_15_minutes=_slots(store, waitings),
    )


def _wait_to_call(waitings: Sequence[Waiting]) -> WaitToCall:
    # Never below 0: the registering process's clock and the calling one's may differ a little.
    minutes = [max(w.called_at - w.created_at, timedelta(0)) / MINUTE for w in waitings if w.called_at]
    if not minutes:
        return WaitToCall(0, None, None)
    p50, p90 = _percentiles(minutes)
    return WaitToCall(len(minutes), round(p50, 1), round(p90, 1))


def _percentiles(values: list[float]) -> tuple[float, float]:
    """The 50th and 90th percentiles, interpolated linearly between the closest ranks (the
    "inclusive" method: numpy's default, Excel's PERCENTILE.INC); one value is both."""
    if len(values) == 1:
        return values[0], values[0]
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return deciles[4], deciles[8]


def _slots(store: Store, waitings: Sequence[Waiting]) -> list[QuarterHour]:
    """Registrations per quarter hour of local time, from the first registration's to the last's,
    empty quarters between them included."""
    counts = Counter(_quarter(store, w.created_at) for w in waitings)
    if not counts:
        return []
    local = zone(store.time_zone)
    slots, start, last = [], min(counts), max(counts)
    # Steps in UTC, so that a day with a clock change has its 23 or 25 hours of quarters.
    while start <= last:
        slots.append(QuarterHour(start.astimezone(local), counts[start]))
        start += SLOT
    return slots


def _quarter(store: Store, moment: datetime) -> datetime:
    """The start of the local quarter hour `moment` falls in, in UTC."""
    local = moment.astimezone(zone(store.time_zone))
    start = local.replace(minute=local.minute - local.minute % 15, second=0, microsecond=0)
    return start.astimezone(UTC)


class ReadDayStats:
    """The day stats of a store, for its staff and admins: today's business day unless told a date."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow, self._clock = uow, clock

    async def __call__(self, actor: Actor, store_id: int, day: date | None = None) -> DayStats:
        actor.require_staff(store_id)
        now = self._clock.now()
        # One day's rows: staff read this now and then, it is no crowd's poll.
        async with self._uow() as uow:
            store = await existing_store(uow, store_id)
            day = day or store.business_date(now)
            waitings = await uow.waitings.of_store(store_id, day)
        return day_stats(store, day, waitings, now)
