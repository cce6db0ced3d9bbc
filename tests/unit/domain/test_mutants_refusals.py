"""What a refusal tells the client: the detail and field messages that reach problem details.

Written against the mutation run (scripts/mutation): the other tests check which refusal is
raised, these check what it says.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from domain.customer import Customer
from domain.errors import (
    AlreadyWaiting,
    DomainError,
    FieldError,
    InvalidTransition,
    NotFound,
    PostponeLimit,
    QueueFull,
    ValidationError,
    WaitingClosed,
)
from domain.store import Store
from domain.waiting_list import Registration, WaitingList, postpone
from unit.helpers import a_waiting

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def joining(user_id: str) -> Registration:
    return Registration(f"trace-{user_id}", Customer.user(user_id), 2, status_token=f"token-{user_id}")


def refusal(day: WaitingList, registration: Registration) -> DomainError:
    with pytest.raises(DomainError) as refused:
        day.register(registration, NOW)
    return refused.value


def field_errors(**settings: object) -> list[FieldError]:
    with pytest.raises(ValidationError) as refused:
        Store(id=1, **{"name": "Onion Bakery", **settings})  # type: ignore[arg-type]
    return refused.value.errors


def test_a_closed_store_names_itself_in_the_refusal() -> None:
    day = WaitingList(store=Store(id=7, name="Onion Bakery"), business_date=date(2026, 3, 2))

    refused = refusal(day, joining("u1"))

    assert isinstance(refused, WaitingClosed)
    assert refused.detail == "store 7 is not taking registrations"


def test_a_customer_already_waiting_is_told_so() -> None:
    day = WaitingList(
        store=Store(id=7, name="Onion Bakery", waiting_open=True),
        business_date=date(2026, 3, 2),
        active_customers={Customer.user("u1").key},
    )

    refused = refusal(day, joining("u1"))

    assert isinstance(refused, AlreadyWaiting)
    assert refused.detail == "this customer already holds an active waiting at this store"


def test_a_full_list_says_how_many_it_holds() -> None:
    day = WaitingList(
        store=Store(id=7, name="Onion Bakery", waiting_open=True, max_queue_size=2),
        business_date=date(2026, 3, 2),
        active_count=2,
    )

    refused = refusal(day, joining("u1"))

    assert isinstance(refused, QueueFull)
    assert refused.detail == "the list is full (2 active waitings)"


def test_a_refused_transition_names_the_action_as_clients_write_it_and_the_status() -> None:
    waiting = a_waiting()

    with pytest.raises(InvalidTransition) as refused:
        waiting.mark_no_show(NOW)

    assert refused.value.detail == "cannot no-show a waiting that is WAITING"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"name": " "}, FieldError("name", "must be 1..100 characters")),
        ({"max_party_size": 0}, FieldError("maxPartySize", "must be at least 1")),
        ({"max_queue_size": 0}, FieldError("maxQueueSize", "must be at least 1")),
        ({"avg_service_minutes": -1}, FieldError("avgServiceMinutes", "must not be negative")),
        ({"time_zone": "Mars/Olympus"}, FieldError("timeZone", "unknown time zone 'Mars/Olympus'")),
        ({"notify_at_rank": 101}, FieldError("notifyAtRank", "must be between 1 and 100, or null")),
        ({"max_postpones": 11}, FieldError("maxPostpones", "must be between 0 and 10")),
        ({"day_starts_at": time(4, 30, 15)}, FieldError("dayStartsAt", "must be a local time HH:MM")),
        ({"day_starts_at": time(4, 30, tzinfo=UTC)}, FieldError("dayStartsAt", "must be a local time HH:MM")),
    ],
)
def test_a_bad_setting_names_its_field_and_what_is_wrong(
    settings: dict[str, object], expected: FieldError
) -> None:
    assert field_errors(**settings) == [expected]


def test_a_party_too_large_is_told_the_stores_limit() -> None:
    store = Store(id=1, name="Onion Bakery", max_party_size=6)

    with pytest.raises(ValidationError) as refused:
        store.check_party_size(7)

    assert refused.value.errors == [FieldError("partySize", "must be between 1 and 6")]
    assert refused.value.detail == "partySize: must be between 1 and 6"


@pytest.mark.parametrize(("detail", "said"), [("", "NOT_FOUND"), ("waiting not found", "waiting not found")])
def test_a_domain_error_says_its_detail_or_else_its_code(detail: str, said: str) -> None:
    error = NotFound(detail)

    assert (error.detail, str(error)) == (said, said)


def test_a_domain_error_without_a_detail_says_its_code() -> None:
    assert (NotFound().detail, str(NotFound())) == ("NOT_FOUND", "NOT_FOUND")


@pytest.mark.parametrize(
    "settings",
    [
        {"max_party_size": 1},
        {"notify_at_rank": 1},
        {"notify_at_rank": 100},
        {"notify_at_rank": None},
        {"max_postpones": 0},
        {"max_postpones": 10},
        {"day_starts_at": time(4, 30)},
    ],
)
def test_the_bounds_of_a_setting_are_settings_too(settings: dict[str, object]) -> None:
    store = Store(id=1, name="Onion Bakery", **settings)  # type: ignore[arg-type]

    assert [getattr(store, name) for name in settings] == list(settings.values())


def test_a_refused_postpone_says_why() -> None:
    mover = a_waiting()

    with pytest.raises(ValidationError) as too_far:
        postpone(mover, [], places=6, most=1)
    with pytest.raises(PostponeLimit) as spent:
        postpone(mover, [], places=1, most=0)
    mover.call(NOW)
    with pytest.raises(InvalidTransition) as called:
        postpone(mover, [], places=1, most=1)

    assert too_far.value.errors == [FieldError("places", "must be between 1 and 5")]
    assert spent.value.detail == "this waiting may postpone 0 time(s) at this store"
    assert called.value.detail == "cannot postpone a waiting that is CALLED"
