"""Bring a database's schema to the head migration, safely from many processes at once.

Each database gets one lock around "read the version, migrate": a
PostgreSQL advisory transaction lock, a MySQL ``GET_LOCK``, an exclusive
sqlite transaction.  The loser of a race waits, then finds the schema at
head and does nothing.
"""

from __future__ import annotations

import functools
import io
import os
import sqlite3
import zlib

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ...exceptions import StorageFailure
from ..drivers.sqlitefile import connect_read_only
from .tables import VERSION_TABLE

__all__ = ["head", "current", "upgrade", "offline", "MIGRATIONS"]

MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")
_LOCK_NAME = "persistence.backends.sql.migrate"
_PG_LOCK_KEY = zlib.crc32(_LOCK_NAME.encode())
#: How long to wait for another process's migration (seconds).
LOCK_TIMEOUT = 300


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.lru_cache(maxsize=1)
def head() -> str:
    """The newest migration shipped with this package."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def current(connection: sa.Connection) -> str | None:
    """The migration the database is at (None: empty database)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _lock(connection: sa.Connection) -> None:
    """Take the migration lock; it is released when the transaction ends (or by _unlock)."""
    name = connection.dialect.name
    if name == "sqlite":
        connection.exec_driver_sql("BEGIN EXCLUSIVE")
    elif name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
    elif name in ("mysql", "mariadb"):
        got = connection.execute(sa.select(sa.func.get_lock(_lock_name(connection),
                                                            LOCK_TIMEOUT))).scalar()
        if got != 1:
            raise StorageFailure(f"another process held the schema migration lock for "
                                 f"more than {LOCK_TIMEOUT} s")


def _lock_name(connection: sa.Connection) -> str:
    # GET_LOCK names are server-wide: scope ours to this database.
    database = connection.execute(sa.select(sa.func.database())).scalar() or ""
    return f"{_LOCK_NAME}.{database}"[:64]


def _unlock(connection: sa.Connection) -> None:
    if connection.dialect.name in ("mysql", "mariadb"):
        connection.execute(sa.select(sa.func.release_lock(_lock_name(connection))))
        connection.commit()


def offline(url: sa.URL, start: str | None) -> str:
    """The SQL that migrates a database at ``start`` (None or ``'base'``: empty)
    to head, rendered for ``url``'s dialect (Alembic's offline mode)."""
    buffer = io.StringIO()
    config = Config(output_buffer=buffer)
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["offline_url"] = url
    span = "head" if start in (None, "base") else f"{start}:head"
    command.upgrade(config, span, sql=True)
    return buffer.getvalue()


def sqlite_file_revision(path: str) -> str | None:
    """The migration the sqlite file at ``path`` is at (None: no schema), read
    through a read-only connection (:mod:`persistence.backends.drivers.sqlitefile`)."""
    try:
        conn = connect_read_only(path)
    except sqlite3.Error as err:
        raise StorageFailure(f"cannot open {path} to read it: {err}") from err
    try:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                             (VERSION_TABLE,)).fetchone()
        if found is None:
            return None
        row = conn.execute(f'SELECT version_num FROM "{VERSION_TABLE}"').fetchone()
        return row[0] if row else None
    except sqlite3.Error as err:
        raise StorageFailure(f"cannot read the schema version of {path}: {err}") from err
    finally:
        conn.close()


def upgrade(connection: sa.Connection) -> bool:
    """Migrate to head; False (and one cheap read) when already there."""
    try:
        at = current(connection)
    finally:
        connection.rollback()
    if at == head():
        return False
    _lock(connection)
    try:
        command.upgrade(_config(connection), "head")
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        _unlock(connection)
    return True
