"""Unit of work and repositories: SQLAlchemy (SQLite embedded, PostgreSQL later) and in-memory."""
