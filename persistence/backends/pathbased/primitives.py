"""What a path-based store provides, and what the template builds on it.

The primitives a backend implements (read, children, exists, write, link,
delete, ensure a directory, transaction) and the ones it may override for
speed, the layout's paths, and the small helpers every part of the template
shares: record paths from uuids, a record's bookkeeping against this store,
decoding a stored record.  :mod:`.reads`, :mod:`.writes`, :mod:`.lifecycle`
and :mod:`.claims` are written over this class only.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import posixpath
from typing import Any

from ...exceptions import Conflict, NotFound, SerializationError, StorageFailure
from ...models import encoding as serialization
from ...models import records as models
from ...models.bookkeeping import bookkeeping
from ..shared import check_component
from .backend import PathBasedBackend

__all__ = ["PathPrimitives", "links", "next_revision"]


def next_revision(path: str, current: int, *, create: bool,
                  expected_revision: int | None) -> int:
    """The revision a write to ``path`` (now at ``current``, 0 = absent) will get.

    Raises NotFound when the record must exist and does not, and Conflict when
    the writer's revision is stale; shared by every backend's ``_write``.
    """
    if not create and current == 0:
        raise NotFound(f"nothing stored at {path}")
    if expected_revision is not None and expected_revision != current:
        raise Conflict(f"{path} was changed by another writer: expected revision "
                       f"{expected_revision}, found {current}",
                       record=path, expected=expected_revision, found=current)
    return current + 1


def links(names: list[str] | None) -> list[str]:
    """Child names that are uuids (links), without a record's own ``.`` entries."""
    return [n for n in names or () if n[:1] != "."]


@functools.lru_cache(maxsize=65536)
def _child_path(base: str, kind: str, uuid: str) -> str:
    return posixpath.join(base, check_component(kind, uuid))


class PathPrimitives(abc.ABC):
    """The layout under one root and the primitives a path-based backend writes."""

    def __init__(self, backend: PathBasedBackend, root: str | None = None) -> None:
        self._backend = backend
        root = root if root is not None else backend.path
        self.book_path = self._join(root, "books")
        self.flow_path = self._join(root, "flow_details")
        self.atom_path = self._join(root, "atom_details")
        self.snapshot_path = self._join(root, "snapshots")
        self.snapshot_data_path = self._join(root, "snapshot_data")

    @property
    def backend(self) -> PathBasedBackend:
        """The backend this connection belongs to."""
        return self._backend

    # -- primitives ------------------------------------------------------
    @staticmethod
    def _join(*parts: str) -> str:
        return posixpath.join(*parts)

    @abc.abstractmethod
    def _read(self, path: str) -> tuple[bytes, int]:
        """(data, revision) stored at ``path``; NotFound if nothing is."""

    def _read_many(self, paths: list[str]) -> list[tuple[bytes, int] | None]:
        """Like ``_read`` for many paths (None where missing); override to pipeline."""
        return _each(self._read, paths)

    @abc.abstractmethod
    def _children(self, path: str) -> list[str]:
        """Names of the children of ``path``; NotFound if ``path`` does not exist."""

    def _children_many(self, paths: list[str]) -> list[list[str] | None]:
        """Like ``_children`` for many paths (None where missing); override to pipeline."""
        return _each(self._children, paths)

    @abc.abstractmethod
    def _exists(self, path: str) -> bool:
        """Whether a record or directory exists at ``path``."""

    @abc.abstractmethod
    def _write(self, path: str, data: bytes, txn: Any, *, create: bool,
               expected_revision: int | None) -> int:
        """Store ``data`` at ``path`` within ``txn``; return the revision it will have.

        ``create=False``: the record must exist (NotFound otherwise).
        ``expected_revision``: if not None, the stored revision must equal it
        (Conflict otherwise).  Revisions start at 1 and grow by one per write.
        """

    #: Whether ``_transaction(durable=False)`` is understood: a transaction that need
    #: not be durable when it returns, made durable by the next durable one (see
    #: ``Connection.update_atom_details_nowait``).  Stores that set it: dir, ZooKeeper.
    writes_nowait = False

    def _single(self, durable: bool) -> contextlib.AbstractContextManager[Any]:
        """The transaction of one write; ``durable=False`` only where understood."""
        return self._transaction() if durable else self._transaction(durable=False)

    def _write_single(self, path: str, data: bytes, *, create: bool,
                      expected_revision: int | None, durable: bool = True) -> int:
        """One write in its own transaction; override when the store has a faster path."""
        with self._single(durable) as txn:
            return self._write(path, data, txn, create=create,
                               expected_revision=expected_revision)

    def _write_single_logged(self, path: str, data: bytes, expected_revision: int | None,
                             log: Any, durable: bool = True) -> int:
        """Update an existing record and append its history entry (``log(revision,
        txn)``) in one transaction; override when the store has a faster path."""
        with self._single(durable) as txn:
            revision = self._write(path, data, txn, create=False,
                                   expected_revision=expected_revision)
            log(revision, txn)
        return revision

    @abc.abstractmethod
    def _link(self, path: str, txn: Any) -> None:
        """Create an empty child marker at ``path`` (idempotent)."""

    @abc.abstractmethod
    def _delete(self, path: str, txn: Any) -> None:
        """Delete ``path`` and everything under it (idempotent)."""

    @abc.abstractmethod
    def _ensure_dir(self, path: str) -> None:
        """Create the directory ``path`` (and parents) if missing."""

    @abc.abstractmethod
    def _transaction(self) -> contextlib.AbstractContextManager[Any]:
        """A write transaction; writes in it become visible together (where the store can)."""

    def _reading(self) -> contextlib.AbstractContextManager[Any]:
        """A consistent read view for multi-record reads (default: none needed)."""
        return contextlib.nullcontext()

    # -- paths and records -------------------------------------------------
    def _book(self, uuid: str) -> str:
        return self._join(self.book_path, check_component("logbook uuid", uuid))

    def _flow(self, uuid: str) -> str:
        return _child_path(self.flow_path, "flow detail uuid", uuid)

    def _atom(self, uuid: str) -> str:
        return _child_path(self.atom_path, "atom detail uuid", uuid)

    def _is_ours(self, detail: models._Record) -> bool:
        return bookkeeping(detail).came_from(self._backend.token)

    def _expected(self, detail: models._Record) -> int | None:
        return detail.revision if self._is_ours(detail) else None

    def _mark(self, detail: models._Record, revision: int) -> None:
        bk = bookkeeping(detail)
        bk.mark_saved(revision)
        bk.mark_stored(self._backend.token, getattr(detail, "state", None))

    def _where(self, path: str) -> str:
        """How to name ``path`` in an error message (dir: the real file)."""
        return path

    def _decode(self, raw: tuple[bytes, int], path: str) -> dict[str, Any]:
        record = serialization.loads(raw[0], self._where(path))
        if not isinstance(record, dict):
            raise SerializationError(
                f"stored data in {self._where(path)} is not a record")
        record["revision"] = raw[1]
        return record

    # -- the layout ----------------------------------------------------------
    def _layout(self) -> tuple[str, ...]:
        return (self.book_path, self.flow_path, self.atom_path, self.snapshot_path,
                self.snapshot_data_path)

    def _ensure_layout(self) -> None:
        """Create the layout on a store's first write, as an engine never calls upgrade().

        Reads of a store with no layout find nothing and create nothing; the
        first ``save_logbook`` makes it (once per backend instance).
        """
        backend = self._backend
        if backend._layout_ready:
            return
        if not all(self._exists(p) for p in (self.book_path, self.flow_path, self.atom_path)):
            self.upgrade()
        backend._layout_ready = True

    def upgrade(self) -> None:
        """Create the layout's directories that are missing."""
        for path in self._layout():
            self._ensure_dir(path)

    def validate(self) -> None:
        """Raise StorageFailure naming what is missing if the layout is incomplete."""
        missing = [p for p in (self.book_path, self.flow_path, self.atom_path)
                   if not self._exists(p)]
        if missing:
            raise StorageFailure(f"backend layout is missing {', '.join(missing)}: "
                                 f"run upgrade() first")


def _each(read: Any, paths: list[str]) -> list[Any]:
    """``read(path)`` of each path, None where it raises NotFound."""
    out = []
    for path in paths:
        try:
            out.append(read(path))
        except NotFound:
            out.append(None)
    return out
