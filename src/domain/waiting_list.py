"""One store's list for one business day: where numbers are given out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from domain.customer import Customer
from domain.errors import AlreadyWaiting, InvalidTransition, PostponeLimit, QueueFull, ValidationError
from domain.store import Store
from domain.waiting import Waiting, WaitingStatus


@dataclass(frozen=True)
class Registration:
    """A request to join a store's list; trace_id names it across retries and redeliveries."""

    trace_id: str
    customer: Customer
    party_size: int
    status_token: str


@dataclass
class WaitingList:
    """The part of a store's day that registration decides on.

    Loaded for the customers at hand rather than whole, so that deciding stays cheap however
    long the list grows: the last number given out, how many are active (WAITING or CALLED)
    and how many WAITING, and which of the customers being registered hold an active waiting.
    """

    store: Store
    business_date: date
    last_number: int = 0
    active_count: int = 0
    waiting_count: int = 0
    active_customers: set[str] = field(default_factory=set)
    registered: list[Waiting] = field(default_factory=list)

    def register(self, registration: Registration, now: datetime) -> Waiting:
        """Give the next number, or refuse; a refusal takes no number.

        The new waiting is the last of the day, so its rank is `waiting_count` right after.
        """
        self.store.check_party_size(registration.party_size)
        self.store.check_open(now)
        if registration.customer.key in self.active_customers:
            raise AlreadyWaiting("this customer already holds an active waiting at this store")
        if self.store.max_queue_size is not None and self.active_count >= self.store.max_queue_size:
            raise QueueFull(f"the list is full ({self.store.max_queue_size} active waitings)")
        self.last_number += 1
        self.active_count += 1
        self.waiting_count += 1
        self.active_customers.add(registration.customer.key)
        waiting = Waiting(
            id=None,
            store_id=self.store.id,
            business_date=self.business_date,
            number=self.last_number,
            customer=registration.customer,
            party_size=registration.party_size,
            trace_id=registration.trace_id,
            status_token=registration.status_token,
            created_at=now,
        )
        waiting.events.append("registered")
        self.registered.append(waiting)
        return waiting


def ranks(waitings: Iterable[Waiting]) -> dict[int, int]:
    """Rank = 1 + the WAITING entries of the day ahead in queue order; others have none."""
    queue = sorted((w for w in waitings if w.status is WaitingStatus.WAITING), key=lambda w: w.place)
    return {w.id: position for position, w in enumerate(queue, start=1) if w.id is not None}


POSTPONE_PLACES = range(1, 6)


def postpone(mover: Waiting, behind: Sequence[Waiting], places: int, most: int) -> list[Waiting]:
    """Step `mover` back `places` places: behind the next `places` WAITING entries of `behind` (the
    WAITING entries after it, in queue order), or to the end if fewer are there. The places they
    held are handed round, so the day's places stay what they were, a permutation of its numbers,
    and only these entries change. Answers those it let pass (each moves up one). Its number never
    changes. At the end already: nothing moves, and no postpone is spent."""
    if places not in POSTPONE_PLACES:
        raise ValidationError.of("places", f"must be between {POSTPONE_PLACES[0]} and {POSTPONE_PLACES[-1]}")
    if mover.status is not WaitingStatus.WAITING:
        raise InvalidTransition(f"cannot postpone a waiting that is {mover.status}")
    if mover.postpones >= most:
        raise PostponeLimit(f"this waiting may postpone {most} time(s) at this store")
    passed = sorted(
        (w for w in behind if w.status is WaitingStatus.WAITING and w.place > mover.place),
        key=lambda w: w.place,
    )[:places]
    if not passed:
        return []
    held = sorted([mover.place, *(w.place for w in passed)])
    for waiting, place in zip([*passed, mover], held, strict=True):
        waiting.place = place
    mover.postpones += 1
    mover.events.append("postpone")
    return passed
