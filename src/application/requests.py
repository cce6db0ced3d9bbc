"""Registration requests as they travel through the queue, and their outcomes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from domain.computed_once import computed_once
from domain.customer import Channel, Customer


@dataclass(frozen=True)
class RegistrationRequest:
    trace_id: str
    store_id: int
    channel: Channel
    party_size: int
    requested_at: datetime
    user_id: str | None = None
    name: str | None = None
    phone_number: str | None = None

    @computed_once  # asked for several times while a request is decided
    def customer(self) -> Customer:
        if self.channel is Channel.USER:
            assert self.user_id is not None
            return Customer.user(self.user_id)
        assert self.name is not None and self.phone_number is not None
        return Customer.guest(self.name, self.phone_number)


class RequestState(StrEnum):
    QUEUED = "QUEUED"
    REGISTERED = "REGISTERED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    """Set aside as a dead letter after its retries: an operator's replay may still decide it."""


@dataclass(frozen=True)
class RequestStatus:
    trace_id: str
    store_id: int
    state: RequestState
    user_id: str | None = None
    waiting_id: int | None = None
    reason: str | None = None

    @property
    def decided(self) -> bool:
        """Registered or rejected: final, and kept in the request log."""
        return self.state in (RequestState.REGISTERED, RequestState.REJECTED)

    @property
    def ended(self) -> bool:
        """Nothing more happens to it unless an operator replays it: decided, or failed."""
        return self.state is not RequestState.QUEUED

    @classmethod
    def queued(cls, request: RegistrationRequest) -> RequestStatus:
        return cls(request.trace_id, request.store_id, RequestState.QUEUED, user_id=request.user_id)

    @classmethod
    def registered_as(cls, request: RegistrationRequest, waiting_id: int) -> RequestStatus:
        """`queued(request).registered(waiting_id)` as one object: the worker makes one per registration."""
        return cls(request.trace_id, request.store_id, RequestState.REGISTERED, request.user_id, waiting_id)

    def registered(self, waiting_id: int) -> RequestStatus:
        # Built directly: dataclasses.replace costs several times more, once per registration.
        return RequestStatus(
            self.trace_id, self.store_id, RequestState.REGISTERED, self.user_id, waiting_id, self.reason
        )

    def rejected(self, reason: str) -> RequestStatus:
        return replace(self, state=RequestState.REJECTED, reason=reason)

    def failed(self, reason: str) -> RequestStatus:
        return replace(self, state=RequestState.FAILED, reason=reason)
