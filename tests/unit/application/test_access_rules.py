"""Who may act on a store or see a waiting; refusing sight says "not found" so nothing leaks."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from application.access import Actor, Forbidden, Role
from domain.customer import Customer
from domain.errors import NotFound
from domain.waiting import Waiting

OWN_STAFF = Actor(Role.STORE, "staff", store_id=7)
OTHER_STAFF = Actor(Role.STORE, "staff", store_id=8)
ADMIN = Actor(Role.ADMIN, "root")
OWNER = Actor(Role.CUSTOMER, "u1")
STRANGER = Actor(Role.CUSTOMER, "u2")


def waiting_of(customer: Customer) -> Waiting:
    return Waiting(
        id=1,
        store_id=7,
        business_date=date(2026, 3, 2),
        number=1,
        customer=customer,
        party_size=2,
        trace_id="t",
        status_token="s",
        created_at=datetime(2026, 3, 2, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("actor", "staffs"), [(OWN_STAFF, True), (ADMIN, True), (OTHER_STAFF, False), (OWNER, False)]
)
def test_a_store_is_staffed_by_its_own_staff_and_admins(actor: Actor, staffs: bool) -> None:
    assert actor.staffs(7) is staffs


@pytest.mark.parametrize("actor", [OTHER_STAFF, OWNER])
def test_others_are_forbidden_store_actions(actor: Actor) -> None:
    with pytest.raises(Forbidden):
        actor.require_staff(7)


def test_own_store_means_the_stores_staff_not_an_admin() -> None:
    OWN_STAFF.require_own_store(7)
    for actor in (ADMIN, OTHER_STAFF, OWNER):
        with pytest.raises(Forbidden):
            actor.require_own_store(7)


def test_a_role_is_required_by_name() -> None:
    OWNER.require_role(Role.CUSTOMER)
    with pytest.raises(Forbidden) as refused:
        OWN_STAFF.require_role(Role.CUSTOMER, Role.ADMIN)
    assert refused.value.code == "FORBIDDEN"


@pytest.mark.parametrize(
    ("actor", "sees"),
    [(OWNER, True), (OWN_STAFF, True), (ADMIN, True), (STRANGER, False), (OTHER_STAFF, False)],
)
def test_a_waiting_is_seen_by_its_customer_its_stores_staff_and_admins(actor: Actor, sees: bool) -> None:
    assert actor.may_see(waiting_of(Customer.user("u1"))) is sees


@pytest.mark.parametrize("actor", [STRANGER, OTHER_STAFF])
def test_those_who_may_not_see_a_waiting_are_told_it_does_not_exist(actor: Actor) -> None:
    with pytest.raises(NotFound):
        actor.require_sight(waiting_of(Customer.user("u1")))


def test_no_customer_sees_a_guests_waiting() -> None:
    guest = waiting_of(Customer.guest("김민수", "+821012345678"))

    assert not OWNER.may_see(guest)
    assert not Actor(Role.CUSTOMER, "+821012345678").may_see(guest)
    assert OWN_STAFF.may_see(guest)
