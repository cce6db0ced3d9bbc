"""A place on a store's waiting list and the transitions it may take."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from domain.customer import Channel, Customer
from domain.errors import InvalidTransition


class WaitingStatus(StrEnum):
    WAITING = "WAITING"
    CALLED = "CALLED"
    SEATED = "SEATED"
    CANCELLED = "CANCELLED"
    NO_SHOW = "NO_SHOW"

    @property
    def active(self) -> bool:
        return self in ACTIVE_STATUSES

    @property
    def terminal(self) -> bool:
        return not self.active


class Canceller(StrEnum):
    """Who cancelled: the customer (or the guest through the link), or the store's staff."""

    CUSTOMER = "CUSTOMER"
    STORE = "STORE"


ACTIVE_STATUSES = frozenset({WaitingStatus.WAITING, WaitingStatus.CALLED})

# The transition table of DOMAIN.md: action -> statuses it may start from, status it ends in.
TRANSITIONS: dict[str, tuple[frozenset[WaitingStatus], WaitingStatus]] = {
    "call": (frozenset({WaitingStatus.WAITING}), WaitingStatus.CALLED),
    "seat": (frozenset({WaitingStatus.CALLED}), WaitingStatus.SEATED),
    "cancel": (ACTIVE_STATUSES, WaitingStatus.CANCELLED),
    "no_show": (frozenset({WaitingStatus.CALLED}), WaitingStatus.NO_SHOW),
}


@dataclass
class Waiting:
    id: int | None
    store_id: int
    business_date: date
    number: int
    customer: Customer
    party_size: int
    trace_id: str
    status_token: str
    created_at: datetime
    status: WaitingStatus = WaitingStatus.WAITING
    called_at: datetime | None = None
    seated_at: datetime | None = None
    cancelled_at: datetime | None = None
    no_show_at: datetime | None = None
    cancelled_by: Canceller | None = None
    # Its place in the queue (DOMAIN.md, "Queue order and postpone"): its number until it, or
    # someone it lets pass, postpones; the day's places stay a permutation of its numbers.
    place: int = 0
    postpones: int = 0
    events: list[str] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.place == 0:
            self.place = self.number

    @property
    def channel(self) -> Channel:
        return self.customer.channel

    def call(self, now: datetime) -> None:
        self._move("call")
        self.called_at = now

    def seat(self, now: datetime) -> None:
        self._move("seat")
        self.seated_at = now

    def cancel(self, now: datetime, by: Canceller) -> None:
        self._move("cancel")
        self.cancelled_at = now
        self.cancelled_by = by

    def mark_no_show(self, now: datetime) -> None:
        self._move("no_show")
        self.no_show_at = now

    def _move(self, action: str) -> None:
        allowed_from, target = TRANSITIONS[action]
        if self.status not in allowed_from:
            raise InvalidTransition(f"cannot {action.replace('_', '-')} a waiting that is {self.status}")
        self.status = target
        self.events.append(action)
