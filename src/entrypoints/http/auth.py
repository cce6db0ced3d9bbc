"""Bearer JWTs (HS256) turned into the application's Actor; anything doubtful is a 401."""

from __future__ import annotations

import time
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm
from litestar import Request
from litestar.exceptions import NotAuthorizedException

from application.access import Actor, Role

ALGORITHM = "HS256"
MAX_ID = 2**63 - 1
MAX_SUBJECT = 100


class _HS256KeyCheckedOnce(HMACAlgorithm):
    """HS256 whose key is checked once. PyJWT checks the key again on every decode (that it is
    not a PEM, SSH or DER key, nor JSON): a function of the key alone, which measured 40 % of a
    token check. The result for the last key is kept; another key is checked as PyJWT would."""

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._checked: tuple[Any, bytes] | None = None

    def prepare_key(self, key: str | bytes) -> bytes:
        checked = self._checked
        if checked is not None and checked[0] == key:
            return checked[1]
        prepared = super().prepare_key(key)
        self._checked = (key, prepared)
        return prepared


def _decoder() -> jwt.PyJWT:
    """PyJWT with our HS256. PyJWT takes no algorithm of one's own but through its signature
    layer, which it keeps in `_jws`; if that ever changes, the stock algorithm is used."""
    decoder = jwt.PyJWT()
    signatures = getattr(decoder, "_jws", None)
    if isinstance(signatures, jwt.PyJWS):
        signatures.unregister_algorithm(ALGORITHM)
        signatures.register_algorithm(ALGORITHM, _HS256KeyCheckedOnce())
    return decoder


class Authenticator:
    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._decoder = _decoder()

    def actor(self, authorization: str | None) -> Actor:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException("a Bearer token is required")
        try:
            claims = self._decoder.decode(
                token.strip(),
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "sub", "role"]},
            )
        except jwt.PyJWTError as error:
            raise NotAuthorizedException(f"invalid token: {error}") from error
        return _actor(claims)

    def token(self, role: Role, subject: str, store_id: int | None = None, ttl_seconds: int = 86_400) -> str:
        claims: dict[str, Any] = {"role": str(role), "sub": subject, "exp": int(time.time()) + ttl_seconds}
        if store_id is not None:
            claims["storeId"] = store_id
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)


def _actor(claims: dict[str, Any]) -> Actor:
    try:
        role = Role(claims["role"])
    except ValueError as error:
        raise NotAuthorizedException("unknown role") from error
    store_id = claims.get("storeId")
    if role is Role.STORE and not _is_id(store_id):
        raise NotAuthorizedException("a store token needs an integer storeId")
    subject = str(claims["sub"])
    if not 1 <= len(subject) <= MAX_SUBJECT or not subject.isprintable():
        raise NotAuthorizedException(f"sub must be 1..{MAX_SUBJECT} printable characters")
    return Actor(role, subject, store_id if role is Role.STORE else None)


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


async def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator.actor(request.headers.get("authorization"))
