"""Finding a waiting by its guest status token without a timing side channel.

The row is found by the token's first characters (the selector); the whole token is then
compared in constant time, so response times tell an attacker nothing about the secret part.
"""

from __future__ import annotations

import hmac
import re

SELECTOR_LENGTH = 12
# What secrets.token_urlsafe gives out; anything else (a NUL byte PostgreSQL cannot even compare,
# say) names no waiting and is never sent to the database.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def well_formed(status_token: str) -> bool:
    return TOKEN_SHAPE.fullmatch(status_token) is not None


def selector(status_token: str) -> str:
    return status_token[:SELECTOR_LENGTH]


def same_token(stored: str, given: str) -> bool:
    return hmac.compare_digest(stored.encode(), given.encode())
