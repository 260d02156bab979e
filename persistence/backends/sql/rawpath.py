"""The SQL backend's fast path: statements on the DBAPI connection.

When nobody listens to statements (no SQLAlchemy events, echo or logging, see
:meth:`.session.Session.instrumented`), the hot path's statements run on the
driver's cursor with SQL compiled once per statement (``backend.raw``),
skipping SQLAlchemy's per-execution work; otherwise through SQLAlchemy, so
listeners see every statement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import sqlalchemy as sa

try:
    from sqlalchemy.util import await_ as _await  # SQLAlchemy >= 2.1
except ImportError:  # pragma: no cover - SQLAlchemy 2.0
    from sqlalchemy.util import await_only as _await

_CURSOR_KEY = "persistence.backends.sql.rawpath.cursor"

__all__ = ["RawHost", "begin_with", "executemany", "execute_more", "execute_raw",
           "update_then", "autocommit_form", "run_autocommit"]


class RawHost(Protocol):
    """What these functions need of the session running them."""

    backend: Any
    sqlite: bool
    dialect: Any

    def instrumented(self, conn: sa.Connection) -> bool:
        """Whether anyone listens to ``conn``'s statements."""


def begin_with(session: RawHost, conn: sa.Connection, sql: str) -> None:
    """Start the hot path's transaction with ``sql`` (on the DBAPI connection when
    nobody listens to statements, as :func:`execute_raw`)."""
    if session.instrumented(conn):
        conn.exec_driver_sql(sql)
    else:
        conn.connection.dbapi_connection.execute(sql)


def executemany(session: RawHost, conn: sa.Connection, statement: sa.Executable,
                params: list[dict[str, Any]]) -> int:
    """Run ``statement`` once per parameter set (one executemany); return the
    rows matched.  Skips SQLAlchemy's per-row work when nobody listens."""
    raw = session.backend.raw(statement)
    if raw is None:
        return conn.execute(statement, params).rowcount
    args = [raw.params(p) for p in params]
    if session.instrumented(conn):
        return conn.exec_driver_sql(raw.sql, args if len(args) > 1 else args[0]).rowcount
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.executemany(raw.sql, args)
        return cursor.rowcount
    finally:
        cursor.close()


def execute_more(session: RawHost, conn: sa.Connection, statement: sa.Executable,
                 params: dict[str, Any]) -> int:
    """Run ``statement`` in the transaction :func:`execute_raw` began (no commit);
    a failure rolls that transaction back."""
    raw = session.backend.raw(statement)
    if raw is None or session.instrumented(conn):
        if raw is None:
            return conn.execute(statement, params).rowcount
        return conn.exec_driver_sql(raw.sql, raw.params(params)).rowcount
    dbapi = conn.connection.dbapi_connection
    try:
        return _rows(session, dbapi, raw.sql, raw.params(params))
    except BaseException:
        dbapi.rollback()
        raise


def execute_raw(session: RawHost, conn: sa.Connection, statement: sa.Executable,
                params: dict[str, Any]) -> tuple[int, Callable[[], None]]:
    """Run ``statement`` as its own transaction on the DBAPI cursor when nobody
    listens to statements; return (rowcount, commit function)."""
    raw = session.backend.raw(statement)
    if raw is None:
        return conn.execute(statement, params).rowcount, conn.commit
    if session.instrumented(conn):
        result = conn.exec_driver_sql(raw.sql, raw.params(params))
        return result.rowcount, conn.commit
    dbapi = conn.connection.dbapi_connection
    try:
        return _rows(session, dbapi, raw.sql, raw.params(params)), dbapi.commit
    except BaseException:
        dbapi.rollback()
        raise


def update_then(session: RawHost, conn: sa.Connection, statement: sa.Executable,
                params: dict[str, Any], then: tuple[sa.Executable, dict[str, Any]] | None
                ) -> tuple[int, Callable[[], None]]:
    """The hot path's UPDATE and, if it matched one row, ``then`` (a statement and its
    parameters) in its transaction, not committed: (rowcount, commit function).  As
    :func:`begin_with` (sqlite, with ``then``), :func:`execute_raw` and
    :func:`execute_more` do, asking once whether anybody listens."""
    backend = session.backend
    raw, more = backend.raw(statement), None if then is None else backend.raw(then[0])
    if raw is None or (then is not None and more is None) or session.instrumented(conn):
        if then is not None and session.sqlite:
            begin_with(session, conn, "BEGIN")
        rowcount, commit = execute_raw(session, conn, statement, params)
        if rowcount == 1 and then is not None:
            execute_more(session, conn, *then)
        return rowcount, commit
    dbapi = conn.connection.dbapi_connection
    if more is not None and session.sqlite:   # two statements: one transaction
        dbapi.execute("BEGIN")
    try:
        rowcount = _rows(session, dbapi, raw.sql, raw.params(params))
        if rowcount == 1 and more is not None:
            _rows(session, dbapi, more.sql, more.params(then[1]))
    except BaseException:
        dbapi.rollback()
        raise
    return rowcount, dbapi.commit


def _rows(session: RawHost, dbapi: Any, sql: str, params: Any) -> int:
    """Run ``sql`` on the DBAPI connection; the rows it matched."""
    if session.sqlite:  # sqlite3 makes, runs and drops the cursor in C
        return dbapi.execute(sql, params).rowcount
    cursor = dbapi.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.rowcount
    finally:
        cursor.close()


def autocommit_form(session: RawHost, conn: sa.Connection,
                    statement: sa.Executable) -> Any | None:
    """PostgreSQL (psycopg 3): ``statement`` compiled to run as its own implicit
    transaction (:func:`run_autocommit`); None when it cannot run that way
    (someone listens to statements, another driver, a transaction is open)."""
    raw = session.backend.raw(statement)
    if raw is None or session.dialect.driver != "psycopg" or session.instrumented(conn):
        return None
    # libpq's own status (an int): ``info.transaction_status`` builds an enum each call.
    if conn.connection.driver_connection.pgconn.transaction_status != 0:   # not idle
        return None
    return raw


def run_autocommit(session: RawHost, conn: sa.Connection, raw: Any,
                   params: dict[str, Any]) -> int:
    """Run ``raw`` (from :func:`autocommit_form`) in autocommit: one round trip,
    where BEGIN, statement and COMMIT take three; the rows matched."""
    if session.dialect.is_async:   # persistence.aio: psycopg's AsyncConnection
        return _await(_autocommit_async(conn.connection.driver_connection, raw.sql,
                                        raw.params(params)))
    record = conn.connection
    dbapi = record.dbapi_connection
    # One cursor per DBAPI connection, kept in its pool record (cleared when the
    # connection is replaced): a new cursor looks up the dumper of every
    # parameter's type again, which costs more than the statement's own work.
    cursor = record.info.get(_CURSOR_KEY)
    if cursor is None or cursor.connection is not dbapi or cursor.closed:
        cursor = record.info[_CURSOR_KEY] = dbapi.cursor()
    dbapi.autocommit = True
    try:
        cursor.execute(raw.sql, raw.params(params))
        return cursor.rowcount
    finally:
        dbapi.autocommit = False


async def _autocommit_async(driver: Any, sql: str, params: Any) -> int:
    """:func:`run_autocommit` on psycopg's AsyncConnection, the same driver calls as
    one coroutine: the greenlet running the backend awaits once per statement, not
    once per driver call (through SQLAlchemy's adapted cursor)."""
    await driver.set_autocommit(True)
    try:
        cursor = driver.cursor()
        try:
            await cursor.execute(sql, params)
            return cursor.rowcount
        finally:
            await cursor.close()
    finally:
        await driver.set_autocommit(False)
