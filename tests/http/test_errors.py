"""Every error is application/problem+json with the contract's code; no input gets a 5xx."""

from __future__ import annotations

import asyncio

import pytest

from application.registration import store_lock_key
from harness.httpkit import Api, Tokens, assert_problem

JSON = {"content-type": "application/json"}

BAD_PARTY_SIZES = {
    "string": "2",
    "boolean": True,
    "float": 2.5,
    "integral float": 2.0,
    "zero": 0,
    "negative": -1,
    "above the store's maximum": 11,
    "huge": 10**30,
    "null": None,
    "list": [2],
    "object": {"value": 2},
}


@pytest.mark.parametrize("case", list(BAD_PARTY_SIZES))
@pytest.mark.parametrize("version", ["v2", "v3"])
async def test_party_size_must_be_a_plain_integer_in_range(client, store, tokens: Tokens, version, case):
    response = await client.post(
        f"/{version}/stores/{store['id']}/waitings",
        json={"partySize": BAD_PARTY_SIZES[case]},
        headers=tokens.customer("a"),
    )
    body = assert_problem(response, 400, "VALIDATION_ERROR")
    assert [error["field"] for error in body["errors"]] == ["partySize"]
    assert all(set(error) == {"field", "message"} for error in body["errors"])


BAD_BODIES = {
    "missing field": b"{}",
    "unknown field": b'{"partySize": 2, "vip": true}',
    "snake_case field": b'{"party_size": 2}',
    "not JSON": b"partySize=2",
    "truncated JSON": b'{"partySize": 2',
    "JSON array": b"[2]",
    "JSON string": b'"partySize"',
    "JSON number": b"2",
    "JSON null": b"null",
    "empty body": b"",
    "invalid UTF-8": b'{"partySize": "\xff"}',
    "duplicate keys of different types": b'{"partySize": 2, "partySize": "2"}',
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
@pytest.mark.parametrize("version", ["v2", "v3"])
async def test_a_body_of_the_wrong_shape_is_a_validation_error(client, store, tokens: Tokens, version, case):
    response = await client.post(
        f"/{version}/stores/{store['id']}/waitings",
        content=BAD_BODIES[case],
        headers={**tokens.customer("a"), **JSON},
    )
    assert_problem(response, 400, "VALIDATION_ERROR")


GUEST = {"name": "김민수", "phoneNumber": "010-1234-5678", "partySize": 2}
BAD_GUESTS = {
    "empty name": {"name": ""},
    "blank name": {"name": "   "},
    "name with a control character": {"name": "김\x07민수"},
    "name with a newline": {"name": "김\n민수"},
    "name too long": {"name": "가" * 51},
    "name not a string": {"name": 7},
    "landline": {"phoneNumber": "02-123-4567"},
    "too short": {"phoneNumber": "010-123"},
    "letters": {"phoneNumber": "call me"},
    "empty phone": {"phoneNumber": ""},
    "foreign mobile": {"phoneNumber": "+1 202-555-0123"},
    "phone as a number": {"phoneNumber": 1012345678},
    "no phone": {"phoneNumber": None},
}


@pytest.mark.parametrize("case", list(BAD_GUESTS))
@pytest.mark.parametrize("version", ["v2", "v3"])
async def test_a_guest_needs_a_name_and_a_korean_mobile_number(client, store, tokens: Tokens, version, case):
    body = {**GUEST, **BAD_GUESTS[case]}
    body = {key: value for key, value in body.items() if value is not None}
    response = await client.post(
        f"/{version}/app/stores/{store['id']}/waitings", json=body, headers=tokens.store(store["id"])
    )
    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    # The error names the field (a missing field is reported on "body", naming it in the message).
    error = problem["errors"][0]
    assert error["field"] in {"name", "phoneNumber"} or "phoneNumber" in error["message"]


async def test_a_valid_guest_next_to_those_cases_is_accepted(client, store, tokens: Tokens):
    # Guards the cases above: they fail for the reason they name, not for a broken base body.
    response = await client.post(
        f"/v2/app/stores/{store['id']}/waitings", json=GUEST, headers=tokens.store(store["id"])
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/xml"],
)
@pytest.mark.parametrize("path", ["/v2/stores/{s}/waitings", "/v3/stores/{s}/waitings", "/stores"])
async def test_a_wrong_content_type_is_415(client, store, tokens: Tokens, path, content_type):
    headers = tokens.admin if path == "/stores" else tokens.customer("a")
    if content_type is not None:
        headers = {**headers, "content-type": content_type}
    response = await client.post(path.format(s=store["id"]), content=b'{"partySize": 2}', headers=headers)
    assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_json_with_a_charset_is_still_json(client, store, tokens: Tokens):
    response = await client.post(
        f"/v2/stores/{store['id']}/waitings",
        content=b'{"partySize": 2}',
        headers={**tokens.customer("a"), "content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


@pytest.mark.parametrize("path", ["/v2/stores/{s}/waitings", "/v3/app/stores/{s}/waitings", "/stores"])
async def test_a_body_over_64_kib_is_413(client, store, tokens: Tokens, path):
    body = b'{"partySize": 2, "padding": "' + b"x" * (64 * 1024) + b'"}'
    headers = {**tokens.admin, **JSON} if path == "/stores" else {**tokens.customer("a"), **JSON}
    if "/app/" in path:
        headers = {**tokens.store(store["id"]), **JSON}
    response = await client.post(path.format(s=store["id"]), content=body, headers=headers)
    assert_problem(response, 413)


async def test_a_body_just_under_the_limit_is_read(client, store, tokens: Tokens):
    # Spaces are valid JSON whitespace: the body is large but well-formed.
    body = b'{"partySize": 2' + b" " * (60 * 1024) + b"}"
    response = await client.post(
        f"/v2/stores/{store['id']}/waitings", content=body, headers={**tokens.customer("a"), **JSON}
    )
    assert response.status_code == 201


BAD_IDS = ["0", "-1", "-0", str(2**63), str(10**30), "abc", "1.5", "1e3", "%20", "0x10", "%00"]
ID_PATHS = [
    ("GET", "/stores/{id}"),
    ("POST", "/stores/{id}/waiting/open"),
    ("POST", "/stores/{id}/waiting/close"),
    ("GET", "/stores/{id}/waitings"),
    ("GET", "/stores/{id}/events"),
    ("POST", "/stores/{id}/waitings/1/call"),
    ("POST", "/stores/1/waitings/{id}/seat"),
    ("POST", "/v2/stores/{id}/waitings"),
    ("POST", "/v3/stores/{id}/waitings"),
    ("POST", "/v2/app/stores/{id}/waitings"),
    ("GET", "/waitings/{id}"),
    ("POST", "/waitings/{id}/cancel"),
    ("GET", "/waitings/{id}/events"),
]


@pytest.mark.parametrize(("method", "path"), ID_PATHS)
async def test_a_malformed_or_out_of_range_id_is_400_or_404(client, store, tokens: Tokens, method, path):
    for bad in BAD_IDS:
        headers = tokens.customer("a") if "/v2/stores" in path or "/v3/" in path else tokens.admin
        if "/app/" in path:
            headers = tokens.store(1)
        body = {"partySize": 2} if method == "POST" else None
        async with asyncio.timeout(5):  # an id taken for a real one would open an endless stream
            response = await client.request(method, path.format(id=bad), json=body, headers=headers)
        problem = assert_problem(response, response.status_code)
        assert response.status_code in (400, 404), (bad, response.status_code, problem)
        assert problem["code"] in ("VALIDATION_ERROR", "NOT_FOUND", "STORE_NOT_FOUND")


@pytest.mark.parametrize("alias", ["\uff11", "\u0661", "0_1", "+1", "01", "%201"])
async def test_what_int_would_read_as_1_is_not_an_id(client, store, alias):
    # Python's int() takes fullwidth "１", Arabic-Indic "١", "0_1", "+1", "01" and " 1" for store 1.
    assert_problem(await client.get(f"/stores/{alias}"), 400, "VALIDATION_ERROR")


async def test_the_largest_64_bit_id_is_a_plain_not_found(client, tokens: Tokens):
    largest = 2**63 - 1
    assert_problem(await client.get(f"/stores/{largest}"), 404, "STORE_NOT_FOUND")
    assert_problem(await client.get(f"/waitings/{largest}", headers=tokens.admin), 404, "NOT_FOUND")


async def test_an_overlong_trace_id_or_status_token_is_refused_cleanly(client, tokens: Tokens):
    assert_problem(await client.get("/v3/waiting-requests/" + "a" * 65, headers=tokens.admin), 400)
    assert_problem(await client.get("/guest/waitings/" + "a" * 129), 400)


async def test_an_unknown_status_filter_is_a_validation_error(client, store, tokens: Tokens):
    response = await client.get(f"/stores/{store['id']}/waitings?status=SLEEPING", headers=tokens.admin)
    assert_problem(response, 400, "VALIDATION_ERROR")


async def test_an_unknown_path_and_a_wrong_method_are_problems_too(client, tokens: Tokens, store):
    assert_problem(await client.get("/no/such/thing"), 404)
    assert_problem(await client.delete(f"/stores/{store['id']}", headers=tokens.admin), 405)
    assert_problem(await client.get(f"/v2/stores/{store['id']}/waitings", headers=tokens.admin), 405)


@pytest.mark.waitline(lock_wait_seconds=0.05)
async def test_a_busy_store_answers_v2_with_503_lock_timeout(
    client, container, store, api: Api, tokens: Tokens
):
    async with container.lock().hold(store_lock_key(store["id"]), wait_time=1, lease_time=None):
        response = await api.join_v2(store["id"], "a")
        guest = await api.join_app_v2(store["id"])

    for refused in (response, guest):
        assert_problem(refused, 503, "LOCK_TIMEOUT")
        assert int(refused.headers["retry-after"]) >= 1
    # A refused attempt registered nothing: the retry gets number 1.
    retry = await api.join_v2(store["id"], "a")
    assert retry.status_code == 201
    assert retry.json()["number"] == 1
    assert (await client.get(f"/stores/{store['id']}")).json()["waitingCount"] == 1


@pytest.mark.waitline(lock_wait_seconds=10)
async def test_a_busy_store_does_not_slow_down_another(container, make_store, api: Api):
    busy, free = await make_store(name="Busy"), await make_store(name="Free")
    async with container.lock().hold(store_lock_key(busy["id"]), wait_time=1, lease_time=None):
        async with asyncio.timeout(3):  # far below a busy store's lock wait had it been shared
            response = await api.join_v2(free["id"], "a")
    assert response.status_code == 201


@pytest.mark.waitline(rate_limit_per_minute=3)
async def test_too_many_requests_is_429_with_retry_after(client):
    for _ in range(3):
        assert (await client.get("/stores/424242")).status_code == 404
    response = await client.get("/stores/424242")

    assert_problem(response, 429)
    assert int(response.headers["retry-after"]) >= 1
    # Health checks and metrics are never limited: load balancers and Prometheus poll them.
    for path in ("/health/live", "/health/ready", "/metrics"):
        assert (await client.get(path)).status_code == 200
