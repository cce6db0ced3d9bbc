"""A store's list read a page at a time: queue order, ranks that go on across pages, and cursors
that are opaque, fit in a URL and are checked when they come back."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest

from application.queries import MAX_PAGE_SIZE
from application.views import View
from domain.errors import FieldError, StoreNotFound, ValidationError
from domain.waiting import WaitingStatus
from unit.helpers import ADMIN, Service, staff, user_request


async def store_with(service: Service, size: int, **settings: object) -> tuple[int, list[View]]:
    store = await service.add_store(**settings)  # type: ignore[arg-type]
    return store.id, [await service.register(user_request(store.id, f"u{i}")) for i in range(size)]


async def all_pages(
    service: Service, store_id: int, limit: int, status: WaitingStatus | None = None
) -> list[View]:
    pages, after = [], None
    while True:
        page = await service.queries.store_waitings(staff(store_id), store_id, status, limit, after)
        pages.append(page)
        if (after := page["next"]) is None:
            return pages


def numbers_and_ranks(page: View) -> list[tuple[int, int | None]]:
    return [(item["number"], item.get("rank")) for item in page["items"]]


async def test_pages_follow_the_queue_and_ranks_go_on_from_one_page_to_the_next() -> None:
    service = Service()
    store_id, views = await store_with(service, 5, avg_service_minutes=3)
    for called in (views[0], views[2]):
        await service.move.by_store(staff(store_id), store_id, called["id"], "call")

    pages = await all_pages(service, store_id, limit=2)

    assert [numbers_and_ranks(page) for page in pages] == [
        [(1, None), (2, 1)],
        [(3, None), (4, 2)],
        [(5, 3)],
    ]
    assert [item.get("estimatedWaitMinutes") for item in pages[1]["items"]] == [None, 3]


async def test_a_page_of_waiting_entries_only_starts_from_the_rank_of_its_first() -> None:
    service = Service()
    store_id, views = await store_with(service, 4)
    await service.move.by_store(staff(store_id), store_id, views[1]["id"], "call")

    pages = await all_pages(service, store_id, limit=1, status=WaitingStatus.WAITING)

    assert [numbers_and_ranks(page) for page in pages] == [[(1, 1)], [(3, 2)], [(4, 3)]]


async def test_a_page_with_nobody_waiting_ranks_nobody() -> None:
    service = Service()
    store_id, views = await store_with(service, 3)
    for view in views[:2]:
        await service.move.by_store(staff(store_id), store_id, view["id"], "call")

    pages = await all_pages(service, store_id, limit=2)

    assert [numbers_and_ranks(page) for page in pages] == [[(1, None), (2, None)], [(3, 1)]]


async def test_a_page_that_holds_the_rest_exactly_has_no_next() -> None:
    service = Service()
    store_id, _ = await store_with(service, 3)

    page = await service.queries.store_waitings(staff(store_id), store_id, None, limit=3)

    assert (len(page["items"]), page["next"]) == (3, None)


async def test_cursors_need_no_escaping_in_a_url_and_lead_on_past_two_digit_numbers() -> None:
    service = Service()
    store_id, _ = await store_with(service, 112)

    pages = await all_pages(service, store_id, limit=10)
    cursors = [page["next"] for page in pages[:-1]]

    assert [len(page["items"]) for page in pages] == [10] * 11 + [2]
    assert [item["number"] for page in pages for item in page["items"]] == list(range(1, 113))
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", cursor) for cursor in cursors)


async def test_only_todays_waitings_are_listed() -> None:
    service = Service()
    store_id, _ = await store_with(service, 2)
    service.clock.advance(timedelta(days=1))
    await service.register(user_request(store_id, "u9"))

    page = await service.queries.store_waitings(ADMIN, store_id, None)

    assert numbers_and_ranks(page) == [(1, 1)]


@pytest.mark.parametrize("limit", [1, MAX_PAGE_SIZE])
async def test_a_page_holds_1_to_500_waitings(limit: int) -> None:
    service = Service()
    store_id, _ = await store_with(service, 2)

    page = await service.queries.store_waitings(staff(store_id), store_id, None, limit)

    assert len(page["items"]) == min(limit, 2)


@pytest.mark.parametrize("limit", [0, MAX_PAGE_SIZE + 1])
async def test_a_page_size_out_of_bounds_is_refused(limit: int) -> None:
    service = Service()
    store_id, _ = await store_with(service, 1)

    with pytest.raises(ValidationError) as refused:
        await service.queries.store_waitings(staff(store_id), store_id, None, limit)

    assert refused.value.errors == [FieldError("limit", "must be between 1 and 500")]


def cursor_of(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "after",
    [
        "%%%",
        "A",
        cursor_of("x:1"),
        cursor_of("n:one"),
        cursor_of("n:-1"),
        cursor_of("n:1:2"),
        cursor_of("n1"),
        cursor_of("n:1234567890"),
        cursor_of(b"n:\xff"),
    ],
)
async def test_a_cursor_this_list_did_not_give_out_is_refused(after: str) -> None:
    service = Service()
    store_id, _ = await store_with(service, 1)

    with pytest.raises(ValidationError) as refused:
        await service.queries.store_waitings(staff(store_id), store_id, None, after=after)

    assert refused.value.errors == [FieldError("after", "not a cursor this list gave out")]


async def test_a_well_formed_cursor_past_the_end_gives_an_empty_last_page() -> None:
    service = Service()
    store_id, _ = await store_with(service, 2)

    page = await service.queries.store_waitings(
        staff(store_id), store_id, None, after=cursor_of("n:123456789")
    )

    assert page == {"items": [], "next": None}


async def test_the_list_of_an_unknown_store_is_not_found() -> None:
    with pytest.raises(StoreNotFound):
        await Service().queries.store_waitings(ADMIN, 404, None)
