"""What a guest types at the tablet: one person's number however spelled, a sane name."""

from __future__ import annotations

import pytest

from application.guest_input import guest_name, mobile_number
from domain.errors import ValidationError


def refused_field(check: object, raw: str) -> str:
    with pytest.raises(ValidationError) as refused:
        check(raw)  # type: ignore[operator]
    [error] = refused.value.errors
    return error.field


@pytest.mark.parametrize(
    "spelling",
    [
        "010-1234-5678",
        "01012345678",
        "+82 10-1234-5678",
        "+82-10-1234-5678",
        "+821012345678",
        "010 1234 5678",
        "  010-1234-5678 ",
    ],
)
def test_every_spelling_of_a_mobile_number_is_one_e164_number(spelling: str) -> None:
    assert mobile_number(spelling) == "+821012345678"


@pytest.mark.parametrize(
    "landline",
    ["02-123-4567", "0212345678", "031-123-4567", "+82 2-123-4567", "070-1234-5678", "1588-1234"],
)
def test_landlines_and_service_numbers_are_refused(landline: str) -> None:
    assert refused_field(mobile_number, landline) == "phoneNumber"


@pytest.mark.parametrize("foreign", ["+1 650-253-0000", "+81 90-1234-5678", "+44 7911 123456"])
def test_foreign_numbers_are_refused(foreign: str) -> None:
    assert refused_field(mobile_number, foreign) == "phoneNumber"


@pytest.mark.parametrize(
    "garbage", ["", "   ", "abc", "김민수", "12", "010-12345-5678", "+82", "010-1234-5678-1234"]
)
def test_garbage_is_refused(garbage: str) -> None:
    assert refused_field(mobile_number, garbage) == "phoneNumber"


def test_a_name_is_trimmed() -> None:
    assert guest_name("  김민수 \t") == "김민수"


@pytest.mark.parametrize("name", ["김", "x" * 50, " " + "x" * 50 + " ", "Kim Min-su"])
def test_names_of_1_to_50_characters_after_trimming_are_accepted(name: str) -> None:
    assert guest_name(name) == name.strip()


@pytest.mark.parametrize("name", ["", "   ", "\n", "x" * 51])
def test_a_blank_or_overlong_name_is_refused(name: str) -> None:
    assert refused_field(guest_name, name) == "name"


@pytest.mark.parametrize(
    "name", ["김\n민수", "김\x00민수", "김\t민수", "김\x1b[31m민수", "김\u200b민수", "김\x7f"]
)
def test_control_characters_inside_a_name_are_refused(name: str) -> None:
    assert refused_field(guest_name, name) == "name"


@pytest.mark.parametrize("spelling", ["010-1234-567", "010-1234-5678 ext 1"])
def test_a_short_010_number_or_an_extension_is_refused(spelling: str) -> None:
    with pytest.raises(ValidationError):
        mobile_number(spelling)
