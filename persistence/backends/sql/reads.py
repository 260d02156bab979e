"""Loading logbooks, flow details and atom details from the SQL tables.

A logbook is three SELECTs (books, their flows, their atoms) whatever its
size, a flow detail two, plus one for chunk rows when values are chunked;
reads of more than one statement share one snapshot (``Session.read``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa

from ...exceptions import NotFound
from ...models import records as models
from ...models.bookkeeping import bookkeeping
from ..shared import check_component
from .rows import join_chunks, load_atom, load_book, load_flow
from .session import Session
from .statements import ATOMS, BOOKS, CHUNKS, FLOWS

__all__ = ["SQLReads"]

T = TypeVar("T")


class SQLReads:
    """Mixin of :class:`~persistence.backends.sql.connection.SQLConnection`: the read
    half of the Connection API."""

    _session: Session
    _token: object
    _backend: Any

    def _flows(self, rows: list[Any]) -> list[models.FlowDetail]:
        token, payload = self._token, self._backend.payload
        flows = []
        for row in rows:
            flows.append(load_flow(row, payload, token))
        return flows

    def _book(self, row: Any) -> models.LogBook:
        return load_book(row, self._backend.payload, self._token)

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
            parent_of: dict[str, str] = {}
            atoms = self._atoms_from(conn, conn.execute(atom_statement, params),
                                     chunk_statement, params, parent_of)
            self._attach(flows, atoms, parent_of, "_atomdetails_by_id")
        return flows

    def _atoms_from(self, conn: sa.Connection, rows: Iterable[Any], chunk_statement: sa.Select,
                    params: dict[str, Any],
                    parent_of: dict[str, str] | None = None) -> list[models.AtomDetail]:
        """The atoms of ``rows``, each built as its row is read: no row outlives its
        atom (a load of thousands would otherwise keep two more objects per atom
        alive to the end, for the garbage collector to scan and promote).  Rows
        with chunked values wait for the chunk rows, read once all are seen."""
        load, token, payload = load_atom, self._token, self._backend.payload
        atoms: list[Any] = []
        waiting: list[tuple[int, Any]] = []
        for row in rows:
            if parent_of is not None:
                parent_of[row[0]] = row[12]
            if row[11]:
                waiting.append((len(atoms), row))
                atoms.append(None)
            else:
                atoms.append(load(row, None, payload, token))
        if waiting:
            chunked = join_chunks(conn.execute(chunk_statement, params))
            for i, row in waiting:
                atoms[i] = load(row, chunked.get(row[0]), payload, token)
        return atoms

    def _load_one(self, kind: str, statement: sa.Select, uuid: str,
                  build: Callable[[sa.Connection, Any, dict[str, Any]], T],
                  consistent: bool) -> T:
        """``build(conn, row, params)`` of the row of ``kind`` ``uuid``; NotFound if none."""
        check_component(f"{kind} uuid", uuid)
        params = {"uuid": uuid}

        def body(conn: sa.Connection) -> T:
            row = conn.execute(statement, params).first()
            if row is None:
                raise NotFound(f"no {kind} {uuid}")
            return build(conn, row, params)

        return self._session.read(f"load {kind} {uuid}", body, consistent=consistent)

    def _load_children(self, what: str, kind: str, parent_exists: sa.Select, uuid: str,
                       load: Callable[[sa.Connection, dict[str, Any]], list[T]]
                       ) -> Iterator[T]:
        """``load(conn, params)`` below the parent ``kind`` ``uuid``; NotFound if it is gone."""
        check_component(f"{kind} uuid", uuid)
        params = {"uuid": uuid}

        def body(conn: sa.Connection) -> list[T]:
            if conn.execute(parent_exists, params).first() is None:
                raise NotFound(f"no {kind} {uuid}")
            return load(conn, params)

        return iter(self._session.read(what, body))

    def get_logbook(self, book_uuid: str, lazy: bool = False) -> models.LogBook:
        def build(conn: sa.Connection, row: Any, params: dict[str, Any]) -> models.LogBook:
            book = self._book(row)
            if not lazy:
                flow_rows = conn.execute(FLOWS.by_book, params).all()
                flows = self._load_flows(conn, flow_rows, ATOMS.by_book, CHUNKS.by_book,
                                         params, lazy=False)
                self._attach([book], flows, {r[0]: r[4] for r in flow_rows}, "_flowdetails_by_id")
            return book

        return self._load_one("logbook", BOOKS.by_uuid, book_uuid, build, consistent=not lazy)

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
        return self._load_children(
            f"load the flow details of logbook {book_uuid}", "logbook", BOOKS.exists, book_uuid,
            lambda conn, params: self._load_flows(conn, conn.execute(FLOWS.by_book, params).all(),
                                                  ATOMS.by_book, CHUNKS.by_book, params, lazy))

    def get_flow_details(self, fd_uuid: str, lazy: bool = False) -> models.FlowDetail:
        return self._load_one(
            "flow detail", FLOWS.by_uuid, fd_uuid,
            lambda conn, row, params: self._load_flows(conn, [row], ATOMS.by_flow,
                                                       CHUNKS.by_flow, params, lazy)[0],
            consistent=not lazy)

    def get_atom_details(self, ad_uuid: str) -> models.AtomDetail:
        return self._load_one(
            "atom detail", ATOMS.by_uuid, ad_uuid,
            lambda conn, row, params: self._atoms_from(conn, [row], CHUNKS.by_atom, params)[0],
            consistent=False)

    def get_atoms_for_flow(self, fd_uuid: str) -> Iterator[models.AtomDetail]:
        return self._load_children(
            f"load the atom details of flow {fd_uuid}", "flow detail", FLOWS.exists, fd_uuid,
            lambda conn, params: self._atoms_from(conn, conn.execute(ATOMS.by_flow, params),
                                                  CHUNKS.by_flow, params))
