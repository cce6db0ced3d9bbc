"""Status transitions of a waiting: the allowed ones stamp their moment, all others are refused."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from domain.customer import Customer
from domain.errors import InvalidTransition
from domain.waiting import Canceller, Waiting, WaitingStatus

CREATED = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
LATER = CREATED + timedelta(minutes=20)
W, C, S, X, N = (
    WaitingStatus.WAITING,
    WaitingStatus.CALLED,
    WaitingStatus.SEATED,
    WaitingStatus.CANCELLED,
    WaitingStatus.NO_SHOW,
)

# DOMAIN.md's diagram, written out again here so that the test does not trust the code's table.
ALLOWED = {
    (W, "call"): (C, "called_at"),
    (C, "seat"): (S, "seated_at"),
    (W, "cancel"): (X, "cancelled_at"),
    (C, "cancel"): (X, "cancelled_at"),
    (C, "no_show"): (N, "no_show_at"),
}
ACTIONS = ("call", "seat", "cancel", "no_show")
FORBIDDEN = [pair for pair in itertools.product(WaitingStatus, ACTIONS) if pair not in ALLOWED]
STAMPS = ("called_at", "seated_at", "cancelled_at", "no_show_at")


def waiting_in(status: WaitingStatus) -> Waiting:
    return Waiting(
        id=1,
        store_id=1,
        business_date=date(2026, 3, 2),
        number=1,
        customer=Customer.user("u1"),
        party_size=2,
        trace_id="t1",
        status_token="s1",
        created_at=CREATED,
        status=status,
    )


def act(waiting: Waiting, action: str, now: datetime) -> None:
    method = {
        "call": waiting.call,
        "seat": waiting.seat,
        "cancel": lambda now: waiting.cancel(now, Canceller.STORE),
        "no_show": waiting.mark_no_show,
    }
    method[action](now)


def test_the_table_covers_every_status_and_action() -> None:
    assert len(ALLOWED) + len(FORBIDDEN) == len(WaitingStatus) * len(ACTIONS) == 20


@pytest.mark.parametrize(("status", "action"), list(ALLOWED))
def test_an_allowed_transition_moves_and_stamps_its_moment(status: WaitingStatus, action: str) -> None:
    waiting = waiting_in(status)
    target, stamp = ALLOWED[status, action]

    act(waiting, action, LATER)

    assert waiting.status is target
    assert getattr(waiting, stamp) == LATER
    assert all(getattr(waiting, other) is None for other in STAMPS if other != stamp)
    assert waiting.events == [action]


@pytest.mark.parametrize(("status", "action"), FORBIDDEN)
def test_every_other_transition_is_refused_and_changes_nothing(status: WaitingStatus, action: str) -> None:
    waiting = waiting_in(status)

    with pytest.raises(InvalidTransition) as refused:
        act(waiting, action, LATER)

    assert refused.value.code == "INVALID_TRANSITION"
    assert waiting == waiting_in(status)
    assert waiting.events == []


def test_a_waiting_is_called_then_seated_and_keeps_both_moments() -> None:
    waiting = waiting_in(W)
    seated = LATER + timedelta(minutes=3)

    waiting.call(LATER)
    waiting.seat(seated)

    assert (waiting.status, waiting.called_at, waiting.seated_at) == (S, LATER, seated)
    assert waiting.events == ["call", "seat"]


def test_a_called_waiting_may_be_marked_no_show() -> None:
    waiting = waiting_in(W)

    waiting.call(LATER)
    waiting.mark_no_show(LATER + timedelta(minutes=10))

    assert waiting.status is N
    assert waiting.called_at == LATER


@pytest.mark.parametrize(("status", "active"), [(W, True), (C, True), (S, False), (X, False), (N, False)])
def test_waiting_and_called_are_the_active_statuses(status: WaitingStatus, active: bool) -> None:
    assert status.active is active
    assert status.terminal is not active
