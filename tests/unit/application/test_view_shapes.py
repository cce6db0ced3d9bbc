"""The read models in the contract's shape: every field under its camelCase name, moments in
ISO-8601, and what is unknown left out or null as the contract says."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from application.requests import RequestState, RequestStatus
from application.views import request_view, waiting_view
from domain.customer import Customer
from domain.waiting import Canceller, Waiting

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def waiting(number: int = 12) -> Waiting:
    return Waiting(
        id=3,
        store_id=7,
        business_date=date(2026, 3, 2),
        number=number,
        customer=Customer.user("u1"),
        party_size=4,
        trace_id="t",
        status_token="secret-token",
        created_at=NOW,
    )


def test_a_waiting_entry_in_full() -> None:
    assert waiting_view(waiting(), rank=2) == {
        "id": 3,
        "storeId": 7,
        "businessDate": "2026-03-02",
        "number": 12,
        "channel": "USER",
        "status": "WAITING",
        "partySize": 4,
        "createdAt": "2026-03-02T02:00:00+00:00",
        "rank": 2,
        "estimatedWaitMinutes": None,  # no store given: nothing to estimate from
        "userId": "u1",
    }


def test_a_cancelled_waiting_says_when() -> None:
    cancelled = waiting()
    cancelled.cancel(NOW + timedelta(minutes=5), Canceller.CUSTOMER)

    view = waiting_view(cancelled)

    assert (view["status"], view["cancelledAt"]) == ("CANCELLED", "2026-03-02T02:05:00+00:00")


def test_a_request_view_names_the_request_its_store_and_its_state() -> None:
    queued = RequestStatus("trace-1", 7, RequestState.QUEUED, user_id="u1")

    assert request_view(queued) == {"traceId": "trace-1", "storeId": 7, "status": "QUEUED"}
    assert request_view(queued.rejected("QUEUE_FULL")) == {
        "traceId": "trace-1",
        "storeId": 7,
        "status": "REJECTED",
        "reason": "QUEUE_FULL",
    }
    assert request_view(queued.registered(3), {"id": 3}) == {
        "traceId": "trace-1",
        "storeId": 7,
        "status": "REGISTERED",
        "waiting": {"id": 3},
    }
