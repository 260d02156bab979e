"""The TaskFlow connection class: TaskFlow's Connection API over one of ours.

Every method has TaskFlow's semantics and return types: reads return new
TaskFlow model objects (``get_logbooks``, ``get_flows_for_book`` and
``get_atoms_for_flow`` return generators, as TaskFlow's do), the three writes
merge into what is stored and return the merged object (:mod:`.writes`), and
errors are TaskFlow's classes with ours as the cause (:mod:`.errors`).
Unlike TaskFlow's generators, a read fails when it is called, not when its
result is first iterated.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from taskflow.persistence import base as tf_base

from ...backends.base import Connection
from . import convert, writes
from .errors import translated

__all__ = ["TaskFlowConnection"]


class StoreHost(Protocol):
    """What a connection needs from :class:`~.backend.TaskFlowBackend`."""

    @property
    def store(self) -> Any:
        """What identifies the store written to."""


class TaskFlowConnection(tf_base.Connection):
    """A TaskFlow connection storing through a connection of ours."""

    def __init__(self, backend: StoreHost, connection: Connection) -> None:
        self._backend = backend
        self._conn = connection
        self._store = backend.store
        self._bind = writes.binder(self._store)

    @property
    def backend(self) -> StoreHost:
        """The TaskFlow backend this connection belongs to."""
        return self._backend

    @property
    def persistence_connection(self) -> Connection:
        """Our connection underneath (history, snapshots, claims, summaries)."""
        return self._conn

    # -- maintenance ---------------------------------------------------------------
    def close(self) -> None:
        """Close our connection (the backend stays usable)."""
        with translated():
            self._conn.close()

    def upgrade(self) -> None:
        """Create or migrate the store's schema or layout; a no-op when up to date."""
        with translated():
            self._conn.upgrade()

    def validate(self) -> None:
        """Check the store is usable; ``StorageFailure`` saying why if not."""
        with translated():
            self._conn.validate()

    def clear_all(self) -> None:
        """Delete every logbook and everything in it."""
        with translated():
            self._conn.clear_all()

    # -- writes ----------------------------------------------------------------------
    def save_logbook(self, book: Any) -> Any:
        """Save a logbook with its flow and atom details (merged into the stored one,
        if any: stored flows it does not hold stay); return the logbook as stored."""
        with translated():
            return writes.save_logbook(self._conn, self._store, book)

    def update_flow_details(self, flow_detail: Any) -> Any:
        """Save a flow detail of a saved logbook and its atoms (``NotFound`` if its
        logbook was never saved); return it as stored, with every stored atom."""
        with translated():
            return writes.update_flow_details(self._conn, self._store, flow_detail)

    def update_atom_details(self, atom_detail: Any) -> Any:
        """Save an atom detail of a saved flow detail (``NotFound`` if it was never
        saved with one); return it as stored."""
        with translated():
            return writes.update_atom_details(self._conn, self._store, atom_detail)

    def destroy_logbook(self, book_uuid: str) -> None:
        """Delete a logbook and everything in it; ``NotFound`` if there is none."""
        with translated():
            self._conn.destroy_logbook(book_uuid)

    # -- reads -------------------------------------------------------------------------
    def get_logbook(self, book_uuid: str, lazy: bool = False) -> Any:
        """A logbook (``lazy=True``: without its flow details); ``NotFound`` if none."""
        with translated():
            record = self._conn.get_logbook(book_uuid, lazy=lazy)
        return convert.book_to_taskflow(record, self._bind)

    def get_logbooks(self, lazy: bool = False) -> Iterator[Any]:
        """Every logbook (``lazy=True``: without their flow details)."""
        with translated():
            records = list(self._conn.get_logbooks(lazy=lazy))
        return _generate([convert.book_to_taskflow(r, self._bind) for r in records])

    def get_flows_for_book(self, book_uuid: str, lazy: bool = False) -> Iterator[Any]:
        """The flow details of a logbook; ``NotFound`` if the logbook does not exist."""
        with translated():
            records = list(self._conn.get_flows_for_book(book_uuid, lazy=lazy))
        return _generate([convert.flow_to_taskflow(r, self._bind) for r in records])

    def get_flow_details(self, fd_uuid: str, lazy: bool = False) -> Any:
        """A flow detail (``lazy=True``: without its atom details); ``NotFound`` if none."""
        with translated():
            record = self._conn.get_flow_details(fd_uuid, lazy=lazy)
        return convert.flow_to_taskflow(record, self._bind)

    def get_atom_details(self, ad_uuid: str) -> Any:
        """An atom detail (a TaskFlow ``TaskDetail`` or ``RetryDetail``); ``NotFound``
        if none."""
        with translated():
            record = self._conn.get_atom_details(ad_uuid)
        return convert.atom_to_taskflow(record, self._bind)

    def get_atoms_for_flow(self, fd_uuid: str) -> Iterator[Any]:
        """The atom details of a flow detail; ``NotFound`` if the flow does not exist."""
        with translated():
            records = list(self._conn.get_atoms_for_flow(fd_uuid))
        return _generate([convert.atom_to_taskflow(r, self._bind) for r in records])


def _generate(items: list[Any]) -> Iterator[Any]:
    yield from items
