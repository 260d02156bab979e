"""The SQL backend under asyncio, on async drivers: psycopg 3's async connection
(PostgreSQL), aiosqlite (sqlite) and asyncmy (MySQL/MariaDB).

It *is* the synchronous :class:`~persistence.backends.sql.SQLAlchemyBackend`
(statements, codec, sessions, retries, migrations), built over SQLAlchemy's
asyncio engine: the backend drives the engine's ``sync_engine`` in a greenlet
of :mod:`persistence.aio.bridge` (which SQLAlchemy's ``await_`` accepts as
its own), so each statement is awaited by the event loop and no thread is
used.  The hot path's single-statement write is one coroutine on psycopg's
``AsyncConnection`` (:func:`persistence.backends.sql.rawpath.run_autocommit`):
one await per round trip, as the synchronous path blocks once.  A URL naming
a driver with no async counterpart known here (``sqlalchemy+oracle://...``)
runs in threads instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from ..backends.sql import SQLAlchemyBackend
from ..backends.sql import config as sqlconfig
from ..exceptions import MissingDependency
from . import bridge
from .greened import GreenBackend

__all__ = ["AsyncSQLBackend", "ASYNC_DRIVERS", "async_url"]

#: (dialect, synchronous driver) -> the async driver that replaces it.
ASYNC_DRIVERS: Mapping[tuple[str, str], str] = {
    ("sqlite", "pysqlite"): "aiosqlite",
    ("sqlite", "aiosqlite"): "aiosqlite",
    ("postgresql", "psycopg"): "psycopg",   # psycopg 3 picks its async connection itself
    ("postgresql", "psycopg_async"): "psycopg",
    ("mysql", "pymysql"): "asyncmy",
    ("mysql", "asyncmy"): "asyncmy",
    ("mariadb", "pymysql"): "asyncmy",
    ("mariadb", "asyncmy"): "asyncmy",
}


def async_url(url: sa.URL) -> sa.URL | None:
    """``url`` with its driver replaced by the async one; None if none is known."""
    driver = ASYNC_DRIVERS.get((url.get_backend_name(), url.get_driver_name()))
    if driver is None:
        return None
    return url.set(drivername=f"{url.get_backend_name()}+{driver}")


class _OnAsyncDriver(SQLAlchemyBackend):
    """The synchronous SQL backend over an asyncio engine's ``sync_engine``."""

    def _create_engine(self, url: sa.URL, options: Mapping[str, Any]) -> sa.Engine:
        target = async_url(url)
        if target is None:
            raise _NoAsyncDriver(url.drivername)
        try:
            self.async_engine = sqlconfig.create_engine(target, options,
                                                        factory=create_async_engine)
        except MissingDependency as err:
            raise MissingDependency(f"persistence.aio needs the async driver "
                                    f"{target.get_driver_name()!r} for "
                                    f"{url.get_backend_name()}: pip install "
                                    f"'persistence[aio]' ({err.__cause__})") from err
        return self.async_engine.sync_engine


class _NoAsyncDriver(Exception):
    """The URL's driver has no async counterpart here (the caller falls back to threads)."""


class AsyncSQLBackend(GreenBackend):
    """A SQL database through SQLAlchemy's asyncio engine (see the module docstring)."""

    def __init__(self, sync: SQLAlchemyBackend) -> None:
        super().__init__(sync, bridge.drive, shared=sync.memory)

    @classmethod
    def build(cls, conf: Mapping[str, Any], **kwargs: Any) -> AsyncSQLBackend | None:
        """The native backend of ``conf``; None when its driver has no async counterpart
        or an engine was passed in (then the registry runs the sync backend in threads)."""
        if "engine" in kwargs:
            return None
        try:
            return cls(_OnAsyncDriver(conf, **kwargs))
        except _NoAsyncDriver:
            return None
