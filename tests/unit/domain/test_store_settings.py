"""A store's settings are checked when it is made, so a bad one never reaches a waiting list."""

from __future__ import annotations

import pytest

from domain.errors import ValidationError
from domain.store import Store


def invalid_field(**settings: object) -> str:
    with pytest.raises(ValidationError) as refused:
        Store(id=1, **{"name": "Onion Bakery", **settings})  # type: ignore[arg-type]
    [error] = refused.value.errors
    return error.field


def test_a_new_store_has_the_documented_defaults() -> None:
    store = Store(id=1, name="Onion Bakery")

    assert store.time_zone == "Asia/Seoul"
    assert store.waiting_open is False
    assert store.max_party_size == 10
    assert store.max_queue_size is None
    assert store.avg_service_minutes is None


def test_the_name_is_trimmed() -> None:
    assert Store(id=1, name="  Onion Bakery \n").name == "Onion Bakery"


@pytest.mark.parametrize("name", ["", "   ", "\t\n", "x" * 101])
def test_a_blank_or_overlong_name_is_refused(name: str) -> None:
    assert invalid_field(name=name) == "name"


@pytest.mark.parametrize("name", ["x", "x" * 100, "어니언 안국"])
def test_names_of_1_to_100_characters_are_accepted(name: str) -> None:
    assert Store(id=1, name=name).name == name


@pytest.mark.parametrize("time_zone", ["", "Mars/Olympus", "Seoul", "../etc/passwd", "Asia/"])
def test_an_unknown_time_zone_is_refused(time_zone: str) -> None:
    assert invalid_field(time_zone=time_zone) == "timeZone"


@pytest.mark.parametrize("time_zone", ["Asia/Seoul", "UTC", "America/New_York", "Asia/Kolkata"])
def test_iana_time_zones_are_accepted(time_zone: str) -> None:
    assert Store(id=1, name="x", time_zone=time_zone).time_zone == time_zone


@pytest.mark.parametrize("size", [0, -1])
def test_max_party_size_must_be_at_least_one(size: int) -> None:
    assert invalid_field(max_party_size=size) == "maxPartySize"


@pytest.mark.parametrize("size", [0, -5])
def test_max_queue_size_must_be_at_least_one_when_given(size: int) -> None:
    assert invalid_field(max_queue_size=size) == "maxQueueSize"


def test_max_queue_size_may_be_absent_or_one() -> None:
    assert Store(id=1, name="x", max_queue_size=None).max_queue_size is None
    assert Store(id=1, name="x", max_queue_size=1).max_queue_size == 1


def test_avg_service_minutes_must_not_be_negative() -> None:
    assert invalid_field(avg_service_minutes=-1) == "avgServiceMinutes"


def test_avg_service_minutes_may_be_zero_or_absent() -> None:
    assert Store(id=1, name="x", avg_service_minutes=0).avg_service_minutes == 0
    assert Store(id=1, name="x").avg_service_minutes is None


def test_opening_and_closing_the_list() -> None:
    store = Store(id=1, name="x")

    store.open_waiting()
    assert store.waiting_open
    store.close_waiting()
    assert not store.waiting_open


@pytest.mark.parametrize("party_size", [1, 2, 4])
def test_party_sizes_from_one_to_the_maximum_are_accepted(party_size: int) -> None:
    Store(id=1, name="x", max_party_size=4).check_party_size(party_size)


@pytest.mark.parametrize("party_size", [0, -1, 5, 100])
def test_party_sizes_outside_one_to_the_maximum_are_a_validation_error(party_size: int) -> None:
    with pytest.raises(ValidationError) as refused:
        Store(id=1, name="x", max_party_size=4).check_party_size(party_size)

    assert refused.value.code == "VALIDATION_ERROR"
    assert [e.field for e in refused.value.errors] == ["partySize"]


@pytest.mark.parametrize("folder", ["Asia", "America", "Etc"])
def test_a_time_zone_folder_is_not_a_time_zone(folder: str) -> None:
    # ZoneInfo("Asia") opens a directory: an OSError, which must still read as bad input.
    with pytest.raises(ValidationError):
        Store(id=1, name="Gamja", time_zone=folder)
