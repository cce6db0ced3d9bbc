"""Fuzz: arbitrary bodies, strings and ids against the registration and store endpoints.

Whatever arrives, the answer is never a 5xx, and every 4xx is a problem+json document.
The app is built once per test function, not per example: examples share its state, which only
makes them more varied (stores fill up, customers are already waiting...).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.httpkit import PROBLEM_FIELDS, PROBLEM_JSON, SECRET, Tokens

# The fixtures are deliberately shared by the examples of one test.
fuzz = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None
)

TOKENS = Tokens(SECRET)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["partySize", "name", "phoneNumber", "timeZone", "maxPartySize", "maxQueueSize", "avgServiceMinutes"]
FIELDS.append("waitingOpen")
# Mostly-right bodies reach deeper than random ones: known fields with arbitrary values.
near_bodies = st.dictionaries(st.sampled_from(FIELDS), json_values | st.sampled_from([1, 2, "010-1234-5678"]))
bodies = (
    near_bodies.map(lambda body: json.dumps(body).encode())
    | json_values.map(lambda value: json.dumps(value).encode())
    | st.binary(max_size=200)
    | st.text(max_size=100).map(str.encode)
)
ids = st.integers(min_value=-(2**64), max_value=2**64).map(str) | st.text(min_size=1, max_size=20)
ENDPOINTS = [
    "/v2/stores/{id}/waitings",
    "/v3/stores/{id}/waitings",
    "/v2/app/stores/{id}/waitings",
    "/v3/app/stores/{id}/waitings",
    "/stores",
]
HEADERS = {
    "admin": TOKENS.admin,
    "customer": TOKENS.customer("fuzzer"),
    "store 1": TOKENS.store(1),
    "none": {},
}
content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""])


def assert_answer_is_sane(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
        body = response.json()
        assert body.keys() >= PROBLEM_FIELDS
        assert body["status"] == response.status_code


@fuzz
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    store_id=ids,
    body=bodies,
    who=st.sampled_from(list(HEADERS)),
    content_type=content_types,
)
async def test_registration_and_store_creation_never_fail_on_input(
    client, store, endpoint, store_id, body, who, content_type
):
    headers = {**HEADERS[who], "content-type": content_type}
    path = endpoint.format(id=quote(store_id, safe=""))
    response = await client.post(path, content=body, headers=headers)
    assert_answer_is_sane(response)


@fuzz
@given(
    path=st.sampled_from(
        [
            "/stores/{id}",
            "/stores/{id}/waitings",
            "/waitings/{id}",
            "/v3/waiting-requests/{id}",
            "/guest/waitings/{id}",
        ]
    ),
    value=ids,
    query=st.text(max_size=20),
    who=st.sampled_from(list(HEADERS)),
)
async def test_reads_never_fail_on_ids_or_queries(client, store, path, value, query, who):
    url = path.format(id=quote(value, safe="")) + "?status=" + quote(query, safe="")
    response = await client.get(url, headers=HEADERS[who])
    assert_answer_is_sane(response)


printable_header = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)


@fuzz
@given(authorization=printable_header | printable_header.map("Bearer ".__add__))
async def test_any_authorization_header_is_401_or_accepted(client, store, authorization):
    response = await client.post(
        f"/v2/stores/{store['id']}/waitings", json={"partySize": 1}, headers={"Authorization": authorization}
    )
    assert_answer_is_sane(response)
    assert response.status_code == 401
