"""The store and its waiting-list settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import ValidationError

DEFAULT_TIME_ZONE = "Asia/Seoul"
DEFAULT_MAX_PARTY_SIZE = 10
MAX_NAME_LENGTH = 100


@dataclass
class Store:
    id: int
    name: str
    time_zone: str = DEFAULT_TIME_ZONE
    waiting_open: bool = False
    max_party_size: int = DEFAULT_MAX_PARTY_SIZE
    max_queue_size: int | None = None
    avg_service_minutes: int | None = None

    def __post_init__(self) -> None:
        self.name = self.name.strip()
        if not 1 <= len(self.name) <= MAX_NAME_LENGTH:
            raise ValidationError.of("name", f"must be 1..{MAX_NAME_LENGTH} characters")
        zone(self.time_zone)
        if self.max_party_size < 1:
            raise ValidationError.of("maxPartySize", "must be at least 1")
        if self.max_queue_size is not None and self.max_queue_size < 1:
            raise ValidationError.of("maxQueueSize", "must be at least 1")
        if self.avg_service_minutes is not None and self.avg_service_minutes < 0:
            raise ValidationError.of("avgServiceMinutes", "must not be negative")

    def business_date(self, now: datetime) -> date:
        """The store's local calendar day: the number sequence restarts at local midnight."""
        return now.astimezone(zone(self.time_zone)).date()

    def open_waiting(self) -> None:
        self.waiting_open = True

    def close_waiting(self) -> None:
        self.waiting_open = False

    def check_party_size(self, party_size: int) -> None:
        if not 1 <= party_size <= self.max_party_size:
            raise ValidationError.of("partySize", f"must be between 1 and {self.max_party_size}")

    def estimated_wait(self, rank: int) -> int | None:
        if self.avg_service_minutes is None:
            return None
        return (rank - 1) * self.avg_service_minutes


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:  # "Asia" names a folder
        raise ValidationError.of("timeZone", f"unknown time zone {name!r}") from error
