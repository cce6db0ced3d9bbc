"""Unit of work and repositories: SQLAlchemy (PostgreSQL via asyncpg, SQLite embedded) and in-memory."""
