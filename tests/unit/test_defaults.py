"""The contract's defaults, as defaults: every other test sets these values itself.

API.md: V2's lock waitTime 5 s and leaseTime 10 s; a reconnect with Last-Event-ID replays at least
the last 100 events or 10 minutes of the stream; a comment line keeps idle streams alive every 15 s.
"""

from __future__ import annotations

import os

import pytest

from adapters.notify.local import LocalNotifier
from application.registration import LockTimes
from entrypoints.container import Container
from entrypoints.settings import Settings


@pytest.fixture
def environment_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """No WAITLINE_* variable of the machine's may stand in for a default."""
    for name in list(os.environ):
        if name.upper().startswith("WAITLINE_"):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("environment_unset")
def test_settings_default_to_the_contracts_lock_times_and_keep_alive() -> None:
    settings = Settings()

    assert settings.lock_wait_seconds == 5.0
    assert settings.lock_lease_seconds == 10.0
    assert settings.keepalive_seconds == 15.0


@pytest.mark.usefixtures("environment_unset")
def test_the_use_cases_get_the_default_lock_times_from_the_settings() -> None:
    container = Container()
    container.settings.override(Settings())

    assert container.lock_times() == LockTimes(wait=5.0, lease=10.0)


def test_lock_times_default_to_five_seconds_wait_and_ten_seconds_lease() -> None:
    assert (LockTimes().wait, LockTimes().lease) == (5.0, 10.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _publish(notifier: LocalNotifier, count: int) -> list[str]:
    ids = []
    for n in range(count):
        await notifier.publish("store:1", "registered", {"number": n})
        async with notifier.subscribe("store:1", None) as subscription:
            ids.append(subscription.head)
    return ids


async def test_the_local_notifier_replays_the_last_hundred_events_however_old() -> None:
    clock = Clock()
    notifier = LocalNotifier(clock=clock)  # every other default kept
    ids = await _publish(notifier, 150)
    clock.now = 24 * 3600.0  # a day later: only the count keeps them

    async with notifier.subscribe("store:1", ids[49]) as subscription:
        missed = subscription.missed

    assert missed is not None
    assert [event.data["number"] for event in missed] == list(range(50, 150))


async def test_the_local_notifier_replays_everything_of_the_last_ten_minutes() -> None:
    clock = Clock()
    notifier = LocalNotifier(clock=clock)
    ids = await _publish(notifier, 150)
    clock.now = 599.0

    async with notifier.subscribe("store:1", ids[0]) as subscription:
        missed = subscription.missed

    assert missed is not None
    assert [event.data["number"] for event in missed] == list(range(1, 150))
