"""A batch's status tokens: each as secrets.token_urlsafe(24) would give it, none repeated."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from adapters.persistence.status_tokens import well_formed
from application.registration import TOKEN_BYTES, TOKEN_LENGTH, status_tokens


@given(st.integers(0, 300))
def test_a_batch_gets_one_well_formed_token_per_registration(count: int) -> None:
    tokens = status_tokens(count)
    assert len(tokens) == count
    assert all(len(token) == TOKEN_LENGTH and well_formed(token) for token in tokens)
    assert len(set(tokens)) == count


def test_each_token_carries_its_own_24_random_bytes() -> None:
    for token in status_tokens(50):
        assert len(base64.urlsafe_b64decode(token)) == TOKEN_BYTES
