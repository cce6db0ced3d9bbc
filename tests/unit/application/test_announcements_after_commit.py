"""Live events are told after the change is committed: when they cannot be sent, the change still
stands and its caller is answered as if they had been (a 503 would say "not taken")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adapters.notify.local import LocalNotifier
from unit.helpers import Service, staff, user_request


class NotifierAway(LocalNotifier):
    """Redis gone between the commit and the events."""

    async def publish(self, stream: str, event_type: str, data: Mapping[str, Any]) -> None:
        raise ConnectionError("Connection closed by server.")

    async def publish_all(self, events: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        raise ConnectionError("Connection closed by server.")


async def test_a_registration_and_a_move_stand_and_are_answered_when_their_events_cannot_be_sent() -> None:
    service = Service(notifier=NotifierAway())
    store = await service.add_store()

    first = await service.register(user_request(store.id, "u1"))
    second = await service.register(user_request(store.id, "u2"))
    called = await service.move.by_store(staff(store.id), store.id, first["id"], "call")

    assert (first["number"], second["number"], called["status"]) == (1, 2, "CALLED")
    assert service.waiting_numbers(store.id) == [1, 2]
