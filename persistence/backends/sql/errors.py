"""Which driver errors are worth retrying, and how to describe any of them safely.

A transient error is one where trying again on a fresh connection can
succeed: the connection dropped, the server restarted or refused us for now,
a deadlock or serialization failure, a busy sqlite database.  Everything
else (bad SQL, constraint violations, data too long) fails at once.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

__all__ = ["is_transient", "is_disconnect", "is_missing_schema", "describe", "driver_error",
           "Transient", "AlreadyApplied"]

class Transient(Exception):
    """Wraps a transient driver error: the operation may be retried on a fresh connection."""

    def __init__(self, err: BaseException) -> None:
        super().__init__(str(err))
        self.err = err


class AlreadyApplied(Exception):
    """A retried write found that an earlier attempt of it committed after all."""


# PostgreSQL SQLSTATEs: connection exceptions (class 08) are matched by prefix.
_PG_TRANSIENT = frozenset({
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available
    "57P01",  # admin_shutdown (pg_terminate_backend, fast shutdown)
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now (starting up, shutting down)
    "53300",  # too_many_connections
})
# MySQL/MariaDB error numbers.
_MYSQL_TRANSIENT = frozenset({
    1040,  # too many connections
    1205,  # lock wait timeout
    1213,  # deadlock
    1927,  # connection killed (MariaDB)
    2002, 2003,  # cannot connect
    2006, 2013,  # server has gone away / lost connection
    2055,  # lost connection (system error)
    4031,  # disconnected for inactivity
})
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
# A host name DNS says does not exist (a temporary DNS failure is not permanent).
_UNKNOWN_HOST = r"Name or service not known|nodename nor servname provided|No address associated"
# What libpq says, without a SQLSTATE, when connecting can never succeed as configured.
_PG_PERMANENT = re.compile(
    r"authentication failed|no password supplied|(database|role) \"[^\"]*\" does not exist"
    r"|invalid (dsn|connection option)|is not permitted to log in|no pg_hba\.conf entry|"
    + _UNKNOWN_HOST, re.IGNORECASE)
_MYSQL_UNKNOWN_HOST = re.compile(_UNKNOWN_HOST, re.IGNORECASE)


def driver_error(err: BaseException) -> BaseException:
    """The DBAPI exception behind ``err`` (SQLAlchemy wraps them)."""
    if isinstance(err, sa.exc.DBAPIError) and err.orig is not None:
        return err.orig
    return err


def is_disconnect(err: BaseException, dialect: sa.Dialect, dbapi_conn: Any = None) -> bool:
    """Whether ``err`` (raised on ``dbapi_conn``) means that connection is unusable."""
    if isinstance(err, sa.exc.DBAPIError):
        if err.connection_invalidated:
            return True
        err = driver_error(err)
    if not isinstance(err, dialect.loaded_dbapi.Error):
        return isinstance(err, (sa.exc.DisconnectionError, OSError))
    try:
        return bool(dialect.is_disconnect(err, dbapi_conn, None))
    except Exception:  # a dialect that cannot tell without more context
        return False


def is_transient(err: BaseException, dialect: sa.Dialect) -> bool:
    """Whether retrying the failed operation on a fresh connection may succeed."""
    if isinstance(err, (sa.exc.DisconnectionError, sa.exc.TimeoutError)):
        return True  # pool: invalidated connection, no connection free in time
    if is_disconnect(err, dialect):
        return True
    orig = driver_error(err)
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate:
        return sqlstate.startswith("08") or sqlstate in _PG_TRANSIENT
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    module = type(orig).__module__
    if module.startswith("pymysql") or module.startswith("MySQLdb"):
        args = getattr(orig, "args", ())
        if type(orig).__name__ == "InterfaceError":
            return True  # the connection was closed under us
        if _MYSQL_UNKNOWN_HOST.search(str(orig)):
            return False  # "can't connect" (2003/2005) to a host that does not exist
        return bool(args) and args[0] in _MYSQL_TRANSIENT
    if module.startswith("psycopg"):
        # No SQLSTATE: the error happened below the protocol (refused, reset), or the
        # server refused the connection for good (no such user, database or host).
        if _PG_PERMANENT.search(str(orig)):
            return False
        return type(orig).__name__ in ("OperationalError", "InterfaceError")
    if module == "sqlite3":
        return "locked" in str(orig)
    return False


def is_missing_schema(err: BaseException) -> bool:
    """Whether ``err`` says a table does not exist (the store was never upgraded)."""
    orig = driver_error(err)
    if getattr(orig, "sqlstate", None) == "42P01":            # PostgreSQL undefined_table
        return True
    module = type(orig).__module__
    if module.startswith(("pymysql", "MySQLdb")):
        args = getattr(orig, "args", ())
        return bool(args) and args[0] == 1146                 # table doesn't exist
    return module == "sqlite3" and "no such table" in str(orig)


def describe(err: BaseException, secret: str | None = None) -> str:
    """A one-paragraph description of a driver error, with ``secret`` masked."""
    orig = driver_error(err)
    text = " ".join(str(orig).split()) or type(orig).__name__
    if secret:
        text = text.replace(secret, "***")
    return f"{type(orig).__name__}: {text}"
