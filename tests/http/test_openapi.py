"""The OpenAPI document, read as a client generator or a partner team reads it.

It is valid OpenAPI 3.1; every operation that reads a body documents it; every operation lists
the problem statuses it can answer, all with one shared problem+json schema (its `code` an enum
of every code the service sends), `Retry-After` on 429 and 503; ids are int64 integers from 1;
live streams are text/event-stream and name their events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from application.access import Forbidden
from domain.errors import DomainError
from entrypoints.http.problems import CODE_OF_STATUS
from harness.httpkit import Tokens, assert_problem

PROFILES = ("sqlite",)
JSON = {"Content-Type": "application/json"}

PROBLEM = {"$ref": "#/components/schemas/Problem"}
BODIES = {
    ("post", "/stores"): "NewStoreBody",
    ("patch", "/stores/{storeId}"): "StoreSettingsBody",
    ("post", "/stores/{storeId}/waiting/pause"): "PauseBody",
    ("post", "/waitings/{waitingId}/postpone"): "PostponeBody",
    ("post", "/guest/waitings/{statusToken}/postpone"): "PostponeBody",
    ("post", "/v2/stores/{storeId}/waitings"): "CustomerJoin",
    ("post", "/v3/stores/{storeId}/waitings"): "CustomerJoin",
    ("post", "/v2/app/stores/{storeId}/waitings"): "GuestJoin",
    ("post", "/v3/app/stores/{storeId}/waitings"): "GuestJoin",
}
STREAMS = {
    "/stores/{storeId}/events": ["snapshot", "registered", "opened", "closed", "called", "seated"],
    "/waitings/{waitingId}/events": ["snapshot", "rank", "called", "seated", "cancelled", "no_show"],
    "/guest/waitings/{statusToken}/events": ["snapshot", "rank", "called", "seated", "cancelled"],
    "/v3/waiting-requests/{traceId}/events": ["registered", "rejected", "failed"],
}
# Operations no one signs for and that touch no database answer no problem but 429 and 503.
OPERATIONS = ("/health/", "/metrics")
PUBLIC = ("/stores/{storeId}", "/guest/")


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, operation


async def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


async def test_every_body_is_documented_with_its_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for method, path, operation in operations(document):
        name = BODIES.get((method, path))
        if name is None:
            assert "requestBody" not in operation, (method, path)
            continue
        body = operation["requestBody"]
        assert body["required"] is True
        assert body["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{name}"}
        assert schemas[name]["additionalProperties"] is False, name
    party = schemas["CustomerJoin"]["properties"]["partySize"]
    assert (party["type"], party["minimum"], party["maximum"]) == ("integer", 1, 1000)
    assert schemas["NewStoreBody"]["properties"]["name"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 100,
    }


async def test_every_answer_is_typed(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if status == "304":
                assert "content" not in response
                continue
            [(media_type, content)] = response["content"].items()
            schema = content["schema"]
            if media_type.startswith("application/") and "json" in media_type:
                assert set(schema) == {"$ref"}, (method, path, status, schema)


async def test_every_problem_status_shares_one_schema(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        responses = operation["responses"]
        if path == "/health/ready":
            assert set(responses) == {"200", "503"}  # it says which dependency is down, not a problem
            continue
        expected = set() if path.startswith(OPERATIONS) else {"400", "429", "503"}
        if not path.startswith((*OPERATIONS, *PUBLIC)):
            expected |= {"401", "403", "404"}
        if "requestBody" in operation:
            expected |= {"413", "415"}
        problems = {status for status in responses if status >= "400"}
        assert problems >= expected, (method, path, expected - problems)
        for status in problems:
            assert responses[status]["content"] == {"application/problem+json": {"schema": PROBLEM}}
            if status in ("429", "503"):
                header = responses[status]["headers"]["Retry-After"]
                assert header["required"] is True and header["schema"]["type"] == "integer"


async def test_conflicts_are_listed_where_a_rule_can_refuse(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for path in (
        "/v2/stores/{storeId}/waitings",
        "/v2/app/stores/{storeId}/waitings",
        "/waitings/{waitingId}/cancel",
    ):
        assert "409" in paths[path]["post"]["responses"], path
    for action in ("call", "seat", "no-show", "cancel"):
        assert "409" in paths[f"/stores/{{storeId}}/waitings/{{waitingId}}/{action}"]["post"]["responses"]
    assert "304" in paths["/stores/{storeId}"]["get"]["responses"]


async def test_the_problem_code_is_an_enum_of_every_code_sent(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    problem = schemas["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    assert "errors" in problem["properties"]
    assert problem["properties"]["code"] == {"$ref": "#/components/schemas/ProblemCode"}
    codes = set(schemas["ProblemCode"]["enum"])
    assert codes >= _domain_codes() | set(CODE_OF_STATUS.values()) | {"INTERNAL_ERROR", "ERROR"}


async def test_ids_are_positive_int64(document: dict[str, Any]) -> None:
    seen = 0
    for method, path, operation in operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] in ("storeId", "waitingId"):
                schema = parameter["schema"]
                assert (schema["type"], schema["format"], schema["minimum"]) == ("integer", "int64", 1), (
                    method,
                    path,
                )
                assert schema["maximum"] == 2**63 - 1
                seen += 1
    assert seen >= 15
    waiting = document["components"]["schemas"]["Waiting"]["properties"]
    assert waiting["id"]["type"] == "integer" and waiting["id"]["minimum"] == 1


async def test_streams_are_event_streams_that_name_their_events(document: dict[str, Any]) -> None:
    for path, events in STREAMS.items():
        answer = document["paths"][path]["get"]["responses"]["200"]
        assert set(answer["content"]) == {"text/event-stream"}, path
        for event in events:
            assert f"`{event}`" in answer["description"], (path, event)


async def test_the_bearer_scheme_is_required_except_where_public(document: dict[str, Any]) -> None:
    assert document["security"] == [{"BearerToken": []}]
    assert document["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    for method, path, operation in operations(document):
        public = path.startswith((*OPERATIONS, "/guest/")) or (method, path) == ("get", "/stores/{storeId}")
        assert (operation.get("security") == [{}]) is public, (method, path)


def _domain_codes() -> set[str]:
    codes, kinds = set(), [DomainError]
    while kinds:
        kind = kinds.pop()
        codes.add(kind.code)
        kinds.extend(kind.__subclasses__())
    assert Forbidden.code in codes
    return codes


async def test_a_documented_body_is_still_read_by_hand_after_the_caller(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    # Documenting the body must not make Litestar decode it first, or leniently.
    url, garbage = "/v2/stores/1/waitings", b"{not json"
    assert_problem(await client.post(url, content=garbage, headers=JSON), 401)
    assert_problem(await client.post(url, content=garbage, headers=JSON | tokens.store(1)), 403)
    for loose in ("2", True, 2.0):
        answer = await client.post(url, json={"partySize": loose}, headers=tokens.customer("c1"))
        assert assert_problem(answer, 400, "VALIDATION_ERROR")["errors"][0]["field"] == "partySize"
