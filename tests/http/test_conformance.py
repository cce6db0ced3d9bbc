"""Schemathesis reads /schema/openapi.json and calls every operation as each role would, with
data that fits the document and data that does not: no answer is a 5xx, every status, media type,
body and header an answer has is the one the document says, and data the document rules out is
refused.

The example budget (30 an operation) keeps this module within half a minute;
`WAITLINE_CONFORMANCE=thorough` runs 500 an operation (about 6 minutes), and
`WAITLINE_CONFORMANCE_EXAMPLES=N` any other number.

One embedded app (SQLite) serves the whole module, started by Schemathesis' ASGI client, with a
store (1) that has a customer's waiting and a guest's, so that generated ids sometimes find one.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from litestar import Litestar
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from entrypoints.container import Container
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from harness.httpkit import SECRET, Tokens

THOROUGH = os.environ.get("WAITLINE_CONFORMANCE") == "thorough"
EXAMPLES = int(os.environ.get("WAITLINE_CONFORMANCE_EXAMPLES", 500 if THOROUGH else 30))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
TOKENS = Tokens(SECRET)
ROLES = {"admin": TOKENS.admin, "store": TOKENS.store(1), "customer": TOKENS.customer("c1")}


DATA = Path(tempfile.gettempdir()) / f"waitline-conformance-{uuid.uuid4().hex}"
atexit.register(shutil.rmtree, DATA, ignore_errors=True)


def _container() -> Container:
    container = Container()
    container.settings.override(Settings(data_dir=DATA / "data", jwt_secret=SECRET))
    return container


# Built as the module is collected (Schemathesis makes one test per operation from the document);
# started by Schemathesis' ASGI client on the first call, stopped after the module.
APP = create_app(_container())
schema = schemathesis.openapi.from_dict(APP.openapi_schema.to_schema())
schema.app = APP
# A live stream never ends by itself: read its first event, then hang up.
schema.config.max_stream_events = 1
schema.config.update(request_timeout=5)
# Query parameters the service does not know are ignored (cache busters, tracking), as HTTP APIs
# commonly do: an unknown one is not "data the document rules out".
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=EXAMPLES,
    allow_extra_parameters=False,
)


@pytest.fixture(scope="module", autouse=True)
def started() -> Iterator[None]:
    _populate(APP)
    yield
    asgi.shutdown_lifespans()


def _populate(app: Litestar) -> None:
    with asgi.get_client(app) as client:
        store = {"name": "Cafe Onion", "waitingOpen": True, "avgServiceMinutes": 5}
        assert client.post("/stores", json=store, headers=TOKENS.admin).status_code == 201
        joined = client.post("/v2/stores/1/waitings", json={"partySize": 2}, headers=ROLES["customer"])
        assert joined.status_code == 201, joined.text
        guest = {"name": "김민수", "phoneNumber": "010-1234-5678", "partySize": 2}
        assert client.post("/v2/app/stores/1/waitings", json=guest, headers=ROLES["store"]).status_code == 201


examples = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)


@schema.parametrize()
@examples
def test_as_admin(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=ROLES["admin"], checks=CHECKS)


@schema.parametrize()
@examples
def test_as_a_store(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=ROLES["store"], checks=CHECKS)


@schema.parametrize()
@examples
def test_as_a_customer(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=ROLES["customer"], checks=CHECKS)
