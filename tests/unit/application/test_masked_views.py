"""Views: staff see everything, customers never a status token, guests a masked name and number."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from application.views import (
    for_customer,
    for_guest,
    mask_name,
    mask_phone,
    public_store_view,
    rank_view,
    waiting_view,
)
from domain.customer import Customer
from domain.store import Store
from domain.waiting import Waiting, WaitingStatus

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
STORE = Store(id=7, name="Onion Bakery", avg_service_minutes=5)


def waiting_of(customer: Customer, status: WaitingStatus = WaitingStatus.WAITING) -> Waiting:
    return Waiting(
        id=3,
        store_id=7,
        business_date=date(2026, 3, 2),
        number=12,
        customer=customer,
        party_size=2,
        trace_id="t",
        status_token="secret-token",
        created_at=NOW,
        status=status,
    )


GUEST = waiting_of(Customer.guest("김민수", "+821012345678"))
USER = waiting_of(Customer.user("u1"))


@pytest.mark.parametrize(
    ("name", "masked"),
    [("김민수", "김*수"), ("남궁민수", "남**수"), ("김민", "김*"), ("김", "김"), ("Alice", "A***e")],
)
def test_a_name_keeps_its_first_and_last_letters(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_a_phone_number_shows_only_its_prefix_and_last_four_digits() -> None:
    assert mask_phone("+821012345678") == "010-****-5678"


def test_staff_see_a_guests_name_number_and_status_token() -> None:
    view = waiting_view(GUEST, rank=2, store=STORE)

    assert view["name"] == "김민수"
    assert view["phoneNumber"] == "+821012345678"
    assert view["statusToken"] == "secret-token"
    assert (view["number"], view["rank"], view["estimatedWaitMinutes"]) == (12, 2, 5)
    assert (view["channel"], view["status"], view["businessDate"]) == ("APP", "WAITING", "2026-03-02")


def test_a_guest_sees_their_name_and_number_masked_and_no_status_token() -> None:
    view = for_guest(waiting_view(GUEST, rank=2, store=STORE))

    assert view["name"] == "김*수"
    assert view["phoneNumber"] == "010-****-5678"
    assert "statusToken" not in view
    assert view["rank"] == 2


def test_a_customer_never_sees_a_status_token() -> None:
    assert "statusToken" not in for_customer(waiting_view(GUEST))


def test_an_app_users_waiting_has_no_status_token_nor_guest_fields() -> None:
    view = waiting_view(USER)

    assert view["userId"] == "u1"
    assert not {"statusToken", "name", "phoneNumber"} & view.keys()


@pytest.mark.parametrize("status", [WaitingStatus.CALLED, WaitingStatus.SEATED, WaitingStatus.CANCELLED])
def test_only_a_waiting_entry_shows_a_rank(status: WaitingStatus) -> None:
    view = waiting_view(waiting_of(Customer.user("u1"), status), rank=1, store=STORE)

    assert not {"rank", "estimatedWaitMinutes"} & view.keys()


def test_moments_that_did_not_happen_are_left_out() -> None:
    called = waiting_of(Customer.user("u1"))
    called.call(NOW)

    view = waiting_view(called)

    assert view["calledAt"] == NOW.isoformat()
    assert not {"seatedAt", "cancelledAt", "noShowAt"} & view.keys()


def test_a_rank_view_carries_the_estimate() -> None:
    assert rank_view(3, STORE) == {"rank": 3, "estimatedWaitMinutes": 10}
    assert rank_view(3, Store(id=1, name="x")) == {"rank": 3, "estimatedWaitMinutes": None}


def test_the_public_view_estimates_the_wait_of_the_next_arrival() -> None:
    view = public_store_view(STORE, waiting_count=4, now=NOW)

    assert view == {
        "id": 7,
        "name": "Onion Bakery",
        "waitingOpen": False,
        "waitingCount": 4,
        "estimatedWaitMinutes": 20,
        "estimateSource": "configured",
    }
