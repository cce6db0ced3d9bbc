"""Alembic's environment: migrations run on the connection `adapters.persistence.schema` hands over.

`waitline migrate` is the way in; there is no alembic.ini to keep in step with the settings.
"""

from __future__ import annotations

from alembic import context

from adapters.persistence.tables import metadata


def run() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters tables by copying them; batch mode makes that work the same way.
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
