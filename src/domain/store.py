"""The store and its waiting-list settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import ValidationError, WaitingClosed, WaitingPaused

DEFAULT_TIME_ZONE = "Asia/Seoul"
DEFAULT_MAX_PARTY_SIZE = 10
MAX_NAME_LENGTH = 100
DEFAULT_NOTIFY_AT_RANK = 3
MAX_NOTIFY_AT_RANK = 100
DEFAULT_MAX_POSTPONES = 1
MOST_POSTPONES = 10
MIDNIGHT = time(0, 0)
PAUSE_MINUTES = range(1, 241)


@dataclass
class Store:
    id: int
    name: str
    time_zone: str = DEFAULT_TIME_ZONE
    waiting_open: bool = False
    max_party_size: int = DEFAULT_MAX_PARTY_SIZE
    max_queue_size: int | None = None
    avg_service_minutes: int | None = None
    notify_at_rank: int | None = DEFAULT_NOTIFY_AT_RANK
    max_postpones: int = DEFAULT_MAX_POSTPONES
    day_starts_at: time = MIDNIGHT
    webhook_url: str | None = None
    webhook_secret: str | None = None
    paused_until: datetime | None = None

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
        if self.notify_at_rank is not None and not 1 <= self.notify_at_rank <= MAX_NOTIFY_AT_RANK:
            raise ValidationError.of("notifyAtRank", f"must be between 1 and {MAX_NOTIFY_AT_RANK}, or null")
        if not 0 <= self.max_postpones <= MOST_POSTPONES:
            raise ValidationError.of("maxPostpones", f"must be between 0 and {MOST_POSTPONES}")
        if self.day_starts_at.second or self.day_starts_at.microsecond or self.day_starts_at.tzinfo:
            raise ValidationError.of("dayStartsAt", "must be a local time HH:MM")

    def business_date(self, now: datetime) -> date:
        """The store's business day: it starts at `day_starts_at` local time (rule 7), so a store
        open past midnight keeps one day until, say, 04:30."""
        local = now.astimezone(zone(self.time_zone))
        since_start = timedelta(hours=self.day_starts_at.hour, minutes=self.day_starts_at.minute)
        return (local.replace(tzinfo=None) - since_start).date()

    def open_waiting(self) -> None:
        self.waiting_open = True
        self.paused_until = None

    def close_waiting(self) -> None:
        self.waiting_open = False
        self.paused_until = None

    def pause(self, minutes: int, now: datetime) -> None:
        """Refuse registrations for a while; the list opens again by itself when it ends."""
        if minutes not in PAUSE_MINUTES:
            raise ValidationError.of("minutes", f"must be between {PAUSE_MINUTES[0]} and {PAUSE_MINUTES[-1]}")
        if not self.waiting_open:
            raise WaitingClosed(f"store {self.id} is not taking registrations: open it before pausing")
        self.paused_until = now + timedelta(minutes=minutes)

    def pause_left(self, now: datetime) -> datetime | None:
        """When the pause ends, while it lasts (no job ends it: the clock does)."""
        if self.paused_until is not None and now < self.paused_until:
            return self.paused_until
        return None

    def check_open(self, now: datetime) -> None:
        """The first two refusals, in their order: closed, then paused."""
        if not self.waiting_open:
            raise WaitingClosed(f"store {self.id} is not taking registrations")
        if (until := self.pause_left(now)) is not None:
            raise WaitingPaused(f"store {self.id} paused registrations until {self._local(until):%H:%M}")

    def _local(self, moment: datetime) -> datetime:
        return moment.astimezone(zone(self.time_zone))

    def check_party_size(self, party_size: int) -> None:
        if not 1 <= party_size <= self.max_party_size:
            raise ValidationError.of("partySize", f"must be between 1 and {self.max_party_size}")


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:  # "Asia" names a folder
        raise ValidationError.of("timeZone", f"unknown time zone {name!r}") from error
