"""Identity: anything doubtful about the token is 401; the wrong role or store is 403 (or 404)."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest

from harness.httpkit import Api, Tokens, assert_problem

LATER = int(time.time()) + 3600


def _unsigned(claims: dict) -> str:
    """A token with `alg: none` and no signature, built by hand so no library refuses to make it."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _bad_headers(tokens: Tokens) -> dict[str, dict[str, str]]:
    good = tokens.customer("a")["Authorization"].removeprefix("Bearer ")
    return {
        "no header": {},
        "empty header": {"Authorization": ""},
        "Basic scheme": {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()},
        "token without scheme": {"Authorization": good},
        "Bearer without token": {"Authorization": "Bearer "},
        "not a JWT": {"Authorization": "Bearer not.a.jwt"},
        "bad signature": tokens.forged(
            {"role": "customer", "sub": "a", "exp": LATER}, key="another-secret" * 3
        ),
        "altered signature": {
            "Authorization": "Bearer " + good[:-2] + ("AA" if not good.endswith("AA") else "BB")
        },
        "expired": tokens.forged({"role": "customer", "sub": "a", "exp": int(time.time()) - 60}),
        "no exp": tokens.forged({"role": "customer", "sub": "a"}),
        "no sub": tokens.forged({"role": "customer", "exp": LATER}),
        "no role": tokens.forged({"sub": "a", "exp": LATER}),
        "alg none": {"Authorization": "Bearer " + _unsigned({"role": "admin", "sub": "a", "exp": LATER})},
        "HS512 instead of HS256": tokens.forged(
            {"role": "customer", "sub": "a", "exp": LATER}, algorithm="HS512"
        ),
        "unknown role": tokens.forged({"role": "superuser", "sub": "a", "exp": LATER}),
        "role of the wrong case": tokens.forged({"role": "ADMIN", "sub": "a", "exp": LATER}),
        "store without storeId": tokens.forged({"role": "store", "sub": "t", "exp": LATER}),
        "storeId as a string": tokens.forged({"role": "store", "sub": "t", "storeId": "1", "exp": LATER}),
        "storeId as a boolean": tokens.forged({"role": "store", "sub": "t", "storeId": True, "exp": LATER}),
        "storeId as a float": tokens.forged({"role": "store", "sub": "t", "storeId": 1.0, "exp": LATER}),
        "storeId zero": tokens.forged({"role": "store", "sub": "t", "storeId": 0, "exp": LATER}),
        "sub too long to be a user id": tokens.forged({"role": "customer", "sub": "u" * 101, "exp": LATER}),
        "sub with a lone surrogate": tokens.forged({"role": "customer", "sub": "a\ud800", "exp": LATER}),
        "sub with a control character": tokens.forged({"role": "customer", "sub": "a\nb", "exp": LATER}),
        "storeId beyond 64 bits": tokens.forged(
            {"role": "store", "sub": "t", "storeId": 2**63, "exp": LATER}
        ),
    }


BAD = list(_bad_headers(Tokens("k" * 64)))

PROTECTED = [
    ("POST", "/stores", {"name": "A"}),
    ("POST", "/stores/1/waiting/open", None),
    ("GET", "/stores/1/waitings", None),
    ("POST", "/stores/1/waitings/1/call", None),
    ("GET", "/stores/1/events", None),
    ("POST", "/v2/stores/1/waitings", {"partySize": 2}),
    ("POST", "/v2/app/stores/1/waitings", {"name": "A", "phoneNumber": "010-1234-5678", "partySize": 2}),
    ("POST", "/v3/stores/1/waitings", {"partySize": 2}),
    ("POST", "/v3/app/stores/1/waitings", {"name": "A", "phoneNumber": "010-1234-5678", "partySize": 2}),
    ("GET", "/v3/waiting-requests/abc", None),
    ("GET", "/v3/waiting-requests/abc/events", None),
    ("GET", "/waitings/1", None),
    ("POST", "/waitings/1/cancel", None),
    ("GET", "/waitings/1/events", None),
]


@pytest.mark.parametrize("case", BAD)
async def test_a_doubtful_token_is_401(client: httpx.AsyncClient, tokens: Tokens, store, case):
    headers = _bad_headers(tokens)[case]
    response = await client.post(f"/v2/stores/{store['id']}/waitings", json={"partySize": 2}, headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
async def test_every_protected_endpoint_wants_a_token(client: httpx.AsyncClient, store, method, path, body):
    response = await client.request(method, path, json=body)
    assert_problem(response, 401)


async def test_the_scheme_name_is_case_insensitive(client, store, tokens: Tokens):
    token = tokens.customer("a")["Authorization"].removeprefix("Bearer ")
    response = await client.post(
        f"/v2/stores/{store['id']}/waitings",
        json={"partySize": 2},
        headers={"Authorization": f"bearer {token}"},
    )
    assert response.status_code == 201


async def test_public_endpoints_need_no_token(client, store, api: Api):
    token = (await api.join_app_v2(store["id"])).json()["statusToken"]
    for path in (f"/stores/{store['id']}", "/health/live", "/health/ready", "/schema/openapi.json"):
        assert (await client.get(path)).status_code == 200, path
    assert (await client.get(f"/guest/waitings/{token}")).status_code == 200


@pytest.mark.parametrize("who", ["customer", "store"])
async def test_only_an_admin_creates_stores(client, tokens: Tokens, who):
    headers = tokens.customer("a") if who == "customer" else tokens.store(1)
    assert_problem(await client.post("/stores", json={"name": "Mine"}, headers=headers), 403, "FORBIDDEN")


STAFF_ONLY = [
    ("POST", "/stores/{s}/waiting/open"),
    ("POST", "/stores/{s}/waiting/close"),
    ("GET", "/stores/{s}/waitings?status=WAITING"),
    ("POST", "/stores/{s}/waitings/{w}/call"),
    ("POST", "/stores/{s}/waitings/{w}/seat"),
    ("POST", "/stores/{s}/waitings/{w}/no-show"),
    ("POST", "/stores/{s}/waitings/{w}/cancel"),
    ("GET", "/stores/{s}/events"),
]


@pytest.mark.parametrize("who", ["customer", "another store"])
@pytest.mark.parametrize(("method", "path"), STAFF_ONLY)
async def test_store_endpoints_refuse_customers_and_other_stores(
    client, make_store, api: Api, tokens: Tokens, who, method, path
):
    store, other = await make_store(), await make_store(name="Other")
    waiting = (await api.join_v2(store["id"], "a")).json()
    headers = tokens.customer("a") if who == "customer" else tokens.store(other["id"])

    response = await client.request(method, path.format(s=store["id"], w=waiting["id"]), headers=headers)

    assert_problem(response, 403, "FORBIDDEN")
    # Nothing changed.
    assert (await client.get(f"/waitings/{waiting['id']}", headers=tokens.admin)).json()[
        "status"
    ] == "WAITING"
    assert (await client.get(f"/stores/{store['id']}")).json()["waitingOpen"] is True


@pytest.mark.parametrize("version", ["v2", "v3"])
@pytest.mark.parametrize("who", ["store", "admin"])
async def test_the_customer_endpoint_is_for_customers(client, store, tokens: Tokens, version, who):
    headers = tokens.store(store["id"]) if who == "store" else tokens.admin
    response = await client.post(
        f"/{version}/stores/{store['id']}/waitings", json={"partySize": 2}, headers=headers
    )
    assert_problem(response, 403, "FORBIDDEN")


@pytest.mark.parametrize("version", ["v2", "v3"])
@pytest.mark.parametrize("who", ["customer", "another store", "admin"])
async def test_the_tablet_endpoint_is_for_the_stores_own_staff(
    client, make_store, tokens: Tokens, version, who
):
    store, other = await make_store(), await make_store(name="Other")
    headers = {
        "customer": tokens.customer("a"),
        "another store": tokens.store(other["id"]),
        "admin": tokens.admin,
    }
    body = {"name": "김민수", "phoneNumber": "010-1234-5678", "partySize": 2}

    response = await client.post(
        f"/{version}/app/stores/{store['id']}/waitings", json=body, headers=headers[who]
    )

    assert_problem(response, 403, "FORBIDDEN")
