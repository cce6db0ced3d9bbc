"""The business day is the store's local calendar day, so its numbers restart at local midnight."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from domain.store import Store


def store_in(time_zone: str) -> Store:
    return Store(id=1, name="x", time_zone=time_zone)


def test_seoul_starts_a_new_day_at_15_00_utc() -> None:
    seoul = store_in("Asia/Seoul")

    assert seoul.business_date(datetime(2026, 3, 2, 14, 59, 59, tzinfo=UTC)) == date(2026, 3, 2)
    assert seoul.business_date(datetime(2026, 3, 2, 15, 0, 0, tzinfo=UTC)) == date(2026, 3, 3)


def test_the_utc_date_does_not_decide_the_day() -> None:
    # Seoul's morning is still the previous UTC day.
    morning = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)

    assert store_in("Asia/Seoul").business_date(morning) == date(2026, 3, 3)
    assert store_in("UTC").business_date(morning) == date(2026, 3, 2)


def test_the_offset_of_the_given_moment_does_not_matter() -> None:
    moment = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    same_moment_in_seoul = moment.astimezone(timezone(timedelta(hours=9)))
    same_moment_in_lima = moment.astimezone(timezone(timedelta(hours=-5)))

    days = {
        store_in("Asia/Seoul").business_date(m) for m in (moment, same_moment_in_seoul, same_moment_in_lima)
    }
    assert days == {date(2026, 3, 3)}


@pytest.mark.parametrize(
    ("before_midnight", "after_midnight"),
    [
        # New York in winter (UTC-5) and in summer (UTC-4): midnight follows daylight saving time.
        (datetime(2026, 1, 15, 4, 59, 59, tzinfo=UTC), datetime(2026, 1, 15, 5, 0, tzinfo=UTC)),
        (datetime(2026, 7, 15, 3, 59, 59, tzinfo=UTC), datetime(2026, 7, 15, 4, 0, tzinfo=UTC)),
    ],
)
def test_local_midnight_follows_daylight_saving_time(
    before_midnight: datetime, after_midnight: datetime
) -> None:
    new_york = store_in("America/New_York")

    days_apart = new_york.business_date(after_midnight) - new_york.business_date(before_midnight)
    assert days_apart == timedelta(days=1)
