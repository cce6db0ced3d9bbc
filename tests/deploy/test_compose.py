"""The deployment files agree with the Compose Specification and with the service they run.

No Docker engine here: docker-compose.yml is checked against the official Compose schema, then for
what no schema knows (Waitline's settings and commands, who waits for whom, the Kafka topology), and
the Dockerfile for how it installs and runs the service.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import logging
import os
import re
import shlex
import tomllib
from collections.abc import Iterator
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sqlalchemy.engine import make_url

from entrypoints.cli import _parser
from entrypoints.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

# The official Compose Specification schema: compose-spec/compose-spec, schema/compose-spec.json
# (master, JSON Schema draft 2020-12), as check-jsonschema 0.39.0 vendors it for its `vendor.compose-spec`
# hook (Apache-2.0, compose-spec.LICENSE beside it). The digest is the one check-jsonschema records
# for that copy: a schema edited to let a file pass is no longer the specification.
SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"

# What an operator puts in the shell or in .env: the placeholders that have no default.
OPERATOR_ENV = {"WAITLINE_JWT_SECRET": "a-long-random-secret-from-openssl-rand"}

PLACEHOLDER = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")

SERVERS = ("postgres", "redis", "kafka")
JOBS = ("migrate", "topics")
PROCESSES = ("api", "consumer")
SUBCOMMANDS = {"migrate": "migrate", "topics": "topics", "api": "serve", "consumer": "consume"}
READY = "service_healthy"
DONE = "service_completed_successfully"


def interpolate(value: Any) -> Any:
    """The document as `docker compose` reads it, placeholders replaced as Compose does."""
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    if not isinstance(value, str):
        return value
    result = PLACEHOLDER.sub(_substitute, value)
    # Anything else that looks like a placeholder is syntax this reading does not know.
    assert "${" not in result, f"unsupported interpolation in {value!r}"
    return result


def _substitute(match: re.Match[str]) -> str:
    name, op, arg = match["name"], match["op"] or "", match["arg"]
    if name in OPERATOR_ENV:
        return OPERATOR_ENV[name]
    # Compose puts an empty string for an unset variable with no default: never what is meant here.
    assert op.endswith("-"), f"${{{name}}} has no default and OPERATOR_ENV does not give it"
    return arg


@cache
def raw_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


@cache
def compose() -> dict[str, Any]:
    document = interpolate(raw_compose())
    assert isinstance(document, dict)
    return document


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=VALUE list form
        env = dict(item.split("=", 1) for item in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


def replicas(service: dict[str, Any]) -> int:
    return int(service.get("deploy", {}).get("replicas", service.get("scale", 1)))


def command(service: dict[str, Any]) -> list[str]:
    value = service["command"]
    return shlex.split(value) if isinstance(value, str) else [str(word) for word in value]


def parsed(argv: list[str]) -> argparse.Namespace:
    """What `waitline ARGV` would run, or a failure naming the command the CLI refuses."""
    try:
        return _parser().parse_args(argv)
    except SystemExit as refused:
        pytest.fail(f"`waitline {shlex.join(argv)}` is refused by the CLI (exit status {refused.code})")


def settings_of(service: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings the service's container starts with: the image's ENV, then the compose file's."""
    for name in [name for name in os.environ if name.startswith("WAITLINE_")]:
        monkeypatch.delenv(name)
    for name, value in {**image_env(), **environment(services()[service])}.items():
        monkeypatch.setenv(name, value)
    # A developer's own .env file is no part of what the containers are given.
    return Settings(_env_file=None)


def setting_names() -> set[str]:
    return {f"WAITLINE_{field.upper()}" for field in Settings.model_fields}


def seconds(duration: str) -> float:
    """A Compose duration (`30s`, `1m30s`, `500ms`) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def published(mapping: str | dict[str, Any]) -> tuple[range, int]:
    """The host ports and the container port of a `ports:` entry (`[IP:][HOST[-HOST]:]CONTAINER`)."""
    if isinstance(mapping, dict):
        host, target = str(mapping.get("published", "")), int(mapping["target"])
    else:
        *address, container = str(mapping).split("/")[0].split(":")
        host, target = (address[-1] if address else ""), int(container)
    if not host:
        return range(0), target
    first, _, last = host.partition("-")
    return range(int(first), int(last or first) + 1), target


def image_version(service: str) -> tuple[str, tuple[int, ...]]:
    image, _, tag = services()[service]["image"].partition(":")
    return image, tuple(int(part) for part in tag.split("-")[0].split("."))


def python_code(test: list[str]) -> str:
    """The program of a `python -c PROGRAM` health check."""
    words = test[1:] if test[0] in ("CMD", "CMD-SHELL") else test
    assert words[:2] == ["python", "-c"], f"not a Python health check: {test}"
    return words[2]


# The Compose file as a document.


@cache
def schema() -> dict[str, Any]:
    loaded = json.loads(SCHEMA_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator_class = jsonschema.validators.validator_for(schema())
    validator_class.check_schema(schema())
    errors = validator_class(schema()).iter_errors(document)
    return sorted(
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}" for error in errors
    )


def test_the_vendored_schema_is_the_published_one() -> None:
    digest = hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest()
    assert digest == SCHEMA_SHA256, "compose-spec.json changed: vendor a published copy and its digest"


def test_the_compose_file_follows_the_compose_specification() -> None:
    problems = schema_errors(compose())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "break_it",
    [
        lambda doc: doc["services"]["api"].update(restart_policy="always"),
        lambda doc: doc["services"]["consumer"]["depends_on"]["kafka"].update(condition="service_ready"),
        lambda doc: doc["services"]["kafka"]["healthcheck"].update(interval=10),
    ],
    ids=["unknown service key", "unknown dependency condition", "duration as a number"],
)
def test_the_schema_check_refuses_what_compose_refuses(break_it: Any) -> None:
    # Without this, a schema that accepts anything would let the check above pass.
    document = copy.deepcopy(compose())
    break_it(document)
    assert schema_errors(document)


def test_the_compose_file_needs_no_obsolete_version_key() -> None:
    assert "version" not in raw_compose()


# The topology.


def test_the_topology_is_the_one_the_issue_asks_for() -> None:
    assert {name: replicas(service) for name, service in services().items()} == {
        "postgres": 1,
        "redis": 1,
        "kafka": 1,
        "migrate": 1,
        "topics": 1,
        "api": 2,
        "consumer": 2,
    }
    assert image_version("postgres")[0] == "postgres" and image_version("postgres")[1][0] == 16
    assert image_version("redis")[0] == "redis" and image_version("redis")[1][0] == 7


def test_the_waitline_processes_are_built_from_this_dockerfile() -> None:
    built = {name for name, service in services().items() if "build" in service}
    assert built == set(JOBS + PROCESSES)
    for name in built:
        build = services()[name]["build"]
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (context / dockerfile).resolve() == DOCKERFILE, name
        assert "entrypoint" not in services()[name], f"{name} must run the image's `waitline` entrypoint"


@pytest.mark.parametrize("name", PROCESSES)
def test_the_processes_start_on_a_ready_topology(name: str) -> None:
    assert services()[name]["depends_on"] == {
        **{server: {"condition": READY} for server in SERVERS},
        **{job: {"condition": DONE} for job in JOBS},
    }


def test_the_jobs_wait_for_their_server() -> None:
    assert services()["migrate"]["depends_on"] == {"postgres": {"condition": READY}}
    assert services()["topics"]["depends_on"] == {"kafka": {"condition": READY}}


def test_every_server_waited_for_has_a_health_check() -> None:
    # A service_healthy dependency on a service without a health check never starts.
    for name, service in services().items():
        for dependency, how in service.get("depends_on", {}).items():
            if how["condition"] == READY:
                check = services()[dependency].get("healthcheck", {})
                assert check.get("test") and not check.get("disable"), f"{name} waits on {dependency}"


def test_jobs_run_once_and_long_running_services_come_back() -> None:
    for name, service in services().items():
        if name in JOBS:
            assert service["restart"] == "no", f"{name} is a job: restarted, it would run forever"
        else:
            assert service["restart"] in ("unless-stopped", "always", "on-failure"), name


@pytest.mark.parametrize("name", JOBS + PROCESSES)
def test_each_process_runs_a_real_waitline_command(name: str) -> None:
    argv = command(services()[name])
    assert argv[0] == SUBCOMMANDS[name]
    parsed(argv)


def test_the_consumers_have_time_to_finish_their_batch() -> None:
    # On SIGTERM a consumer stores and commits the batch in hand; Docker kills it after 10 s unless told.
    assert seconds(services()["consumer"]["stop_grace_period"]) > 10


def test_the_api_is_probed_on_its_health_and_the_consumers_on_their_metrics_port() -> None:
    # The image's health check asks /health/live, which only `waitline serve` answers; the jobs end.
    for name in JOBS:
        assert services()[name]["healthcheck"] == {"disable": True}, name
    program = python_code(services()["api"]["healthcheck"]["test"])
    compile(program, "api healthcheck", "exec")
    assert "/health/" in program
    consumer = services()["consumer"]
    program = python_code(consumer["healthcheck"]["test"])
    compile(program, "consumer healthcheck", "exec")
    assert f":{consumer['environment']['WAITLINE_METRICS_PORT']}/metrics" in program


def test_the_api_listens_where_it_is_probed_and_published(monkeypatch: pytest.MonkeyPatch) -> None:
    port = settings_of("api", monkeypatch).port
    assert f"127.0.0.1:{port}/health/" in python_code(services()["api"]["healthcheck"]["test"])
    for mapping in services()["api"]["ports"]:
        hosts, target = published(mapping)
        assert target == port
        # Replicas cannot share a host port: each needs one of its own in the range.
        assert not hosts or len(hosts) >= replicas(services()["api"])


# The settings the compose file gives.


def test_every_waitline_variable_is_a_setting() -> None:
    names = {name for service in services().values() for name in environment(service)} | set(image_env())
    unknown = {name for name in names if name.startswith("WAITLINE_")} - setting_names()
    assert not unknown, f"not fields of entrypoints.settings.Settings: {sorted(unknown)}"


@pytest.mark.parametrize("name", JOBS + PROCESSES)
def test_the_environment_makes_valid_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_of(name, monkeypatch)
    assert settings.database_url and settings.redis_url and settings.kafka_bootstrap
    assert settings.jwt_secret == OPERATOR_ENV["WAITLINE_JWT_SECRET"]
    assert settings.kafka_idempotence
    assert settings.host == "0.0.0.0"
    # Settings takes any string; logging.basicConfig refuses a level it does not know, at start.
    assert settings.log_level in logging.getLevelNamesMapping()


def test_the_processes_reach_the_servers_where_they_listen(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_of("api", monkeypatch)
    assert settings.database_url and settings.redis_url and settings.kafka_bootstrap
    database, postgres = make_url(settings.database_url), environment(services()["postgres"])
    assert (database.host, database.port or 5432) == ("postgres", 5432)
    assert (database.username, database.password, database.database) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    redis = make_url(settings.redis_url)
    assert (redis.host, redis.port or 6379) == ("redis", 6379)
    advertised = kafka_listeners("KAFKA_ADVERTISED_LISTENERS")
    assert {server.strip() for server in settings.kafka_bootstrap.split(",")} <= set(advertised.values())


# Kafka.


def kafka_env() -> dict[str, str]:
    return environment(services()["kafka"])


def kafka_listeners(variable: str) -> dict[str, str]:
    """Listener name -> host:port, from a `NAME://host:port,...` variable."""
    pairs = (listener.split("://", 1) for listener in kafka_env()[variable].split(","))
    return dict(pairs)


def test_kafka_is_apache_kafka_in_kraft_mode() -> None:
    image, version = image_version("kafka")
    assert image == "apache/kafka" and version >= (3, 8)
    env = kafka_env()
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert kafka_listeners("KAFKA_LISTENERS") == {"PLAINTEXT": ":9092", "CONTROLLER": ":9093"}
    everything = json.dumps(compose()).lower()
    assert "zookeeper" not in everything


def test_kafka_keeps_a_valid_cluster_id() -> None:
    # The storage is formatted with it once: it must be a UUID, 16 bytes in URL-safe base64.
    cluster_id = kafka_env()["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_one_broker_is_asked_for_one_replica_and_no_automatic_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    env = kafka_env()
    for variable in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
    ):
        assert env[variable] == "1", variable
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert settings_of("topics", monkeypatch).kafka_replication == 1


# The Dockerfile.


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments left out."""
    text = re.sub(r"\\\n(?:\s*#.*\n)*", " ", DOCKERFILE.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines if line and line[0] != "#"
    ]


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    start = max(index for index, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[start:]


def arguments(name: str) -> Iterator[str]:
    return (args for instruction, args in final_stage() if instruction == name)


def image_env() -> dict[str, str]:
    pairs = (word.split("=", 1) for args in arguments("ENV") for word in shlex.split(args))
    return dict(pairs)


def test_the_image_is_slim_python_3_11() -> None:
    assert all(args.split()[0] == "python:3.11-slim" for name, args in dockerfile() if name == "FROM")


def test_the_image_runs_as_a_user_that_is_not_root() -> None:
    users = list(arguments("USER"))
    assert users, "the final stage sets no USER: it runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_the_image_runs_waitline_serve_by_default() -> None:
    (entrypoint,) = arguments("ENTRYPOINT")
    (default,) = arguments("CMD")
    assert json.loads(entrypoint) == ["waitline"]
    assert parsed(json.loads(default)).run is parsed(["serve"]).run
    assert list(arguments("EXPOSE")) == [str(Settings.model_fields["port"].default)]


def test_the_image_checks_its_health_without_curl() -> None:
    (check,) = arguments("HEALTHCHECK")
    test = json.loads(check.split("CMD", 1)[1])
    program = python_code(test)
    compile(program, "HEALTHCHECK", "exec")
    assert "urllib" in program and "/health/live" in program


def test_the_image_installs_the_locked_versions() -> None:
    installs = [args for name, args in dockerfile() if name == "RUN" and "pip install" in args]
    assert any(
        re.search(r"(-c|-r|--constraint|--requirement)[ =]requirements\.lock", run) for run in installs
    )
    copied = [args for name, args in dockerfile() if name == "COPY"]
    assert any("requirements.lock" in args.split() for args in copied)


def runtime_requirements() -> set[str]:
    """Every distribution `pip install .` brings, following the installed packages' metadata."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pending = [Requirement(line) for line in project["dependencies"]]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        key = f"{canonicalize_name(requirement.name)}{sorted(requirement.extras)}"
        if key in seen:
            continue
        seen.add(key)
        pending += _requirements_of(requirement)
    return {key.split("[", 1)[0] for key in seen}


def _requirements_of(requirement: Requirement) -> list[Requirement]:
    try:
        lines = distribution(requirement.name).requires or []
    except PackageNotFoundError:
        return []  # not installed here; the lock check names it
    wanted = [Requirement(line) for line in lines]
    extras = set(requirement.extras) | {""}
    return [
        dependency
        for dependency in wanted
        if dependency.marker is None or any(dependency.marker.evaluate({"extra": extra}) for extra in extras)
    ]


def test_the_lock_pins_every_runtime_dependency() -> None:
    # The image installs with the lock as constraints: a dependency missing from it would come
    # unpinned, in whatever version the registry serves that day.
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    locked = {canonicalize_name(line.split("==")[0]) for line in lines if "==" in line}
    assert not runtime_requirements() - locked


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", ".waitline", ".env", "tests"} <= ignored
