"""The read-only Connection every TaskFlow store format shares.

A format (SQL, dir, ZooKeeper) implements a few read primitives; the
Connection API (``get_logbook``, ``get_logbooks``, ``get_flow_details`` …) is
written once here on top of them, so ``persistence migrate``, ``export``,
``ls`` and ``show`` read a TaskFlow store like any other source.  Every
method that would write raises
:class:`~persistence.backends.taskflow.errors.ReadOnlyStore`; ``upgrade()``
changes nothing, it only checks that a TaskFlow store is there.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any, NoReturn

from ...exceptions import NotFound
from ...models import records as models
from ..base import Backend, Connection
from .errors import ReadOnlyStore

__all__ = ["TaskFlowConnection"]


class TaskFlowConnection(Connection, abc.ABC):
    """Reads logbooks, flow details and atom details out of a TaskFlow store."""

    #: Capability flag: nothing can be written through this connection.
    read_only = True

    def __init__(self, backend: Backend, location: str) -> None:
        self._backend = backend
        #: Where the store is, as shown in messages (never with a password).
        self.location = location

    @property
    def backend(self) -> Backend:
        return self._backend

    def close(self) -> None:
        """Nothing to release per connection: the backend owns clients and engines."""

    # -- primitives ---------------------------------------------------------
    @abc.abstractmethod
    def validate(self) -> None:
        """Raise NoTaskFlowStore unless a TaskFlow store is at this location."""

    @abc.abstractmethod
    def _book_uuids(self) -> list[str]:
        """The uuids of every logbook."""

    @abc.abstractmethod
    def _read_book(self, uuid: str) -> models.LogBook:
        """One logbook without its flows; NotFound if there is none."""

    @abc.abstractmethod
    def _read_flows(self, book_uuid: str) -> list[models.FlowDetail]:
        """The flow details of a logbook without their atoms; NotFound if no such logbook."""

    @abc.abstractmethod
    def _read_flow(self, uuid: str) -> models.FlowDetail:
        """One flow detail without its atoms; NotFound if there is none."""

    @abc.abstractmethod
    def _read_atoms(self, flow_uuid: str) -> list[models.AtomDetail]:
        """The atom details of a flow detail; NotFound if no such flow detail."""

    @abc.abstractmethod
    def _read_atom(self, uuid: str) -> models.AtomDetail:
        """One atom detail; NotFound if there is none."""

    def _read_books(self) -> Iterator[models.LogBook]:
        """Every logbook without its flows (one removed meanwhile is left out)."""
        for uuid in self._book_uuids():
            try:
                yield self._read_book(uuid)
            except NotFound:
                continue

    def _fill_book(self, book: models.LogBook) -> None:
        """Load a logbook's flows and their atoms into it (a format may do it in one go)."""
        for fd in self._read_flows(book.uuid):
            self._fill_flow(fd)
            book.add(fd)

    def _fill_flow(self, fd: models.FlowDetail) -> None:
        for ad in self._read_atoms(fd.uuid):
            fd.add(ad)

    # -- the Connection API ---------------------------------------------------
    def upgrade(self) -> None:
        """Change nothing (a TaskFlow store is read as it is); check it is there."""
        self.validate()

    def get_logbooks(self, lazy: bool = False) -> Iterator[models.LogBook]:
        for book in self._read_books():
            if not lazy:
                self._fill_book(book)
            yield book

    def get_logbook(self, book_uuid: str, lazy: bool = False) -> models.LogBook:
        book = self._read_book(book_uuid)
        if not lazy:
            self._fill_book(book)
        return book

    def get_flows_for_book(self, book_uuid: str, lazy: bool = False
                           ) -> Iterator[models.FlowDetail]:
        flows = self._read_flows(book_uuid)
        for fd in flows:
            if not lazy:
                self._fill_flow(fd)
            yield fd

    def get_flow_details(self, fd_uuid: str, lazy: bool = False) -> models.FlowDetail:
        fd = self._read_flow(fd_uuid)
        if not lazy:
            self._fill_flow(fd)
        return fd

    def get_atom_details(self, ad_uuid: str) -> models.AtomDetail:
        return self._read_atom(ad_uuid)

    def get_atoms_for_flow(self, fd_uuid: str) -> Iterator[models.AtomDetail]:
        yield from self._read_atoms(fd_uuid)

    # -- writes: refused ----------------------------------------------------------
    def _refuse(self, what: str) -> NoReturn:
        raise ReadOnlyStore(f"cannot {what}: {self.location} is a TaskFlow store, which "
                            f"persistence only reads (migrate it into a persistence "
                            f"backend with 'persistence migrate' and write there)")

    def clear_all(self) -> None:
        """Refused: TaskFlow stores are read-only here."""
        self._refuse("clear every logbook")

    def save_logbook(self, book: models.LogBook) -> models.LogBook:
        """Refused: TaskFlow stores are read-only here."""
        self._refuse(f"save logbook {book.uuid}")

    def update_flow_details(self, flow_detail: models.FlowDetail) -> models.FlowDetail:
        """Refused: TaskFlow stores are read-only here."""
        self._refuse(f"update flow detail {flow_detail.uuid}")

    def update_atom_details(self, atom_detail: models.AtomDetail) -> models.AtomDetail:
        """Refused: TaskFlow stores are read-only here."""
        self._refuse(f"update atom detail {atom_detail.uuid}")

    def destroy_logbook(self, book_uuid: str) -> None:
        """Refused: TaskFlow stores are read-only here."""
        self._refuse(f"destroy logbook {book_uuid}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.location}>"

    def _not_found(self, kind: str, uuid: Any) -> NoReturn:
        raise NotFound(f"no {kind} {uuid} in the TaskFlow store at {self.location}")
