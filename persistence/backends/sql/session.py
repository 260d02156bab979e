"""One pooled connection, its transactions, and retries of transient failures.

Every operation runs as one transaction through :meth:`Session.run`: a
transient failure (dropped connection, server restart, deadlock, busy
sqlite) drops the connection and retries on a fresh one with exponential
backoff, as the backend's retry policy says.  A write whose COMMIT failed
in flight is not simply retried: its transaction id (column ``txn``) is
looked up first, so a commit that went through is never applied twice.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa

from ... import telemetry
from ...exceptions import PersistenceError, StorageFailure
from . import rawpath
from .errors import (
    AlreadyApplied,
    Transient,
    describe,
    is_disconnect,
    is_missing_schema,
    is_transient,
)
from .statements import RawStatement, TableStatements

__all__ = ["Session", "SessionHost"]

LOG = logging.getLogger(__name__)
T = TypeVar("T")
_SETUP_KEY = "persistence.backends.sql"


class SessionHost(Protocol):
    """The members of :class:`~.backend.SQLAlchemyBackend` a session uses."""

    engine: sa.Engine
    shared_lock: Any
    memory: bool
    retrying: Any
    server: str | None
    where: str
    #: The sessions handed out and not closed yet (closed with the backend).
    sessions: Any

    def setup(self, dbapi_conn: Any) -> None:
        """Per-connection settings; run once per pooled DBAPI connection."""

    def raw(self, statement: Any) -> RawStatement | None:
        """``statement`` compiled for this engine's dialect, or None."""

    def new_txn_id(self) -> str:
        """A unique id for one write transaction."""


def _give_back(held: list) -> None:
    conn, held[0] = held[0], None
    if conn is not None:
        try:
            conn.close()
        except Exception:  # the pool may be gone already (interpreter exit)
            pass


class Session:
    """A lazily checked-out connection used by one :class:`SQLConnection`."""

    def __init__(self, backend: SessionHost) -> None:
        self.backend = backend
        self.engine = backend.engine
        self.dialect = self.engine.dialect
        self.sqlite = self.dialect.name == "sqlite"
        self.postgresql = self.dialect.name == "postgresql"
        self.lock = backend.shared_lock or threading.RLock()
        # The checked-out connection, in a box a finalizer can reach: a Session
        # dropped without close() (an engine that never closes its Storage)
        # still gives its connection back to the pool, and closing the backend
        # closes every Session it handed out.
        self._held: list[sa.Connection | None] = [None]
        weakref.finalize(self, _give_back, self._held)
        backend.sessions.add(self)
        self.closed = False
        self._depth = 0   # operations of this session running (run() nests)
        # The engine's pool last seen, and whether it is a QueuePool.
        self._pool: Any = None
        self._queue_pool = False

    @property
    def _conn(self) -> sa.Connection | None:
        return self._held[0]

    @_conn.setter
    def _conn(self, conn: sa.Connection | None) -> None:
        self._held[0] = conn

    # -- the connection ----------------------------------------------------
    def connection(self) -> sa.Connection:
        conn = self._held[0]   # runs per operation: the box itself, not the property
        if conn is None:
            if self.closed:
                raise StorageFailure("this connection is closed")
            conn = self.engine.connect()
            try:
                record = conn.connection
                if _SETUP_KEY not in record.info:
                    self.backend.setup(record.dbapi_connection)
                    record.info[_SETUP_KEY] = True
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return conn

    def discard(self, err: BaseException | None = None) -> None:
        """Give the connection back; after a transient error ``err``, drop it.

        A server connection that failed transiently may be dead without the
        driver knowing yet (killed, server restarted): it is never reused.
        A sqlite connection is dropped only if it is really broken (a busy
        database does not break it, and the in-memory one would be lost).
        """
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if err is not None and not conn.invalidated:
                dbapi = conn.connection.dbapi_connection
                if not self.sqlite or (not self.backend.memory
                                       and is_disconnect(err, self.dialect, dbapi)):
                    conn.invalidate()
        except Exception:  # already unusable: closing below is all we can do
            pass
        try:
            conn.close()
        except Exception:
            LOG.debug("closing a failed connection raised", exc_info=True)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.discard()

    def instrumented(self, conn: sa.Connection) -> bool:
        """Whether anyone listens to ``conn``'s statements (events, echo, logging).

        Then statements go through SQLAlchemy, so listeners see every one of
        them.  (Unknown SQLAlchemy internals count as "yes": the safe way.)
        """
        return (getattr(conn, "_has_events", True) or getattr(self.engine, "_has_events", True)
                or getattr(self.dialect, "_has_events", True) or getattr(conn, "_echo", True))

    # -- running operations -------------------------------------------------
    def run(self, what: str | Callable[[], str], op: Callable[[sa.Connection], T]) -> T:
        """Run ``op(connection)``; retry it on transient failures; translate errors.

        ``what`` describes the operation for messages (a callable: only built when
        a message is).
        """
        with self.lock:
            self._depth += 1
            try:
                result = self._run(op, what)
            finally:
                self._depth -= 1
            if self._depth == 0:   # not inside another operation of this session
                self._yield_if_pool_busy()
            return result

    def _yield_if_pool_busy(self) -> None:
        """Give the connection back to the pool after an operation when the pool's
        idle capacity is all checked out: a connection is then held only while an
        operation runs, so any number of connections (Storages) share the pool
        instead of the extra ones waiting for a free connection until
        ``pool_timeout``.  Below that, the connection stays checked out (no
        check-out cost per operation)."""
        if self._held[0] is None:
            return
        pool = self.engine.pool
        if pool is not self._pool:   # a new pool (engine.dispose()), or the first op
            self._pool, self._queue_pool = pool, isinstance(pool, sa.pool.QueuePool)
        if self._queue_pool and pool.checkedout() >= pool.size():
            self.discard()

    def _run(self, op: Callable[[sa.Connection], T], what: str | Callable[[], str]) -> T:
        # Called by run(), which holds the lock.
        try:
            return self._attempt(op, what)
        except Transient as first:
            what = what() if callable(what) else what
            LOG.info("Retrying to %s after a transient failure: %s", what,
                     describe(first.err, self._secret))
            telemetry.retried(self.dialect.name)
        try:
            return self.backend.retrying.copy(
                before_sleep=lambda state: (telemetry.retried(self.dialect.name), LOG.info(
                    "Retrying to %s (attempt %d failed)", what, state.attempt_number)))(
                self._attempt, op, what)
        except Transient as last:
            raise self.failure(what, last.err, gave_up=True) from last.err

    def _attempt(self, op: Callable[[sa.Connection], T], what: str | Callable[[], str]) -> T:
        try:
            return op(self.connection())
        except (PersistenceError, Transient):
            raise
        except Exception as err:
            if is_transient(err, self.dialect):
                self.discard(err)
                raise Transient(err) from err
            self.rollback()
            raise self.failure(what() if callable(what) else what, err) from err

    @property
    def _secret(self) -> str | None:
        return self.engine.url.password if isinstance(self.engine.url.password, str) else None

    def failure(self, what: str, err: BaseException, gave_up: bool = False) -> StorageFailure:
        where = self.backend.server or self.backend.where
        attempts = (f" (gave up after {self.backend.retrying.stop.max_attempt_number + 1} "
                    f"attempts)" if gave_up else "")
        hint = (" (this database has no persistence schema yet: run "
                "`persistence upgrade URL` or Connection.upgrade() once before use)"
                if is_missing_schema(err) else "")
        return StorageFailure(f"failed to {what} on {where}: "
                              f"{describe(err, self._secret)}{attempts}{hint}")

    def rollback(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            conn.rollback()
        except Exception as err:
            self.discard(err)

    # -- transactions ---------------------------------------------------------
    def begin_write(self, conn: sa.Connection) -> None:
        """Start a write transaction on sqlite as a writer (BEGIN IMMEDIATE), so it
        never fails half-way to upgrade a read lock; other databases need nothing."""
        if self.sqlite:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    def read(self, what: str, body: Callable[[sa.Connection], T], consistent: bool = True) -> T:
        """Run a read-only ``body``; several statements see one snapshot if ``consistent``."""
        def op(conn: sa.Connection) -> T:
            dbapi = saved = None
            if consistent and self.sqlite:
                conn.exec_driver_sql("BEGIN")
            elif consistent and self.postgresql and self.dialect.is_async:
                # persistence.aio's driver: its connection's attributes cannot be set.
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, "
                                     "READ ONLY")
            elif consistent and self.postgresql:
                # One snapshot for all statements; psycopg puts it in its BEGIN.
                dbapi = conn.connection.dbapi_connection
                saved = dbapi.isolation_level, dbapi.read_only
                dbapi.isolation_level = self.dialect.loaded_dbapi.IsolationLevel.REPEATABLE_READ
                dbapi.read_only = True
            try:
                return body(conn)
            finally:
                conn.rollback()
                if saved is not None:
                    dbapi.isolation_level, dbapi.read_only = saved
        return self.run(what, op)

    def write(self, what: str, check: tuple[TableStatements, str],
              body: Callable[[sa.Connection, str], T]) -> T:
        """Run ``body(connection, txn_id)`` in a write transaction and commit it.

        ``check`` names a row every successful run of ``body`` writes: after a
        failed COMMIT, a retry first looks there for this transaction's id.
        """
        txn = self.backend.new_txn_id()
        pending: list[T] = []

        def op(conn: sa.Connection) -> T:
            if pending and self.committed(conn, check, txn):
                return pending[0]
            if self.sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif not conn.in_transaction():
                conn.begin()  # so that commit() below commits what runs on the raw cursor
            try:
                result = body(conn, txn)
            except AlreadyApplied:
                self.rollback()
                if not pending:
                    raise StorageFailure(f"failed to {what}: transaction {txn} found "
                                         f"applied by an unknown attempt") from None
                return pending[0]
            except BaseException:
                self.rollback()
                raise
            pending[:] = [result]
            conn.commit()
            return result
        return self.run(what, op)

    def update_row(self, what: Callable[[], str], statement: sa.Executable,
                   params: dict[str, Any],
                   miss: Callable[[Any], Exception],
                   check: tuple[TableStatements, str],
                   then: tuple[sa.Executable, dict[str, Any]] | None = None) -> None:
        """Run a conditional single-row UPDATE (its own transaction): the hot path.

        ``then`` (a statement and its parameters) runs after the UPDATE, in its
        transaction, when the UPDATE matched (the history row of the write).
        On PostgreSQL a single statement runs as its own implicit transaction
        (autocommit): one round trip instead of BEGIN, statement, COMMIT.
        When it matches no row, the row's current (revision, txn) is read:
        ``miss(row or None)`` is raised, unless an earlier attempt of this very
        write is what changed it.
        """
        txn = params["v_txn"]
        pending = False

        def op(conn: sa.Connection) -> None:
            nonlocal pending
            if pending and self.committed(conn, check, txn):
                return
            raw = (rawpath.autocommit_form(self, conn, statement)
                   if self.postgresql and then is None else None)
            if raw is not None:
                pending = True   # sent as its own transaction: it may commit
                if rawpath.run_autocommit(self, conn, raw, params) == 1:
                    return
            else:
                rowcount, commit = rawpath.update_then(self, conn, statement, params, then)
                if rowcount == 1:
                    pending = True
                    commit()
                    return
                commit()  # nothing was written; end the transaction
            statements, uuid = check
            try:
                hit = conn.execute(statements.diagnose, {"uuids": [uuid]}).first()
            finally:
                conn.rollback()
            if hit is not None and hit.txn == txn:
                return  # an earlier attempt committed after all
            raise miss(hit)

        self.run(what, op)

    def committed(self, conn: sa.Connection, check: tuple[TableStatements, str],
                  txn: str) -> bool:
        """Whether transaction ``txn`` is the last one that wrote the ``check`` row."""
        statements, uuid = check
        try:
            found = conn.execute(statements.check_txn, {"uuid": uuid}).scalar()
        finally:
            conn.rollback()
        return found == txn
