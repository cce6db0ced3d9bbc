"""What a guest types at the tablet, checked and normalised before anything is queued."""

from __future__ import annotations

import unicodedata

import phonenumbers

from domain.errors import ValidationError

MAX_GUEST_NAME = 50
KOREA = "KR"


def guest_name(raw: str) -> str:
    name = raw.strip()
    if not 1 <= len(name) <= MAX_GUEST_NAME:
        raise ValidationError.of("name", f"must be 1..{MAX_GUEST_NAME} characters after trimming")
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise ValidationError.of("name", "must not contain control characters")
    return name


def mobile_number(raw: str) -> str:
    """A Korean mobile number in E.164, however it was spelled."""
    try:
        parsed = phonenumbers.parse(raw, KOREA)
    except phonenumbers.NumberParseException as error:
        raise ValidationError.of("phoneNumber", "is not a phone number") from error
    is_mobile = phonenumbers.number_type(parsed) in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
    national = phonenumbers.national_significant_number(parsed)
    # 010 numbers have eight digits after the prefix; an extension is no part of a mobile number.
    well_formed = not parsed.extension and (not national.startswith("10") or len(national) == 10)
    if (
        parsed.country_code != 82
        or not phonenumbers.is_valid_number(parsed)
        or not is_mobile
        or not well_formed
    ):
        raise ValidationError.of("phoneNumber", "must be a Korean mobile number, e.g. 010-1234-5678")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
