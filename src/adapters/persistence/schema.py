"""The schema's version: bring a database up to date (Alembic), or tell how far behind it is."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")
FIRST_RELEASE = "0001"
# Any fixed number: replicas migrating at the same moment take turns rather than race.
MIGRATION_LOCK = 0x5761_6974


class SchemaNotCurrent(Exception):
    """The database's schema is not the one this version runs on."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    found = ScriptDirectory.from_config(_config()).get_current_head()
    assert found is not None
    return found


async def upgrade(engine: AsyncEngine, target: str = "head") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, target)


async def downgrade(engine: AsyncEngine, target: str) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.downgrade(_config(sync), target))


async def current(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


async def check(engine: AsyncEngine) -> None:
    """Raise `SchemaNotCurrent`, saying what to do, unless the database is at this version's head."""
    found, wanted = await current(engine), head()
    if found == wanted:
        return
    known = {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}
    if found is None:
        raise SchemaNotCurrent("the database has no Waitline schema yet: run `waitline migrate`")
    if found not in known:
        raise SchemaNotCurrent(
            f"the database's schema ({found}) is newer than this version knows ({wanted}): upgrade Waitline"
        )
    raise SchemaNotCurrent(
        f"the database's schema ({found}) is behind this version ({wanted}): run `waitline migrate`"
    )


def _upgrade(connection: Connection, target: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    config = _config(connection)
    if _made_before_migrations(connection):
        command.stamp(config, FIRST_RELEASE)
    command.upgrade(config, target)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _made_before_migrations(connection: Connection) -> bool:
    """The first release made its tables without a version: they are revision 0001."""
    return _current(connection) is None and inspect(connection).has_table("waitings")
