"""What the use cases' refusals tell the client: the detail and field messages that reach problem
details (RFC 9457). The other tests check which refusal is raised; these check what it says."""

from __future__ import annotations

import pytest

from application.access import Actor, Forbidden, Role
from application.guest_input import guest_name, mobile_number
from domain.errors import DomainError, FieldError, NotFound, ValidationError
from unit.helpers import Service, a_waiting, customer, user_request

STAFF_OF_7 = Actor(Role.STORE, "staff", store_id=7)


def refusal_of(check: object, *args: object) -> DomainError:
    with pytest.raises(DomainError) as refused:
        check(*args)  # type: ignore[operator]
    return refused.value


def field_error(check: object, raw: str) -> FieldError:
    refused = refusal_of(check, raw)
    assert isinstance(refused, ValidationError)
    [error] = refused.errors
    assert refused.detail == f"{error.field}: {error.message}"
    return error


def test_store_actions_name_the_store_and_who_may_act() -> None:
    assert (
        refusal_of(STAFF_OF_7.require_staff, 8).detail == "this needs a token of store 8's staff or an admin"
    )
    assert refusal_of(STAFF_OF_7.require_own_store, 8).detail == "this needs a token of store 8's staff"


def test_a_refused_role_names_the_roles_that_may() -> None:
    refused = refusal_of(STAFF_OF_7.require_role, Role.CUSTOMER, Role.ADMIN)

    assert isinstance(refused, Forbidden)
    assert refused.detail == "this needs the role customer or admin"


def test_a_waiting_out_of_sight_is_said_not_to_exist() -> None:
    theirs = a_waiting()

    assert refusal_of(Actor(Role.CUSTOMER, "u2").require_sight, theirs).detail == "waiting not found"


@pytest.mark.parametrize("name", ["", "x" * 51])
def test_a_guest_name_of_the_wrong_length_is_told_the_bounds(name: str) -> None:
    assert field_error(guest_name, name) == FieldError("name", "must be 1..50 characters after trimming")


def test_a_guest_name_with_a_control_character_is_told_so() -> None:
    assert field_error(guest_name, "김\n민수") == FieldError("name", "must not contain control characters")


def test_something_that_is_no_phone_number_is_told_so() -> None:
    assert field_error(mobile_number, "abc") == FieldError("phoneNumber", "is not a phone number")


@pytest.mark.parametrize("number", ["02-123-4567", "+1 650-253-0000"])
def test_a_phone_number_that_is_not_a_korean_mobile_is_shown_one(number: str) -> None:
    assert field_error(mobile_number, number) == FieldError(
        "phoneNumber", "must be a Korean mobile number, e.g. 010-1234-5678"
    )


async def test_unknown_waitings_and_requests_are_said_not_to_exist() -> None:
    service = Service()
    store = await service.add_store()
    mine = await service.register(user_request(store.id, "u1"))

    with pytest.raises(NotFound) as no_waiting:
        await service.queries.waiting(customer("u1"), mine["id"] + 1)
    with pytest.raises(NotFound) as no_guest:
        await service.queries.guest_waiting("no-such-token")
    with pytest.raises(NotFound) as no_request:
        await service.queries.request(customer("u1"), "no-such-trace")

    assert [no_waiting.value.detail, no_guest.value.detail] == ["waiting not found"] * 2
    assert no_request.value.detail == "request not found"
