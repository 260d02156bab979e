"""The Connection API of the SQL backend, each method a fixed number of statements.

Statements per call (BEGIN/COMMIT not counted; ``tests/backends/test_sql_statements.py``
asserts them):

==========================================  =====================================
update_atom_details (record from here)      1 UPDATE
update_atom_details (record from elsewhere) 1 probe + 1 UPDATE
update_flow_details (record from here)      1 UPDATE of the flow, + 1 executemany
                                            UPDATE of the changed atoms, + 1
                                            INSERT of new ones (MySQL: +1 probe)
save_logbook of a new book                  3 bulk INSERTs (MySQL: 3 probes first)
get_logbook / get_flow_details              3 / 2 SELECTs (+1 if values are chunked)
get_atom_details                            1 SELECT (+1 if chunked)
destroy_logbook                             1 DELETE (children cascade)
==========================================  =====================================

Large values add chunk statements only for the atoms that have them.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from ... import telemetry
from ...exceptions import NotFound, StorageFailure
from ...models import records as models
from ...models.bookkeeping import bookkeeping
from ..base import Connection
from ..shared import check_component
from . import codec, migrate
from .claims import SQLClaims
from .lifecycle import HISTORY_FROM_ATOM, UPDATE_LOGGED_PG, SQLLifecycle
from .session import Session
from .statements import ATOMS, BOOKS, CHUNKS, FLOWS
from .writes import RowWrite, check_unique, conflict, param_bytes, write_chunks, write_rows

__all__ = ["SQLConnection"]


class SQLConnection(SQLClaims, SQLLifecycle, Connection):
    """A connection to a :class:`SQLAlchemyBackend`; holds one pooled connection
    from first use until :meth:`close`.  Safe to share between threads (calls
    are serialized)."""

    def __init__(self, backend) -> None:
        self._backend = backend
        self._session = Session(backend)
        self._token = backend.token

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
        params = codec.atom_params(ad, parent_uuid, txn)
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
        atoms = [self._atom_row(ad, fd.uuid, txn) for ad in fd
                 if not (self._ours(ad) and not ad.changed)]
        return self._row(fd, codec.flow_params(fd, parent_uuid, txn)), atoms

    @staticmethod
    def _retxn(rows: list[RowWrite], txn: str) -> None:
        for r in rows:
            r.params["v_txn"] = txn

    # -- writes --------------------------------------------------------------
    def save_logbook(self, book: models.LogBook) -> models.LogBook:
        book.updated_at = datetime.datetime.now(datetime.timezone.utc)
        # Encode everything before touching the database: a value that cannot be
        # stored fails here, with nothing written.
        book_row = self._row(book, codec.book_params(book, ""))
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
            if atom_rows:
                write_rows(self._session, conn, ATOMS, atom_rows, txn, create=True)
                write_chunks(self._session, conn, atom_rows)
            self._log_rows(conn, logged)

        self._session.write(f"save logbook {book.name!r} ({book.uuid})",
                            (BOOKS, book.uuid), body)
        self._mark(everything)
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
            if atom_rows:
                write_rows(self._session, conn, ATOMS, atom_rows, txn, create=True)
                write_chunks(self._session, conn, atom_rows)
            self._log_rows(conn, logged)

        self._session.write(f"update flow detail {flow_detail.name!r} ({flow_detail.uuid})",
                            (FLOWS, flow_detail.uuid), body)
        self._mark([flow_row, *atom_rows])
        return flow_detail

    def update_atom_details(self, atom_detail: models.AtomDetail) -> models.AtomDetail:
        bk = bookkeeping(atom_detail)
        seen = bk.revision
        backend = self._backend
        params = codec.atom_params(atom_detail, None, backend.new_txn_id())
        if (bk.token is not self._token or seen is None or bk.extra(codec.CHUNKED)
                or codec.too_large(params, backend.max_inline_size)):
            return self._update_atom_slow(atom_detail, params)
        # The hot path: one conditional UPDATE, its own transaction, no read first.
        if telemetry.measuring():
            telemetry.add_bytes(param_bytes(params))
        params["w_seen"] = seen
        params["v_revision"] = seen + 1
        statement, then = ATOMS.update_keep_parent, None
        if backend.history:   # its history row, in its transaction
            log = self._atom_log(atom_detail, True)
            if self._session.postgresql:   # one statement: UPDATE in a CTE, then INSERT
                statement = UPDATE_LOGGED_PG
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
            if self._session.sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
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
            if self._session.sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            for statements in (CHUNKS, ATOMS, FLOWS, BOOKS):
                conn.execute(statements.delete_all)
            conn.commit()

        self._session.run("clear all logbooks", body)

    # -- reads ---------------------------------------------------------------
    def _flows(self, rows: list[Any]) -> list[models.FlowDetail]:
        token = self._token
        flows = []
        for row in rows:
            fd = codec.load_flow(row)
            bookkeeping(fd).mark_stored(token, fd.state)
            flows.append(fd)
        return flows

    def _book(self, row: Any) -> models.LogBook:
        book = codec.load_book(row)
        bookkeeping(book).mark_stored(self._token, None)
        return book

    @staticmethod
    def _attach(parents: list[Any], children: list[Any], parent_of: dict[str, str],
                container: str) -> None:
        """Put each child into its parent's ``container`` dict; parents count as unchanged."""
        by_uuid = {parent.uuid: parent for parent in parents}
        for child in children:
            parent = by_uuid.get(parent_of[child.uuid])
            if parent is not None:
                getattr(parent, container)[child.uuid] = child
        for parent in parents:
            bookkeeping(parent).changed = False

    def _load_flows(self, conn: sa.Connection, flow_rows: list[Any], atom_statement,
                    chunk_statement, params: dict[str, Any],
                    lazy: bool) -> list[models.FlowDetail]:
        flows = self._flows(flow_rows)
        if not lazy and flows:
            rows = conn.execute(atom_statement, params).all()
            atoms = self._atoms_from(conn, rows, chunk_statement, params)
            self._attach(flows, atoms, {row[0]: row[12] for row in rows}, "_atomdetails_by_id")
        return flows

    def _atoms_from(self, conn: sa.Connection, rows: list[Any], chunk_statement: sa.Select,
                    params: dict[str, Any]) -> list[models.AtomDetail]:
        chunked = None
        if any(row[11] for row in rows):
            chunked = codec.join_chunks(conn.execute(chunk_statement, params))
        load, token = codec.load_atom, self._token
        atoms = []
        for row in rows:
            atom = load(row, chunked.get(row[0]) if chunked else None)
            bookkeeping(atom).mark_stored(token, atom.state)
            atoms.append(atom)
        return atoms

    def get_logbook(self, book_uuid: str, lazy: bool = False) -> models.LogBook:
        check_component("logbook uuid", book_uuid)
        params = {"uuid": book_uuid}

        def body(conn: sa.Connection) -> models.LogBook:
            row = conn.execute(BOOKS.by_uuid, params).first()
            if row is None:
                raise NotFound(f"no logbook {book_uuid}")
            book = self._book(row)
            if not lazy:
                flow_rows = conn.execute(FLOWS.by_book, params).all()
                flows = self._load_flows(conn, flow_rows, ATOMS.by_book, CHUNKS.by_book,
                                         params, lazy=False)
                self._attach([book], flows, {r[0]: r[4] for r in flow_rows}, "_flowdetails_by_id")
            return book

        return self._session.read(f"load logbook {book_uuid}", body, consistent=not lazy)

    def get_logbooks(self, lazy: bool = False) -> Iterator[models.LogBook]:
        def body(conn: sa.Connection) -> list[models.LogBook]:
            books = [self._book(row) for row in conn.execute(BOOKS.all)]
            if not lazy and books:
                flow_rows = conn.execute(FLOWS.select).all()
                flows = self._load_flows(conn, flow_rows, ATOMS.select, CHUNKS.all, {},
                                         lazy=False)
                self._attach(books, flows, {r[0]: r[4] for r in flow_rows}, "_flowdetails_by_id")
            return books

        return iter(self._session.read("load logbooks", body, consistent=not lazy))

    def get_flows_for_book(self, book_uuid: str,
                           lazy: bool = False) -> Iterator[models.FlowDetail]:
        check_component("logbook uuid", book_uuid)
        params = {"uuid": book_uuid}

        def body(conn: sa.Connection) -> list[models.FlowDetail]:
            if conn.execute(BOOKS.exists, params).first() is None:
                raise NotFound(f"no logbook {book_uuid}")
            flow_rows = conn.execute(FLOWS.by_book, params).all()
            return self._load_flows(conn, flow_rows, ATOMS.by_book, CHUNKS.by_book, params,
                                    lazy)

        return iter(self._session.read(f"load the flow details of logbook {book_uuid}", body))

    def get_flow_details(self, fd_uuid: str, lazy: bool = False) -> models.FlowDetail:
        check_component("flow detail uuid", fd_uuid)
        params = {"uuid": fd_uuid}

        def body(conn: sa.Connection) -> models.FlowDetail:
            row = conn.execute(FLOWS.by_uuid, params).first()
            if row is None:
                raise NotFound(f"no flow detail {fd_uuid}")
            return self._load_flows(conn, [row], ATOMS.by_flow, CHUNKS.by_flow, params,
                                    lazy)[0]

        return self._session.read(f"load flow detail {fd_uuid}", body, consistent=not lazy)

    def get_atom_details(self, ad_uuid: str) -> models.AtomDetail:
        check_component("atom detail uuid", ad_uuid)
        params = {"uuid": ad_uuid}

        def body(conn: sa.Connection) -> models.AtomDetail:
            row = conn.execute(ATOMS.by_uuid, params).first()
            if row is None:
                raise NotFound(f"no atom detail {ad_uuid}")
            return self._atoms_from(conn, [row], CHUNKS.by_atom, params)[0]

        return self._session.read(f"load atom detail {ad_uuid}", body, consistent=False)

    def get_atoms_for_flow(self, fd_uuid: str) -> Iterator[models.AtomDetail]:
        check_component("flow detail uuid", fd_uuid)
        params = {"uuid": fd_uuid}

        def body(conn: sa.Connection) -> list[models.AtomDetail]:
            if conn.execute(FLOWS.exists, params).first() is None:
                raise NotFound(f"no flow detail {fd_uuid}")
            rows = conn.execute(ATOMS.by_flow, params).all()
            return self._atoms_from(conn, rows, CHUNKS.by_flow, params)

        return iter(self._session.read(f"load the atom details of flow {fd_uuid}", body))

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

