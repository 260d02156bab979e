"""Loading logbooks, flow details and atom details over the path primitives.

Each level is read with one ``_read_many`` and one ``_children_many`` for
all its records, so a backend that pipelines them (ZooKeeper) loads a whole
logbook in a few round trips.  A link whose record is missing (deleted
meanwhile, or a save interrupted before publishing it) is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ...exceptions import NotFound
from ...models import encoding as serialization
from ...models import records as models
from ...models.bookkeeping import bookkeeping
from .primitives import PathPrimitives, links

__all__ = ["PathReads"]


class PathReads(PathPrimitives):
    """The read half of the Connection API."""

    def _loaded(self, loader: Any, raw: tuple[bytes, int], path: str) -> Any:
        """The record ``loader`` (an ``encoding.load_*``) makes of ``raw``, stamped as
        read from this store; its values are opened only if its text may hold an
        envelope."""
        where = self._where(path)     # once (dir: a file path built from two joins)
        record = serialization.loads(raw[0], where)
        if type(record) is not dict:
            return self._decode(raw, path)    # not a record: raises, naming it
        record["revision"] = raw[1]
        return loader(record, where, self._backend.payload, token=self._backend.token,
                      sealed=serialization.holds_envelope(raw[0]))

    def _load_atoms(self, atom_uuids: list[str]) -> list[models.AtomDetail]:
        paths = [self._atom(u) for u in atom_uuids]
        raws = self._read_many(paths)
        atoms = []
        for i, path in enumerate(paths):
            raw = raws[i]
            if raw is not None:  # None: a link whose record was deleted meanwhile
                raws[i] = None   # dropped as it is used: a load of thousands keeps no copy
                atoms.append(self._loaded(serialization.load_atom, raw, path))
        return atoms

    def _load_flows(self, flow_uuids: list[str], lazy: bool) -> list[models.FlowDetail]:
        paths = [self._flow(u) for u in flow_uuids]
        raws = self._read_many(paths)
        flows = []
        for path, raw in zip(paths, raws):
            if raw is not None:
                flows.append(self._loaded(serialization.load_flow, raw, path))
        if not lazy:
            children = self._children_many([self._flow(fd.uuid) for fd in flows])
            atoms = self._load_atoms([u for names in children for u in links(names)])
            _attach(flows, children, atoms, "_atomdetails_by_id")
        return flows

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
                books.append(self._loaded(serialization.load_logbook, raw, path))
            if not lazy:
                present = [names for raw, names in zip(raws, flow_lists) if raw is not None]
                flows = self._load_flows([u for names in present for u in links(names)],
                                         lazy=False)
                _attach(books, present, flows, "_flowdetails_by_id")
        for book in books:
            bookkeeping(book).changed = False
        return books

    def _published_children(self, path: str) -> list[str] | None:
        """The links below the record at ``path``; None if its record is not stored
        (never saved, or a save that was interrupted before publishing it)."""
        raw = self._read_many([path])[0]
        names = self._children_many([path])[0] if raw is not None else None
        return None if names is None else links(names)

    def get_logbook(self, book_uuid: str, lazy: bool = False) -> models.LogBook:
        """The logbook ``book_uuid`` (with its flows and atoms unless ``lazy``)."""
        return self._load_books([book_uuid], lazy, missing_ok=False)[0]

    def get_logbooks(self, lazy: bool = False) -> Iterator[models.LogBook]:
        """Every stored logbook."""
        with self._reading():
            names = self._children(self.book_path) if self._exists(self.book_path) else []
            books = self._load_books(links(names), lazy, missing_ok=True)
        return iter(books)

    def get_flows_for_book(self, book_uuid: str, lazy: bool = False) -> Iterator[models.FlowDetail]:
        """The flow details of logbook ``book_uuid``."""
        with self._reading():
            names = self._published_children(self._book(book_uuid))
            if names is None:
                raise NotFound(f"no logbook {book_uuid}")
            return iter(self._load_flows(names, lazy))

    def get_flow_details(self, fd_uuid: str, lazy: bool = False) -> models.FlowDetail:
        """The flow detail ``fd_uuid`` (with its atoms unless ``lazy``)."""
        with self._reading():
            flows = self._load_flows([fd_uuid], lazy)
        if not flows:
            raise NotFound(f"no flow detail {fd_uuid}")
        return flows[0]

    def get_atom_details(self, ad_uuid: str) -> models.AtomDetail:
        """The atom detail ``ad_uuid``."""
        atoms = self._load_atoms([ad_uuid])
        if not atoms:
            raise NotFound(f"no atom detail {ad_uuid}")
        return atoms[0]

    def get_atoms_for_flow(self, fd_uuid: str) -> Iterator[models.AtomDetail]:
        """The atom details of flow detail ``fd_uuid``."""
        with self._reading():
            names = self._published_children(self._flow(fd_uuid))
            if names is None:
                raise NotFound(f"no flow detail {fd_uuid}")
            return iter(self._load_atoms(names))


def _attach(parents: list[Any], link_lists: list[list[str] | None], children: list[Any],
            container: str) -> None:
    """Put each child loaded into the ``container`` dict of the parent that links it."""
    by_uuid = {child.uuid: child for child in children}
    for parent, names in zip(parents, link_lists):
        into = getattr(parent, container)
        for name in links(names):
            child = by_uuid.get(name)
            if child is not None:
                into[child.uuid] = child
