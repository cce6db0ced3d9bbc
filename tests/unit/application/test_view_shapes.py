"""The read models in the contract's shape: every field under its camelCase name, moments in
ISO-8601, and what is unknown left out or null as the contract says."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from application.requests import RequestState, RequestStatus
from application.views import request_view, waiting_view, waiting_views
from domain.customer import Customer
from domain.store import Store
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


def test_a_batch_of_views_is_each_view_with_its_keys_in_the_same_order() -> None:
    """`waiting_views` (a batch announced at once) is `waiting_view` of each, key order included:
    a stream's JSON reads the same whichever built it."""
    store = Store(id=7, name="Gamja", waiting_open=True, avg_service_minutes=3)
    guest = replace(waiting(13), customer=Customer.guest("김민수", "+821012345678"))
    called, cancelled = waiting(14), waiting(15)
    called.call(NOW)
    cancelled.cancel(NOW + timedelta(minutes=1), Canceller.CUSTOMER)
    ranked = [(waiting(), 1), (guest, 2), (called, 3), (cancelled, 4)]
    for history in (None, 2.5):
        each = [waiting_view(w, rank, store, history) for w, rank in ranked]
        batch = waiting_views(ranked, store, history)
        assert batch == each
        assert [list(view) for view in batch] == [list(view) for view in each]
    assert "statusToken" in waiting_views([(guest, 1)], None, None)[0]
