"""Logbook, flow and atom logic written once over a handful of path primitives.

Layout under a backend's root path::

    books/<book_uuid>            logbook record; children: one link per flow uuid
    flow_details/<flow_uuid>     flow record;    children: one link per atom uuid
    atom_details/<atom_uuid>     atom record
    <record>/.h-<time>-<id>      history entries of a flow or atom record
    snapshots/<snapshot id>      snapshot header (snapshot_data/<id>: its contents)

Children whose names start with ``.`` are never uuids (uuids cannot start
with one): they belong to the record (history, a backend's own parts).
History, snapshots, summaries, listings and purge live in
:mod:`persistence.backends.pathbased.lifecycle`.

A backend implements only the primitives (read, write, children, link,
delete, transaction).  Saves go bottom-up — atoms, then their flow and its
links, then the logbook — so a reader that starts from ``books/`` never
follows a link to a record that is not written yet.  A record is published
when its data is stored: a node without it (a save interrupted before its
record was written) is absent for every reader, links below it included.
Backends whose transactions are not atomic write a new record's data after
its links (dir: a staging directory renamed into place; ZooKeeper: an empty
znode set last), so a logbook or flow detail appears only complete.
"""

from __future__ import annotations

import abc
import contextlib
import datetime
import functools
import posixpath
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from ...exceptions import Conflict, NotFound, SerializationError, StorageFailure
from ...models import encoding as serialization
from ...models import history
from ...models import records as models
from ...models.bookkeeping import bookkeeping
from ..base import Backend, Connection
from ..shared import check_component
from .claims import PathClaims
from .lifecycle import PathLifecycle

__all__ = ["PathBasedBackend", "PathBasedConnection", "check_component", "next_revision"]

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


@functools.lru_cache(maxsize=65536)
def _child_path(base: str, kind: str, uuid: str) -> str:
    return posixpath.join(base, check_component(kind, uuid))


class PathBasedBackend(Backend):
    """A backend whose records live at paths under one root ``path``."""

    DEFAULT_PATH: ClassVar[str | None] = None
    OPTIONS: ClassVar[dict] = {"path": str, "history": bool}
    supports_claims = supports_history = supports_snapshots = True

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__(conf)
        path = self._options.get("path") or self.DEFAULT_PATH
        if not path:
            raise ValueError(f"{type(self).__name__} needs a 'path' option")
        self._path = path
        #: Whether writes append history entries (option ``history``, default on).
        self.history = self._options.get("history", True)
        # Identifies records this backend instance wrote or read, so that
        # unchanged ones can be skipped and stale ones detected.
        self.token = object()

    def store_exists(self) -> bool:
        """Whether the layout's root (its ``books`` node) exists; reads only."""
        conn = self.get_connection()
        try:
            return bool(conn._exists(conn.book_path))
        finally:
            conn.close()

    @property
    def path(self) -> str:
        return self._path


def _names(names: list[str] | None) -> list[str]:
    """Child names that are uuids (links), without a record's own ``.`` entries."""
    return [n for n in names or () if n[:1] != "."]


class PathBasedConnection(PathLifecycle, PathClaims, Connection, abc.ABC):
    """Connection implementing the whole Connection API over path primitives."""

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
        out: list[tuple[bytes, int] | None] = []
        for path in paths:
            try:
                out.append(self._read(path))
            except NotFound:
                out.append(None)
        return out

    @abc.abstractmethod
    def _children(self, path: str) -> list[str]:
        """Names of the children of ``path``; NotFound if ``path`` does not exist."""

    def _children_many(self, paths: list[str]) -> list[list[str] | None]:
        """Like ``_children`` for many paths (None where missing); override to pipeline."""
        out: list[list[str] | None] = []
        for path in paths:
            try:
                out.append(self._children(path))
            except NotFound:
                out.append(None)
        return out

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

    def _write_single(self, path: str, data: bytes, *, create: bool,
                      expected_revision: int | None) -> int:
        """One write in its own transaction; override when the store has a faster path."""
        with self._transaction() as txn:
            return self._write(path, data, txn, create=create,
                               expected_revision=expected_revision)

    def _write_single_logged(self, path: str, data: bytes, expected_revision: int | None,
                             log: Any) -> int:
        """Update an existing record and append its history entry (``log(revision,
        txn)``) in one transaction; override when the store has a faster path."""
        with self._transaction() as txn:
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

    # -- helpers ---------------------------------------------------------
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

    # -- writes ----------------------------------------------------------
    def _write_atom(self, ad: models.AtomDetail, txn: Any, create: bool,
                    flow_uuid: str | None = None, event: str = history.WRITE) -> Any:
        path = self._atom(ad.uuid)
        data = serialization.encode_record(serialization.atom_record(ad, None), ad)
        revision = self._write(path, data, txn, create=create,
                               expected_revision=self._expected(ad))
        if self._backend.history:
            self._log(path, ad, history.ATOM, flow_uuid, revision, txn, event)
        return revision

    def _log(self, path: str, detail: models._Record, kind: str, flow_uuid: str | None,
             revision: Any, txn: Any, event: str = history.WRITE) -> None:
        """Append the history entry of a write of ``detail`` at ``path`` to ``txn``."""
        old = bookkeeping(detail).stored_state_in(self._backend.token)
        self._append(path, history.entry_fields(detail, kind, flow_uuid, old, self.owner,
                                                event), revision, txn)

    def _write_flow(self, fd: models.FlowDetail, txn: Any, create: bool,
                    only_changed: bool, event: str = history.WRITE
                    ) -> list[tuple[models._Record, int]]:
        """Write a flow's atoms (bottom-up), the flow and its links; return what to mark."""
        flow_path = self._flow(fd.uuid)
        written, new_atoms = [], []
        for ad in fd:
            if self._is_ours(ad):
                if only_changed and not ad.changed:
                    continue
                written.append((ad, self._write_atom(ad, txn, False, fd.uuid, event)))
            else:
                written.append((ad, self._write_atom(ad, txn, True, fd.uuid, event)))
                new_atoms.append(ad.uuid)
        record = serialization.flow_record(fd, None)
        record["updated_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
        revision = self._write(flow_path, serialization.encode_record(record, fd), txn,
                               create=create, expected_revision=self._expected(fd))
        if self._backend.history:
            self._log(flow_path, fd, history.FLOW, fd.uuid, revision, txn, event)
        written.append((fd, revision))
        for atom_uuid in new_atoms:
            self._link(self._join(flow_path, atom_uuid), txn)
        return written

    def _ensure_layout(self) -> None:
        """Create the layout on a store's first write, as an engine never calls upgrade().

        Reads of a store with no layout find nothing and create nothing; the
        first ``save_logbook`` makes it (once per backend instance).
        """
        backend = self._backend
        if getattr(backend, "_layout_ready", False):
            return
        if not all(self._exists(p) for p in (self.book_path, self.flow_path, self.atom_path)):
            self.upgrade()
        backend._layout_ready = True

    def save_logbook(self, book: models.LogBook) -> models.LogBook:
        book_path = self._book(book.uuid)
        self._ensure_layout()
        book.updated_at = datetime.datetime.now(datetime.timezone.utc)
        with self._transaction() as txn:
            written = []
            new_flows = [fd for fd in book if not self._is_ours(fd)]
            for fd in book:
                written.extend(self._write_flow(fd, txn, create=True, only_changed=True))
            data = serialization.encode_record(serialization.logbook_record(book), book)
            written.append((book, self._write(book_path, data, txn, create=True,
                                              expected_revision=self._expected(book))))
            for fd in new_flows:
                self._link(self._join(book_path, fd.uuid), txn)
        for detail, revision in written:
            self._mark(detail, revision)
        return book

    def update_flow_details(self, flow_detail: models.FlowDetail,
                            ignore_missing: bool = False) -> models.FlowDetail:
        """Write a flow detail and its changed atoms; ``ignore_missing=True`` stores
        one that was never saved instead of raising NotFound (as TaskFlow's)."""
        path = self._flow(flow_detail.uuid)
        if ignore_missing:
            self._ensure_layout()
        with self._transaction() as txn:
            missing = not self._is_ours(flow_detail) and not self._exists(path)
            if missing and not ignore_missing:
                raise NotFound(f"flow detail {flow_detail.uuid} was never saved: "
                               f"save the logbook that contains it first")
            written = self._write_flow(flow_detail, txn, create=missing, only_changed=True)
        for detail, revision in written:
            self._mark(detail, revision)
        return flow_detail

    def update_atom_details(self, atom_detail: models.AtomDetail,
                            ignore_missing: bool = False) -> models.AtomDetail:
        """Write one atom detail (revision-checked); ``ignore_missing=True`` stores one
        that was never saved instead of raising NotFound (as TaskFlow's)."""
        if ignore_missing and not self._is_ours(atom_detail):
            self._ensure_layout()
            with self._transaction() as txn:
                revision = self._write_atom(atom_detail, txn, True)
            self._mark(atom_detail, revision)
            return atom_detail
        data = serialization.encode_record(serialization.atom_record(atom_detail, None),
                                           atom_detail)
        path = self._atom(atom_detail.uuid)
        try:
            if self._backend.history:
                revision = self._write_single_logged(
                    path, data, self._expected(atom_detail),
                    lambda revision, txn: self._log(path, atom_detail, history.ATOM, None,
                                                    revision, txn))
            else:
                revision = self._write_single(path, data, create=False,
                                              expected_revision=self._expected(atom_detail))
        except NotFound:
            raise NotFound(f"atom detail {atom_detail.uuid} was never saved: save the "
                           f"flow detail (or logbook) that contains it first") from None
        self._mark(atom_detail, revision)
        return atom_detail

    def destroy_logbook(self, book_uuid: str) -> None:
        book_path = self._book(book_uuid)
        with self._transaction() as txn:
            try:
                flow_uuids = _names(self._children(book_path))
            except NotFound:
                raise NotFound(f"no logbook {book_uuid} to destroy") from None
            atom_lists = self._children_many([self._flow(u) for u in flow_uuids])
            self._delete_book(book_path, flow_uuids, atom_lists, self._snapshot_ids(), txn)

    def _delete_book(self, book_path: str, flow_uuids: list[str],
                     atom_lists: list[list[str] | None], snapshot_ids: list[str],
                     txn: Any) -> None:
        """Delete a logbook, its flows and atoms (history included) and their snapshots."""
        self._delete(book_path, txn)
        for flow_uuid, atoms in zip(flow_uuids, atom_lists):
            self._delete(self._flow(flow_uuid), txn)
            for atom_uuid in _names(atoms):
                self._delete(self._atom(atom_uuid), txn)
            prefix = flow_uuid + "."
            for sid in snapshot_ids:
                if sid.startswith(prefix):
                    self._delete(self._join(self.snapshot_path, sid), txn)
                    self._delete(self._join(self.snapshot_data_path, sid), txn)

    def clear_all(self) -> None:
        with self._transaction() as txn:
            for path in (self.book_path, self.flow_path, self.atom_path, self.snapshot_path,
                         self.snapshot_data_path):
                for name in self._children(path) if self._exists(path) else ():
                    self._delete(self._join(path, name), txn)
        self.upgrade()

    # -- reads -----------------------------------------------------------
    def _load_atoms(self, atom_uuids: list[str]) -> list[models.AtomDetail]:
        paths = [self._atom(u) for u in atom_uuids]
        atoms = []
        for path, raw in zip(paths, self._read_many(paths)):
            if raw is not None:  # a link whose record was deleted meanwhile
                atoms.append(self._build(serialization.load_atom, raw, path))
        return atoms

    def _load_flows(self, flow_uuids: list[str], lazy: bool) -> list[models.FlowDetail]:
        paths = [self._flow(u) for u in flow_uuids]
        raws = self._read_many(paths)
        flows = []
        for path, raw in zip(paths, raws):
            if raw is not None:
                flows.append(self._build(serialization.load_flow, raw, path))
        if not lazy:
            children = self._children_many([self._flow(fd.uuid) for fd in flows])
            all_atoms = self._load_atoms([u for names in children for u in _names(names)])
            by_uuid = {ad.uuid: ad for ad in all_atoms}
            for fd, names in zip(flows, children):
                for name in _names(names):
                    ad = by_uuid.get(name)
                    if ad is not None:
                        fd._atomdetails_by_id[ad.uuid] = ad
        return flows

    def _build(self, loader: Any, raw: tuple[bytes, int], path: str) -> Any:
        detail = loader(self._decode(raw, path), self._where(path))
        bookkeeping(detail).mark_stored(self._backend.token, getattr(detail, "state", None))
        return detail

    def _load_books(self, book_uuids: Iterable[str], lazy: bool,
                    missing_ok: bool) -> list[models.LogBook]:
        book_uuids = list(book_uuids)
        paths = [self._book(u) for u in book_uuids]
        books = []
        with self._reading():
            raws = self._read_many(paths)
            flow_lists = self._children_many(paths) if not lazy else [None] * len(paths)
            for uuid, path, raw in zip(book_uuids, paths, raws):
                if raw is None:
                    if missing_ok:
                        continue
                    raise NotFound(f"no logbook {uuid}")
                books.append(self._build(serialization.load_logbook, raw, path))
            if not lazy:
                present = [names for raw, names in zip(raws, flow_lists) if raw is not None]
                flows = self._load_flows([u for names in present for u in _names(names)],
                                         lazy=False)
                by_uuid = {fd.uuid: fd for fd in flows}
                for book, names in zip(books, present):
                    for name in _names(names):
                        fd = by_uuid.get(name)
                        if fd is not None:
                            book._flowdetails_by_id[fd.uuid] = fd
        for book in books:
            bookkeeping(book).changed = False
        return books

    def get_logbook(self, book_uuid: str, lazy: bool = False) -> models.LogBook:
        return self._load_books([book_uuid], lazy, missing_ok=False)[0]

    def get_logbooks(self, lazy: bool = False) -> Iterator[models.LogBook]:
        with self._reading():
            names = self._children(self.book_path) if self._exists(self.book_path) else []
            books = self._load_books(_names(names), lazy, missing_ok=True)
        return iter(books)

    def _published_children(self, path: str) -> list[str] | None:
        """The links below the record at ``path``; None if its record is not stored
        (never saved, or a save that was interrupted before publishing it)."""
        raw = self._read_many([path])[0]
        names = self._children_many([path])[0] if raw is not None else None
        return None if names is None else _names(names)

    def get_flows_for_book(self, book_uuid: str, lazy: bool = False) -> Iterator[models.FlowDetail]:
        with self._reading():
            names = self._published_children(self._book(book_uuid))
            if names is None:
                raise NotFound(f"no logbook {book_uuid}")
            return iter(self._load_flows(names, lazy))

    def get_flow_details(self, fd_uuid: str, lazy: bool = False) -> models.FlowDetail:
        with self._reading():
            flows = self._load_flows([fd_uuid], lazy)
        if not flows:
            raise NotFound(f"no flow detail {fd_uuid}")
        return flows[0]

    def get_atom_details(self, ad_uuid: str) -> models.AtomDetail:
        atoms = self._load_atoms([ad_uuid])
        if not atoms:
            raise NotFound(f"no atom detail {ad_uuid}")
        return atoms[0]

    def get_atoms_for_flow(self, fd_uuid: str) -> Iterator[models.AtomDetail]:
        with self._reading():
            names = self._published_children(self._flow(fd_uuid))
            if names is None:
                raise NotFound(f"no flow detail {fd_uuid}")
            return iter(self._load_atoms(names))

    # -- maintenance -----------------------------------------------------
    def upgrade(self) -> None:
        for path in (self.book_path, self.flow_path, self.atom_path, self.snapshot_path,
                     self.snapshot_data_path):
            self._ensure_dir(path)

    def validate(self) -> None:
        missing = [p for p in (self.book_path, self.flow_path, self.atom_path)
                   if not self._exists(p)]
        if missing:
            raise StorageFailure(f"backend layout is missing {', '.join(missing)}: "
                                 f"run upgrade() first")

    def close(self) -> None:
        """Path-based connections hold nothing of their own."""
