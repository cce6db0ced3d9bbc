"""Who is waiting: an app user, or a guest registered at the store's tablet."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.computed_once import computed_once


class Channel(StrEnum):
    USER = "USER"
    APP = "APP"


@dataclass(frozen=True)
class Customer:
    """A customer as the one-active-waiting rule sees them.

    The phone number is already normalised to E.164 (the application layer does that), so two
    spellings of one number are one customer.
    """

    channel: Channel
    user_id: str | None = None
    name: str | None = None
    phone_number: str | None = None

    @classmethod
    def user(cls, user_id: str) -> Customer:
        return cls(Channel.USER, user_id=user_id)

    @classmethod
    def guest(cls, name: str, phone_number: str) -> Customer:
        return cls(Channel.APP, name=name, phone_number=phone_number)

    @computed_once  # the one-active-waiting rule asks for it several times per registration
    def key(self) -> str:
        if self.channel is Channel.USER:
            return f"user:{self.user_id}"
        return f"phone:{self.phone_number}"
