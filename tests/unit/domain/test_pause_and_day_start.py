"""Store tools: the business day's start, the pause, and the bounds of the newer settings."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from domain.errors import ValidationError, WaitingClosed, WaitingPaused
from domain.store import Store

SEOUL_0429 = datetime(2026, 3, 3, 4, 29, tzinfo=UTC) - timedelta(hours=9)  # 04:29 on March 3 in Seoul


@pytest.mark.parametrize(
    ("starts_at", "local", "business_date"),
    [
        (time(0), "2026-03-03T00:00", "2026-03-03"),
        (time(0), "2026-03-02T23:59", "2026-03-02"),
        (time(4, 30), "2026-03-03T04:29", "2026-03-02"),
        (time(4, 30), "2026-03-03T04:30", "2026-03-03"),
        (time(4, 30), "2026-03-03T23:59", "2026-03-03"),
        (time(23, 59), "2026-03-03T23:58", "2026-03-02"),
    ],
)
def test_the_business_day_starts_at_day_starts_at_local_time(
    starts_at: time, local: str, business_date: str
) -> None:
    store = Store(id=1, name="Night Bar", day_starts_at=starts_at)
    moment = datetime.fromisoformat(f"{local}+09:00")

    assert store.business_date(moment).isoformat() == business_date


def test_a_pause_lasts_its_minutes_then_ends_by_itself() -> None:
    store = Store(id=1, name="x", waiting_open=True)
    store.pause(30, SEOUL_0429)

    assert store.pause_left(SEOUL_0429) == SEOUL_0429 + timedelta(minutes=30)
    with pytest.raises(WaitingPaused, match="until 04:59"):  # said in the store's local time
        store.check_open(SEOUL_0429 + timedelta(minutes=29, seconds=59))
    store.check_open(SEOUL_0429 + timedelta(minutes=30))
    assert store.pause_left(SEOUL_0429 + timedelta(minutes=30)) is None


@pytest.mark.parametrize("minutes", [0, 241, -1])
def test_a_pause_is_1_to_240_minutes(minutes: int) -> None:
    store = Store(id=1, name="x", waiting_open=True)

    with pytest.raises(ValidationError, match="minutes"):
        store.pause(minutes, SEOUL_0429)
    assert store.paused_until is None


def test_closed_is_refused_before_paused_and_a_closed_list_cannot_be_paused() -> None:
    store = Store(id=1, name="x", waiting_open=True)
    store.pause(10, SEOUL_0429)
    store.waiting_open = False  # as if a pause were left behind on a closed list

    with pytest.raises(WaitingClosed):
        store.check_open(SEOUL_0429)
    with pytest.raises(WaitingClosed):
        Store(id=2, name="y").pause(10, SEOUL_0429)


@pytest.mark.parametrize("change", ["open_waiting", "close_waiting"])
def test_opening_or_closing_ends_a_pause(change: str) -> None:
    store = Store(id=1, name="x", waiting_open=True)
    store.pause(10, SEOUL_0429)

    getattr(store, change)()

    assert store.paused_until is None


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("notify_at_rank", 0),
        ("notify_at_rank", 101),
        ("max_postpones", -1),
        ("max_postpones", 11),
        ("day_starts_at", time(4, 30, 15)),
    ],
)
def test_a_setting_out_of_bounds_is_refused(setting: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Store(id=1, name="x", **{setting: value})  # type: ignore[arg-type]


def test_a_new_store_gets_the_decided_defaults() -> None:
    store = Store(id=1, name="x")

    assert (store.notify_at_rank, store.max_postpones, store.day_starts_at) == (3, 1, time(0))
    assert (store.webhook_url, store.webhook_secret, store.paused_until) == (None, None, None)
