"""The queued request's wire format (API.md's topic value): round trips, and refuses the rest."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.queue.codec import UnreadableMessage, decode, encode
from application.requests import RegistrationRequest
from domain.customer import Channel

AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
CUSTOMER = RegistrationRequest("t-1", 12, Channel.USER, 2, AT, user_id="42")
GUEST = RegistrationRequest("t-2", 12, Channel.APP, 4, AT, name="김민수", phone_number="+821012345678")


@pytest.mark.parametrize("request_", [CUSTOMER, GUEST])
def test_round_trip(request_: RegistrationRequest) -> None:
    assert decode(encode(request_)) == request_


def test_the_value_has_the_contracts_fields() -> None:
    assert json.loads(encode(GUEST)) == {
        "schemaVersion": 1,
        "traceId": "t-2",
        "storeId": 12,
        "channel": "APP",
        "partySize": 4,
        "requestedAt": "2026-11-25T09:30:00+00:00",
        "name": "김민수",
        "phoneNumber": "+821012345678",
    }


@pytest.mark.parametrize(
    "change",
    [
        {"schemaVersion": 2},
        {"storeId": "12"},
        {"partySize": True},
        {"channel": "FAX"},
        {"requestedAt": "yesterday"},
        {"traceId": ""},
        {"userId": None},
    ],
)
def test_a_wrong_field_is_unreadable(change: dict[str, object]) -> None:
    value = {**json.loads(encode(CUSTOMER)), **change}
    with pytest.raises(UnreadableMessage):
        decode(json.dumps(value).encode())


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_decode_or_are_unreadable(payload: bytes) -> None:
    with contextlib.suppress(UnreadableMessage):
        decode(payload)
