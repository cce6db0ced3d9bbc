"""The bearer check keeps PyJWT's key check for the one secret it verifies with (entrypoints/http/
auth.py): the key is checked once, every token's signature still every time."""

from __future__ import annotations

import time

import jwt
import pytest
from jwt.algorithms import HMACAlgorithm
from litestar.exceptions import NotAuthorizedException

from application.access import Role
from entrypoints.http.auth import Authenticator

SECRET = "the-service-secret-" * 3


def _claims(subject: str) -> dict[str, object]:
    return {"role": "customer", "sub": subject, "exp": int(time.time()) + 60}


def test_the_key_is_checked_once_and_each_signature_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    authenticator = Authenticator(SECRET)
    tokens = [authenticator.token(Role.CUSTOMER, f"c{n}") for n in range(5)]
    forged = jwt.encode(_claims("mallory"), "another-secret-" * 3, algorithm="HS256")
    checks: list[object] = []
    stock = HMACAlgorithm.prepare_key

    def counted(self: HMACAlgorithm, key: str | bytes) -> bytes:
        checks.append(key)
        return stock(self, key)

    monkeypatch.setattr(HMACAlgorithm, "prepare_key", counted)
    for n, token in enumerate(tokens):
        assert authenticator.actor(f"Bearer {token}").subject == f"c{n}"
    with pytest.raises(NotAuthorizedException, match="Signature verification failed"):
        authenticator.actor(f"Bearer {forged}")
    assert checks == [SECRET]


def test_a_secret_that_is_a_key_of_another_kind_is_still_refused() -> None:
    pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"
    token = jwt.encode(_claims("a"), "s" * 40, algorithm="HS256")
    with pytest.raises(NotAuthorizedException, match="asymmetric key"):
        Authenticator(pem).actor(f"Bearer {token}")
