"""The domain's number rules under any sequence of registrations, moves, switches, pauses and day starts
(midnight, or the store's `dayStartsAt`).

The machine plays the repository: before each registration it loads the day's list from the
history the way the adapters do, so the domain decides on the same facts it would in production.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, multiple, rule

from application.guest_input import mobile_number
from domain.customer import Customer
from domain.errors import DomainError, InvalidTransition, WaitingClosed
from domain.estimates import Pace
from domain.store import Store, zone
from domain.waiting import Canceller, Waiting, WaitingStatus
from domain.waiting_list import Registration, WaitingList, postpone, ranks

# Just before New York and Seoul nights, a day before daylight saving time starts in New York.
START = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)
ZONES = ["Asia/Seoul", "UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"]
# Two guests, each spelling their number several ways: the rules must see one person each.
GUEST_SPELLINGS = [
    ["010-1111-2222", "01011112222", "+82 10-1111-2222"],
    ["010-3333-4444", "+82-10-3333-4444"],
]
ALLOWED = {
    (WaitingStatus.WAITING, "call"): WaitingStatus.CALLED,
    (WaitingStatus.CALLED, "seat"): WaitingStatus.SEATED,
    (WaitingStatus.WAITING, "cancel"): WaitingStatus.CANCELLED,
    (WaitingStatus.CALLED, "cancel"): WaitingStatus.CANCELLED,
    (WaitingStatus.CALLED, "no_show"): WaitingStatus.NO_SHOW,
}

users = st.sampled_from([f"u{i}" for i in range(6)]).map(Customer.user)
guests = st.builds(
    lambda name, spellings, pick: Customer.guest(name, mobile_number(spellings[pick % len(spellings)])),
    st.sampled_from(["김민수", "Minsu", "이영희"]),
    st.sampled_from(GUEST_SPELLINGS),
    st.integers(0, 2),
)
PARTY_SIZES = st.sampled_from([1, 2, 2, 3, 4, 0, 5])


class WaitingListMachine(RuleBasedStateMachine):
    waitings = Bundle("waitings")

    def __init__(self) -> None:
        super().__init__()
        self.store = Store(id=1, name="Onion Bakery")
        self.now = START
        self.history: list[Waiting] = []
        self.ids = itertools.count(1)
        self.traces = itertools.count(1)

    @initialize(
        time_zone=st.sampled_from(ZONES),
        max_party_size=st.integers(1, 4),
        max_queue_size=st.none() | st.integers(1, 8),
        avg_service_minutes=st.none() | st.integers(0, 15),
        waiting_open=st.sampled_from([True, True, False]),
        day_starts_at=st.sampled_from([time(0), time(0), time(4, 30), time(23, 59)]),
    )
    def make_store(
        self,
        time_zone: str,
        max_party_size: int,
        max_queue_size: int | None,
        avg_service_minutes: int | None,
        waiting_open: bool,
        day_starts_at: time,
    ) -> None:
        self.store = Store(
            id=1,
            name="Onion Bakery",
            time_zone=time_zone,
            waiting_open=waiting_open,
            max_party_size=max_party_size,
            max_queue_size=max_queue_size,
            avg_service_minutes=avg_service_minutes,
            day_starts_at=day_starts_at,
        )

    @property
    def today(self) -> date:
        return self.store.business_date(self.now)

    def active(self) -> list[Waiting]:
        """Active means today (DOMAIN.md): a waiting left open when its day ended counts no more."""
        return [w for w in self.history if w.status.active and w.business_date == self.today]

    def load(self, customer: Customer) -> WaitingList:
        today = [w for w in self.history if w.business_date == self.today]
        active = self.active()
        return WaitingList(
            store=self.store,
            business_date=self.today,
            last_number=max((w.number for w in today), default=0),
            active_count=len(active),
            waiting_count=sum(1 for w in today if w.status is WaitingStatus.WAITING),
            active_customers={w.customer.key for w in active if w.customer.key == customer.key},
        )

    def expected_refusal(self, customer: Customer, party_size: int) -> str | None:
        """DOMAIN.md's admission rules, in their documented order."""
        store, active = self.store, self.active()
        if not 1 <= party_size <= store.max_party_size:
            return "VALIDATION_ERROR"
        if not store.waiting_open:
            return "WAITING_CLOSED"
        if store.paused_until is not None and self.now < store.paused_until:
            return "WAITING_PAUSED"
        if any(w.customer.key == customer.key for w in active):
            return "ALREADY_WAITING"
        if store.max_queue_size is not None and len(active) >= store.max_queue_size:
            return "QUEUE_FULL"
        return None

    # Mostly valid party sizes, so that lists grow long enough to be interesting.
    @rule(target=waitings, customer=users, party_size=PARTY_SIZES)
    def register_user(self, customer: Customer, party_size: int) -> object:
        return self.register(customer, party_size)

    @rule(target=waitings, customer=guests, party_size=PARTY_SIZES)
    def register_guest(self, customer: Customer, party_size: int) -> object:
        return self.register(customer, party_size)

    def register(self, customer: Customer, party_size: int) -> object:
        day, expected = self.load(customer), self.expected_refusal(customer, party_size)
        last_before = day.last_number
        trace_id = f"t{next(self.traces)}"
        try:
            waiting = day.register(Registration(trace_id, customer, party_size, trace_id), self.now)
        except DomainError as refusal:
            assert refusal.code == expected
            assert (day.last_number, day.registered) == (last_before, [])
            return multiple()
        assert expected is None
        assert waiting.number == last_before + 1
        waiting.id = next(self.ids)
        self.history.append(waiting)
        return waiting

    @rule(waiting=waitings, action=st.sampled_from(["call", "seat", "cancel", "no_show"]))
    def move(self, waiting: Waiting, action: str) -> None:
        before, target = waiting.status, ALLOWED.get((waiting.status, action))
        method = {
            "call": waiting.call,
            "seat": waiting.seat,
            "cancel": lambda now: waiting.cancel(now, Canceller.CUSTOMER),
            "no_show": waiting.mark_no_show,
        }[action]
        try:
            method(self.now)
        except InvalidTransition:
            assert target is None
            assert waiting.status is before
            return
        assert waiting.status is target

    @rule(waiting=waitings, places=st.integers(0, 6), most=st.integers(0, 2))
    def postpone(self, waiting: Waiting, places: int, most: int) -> None:
        """Step back in the queue: the entries passed are the next WAITING ones of its day."""
        self.store.max_postpones = most
        behind = [
            w for w in self.history if w.business_date == waiting.business_date and w.place > waiting.place
        ]
        number, spent, before = waiting.number, waiting.postpones, {w.id: w.place for w in self.history}
        in_line = sorted((w for w in behind if w.status is WaitingStatus.WAITING), key=lambda w: w.place)
        try:
            passed = postpone(waiting, behind, places, most)
        except DomainError as refusal:
            expected = (
                "VALIDATION_ERROR"
                if not 1 <= places <= 5
                else "INVALID_TRANSITION"
                if waiting.status is not WaitingStatus.WAITING
                else "POSTPONE_LIMIT"
            )
            assert refusal.code == expected
            assert {w.id: w.place for w in self.history} == before
            return
        assert passed == in_line[:places]
        assert waiting.number == number
        assert waiting.postpones == spent + (1 if passed else 0)
        if passed:
            assert waiting.place == max(before[w.id] for w in passed)

    @rule()
    def open_list(self) -> None:
        self.store.open_waiting()

    @rule()
    def close_list(self) -> None:
        self.store.close_waiting()

    @rule(minutes=st.integers(1, 240))
    def pause(self, minutes: int) -> None:
        if not self.store.waiting_open:
            with pytest.raises(WaitingClosed):
                self.store.pause(minutes, self.now)
            return
        self.store.pause(minutes, self.now)
        assert self.store.paused_until == self.now + timedelta(minutes=minutes)

    @rule(minutes=st.integers(1, 300))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule(seconds=st.integers(-2, 2))
    def near_the_next_day_start(self, seconds: int) -> None:
        """Around the moment the store's next business day starts (local midnight or `dayStartsAt`)."""
        local_zone = zone(self.store.time_zone)
        tomorrow = self.now.astimezone(local_zone).date() + timedelta(days=1)
        start = datetime.combine(tomorrow, self.store.day_starts_at, tzinfo=local_zone).astimezone(UTC)
        self.now = max(self.now, start + timedelta(seconds=seconds))

    def days(self) -> dict[date, list[Waiting]]:
        by_day: dict[date, list[Waiting]] = defaultdict(list)
        for waiting in self.history:
            by_day[waiting.business_date].append(waiting)
        return by_day

    @invariant()
    def numbers_of_each_day_are_one_to_n_in_registration_order(self) -> None:
        for waitings in self.days().values():
            assert [w.number for w in waitings] == list(range(1, len(waitings) + 1))

    @invariant()
    def a_waiting_belongs_to_the_business_day_it_was_made(self) -> None:
        """The local day that starts at `dayStartsAt`: before it, the date of the day before."""
        local_zone, start = zone(self.store.time_zone), self.store.day_starts_at
        for waiting in self.history:
            local = waiting.created_at.astimezone(local_zone)
            expected = local.date() - timedelta(days=1) if local.time() < start else local.date()
            assert waiting.business_date == expected

    @invariant()
    def at_most_one_active_waiting_per_customer_per_day(self) -> None:
        keys = [(w.business_date, w.customer.key) for w in self.history if w.status.active]
        assert len(keys) == len(set(keys))

    @invariant()
    def ranks_are_one_to_k_over_waiting_entries_in_queue_order(self) -> None:
        for waitings in self.days().values():
            queue = sorted((w for w in waitings if w.status is WaitingStatus.WAITING), key=lambda w: w.place)
            assert ranks(waitings) == {w.id: rank for rank, w in enumerate(queue, start=1)}
            assert sorted(ranks(waitings).values()) == list(range(1, len(queue) + 1))

    @invariant()
    def the_days_places_are_a_permutation_of_its_numbers(self) -> None:
        for waitings in self.days().values():
            assert sorted(w.place for w in waitings) == [w.number for w in waitings]

    @invariant()
    def without_postpones_queue_order_is_number_order(self) -> None:
        for waitings in self.days().values():
            if not any(w.postpones for w in waitings):
                assert all(w.place == w.number for w in waitings)

    @invariant()
    def estimates_follow_rank(self) -> None:
        for rank in (1, 2, 5):
            expected = (
                None
                if self.store.avg_service_minutes is None
                else (rank - 1) * self.store.avg_service_minutes
            )
            assert Pace.of(self.store, None).wait(rank) == expected


TestWaitingListMachine = WaitingListMachine.TestCase
