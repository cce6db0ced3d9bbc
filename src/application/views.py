"""Read models in the contract's shape (camelCase, ISO-8601), shared by HTTP and live streams."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from application.requests import RequestStatus
from domain.estimates import Pace
from domain.store import Store
from domain.waiting import Waiting, WaitingStatus

View = dict[str, Any]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def waiting_view(
    waiting: Waiting, rank: int | None = None, store: Store | None = None, history: float | None = None
) -> View:
    """The full view, as staff see it; `for_guest` and `for_customer` take away what they may not see.
    `history`: the day's minutes per call, when the day has a pace (`domain.estimates`)."""
    return _view(
        waiting,
        rank,
        Pace.of(store, history) if store else None,
        waiting.business_date.isoformat(),
        waiting.created_at.isoformat(),
    )


def waiting_views(
    ranked: Iterable[tuple[Waiting, int]], store: Store | None, history: float | None
) -> list[View]:
    """`waiting_view` of each (waiting, rank), the store's pace worked out once (a batch of a
    thousand registrations is announced at once)."""
    pace = Pace.of(store, history) if store else None
    views: list[View] = []
    day, moment, day_text, moment_text = None, None, "", ""
    for waiting, rank in ranked:
        # A batch's waitings share their day and their moment (the very same objects): each is
        # written out once, not a thousand times (measured: 5 % of a drain's Python time).
        if waiting.business_date is not day:
            day, day_text = waiting.business_date, waiting.business_date.isoformat()
        if waiting.created_at is not moment:
            moment, moment_text = waiting.created_at, waiting.created_at.isoformat()
        views.append(_view(waiting, rank, pace, day_text, moment_text))
    return views


def _view(waiting: Waiting, rank: int | None, pace: Pace | None, business_date: str, created_at: str) -> View:
    """`business_date` and `created_at`: the waiting's, written out."""
    view: View = {
        "id": waiting.id,
        "storeId": waiting.store_id,
        "businessDate": business_date,
        "number": waiting.number,
        "channel": str(waiting.channel),
        "status": str(waiting.status),
        "partySize": waiting.party_size,
        "createdAt": created_at,
    }
    if waiting.status is WaitingStatus.WAITING and rank is not None:
        view["rank"] = rank
        view["estimatedWaitMinutes"] = pace.wait(rank) if pace else None
    # Only what is set, in this order (plain ifs: this runs for every registration announced).
    if waiting.called_at:
        view["calledAt"] = waiting.called_at.isoformat()
    if waiting.seated_at:
        view["seatedAt"] = waiting.seated_at.isoformat()
    if waiting.cancelled_at:
        view["cancelledAt"] = waiting.cancelled_at.isoformat()
    if waiting.no_show_at:
        view["noShowAt"] = waiting.no_show_at.isoformat()
    customer = waiting.customer
    if customer.user_id is not None:
        view["userId"] = customer.user_id
    if customer.name is not None:
        view["name"] = customer.name
    if customer.phone_number is not None:
        view["phoneNumber"] = customer.phone_number
    if customer.phone_number and waiting.status_token:  # a guest's own way back to their waiting
        view["statusToken"] = waiting.status_token
    return view


def for_customer(view: View) -> View:
    return {key: value for key, value in view.items() if key != "statusToken"}


def for_guest(view: View) -> View:
    masked = for_customer(view)
    if "name" in masked:
        masked["name"] = mask_name(masked["name"])
    if "phoneNumber" in masked:
        masked["phoneNumber"] = mask_phone(masked["phoneNumber"])
    return masked


def mask_name(name: str) -> str:
    """김민수 -> 김*수; two letters keep the first; one letter stays."""
    if len(name) <= 2:
        return name[0] + "*" * (len(name) - 1)
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_phone(e164: str) -> str:
    """+821012345678 -> 010-****-5678."""
    national = "0" + e164.removeprefix("+82")
    return f"{national[:3]}-****-{national[-4:]}"


def rank_view(rank: int, store: Store, history: float | None = None) -> View:
    return {"rank": rank, "estimatedWaitMinutes": Pace.of(store, history).wait(rank)}


def store_view(store: Store, now: datetime) -> View:
    """The store as its staff see it: every setting (not the webhook's secret), and the pause while it lasts."""
    view: View = {
        "id": store.id,
        "name": store.name,
        "timeZone": store.time_zone,
        "waitingOpen": store.waiting_open,
        "maxPartySize": store.max_party_size,
        "maxQueueSize": store.max_queue_size,
        "avgServiceMinutes": store.avg_service_minutes,
        "notifyAtRank": store.notify_at_rank,
        "maxPostpones": store.max_postpones,
        "dayStartsAt": f"{store.day_starts_at:%H:%M}",
        "webhookUrl": store.webhook_url,
    }
    return _with_pause(view, store, now)


def public_store_view(store: Store, waiting_count: int, now: datetime, history: float | None = None) -> View:
    pace = Pace.of(store, history)
    view: View = {
        "id": store.id,
        "name": store.name,
        "waitingOpen": store.waiting_open,
        "waitingCount": waiting_count,
        "estimatedWaitMinutes": pace.wait(waiting_count + 1),
        "estimateSource": pace.source,
    }
    return _with_pause(view, store, now)


def _with_pause(view: View, store: Store, now: datetime) -> View:
    if (until := store.pause_left(now)) is not None:
        view["pausedUntil"] = until.isoformat()
    return view


def request_view(status: RequestStatus, waiting: View | None = None) -> View:
    view: View = {"traceId": status.trace_id, "storeId": status.store_id, "status": str(status.state)}
    if waiting is not None:
        view["waiting"] = waiting
    if status.reason is not None:
        view["reason"] = status.reason
    return view
