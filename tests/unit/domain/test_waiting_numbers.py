"""WaitingList.register: who gets the next number, and who is refused without taking one."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.customer import Channel, Customer
from domain.errors import AlreadyWaiting, DomainError, QueueFull, ValidationError, WaitingClosed
from domain.store import Store
from domain.waiting import WaitingStatus
from domain.waiting_list import Registration, WaitingList

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
DAY = date(2026, 3, 2)
PHONE = "+821012345678"


def day_of(store: Store | None = None, **state: object) -> WaitingList:
    store = store or Store(id=7, name="Onion Bakery", waiting_open=True)
    return WaitingList(store=store, business_date=DAY, **state)  # type: ignore[arg-type]


def joining(customer: Customer, party_size: int = 2, trace_id: str = "t") -> Registration:
    return Registration(trace_id, customer, party_size, status_token=f"token-{trace_id}")


def refusal(day: WaitingList, registration: Registration) -> DomainError:
    with pytest.raises(DomainError) as refused:
        day.register(registration, NOW)
    return refused.value


def test_numbers_are_given_out_from_one_without_gaps() -> None:
    day = day_of()

    numbers = [day.register(joining(Customer.user(f"u{i}")), NOW).number for i in range(5)]

    assert numbers == [1, 2, 3, 4, 5]
    assert day.last_number == 5
    assert [w.number for w in day.registered] == numbers


def test_numbers_continue_after_the_last_one_of_the_day() -> None:
    day = day_of(last_number=41)

    assert day.register(joining(Customer.user("u1")), NOW).number == 42


def test_a_new_waiting_carries_the_request_and_is_waiting() -> None:
    guest = Customer.guest("김민수", PHONE)

    waiting = day_of().register(joining(guest, party_size=3, trace_id="trace-9"), NOW)

    assert waiting.id is None
    assert (waiting.store_id, waiting.business_date, waiting.number) == (7, DAY, 1)
    assert waiting.customer == guest
    assert waiting.channel is Channel.APP
    assert waiting.party_size == 3
    assert waiting.trace_id == "trace-9"
    assert waiting.status_token == "token-trace-9"
    assert waiting.status is WaitingStatus.WAITING
    assert waiting.created_at == NOW
    assert waiting.events == ["registered"]


def test_registering_counts_the_new_waiting_as_active_and_waiting() -> None:
    day = day_of(active_count=2, waiting_count=1)

    day.register(joining(Customer.user("u1")), NOW)

    assert (day.active_count, day.waiting_count) == (3, 2)
    assert "user:u1" in day.active_customers


def test_a_refused_request_takes_no_number() -> None:
    day = day_of()
    day.register(joining(Customer.user("u1")), NOW)

    refusal(day, joining(Customer.user("u1")))

    assert day.last_number == 1
    assert len(day.registered) == 1
    assert day.register(joining(Customer.user("u2")), NOW).number == 2


@pytest.mark.parametrize("party_size", [1, 10])
def test_party_sizes_at_the_bounds_are_accepted(party_size: int) -> None:
    assert day_of().register(joining(Customer.user("u1"), party_size), NOW).party_size == party_size


@pytest.mark.parametrize("party_size", [0, -1, 11])
def test_a_party_size_outside_the_bounds_is_a_validation_error(party_size: int) -> None:
    day = day_of()

    assert isinstance(refusal(day, joining(Customer.user("u1"), party_size)), ValidationError)
    assert day.last_number == 0


def test_the_party_size_bound_is_the_stores() -> None:
    day = day_of(Store(id=7, name="x", waiting_open=True, max_party_size=2))

    assert isinstance(refusal(day, joining(Customer.user("u1"), 3)), ValidationError)


def test_a_closed_list_refuses() -> None:
    assert isinstance(refusal(day_of(Store(id=7, name="x")), joining(Customer.user("u1"))), WaitingClosed)


def test_a_full_list_refuses() -> None:
    day = day_of(Store(id=7, name="x", waiting_open=True, max_queue_size=2), active_count=2)

    assert isinstance(refusal(day, joining(Customer.user("u1"))), QueueFull)


def test_the_list_fills_up_with_its_own_registrations() -> None:
    day = day_of(Store(id=7, name="x", waiting_open=True, max_queue_size=2))
    day.register(joining(Customer.user("u1")), NOW)
    day.register(joining(Customer.user("u2")), NOW)

    assert isinstance(refusal(day, joining(Customer.user("u3"))), QueueFull)


def test_an_unlimited_list_never_fills_up() -> None:
    day = day_of(active_count=10_000)

    assert day.register(joining(Customer.user("u1")), NOW).number == 1


@pytest.mark.parametrize(
    ("waiting_open", "already_waiting", "full", "party_size", "expected"),
    [
        (False, True, True, 11, "VALIDATION_ERROR"),
        (True, True, True, 0, "VALIDATION_ERROR"),
        (False, True, True, 2, "WAITING_CLOSED"),
        (False, True, False, 2, "WAITING_CLOSED"),
        (False, False, True, 2, "WAITING_CLOSED"),
        (True, True, True, 2, "ALREADY_WAITING"),
        (True, False, True, 2, "QUEUE_FULL"),
    ],
)
def test_when_several_rules_refuse_the_first_in_documented_order_answers(
    waiting_open: bool, already_waiting: bool, full: bool, party_size: int, expected: str
) -> None:
    store = Store(id=7, name="x", waiting_open=waiting_open, max_queue_size=1)
    day = day_of(
        store,
        active_count=1 if full else 0,
        active_customers={"user:u1"} if already_waiting else set(),
    )

    assert refusal(day, joining(Customer.user("u1"), party_size)).code == expected


def test_an_app_user_with_an_active_waiting_is_refused() -> None:
    day = day_of(active_customers={"user:u1"})

    assert isinstance(refusal(day, joining(Customer.user("u1"))), AlreadyWaiting)
    assert day.register(joining(Customer.user("u2")), NOW).number == 1


def test_a_guest_is_known_by_phone_number_not_by_name() -> None:
    day = day_of()
    day.register(joining(Customer.guest("김민수", PHONE)), NOW)

    assert isinstance(refusal(day, joining(Customer.guest("Minsu Kim", PHONE))), AlreadyWaiting)
    assert day.register(joining(Customer.guest("김민수", "+821098765432")), NOW).number == 2


def test_a_user_and_a_guest_are_different_customers() -> None:
    day = day_of()
    day.register(joining(Customer.user(PHONE)), NOW)

    assert day.register(joining(Customer.guest("김민수", PHONE)), NOW).number == 2


def test_customer_keys_name_the_channel() -> None:
    assert Customer.user("u1").key == "user:u1"
    assert Customer.guest("김민수", PHONE).key == f"phone:{PHONE}"
