"""Alembic migrations of the SQL backend's schema (run by ``Connection.upgrade()``)."""
