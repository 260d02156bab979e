"""The Connection API of the SQL backend, each method a fixed number of statements.

Statements per call (BEGIN/COMMIT not counted; ``tests/backends/test_sql_statements.py``
asserts them):

==========================================  =====================================
update_atom_details (record from here)      1 UPDATE
update_atom_details (record from elsewhere) 1 probe + 1 UPDATE
update_flow_details (record from here)      1 UPDATE of the flow, + 1 executemany
                                            UPDATE of the changed atoms, + 1
                                            INSERT of new ones (MySQL: +1 probe);
                                            the flow tracks which atoms changed, so
                                            its cost does not grow with its size
save_logbook of a new book                  3 bulk INSERTs (MySQL: 3 probes first)
get_logbook / get_flow_details              3 / 2 SELECTs (+1 if values are chunked)
get_atom_details                            1 SELECT (+1 if chunked)
destroy_logbook                             1 DELETE (children cascade)
==========================================  =====================================

Large values add chunk statements only for the atoms that have them.  The
writes and the schema calls are here; the reads are in :mod:`.reads`, history
in :mod:`.history`, snapshots, restores and forks in :mod:`.snapshots`,
summaries, listings and purge in :mod:`.lifecycle`, claims in :mod:`.claims`.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import sqlalchemy as sa

from ... import telemetry
from ...exceptions import Conflict, NotFound, StorageFailure
from ...models import records as models
from ...models.bookkeeping import atoms_to_check, bookkeeping, flow_written
from ..base import Connection
from ..shared import check_component
from . import codec, migrate
from .claims import SQLClaims
from .history import (
    HISTORY_FROM_ATOM,
    UPDATE_LOGGED_PG,
    UPDATE_LOGGED_RELAXED_PG,
    UPDATE_RELAXED_PG,
    SQLHistory,
)
from .lifecycle import SQLLifecycle
from .reads import SQLReads
from .session import Session
from .snapshots import SQLSnapshots
from .statements import ATOMS, BOOKS, CHUNKS, FLOWS
from .writes import RowWrite, check_unique, conflict, param_bytes, write_chunks, write_rows

LOG = logging.getLogger(__name__)

__all__ = ["SQLConnection"]


class SQLConnection(SQLReads, SQLClaims, SQLHistory, SQLSnapshots, SQLLifecycle,
                    Connection):
    """A connection to a :class:`SQLAlchemyBackend`; holds one pooled connection
    from first use until :meth:`close`.  Safe to share between threads (calls
    are serialized)."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self._session = Session(backend)
        self._token = backend.token
        #: PostgreSQL: atom uuid -> the revision a mark written without waiting for
        #: the disk gave it, until the atom's next write (see :meth:`_update_atom`).
        self._marks: dict[str, int] = {}

    @property
    def backend(self):
        return self._backend

    def close(self) -> None:
        self._session.close()

    # -- helpers -------------------------------------------------------------
    def _ours(self, detail: models._Record) -> bool:
        return bookkeeping(detail).came_from(self._token)

    def _row(self, detail: models._Record, params: dict[str, Any],
             chunks: list | None = None) -> RowWrite:
        if chunks:
            telemetry.offloaded(self._backend.dialect_name,
                                sum(len(chunk["data"]) for chunk in chunks))
        if self._ours(detail):
            return RowWrite(detail, params, detail.revision,
                            bookkeeping(detail).extra(codec.CHUNKED), chunks)
        return RowWrite(detail, params, None, None, chunks)

    def _atom_row(self, ad: models.AtomDetail, parent_uuid: str | None, txn: str) -> RowWrite:
        params = codec.atom_params(ad, parent_uuid, txn, self._backend.payload)
        chunks = codec.split_large(params, self._backend.max_inline_size,
                                   self._backend.chunk_size)
        return self._row(ad, params, chunks)

    def _mark(self, rows: list[RowWrite]) -> None:
        token = self._token
        for r in rows:
            bk = bookkeeping(r.detail)
            bk.mark_saved(r.revision)
            bk.mark_stored(token, getattr(r.detail, "state", None))
            if "v_chunked" in r.params:
                bk.set_extra(codec.CHUNKED, r.params["v_chunked"])

    def _flow_rows(self, fd: models.FlowDetail, parent_uuid: str | None,
                   txn: str) -> tuple[RowWrite, list[RowWrite]]:
        # Only the atoms the flow knows may need it (all on its first write here).
        atoms = [self._atom_row(ad, fd.uuid, txn) for ad in atoms_to_check(fd, self._token)
                 if not (self._ours(ad) and not ad.changed)]
        return self._row(fd, codec.flow_params(fd, parent_uuid, txn, self._backend.payload)), atoms

    @staticmethod
    def _retxn(rows: list[RowWrite], txn: str) -> None:
        for r in rows:
            r.params["v_txn"] = txn

    def _write_atom_rows(self, conn: sa.Connection, atom_rows: list[RowWrite],
                         txn: str) -> None:
        """Insert or update ``atom_rows`` and their chunks (new rows are created)."""
        if atom_rows:
            write_rows(self._session, conn, ATOMS, atom_rows, txn, create=True)
            write_chunks(self._session, conn, atom_rows)

    # -- writes --------------------------------------------------------------
    def save_logbook(self, book: models.LogBook) -> models.LogBook:
        book.updated_at = datetime.datetime.now(datetime.timezone.utc)
        # Encode everything before touching the database: a value that cannot be
        # stored fails here, with nothing written.
        book_row = self._row(book, codec.book_params(book, "", self._backend.payload))
        flow_rows, atom_rows = [], []
        for fd in book:
            flow_row, atoms = self._flow_rows(fd, book.uuid, "")
            flow_rows.append(flow_row)
            atom_rows.extend(atoms)
        everything = [book_row, *flow_rows, *atom_rows]
        check_unique(flow_rows, "flow detail")
        check_unique(atom_rows, "atom detail")
        logged = ([(r, "flow", r.params["v_uuid"], self._ours(r.detail)) for r in flow_rows]
                  + [(r, "atom", r.params["v_parent_uuid"], self._ours(r.detail))
                     for r in atom_rows])

        def body(conn: sa.Connection, txn: str) -> None:
            self._retxn(everything, txn)
            write_rows(self._session, conn, BOOKS, [book_row], txn, create=True)
            if flow_rows:
                write_rows(self._session, conn, FLOWS, flow_rows, txn, create=True)
            self._write_atom_rows(conn, atom_rows, txn)
            self._log_rows(conn, logged)

        self._session.write(f"save logbook {book.name!r} ({book.uuid})",
                            (BOOKS, book.uuid), body)
        self._mark(everything)
        for fd in book:
            flow_written(fd, self._token)
        return book

    def update_flow_details(self, flow_detail: models.FlowDetail) -> models.FlowDetail:
        flow_row, atom_rows = self._flow_rows(flow_detail, None, "")
        check_unique(atom_rows, "atom detail")
        uuid = flow_detail.uuid
        logged = [(r, kind, uuid, self._ours(r.detail))
                  for r, kind in [(flow_row, "flow"), *((a, "atom") for a in atom_rows)]]

        def body(conn: sa.Connection, txn: str) -> None:
            self._retxn([flow_row, *atom_rows], txn)
            write_rows(self._session, conn, FLOWS, [flow_row], txn, create=False, keep_parent=True)
            self._write_atom_rows(conn, atom_rows, txn)
            self._log_rows(conn, logged)

        self._session.write(f"update flow detail {flow_detail.name!r} ({flow_detail.uuid})",
                            (FLOWS, flow_detail.uuid), body)
        self._mark([flow_row, *atom_rows])
        flow_written(flow_detail, self._token)
        return flow_detail

    def update_atom_details(self, atom_detail: models.AtomDetail) -> models.AtomDetail:
        """Save an atom detail whose flow detail was saved before (else NotFound)."""
        return self._update_atom(atom_detail, True)

    def update_atom_details_nowait(self, atom_detail: models.AtomDetail
                                   ) -> models.AtomDetail:
        """Save an atom detail without waiting for it to be durable: on PostgreSQL its
        statement commits with ``synchronous_commit = off`` (the next synchronous
        commit flushes it); sqlite (WAL) and MySQL commit it as any write."""
        return self._update_atom(atom_detail, False)

    def _update_atom(self, atom_detail: models.AtomDetail, durable: bool) -> models.AtomDetail:
        """One atom write.  A PostgreSQL server that crashes (or fails over) after
        acknowledging a mark written without waiting for the disk may have lost it:
        the atom's next write then finds the revision before the mark, which no
        other writer can have left, and is made against that revision instead."""
        mark = self._marks.pop(atom_detail.uuid, None)
        try:
            written = self._update_atom_once(atom_detail, durable)
        except Conflict as err:
            if mark is None or err.expected != mark or err.found != mark - 1:
                raise
            LOG.info("atom detail %s: the server lost its last mark (revision %d); "
                     "writing over revision %d", atom_detail.uuid, mark, mark - 1)
            bookkeeping(atom_detail).lost_write(mark - 1)
            written = self._update_atom_once(atom_detail, durable)
        if not durable and self._session.postgresql:
            self._marks[atom_detail.uuid] = bookkeeping(atom_detail).revision
        return written

    def _update_atom_once(self, atom_detail: models.AtomDetail,
                          durable: bool) -> models.AtomDetail:
        bk = bookkeeping(atom_detail)
        seen = bk.revision
        backend = self._backend
        params = codec.atom_params(atom_detail, None, backend.new_txn_id(),
                                   backend.payload)
        if (bk.token is not self._token or seen is None or bk.extra(codec.CHUNKED)
                or codec.too_large(params, backend.max_inline_size)):
            return self._update_atom_slow(atom_detail, params)
        # The hot path: one conditional UPDATE, its own transaction, no read first.
        if telemetry.measuring():
            telemetry.add_bytes(param_bytes(params))
        params["w_seen"] = seen
        params["v_revision"] = seen + 1
        postgresql = self._session.postgresql
        relaxed = postgresql and not durable
        statement, then = UPDATE_RELAXED_PG if relaxed else ATOMS.update_keep_parent, None
        if backend.history:   # its history row, in its transaction
            log = self._atom_log(atom_detail, True)
            if postgresql:   # one statement: UPDATE in a CTE, then INSERT
                statement = UPDATE_LOGGED_RELAXED_PG if relaxed else UPDATE_LOGGED_PG
                params.update(log)
            else:
                then = (HISTORY_FROM_ATOM, log)
        self._session.update_row(
            lambda: f"update atom detail {atom_detail.name!r} ({atom_detail.uuid})",
            statement, params,
            lambda hit: self._atom_miss(atom_detail, seen, hit), (ATOMS, atom_detail.uuid),
            then)
        bk.mark_saved(seen + 1)
        bk.stored_state = atom_detail.state
        return atom_detail

    @staticmethod
    def _atom_miss(atom_detail: models.AtomDetail, seen: int, hit: Any) -> Exception:
        if hit is None:
            return NotFound(f"atom detail {atom_detail.uuid} was never saved: save the "
                            f"flow detail (or logbook) that contains it first")
        return conflict("atomdetails", atom_detail, seen, hit.revision)

    def _update_atom_slow(self, ad: models.AtomDetail,
                          params: dict[str, Any]) -> models.AtomDetail:
        chunks = codec.split_large(params, self._backend.max_inline_size,
                                   self._backend.chunk_size)
        row = self._row(ad, params, chunks)
        log = self._atom_log(ad, self._ours(ad)) if self._backend.history else None

        def body(conn: sa.Connection, txn: str) -> None:
            self._retxn([row], txn)
            write_rows(self._session, conn, ATOMS, [row], txn, create=False, keep_parent=True)
            write_chunks(self._session, conn, [row])
            if log is not None:
                conn.execute(HISTORY_FROM_ATOM, log)

        self._session.write(f"update atom detail {ad.name!r} ({ad.uuid})", (ATOMS, ad.uuid),
                            body)
        self._mark([row])
        return ad

    def destroy_logbook(self, book_uuid: str) -> None:
        check_component("logbook uuid", book_uuid)
        attempts = []

        def op(conn: sa.Connection) -> None:
            self._session.begin_write(conn)
            try:
                deleted = conn.execute(BOOKS.delete, {"uuid": book_uuid}).rowcount
            except BaseException:
                self._session.rollback()
                raise
            attempts.append(deleted)
            conn.commit()
            # A retry after a COMMIT that went through finds nothing left to delete.
            if deleted == 0 and len(attempts) == 1:
                raise NotFound(f"no logbook {book_uuid} to destroy")

        self._session.run(f"destroy logbook {book_uuid}", op)

    def clear_all(self) -> None:
        def body(conn: sa.Connection) -> None:
            self._session.begin_write(conn)
            for statements in (CHUNKS, ATOMS, FLOWS, BOOKS):
                conn.execute(statements.delete_all)
            conn.commit()

        self._session.run("clear all logbooks", body)

    # -- maintenance -----------------------------------------------------------
    def upgrade(self) -> None:
        self._session.run("upgrade the schema", migrate.upgrade)

    def validate(self) -> None:
        def body(conn: sa.Connection) -> str | None:
            try:
                return migrate.current(conn)
            finally:
                conn.rollback()

        at = self._session.run("validate the schema", body)
        if at != migrate.head():
            state = "empty" if at is None else f"at migration {at}"
            raise StorageFailure(f"the database schema is {state}, not at migration "
                                 f"{migrate.head()}: run upgrade() first")

