"""Errors of the TaskFlow store reader, each a :class:`~persistence.exceptions.PersistenceError`."""

from __future__ import annotations

from ...exceptions import NotFound, SerializationError, StorageFailure

__all__ = ["NoTaskFlowStore", "ReadOnlyStore", "TaskFlowRecordError"]


class NoTaskFlowStore(NotFound):
    """Nothing at the given location is a TaskFlow store (missing, empty, or another
    kind of store, such as one written by ``persistence`` itself)."""


class ReadOnlyStore(StorageFailure):
    """A write was asked of a TaskFlow store: they are read, never written."""


class TaskFlowRecordError(SerializationError):
    """A record in a TaskFlow store cannot be read: corrupt, truncated or of a kind
    TaskFlow 6.5 does not write.  ``record`` names it, ``location`` says where it is."""

    def __init__(self, message: str, *, record: str, location: str) -> None:
        super().__init__(message)
        self.record = record
        self.location = location
