"""Estimates: from the day's pace of calls once it has one, else from the store's setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.estimates import Pace, service_minutes
from domain.store import Store

START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def calls(*minutes_apart: float) -> list[datetime]:
    moments, moment = [START], START
    for gap in minutes_apart:
        moment += timedelta(minutes=gap)
        moments.append(moment)
    return moments


def test_no_pace_until_five_intervals() -> None:
    assert service_minutes([]) is None
    assert service_minutes(calls(3, 3, 3, 3)) is None  # five calls, four intervals
    assert service_minutes(calls(3, 3, 3, 3, 3)) == 3


def test_the_pace_is_the_median_interval_whatever_the_order_given() -> None:
    moments = calls(1, 2, 10, 3, 4)  # intervals 1, 2, 10, 3, 4: median 3, the outlier ignored

    assert service_minutes(list(reversed(moments))) == 3
    assert service_minutes(calls(1, 2, 3, 4, 5, 6)) == 3.5  # an even count: the mean of the middle two


def test_only_the_latest_twenty_calls_count() -> None:
    slow_morning = calls(*[30.0] * 10)
    fast_now = [slow_morning[-1] + timedelta(minutes=2 * i) for i in range(1, 20)]  # 19 more calls

    # The last 20 calls: the last slow one and 19 fast ones, 19 intervals of 2 minutes.
    assert service_minutes(slow_morning + fast_now) == 2


def test_history_wins_over_the_setting_and_says_so() -> None:
    configured = Store(id=1, name="x", avg_service_minutes=10)

    assert Pace.of(configured, 2.5) == Pace(2.5, "history")
    assert Pace.of(configured, None) == Pace(10, "configured")
    assert Pace.of(Store(id=1, name="x"), None) == Pace(None, None)
    assert Pace.of(Store(id=1, name="x"), 4.0).source == "history"


@pytest.mark.parametrize(
    ("minutes", "rank", "wait"), [(2.5, 1, 0), (2.5, 2, 3), (2.5, 3, 5), (0.1, 4, 1), (3, 4, 9)]
)
def test_the_wait_is_rank_minus_one_times_the_pace_rounded_up(minutes: float, rank: int, wait: int) -> None:
    assert Pace(minutes, "history").wait(rank) == wait
