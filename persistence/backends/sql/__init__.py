"""The SQL backend (sqlite, PostgreSQL, MySQL/MariaDB) on SQLAlchemy Core and Alembic."""

from .backend import SQLAlchemyBackend
from .connection import SQLConnection

__all__ = ["SQLAlchemyBackend", "SQLConnection"]
