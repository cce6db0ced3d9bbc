"""Configuration from WAITLINE_* environment variables, or a `.env` file in the working folder
(the environment wins); every default runs embedded."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from adapters.persistence.engine import Limits

# The drivers this version ships, by the scheme a user is likely to write.
DRIVERS = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}


def database_url(url: str) -> str:
    """The URL with the driver Waitline ships (`postgresql://` means asyncpg), or a ValueError."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("not a database URL; expected e.g. postgresql://user@host:5432/db") from None
    backend = parsed.get_backend_name()
    driver = DRIVERS.get(backend)
    if driver is None or parsed.drivername not in (backend, driver):
        raise ValueError(
            f"{parsed.drivername!r} is not supported; use postgresql://… (asyncpg) or sqlite:///…"
        )
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WAITLINE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(
        Path(".waitline"), description="Folder for the SQLite file and the generated JWT secret."
    )
    database_url: str | None = Field(
        None,
        description="postgresql://user@host:port/db (asyncpg) or sqlite:///file; SQLite in data_dir when unset.",
    )
    jwt_secret: str | None = Field(None, description="HS256 secret; generated into data_dir when unset.")
    host: str = Field("127.0.0.1", description="Interface the API (and the consumer's metrics) listen on.")
    port: int = 8000
    workers: int = Field(
        1, ge=1, description="API processes on the one port (needs the database and Redis past 1)."
    )
    shutdown_grace_seconds: int = Field(
        10, ge=1, description="How long SIGTERM waits for answers in progress and open streams."
    )
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port `waitline consume` serves Prometheus metrics on (9464 is the custom); 0: none.",
    )
    lock_wait_seconds: float = Field(5.0, gt=0, description="How long V2 waits for a store's lock.")
    lock_lease_seconds: float | None = Field(
        10.0, gt=0, description="How long a holder may keep a store's lock."
    )
    queue_partitions: int = Field(4, ge=1, description="In-process queue partitions (workers).")
    # A worker takes what is queued, up to this: a rush is decided in batches this large (a backlog
    # clears faster than at 200: measured 12k against 8-10k/s on PostgreSQL), a trickle one by one.
    batch_size: int = Field(1000, ge=1, description="Most queued requests decided in one transaction.")
    queue_attempts: int = Field(
        5,
        ge=1,
        description="Tries (with back-off) before a request that keeps failing becomes a dead letter.",
    )
    db_pool_size: int = Field(10, ge=1, description="Connections per process (PostgreSQL).")
    db_pool_timeout: float = Field(5.0, gt=0, description="Seconds to wait for a free connection.")
    db_connect_timeout: float = Field(5.0, gt=0, description="Seconds to wait for a new connection.")
    db_statement_timeout: float = Field(
        5.0, gt=0, description="Seconds a statement may run before the database cancels it (PostgreSQL)."
    )
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    rate_limit_per_minute: int = Field(
        0, ge=0, description="Requests per minute per client address before 429; 0 turns the limit off."
    )
    keepalive_seconds: float = Field(15.0, gt=0, description="Comment line on idle SSE streams.")
    max_streams: int = Field(
        10_000, ge=1, description="Live event streams one process keeps open; more get 503."
    )
    log_level: str = "INFO"

    redis_url: str | None = Field(
        None, description="redis://host:6379/0: the stores' lock is then shared by every process on it."
    )
    redis_prefix: str = Field("waitline:", description="Put before every Redis key of this service.")
    kafka_bootstrap: str | None = Field(
        None,
        description="host:9092[,host:9092]: V3 requests then go through Kafka; `waitline consume` decides them.",
    )
    kafka_topic: str = Field("waiting-registration-request", min_length=1)
    kafka_dead_letter_topic: str = Field("waiting-registration-dlq", min_length=1)
    kafka_group: str = Field("waiting-registration", min_length=1, description="The consumers' group.")
    kafka_partitions: int = Field(12, ge=1, description="Partitions `waitline topics create` makes.")
    kafka_replication: int = Field(1, ge=1, description="Replicas `waitline topics create` asks for.")
    kafka_idempotence: bool = Field(
        True, description="Idempotent producer (needs a broker that supports it; Tansu does not)."
    )
    kafka_session_timeout_seconds: float = Field(
        10.0, ge=1, description="A consumer silent this long leaves its group; its partitions move on."
    )
    kafka_timeout_seconds: float = Field(
        2.0, gt=0, description="How long a V3 accept waits for the broker's acknowledgement before 503."
    )
    webhook_allow_insecure: bool = Field(
        False,
        description="Accept http and local or private webhook addresses (local development and tests only).",
    )
    webhook_attempts: int = Field(
        8, ge=1, le=30, description="Tries of a webhook before it is given up on (8: over about an hour)."
    )
    webhook_first_retry_seconds: float = Field(
        30.0, gt=0, description="Wait before a webhook's second try; each later wait doubles."
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, le=60, description="How long one webhook try may take before it counts as failed."
    )
    webhook_poll_seconds: float = Field(
        1.0, gt=0, description="How often a process looks for webhooks due (made elsewhere, or retries)."
    )

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, url: str | None) -> str | None:
        return database_url(url) if url else None

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, url: str | None) -> str | None:
        if url and urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("expected redis://host:6379/0 (or rediss://, unix://)")
        return url or None

    @field_validator("kafka_bootstrap")
    @classmethod
    def _brokers(cls, bootstrap: str | None) -> str | None:
        if not bootstrap:
            return None
        for server in bootstrap.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port], got {server.strip()!r}")
        return bootstrap

    @model_validator(mode="after")
    def _kafka_with_its_partners(self) -> Settings:
        # The API and the consumers are separate processes: they must share the database the
        # outcomes go to, and Redis for the store lock and the requests accepted but not decided.
        if self.kafka_bootstrap and not self.shared:
            raise ValueError(
                "WAITLINE_KAFKA_BOOTSTRAP needs WAITLINE_DATABASE_URL and WAITLINE_REDIS_URL too "
                "(the API and the consumers share the database and the lock)"
            )
        return self

    @property
    def shared(self) -> bool:
        """The database and the lock live in servers, so several processes may share them."""
        return bool(self.database_url and self.redis_url)

    @property
    def embedded_database(self) -> bool:
        """No database configured: the SQLite file in the data folder, which serve keeps migrated."""
        return not self.database_url

    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'waitline.db'}"

    def database_limits(self) -> Limits:
        return Limits(
            pool_size=self.db_pool_size,
            pool_timeout=self.db_pool_timeout,
            connect_timeout=self.db_connect_timeout,
            statement_timeout=self.db_statement_timeout,
        )

    def secret(self) -> str:
        """The configured secret, or the one kept in the data folder (made on first start)."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.data_dir / "jwt-secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip()
